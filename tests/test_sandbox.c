/*
 * test_sandbox.c -- the task sandbox (lib/sandbox.c) entered by a forked
 * child, which reports what it could do; and the worker's choice of
 * layers by --sandbox level (worker/wsandbox.c).
 */
#include "helpers.h"

#include "sandbox.h"
#include "util.h"
#include "../worker/wsandbox.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

TestSuite(sandbox, .fini = qn_test_leak_check);

/* ---- the levels --------------------------------------------------------- */

Test(sandbox, auto_uses_what_the_kernel_offers_and_says_what_it_lacks)
{
    unsigned layers, missing;
    char err[256] = "";
    unsigned offered = QN_SB_ALL & ~QN_SB_LANDLOCK_NET & ~QN_SB_LANDLOCK_SCOPE;
    cr_assert_eq(qn_wsandbox_decide(QN_SANDBOX_AUTO, 1, offered, 3, &layers,
                                    &missing, err, sizeof err),
                 0);
    cr_assert_eq(layers, offered);
    cr_assert_eq(missing, QN_SB_LANDLOCK_NET | QN_SB_LANDLOCK_SCOPE);
}

Test(sandbox, require_refuses_naming_the_missing_layer)
{
    unsigned layers, missing;
    char err[256] = "";
    cr_assert_eq(qn_wsandbox_decide(QN_SANDBOX_REQUIRE, 1,
                                    QN_SB_ALL & ~QN_SB_SECCOMP, 7, &layers,
                                    &missing, err, sizeof err),
                 -1);
    cr_assert(strstr(err, "lacks seccomp") != NULL, "%s", err);
    /* Everything there: require is auto. */
    cr_assert_eq(qn_wsandbox_decide(QN_SANDBOX_REQUIRE, 1, QN_SB_ALL, 7,
                                    &layers, &missing, err, sizeof err),
                 0);
    cr_assert_eq(layers, QN_SB_ALL);
    cr_assert_eq(missing, 0);
}

Test(sandbox, a_worker_not_root_wants_no_other_user_and_off_wants_nothing)
{
    unsigned layers, missing;
    char err[256] = "";
    cr_assert_eq(qn_wsandbox_decide(QN_SANDBOX_REQUIRE, 0,
                                    QN_SB_ALL & ~QN_SB_TASK_USER, 7, &layers,
                                    &missing, err, sizeof err),
                 0, "%s", err);
    cr_assert_eq(layers, QN_SB_ALL & ~QN_SB_TASK_USER);
    cr_assert_eq(qn_wsandbox_decide(QN_SANDBOX_OFF, 1, QN_SB_ALL, 7, &layers,
                                    &missing, err, sizeof err),
                 0);
    cr_assert_eq(layers, 0);
    cr_assert_eq(missing, 0);
}

Test(sandbox, levels_and_layers_have_names)
{
    qn_sandbox_mode m;
    cr_assert_eq(qn_sandbox_mode_parse("require", &m), 0);
    cr_assert_eq(m, QN_SANDBOX_REQUIRE);
    cr_assert_eq(qn_sandbox_mode_parse("strict", &m), -1);
    char buf[160];
    cr_assert_str_eq(
        qn_sandbox_layers_str(QN_SB_LANDLOCK_FS | QN_SB_SECCOMP, buf, 160),
        "landlock-fs,seccomp");
    cr_assert_str_eq(qn_sandbox_layers_str(0, buf, sizeof buf), "none");
}

/* ---- inside ------------------------------------------------------------- */

/* What a child found, one errno each (0: it could). */
typedef struct found {
    int enter;                                  /* entering it */
    int read_secret, write_outside, write_tmp;  /* files */
    int read_usr, tcp, udp_socket, ptrace, env; /* the rest */
    int fd_kept, fd_closed;
    long long core, as, cpu, nproc; /* its limits (soft) */
} found;

static char *dir; /* the attempt's folder, tmp/ in it */

static int s_errno(int rc)
{
    return rc < 0 ? errno : 0;
}

static int s_open(const char *path, int flags)
{
    int fd = open(path, flags | O_CLOEXEC, 0644);
    if (fd < 0)
        return errno;
    close(fd);
    return 0;
}

/* In the child: enter a sandbox of layers and try things. */
static void s_inside(unsigned layers, int keep, int leak, found *f)
{
    char secret[4096], outside[4096];
    snprintf(secret, sizeof secret, "%s/../secret", dir);
    snprintf(outside, sizeof outside, "%s/../outside", dir);
    qn_sandbox sb = {.layers = layers,
                     .workdir = dir,
                     .plugin_fd = -1,
                     .keep_fds = &keep,
                     .nkeep = 1,
                     .mem_bytes = 512u << 20,
                     .cpu_s = 60,
                     .nproc = 100};
    char err[512];
    setenv("QUERN_TEST_SECRET", "x", 1);
    f->enter = chdir(dir) == 0 && qn_sandbox_enter(&sb, err, sizeof err) == 0
                   ? 0
                   : EINVAL;
    f->read_secret = s_open(secret, O_RDONLY);
    f->write_outside = s_open(outside, O_WRONLY | O_CREAT);
    f->write_tmp = s_open("tmp/mine", O_WRONLY | O_CREAT);
    f->read_usr = s_open("/usr/share/common-licenses/GPL-3", O_RDONLY);
    int s = socket(AF_INET, SOCK_STREAM, 0);
    f->tcp = s < 0 ? errno : 0;
    if (s >= 0)
        close(s);
    s = socket(AF_INET6, SOCK_DGRAM, 0);
    f->udp_socket = s < 0 ? errno : 0;
    if (s >= 0)
        close(s);
    f->ptrace = s_errno((int)ptrace(PTRACE_TRACEME, 0, NULL, NULL));
    f->env = getenv("QUERN_TEST_SECRET") ? 0 : ENOENT;
    f->fd_kept = s_errno(fcntl(keep, F_GETFD));
    f->fd_closed = s_errno(fcntl(leak, F_GETFD));
    struct rlimit r;
    getrlimit(RLIMIT_CORE, &r);
    f->core = (long long)r.rlim_cur;
    getrlimit(RLIMIT_AS, &r);
    f->as = (long long)r.rlim_cur;
    getrlimit(RLIMIT_CPU, &r);
    f->cpu = (long long)r.rlim_cur;
    getrlimit(RLIMIT_NPROC, &r);
    f->nproc = (long long)r.rlim_cur;
}

/* Run s_inside in a child; what it found. */
static found s_probe(unsigned layers)
{
    int pfd[2];
    cr_assert_eq(pipe(pfd), 0);
    int leak = open("/dev/null", O_RDONLY); /* not CLOEXEC, not kept */
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        found f;
        memset(&f, 0, sizeof f);
        close(pfd[0]);
        s_inside(layers, pfd[1], leak, &f);
        ssize_t n = write(pfd[1], &f, sizeof f);
        _exit(n == (ssize_t)sizeof f ? 0 : 1);
    }
    close(pfd[1]);
    close(leak);
    found f;
    memset(&f, 0xff, sizeof f);
    ssize_t n = read(pfd[0], &f, sizeof f);
    close(pfd[0]);
    int st = 0;
    waitpid(pid, &st, 0);
    cr_assert_eq(n, (ssize_t)sizeof f, "the child said nothing (status %d)",
                 st);
    return f;
}

static char *top; /* s_setup's folder, removed by s_teardown */

static void s_setup(void)
{
    top = qn_test_tmpdir();
    qn_buf b = {0};
    qn_buf_printf(&b, "%s/work/attempt", top);
    dir = b.data;
    qn_buf t = {0};
    qn_buf_printf(&t, "%s/tmp", dir);
    cr_assert_eq(qn_mkdirs(t.data, 0755), 0);
    qn_buf_release(&t);
    qn_buf s = {0};
    qn_buf_printf(&s, "%s/../secret", dir);
    cr_assert_eq(qn_write_file_atomic(s.data, "key", 3), 0);
    qn_buf_release(&s);
}

static void s_teardown(void)
{
    qn_rmtree(top);
    free(top);
    top = NULL;
    free(dir);
    dir = NULL;
}

Test(sandbox, a_task_inside_reaches_only_what_it_was_given)
{
    s_setup();
    int abi = 0;
    unsigned offered = qn_sandbox_probe(0, &abi);
    cr_assert(offered & QN_SB_LANDLOCK_FS, "no Landlock here (ABI %d)", abi);
    found f = s_probe(offered);
    cr_assert_eq(f.enter, 0);
    cr_assert_eq(f.read_secret, EACCES, "read a file not given: %d",
                 f.read_secret);
    cr_assert_eq(f.write_outside, EACCES);
    cr_assert_eq(f.write_tmp, 0, "cannot write its own tmp/: %s",
                 strerror(f.write_tmp));
    cr_assert_eq(f.read_usr, 0, "cannot read /usr/share: %s",
                 strerror(f.read_usr));
    cr_assert_eq(f.tcp, EACCES);
    cr_assert_eq(f.udp_socket, EACCES);
    cr_assert_eq(f.ptrace, EPERM);
    cr_assert_eq(f.env, ENOENT, "the environment was not cleared");
    cr_assert_eq(f.fd_kept, 0);
    cr_assert_eq(f.fd_closed, EBADF, "a descriptor not kept reached it");
    cr_assert_eq(f.core, 0, "it may dump core");
    cr_assert_eq(f.as, 512ll << 20);
    cr_assert_eq(f.cpu, 60);
    cr_assert_eq(f.nproc, 100);
    s_teardown();
}

/* A task spinning past its CPU time is stopped by the kernel. */
Test(sandbox, cpu_time_runs_out)
{
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        qn_sandbox sb = {.layers = QN_SB_LIMITS, .plugin_fd = -1, .cpu_s = 1};
        char err[256];
        if (qn_sandbox_enter(&sb, err, sizeof err) < 0)
            _exit(3);
        for (volatile unsigned long i = 0;; i++)
            ;
    }
    int st = 0;
    cr_assert_eq(waitpid(pid, &st, 0), pid);
    cr_assert(WIFSIGNALED(st) && WTERMSIG(st) == SIGXCPU,
              "status %d: not stopped at its CPU limit", st);
}

/* Each progress report gives a task, and what it started, its timeout's
 * worth of CPU time more (the soft limit; the hard one, unlimited, stays). */
Test(sandbox, progress_moves_the_cpu_limit_on)
{
    int pfd[2], kid[2];
    cr_assert_eq(pipe(pfd), 0);
    cr_assert_eq(pipe(kid), 0);
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) { /* the task: a group of its own, and a child in it */
        close(pfd[1]);
        setpgid(0, 0);
        struct rlimit r = {5, RLIM_INFINITY};
        setrlimit(RLIMIT_CPU, &r);
        pid_t g = fork();
        if (g == 0) {
            char c;
            _exit(read(pfd[0], &c, 1) == 0 ? 0 : 1);
        }
        ssize_t n = write(kid[1], &g, sizeof g);
        char c;
        n += read(pfd[0], &c, 1); /* until the test is done */
        waitpid(g, NULL, 0);
        _exit(n == sizeof g ? 0 : 1);
    }
    close(pfd[0]);
    pid_t g = 0;
    cr_assert_eq(read(kid[0], &g, sizeof g), (ssize_t)sizeof g);
    close(kid[0]);
    close(kid[1]);
    static qn_worker w; /* only what the function reads */
    w.sb.cpu_kernel = 1;
    qn_attempt a = {.pid = pid, .cpu_timeout_ms = 30000};
    qn_wsandbox_progress(&w, &a, qn_now_ms());
    cr_assert_gt(a.cpu_rearm_at, 0);
    struct rlimit r, rg;
    cr_assert_eq(prlimit(pid, RLIMIT_CPU, NULL, &r), 0);
    cr_assert_eq(prlimit(g, RLIMIT_CPU, NULL, &rg), 0);
    close(pfd[1]);
    waitpid(pid, NULL, 0);
    cr_assert_eq(r.rlim_cur, 30, "soft limit %llu",
                 (unsigned long long)r.rlim_cur);
    cr_assert_eq(r.rlim_max, RLIM_INFINITY);
    cr_assert_eq(rg.rlim_cur, 30, "its child's soft limit stayed %llu",
                 (unsigned long long)rg.rlim_cur);
}

/* A worker that cannot move the limit on watches the CPU time itself. */
Test(sandbox, a_task_spinning_past_its_cpu_time_is_killed_by_the_worker)
{
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        setpgid(0, 0);
        for (volatile unsigned long i = 0;; i++)
            ;
    }
    static qn_worker w;
    w.sb.cpu_kernel = 0;
    qn_attempt a = {.pid = pid, .cpu_timeout_ms = 1000};
    w.att.v = &a;
    w.att.n = 1;
    qn_wsandbox_progress(&w, &a, qn_now_ms()); /* its start: 0 s */
    int st = 0;
    for (int i = 0; i < 100 && waitpid(pid, &st, WNOHANG) == 0; i++) {
        w.att.next_cpu_check = 0;
        qn_wsandbox_check_cpu(&w, qn_now_ms());
        usleep(50 * 1000);
    }
    kill(pid, SIGKILL); /* bounded: whatever happened, it ends */
    waitpid(pid, &st, 0);
    w.att.v = NULL;
    w.att.n = 0;
    cr_assert_geq(a.cpu_killed, 2, "killed after %ld s past its report",
                  a.cpu_killed);
    cr_assert(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
}
