/*
 * proc.c -- see proc.h.
 */
#include "proc.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <string.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

static void s_set(sigset_t *set)
{
    sigemptyset(set);
    sigaddset(set, SIGCHLD);
    sigaddset(set, SIGTERM);
    sigaddset(set, SIGINT);
    sigaddset(set, SIGHUP);
}

int qn_signals_open(void)
{
    sigset_t set;
    s_set(&set);
    signal(SIGPIPE, SIG_IGN);
    if (sigprocmask(SIG_BLOCK, &set, NULL) < 0)
        return -errno;
    int fd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
    return fd < 0 ? -errno : fd;
}

void qn_signals_read(int fd, int *stop, int *child)
{
    struct signalfd_siginfo si;
    while (read(fd, &si, sizeof si) == (ssize_t)sizeof si) {
        if (si.ssi_signo == SIGCHLD) {
            if (child)
                *child = 1;
        } else if (stop) {
            *stop = (int)si.ssi_signo;
        }
    }
}

pid_t qn_spawn(const char *path, char *const argv[], const qn_spawn_opts *o)
{
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t at;
    posix_spawn_file_actions_init(&fa);
    posix_spawnattr_init(&at);

    sigset_t none, def;
    sigemptyset(&none);
    s_set(&def);
    sigaddset(&def, SIGPIPE);
    short flags = POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF;
    if (o && o->new_group) {
        flags |= POSIX_SPAWN_SETPGROUP;
        posix_spawnattr_setpgroup(&at, 0);
    }
    posix_spawnattr_setflags(&at, flags);
    posix_spawnattr_setsigmask(&at, &none);
    posix_spawnattr_setsigdefault(&at, &def);

    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    /* Copy the passed descriptors above the targets first: dup2(3, 3)
     * would keep close-on-exec, and 3 -> 4 then 4 -> 3 would clobber. */
    int moved[QN_SPAWN_MAX_FDS];
    for (int i = 0; i < QN_SPAWN_MAX_FDS; i++)
        moved[i] = -1;
    for (int i = 0; o && i < o->nfds && i < QN_SPAWN_MAX_FDS; i++) {
        moved[i] = fcntl(o->fds[i], F_DUPFD_CLOEXEC, 10);
        if (moved[i] < 0) {
            int e = errno;
            for (int k = 0; k < i; k++)
                close(moved[k]);
            posix_spawn_file_actions_destroy(&fa);
            posix_spawnattr_destroy(&at);
            return -e;
        }
        posix_spawn_file_actions_adddup2(&fa, moved[i], 3 + i);
    }
    if (o && o->null_stdin)
        posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    if (o && o->stdout_path)
        posix_spawn_file_actions_addopen(&fa, 1, o->stdout_path,
                                         O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (o && o->stderr_path)
        posix_spawn_file_actions_addopen(&fa, 2, o->stderr_path,
                                         O_WRONLY | O_CREAT | O_APPEND, 0644);
    pid_t pid;
    int rc = posix_spawn(&pid, path, &fa, &at, argv,
                         o && o->envp ? o->envp : environ);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&at);
    for (int i = 0; i < QN_SPAWN_MAX_FDS; i++)
        if (moved[i] >= 0)
            close(moved[i]);
    return rc ? -rc : pid;
}

pid_t qn_reap(int *status, struct rusage *ru)
{
    int st;
    struct rusage r;
    pid_t pid = wait4(-1, &st, WNOHANG, &r);
    if (pid < 0)
        return -1;
    if (pid > 0) {
        if (status)
            *status = st;
        if (ru)
            *ru = r;
    }
    return pid;
}

const char *qn_status_str(int status, char *buf, size_t cap)
{
    if (WIFEXITED(status))
        snprintf(buf, cap, "exit code %d", WEXITSTATUS(status));
    else if (WIFSIGNALED(status))
        snprintf(buf, cap, "killed by signal %d (%s)", WTERMSIG(status),
                 strsignal(WTERMSIG(status)));
    else
        snprintf(buf, cap, "wait status %d", status);
    return buf;
}

void qn_die_with_parent(void)
{
    const char *v = getenv("QUERN_PARENT_PID");
    if (!v || !*v)
        return;
    pid_t want = (pid_t)atol(v);
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (getppid() != want)
        kill(getpid(), SIGTERM); /* the parent died before the prctl */
}
