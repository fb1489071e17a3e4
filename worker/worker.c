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

#include "log.h"
#include "proc.h"
#include "shuffle.h"
#include "task.h"
#include "util.h"
#include "wire.h"

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
#include <sys/wait.h>
#include <unistd.h>
#include <zmq.h>

#define HELLO_RETRY_MS 1000    /* first wait for a welcome */
#define HELLO_RETRY_MAX 8000   /* backoff cap */
#define MASTER_SILENT_BEATS 5  /* heartbeats unanswered: the master is gone */
#define MASTER_SILENT_MIN 3000 /* ... but never less than this (ms) */
#define STDERR_TAIL 2048       /* bytes of a failed attempt's stderr sent */

typedef struct {
    char job_id[72];
    int kind;
    unsigned task, attempt;
    pid_t pid;
    qn_stream st; /* control channel (st.fd) */
    char *stderr_path;
    Quern__Envelope *final; /* the task's last word, until it exits */
    char *bad_msg;          /* why its channel was closed early */
    int cancelled;
    qn_gasp *gasp; /* the record a map is in, shared with it */
    char **shards; /* map: its input pieces' names, for reports */
    size_t nshards;
    uint64_t records, bytes; /* how far it got, from its reports */
    qn_buf out;              /* frames for the task not yet written */
    size_t out_off;
} s_attempt;

#define TASK_OUT_MAX (1024 * 1024) /* bytes queued for one task at most */

struct qn_worker {
    qn_worker_config cfg;
    char id[72];
    char host[128];
    char *work_dir;
    int own_work_dir; /* made by us: remove at exit */
    char *task_bin;   /* quern-task */
    void *ctx;
    void *master; /* DEALER */
    qn_shuffle *shuffle;
    int sigfd;
    int stop;
    int welcomed;
    unsigned heartbeat_ms;
    int64_t next_hello, hello_backoff, next_heartbeat;
    uint64_t heartbeat_seq;
    int64_t heard; /* when the master last said anything */
    s_attempt *att;
    size_t natt, cap_att;
    qn_frames in;
};

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

    w->sigfd = qn_signals_open();
    if (w->sigfd < 0) {
        snprintf(err, errcap, "signalfd: %s", strerror(-w->sigfd));
        goto fail;
    }
    w->ctx = zmq_ctx_new();
    w->master = qn_wire_socket(w->ctx, ZMQ_DEALER);
    if (zmq_connect(w->master, cfg->master) < 0) {
        snprintf(err, errcap, "bad master endpoint '%s': %s", cfg->master,
                 zmq_strerror(errno));
        goto fail;
    }
    w->shuffle = qn_shuffle_new(
        w->ctx, cfg->shuffle ? cfg->shuffle : "tcp://127.0.0.1:*", w->work_dir,
        err, errcap);
    if (!w->shuffle)
        goto fail;
    w->heartbeat_ms = 1000;
    w->hello_backoff = HELLO_RETRY_MS;
    return w;
fail:
    qn_worker_destroy(&w);
    return NULL;
}

/* ---- talking to the master ----------------------------------------------- */

static void s_send_master(qn_worker *w, Quern__Envelope *env)
{
    int rc = qn_wire_send(w->master, NULL, 0, env, NULL, 0);
    if (rc < 0)
        qn_warn("worker %s: cannot send %s to the master: %s", w->id,
                qn_wire_name(env), zmq_strerror(-rc));
}

static void s_hello(qn_worker *w, int64_t now)
{
    Quern__Envelope env = QUERN__ENVELOPE__INIT;
    Quern__WorkerHello h = QUERN__WORKER_HELLO__INIT;
    h.worker_id = w->id;
    h.slots = w->cfg.slots;
    h.shuffle_endpoint = (char *)qn_shuffle_endpoint(w->shuffle);
    h.host = w->host;
    h.pid = (uint32_t)getpid();
    env.body_case = QUERN__ENVELOPE__BODY_WORKER_HELLO;
    env.worker_hello = &h;
    s_send_master(w, &env);
    w->next_hello = now + w->hello_backoff;
    if (w->hello_backoff < HELLO_RETRY_MAX)
        w->hello_backoff *= 2;
}

static void s_heartbeat(qn_worker *w, int64_t now)
{
    Quern__Envelope env = QUERN__ENVELOPE__INIT;
    Quern__Heartbeat hb = QUERN__HEARTBEAT__INIT;
    Quern__AttemptRef *refs = qn_calloc(w->natt ? w->natt : 1, sizeof *refs);
    Quern__AttemptRef **ptrs = qn_calloc(w->natt ? w->natt : 1, sizeof *ptrs);
    Quern__AttemptWork *work = qn_calloc(w->natt ? w->natt : 1, sizeof *work);
    Quern__AttemptWork **wptrs =
        qn_calloc(w->natt ? w->natt : 1, sizeof *wptrs);
    for (size_t i = 0; i < w->natt; i++) {
        quern__attempt_ref__init(&refs[i]);
        refs[i].job_id = w->att[i].job_id;
        refs[i].kind = w->att[i].kind;
        refs[i].task = w->att[i].task;
        refs[i].attempt = w->att[i].attempt;
        ptrs[i] = &refs[i];
        quern__attempt_work__init(&work[i]);
        work[i].attempt = &refs[i];
        work[i].records = w->att[i].records;
        work[i].bytes = w->att[i].bytes;
        wptrs[i] = &work[i];
    }
    hb.worker_id = w->id;
    hb.running = ptrs;
    hb.n_running = w->natt;
    hb.work = wptrs;
    hb.n_work = w->natt;
    hb.seq = ++w->heartbeat_seq;
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    hb.rss_peak = (uint64_t)ru.ru_maxrss * 1024;
    env.body_case = QUERN__ENVELOPE__BODY_HEARTBEAT;
    env.heartbeat = &hb;
    s_send_master(w, &env);
    free(refs);
    free(ptrs);
    free(work);
    free(wptrs);
    w->next_heartbeat = now + w->heartbeat_ms;
}

/* ---- attempts ------------------------------------------------------------ */

static s_attempt *s_find(qn_worker *w, const char *job, int kind, unsigned task,
                         unsigned attempt)
{
    for (size_t i = 0; i < w->natt; i++) {
        s_attempt *a = &w->att[i];
        if (strcmp(a->job_id, job) == 0 && a->kind == kind && a->task == task &&
            a->attempt == attempt)
            return a;
    }
    return NULL;
}

static void s_kill(s_attempt *a)
{
    if (a->pid > 0)
        kill(-a->pid, SIGKILL); /* its process group */
}

/* Free what an attempt holds (not its slot in w->att). */
static void s_attempt_release(s_attempt *a)
{
    qn_wire_free(a->final);
    a->final = NULL;
    qn_buf_release(&a->st.in);
    qn_buf_release(&a->out);
    free(a->bad_msg);
    free(a->stderr_path);
    for (size_t i = 0; i < a->nshards; i++)
        free(a->shards[i]);
    free(a->shards);
    if (a->gasp)
        munmap((void *)a->gasp, sizeof(qn_gasp));
    memset(a, 0, sizeof *a);
    a->st.fd = -1;
}

/* Send a TaskUpdate for an attempt to the master. */
static void s_report(qn_worker *w, s_attempt *a, Quern__TaskUpdate *u)
{
    Quern__Envelope env = QUERN__ENVELOPE__INIT;
    Quern__AttemptRef ref = QUERN__ATTEMPT_REF__INIT;
    ref.job_id = a->job_id;
    ref.kind = a->kind;
    ref.task = a->task;
    ref.attempt = a->attempt;
    Quern__AttemptRef *saved = u->attempt;
    char *saved_id = u->worker_id;
    u->attempt = &ref;
    u->worker_id = w->id;
    env.body_case = QUERN__ENVELOPE__BODY_TASK_UPDATE;
    env.task_update = u;
    s_send_master(w, &env);
    u->attempt = saved;
    u->worker_id = saved_id;
}

static void s_start(qn_worker *w, Quern__TaskSpec *spec)
{
    if (s_find(w, spec->job_id, spec->kind, spec->task, spec->attempt))
        return; /* a duplicate assignment */
    qn_buf dir = {0}, log = {0};
    qn_buf_printf(&dir, "%s/jobs/%s/logs", w->work_dir, spec->job_id);
    qn_mkdirs(dir.data, 0755);
    qn_buf_printf(&log, "%s/%c-%05u-a%u.stderr", dir.data,
                  spec->kind == QUERN__TASK_KIND__MAP ? 'm' : 'r', spec->task,
                  spec->attempt);
    qn_buf_release(&dir);

    if (w->natt == w->cap_att) {
        w->cap_att = w->cap_att ? w->cap_att * 2 : 8;
        w->att = qn_realloc(w->att, w->cap_att * sizeof *w->att);
    }
    s_attempt *a = &w->att[w->natt];
    memset(a, 0, sizeof *a);
    snprintf(a->job_id, sizeof a->job_id, "%s", spec->job_id);
    a->kind = spec->kind;
    a->task = spec->task;
    a->attempt = spec->attempt;
    a->stderr_path = log.data;
    a->st.fd = -1;
    if (spec->kind == QUERN__TASK_KIND__MAP && spec->n_inputs) {
        a->shards = qn_calloc(spec->n_inputs, sizeof *a->shards);
        a->nshards = spec->n_inputs;
        for (size_t i = 0; i < spec->n_inputs; i++)
            a->shards[i] = qn_strdup(spec->inputs[i]->name);
    }

    /*
     * The spec goes in a memory file on the task's fd 4, so handing over a
     * large one never blocks this loop; progress and the result come back
     * on a socketpair on fd 3.
     */
    const char *why = NULL;
    int sv[2] = {-1, -1};
    int spec_fd = memfd_create("quern-task-spec", MFD_CLOEXEC);
    char *saved = spec->work_dir;
    spec->work_dir = w->work_dir;
    Quern__Envelope env = QUERN__ENVELOPE__INIT;
    env.body_case = QUERN__ENVELOPE__BODY_TASK_SPEC;
    env.task_spec = spec;
    if (spec_fd < 0 || qn_wire_write_fd(spec_fd, &env) < 0 ||
        lseek(spec_fd, 0, SEEK_SET) < 0)
        why = "cannot write the task's spec";
    spec->work_dir = saved;
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
    if (spec_fd >= 0)
        close(spec_fd);
    if (gasp_fd >= 0)
        close(gasp_fd);
    if (sv[1] >= 0)
        close(sv[1]);
    if (why) {
        qn_error("worker %s: job %s task %u: %s: %s", w->id, a->job_id, a->task,
                 why, strerror(e));
        if (sv[0] >= 0)
            close(sv[0]);
        Quern__TaskUpdate u = QUERN__TASK_UPDATE__INIT;
        u.state = QUERN__TASK_STATE__FAILED;
        qn_buf reason = {0};
        qn_buf_printf(&reason, "worker %s %s: %s", w->id, why, strerror(e));
        u.reason = reason.data;
        s_report(w, a, &u);
        qn_buf_release(&reason);
        s_attempt_release(a);
        return;
    }
    a->pid = pid;
    a->st.fd = sv[0];
    w->natt++;
    fcntl(a->st.fd, F_SETFL, fcntl(a->st.fd, F_GETFL) | O_NONBLOCK);
    qn_debug("worker %s: started job %s %s task %u attempt %u as pid %d", w->id,
             a->job_id, a->kind ? "reduce" : "map", a->task, a->attempt,
             (int)pid);
}

/*
 * Read what an attempt's process sent: forward progress, keep the end.
 * Returns the bytes read (0 when nothing was waiting); the channel is
 * closed at EOF or when the task sends something malformed (the reason is
 * kept for the failure report).
 */
static int s_on_ctl(qn_worker *w, s_attempt *a)
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
                    a->job_id, a->task, err);
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
            s_report(w, a, env->task_update);
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
    s_attempt *a = &w->att[idx];
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

    if (fin && clean && fin->state == QUERN__TASK_STATE__SUCCEEDED) {
        fin->rss_peak = rss;
        s_report(w, a, fin);
        qn_debug("worker %s: job %s %s task %u attempt %u succeeded", w->id,
                 a->job_id, a->kind ? "reduce" : "map", a->task, a->attempt);
    } else {
        Quern__TaskUpdate u = QUERN__TASK_UPDATE__INIT;
        qn_buf reason = {0};
        if (a->cancelled) {
            u.state = QUERN__TASK_STATE__KILLED;
            qn_buf_printf(&reason, "killed on the master's request");
        } else {
            u.state = QUERN__TASK_STATE__FAILED;
            if (fin && fin->state == QUERN__TASK_STATE__FAILED &&
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
        /* The last gasp: which record map() was in when it died. */
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
        s_report(w, a, &u);
        if (!a->cancelled)
            qn_warn("worker %s: job %s %s task %u attempt %u failed: %s", w->id,
                    a->job_id, a->kind ? "reduce" : "map", a->task, a->attempt,
                    reason.data);
        free(tail);
        qn_buf_release(&reason);
    }
    s_attempt_release(a);
    w->att[idx] = w->att[--w->natt];
}

static void s_reap(qn_worker *w)
{
    for (;;) {
        int status;
        struct rusage ru;
        pid_t pid = qn_reap(&status, &ru);
        if (pid <= 0)
            return;
        for (size_t i = 0; i < w->natt; i++) {
            if (w->att[i].pid == pid) {
                s_finish(w, i, status, &ru);
                break;
            }
        }
    }
}

static void s_cancel(qn_worker *w, const Quern__AttemptRef *r)
{
    s_attempt *a = s_find(w, r->job_id, r->kind, r->task, r->attempt);
    if (!a)
        return;
    a->cancelled = 1;
    s_kill(a);
}

/* Write what is queued for a task as far as its socket takes it. */
static void s_flush_out(s_attempt *a)
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
    s_attempt *a = s_find(w, r->job_id, r->kind, r->task, r->attempt);
    if (!a || a->st.fd < 0)
        return; /* it ended meanwhile */
    if (a->out.len - a->out_off > TASK_OUT_MAX ||
        qn_wire_append(&a->out, env) < 0) {
        qn_debug("worker %s: job %s reduce task %u is not reading; dropped "
                 "a map location for it",
                 w->id, a->job_id, a->task);
        return;
    }
    s_flush_out(a);
}

static void s_job_end(qn_worker *w, const char *job_id)
{
    if (!qn_id_ok(job_id))
        return;
    for (size_t i = 0; i < w->natt; i++) {
        if (strcmp(w->att[i].job_id, job_id) == 0) {
            w->att[i].cancelled = 1;
            s_kill(&w->att[i]);
        }
    }
    qn_shuffle_forget_job(w->shuffle, job_id);
    qn_buf dir = {0};
    qn_buf_printf(&dir, "%s/jobs/%s", w->work_dir, job_id);
    qn_rmtree(dir.data);
    qn_buf_release(&dir);
}

/*
 * A master that does not know us knows none of our attempts or map
 * outputs either: kill the one, delete the other, so nothing of an earlier
 * master's jobs can be mistaken for the new master's.
 */
static void s_forget_everything(qn_worker *w)
{
    for (size_t i = 0; i < w->natt; i++) {
        w->att[i].cancelled = 1;
        s_kill(&w->att[i]);
    }
    qn_shuffle_forget_job(w->shuffle, NULL);
    qn_buf jobs = {0};
    qn_buf_printf(&jobs, "%s/jobs", w->work_dir);
    qn_rmtree(jobs.data);
    qn_mkdirs(jobs.data, 0755);
    qn_buf_release(&jobs);
}

/* ---- the loop ------------------------------------------------------------ */

static void s_on_master(qn_worker *w, int64_t now)
{
    for (int budget = 0; budget < 256; budget++) {
        int r = qn_wire_recv(w->master, 0, &w->in);
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
        int rc = qn_wire_decode(w->in.env.data, w->in.env.len, &env, &theirs,
                                err, sizeof err);
        if (rc == -QN_WIRE_EVERSION) {
            if (env && env->body_case == QUERN__ENVELOPE__BODY_REFUSAL)
                qn_error("worker %s: the master refused us: %s", w->id,
                         env->refusal->reason);
            else
                qn_error("worker %s: the master speaks protocol version %u, "
                         "this worker speaks %u",
                         w->id, theirs, QN_PROTOCOL_VERSION);
            qn_wire_free(env);
            continue;
        }
        if (rc < 0) {
            qn_warn("worker %s: dropped a bad message from the master: %s",
                    w->id, err);
            continue;
        }
        w->heard = now;
        switch (env->body_case) {
        case QUERN__ENVELOPE__BODY_WORKER_WELCOME:
            if (env->worker_welcome->rejoin) {
                qn_info("worker %s: the master does not know us (it may have "
                        "restarted); dropping our attempts and map outputs "
                        "and joining again",
                        w->id);
                s_forget_everything(w);
                w->welcomed = 0;
                w->hello_backoff = HELLO_RETRY_MS;
                s_hello(w, now);
            } else if (!w->welcomed) {
                if (env->worker_welcome->reset) {
                    qn_info("worker %s: the master had given us up for dead; "
                            "dropping our attempts and map outputs",
                            w->id);
                    s_forget_everything(w);
                }
                w->welcomed = 1;
                w->heard = now;
                w->hello_backoff = HELLO_RETRY_MS;
                if (env->worker_welcome->heartbeat_ms >= 10)
                    w->heartbeat_ms = env->worker_welcome->heartbeat_ms;
                qn_info("worker %s: joined the master at %s with %u slots, "
                        "shuffle on %s",
                        w->id, w->cfg.master, w->cfg.slots,
                        qn_shuffle_endpoint(w->shuffle));
                s_heartbeat(w, now);
            }
            break;
        case QUERN__ENVELOPE__BODY_ASSIGN_TASK:
            s_start(w, env->assign_task->spec);
            break;
        case QUERN__ENVELOPE__BODY_CANCEL_TASK:
            s_cancel(w, env->cancel_task->attempt);
            break;
        case QUERN__ENVELOPE__BODY_JOB_END:
            s_job_end(w, env->job_end->job_id);
            break;
        case QUERN__ENVELOPE__BODY_MAP_LOCATIONS: s_locations(w, env); break;
        default:
            qn_warn("worker %s: unexpected %s from the master", w->id,
                    qn_wire_name(env));
        }
        qn_wire_free(env);
    }
}

/*
 * The master answers every heartbeat. When it has not for a while it is
 * gone (or the network is): drop what is queued for it on a fresh socket
 * and say hello again, with backoff, until a master welcomes us.
 */
static void s_check_master(qn_worker *w, int64_t now)
{
    int64_t silent = (int64_t)w->heartbeat_ms * MASTER_SILENT_BEATS;
    if (silent < MASTER_SILENT_MIN)
        silent = MASTER_SILENT_MIN;
    if (!w->welcomed || now - w->heard < silent)
        return;
    qn_warn("worker %s: the master at %s has not answered for %lld ms; "
            "connecting again",
            w->id, w->cfg.master, (long long)(now - w->heard));
    void *sock = qn_wire_socket(w->ctx, ZMQ_DEALER);
    if (!sock || zmq_connect(sock, w->cfg.master) < 0) {
        if (sock)
            zmq_close(sock);
        w->heard = now; /* try again later */
        return;
    }
    zmq_close(w->master);
    w->master = sock;
    w->welcomed = 0;
    w->heard = now;
    w->hello_backoff = HELLO_RETRY_MS;
    s_hello(w, now);
}

int qn_worker_run(qn_worker *w)
{
    int64_t now = qn_now_ms();
    s_hello(w, now);
    zmq_pollitem_t *items = NULL;
    size_t cap = 0;
    while (!w->stop) {
        size_t n = 3 + w->natt;
        if (n > cap) {
            cap = n * 2;
            items = qn_realloc(items, cap * sizeof *items);
        }
        memset(items, 0, n * sizeof *items);
        items[0].socket = w->master;
        items[0].events = ZMQ_POLLIN;
        items[1].socket = qn_shuffle_socket(w->shuffle);
        items[1].events = ZMQ_POLLIN;
        items[2].fd = w->sigfd;
        items[2].events = ZMQ_POLLIN;
        for (size_t i = 0; i < w->natt; i++) {
            items[3 + i].fd = w->att[i].st.fd; /* -1 once closed: ignored */
            items[3 + i].events =
                w->att[i].st.fd < 0
                    ? 0
                    : ZMQ_POLLIN |
                          (w->att[i].out.len > w->att[i].out_off ? ZMQ_POLLOUT
                                                                 : 0);
        }
        int64_t due = w->welcomed ? w->next_heartbeat : w->next_hello;
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
        size_t natt = w->natt;
        for (size_t i = 0; i < natt && i < w->natt; i++) {
            if (items[3 + i].revents & ZMQ_POLLOUT)
                s_flush_out(&w->att[i]);
            if (items[3 + i].revents & ZMQ_POLLIN)
                s_on_ctl(w, &w->att[i]);
        }
        s_reap(w);
        if (items[0].revents & ZMQ_POLLIN)
            s_on_master(w, now);
        if (items[1].revents & ZMQ_POLLIN)
            qn_shuffle_handle(w->shuffle);
        if (!w->welcomed && now >= w->next_hello)
            s_hello(w, now);
        if (w->welcomed && now >= w->next_heartbeat)
            s_heartbeat(w, now);
        s_check_master(w, now);
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
    for (size_t i = 0; i < w->natt; i++) {
        s_kill(&w->att[i]);
        waitpid(w->att[i].pid, NULL, 0);
        if (w->att[i].st.fd >= 0)
            close(w->att[i].st.fd);
        s_attempt_release(&w->att[i]);
    }
    free(w->att);
    qn_shuffle_destroy(&w->shuffle);
    if (w->master)
        zmq_close(w->master);
    if (w->ctx)
        zmq_ctx_term(w->ctx);
    if (w->sigfd >= 0)
        close(w->sigfd);
    if (w->own_work_dir)
        qn_rmtree(w->work_dir);
    free(w->work_dir);
    free(w->task_bin);
    qn_frames_release(&w->in);
    free(w);
    *self_p = NULL;
}
