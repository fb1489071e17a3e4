/*
 * sandbox.c -- see sandbox.h.
 *
 * Landlock's interface is declared here, as the kernel documents it
 * (Documentation/userspace-api/landlock.rst): Debian's headers describe
 * an older ABI without the network and scope fields. The ruleset
 * attribute is always passed whole; a kernel of an older ABI accepts it
 * as long as the fields it does not know are zero, which they are when
 * the probe said that ABI lacks them.
 */
#include "sandbox.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/seccomp.h>
#include <sched.h>
#include <seccomp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

/* ---- Landlock's user-space interface ----------------------------------- */

#define LL_CREATE_RULESET_VERSION (1u << 0)
#define LL_RULE_PATH_BENEATH 1

#define LL_FS_EXECUTE (1ull << 0)
#define LL_FS_WRITE_FILE (1ull << 1)
#define LL_FS_READ_FILE (1ull << 2)
#define LL_FS_READ_DIR (1ull << 3)
#define LL_FS_REMOVE_DIR (1ull << 4)
#define LL_FS_REMOVE_FILE (1ull << 5)
#define LL_FS_MAKE_CHAR (1ull << 6)
#define LL_FS_MAKE_DIR (1ull << 7)
#define LL_FS_MAKE_REG (1ull << 8)
#define LL_FS_MAKE_SOCK (1ull << 9)
#define LL_FS_MAKE_FIFO (1ull << 10)
#define LL_FS_MAKE_BLOCK (1ull << 11)
#define LL_FS_MAKE_SYM (1ull << 12)
#define LL_FS_REFER (1ull << 13)     /* ABI 2 */
#define LL_FS_TRUNCATE (1ull << 14)  /* ABI 3 */
#define LL_FS_IOCTL_DEV (1ull << 15) /* ABI 5 */

#define LL_NET_BIND_TCP (1ull << 0) /* ABI 4 */
#define LL_NET_CONNECT_TCP (1ull << 1)

#define LL_SCOPE_ABSTRACT_UNIX_SOCKET (1ull << 0) /* ABI 6 */
#define LL_SCOPE_SIGNAL (1ull << 1)

struct ll_ruleset_attr {
    uint64_t handled_access_fs;
    uint64_t handled_access_net;
    uint64_t scoped;
};

struct ll_path_beneath_attr {
    uint64_t allowed_access;
    int32_t parent_fd;
} __attribute__((packed));

/* Rights that make sense on a file (not a folder). */
#define LL_FILE_RIGHTS                                                         \
    (LL_FS_EXECUTE | LL_FS_WRITE_FILE | LL_FS_READ_FILE | LL_FS_TRUNCATE |     \
     LL_FS_IOCTL_DEV)
#define LL_READ (LL_FS_READ_FILE | LL_FS_READ_DIR)
#define LL_READ_EXEC (LL_READ | LL_FS_EXECUTE)

static int s_landlock_abi(void)
{
    long abi = syscall(SYS_landlock_create_ruleset, NULL, 0,
                       LL_CREATE_RULESET_VERSION);
    return abi < 0 ? 0 : (int)abi;
}

/* The file rights Landlock ABI abi handles. */
static uint64_t s_fs_handled(int abi)
{
    uint64_t m = (LL_FS_MAKE_SYM << 1) - 1; /* ABI 1 */
    if (abi >= 2)
        m |= LL_FS_REFER;
    if (abi >= 3)
        m |= LL_FS_TRUNCATE;
    if (abi >= 5)
        m |= LL_FS_IOCTL_DEV;
    return m;
}

/* ---- names and levels ---------------------------------------------------- */

static const char *const s_layer_names[] = {
    "landlock-fs", "landlock-net", "landlock-scope",
    "seccomp",     "task-user",    "limits",
};

const char *qn_sandbox_layer_name(unsigned bit)
{
    for (unsigned i = 0; i < sizeof s_layer_names / sizeof *s_layer_names; i++)
        if (bit == 1u << i)
            return s_layer_names[i];
    return "?";
}

const char *qn_sandbox_layers_str(unsigned bits, char *buf, size_t cap)
{
    size_t at = 0;
    buf[0] = '\0';
    for (unsigned i = 0; i < sizeof s_layer_names / sizeof *s_layer_names; i++)
        if (bits & (1u << i)) {
            int n = snprintf(buf + at, cap - at, "%s%s", at ? "," : "",
                             s_layer_names[i]);
            if (n < 0 || (size_t)n >= cap - at)
                break;
            at += (size_t)n;
        }
    if (!at)
        snprintf(buf, cap, "none");
    return buf;
}

int qn_sandbox_mode_parse(const char *s, qn_sandbox_mode *mode)
{
    if (strcmp(s, "auto") == 0)
        *mode = QN_SANDBOX_AUTO;
    else if (strcmp(s, "require") == 0)
        *mode = QN_SANDBOX_REQUIRE;
    else if (strcmp(s, "off") == 0)
        *mode = QN_SANDBOX_OFF;
    else
        return -1;
    return 0;
}

const char *qn_sandbox_mode_name(qn_sandbox_mode mode)
{
    return mode == QN_SANDBOX_REQUIRE ? "require"
           : mode == QN_SANDBOX_OFF   ? "off"
                                      : "auto";
}

unsigned qn_sandbox_probe(int as_root, int *abi_out)
{
    unsigned bits = QN_SB_LIMITS;
    int abi = s_landlock_abi();
    if (abi >= 1)
        bits |= QN_SB_LANDLOCK_FS;
    if (abi >= 4)
        bits |= QN_SB_LANDLOCK_NET;
    if (abi >= 6)
        bits |= QN_SB_LANDLOCK_SCOPE;
    uint32_t action = SECCOMP_RET_ERRNO;
    if (syscall(SYS_seccomp, SECCOMP_GET_ACTION_AVAIL, 0, &action) == 0)
        bits |= QN_SB_SECCOMP;
    if (as_root)
        bits |= QN_SB_TASK_USER;
    if (abi_out)
        *abi_out = abi;
    return bits;
}

/* ---- limits, environment, descriptors ------------------------------------ */

const char *const qn_sandbox_env[] = {
    "PATH",         /* /usr/local/bin:/usr/bin:/bin */
    "HOME",         /* the attempt's folder */
    "TMPDIR",       /* its tmp/ */
    "LANG",         /* C.UTF-8 */
    "QUERN_JOB_ID", /* the job */
    "QUERN_TASK",   /* "map 3 attempt 1" */
    NULL,
};

static void s_environment(const qn_sandbox *sb)
{
    clearenv();
    setenv("PATH", "/usr/local/bin:/usr/bin:/bin", 1);
    if (sb->workdir) {
        /* The folder by its name when the task's user can walk to it;
         * else (a folder above it is closed to that user) by the current
         * directory's, which every process of the task starts in. */
        const char *dir =
            access(sb->workdir, X_OK) == 0 ? sb->workdir : "/proc/self/cwd";
        char tmp[4096];
        snprintf(tmp, sizeof tmp, "%s/tmp", dir);
        setenv("HOME", dir, 1);
        setenv("TMPDIR", tmp, 1);
    }
    setenv("LANG", "C.UTF-8", 1);
    if (sb->job_id)
        setenv("QUERN_JOB_ID", sb->job_id, 1);
    if (sb->task)
        setenv("QUERN_TASK", sb->task, 1);
}

static int s_cmp_int(const void *a, const void *b)
{
    int x = *(const int *)a, y = *(const int *)b;
    return (x > y) - (x < y);
}

/* close_range(lo, hi), or on a kernel without it (before 5.9) each
 * open descriptor in that range. 0 or -1. */
static int s_close_range(unsigned lo, unsigned hi)
{
    if (syscall(SYS_close_range, lo, hi, 0) == 0)
        return 0;
    if (errno != ENOSYS)
        return -1;
    DIR *d = opendir("/proc/self/fd");
    if (!d)
        return -1;
    int self = dirfd(d);
    struct dirent *e;
    while ((e = readdir(d))) {
        char *end;
        unsigned long fd = strtoul(e->d_name, &end, 10);
        if (*end == '\0' && end != e->d_name && (int)fd != self && fd >= lo &&
            fd <= hi)
            close((int)fd);
    }
    closedir(d);
    return 0;
}

/* Close every descriptor from 3 up but those sb keeps. */
static int s_close_fds(const qn_sandbox *sb)
{
    int keep[64];
    size_t n = 0;
    for (size_t i = 0; i < sb->nkeep && n < 63; i++)
        if (sb->keep_fds[i] >= 3)
            keep[n++] = sb->keep_fds[i];
    if (sb->plugin_fd >= 3)
        keep[n++] = sb->plugin_fd;
    qsort(keep, n, sizeof *keep, s_cmp_int);
    unsigned lo = 3;
    for (size_t i = 0; i < n; i++) {
        if ((unsigned)keep[i] > lo &&
            s_close_range(lo, (unsigned)keep[i] - 1) < 0)
            return -1;
        if ((unsigned)keep[i] + 1 > lo)
            lo = (unsigned)keep[i] + 1;
    }
    return s_close_range(lo, ~0u);
}

static int s_limit(int what, rlim_t n)
{
    struct rlimit r = {n, n};
    return setrlimit(what, &r);
}

static int s_limits(const qn_sandbox *sb, char *err, size_t cap)
{
    const char *bad = NULL;
    if (s_limit(RLIMIT_CORE, 0) < 0)
        bad = "RLIMIT_CORE";
    else if (sb->mem_bytes && s_limit(RLIMIT_AS, sb->mem_bytes) < 0)
        bad = "RLIMIT_AS";
    else if (sb->nproc && s_limit(RLIMIT_NPROC, sb->nproc) < 0)
        bad = "RLIMIT_NPROC";
    else if (sb->cpu_s) {
        /* SIGXCPU at the limit and, as another user, SIGKILL a little
         * later: the worker moves both on while the task makes progress
         * (a worker of the task's own user may only move the first). */
        struct rlimit r = {sb->cpu_s, (sb->layers & QN_SB_TASK_USER)
                                          ? (rlim_t)sb->cpu_s + 5
                                          : RLIM_INFINITY};
        if (setrlimit(RLIMIT_CPU, &r) < 0)
            bad = "RLIMIT_CPU";
    }
    if (!bad && s_close_fds(sb) < 0)
        bad = "closing the worker's descriptors";
    if (!bad && prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
        bad = "no_new_privs";
    if (bad) {
        snprintf(err, cap, "sandbox: %s: %s", bad, strerror(errno));
        return -1;
    }
    return 0;
}

static int s_user(const qn_sandbox *sb, char *err, size_t cap)
{
    if (setgroups(0, NULL) < 0 || setresgid(sb->gid, sb->gid, sb->gid) < 0 ||
        setresuid(sb->uid, sb->uid, sb->uid) < 0 || getuid() != sb->uid ||
        geteuid() != sb->uid) {
        snprintf(err, cap, "sandbox: cannot run as uid %u gid %u: %s",
                 (unsigned)sb->uid, (unsigned)sb->gid, strerror(errno));
        return -1;
    }
    /* A change of user clears the parent-death signal: ask again, and
     * make sure the worker did not go meanwhile. */
    if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) < 0 ||
        (sb->parent > 0 && getppid() != sb->parent)) {
        snprintf(err, cap, "sandbox: the worker is gone");
        return -1;
    }
    return 0;
}

/* ---- Landlock ------------------------------------------------------------ */

/* Allow access beneath fd (masked to what the ruleset handles and, for a
 * file, to a file's rights). 0 or -1 with errno. */
static int s_rule_fd(int ruleset, int fd, uint64_t access, uint64_t handled)
{
    struct stat st;
    if (fstat(fd, &st) < 0)
        return -1;
    if (!S_ISDIR(st.st_mode))
        access &= LL_FILE_RIGHTS;
    struct ll_path_beneath_attr pb = {.allowed_access = access & handled,
                                      .parent_fd = fd};
    if (!pb.allowed_access)
        return 0;
    return (int)syscall(SYS_landlock_add_rule, ruleset, LL_RULE_PATH_BENEATH,
                        &pb, 0);
}

/* The same for path; one that does not exist is skipped. */
static int s_rule(int ruleset, const char *path, uint64_t access,
                  uint64_t handled)
{
    int fd = open(path, O_PATH | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT || errno == ENOTDIR ? 0 : -1;
    int rc = s_rule_fd(ruleset, fd, access, handled);
    int e = errno;
    close(fd);
    errno = e;
    return rc;
}

/* What every task may read: libraries, data, and the few /etc files libc
 * reads; and the devices anything may use. */
static const struct {
    const char *path;
    uint64_t access;
} s_system[] = {
    {"/usr", LL_READ_EXEC},
    {"/lib", LL_READ_EXEC},
    {"/lib64", LL_READ_EXEC},
    {"/lib32", LL_READ_EXEC},
    {"/libx32", LL_READ_EXEC},
    {"/bin", LL_READ_EXEC},
    {"/sbin", LL_READ_EXEC},
    {"/etc/ld.so.cache", LL_FS_READ_FILE},
    {"/etc/ld.so.conf", LL_FS_READ_FILE},
    {"/etc/ld.so.conf.d", LL_READ},
    {"/etc/ld.so.preload", LL_FS_READ_FILE},
    {"/etc/localtime", LL_FS_READ_FILE},
    {"/etc/nsswitch.conf", LL_FS_READ_FILE},
    {"/etc/passwd", LL_FS_READ_FILE},
    {"/etc/group", LL_FS_READ_FILE},
    {"/etc/alternatives", LL_READ_EXEC},
    {"/dev/null", LL_FS_READ_FILE | LL_FS_WRITE_FILE | LL_FS_TRUNCATE},
    {"/dev/zero", LL_FS_READ_FILE},
    {"/dev/full", LL_FS_READ_FILE | LL_FS_WRITE_FILE},
    {"/dev/urandom", LL_FS_READ_FILE},
    {"/dev/random", LL_FS_READ_FILE},
    {"/proc/self", LL_READ},
    {"/sys/devices/system/cpu", LL_READ},
};

/* What a task may do in its tmp/: anything but run programs and make
 * devices. */
#define LL_SCRATCH                                                             \
    (LL_READ | LL_FS_WRITE_FILE | LL_FS_REMOVE_DIR | LL_FS_REMOVE_FILE |       \
     LL_FS_MAKE_DIR | LL_FS_MAKE_REG | LL_FS_MAKE_SOCK | LL_FS_MAKE_FIFO |     \
     LL_FS_MAKE_SYM | LL_FS_REFER | LL_FS_TRUNCATE)

static int s_landlock_rules(int rs, const qn_sandbox *sb, uint64_t handled,
                            const char **what)
{
    for (size_t i = 0; i < sizeof s_system / sizeof *s_system; i++)
        if (s_rule(rs, s_system[i].path, s_system[i].access, handled) < 0) {
            *what = s_system[i].path;
            return -1;
        }
    if (sb->workdir) {
        char tmp[4096];
        snprintf(tmp, sizeof tmp, "%s/tmp", sb->workdir);
        if (s_rule(rs, ".", LL_READ, handled) < 0) {
            *what = sb->workdir;
            return -1;
        }
        if (s_rule(rs, "tmp", LL_SCRATCH, handled) < 0) {
            *what = tmp;
            return -1;
        }
    }
    if (sb->plugin_fd >= 0 &&
        s_rule_fd(rs, sb->plugin_fd, LL_FS_READ_FILE | LL_FS_EXECUTE, handled) <
            0) {
        *what = "the plugin";
        return -1;
    }
    return 0;
}

static int s_landlock(const qn_sandbox *sb, char *err, size_t cap)
{
    int abi = s_landlock_abi();
    struct ll_ruleset_attr attr = {0};
    if (sb->layers & QN_SB_LANDLOCK_FS)
        attr.handled_access_fs = s_fs_handled(abi);
    if ((sb->layers & QN_SB_LANDLOCK_NET) && abi >= 4)
        attr.handled_access_net = LL_NET_BIND_TCP | LL_NET_CONNECT_TCP;
    if ((sb->layers & QN_SB_LANDLOCK_SCOPE) && abi >= 6)
        attr.scoped = LL_SCOPE_ABSTRACT_UNIX_SOCKET | LL_SCOPE_SIGNAL;
    if (!attr.handled_access_fs && !attr.handled_access_net && !attr.scoped)
        return 0;
    int rs = (int)syscall(SYS_landlock_create_ruleset, &attr, sizeof attr, 0);
    if (rs < 0) {
        snprintf(err, cap, "sandbox: Landlock (ABI %d): %s", abi,
                 strerror(errno));
        return -1;
    }
    const char *what = NULL;
    int rc = attr.handled_access_fs
                 ? s_landlock_rules(rs, sb, attr.handled_access_fs, &what)
                 : 0;
    if (rc < 0)
        snprintf(err, cap, "sandbox: Landlock rule for %s: %s", what,
                 strerror(errno));
    else if (syscall(SYS_landlock_restrict_self, rs, 0) < 0) {
        snprintf(err, cap, "sandbox: Landlock: %s", strerror(errno));
        rc = -1;
    }
    close(rs);
    return rc;
}

/* ---- seccomp ------------------------------------------------------------- */

/* System calls a task never needs: they fail with EPERM. */
static const char *const s_denied[] = {
    "ptrace",
    "process_vm_readv",
    "process_vm_writev",
    "process_madvise",
    "pidfd_getfd",
    "kcmp",
    "mount",
    "umount2",
    "move_mount",
    "open_tree",
    "fsopen",
    "fsconfig",
    "fsmount",
    "fspick",
    "mount_setattr",
    "pivot_root",
    "chroot",
    "unshare",
    "setns",
    "bpf",
    "keyctl",
    "add_key",
    "request_key",
    "kexec_load",
    "kexec_file_load",
    "init_module",
    "finit_module",
    "delete_module",
    "perf_event_open",
    "userfaultfd",
    "io_uring_setup",
    "io_uring_enter",
    "io_uring_register",
    "open_by_handle_at",
    "name_to_handle_at",
    "fanotify_init",
    "syslog",
    "acct",
    "swapon",
    "swapoff",
    "reboot",
    "settimeofday",
    "clock_settime",
    "clock_adjtime",
    "quotactl",
    "iopl",
    "ioperm",
    "vhangup",
    "lookup_dcookie",
    "uselib",
};

/* Signals: none to the worker (nor to every process, pid -1). Landlock's
 * scope, where the kernel has it, confines them to the sandbox. */
static int s_seccomp_signals(scmp_filter_ctx f, pid_t worker)
{
    static const char *const one_pid[] = {
        "kill",      "tkill", "tgkill", "rt_sigqueueinfo", "rt_tgsigqueueinfo",
        "pidfd_open"};
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < sizeof one_pid / sizeof *one_pid; i++) {
        int nr = seccomp_syscall_resolve_name(one_pid[i]);
        if (nr == __NR_SCMP_ERROR)
            continue;
        rc = seccomp_rule_add(
            f, SCMP_ACT_ERRNO(EPERM), nr, 1,
            SCMP_A0(SCMP_CMP_MASKED_EQ, 0xffffffffu, (uint32_t)worker));
        if (rc == 0 && strcmp(one_pid[i], "kill") == 0)
            rc = seccomp_rule_add(
                f, SCMP_ACT_ERRNO(EPERM), nr, 1,
                SCMP_A0(SCMP_CMP_MASKED_EQ, 0xffffffffu, 0xffffffffu));
    }
    /* ... nor to its process group. */
    pid_t group = getpgid(worker);
    if (rc == 0 && group > 0)
        rc = seccomp_rule_add(
            f, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(kill), 1,
            SCMP_A0(SCMP_CMP_MASKED_EQ, 0xffffffffu, (uint32_t)-group));
    return rc;
}

static int s_seccomp(char *err, size_t cap)
{
    scmp_filter_ctx f = seccomp_init(SCMP_ACT_ALLOW);
    if (!f) {
        snprintf(err, cap, "sandbox: seccomp: cannot make a filter");
        return -1;
    }
    int rc = 0;
    const char *what = "";
    for (size_t i = 0; rc == 0 && i < sizeof s_denied / sizeof *s_denied; i++) {
        int nr = seccomp_syscall_resolve_name(s_denied[i]);
        what = s_denied[i];
        if (nr != __NR_SCMP_ERROR)
            rc = seccomp_rule_add(f, SCMP_ACT_ERRNO(EPERM), nr, 0);
    }
    /* Limits: read, never raised (prlimit64 with a new limit). */
    if (rc == 0 && (what = "setrlimit"))
        rc = seccomp_rule_add(f, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(setrlimit), 0);
    if (rc == 0 && (what = "prlimit64"))
        rc = seccomp_rule_add(f, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(prlimit64), 1,
                              SCMP_A2(SCMP_CMP_NE, 0, 0));
    /* No new socket and no connection: no network at all, no netlink,
     * no named or abstract AF_UNIX socket (Landlock does not guard
     * those); socketpair() stays. */
    if (rc == 0 && (what = "socket"))
        rc = seccomp_rule_add(f, SCMP_ACT_ERRNO(EACCES), SCMP_SYS(socket), 0);
    if (rc == 0 && (what = "connect"))
        rc = seccomp_rule_add(f, SCMP_ACT_ERRNO(EACCES), SCMP_SYS(connect), 0);
    /* New namespaces through clone's flags; clone3's flags are out of
     * reach, so it is refused as unknown and libc falls back to clone. */
    static const uint64_t ns[] = {CLONE_NEWNS,    CLONE_NEWUSER, CLONE_NEWPID,
                                  CLONE_NEWNET,   CLONE_NEWUTS,  CLONE_NEWIPC,
                                  CLONE_NEWCGROUP};
    for (size_t i = 0; rc == 0 && i < sizeof ns / sizeof *ns; i++) {
        what = "clone";
        rc = seccomp_rule_add(f, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(clone), 1,
                              SCMP_A0(SCMP_CMP_MASKED_EQ, ns[i], ns[i]));
    }
    if (rc == 0 && (what = "clone3"))
        rc = seccomp_rule_add(f, SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(clone3), 0);
    if (rc == 0 && (what = "signals"))
        rc = s_seccomp_signals(f, getppid());
    if (rc == 0 && (what = "loading the filter"))
        rc = seccomp_load(f);
    seccomp_release(f);
    if (rc < 0) {
        snprintf(err, cap, "sandbox: seccomp (%s): %s", what, strerror(-rc));
        return -1;
    }
    return 0;
}

int qn_sandbox_enter(const qn_sandbox *sb, char *err, size_t errcap)
{
    if (!sb->layers)
        return 0;
    if (s_limits(sb, err, errcap) < 0)
        return -1;
    if ((sb->layers & QN_SB_TASK_USER) && s_user(sb, err, errcap) < 0)
        return -1;
    s_environment(sb); /* as the task's user: it sees what that one can */
    if ((sb->layers &
         (QN_SB_LANDLOCK_FS | QN_SB_LANDLOCK_NET | QN_SB_LANDLOCK_SCOPE)) &&
        s_landlock(sb, err, errcap) < 0)
        return -1;
    if ((sb->layers & QN_SB_SECCOMP) && s_seccomp(err, errcap) < 0)
        return -1;
    return 0;
}
