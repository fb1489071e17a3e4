/*
 * cluster.c -- see cluster.h.
 */
#include "cluster.h"

#include "proc.h"
#include "util.h"

#include <assert.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define START_TIMEOUT_MS 10000 /* for the master to listen */
#define STOP_GRACE_MS 5000     /* between SIGTERM and SIGKILL */

typedef struct {
    pid_t pid;
    char name[32];
    char *log;
    int exited;
    int status;
} s_daemon;

struct qn_cluster {
    char *dir;
    char endpoint[256];
    char http_url[256]; /* the status page, or "" */
    int sigfd;
    s_daemon *d; /* [0] is the master */
    size_t n, cap;
};

static int s_spawn(qn_cluster *c, const char *bin, char **argv,
                   const char *name, int ctl_fd)
{
    assert(c->n < c->cap); /* room for the master and every worker */
    s_daemon *d = &c->d[c->n];
    memset(d, 0, sizeof *d);
    snprintf(d->name, sizeof d->name, "%s", name);
    qn_buf log = {0};
    qn_buf_printf(&log, "%s/%s.log", c->dir, name);
    d->log = log.data;
    qn_spawn_opts o = {.fds = {ctl_fd},
                       .nfds = ctl_fd >= 0,
                       .stdout_path = d->log,
                       .stderr_path = d->log,
                       .new_group = 1};
    pid_t pid = qn_spawn(bin, argv, &o);
    if (pid < 0)
        return (int)pid;
    d->pid = pid;
    c->n++;
    return 0;
}

/*
 * Read the master's ready lines from fd: its endpoint, then its status
 * page's URL ("-" for none), which it writes once it listens; EOF first
 * means it failed. 0, or -1 with err.
 */
static int s_await_master(qn_cluster *c, int fd, char *err, size_t errcap)
{
    char ready[sizeof c->endpoint + sizeof c->http_url];
    size_t got = 0;
    int64_t deadline = qn_now_ms() + START_TIMEOUT_MS;
    for (;;) {
        int64_t left = deadline - qn_now_ms();
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (left <= 0 || poll(&p, 1, (int)left) == 0) {
            snprintf(err, errcap,
                     "the master did not start within %d s; "
                     "see %s/master.log",
                     START_TIMEOUT_MS / 1000, c->dir);
            return -1;
        }
        ssize_t n = read(fd, ready + got, sizeof ready - 1 - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            snprintf(err, errcap,
                     "the master failed to start; see "
                     "%s/master.log",
                     c->dir);
            return -1;
        }
        got += (size_t)n;
        ready[got] = '\0';
        char *nl = strchr(ready, '\n');
        char *nl2 = nl ? strchr(nl + 1, '\n') : NULL;
        if (nl2 || got == sizeof ready - 1) {
            if (nl)
                *nl = '\0';
            if (nl2)
                *nl2 = '\0';
            snprintf(c->endpoint, sizeof c->endpoint, "%.255s", ready);
            if (nl && strcmp(nl + 1, "-") != 0)
                snprintf(c->http_url, sizeof c->http_url, "%.255s", nl + 1);
            return 0;
        }
    }
}

/* Start the master (exe/quern-master) and wait until it listens. */
static int s_start_master(qn_cluster *c, const char *exe, const char *log_level,
                          const char *http, char *err, size_t errcap)
{
    int pfd[2];
    if (pipe2(pfd, O_CLOEXEC) < 0) {
        snprintf(err, errcap, "pipe: %s", strerror(errno));
        return -1;
    }
    qn_buf bin = {0};
    qn_buf_printf(&bin, "%s/quern-master", exe);
    char *margv[] = {(char *)"quern-master",
                     (char *)"--listen",
                     (char *)"tcp://127.0.0.1:*",
                     (char *)"--ready-fd",
                     (char *)"3",
                     (char *)"--log-level",
                     (char *)log_level,
                     (char *)"--http",
                     (char *)(http ? http : "127.0.0.1:0"),
                     NULL};
    int rc = s_spawn(c, bin.data, margv, "master", pfd[1]);
    close(pfd[1]);
    if (rc < 0)
        snprintf(err, errcap, "cannot start %s: %s", bin.data, strerror(-rc));
    else
        rc = s_await_master(c, pfd[0], err, errcap);
    close(pfd[0]);
    qn_buf_release(&bin);
    return rc < 0 ? -1 : 0;
}

/* Start the workers (exe/quern-worker), each in its own work dir. */
static int s_start_workers(qn_cluster *c, const char *exe, unsigned workers,
                           unsigned slots, unsigned task_mem_mb,
                           const char *log_level, char *err, size_t errcap)
{
    qn_buf bin = {0};
    qn_buf_printf(&bin, "%s/quern-worker", exe);
    char slot_s[16], mem_s[16];
    snprintf(slot_s, sizeof slot_s, "%u", slots);
    snprintf(mem_s, sizeof mem_s, "%u", task_mem_mb);
    int rc = 0;
    for (unsigned i = 0; rc == 0 && i < workers; i++) {
        char name[32];
        snprintf(name, sizeof name, "worker-%u", i + 1);
        qn_buf wd = {0};
        qn_buf_printf(&wd, "%s/%s", c->dir, name);
        char *wargv[] = {(char *)"quern-worker",
                         (char *)"--master",
                         c->endpoint,
                         (char *)"--slots",
                         slot_s,
                         (char *)"--work-dir",
                         wd.data,
                         (char *)"--log-level",
                         (char *)log_level,
                         task_mem_mb ? (char *)"--task-mem-mb" : NULL,
                         mem_s,
                         NULL};
        rc = s_spawn(c, bin.data, wargv, name, -1);
        qn_buf_release(&wd);
        if (rc < 0)
            snprintf(err, errcap, "cannot start %s: %s", bin.data,
                     strerror(-rc));
    }
    qn_buf_release(&bin);
    return rc < 0 ? -1 : 0;
}

qn_cluster *qn_cluster_start(unsigned workers, unsigned slots,
                             unsigned task_mem_mb, const char *log_level,
                             const char *http, int sigfd, char *err,
                             size_t errcap)
{
    char exe[PATH_MAX];
    if (qn_exe_dir(exe, sizeof exe) < 0) {
        snprintf(err, errcap, "cannot find my own executable");
        return NULL;
    }
    qn_cluster *c = qn_calloc(1, sizeof *c);
    c->sigfd = sigfd;
    c->cap = workers + 1;
    c->d = qn_calloc(c->cap, sizeof *c->d);
    const char *tmp = getenv("TMPDIR");
    qn_buf dir = {0};
    qn_buf_printf(&dir, "%s/quern-run-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(dir.data)) {
        snprintf(err, errcap, "cannot create %s: %s", dir.data,
                 strerror(errno));
        qn_buf_release(&dir);
        free(c->d);
        free(c);
        return NULL;
    }
    c->dir = dir.data;
    /* The daemons stop when we do, even if we are killed. */
    char ppid[32];
    snprintf(ppid, sizeof ppid, "%d", (int)getpid());
    setenv("QUERN_PARENT_PID", ppid, 1);
    if (s_start_master(c, exe, log_level, http, err, errcap) < 0 ||
        s_start_workers(c, exe, workers, slots, task_mem_mb, log_level, err,
                        errcap) < 0) {
        qn_cluster_stop(&c, 1);
        return NULL;
    }
    return c;
}

const char *qn_cluster_endpoint(const qn_cluster *c)
{
    return c->endpoint;
}

const char *qn_cluster_http_url(const qn_cluster *c)
{
    return c->http_url;
}

const char *qn_cluster_dir(const qn_cluster *c)
{
    return c->dir;
}

static void s_reap_all(qn_cluster *c)
{
    int status;
    for (size_t i = 0; i < c->n; i++) {
        if (c->d[i].exited)
            continue;
        pid_t r = waitpid(c->d[i].pid, &status, WNOHANG);
        if (r == c->d[i].pid) {
            c->d[i].exited = 1;
            c->d[i].status = status;
        }
    }
}

int qn_cluster_check(qn_cluster *c, char *err, size_t errcap)
{
    s_reap_all(c);
    for (size_t i = 0; i < c->n; i++) {
        if (c->d[i].exited) {
            char how[128];
            snprintf(
                err, errcap, "the local %s stopped (%s); see %s", c->d[i].name,
                qn_status_str(c->d[i].status, how, sizeof how), c->d[i].log);
            return -1;
        }
    }
    return 0;
}

/* Have daemons from..n-1 all exited? (The master is daemon 0.) */
static int s_all_exited(qn_cluster *c, size_t from)
{
    s_reap_all(c);
    for (size_t i = from; i < c->n; i++)
        if (!c->d[i].exited)
            return 0;
    return 1;
}

/* Wait until daemons from..n-1 exited or ms passed; woken by SIGCHLD. */
static void s_wait_exit(qn_cluster *c, size_t from, int ms)
{
    int64_t deadline = qn_now_ms() + ms;
    while (!s_all_exited(c, from)) {
        int64_t left = deadline - qn_now_ms();
        if (left <= 0)
            return;
        struct pollfd p = {.fd = c->sigfd, .events = POLLIN};
        if (poll(&p, 1, (int)left) > 0)
            qn_signals_read(c->sigfd, NULL, NULL);
    }
}

/*
 * Kept for its logs: the daemons' logs (and any attempt stderr files a
 * worker still holds, in worker-N/jobs/JOB/logs) stay; intermediate data
 * goes. Failed attempts' stderr tails are in the job's result anyway.
 */
static void s_drop_data(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (strncmp(e->d_name, "worker-", 7) != 0)
            continue;
        qn_buf jobs = {0};
        qn_buf_printf(&jobs, "%s/%s/jobs", dir, e->d_name);
        DIR *jd = opendir(jobs.data);
        struct dirent *je;
        while (jd && (je = readdir(jd))) {
            if (je->d_name[0] == '.')
                continue;
            qn_buf job = {0};
            qn_buf_printf(&job, "%s/%s", jobs.data, je->d_name);
            DIR *files = opendir(job.data);
            struct dirent *fe;
            while (files && (fe = readdir(files))) {
                if (fe->d_name[0] == '.' || strcmp(fe->d_name, "logs") == 0)
                    continue;
                qn_buf f = {0};
                qn_buf_printf(&f, "%s/%s", job.data, fe->d_name);
                qn_rmtree(f.data);
                qn_buf_release(&f);
            }
            if (files)
                closedir(files);
            qn_buf_release(&job);
        }
        if (jd)
            closedir(jd);
        qn_buf_release(&jobs);
    }
    closedir(d);
}

void qn_cluster_stop(qn_cluster **self_p, int keep)
{
    qn_cluster *c = *self_p;
    if (!c)
        return;
    /* Workers first, and the master once they are gone: a worker tells
     * the master it leaves, and waits (up to its linger, 2 s) for a
     * master to take the message. Stopped together, a worker could find
     * the master gone and wait out its linger. SIGINT, not SIGTERM: the
     * whole cluster goes, so a worker has nowhere to drain to. */
    for (size_t i = c->n; i-- > 1;)
        if (!c->d[i].exited)
            kill(c->d[i].pid, SIGINT);
    s_wait_exit(c, 1, STOP_GRACE_MS);
    if (c->n && !c->d[0].exited)
        kill(c->d[0].pid, SIGTERM);
    s_wait_exit(c, 0, STOP_GRACE_MS);
    for (size_t i = 0; i < c->n; i++) {
        if (!c->d[i].exited) {
            kill(-c->d[i].pid, SIGKILL);
            kill(c->d[i].pid, SIGKILL);
        }
    }
    s_wait_exit(c, 0, STOP_GRACE_MS);
    for (size_t i = 0; i < c->n; i++)
        free(c->d[i].log);
    if (!keep)
        qn_rmtree(c->dir);
    else
        s_drop_data(c->dir);
    unsetenv("QUERN_PARENT_PID");
    free(c->d);
    free(c->dir);
    free(c);
    *self_p = NULL;
}
