/*
 * probe.c -- a hostile job, for tests/e2e/sandbox.sh. From map (in setup)
 * and from reduce (in setup) it tries each probe of its table, things a
 * task must not be able to do and a few it must, and reports each as an
 * output record:
 *
 *     map read-shadow<TAB>denied (Permission denied)
 *     reduce connect-master<TAB>allowed
 *
 * "denied" is an EPERM or EACCES; anything else, success included, is
 * "allowed" (the call reached what it asked for). It also lists its open
 * descriptors ("map fd 3<TAB>socket:[...]"). The job succeeds whatever the
 * probes find. A probe whose argument is not given is skipped.
 *
 * Arguments: key=FILE (the worker's CURVE secret key), secret=FILE (a
 * file no job was given), workdir=DIR (the worker's work dir), outdir=DIR
 * (the job's output folder), master=PORT (on 127.0.0.1), shipped=NAME (a
 * file shipped with --file), hog=MIB (map: touch that much memory, 64 MiB
 * at a time, not checking malloc: the memory-cap test).
 */
#include "quern.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/bpf.h>
#include <netinet/in.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

/* 0 when done, else the errno of the first call that failed. */
static int s_err(int rc)
{
    return rc < 0 ? errno : 0;
}

/* Open path (as arg name's value when arg) and read a byte. */
static int s_read(quern_task *t, const char *path)
{
    if (!path)
        return -1;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return errno;
    char c;
    int e = s_err((int)read(fd, &c, 1));
    close(fd);
    (void)t;
    return e;
}

static const char *s_path(quern_task *t, const char *arg, const char *tail,
                          char *buf, size_t cap)
{
    const char *v = quern_arg(t, arg);
    if (!v)
        return NULL;
    snprintf(buf, cap, "%s%s", v, tail);
    return buf;
}

/* Create a file at path, then take it away again. */
static int s_write(const char *path)
{
    if (!path)
        return -1;
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0)
        return errno;
    close(fd);
    unlink(path);
    return 0;
}

/* Run fn in a child process (what it changes stays there): its errno. */
static int s_in_child(int (*fn)(void))
{
    pid_t pid = fork();
    if (pid < 0)
        return errno;
    if (pid == 0)
        _exit(fn() < 0 ? errno : 0);
    int st = 0;
    if (waitpid(pid, &st, 0) < 0 || !WIFEXITED(st))
        return EIO;
    return WEXITSTATUS(st);
}

static int c_traceme(void)
{
    return (int)ptrace(PTRACE_TRACEME, 0, NULL, NULL);
}

static int c_unshare(void)
{
    return unshare(CLONE_NEWUSER | CLONE_NEWNS);
}

/* ---- the probes --------------------------------------------------------- */

static int p_key(quern_task *t)
{
    return s_read(t, quern_arg(t, "key"));
}

static int p_shadow(quern_task *t)
{
    return s_read(t, "/etc/shadow");
}

static int p_secret(quern_task *t)
{
    return s_read(t, quern_arg(t, "secret"));
}

static int p_worker_id(quern_task *t)
{
    char b[4096];
    return s_read(t, s_path(t, "workdir", "/worker.id", b, sizeof b));
}

static int p_list_jobs(quern_task *t)
{
    char b[4096];
    const char *p = s_path(t, "workdir", "/jobs", b, sizeof b);
    if (!p)
        return -1;
    DIR *d = opendir(p);
    if (!d)
        return errno;
    closedir(d);
    return 0;
}

static int p_write_output(quern_task *t)
{
    char b[4096], tail[64];
    snprintf(tail, sizeof tail, "/evil-%d", (int)getpid());
    return s_write(s_path(t, "outdir", tail, b, sizeof b));
}

static int p_write_tmp(quern_task *t)
{
    char b[64];
    snprintf(b, sizeof b, "/tmp/quern-probe-%d", (int)getpid());
    (void)t;
    return s_write(b);
}

static int p_connect(quern_task *t)
{
    const char *port = quern_arg(t, "master");
    if (!port)
        return -1;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return errno;
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)atoi(port)),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    int e = s_err(connect(fd, (struct sockaddr *)&a, sizeof a));
    close(fd);
    return e;
}

static int p_udp(quern_task *t)
{
    (void)t;
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return errno;
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons(9),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    int e = s_err((int)sendto(fd, "x", 1, 0, (struct sockaddr *)&a, sizeof a));
    close(fd);
    return e;
}

static int p_signal_worker(quern_task *t)
{
    (void)t;
    return s_err(kill(getppid(), 0)); /* signal 0: asks, sends nothing */
}

static int p_worker_env(quern_task *t)
{
    char b[64];
    snprintf(b, sizeof b, "/proc/%d/environ", (int)getppid());
    return s_read(t, b);
}

static int p_inherited_env(quern_task *t)
{
    (void)t;
    return getenv("QUERN_PROBE_MARKER") ? 0 : EACCES;
}

/* The worker's environment in what the process was started with. */
static int p_start_env(quern_task *t)
{
    (void)t;
    int fd = open("/proc/self/environ", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return errno;
    char buf[65536];
    ssize_t n = read(fd, buf, sizeof buf);
    close(fd);
    if (n < 0)
        return errno;
    return memmem(buf, (size_t)n, "QUERN_PROBE_MARKER", 18) ? 0 : EACCES;
}

static int p_ptrace(quern_task *t)
{
    (void)t;
    return s_in_child(c_traceme);
}

static int p_unshare(quern_task *t)
{
    (void)t;
    return s_in_child(c_unshare);
}

static int p_bpf(quern_task *t)
{
    (void)t;
    union bpf_attr attr;
    memset(&attr, 0, sizeof attr);
    return s_err((int)syscall(SYS_bpf, BPF_MAP_CREATE, &attr, sizeof attr));
}

static int p_keyctl(quern_task *t)
{
    (void)t;
    return s_err((int)syscall(SYS_keyctl, 0 /* GET_KEYRING_ID */,
                              -3 /* the session keyring */, 0));
}

/* What a task may do. */
static int p_shipped(quern_task *t)
{
    return s_read(t, quern_arg(t, "shipped"));
}

static int p_usr_share(quern_task *t)
{
    return s_read(t, "/usr/share/common-licenses/GPL-3");
}

static int p_scratch(quern_task *t)
{
    const char *tmp = getenv("TMPDIR");
    char b[4096];
    snprintf(b, sizeof b, "%s/probe-%d", tmp ? tmp : "tmp", (int)getpid());
    (void)t;
    return s_write(b);
}

/* One line a probe. */
static const struct {
    const char *name;
    int (*fn)(quern_task *t);
} probes[] = {
    {"read-curve-key", p_key},
    {"read-shadow", p_shadow},
    {"read-unshipped-file", p_secret},
    {"read-worker-file", p_worker_id},
    {"list-work-dir", p_list_jobs},
    {"write-output-folder", p_write_output},
    {"write-tmp", p_write_tmp},
    {"connect-master", p_connect},
    {"send-udp", p_udp},
    {"signal-worker", p_signal_worker},
    {"read-worker-env", p_worker_env},
    {"inherit-env", p_inherited_env},
    {"start-env", p_start_env},
    {"ptrace", p_ptrace},
    {"unshare", p_unshare},
    {"bpf", p_bpf},
    {"keyctl", p_keyctl},
    {"ok-read-shipped", p_shipped},
    {"ok-read-usr-share", p_usr_share},
    {"ok-write-scratch", p_scratch},
};

static void s_report(quern_task *t, const char *phase, const char *what,
                     const char *result)
{
    char key[128];
    int n = snprintf(key, sizeof key, "%s %s", phase, what);
    quern_emit(t, key, (size_t)n, result, strlen(result));
}

static void s_fds(quern_task *t, const char *phase)
{
    DIR *d = opendir("/proc/self/fd");
    if (!d) {
        s_report(t, phase, "fd", strerror(errno));
        return;
    }
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.' || atoi(e->d_name) == dirfd(d))
            continue;
        char path[300], to[256] = "";
        snprintf(path, sizeof path, "/proc/self/fd/%s", e->d_name);
        ssize_t n = readlink(path, to, sizeof to - 1);
        to[n > 0 ? n : 0] = '\0';
        char what[300];
        snprintf(what, sizeof what, "fd %s", e->d_name);
        s_report(t, phase, what, to);
    }
    closedir(d);
}

static void s_probe_all(quern_task *t, const char *phase)
{
    for (size_t i = 0; i < sizeof probes / sizeof *probes; i++) {
        int e = probes[i].fn(t);
        if (e < 0)
            continue; /* not asked */
        char res[160];
        if (e == EPERM || e == EACCES)
            snprintf(res, sizeof res, "denied (%s)", strerror(e));
        else if (e)
            snprintf(res, sizeof res, "allowed (it failed otherwise: %s)",
                     strerror(e));
        else
            snprintf(res, sizeof res, "allowed");
        s_report(t, phase, probes[i].name, res);
    }
    char uid[32];
    snprintf(uid, sizeof uid, "%u", (unsigned)getuid());
    s_report(t, phase, "uid", uid);
    s_fds(t, phase);
}

static void s_hog(quern_task *t)
{
    const char *mib = quern_arg(t, "hog");
    if (!mib)
        return;
    for (long i = 0; i < atol(mib) / 64; i++) {
        char *p = malloc(64u << 20);
        memset(p, 1, 64u << 20); /* unchecked, as much careless code is */
        fprintf(stderr, "probe: %ld MiB touched\n", (i + 1) * 64);
    }
}

static int s_map(quern_task *t, const void *key, size_t klen, const void *val,
                 size_t vlen)
{
    static int probed;
    (void)key;
    (void)klen;
    (void)val;
    (void)vlen;
    if (!probed) {
        probed = 1;
        s_hog(t);
        s_probe_all(t, "map");
    }
    return 0;
}

static int s_reduce(quern_task *t, const void *key, size_t klen,
                    quern_values *vals)
{
    static int probed;
    if (!probed) {
        probed = 1;
        s_probe_all(t, "reduce");
    }
    const void *v;
    size_t vlen;
    while (quern_next(vals, &v, &vlen) > 0)
        quern_emit(t, key, klen, v, vlen);
    return 0;
}

const quern_job quern_job_v1 = {
    .abi = QUERN_ABI,
    .name = "probe",
    .map = s_map,
    .reduce = s_reduce,
};
