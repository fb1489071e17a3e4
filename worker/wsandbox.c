/*
 * wsandbox.c -- see wsandbox.h.
 */
#include "wsandbox.h"

#include "log.h"
#include "sandbox.h"

#include <dirent.h>
#include <linux/capability.h>
#include <signal.h>
#include <sys/syscall.h>
#include <errno.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#define CPU_GRACE_S 5 /* SIGXCPU at the limit, SIGKILL this much later */
#define REARM_MS                                                               \
    1000 /* a task's CPU limits are moved on at most this often                \
          */

/* The user tasks run as, when the worker runs as root. 0 or -1. */
static int s_task_user(qn_worker *w, char *err, size_t errcap)
{
    const char *name = w->cfg.task_user ? w->cfg.task_user : "nobody";
    struct passwd *pw = getpwnam(name);
    if (!pw) {
        snprintf(err, errcap, "--task-user %s: no such user", name);
        return -1;
    }
    if (pw->pw_uid == 0 || pw->pw_gid == 0) {
        snprintf(err, errcap,
                 "--task-user %s: is root (uid %u gid %u); "
                 "tasks must run as another user",
                 name, (unsigned)pw->pw_uid, (unsigned)pw->pw_gid);
        return -1;
    }
    w->sb.uid = pw->pw_uid;
    w->sb.gid = pw->pw_gid;
    snprintf(w->sb.user, sizeof w->sb.user, "%s", name);
    return 0;
}

int qn_wsandbox_decide(int mode, int root, unsigned offered, int abi,
                       unsigned *layers, unsigned *missing, char *err,
                       size_t errcap)
{
    /* As another user only when there is another user to be. */
    unsigned wanted = root ? QN_SB_ALL : QN_SB_ALL & ~QN_SB_TASK_USER;
    char names[160];
    *layers = *missing = 0;
    if (mode == QN_SANDBOX_OFF)
        return 0;
    *missing = wanted & ~offered;
    if (*missing && mode == QN_SANDBOX_REQUIRE) {
        snprintf(err, errcap,
                 "--sandbox require: this kernel lacks %s (Landlock ABI %d)",
                 qn_sandbox_layers_str(*missing, names, sizeof names), abi);
        return -1;
    }
    *layers = wanted & offered;
    return 0;
}

/* Does this process hold CAP_SYS_RESOURCE (so may raise another user's
 * process's hard limits)? */
static int s_can_raise_limits(void)
{
    struct __user_cap_header_struct h = {.version =
                                             _LINUX_CAPABILITY_VERSION_3};
    struct __user_cap_data_struct d[2];
    memset(d, 0, sizeof d);
    if (syscall(SYS_capget, &h, d) < 0)
        return 0;
    return (d[CAP_SYS_RESOURCE / 32].effective >> (CAP_SYS_RESOURCE % 32)) & 1;
}

int qn_wsandbox_setup(qn_worker *w, char *err, size_t errcap)
{
    int root = geteuid() == 0;
    qn_sandbox_mode mode = (qn_sandbox_mode)w->cfg.sandbox;
    if (w->cfg.task_user && !root) {
        snprintf(err, errcap,
                 "--task-user %s: only a worker running as root "
                 "runs tasks as another user",
                 w->cfg.task_user);
        return -1;
    }
    if (!root || mode == QN_SANDBOX_OFF) {
        struct passwd *pw = getpwuid(geteuid());
        snprintf(w->sb.user, sizeof w->sb.user, "%s",
                 pw ? pw->pw_name : "the worker's");
        w->sb.uid = geteuid();
        w->sb.gid = getegid();
    } else if (s_task_user(w, err, errcap) < 0) {
        return -1;
    }
    /* A task of our own user: its soft limit moves on (its hard one is
     * left unlimited); another user's: both, given CAP_SYS_RESOURCE. */
    w->sb.cpu_kernel = !root || s_can_raise_limits();
    int abi = 0;
    unsigned offered = qn_sandbox_probe(root, &abi);
    char names[160];
    if (qn_wsandbox_decide(mode, root, offered, abi, &w->sb.layers,
                           &w->sb.missing, err, errcap) < 0)
        return -1;
    if (mode == QN_SANDBOX_OFF) {
        qn_warn("worker: --sandbox off: tasks run with all of this worker's "
                "rights (for debugging only)");
        return 0;
    }
    if (w->sb.missing)
        qn_warn("worker: tasks run without %s: this kernel lacks it "
                "(Landlock ABI %d)",
                qn_sandbox_layers_str(w->sb.missing, names, sizeof names), abi);
    qn_info("worker: tasks run as %s in a sandbox of %s", w->sb.user,
            qn_sandbox_layers_str(w->sb.layers, names, sizeof names));
    return 0;
}

void qn_wsandbox_spec(const qn_worker *w, Quern__TaskSpec *spec)
{
    spec->sandbox = w->sb.layers;
    spec->task_uid = w->sb.uid;
    spec->task_gid = w->sb.gid;
    spec->task_mem_bytes = (uint64_t)w->cfg.task_mem_mb << 20;
    if (!w->sb.cpu_kernel)
        spec->task_timeout_ms = 0; /* a limit we could not move on: the
                                      worker watches the CPU time itself */
}

/* The names of bits into v (from n's storage at *used). */
static size_t s_names(unsigned bits, char **v, qn_wsandbox_names *n,
                      size_t *used)
{
    size_t k = 0;
    for (unsigned b = 1; b && b <= QN_SB_ALL; b <<= 1)
        if ((bits & b) && k < 8 && *used < 16) {
            char *s = n->names[(*used)++];
            snprintf(s, sizeof n->names[0], "%s", qn_sandbox_layer_name(b));
            v[k++] = s;
        }
    return k;
}

void qn_wsandbox_hello(const qn_worker *w, Quern__WorkerHello *h,
                       qn_wsandbox_names *n)
{
    size_t used = 0;
    h->sandbox_mode =
        (char *)qn_sandbox_mode_name((qn_sandbox_mode)w->cfg.sandbox);
    h->n_sandbox = s_names(w->sb.layers, n->layers, n, &used);
    h->sandbox = n->layers;
    h->n_sandbox_missing = s_names(w->sb.missing, n->missing, n, &used);
    h->sandbox_missing = n->missing;
    h->task_user = (char *)w->sb.user;
}

/* Of process pid: its process group and the CPU seconds it has used. 0,
 * or -1 (it is gone). */
static int s_stat(pid_t pid, pid_t *group, long *cpu_s)
{
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "re");
    if (!f)
        return -1;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    const char *p = strrchr(buf, ')'); /* past the command's name */
    int pgrp = 0;
    unsigned long utime = 0, stime = 0;
    if (!p ||
        sscanf(p + 1, " %*c %*d %d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu",
               &pgrp, &utime, &stime) != 3)
        return -1;
    *group = pgrp;
    *cpu_s = (long)((utime + stime) / (unsigned long)sysconf(_SC_CLK_TCK));
    return 0;
}

/* Give pid, which has used cpu_s, timeout_ms more CPU time. */
static void s_rearm(pid_t pid, long cpu_s, uint32_t timeout_ms)
{
    struct rlimit old;
    if (prlimit(pid, RLIMIT_CPU, NULL, &old) < 0)
        return;
    /* A finite hard limit (a task as another user, which cannot raise
     * its own) moves on too; an infinite one (a task of the worker's own
     * user, whose hard limit the worker could not raise) stays. */
    rlim_t soft = (rlim_t)cpu_s + (timeout_ms + 999) / 1000;
    struct rlimit r = {soft, old.rlim_max == RLIM_INFINITY
                                 ? RLIM_INFINITY
                                 : soft + CPU_GRACE_S};
    if (prlimit(pid, RLIMIT_CPU, &r, NULL) < 0 && errno != ESRCH)
        qn_debug("worker: cannot move process %d's CPU limit on: %s", (int)pid,
                 strerror(errno));
}

void qn_wsandbox_progress(const qn_worker *w, qn_attempt *a, int64_t now)
{
    pid_t pid = a->pid, group;
    long cpu;
    if (!a->cpu_timeout_ms || pid <= 0 || now < a->cpu_rearm_at)
        return;
    a->cpu_rearm_at = now + REARM_MS;
    if (s_stat(pid, &group, &cpu) < 0)
        return;
    a->cpu_at_progress = cpu;
    if (!w->sb.cpu_kernel)
        return;
    s_rearm(pid, cpu, a->cpu_timeout_ms);
    /* The processes the task started, in its group, have limits of their
     * own (inherited): they move on with it. */
    DIR *d = opendir("/proc");
    struct dirent *e;
    while (d && (e = readdir(d))) {
        char *end;
        long other = strtol(e->d_name, &end, 10);
        if (*end || other <= 0 || other == pid)
            continue;
        if (s_stat((pid_t)other, &group, &cpu) == 0 && group == pid)
            s_rearm((pid_t)other, cpu, a->cpu_timeout_ms);
    }
    if (d)
        closedir(d);
}

int64_t qn_wsandbox_cpu_due(const qn_worker *w)
{
    return w->sb.cpu_kernel || !w->att.n ? INT64_MAX : w->att.next_cpu_check;
}

void qn_wsandbox_check_cpu(qn_worker *w, int64_t now)
{
    if (w->sb.cpu_kernel || now < w->att.next_cpu_check)
        return;
    w->att.next_cpu_check = now + REARM_MS;
    for (size_t i = 0; i < w->att.n; i++) {
        qn_attempt *a = &w->att.v[i];
        pid_t group;
        long cpu;
        if (!a->cpu_timeout_ms || a->pid <= 0 || a->cpu_killed ||
            a->cancelled || s_stat(a->pid, &group, &cpu) < 0)
            continue;
        long over = cpu - a->cpu_at_progress;
        if (over * 1000 > (long)a->cpu_timeout_ms) {
            a->cpu_killed = over;
            kill(-a->pid, SIGKILL);
        }
    }
}
