/*
 * client.c -- see client.h.
 */
#include "client.h"

#include "curve.h"
#include "proc.h"
#include "statusjson.h"
#include "util.h"

#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zmq.h>

#define SILENCE_MS 60000 /* no word from the master this long: give up */
/* Silent this long: ask again (it may have restarted), every 250 ms at
 * first, then every second (a job may end soon after it is back). */
#define ASK_AFTER_MS 2000
#define ASK_MAX_MS 1000
#define PLAIN_EVERY_MS 5000 /* progress lines off a terminal */

struct qn_client {
    void *ctx, *sock;
    char endpoint[256];
    qn_frames in;
};

qn_client *qn_client_new(const char *endpoint, const qn_curve *curve)
{
    qn_client *c = qn_calloc(1, sizeof *c);
    snprintf(c->endpoint, sizeof c->endpoint, "%s", endpoint);
    c->ctx = zmq_ctx_new();
    c->sock = qn_wire_socket(c->ctx, ZMQ_DEALER);
    if (curve && curve->secret_key[0] &&
        qn_curve_client(c->sock, curve, curve->master_key) < 0) {
        qn_client_destroy(&c);
        return NULL;
    }
    if (zmq_connect(c->sock, endpoint) < 0) {
        qn_client_destroy(&c);
        return NULL;
    }
    return c;
}

void *qn_client_ctx(qn_client *c)
{
    return c->ctx;
}

void qn_client_destroy(qn_client **self_p)
{
    qn_client *c = *self_p;
    if (!c)
        return;
    zmq_close(c->sock);
    zmq_ctx_term(c->ctx);
    qn_frames_release(&c->in);
    free(c);
    *self_p = NULL;
}

/* Receive and decode one message if there is one: 1, 0, or an exit code. */
static int s_recv(qn_client *c, Quern__Envelope **out, char *err, size_t errcap)
{
    int r = qn_wire_recv(c->sock, 0, &c->in);
    if (r == 0)
        return 0;
    if (r < 0)
        return 0; /* malformed: ignore it */
    uint32_t theirs = 0;
    char why[256];
    int rc = qn_wire_decode(c->in.env.data, c->in.env.len, out, &theirs, why,
                            sizeof why);
    if (rc == -QN_WIRE_EVERSION) {
        snprintf(err, errcap,
                 "the master at %s speaks Quern protocol version %u and this "
                 "client speaks %u; use the quern command of the same "
                 "release",
                 c->endpoint, theirs, QN_PROTOCOL_VERSION);
        qn_wire_free(*out);
        *out = NULL;
        return -QN_EXIT_USAGE;
    }
    return rc < 0 ? 0 : 1;
}

int qn_client_call(qn_client *c, Quern__Envelope *req, Quern__Envelope **reply,
                   int timeout_ms, char *err, size_t errcap)
{
    *reply = NULL;
    if (qn_wire_send(c->sock, NULL, 0, req, NULL, 0) < 0) {
        snprintf(err, errcap, "cannot send to the master at %s", c->endpoint);
        return QN_EXIT_UNREACHABLE;
    }
    int64_t deadline = qn_now_ms() + timeout_ms;
    for (;;) {
        int64_t left = deadline - qn_now_ms();
        if (left <= 0)
            break;
        zmq_pollitem_t it = {.socket = c->sock, .events = ZMQ_POLLIN};
        if (zmq_poll(&it, 1, (long)left) < 0 && errno != EINTR)
            break;
        if (!(it.revents & ZMQ_POLLIN))
            continue;
        int r;
        while ((r = s_recv(c, reply, err, errcap)) != 0) {
            if (r < 0)
                return -r;
            /* Status pushes for a job being followed may interleave. */
            if ((*reply)->body_case == QUERN__ENVELOPE__BODY_STATUS_REPLY &&
                req->body_case != QUERN__ENVELOPE__BODY_STATUS_REQUEST) {
                qn_wire_free(*reply);
                *reply = NULL;
                continue;
            }
            return 0;
        }
    }
    snprintf(err, errcap,
             "the master at %s did not answer within %d s; is quern-master "
             "running there? (--master, or QUERN_MASTER; a master that "
             "requires CURVE answers only clients with a trusted key: "
             "--curve-secret FILE --curve-master FILE)",
             c->endpoint, timeout_ms / 1000);
    return QN_EXIT_UNREACHABLE;
}

int qn_client_ask(qn_client *c, Quern__Envelope *req, int want, int timeout_ms,
                  Quern__Envelope **reply)
{
    char err[600];
    int rc = qn_client_call(c, req, reply, timeout_ms, err, sizeof err);
    if (rc != 0) {
        fprintf(stderr, "quern: %s\n", err);
        return rc;
    }
    if ((int)(*reply)->body_case != want) {
        fprintf(stderr, "quern: the master answered with %s\n",
                qn_wire_name(*reply));
        qn_wire_free(*reply);
        *reply = NULL;
        return QN_EXIT_UNREACHABLE;
    }
    return 0;
}
/* ---- printing ------------------------------------------------------------ */

static long long s_counter(const Quern__JobStatus *st, const char *name)
{
    for (size_t i = 0; i < st->n_counters; i++)
        if (strcmp(st->counters[i]->name, name) == 0)
            return st->counters[i]->value;
    return 0;
}

/* 1234567 -> "1,234,567" */
static const char *s_num(long long v, char *buf, size_t cap)
{
    char tmp[32];
    snprintf(tmp, sizeof tmp, "%lld", v < 0 ? -v : v);
    size_t n = strlen(tmp), o = 0;
    if (v < 0 && o + 1 < cap)
        buf[o++] = '-';
    for (size_t i = 0; i < n && o + 2 < cap; i++) {
        if (i && (n - i) % 3 == 0)
            buf[o++] = ',';
        buf[o++] = tmp[i];
    }
    buf[o] = '\0';
    return buf;
}

void qn_print_job_line(FILE *f, const Quern__JobStatus *st)
{
    fprintf(f,
            "%-10s %-10s %-9s map %3.0f%% (%u/%u)  reduce %3.0f%% (%u/%u)"
            "  %.1f s\n",
            st->job_id, st->name, qn_job_state_name(st->state),
            st->map_progress * 100, st->maps_done, st->maps,
            st->reduce_progress * 100, st->reduces_done, st->reduces,
            (double)st->elapsed_ms / 1000);
}

/* The counters every job has: attempts, data, memory. */
static void s_print_counters(FILE *f, const Quern__JobStatus *st)
{
    char a[32], b[32], c[32], d[32];
    fprintf(f,
            "  attempts:   %lld map, %lld reduce; %lld failed, %lld killed, "
            "%lld backups, %lld maps run again, %lld records skipped\n",
            s_counter(st, "map_attempts"), s_counter(st, "reduce_attempts"),
            s_counter(st, "failed_attempts"), s_counter(st, "killed_attempts"),
            s_counter(st, "backup_attempts"), s_counter(st, "maps_rerun"),
            s_counter(st, "skipped_records"));
    long long local = s_counter(st, "data_local_maps");
    long long remote = s_counter(st, "remote_maps");
    if (local + remote > 0) {
        char rb[32];
        fprintf(f,
                "  locality:   %lld data-local maps, %lld remote (%s streamed "
                "from other workers)\n",
                local, remote,
                qn_fmt_bytes((uint64_t)s_counter(st, "map_remote_bytes"), rb,
                             sizeof rb));
    }
    fprintf(
        f, "  input:      %s records, %s\n",
        s_num(s_counter(st, "map_input_records"), a, sizeof a),
        qn_fmt_bytes((uint64_t)s_counter(st, "map_input_bytes"), b, sizeof b));
    if (st->warning[0])
        fprintf(f, "  warning:    %s\n", st->warning);
    fprintf(
        f, "  map output: %s records, %s",
        s_num(s_counter(st, "map_output_records"), a, sizeof a),
        qn_fmt_bytes((uint64_t)s_counter(st, "map_output_bytes"), b, sizeof b));
    long long cin = s_counter(st, "combine_input_records");
    if (cin)
        fprintf(f, "; combined %s -> %s records", s_num(cin, c, sizeof c),
                s_num(s_counter(st, "combine_output_records"), d, sizeof d));
    fprintf(f, "\n");
    fprintf(
        f, "  shuffle:    %s raw, %s compressed%s\n",
        qn_fmt_bytes((uint64_t)s_counter(st, "shuffle_bytes_raw"), a, sizeof a),
        qn_fmt_bytes((uint64_t)s_counter(st, "shuffle_bytes_compressed"), b,
                     sizeof b),
        st->master_rss_peak ? " over the sockets"
                            : " (read from disk: inline)");
    fprintf(f, "  reduce:     %s keys in, %s records out (%s)\n",
            s_num(s_counter(st, "reduce_input_groups"), a, sizeof a),
            s_num(s_counter(st, "reduce_output_records"), b, sizeof b),
            qn_fmt_bytes((uint64_t)s_counter(st, "reduce_output_bytes"), c,
                         sizeof c));
    if (st->worker_rss_peak || st->master_rss_peak)
        fprintf(f,
                "  memory:     peak RSS of a task %s, of a worker %s, of the "
                "master %s\n",
                qn_fmt_bytes(st->task_rss_peak, a, sizeof a),
                qn_fmt_bytes(st->worker_rss_peak, b, sizeof b),
                qn_fmt_bytes(st->master_rss_peak, c, sizeof c));
    else /* run inline: one process */
        fprintf(f, "  memory:     peak RSS %s\n",
                qn_fmt_bytes(st->task_rss_peak, a, sizeof a));
}

/* The job's own counters (user.*), and the records it skipped. */
static void s_print_user(FILE *f, const Quern__JobStatus *st)
{
    char a[32];
    int user = 0;
    for (size_t i = 0; i < st->n_counters; i++) {
        const char *n = st->counters[i]->name;
        if (strncmp(n, "user.", 5) != 0)
            continue;
        if (!user++)
            fprintf(f, "  counters:\n");
        fprintf(f, "    %-30s %s\n", n + 5,
                s_num(st->counters[i]->value, a, sizeof a));
    }
    if (st->n_skipped)
        fprintf(f, "  skipped records (they crashed earlier attempts):\n");
    for (size_t i = 0; i < st->n_skipped; i++)
        fprintf(
            f, "    %s at offset %llu (map task %u)\n", st->skipped[i]->shard,
            (unsigned long long)st->skipped[i]->offset, st->skipped[i]->map);
}

/* The last few lines of a failed attempt's stderr, indented. */
static void s_print_tail(FILE *f, const char *t)
{
    size_t len = strlen(t);
    int lines = 0;
    size_t from = len;
    while (from > 0 && lines < 6) {
        from--;
        if (t[from] == '\n' && from + 1 < len)
            lines++;
    }
    if (lines == 6)
        from++;
    fprintf(f, "      stderr: ");
    for (size_t k = from; k < len; k++) {
        fputc(t[k], f);
        if (t[k] == '\n' && k + 1 < len)
            fprintf(f, "              ");
    }
    if (len && t[len - 1] != '\n')
        fputc('\n', f);
}

/* Each failed attempt: where, why, and the tail of its stderr. */
static void s_print_failures(FILE *f, const Quern__JobStatus *st)
{
    if (st->n_failures)
        fprintf(f, "  failed attempts:\n");
    for (size_t i = 0; i < st->n_failures; i++) {
        const Quern__AttemptFailure *fl = st->failures[i];
        fprintf(f, "    %s task %u attempt %u on %s: %s",
                fl->kind == QUERN__TASK_KIND__MAP ? "map" : "reduce", fl->task,
                fl->attempt, fl->worker_id, fl->reason);
        if (fl->shard[0] && !strstr(fl->reason, fl->shard))
            fprintf(f, " (in the record at offset %llu of %s)",
                    (unsigned long long)fl->record_offset, fl->shard);
        else if (fl->record_offset && !fl->shard[0])
            fprintf(f, " (at input offset %llu)",
                    (unsigned long long)fl->record_offset);
        fprintf(f, "\n");
        if (fl->stderr_tail[0])
            s_print_tail(f, fl->stderr_tail);
    }
}

void qn_print_result(FILE *f, const Quern__JobStatus *st)
{
    fprintf(f, "%s (%s) %s in %.1f s\n", st->job_id, st->name,
            qn_job_state_name(st->state), (double)st->elapsed_ms / 1000);
    if (st->error[0])
        fprintf(f, "  error:      %s\n", st->error);
    if (st->state == QUERN__JOB_STATE__JOB_SUCCEEDED && st->output[0] != '/')
        fprintf(f, "  output:     dataset %s (%u shards)\n", st->output,
                st->reduces);
    else if (st->state == QUERN__JOB_STATE__JOB_SUCCEEDED)
        fprintf(f, "  output:     %s (%u part files and _SUCCESS)\n",
                st->output, st->reduces);
    fprintf(f, "  tasks:      %u/%u maps, %u/%u reduces done\n", st->maps_done,
            st->maps, st->reduces_done, st->reduces);
    s_print_counters(f, st);
    s_print_user(f, st);
    s_print_failures(f, st);
}

void qn_print_tasks(FILE *f, const Quern__JobStatus *st)
{
    fprintf(f, "  tasks:\n    %-7s %-8s %-8s %-24s %-7s %9s %5s\n", "task",
            "state", "attempt", "worker", "where", "time", "done");
    for (size_t i = 0; i < st->n_tasks; i++) {
        const Quern__TaskInfo *t = st->tasks[i];
        char tn[24], att[24] = "-", dur[32] = "-";
        qn_task_name(tn, sizeof tn, t->kind, t->index);
        if (t->attempt)
            snprintf(att, sizeof att, "%u/%u", t->attempt, t->attempts);
        if (t->started_at_ms)
            snprintf(dur, sizeof dur, "%.1f s", (double)t->duration_ms / 1000);
        const char *loc = t->locality == 1   ? "local"
                          : t->locality == 0 ? "remote"
                                             : "-";
        fprintf(f, "    %-7s %-8s %-8s %-24s %-7s %9s %4.0f%%\n", tn,
                qn_task_state_name(t->state), att,
                t->worker_id[0] ? t->worker_id : "-", loc, dur,
                t->progress * 100);
    }
}

void qn_print_json(FILE *f, json_t *v)
{
    json_dumpf(v, f, JSON_INDENT(2));
    fputc('\n', f);
    json_decref(v);
}

void qn_print_status_json(FILE *f, Quern__JobStatus **jobs, size_t n,
                          int single)
{
    json_t *root;
    if (single && n == 1) {
        root = qn_json_job(jobs[0]);
    } else {
        root = json_array();
        for (size_t i = 0; i < n; i++)
            json_array_append_new(root, qn_json_job(jobs[i]));
    }
    qn_print_json(f, root);
}

void qn_print_workers_json(FILE *f, const Quern__WorkersReply *r)
{
    json_t *root = json_array();
    for (size_t i = 0; i < r->n_workers; i++)
        json_array_append_new(root, qn_json_worker(r->workers[i]));
    qn_print_json(f, root);
}

/* ---- following a job ----------------------------------------------------- */

static void s_bar(char *out, size_t cap, double p)
{
    const int width = 20;
    int fill = (int)(p * width + 0.5);
    if (fill > width)
        fill = width;
    size_t o = 0;
    out[o++] = '[';
    for (int i = 0; i < width && o + 2 < cap; i++)
        out[o++] = i < fill ? '#' : '.';
    out[o++] = ']';
    out[o] = '\0';
}

static void s_draw(const Quern__JobStatus *st, int tty, int64_t elapsed)
{
    double p = qn_job_progress(st);
    char eta[32] = "--";
    if (p > 0.01 && p < 1)
        snprintf(eta, sizeof eta, "%.0f s",
                 (double)elapsed / 1000 * (1 - p) / p);
    if (tty) {
        char mb[32], rb[32];
        s_bar(mb, sizeof mb, st->map_progress);
        s_bar(rb, sizeof rb, st->reduce_progress);
        fprintf(stderr,
                "\r\033[K%s map %s %3.0f%%  reduce %s %3.0f%%  %.0f s, ETA %s",
                st->job_id, mb, st->map_progress * 100, rb,
                st->reduce_progress * 100, (double)elapsed / 1000, eta);
    } else {
        fprintf(stderr,
                "%s: map %.0f%% (%u/%u done), reduce %.0f%% (%u/%u done), "
                "%.0f s elapsed, ETA %s\n",
                st->job_id, st->map_progress * 100, st->maps_done, st->maps,
                st->reduce_progress * 100, st->reduces_done, st->reduces,
                (double)elapsed / 1000, eta);
    }
    fflush(stderr);
}

static int s_exit_for(const Quern__JobStatus *st)
{
    return st->state == QUERN__JOB_STATE__JOB_SUCCEEDED ? QN_EXIT_OK
                                                        : QN_EXIT_JOB_FAILED;
}

/* Ask the master to cancel; wait briefly for it to confirm. */
static void s_cancel(qn_client *c, const char *job_id)
{
    Quern__Envelope env = QUERN__ENVELOPE__INIT, *reply = NULL;
    Quern__CancelJob cj = QUERN__CANCEL_JOB__INIT;
    cj.job_id = (char *)job_id;
    env.body_case = QUERN__ENVELOPE__BODY_CANCEL_JOB;
    env.cancel_job = &cj;
    char err[256];
    if (qn_client_call(c, &env, &reply, 5000, err, sizeof err) == 0)
        qn_wire_free(reply);
}

/* What following a job knows from one poll to the next. */
typedef struct {
    qn_client *c;
    const char *job_id;
    const qn_follow_opts *o;
    int tty;               /* stderr is a terminal: draw a bar */
    Quern__Envelope *last; /* the job's latest status, or NULL */
    int64_t heard;         /* when the master last said anything */
    int64_t elapsed_base;  /* the job's elapsed time, as last said, */
    int64_t elapsed_at;    /* at this time */
    int64_t next_plain;    /* the next progress line off a terminal */
    int away;              /* the master went silent; we ask for the job */
    int64_t next_ask, ask_every;
} s_follow;

/* A signal to stop (the job is cancelled) or a local daemon that died:
 * the exit status, or -1 to go on. */
static int s_stopped(s_follow *f, int signalled)
{
    char err[512];
    if (signalled) {
        int stop = 0;
        qn_signals_read(f->o->sigfd, &stop, NULL);
        if (stop) {
            if (f->tty)
                fputc('\n', stderr);
            fprintf(stderr, "quern: interrupted; cancelling %s\n", f->job_id);
            s_cancel(f->c, f->job_id);
            return QN_EXIT_JOB_FAILED;
        }
    }
    if (f->o->cluster && qn_cluster_check(f->o->cluster, err, sizeof err) < 0) {
        if (f->tty)
            fputc('\n', stderr);
        fprintf(stderr, "quern: %s\n", err);
        return QN_EXIT_JOB_FAILED;
    }
    return -1;
}

/* Read what the master sent, keeping the job's latest status: -1 to go
 * on, or the exit status when the master refused us. */
static int s_drain(s_follow *f, int64_t now)
{
    char err[512];
    Quern__Envelope *env = NULL;
    int r;
    while ((r = s_recv(f->c, &env, err, sizeof err)) != 0) {
        if (r < 0) {
            fprintf(stderr, "quern: %s\n", err);
            return -r;
        }
        f->heard = now;
        if (f->away) {
            if (f->tty)
                fputc('\n', stderr);
            fprintf(stderr, "quern: the master at %s is back; following %s\n",
                    f->c->endpoint, f->job_id);
            f->away = 0;
        }
        if (env->body_case == QUERN__ENVELOPE__BODY_STATUS_REPLY &&
            env->status_reply->n_jobs == 0 && env->status_reply->error[0]) {
            /* A master restarted without its state knows no such job. */
            fprintf(stderr,
                    "quern: the master at %s says: %s (was it restarted "
                    "without --state-dir?)\n",
                    f->c->endpoint, env->status_reply->error);
            qn_wire_free(env);
            return QN_EXIT_JOB_FAILED;
        }
        if (env->body_case != QUERN__ENVELOPE__BODY_STATUS_REPLY ||
            env->status_reply->n_jobs != 1 ||
            strcmp(env->status_reply->jobs[0]->job_id, f->job_id) != 0) {
            qn_wire_free(env);
            continue;
        }
        qn_wire_free(f->last);
        f->last = env;
        f->elapsed_base = (int64_t)env->status_reply->jobs[0]->elapsed_ms;
        f->elapsed_at = now;
    }
    return -1;
}

/* Show the job's progress; once it has ended, its result on stdout and
 * its exit status (else -1). */
static int s_show(s_follow *f, int64_t now)
{
    if (!f->last)
        return -1;
    Quern__JobStatus *st = f->last->status_reply->jobs[0];
    if (st->state != QUERN__JOB_STATE__JOB_RUNNING) {
        /* The bar's last state (100% when it succeeded), kept. */
        if (f->tty) {
            s_draw(st, f->tty, (int64_t)st->elapsed_ms);
            fputc('\n', stderr);
        }
        if (f->o->json)
            qn_print_status_json(stdout, &st, 1, 1);
        else
            qn_print_result(stdout, st);
        return s_exit_for(st);
    }
    if (f->tty || now >= f->next_plain) {
        s_draw(st, f->tty, f->elapsed_base + (now - f->elapsed_at));
        f->next_plain = now + PLAIN_EVERY_MS;
    }
    return -1;
}

/*
 * The master has said nothing for a while: it may be restarting. Ask it
 * for the job (and to go on pushing it), at once and then with backoff,
 * so a master back on the same endpoint knows where we are.
 */
static void s_ask_again(s_follow *f, int64_t now)
{
    if (now - f->heard < ASK_AFTER_MS || now < f->next_ask)
        return;
    if (!f->away) {
        if (f->tty)
            fputc('\n', stderr);
        fprintf(stderr,
                "quern: no word from the master at %s for %lld s; waiting for "
                "it (it may be restarting)\n",
                f->c->endpoint, (long long)(now - f->heard) / 1000);
        f->away = 1;
        f->ask_every = 250;
    }
    Quern__Envelope env = QUERN__ENVELOPE__INIT;
    Quern__StatusRequest sr = QUERN__STATUS_REQUEST__INIT;
    sr.job_id = (char *)f->job_id;
    sr.watch = 1;
    env.body_case = QUERN__ENVELOPE__BODY_STATUS_REQUEST;
    env.status_request = &sr;
    qn_wire_send(f->c->sock, NULL, 0, &env, NULL, 0);
    f->next_ask = now + f->ask_every;
    if (f->ask_every < ASK_MAX_MS)
        f->ask_every *= 2;
}

int qn_client_follow(qn_client *c, const char *job_id, const qn_follow_opts *o)
{
    int64_t start = qn_now_ms();
    s_follow f = {.c = c,
                  .job_id = job_id,
                  .o = o,
                  .tty = isatty(STDERR_FILENO),
                  .heard = start,
                  .elapsed_at = start,
                  .next_plain = start};
    int rc = -1;
    while (rc < 0) {
        zmq_pollitem_t items[2] = {
            {.socket = c->sock, .events = ZMQ_POLLIN},
            {.fd = o->sigfd, .events = ZMQ_POLLIN},
        };
        int n = o->sigfd >= 0 ? 2 : 1;
        if (zmq_poll(items, n, f.tty ? 500 : 1000) < 0 && errno != EINTR)
            break;
        int64_t now = qn_now_ms();
        rc = s_stopped(&f, n == 2 && (items[1].revents & ZMQ_POLLIN));
        if (rc < 0)
            rc = s_drain(&f, now);
        if (rc < 0)
            rc = s_show(&f, now);
        if (rc < 0)
            s_ask_again(&f, now);
        if (rc < 0 && now - f.heard > SILENCE_MS) {
            if (f.tty)
                fputc('\n', stderr);
            fprintf(stderr,
                    "quern: lost contact with the master at %s (nothing for "
                    "%d s); the job may still be running: quern status %s\n",
                    c->endpoint, SILENCE_MS / 1000, job_id);
            rc = QN_EXIT_UNREACHABLE;
        }
    }
    qn_wire_free(f.last);
    fflush(stdout);
    return rc < 0 ? QN_EXIT_UNREACHABLE : rc;
}
