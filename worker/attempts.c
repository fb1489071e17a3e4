/*
 * attempts.c -- see attempts.h.
 *
 * An attempt's end is known from SIGCHLD; its final report is held until
 * then, so "succeeded" means both that the task said so and that its
 * process exited cleanly.
 */
#include "attempts.h"

#include "layout.h"
#include "log.h"
#include "masterlink.h"
#include "proc.h"
#include "util.h"

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

#define STDERR_TAIL 2048       /* bytes of a failed attempt's stderr sent */
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

void qn_attempts_start(qn_worker *w, Quern__TaskSpec *spec)
{
    if (qn_attempts_find(&w->att, spec->job_id, spec->kind, spec->task,
                         spec->attempt))
        return; /* a duplicate assignment */
    qn_buf dir = {0}, log = {0};
    qn_buf_printf(&dir, "%s/logs/%s", w->work_dir, spec->job_id);
    qn_mkdirs(dir.data, 0755);
    qn_buf_printf(&log, "%s/%c-%05u-a%u.stderr", dir.data,
                  spec->kind == QUERN__TASK_KIND__MAP ? 'm' : 'r', spec->task,
                  spec->attempt);
    qn_buf_release(&dir);

    if (w->att.n == w->att.cap) {
        w->att.cap = w->att.cap ? w->att.cap * 2 : 8;
        w->att.v = qn_realloc(w->att.v, w->att.cap * sizeof *w->att.v);
    }
    qn_attempt *a = &w->att.v[w->att.n];
    memset(a, 0, sizeof *a);
    snprintf(a->ref.job_id, sizeof a->ref.job_id, "%s", spec->job_id);
    a->ref.kind = spec->kind;
    a->ref.task = spec->task;
    a->ref.attempt = spec->attempt;
    a->stderr_path = log.data;
    a->st.fd = -1;
    if (spec->kind == QUERN__TASK_KIND__MAP && spec->n_inputs) {
        a->shards = qn_calloc(spec->n_inputs, sizeof *a->shards);
        a->nshards = spec->n_inputs;
        for (size_t i = 0; i < spec->n_inputs; i++)
            a->shards[i] = qn_strdup(spec->inputs[i]->name);
    }

    /*
     * What only this worker knows goes into the spec for the task (and is
     * taken out again after, since the spec's strings are not ours): the
     * plugin's place in the cache, the local copies of input shards, where
     * output goes, the key files.
     */
    char *saved_work = spec->work_dir, *saved_plugin = spec->plugin;
    char *saved_out = spec->output_dir, *saved_key = spec->curve_secret;
    char *saved_mkey = spec->curve_master;
    char **saved_paths = qn_calloc(spec->n_inputs + 1, sizeof *saved_paths);
    qn_buf *local = qn_calloc(spec->n_inputs + 1, sizeof *local);
    qn_buf plugin = {0}, out = {0};
    spec->work_dir = w->work_dir;
    if (spec->plugin_hash[0]) {
        qn_plugin_path(&plugin, w->work_dir, spec->plugin_hash);
        spec->plugin = plugin.data;
    }
    for (size_t i = 0; i < spec->n_inputs; i++) {
        Quern__InputPiece *pc = spec->inputs[i];
        saved_paths[i] = pc->path;
        const qn_shard *sh =
            pc->dataset[0] && w->store && spec->kind == QUERN__TASK_KIND__MAP
                ? qn_store_find(w->store, pc->dataset, pc->shard)
                : NULL;
        if (sh && sh->crc == pc->crc) {
            qn_store_path(w->store, pc->dataset, pc->shard, &local[i]);
            pc->path = local[i].data;
        }
    }
    if (spec->kind == QUERN__TASK_KIND__COPY && spec->n_inputs == 1 &&
        w->store) {
        const Quern__InputPiece *pc = spec->inputs[0];
        qn_store_temp_path(w->store, pc->dataset, &out);
        a->copy_tmp = qn_strdup(out.data);
        snprintf(a->copy_shard.dataset, sizeof a->copy_shard.dataset, "%s",
                 pc->dataset);
        a->copy_shard.index = pc->shard;
        a->copy_shard.size = pc->file_size;
        a->copy_shard.crc = pc->crc;
        spec->output_dir = out.data;
    } else if (spec->output_dataset[0] && w->store) {
        qn_buf_printf(&out, "%s/.staging/%s", qn_store_dir(w->store),
                      spec->job_id);
        spec->output_dir = out.data;
    }
    if (w->cfg.curve_secret)
        spec->curve_secret = (char *)w->cfg.curve_secret;
    if (w->cfg.curve_master)
        spec->curve_master = (char *)w->cfg.curve_master;

    /*
     * The spec goes in a memory file on the task's fd 4, so handing over a
     * large one never blocks this loop; progress and the result come back
     * on a socketpair on fd 3.
     */
    const char *why = NULL;
    int sv[2] = {-1, -1};
    int spec_fd = memfd_create("quern-task-spec", MFD_CLOEXEC);
    Quern__Envelope env = QUERN__ENVELOPE__INIT;
    env.body_case = QUERN__ENVELOPE__BODY_TASK_SPEC;
    env.task_spec = spec;
    if ((spec->kind == QUERN__TASK_KIND__COPY ||
         (spec->output_dataset[0] && spec->kind == QUERN__TASK_KIND__REDUCE)) &&
        !w->store)
        why = "this worker keeps no datasets (it has no --data-dir)";
    else if (spec_fd < 0 || qn_wire_write_fd(spec_fd, &env) < 0 ||
             lseek(spec_fd, 0, SEEK_SET) < 0)
        why = "cannot write the task's spec";
    spec->work_dir = saved_work;
    spec->plugin = saved_plugin;
    spec->output_dir = saved_out;
    spec->curve_secret = saved_key;
    spec->curve_master = saved_mkey;
    for (size_t i = 0; i < spec->n_inputs; i++) {
        spec->inputs[i]->path = saved_paths[i];
        qn_buf_release(&local[i]);
    }
    free(saved_paths);
    free(local);
    qn_buf_release(&plugin);
    qn_buf_release(&out);
    if (!why && socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
        why = "cannot make a control channel";
    int gasp_fd = -1;
    if (!why) {
        gasp_fd = memfd_create("quern-task-gasp", MFD_CLOEXEC);
        void *g = MAP_FAILED;
        if (gasp_fd >= 0 && ftruncate(gasp_fd, sizeof(qn_gasp)) == 0)
            g = mmap(NULL, sizeof(qn_gasp), PROT_READ | PROT_WRITE, MAP_SHARED,
                     gasp_fd, 0);
        if (g == MAP_FAILED)
            why = "cannot share a page with the task";
        else
            a->gasp = g;
    }
    pid_t pid = -1;
    if (!why) {
        char *argv[] = {(char *)"quern-task", NULL};
        qn_spawn_opts o = {.fds = {sv[1], spec_fd, gasp_fd},
                           .nfds = 3,
                           .stderr_path = a->stderr_path,
                           .new_group = 1};
        pid = qn_spawn(w->task_bin, argv, &o);
        if (pid < 0)
            why = "cannot start quern-task";
    }
    int e = pid < -1 ? (int)-pid : errno;
    if (why && !w->store && spec->kind != QUERN__TASK_KIND__MAP)
        e = 0;
    if (spec_fd >= 0)
        close(spec_fd);
    if (gasp_fd >= 0)
        close(gasp_fd);
    if (sv[1] >= 0)
        close(sv[1]);
    if (why) {
        qn_error("worker %s: job %s task %u: %s%s%s", w->id, a->ref.job_id,
                 a->ref.task, why, e ? ": " : "", e ? strerror(e) : "");
        if (sv[0] >= 0)
            close(sv[0]);
        Quern__TaskUpdate u = QUERN__TASK_UPDATE__INIT;
        u.state = QUERN__TASK_STATE__FAILED;
        qn_buf reason = {0};
        qn_buf_printf(&reason, "worker %s: %s%s%s", w->id, why, e ? ": " : "",
                      e ? strerror(e) : "");
        u.reason = reason.data;
        qn_masterlink_update(w, &a->ref, &u);
        qn_buf_release(&reason);
        s_release(a);
        return;
    }
    a->pid = pid;
    a->st.fd = sv[0];
    w->att.n++;
    fcntl(a->st.fd, F_SETFL, fcntl(a->st.fd, F_GETFL) | O_NONBLOCK);
    qn_debug("worker %s: started job %s %s task %u attempt %u as pid %d", w->id,
             a->ref.job_id, a->ref.kind ? "reduce" : "map", a->ref.task,
             a->ref.attempt, (int)pid);
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

/* The last bytes of a file, for a failure report. */
static char *s_tail(const char *path, size_t n)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return qn_strdup("");
    off_t size = lseek(fd, 0, SEEK_END);
    off_t from = size > (off_t)n ? size - (off_t)n : 0;
    char *buf = qn_calloc(n + 1, 1);
    ssize_t got = pread(fd, buf, n, from);
    close(fd);
    if (got < 0)
        got = 0;
    buf[got] = '\0';
    /* Keep it valid UTF-8 for the wire (a NUL would cut it short). */
    for (ssize_t i = 0; i < got; i++)
        if (buf[i] == '\0')
            buf[i] = '?';
    qn_utf8_sanitize(buf);
    return buf;
}

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
    char how[128];
    qn_status_str(status, how, sizeof how);
    int clean = WIFEXITED(status) && WEXITSTATUS(status) == 0;

    char install_err[700] = "";
    if (fin && clean && fin->state == QUERN__TASK_STATE__SUCCEEDED &&
        a->ref.kind == QUERN__TASK_KIND__COPY &&
        qn_store_install(w->store, a->copy_tmp, &a->copy_shard, 0, install_err,
                         sizeof install_err) < 0) {
        qn_warn("worker %s: %s", w->id, install_err);
    }
    if (fin && clean && fin->state == QUERN__TASK_STATE__SUCCEEDED &&
        !install_err[0]) {
        fin->rss_peak = rss;
        qn_masterlink_update(w, &a->ref, fin);
        qn_debug("worker %s: job %s %s task %u attempt %u succeeded", w->id,
                 a->ref.job_id, a->ref.kind ? "reduce" : "map", a->ref.task,
                 a->ref.attempt);
    } else {
        Quern__TaskUpdate u = QUERN__TASK_UPDATE__INIT;
        qn_buf reason = {0};
        if (a->cancelled) {
            u.state = QUERN__TASK_STATE__KILLED;
            qn_buf_printf(&reason, "killed on the master's request");
        } else if (a->mem_killed) {
            u.state = QUERN__TASK_STATE__FAILED;
            qn_buf_printf(&reason,
                          "killed by worker %s: its resident memory reached "
                          "%llu MiB, over the cap of %u MiB (--task-mem-mb)",
                          w->id, (unsigned long long)(a->mem_killed >> 20),
                          w->cfg.task_mem_mb);
        } else {
            u.state = QUERN__TASK_STATE__FAILED;
            if (install_err[0])
                qn_buf_printf(&reason, "%s", install_err);
            else if (fin && fin->state == QUERN__TASK_STATE__FAILED &&
                     fin->reason[0])
                qn_buf_printf(&reason, "%s (task process %s)", fin->reason,
                              how);
            else if (a->bad_msg)
                qn_buf_printf(&reason, "%s (task process %s)", a->bad_msg, how);
            else
                qn_buf_printf(&reason, "task process %s", how);
        }
        if (fin)
            u.record_offset = fin->record_offset;
        /* The last gasp: what it was doing outside map() ... */
        if (!a->cancelled && a->gasp && !fin &&
            a->gasp->phase == QN_PHASE_SETUP)
            qn_buf_printf(&reason, " in the job's setup()");
        else if (!a->cancelled && a->gasp && !fin &&
                 a->gasp->phase == QN_PHASE_LOADING)
            qn_buf_printf(&reason, " while loading the plugin (in its "
                                   "constructors)");
        /* ... or which record map() was in when it died. */
        if (!a->cancelled && a->gasp && a->gasp->in_record &&
            a->gasp->piece < a->nshards) {
            u.in_record = 1;
            u.input_piece = a->gasp->piece;
            u.record_offset = a->gasp->offset;
            if (!strstr(reason.data, "offset"))
                qn_buf_printf(&reason,
                              " in map() on the record at offset %llu "
                              "of %s",
                              (unsigned long long)a->gasp->offset,
                              a->shards[a->gasp->piece]);
        }
        u.reason = reason.data;
        u.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
        u.signal = WIFSIGNALED(status) ? WTERMSIG(status) : 0;
        u.rss_peak = rss;
        char *tail = s_tail(a->stderr_path, STDERR_TAIL);
        u.stderr_tail = tail;
        qn_masterlink_update(w, &a->ref, &u);
        if (!a->cancelled)
            qn_warn("worker %s: job %s %s task %u attempt %u failed: %s", w->id,
                    a->ref.job_id, a->ref.kind ? "reduce" : "map", a->ref.task,
                    a->ref.attempt, reason.data);
        free(tail);
        qn_buf_release(&reason);
    }
    s_release(a);
    w->att.v[idx] = w->att.v[--w->att.n];
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
                s_finish(w, i, status, &ru);
                break;
            }
        }
    }
}

void qn_attempts_flush(qn_attempt *a)
{
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
        waitpid(tab->v[i].pid, NULL, 0);
        if (tab->v[i].st.fd >= 0)
            close(tab->v[i].st.fd);
        s_release(&tab->v[i]);
    }
    free(tab->v);
    tab->v = NULL;
    tab->n = tab->cap = 0;
}
