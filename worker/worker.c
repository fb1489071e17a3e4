/*
 * worker.c -- see worker.h.
 *
 * One thread, one zmq_poll over: the DEALER socket to the master, the
 * shuffle server's ROUTER, a signalfd (SIGCHLD, SIGTERM, SIGINT), and the
 * control socketpair of every running attempt. An attempt's end is known
 * from SIGCHLD; its final report is held until then, so "succeeded" means
 * both that the task said so and that its process exited cleanly.
 */
#include "worker.h"
#include "wstate.h"

#include "curve.h"
#include "datacmd.h"
#include "gasp.h"
#include "log.h"
#include "masterlink.h"
#include "proc.h"
#include "sha256.h"
#include "shuffle.h"
#include "store.h"
#include "tasklogs.h"
#include "util.h"
#include "wire.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zmq.h>

#define STDERR_TAIL 2048      /* bytes of a failed attempt's stderr sent */
#define MEM_CHECK_MS 100      /* how often capped tasks' memory is read */
#define UPLOAD_IDLE_MS 120000 /* an upload silent this long is dropped */
#define PLUGIN_RETRY_MS 5000  /* ask the master for a plugin again */

#define TASK_OUT_MAX (1024 * 1024) /* bytes queued for one task at most */

/* ---- set-up -------------------------------------------------------------- */

qn_worker *qn_worker_new(const qn_worker_config *cfg, char *err, size_t errcap)
{
    qn_worker *w = qn_calloc(1, sizeof *w);
    w->cfg = *cfg;
    w->sigfd = -1;
    gethostname(w->host, sizeof w->host - 1);
    unsigned rnd = (unsigned)(qn_wall_ms() ^ ((int64_t)getpid() << 16));
    snprintf(w->id, sizeof w->id, "w-%.24s-%d-%04x", w->host, (int)getpid(),
             rnd & 0xffff);
    for (char *p = w->id; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
              (*p >= '0' && *p <= '9') || *p == '-'))
            *p = '-';

    if (cfg->task_bin) {
        w->task_bin = qn_strdup(cfg->task_bin);
    } else {
        char dir[PATH_MAX];
        if (qn_exe_dir(dir, sizeof dir) < 0) {
            snprintf(err, errcap, "cannot find my own executable");
            goto fail;
        }
        qn_buf b = {0};
        qn_buf_printf(&b, "%s/../libexec/quern-task", dir);
        w->task_bin = b.data;
    }
    if (access(w->task_bin, X_OK) < 0) {
        snprintf(err, errcap,
                 "task runner %s: %s (is Quern installed "
                 "completely?)",
                 w->task_bin, strerror(errno));
        goto fail;
    }

    if (cfg->work_dir) {
        int rc = qn_mkdirs(cfg->work_dir, 0755);
        /* Absolute, so task processes and logs name it unambiguously. */
        w->work_dir = rc == 0 ? realpath(cfg->work_dir, NULL) : NULL;
        if (!w->work_dir) {
            snprintf(err, errcap, "work dir %s: %s", cfg->work_dir,
                     strerror(rc < 0 ? -rc : errno));
            goto fail;
        }
    } else {
        const char *tmp = getenv("TMPDIR");
        qn_buf b = {0};
        qn_buf_printf(&b, "%s/quern-worker-XXXXXX", tmp && *tmp ? tmp : "/tmp");
        if (!mkdtemp(b.data)) {
            snprintf(err, errcap, "cannot create a work dir %s: %s", b.data,
                     strerror(errno));
            qn_buf_release(&b);
            goto fail;
        }
        w->work_dir = b.data;
        w->own_work_dir = 1;
    }
    /* Map outputs of an earlier run are unknown to any master now. */
    {
        qn_buf jobs = {0};
        qn_buf_printf(&jobs, "%s/jobs", w->work_dir);
        qn_rmtree(jobs.data);
        qn_mkdirs(jobs.data, 0755);
        qn_buf_release(&jobs);
    }

    {
        qn_buf plugins = {0};
        qn_buf_printf(&plugins, "%s/plugins", w->work_dir);
        qn_mkdirs(plugins.data, 0755);
        qn_buf_release(&plugins);
    }
    if (cfg->data_dir) {
        w->store = qn_store_open(cfg->data_dir, err, errcap);
        if (!w->store)
            goto fail;
        qn_info("worker %s: %zu dataset shards in %s, checked", w->id,
                qn_store_count(w->store), qn_store_dir(w->store));
    }

    w->sigfd = qn_signals_open();
    if (w->sigfd < 0) {
        snprintf(err, errcap, "signalfd: %s", strerror(-w->sigfd));
        goto fail;
    }
    w->ctx = zmq_ctx_new();
    if (cfg->curve_secret) {
        if (qn_curve_load(&w->curve, cfg->curve_secret, cfg->curve_trusted,
                          cfg->curve_master, err, errcap) < 0)
            goto fail;
        if (!w->curve.master_key[0]) {
            snprintf(err, errcap,
                     "CURVE needs the master's public key: give "
                     "--curve-master FILE or put it in %s/master.pub",
                     cfg->curve_trusted ? cfg->curve_trusted
                                        : "the trusted "
                                          "dir");
            goto fail;
        }
        w->zap = qn_zap_new(w->ctx, &w->curve, "worker", err, errcap);
        if (!w->zap)
            goto fail;
    }
    if (qn_masterlink_open(w, err, errcap) < 0)
        goto fail;
    w->shuffle = qn_shuffle_new(
        w->ctx, cfg->shuffle ? cfg->shuffle : "tcp://127.0.0.1:*", w->work_dir,
        w->curve.secret_key[0] ? &w->curve : NULL, err, errcap);
    if (!w->shuffle)
        goto fail;
    qn_shuffle_set_store(w->shuffle, w->store);
    return w;
fail:
    qn_worker_destroy(&w);
    return NULL;
}

/* ---- attempts ------------------------------------------------------------ */

static qn_attempt *s_find(qn_worker *w, const char *job, int kind,
                          unsigned task, unsigned attempt)
{
    for (size_t i = 0; i < w->att.n; i++) {
        qn_attempt *a = &w->att.v[i];
        if (strcmp(a->ref.job_id, job) == 0 && a->ref.kind == kind &&
            a->ref.task == task && a->ref.attempt == attempt)
            return a;
    }
    return NULL;
}

static void s_kill(qn_attempt *a)
{
    if (a->pid > 0)
        kill(-a->pid, SIGKILL); /* its process group */
}

/* Free what an attempt holds (not its slot in w->att). */
static void qn_attempt_release(qn_attempt *a)
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

/* Where the plugin with this hash is cached. */
static void s_plugin_path(const qn_worker *w, const char *hash, qn_buf *out)
{
    out->len = 0;
    qn_buf_printf(out, "%s/plugins/%s.so", w->work_dir, hash);
}

static void s_start(qn_worker *w, Quern__TaskSpec *spec)
{
    if (s_find(w, spec->job_id, spec->kind, spec->task, spec->attempt))
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
        s_plugin_path(w, spec->plugin_hash, &plugin);
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
        qn_attempt_release(a);
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

/*
 * Read what an attempt's process sent: forward progress, keep the end.
 * Returns the bytes read (0 when nothing was waiting); the channel is
 * closed at EOF or when the task sends something malformed (the reason is
 * kept for the failure report).
 */
static int s_on_ctl(qn_worker *w, qn_attempt *a)
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
    while (a->st.fd >= 0 && s_on_ctl(w, a) > 0)
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
    qn_attempt_release(a);
    w->att.v[idx] = w->att.v[--w->att.n];
}

static void s_reap(qn_worker *w)
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

static void s_wait_fail(qn_worker *w, size_t i, Quern__TaskState state,
                        const char *why);
static void s_wait_remove(qn_worker *w, size_t i);

static void s_cancel(qn_worker *w, const Quern__AttemptRef *r)
{
    for (size_t i = 0; i < w->wait.n; i++) {
        const Quern__TaskSpec *sp = w->wait.v[i].spec;
        if (strcmp(sp->job_id, r->job_id) == 0 && sp->kind == r->kind &&
            sp->task == r->task && sp->attempt == r->attempt) {
            s_wait_fail(w, i, QUERN__TASK_STATE__KILLED,
                        "killed on the master's request");
            return;
        }
    }
    qn_attempt *a = s_find(w, r->job_id, r->kind, r->task, r->attempt);
    if (!a)
        return;
    a->cancelled = 1;
    s_kill(a);
}

/* Write what is queued for a task as far as its socket takes it. */
static void s_flush_out(qn_attempt *a)
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

/*
 * New map output locations for a reduce attempt: queue them for it. The
 * loop writes them as its socket has room, so a task that is not reading
 * (it is past fetching) never blocks the worker; past TASK_OUT_MAX they
 * are dropped whole, and a reducer that still needs one asks again.
 */
static void s_locations(qn_worker *w, Quern__Envelope *env)
{
    const Quern__AttemptRef *r = env->map_locations->reduce;
    qn_attempt *a = s_find(w, r->job_id, r->kind, r->task, r->attempt);
    if (!a || a->st.fd < 0)
        return; /* it ended meanwhile */
    if (a->out.len - a->out_off > TASK_OUT_MAX ||
        qn_wire_append(&a->out, env) < 0) {
        qn_debug("worker %s: job %s reduce task %u is not reading; dropped "
                 "a map location for it",
                 w->id, a->ref.job_id, a->ref.task);
        return;
    }
    s_flush_out(a);
}

static void s_job_end(qn_worker *w, const char *job_id)
{
    if (!qn_id_ok(job_id))
        return;
    for (size_t i = 0; i < w->att.n; i++) {
        if (strcmp(w->att.v[i].ref.job_id, job_id) == 0) {
            w->att.v[i].cancelled = 1;
            s_kill(&w->att.v[i]);
        }
    }
    for (size_t i = 0; i < w->wait.n;) {
        if (strcmp(w->wait.v[i].spec->job_id, job_id) == 0)
            s_wait_remove(w, i);
        else
            i++;
    }
    qn_shuffle_forget_job(w->shuffle, job_id);
    qn_tasklogs_prune(w);
    qn_buf dir = {0};
    qn_buf_printf(&dir, "%s/jobs/%s", w->work_dir, job_id);
    qn_rmtree(dir.data);
    if (w->store) {
        dir.len = 0;
        qn_buf_printf(&dir, "%s/.staging/%s", qn_store_dir(w->store), job_id);
        qn_rmtree(dir.data);
    }
    qn_buf_release(&dir);
}

/*
 * A master that does not know us knows none of our attempts or map
 * outputs either: kill the one, delete the other, so nothing of an earlier
 * master's jobs can be mistaken for the new master's.
 */
static void s_forget_everything(qn_worker *w)
{
    for (size_t i = 0; i < w->att.n; i++) {
        w->att.v[i].cancelled = 1;
        s_kill(&w->att.v[i]);
    }
    while (w->wait.n)
        s_wait_remove(w, 0);
    qn_shuffle_forget_job(w->shuffle, NULL);
    qn_buf jobs = {0};
    qn_buf_printf(&jobs, "%s/jobs", w->work_dir);
    qn_rmtree(jobs.data);
    qn_mkdirs(jobs.data, 0755);
    qn_buf_release(&jobs);
}

/* ---- plugins and datasets ------------------------------------------------ */

static void s_wait_remove(qn_worker *w, size_t i)
{
    quern__task_spec__free_unpacked(w->wait.v[i].spec, NULL);
    w->wait.v[i] = w->wait.v[--w->wait.n];
}

/* Fail an assignment that never started (its plugin could not be had). */
static void s_wait_fail(qn_worker *w, size_t i, Quern__TaskState state,
                        const char *why)
{
    const Quern__TaskSpec *sp = w->wait.v[i].spec;
    qn_attempt_ref a = {
        .kind = sp->kind, .task = sp->task, .attempt = sp->attempt};
    snprintf(a.job_id, sizeof a.job_id, "%s", sp->job_id);
    Quern__TaskUpdate u = QUERN__TASK_UPDATE__INIT;
    u.state = state;
    u.reason = (char *)why;
    qn_masterlink_update(w, &a, &u);
    s_wait_remove(w, i);
}

static void s_ask_plugin(qn_worker *w, const char *hash)
{
    Quern__Envelope env = QUERN__ENVELOPE__INIT;
    Quern__PluginRequest r = QUERN__PLUGIN_REQUEST__INIT;
    r.worker_id = w->id;
    r.session = w->link.session;
    r.hash = (char *)hash;
    env.body_case = QUERN__ENVELOPE__BODY_PLUGIN_REQUEST;
    env.plugin_request = &r;
    qn_masterlink_send(w, &env);
}

/*
 * An assignment: start it if its plugin is in the cache, or keep it (the
 * spec is taken from env) and ask the master for the plugin.
 */
static void s_assign(qn_worker *w, Quern__Envelope *env, int64_t now)
{
    Quern__TaskSpec *spec = env->assign_task->spec;
    if (spec->kind == QUERN__TASK_KIND__COPY || !spec->plugin_hash[0]) {
        s_start(w, spec);
        return;
    }
    qn_buf p = {0};
    s_plugin_path(w, spec->plugin_hash, &p);
    int have = access(p.data, R_OK) == 0;
    qn_buf_release(&p);
    if (have) {
        s_start(w, spec);
        return;
    }
    int asked = 0;
    for (size_t i = 0; i < w->wait.n; i++) {
        const Quern__TaskSpec *o = w->wait.v[i].spec;
        if (strcmp(o->plugin_hash, spec->plugin_hash) == 0)
            asked = 1;
        if (strcmp(o->job_id, spec->job_id) == 0 && o->kind == spec->kind &&
            o->task == spec->task && o->attempt == spec->attempt)
            return; /* a duplicate assignment */
    }
    w->wait.v = qn_realloc(w->wait.v, (w->wait.n + 1) * sizeof *w->wait.v);
    w->wait.v[w->wait.n++] = (qn_waiting){.spec = spec, .asked = now};
    env->assign_task->spec = NULL; /* ours now */
    if (!asked) {
        qn_debug("worker %s: fetching plugin %s from the master", w->id,
                 spec->plugin_hash);
        s_ask_plugin(w, spec->plugin_hash);
    }
}

/* Ask again for plugins whose answer did not come. */
static void s_plugin_retry(qn_worker *w, int64_t now)
{
    for (size_t i = 0; i < w->wait.n; i++) {
        if (now - w->wait.v[i].asked < PLUGIN_RETRY_MS)
            continue;
        const char *hash = w->wait.v[i].spec->plugin_hash;
        for (size_t k = i; k < w->wait.n; k++)
            if (strcmp(w->wait.v[k].spec->plugin_hash, hash) == 0)
                w->wait.v[k].asked = now;
        s_ask_plugin(w, hash);
    }
}

static void s_on_plugin(qn_worker *w, const Quern__PluginReply *r)
{
    char why[400] = "";
    if (r->error[0]) {
        snprintf(why, sizeof why, "the master cannot supply plugin %s: %s",
                 r->hash, r->error);
    } else {
        uint8_t d[32];
        char hex[65];
        qn_sha256(r->data.data, r->data.len, d);
        qn_sha256_hex(d, hex);
        if (strcmp(hex, r->hash) != 0) {
            snprintf(why, sizeof why,
                     "plugin %s arrived with SHA-256 %s; not used", r->hash,
                     hex);
        } else {
            qn_buf p = {0};
            s_plugin_path(w, r->hash, &p);
            int e = qn_write_file_atomic(p.data, r->data.data, r->data.len);
            if (e < 0)
                snprintf(why, sizeof why, "cannot store plugin in %s: %s",
                         p.data, strerror(-e));
            else
                qn_info("worker %s: cached plugin %s (%zu bytes)", w->id,
                        r->hash, r->data.len);
            qn_buf_release(&p);
        }
    }
    if (why[0])
        qn_warn("worker %s: %s", w->id, why);
    for (size_t i = 0; i < w->wait.n;) {
        if (strcmp(w->wait.v[i].spec->plugin_hash, r->hash) != 0) {
            i++;
        } else if (why[0]) {
            s_wait_fail(w, i, QUERN__TASK_STATE__FAILED, why);
        } else {
            s_start(w, w->wait.v[i].spec);
            s_wait_remove(w, i);
        }
    }
}

/* Kill capped attempts whose resident memory is over the cap. */
static void s_check_memory(qn_worker *w, int64_t now)
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
            s_kill(a);
        }
    }
}

/* ---- the loop ------------------------------------------------------------ */

/* A welcome: a new session, or word that the master does not know us. */
static void s_on_welcome(qn_worker *w, const Quern__WorkerWelcome *ww,
                         int64_t now)
{
    if (ww->rejoin) {
        qn_info("worker %s: the master does not know us (it may have "
                "restarted); dropping our attempts and map outputs "
                "and joining again",
                w->id);
        s_forget_everything(w);
        qn_masterlink_rejoin(w, now);
    } else if (!w->link.welcomed) {
        if (ww->reset) {
            qn_info("worker %s: the master had given us up for dead; "
                    "dropping our attempts and map outputs",
                    w->id);
            s_forget_everything(w);
        }
        qn_masterlink_joined(w, ww, now);
    }
}

static void s_on_master(qn_worker *w, int64_t now)
{
    for (int budget = 0; budget < 256; budget++) {
        int r = qn_wire_recv(w->link.sock, 0, &w->link.in);
        if (r == 0)
            return;
        if (r < 0) {
            qn_warn("worker %s: dropped a malformed message from the master",
                    w->id);
            continue;
        }
        Quern__Envelope *env;
        char err[256];
        uint32_t theirs = 0;
        int rc = qn_wire_decode(w->link.in.env.data, w->link.in.env.len, &env,
                                &theirs, err, sizeof err);
        if (rc == -QN_WIRE_EVERSION) {
            qn_masterlink_refused(w, env, theirs, now);
            qn_wire_free(env);
            continue;
        }
        if (rc < 0) {
            qn_warn("worker %s: dropped a bad message from the master: %s",
                    w->id, err);
            continue;
        }
        w->link.heard = now;
        switch (env->body_case) {
        case QUERN__ENVELOPE__BODY_WORKER_WELCOME:
            s_on_welcome(w, env->worker_welcome, now);
            break;
        case QUERN__ENVELOPE__BODY_ASSIGN_TASK: s_assign(w, env, now); break;
        case QUERN__ENVELOPE__BODY_PLUGIN_REPLY:
            s_on_plugin(w, env->plugin_reply);
            break;
        case QUERN__ENVELOPE__BODY_DATA_COMMAND:
            qn_datacmd_handle(w, env->data_command);
            break;
        case QUERN__ENVELOPE__BODY_CANCEL_TASK:
            s_cancel(w, env->cancel_task->attempt);
            break;
        case QUERN__ENVELOPE__BODY_JOB_END:
            s_job_end(w, env->job_end->job_id);
            break;
        case QUERN__ENVELOPE__BODY_MAP_LOCATIONS: s_locations(w, env); break;
        case QUERN__ENVELOPE__BODY_LOGS_REQUEST:
            qn_tasklogs_on_request(w, env->logs_request);
            break;
        default:
            qn_warn("worker %s: unexpected %s from the master", w->id,
                    qn_wire_name(env));
        }
        qn_wire_free(env);
    }
}

int qn_worker_run(qn_worker *w)
{
    int64_t now = qn_now_ms();
    qn_masterlink_hello(w, now);
    zmq_pollitem_t *items = NULL;
    size_t cap = 0;
    while (!w->stop) {
        size_t n = 4 + w->att.n;
        if (n > cap) {
            cap = n * 2;
            items = qn_realloc(items, cap * sizeof *items);
        }
        memset(items, 0, n * sizeof *items);
        items[0].socket = w->link.sock;
        items[0].events = ZMQ_POLLIN;
        items[1].socket = qn_shuffle_socket(w->shuffle);
        items[1].events = ZMQ_POLLIN;
        items[2].fd = w->sigfd;
        items[2].events = ZMQ_POLLIN;
        items[3].socket = w->zap ? qn_zap_socket(w->zap) : NULL;
        items[3].fd = -1;
        items[3].events = w->zap ? ZMQ_POLLIN : 0;
        for (size_t i = 0; i < w->att.n; i++) {
            items[4 + i].fd = w->att.v[i].st.fd; /* -1 once closed: ignored */
            items[4 + i].events =
                w->att.v[i].st.fd < 0
                    ? 0
                    : ZMQ_POLLIN | (w->att.v[i].out.len > w->att.v[i].out_off
                                        ? ZMQ_POLLOUT
                                        : 0);
        }
        int64_t due =
            w->link.welcomed ? w->link.next_heartbeat : w->link.next_hello;
        if (w->cfg.task_mem_mb && w->att.n && w->att.next_mem_check < due)
            due = w->att.next_mem_check;
        if (w->wait.n && w->wait.v[0].asked + PLUGIN_RETRY_MS < due)
            due = w->wait.v[0].asked + PLUGIN_RETRY_MS;
        now = qn_now_ms();
        long timeout = due > now ? (long)(due - now) : 0;
        if (zmq_poll(items, (int)n, timeout) < 0 && errno != EINTR) {
            qn_error("worker %s: poll: %s", w->id, zmq_strerror(errno));
            free(items);
            return 1;
        }
        now = qn_now_ms();
        if (items[2].revents & ZMQ_POLLIN) {
            int child = 0;
            qn_signals_read(w->sigfd, &w->stop, &child);
        }
        /* Attempts' channels before reaping, so reports come first. */
        size_t natt = w->att.n;
        for (size_t i = 0; i < natt && i < w->att.n; i++) {
            if (items[4 + i].revents & ZMQ_POLLOUT)
                s_flush_out(&w->att.v[i]);
            if (items[4 + i].revents & ZMQ_POLLIN)
                s_on_ctl(w, &w->att.v[i]);
        }
        if (items[3].revents & ZMQ_POLLIN)
            qn_zap_handle(w->zap);
        s_reap(w);
        if (items[0].revents & ZMQ_POLLIN)
            s_on_master(w, now);
        if (items[1].revents & ZMQ_POLLIN)
            qn_shuffle_handle(w->shuffle);
        s_check_memory(w, now);
        s_plugin_retry(w, now);
        if (w->store)
            qn_store_expire_uploads(w->store, now, UPLOAD_IDLE_MS);
        qn_masterlink_data_report(w);
        if (!w->link.welcomed && now >= w->link.next_hello)
            qn_masterlink_hello(w, now);
        if (w->link.welcomed && now >= w->link.next_heartbeat)
            qn_masterlink_heartbeat(w, now);
        qn_masterlink_check(w, now);
    }
    free(items);
    qn_info("worker %s: stopping", w->id);
    return 0;
}

void qn_worker_destroy(qn_worker **self_p)
{
    qn_worker *w = *self_p;
    if (!w)
        return;
    /* Kill every attempt and wait for each: SIGKILL cannot be ignored. */
    for (size_t i = 0; i < w->att.n; i++) {
        s_kill(&w->att.v[i]);
        waitpid(w->att.v[i].pid, NULL, 0);
        if (w->att.v[i].st.fd >= 0)
            close(w->att.v[i].st.fd);
        qn_attempt_release(&w->att.v[i]);
    }
    free(w->att.v);
    while (w->wait.n)
        s_wait_remove(w, 0);
    free(w->wait.v);
    qn_shuffle_destroy(&w->shuffle);
    qn_store_destroy(&w->store);
    qn_zap_destroy(&w->zap);
    qn_masterlink_close(w);
    if (w->ctx)
        zmq_ctx_term(w->ctx);
    qn_curve_release(&w->curve);
    if (w->sigfd >= 0)
        close(w->sigfd);
    if (w->own_work_dir)
        qn_rmtree(w->work_dir);
    free(w->work_dir);
    free(w->task_bin);
    free(w);
    *self_p = NULL;
}
