/*
 * attempts.c -- see attempts.h.
 *
 * An attempt's end is known from SIGCHLD; its final report is held until
 * then, so "succeeded" means both that the task said so and that its
 * process exited cleanly.
 */
#include "attempts.h"

#include "log.h"
#include "masterlink.h"
#include "outcome.h"
#include "proc.h"
#include "recovery.h"
#include "scrub.h"
#include "store.h"
#include "taskspec.h"
#include "util.h"
#include "wsandbox.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#define MEM_CHECK_MS 100       /* how often capped tasks' memory is read */
#define TASK_OUT_MAX (1 << 20) /* bytes queued for one task at most */

qn_attempt *qn_attempts_find(qn_attempts *tab, const char *job, int kind,
                             unsigned task, unsigned attempt)
{
    for (size_t i = 0; i < tab->n; i++) {
        qn_attempt *a = &tab->v[i];
        if (strcmp(a->ref.job_id, job) == 0 && a->ref.kind == kind &&
            a->ref.task == task && a->ref.attempt == attempt)
            return a;
    }
    return NULL;
}

void qn_attempts_kill(qn_attempt *a)
{
    if (a->pid > 0)
        kill(-a->pid, SIGKILL); /* its process group */
}

/* Free what an attempt holds (not its slot in the table). */
static void s_release(qn_attempt *a)
{
    qn_wire_free(a->final);
    a->final = NULL;
    qn_buf_release(&a->st.in);
    qn_buf_release(&a->out);
    free(a->bad_msg);
    free(a->stderr_path);
    if (a->copy_tmp)
        unlink(a->copy_tmp); /* installed (renamed away) or abandoned */
    free(a->copy_tmp);
    for (size_t i = 0; i < a->nshards; i++)
        free(a->shards[i]);
    free(a->shards);
    if (a->gasp)
        munmap((void *)a->gasp, sizeof(qn_gasp));
    memset(a, 0, sizeof *a);
    a->st.fd = -1;
}

qn_attempt *qn_attempts_add(qn_attempts *tab, const qn_attempt_ref *ref)
{
    QN_GROW(tab->v, tab->cap, tab->n + 1);
    qn_attempt *a = &tab->v[tab->n++];
    memset(a, 0, sizeof *a);
    a->ref = *ref;
    a->st.fd = -1;
    return a;
}

void qn_attempts_remove(qn_attempts *tab, size_t i)
{
    assert(i < tab->n);
    s_release(&tab->v[i]);
    tab->v[i] = tab->v[--tab->n];
}

/*
 * A new attempt in w's table for the task spec assigns, with where its
 * stderr goes (its folder made) and, for a map, its input pieces' names.
 */
static qn_attempt *s_add(qn_worker *w, const Quern__TaskSpec *spec)
{
    qn_attempt_ref ref = {
        .kind = spec->kind, .task = spec->task, .attempt = spec->attempt};
    snprintf(ref.job_id, sizeof ref.job_id, "%s", spec->job_id);
    qn_attempt *a = qn_attempts_add(&w->att, &ref);
    qn_buf dir = {0}, log = {0};
    qn_buf_printf(&dir, "%s/logs/%s", w->work_dir, spec->job_id);
    qn_mkdirs(dir.data, 0755);
    qn_buf_printf(&log, "%s/%c-%05u-a%u.stderr", dir.data,
                  spec->kind == QUERN__TASK_KIND__MAP ? 'm' : 'r', spec->task,
                  spec->attempt);
    qn_buf_release(&dir);
    a->stderr_path = log.data;
    if (spec->kind == QUERN__TASK_KIND__MAP && spec->n_inputs) {
        a->shards = qn_calloc(spec->n_inputs, sizeof *a->shards);
        a->nshards = spec->n_inputs;
        for (size_t i = 0; i < spec->n_inputs; i++)
            a->shards[i] = qn_strdup(spec->inputs[i]->name);
    }
    return a;
}

/* The spec in a memory file, read from its start, so that handing over a
 * large one never blocks the loop. The descriptor, or -1 with errno. */
static int s_spec_file(const Quern__TaskSpec *spec)
{
    int fd = memfd_create("quern-task-spec", MFD_CLOEXEC);
    Quern__Envelope env = QUERN__ENVELOPE__INIT;
    env.body_case = QUERN__ENVELOPE__BODY_TASK_SPEC;
    env.task_spec = (Quern__TaskSpec *)spec;
    if (fd >= 0 &&
        (qn_wire_write_fd(fd, &env) < 0 || lseek(fd, 0, SEEK_SET) < 0)) {
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    return fd;
}

/* The last-gasp page shared with a's task: its memory file's descriptor
 * (the page mapped in a->gasp), or -1 with errno. */
static int s_gasp_file(qn_attempt *a)
{
    int fd = memfd_create("quern-task-gasp", MFD_CLOEXEC);
    void *g = MAP_FAILED;
    if (fd >= 0 && ftruncate(fd, sizeof(qn_gasp)) == 0)
        g = mmap(NULL, sizeof(qn_gasp), PROT_READ | PROT_WRITE, MAP_SHARED, fd,
                 0);
    if (g == MAP_FAILED) {
        int e = errno;
        if (fd >= 0)
            close(fd);
        errno = e;
        return -1;
    }
    a->gasp = g;
    return fd;
}

/*
 * Start a's quern-task process on spec: the spec on its fd 4, progress
 * and the result back on a socketpair on fd 3, the last gasp on fd 5.
 * NULL when it runs, or what failed with its errno in *e (0: none).
 */
static const char *s_spawn(qn_worker *w, qn_attempt *a,
                           const Quern__TaskSpec *spec, int *e)
{
    const char *why = NULL;
    int sv[2] = {-1, -1}, gasp_fd = -1;
    int spec_fd = s_spec_file(spec);
    if (spec_fd < 0)
        why = "cannot write the task's spec";
    else if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
        why = "cannot make a control channel";
    else if ((gasp_fd = s_gasp_file(a)) < 0)
        why = "cannot share a page with the task";
    *e = errno;
    if (!why) {
        char *argv[] = {(char *)"quern-task", NULL};
        /* A task in a sandbox starts without the worker's environment
         * (its memory would still hold it after clearenv). */
        static char *const bare[] = {
            (char *)"PATH=/usr/local/bin:/usr/bin:/bin", NULL};
        qn_spawn_opts o = {.fds = {sv[1], spec_fd, gasp_fd},
                           .nfds = 3,
                           .null_stdin = 1,
                           .envp = w->sb.layers ? bare : NULL,
                           .stdout_path = a->stderr_path, /* not ours */
                           .stderr_path = a->stderr_path,
                           .new_group = 1};
        pid_t pid = qn_spawn(w->task_bin, argv, &o);
        if (pid < 0) {
            why = "cannot start quern-task";
            *e = pid < -1 ? (int)-pid : errno;
        } else {
            a->pid = pid;
            a->st.fd = sv[0];
            sv[0] = -1;
        }
    }
    if (spec_fd >= 0)
        close(spec_fd);
    if (gasp_fd >= 0)
        close(gasp_fd);
    for (int i = 0; i < 2; i++)
        if (sv[i] >= 0)
            close(sv[i]);
    return why;
}

/* Attempt a could not be started: say why (with errno e, 0: none) in the
 * log and to the master. */
static void s_start_failed(qn_worker *w, const qn_attempt *a, const char *why,
                           int e)
{
    qn_error("worker %s: job %s task %u: %s%s%s", w->id, a->ref.job_id,
             a->ref.task, why, e ? ": " : "", e ? strerror(e) : "");
    Quern__TaskUpdate u = QUERN__TASK_UPDATE__INIT;
    u.state = QUERN__TASK_STATE__FAILED;
    qn_buf reason = {0};
    qn_buf_printf(&reason, "worker %s: %s%s%s", w->id, why, e ? ": " : "",
                  e ? strerror(e) : "");
    u.reason = reason.data;
    qn_masterlink_update(w, &a->ref, &u);
    qn_buf_release(&reason);
}

void qn_attempts_start(qn_worker *w, const Quern__TaskSpec *assigned)
{
    if (qn_attempts_find(&w->att, assigned->job_id, assigned->kind,
                         assigned->task, assigned->attempt))
        return; /* a duplicate assignment */
    qn_attempt *a = s_add(w, assigned);
    qn_taskspec_local local = {.work_dir = w->work_dir,
                               .store = w->store,
                               .curve_secret = w->cfg.curve_secret,
                               .curve_master = w->cfg.curve_master};
    qn_taskspec ts;
    const char *why = NULL;
    int e = 0;
    if (qn_taskspec_build(&ts, assigned, &local, &why) == 0) {
        if (ts.spec.kind != QUERN__TASK_KIND__COPY) {
            a->cpu_timeout_ms = w->sb.layers ? ts.spec.task_timeout_ms : 0;
            qn_wsandbox_spec(w, &ts.spec);
            a->mem_cap = ts.spec.sandbox ? ts.spec.task_mem_bytes : 0;
        }
        if (ts.copy) {
            a->copy_tmp = qn_strdup(ts.output.data);
            a->copy_shard = ts.copy_shard;
        }
        why = s_spawn(w, a, &ts.spec, &e);
    }
    qn_taskspec_release(&ts);
    if (why) {
        s_start_failed(w, a, why, e);
        qn_attempts_remove(&w->att, w->att.n - 1);
        return;
    }
    fcntl(a->st.fd, F_SETFL, fcntl(a->st.fd, F_GETFL) | O_NONBLOCK);
    qn_debug("worker %s: started job %s %s task %u attempt %u as pid %d", w->id,
             a->ref.job_id, a->ref.kind ? "reduce" : "map", a->ref.task,
             a->ref.attempt, (int)a->pid);
}

int qn_attempts_on_ctl(qn_worker *w, qn_attempt *a)
{
    if (a->st.fd < 0)
        return 0;
    int rc = qn_stream_read(&a->st);
    for (;;) {
        Quern__Envelope *env = NULL;
        char err[256];
        int r = qn_stream_next(&a->st, &env, err, sizeof err);
        if (r == 0)
            break;
        if (r < 0) {
            qn_warn("worker %s: bad message from job %s task %u: %s", w->id,
                    a->ref.job_id, a->ref.task, err);
            if (!a->bad_msg) {
                qn_buf b = {0};
                qn_buf_printf(&b, "the task sent a malformed report (%s)", err);
                a->bad_msg = b.data;
            }
            rc = -1;
            break;
        }
        if (env->body_case != QUERN__ENVELOPE__BODY_TASK_UPDATE) {
            qn_wire_free(env);
            continue;
        }
        if (env->task_update->state == QUERN__TASK_STATE__RUNNING) {
            a->records = env->task_update->records;
            a->bytes = env->task_update->bytes;
            qn_wsandbox_progress(w, a, qn_now_ms());
            qn_masterlink_update(w, &a->ref, env->task_update);
            qn_wire_free(env);
        } else {
            qn_wire_free(a->final);
            a->final = env;
        }
    }
    if (rc < 0 || a->st.eof) {
        close(a->st.fd);
        a->st.fd = -1;
    }
    return rc > 0 ? rc : 0;
}

/* A map that failed may have read a damaged copy of a shard here (its
 * reason would say so, in words): each shard copy it read from this
 * worker's store is read again at once, and dropped if damaged. */
static void s_check_inputs(qn_worker *w, const qn_attempt *a)
{
    if (!w->scrub || a->ref.kind != QUERN__TASK_KIND__MAP)
        return;
    for (size_t i = 0; i < a->nshards; i++) {
        const char *slash = strchr(a->shards[i], '/');
        unsigned index;
        char tail;
        if (!slash || strchr(slash + 1, '/') ||
            sscanf(slash + 1, "part-%u%c", &index, &tail) != 1)
            continue;
        char dataset[72];
        size_t len = (size_t)(slash - a->shards[i]);
        if (len >= sizeof dataset)
            continue;
        memcpy(dataset, a->shards[i], len);
        dataset[len] = '\0';
        if (qn_store_find(w->store, dataset, index))
            qn_scrub_soon(w->scrub, dataset, index, qn_now_ms());
    }
}

/*
 * Attempt idx's process has ended with status: report how (success only
 * when the task said so, its process exited cleanly and a copy's shard
 * was installed) and take it out of the table.
 */
static void s_finish(qn_worker *w, size_t idx, int status,
                     const struct rusage *ru)
{
    qn_attempt *a = &w->att.v[idx];
    /* Everything it wrote before exiting is in the socket: read to EOF
     * (or until nothing more comes, if a child of the plugin holds it). */
    while (a->st.fd >= 0 && qn_attempts_on_ctl(w, a) > 0)
        ;
    if (a->st.fd >= 0) {
        close(a->st.fd);
        a->st.fd = -1;
    }
    Quern__TaskUpdate *fin = a->final ? a->final->task_update : NULL;
    uint64_t rss = (uint64_t)ru->ru_maxrss * 1024;
    int ok = fin && fin->state == QUERN__TASK_STATE__SUCCEEDED &&
             WIFEXITED(status) && WEXITSTATUS(status) == 0;
    char install_err[700] = "";
    if (ok && a->ref.kind == QUERN__TASK_KIND__COPY &&
        qn_store_install(w->store, a->copy_tmp, &a->copy_shard, 0, install_err,
                         sizeof install_err) < 0) {
        qn_warn("worker %s: %s", w->id, install_err);
        ok = 0;
    }
    if (ok) {
        fin->rss_peak = rss;
        if (a->ref.kind == QUERN__TASK_KIND__MAP)
            qn_recovery_note(w, &a->ref, fin);
        qn_masterlink_update(w, &a->ref, fin);
        if (a->ref.kind != QUERN__TASK_KIND__COPY)
            qn_masterlink_told(w, &a->ref, fin);
        else /* a copy that worked has nothing to tell later */
            unlink(a->stderr_path);
        qn_debug("worker %s: job %s %s task %u attempt %u succeeded", w->id,
                 a->ref.job_id, a->ref.kind ? "reduce" : "map", a->ref.task,
                 a->ref.attempt);
    } else {
        s_check_inputs(w, a);
        qn_outcome o;
        qn_outcome_failure(&o, w, a, status, rss, install_err);
        qn_masterlink_update(w, &a->ref, &o.u);
        if (!a->cancelled)
            qn_warn("worker %s: job %s %s task %u attempt %u failed: %s", w->id,
                    a->ref.job_id, a->ref.kind ? "reduce" : "map", a->ref.task,
                    a->ref.attempt, o.reason.data);
        qn_outcome_release(&o);
    }
    qn_attempts_remove(&w->att, idx);
}

void qn_attempts_reap(qn_worker *w)
{
    for (;;) {
        int status;
        struct rusage ru;
        pid_t pid = qn_reap(&status, &ru);
        if (pid <= 0)
            return;
        for (size_t i = 0; i < w->att.n; i++) {
            if (w->att.v[i].pid == pid) {
                /* What its code started ends with it (its broker too). */
                kill(-pid, SIGKILL);
                s_finish(w, i, status, &ru);
                break;
            }
        }
    }
}

void qn_attempts_flush(qn_attempt *a)
{
    assert(a->out_off <= a->out.len);
    while (a->st.fd >= 0 && a->out_off < a->out.len) {
        ssize_t n =
            write(a->st.fd, a->out.data + a->out_off, a->out.len - a->out_off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break; /* full (the poll loop waits for room) or gone */
        a->out_off += (size_t)n;
    }
    if (a->out_off == a->out.len)
        a->out.len = a->out_off = 0;
}

void qn_attempts_on_locations(qn_worker *w, Quern__Envelope *env)
{
    const Quern__AttemptRef *r = env->map_locations->reduce;
    qn_attempt *a =
        qn_attempts_find(&w->att, r->job_id, r->kind, r->task, r->attempt);
    if (!a || a->st.fd < 0)
        return; /* it ended meanwhile */
    if (a->out.len - a->out_off > TASK_OUT_MAX ||
        qn_wire_append(&a->out, env) < 0) {
        qn_debug("worker %s: job %s reduce task %u is not reading; dropped "
                 "a map location for it",
                 w->id, a->ref.job_id, a->ref.task);
        return;
    }
    qn_attempts_flush(a);
}

void qn_attempts_check_memory(qn_worker *w, int64_t now)
{
    if (!w->cfg.task_mem_mb || now < w->att.next_mem_check)
        return;
    w->att.next_mem_check = now + MEM_CHECK_MS;
    uint64_t cap = (uint64_t)w->cfg.task_mem_mb << 20;
    long page = sysconf(_SC_PAGESIZE);
    for (size_t i = 0; i < w->att.n; i++) {
        qn_attempt *a = &w->att.v[i];
        if (a->pid <= 0 || a->mem_killed || a->cancelled)
            continue;
        char path[64];
        snprintf(path, sizeof path, "/proc/%d/statm", (int)a->pid);
        FILE *f = fopen(path, "re");
        unsigned long long size = 0, resident = 0;
        if (!f)
            continue;
        int got = fscanf(f, "%llu %llu", &size, &resident);
        fclose(f);
        uint64_t rss = (uint64_t)resident * (uint64_t)page;
        if (got == 2 && rss > cap) {
            a->mem_killed = rss;
            qn_warn("worker %s: job %s task %u attempt %u uses %llu MiB, "
                    "over --task-mem-mb %u: killed",
                    w->id, a->ref.job_id, a->ref.task, a->ref.attempt,
                    (unsigned long long)(rss >> 20), w->cfg.task_mem_mb);
            qn_attempts_kill(a);
        }
    }
}

void qn_attempts_cancel(qn_worker *w, const Quern__AttemptRef *r)
{
    qn_attempt *a =
        qn_attempts_find(&w->att, r->job_id, r->kind, r->task, r->attempt);
    if (!a)
        return;
    a->cancelled = 1;
    qn_attempts_kill(a);
}

void qn_attempts_kill_job(qn_attempts *tab, const char *job_id)
{
    for (size_t i = 0; i < tab->n; i++) {
        if (!job_id || strcmp(tab->v[i].ref.job_id, job_id) == 0) {
            tab->v[i].cancelled = 1;
            qn_attempts_kill(&tab->v[i]);
        }
    }
}

void qn_attempts_destroy(qn_attempts *tab)
{
    /* Kill every attempt and wait for each: SIGKILL cannot be ignored. */
    for (size_t i = 0; i < tab->n; i++) {
        qn_attempts_kill(&tab->v[i]);
        if (tab->v[i].pid > 0)
            waitpid(tab->v[i].pid, NULL, 0);
        if (tab->v[i].st.fd >= 0)
            close(tab->v[i].st.fd);
        s_release(&tab->v[i]);
    }
    free(tab->v);
    tab->v = NULL;
    tab->n = tab->cap = 0;
}
