/*
 * test_proc.c -- child processes and the signalfd (lib/proc.c).
 */
#include "helpers.h"

#include "proc.h"
#include "util.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>

TestSuite(proc, .fini = qn_test_leak_check);

/* Wait (bounded, woken by SIGCHLD on the signalfd) for pid to exit. */
static int wait_child(int sigfd, pid_t pid, int *status)
{
    for (int i = 0; i < 100; i++) {
        struct rusage ru;
        pid_t r = qn_reap(status, &ru);
        if (r == pid)
            return 0;
        struct pollfd p = {.fd = sigfd, .events = POLLIN};
        poll(&p, 1, 100);
        qn_signals_read(sigfd, NULL, NULL);
    }
    return -1;
}

Test(proc, spawned_child_gets_its_fd_3_and_stderr_file)
{
    char *dir = qn_test_tmpdir();
    int sigfd = qn_signals_open();
    cr_assert_geq(sigfd, 0);
    int sv[2];
    cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    qn_buf err = {0};
    qn_buf_printf(&err, "%s/err.txt", dir);
    char *argv[] = {(char *)"sh", (char *)"-c",
                    (char *)"echo hello >&3; echo oops >&2; exit 3", NULL};
    qn_spawn_opts o = {
        .fds = {sv[1]}, .nfds = 1, .stderr_path = err.data, .new_group = 1};
    pid_t pid = qn_spawn("/bin/sh", argv, &o);
    close(sv[1]);
    cr_assert_gt(pid, 0);
    char buf[64] = {0};
    ssize_t n = read(sv[0], buf, sizeof buf - 1);
    cr_assert_eq(n, 6);
    cr_assert_str_eq(buf, "hello\n");
    int status;
    cr_assert_eq(wait_child(sigfd, pid, &status), 0);
    char how[64];
    cr_assert_str_eq(qn_status_str(status, how, sizeof how), "exit code 3");
    FILE *f = fopen(err.data, "r");
    cr_assert_not_null(f);
    char line[64] = {0};
    cr_assert_not_null(fgets(line, sizeof line, f));
    cr_assert_str_eq(line, "oops\n");
    fclose(f);
    close(sv[0]);
    close(sigfd);
    qn_buf_release(&err);
    qn_rmtree(dir);
    free(dir);
}

Test(proc, signal_deaths_are_described)
{
    int sigfd = qn_signals_open();
    char *argv[] = {(char *)"sh", (char *)"-c", (char *)"kill -SEGV $$", NULL};
    qn_spawn_opts o = {0};
    pid_t pid = qn_spawn("/bin/sh", argv, &o);
    cr_assert_gt(pid, 0);
    int status;
    cr_assert_eq(wait_child(sigfd, pid, &status), 0);
    char how[64];
    qn_status_str(status, how, sizeof how);
    cr_assert(strstr(how, "killed by signal 11") != NULL, "got '%s'", how);
    close(sigfd);
}

Test(proc, children_start_with_signals_unblocked)
{
    /* The parent blocks SIGTERM for its signalfd; a child must not inherit
     * that, or it could not be stopped. */
    int sigfd = qn_signals_open();
    char *argv[] = {(char *)"sh", (char *)"-c", (char *)"kill -TERM $$; exit 0",
                    NULL};
    qn_spawn_opts o = {0};
    pid_t pid = qn_spawn("/bin/sh", argv, &o);
    int status;
    cr_assert_eq(wait_child(sigfd, pid, &status), 0);
    cr_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGTERM);
    close(sigfd);
}

Test(proc, stop_signals_arrive_on_the_signalfd)
{
    int sigfd = qn_signals_open();
    kill(getpid(), SIGTERM);
    struct pollfd p = {.fd = sigfd, .events = POLLIN};
    cr_assert_eq(poll(&p, 1, 5000), 1);
    int stop = 0, child = 0;
    qn_signals_read(sigfd, &stop, &child);
    cr_assert_eq(stop, SIGTERM);
    cr_assert_eq(child, 0);
    close(sigfd);
}

Test(proc, spawning_a_missing_program_fails)
{
    char *argv[] = {(char *)"nope", NULL};
    qn_spawn_opts o = {0};
    pid_t pid = qn_spawn("/nonexistent/quern-nope", argv, &o);
    cr_assert_lt(pid, 0);
}
