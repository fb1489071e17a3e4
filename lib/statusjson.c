/*
 * statusjson.c -- see statusjson.h.
 */
#include "statusjson.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *qn_job_state_name(int state)
{
    switch (state) {
    case QUERN__JOB_STATE__JOB_RUNNING: return "running";
    case QUERN__JOB_STATE__JOB_SUCCEEDED: return "succeeded";
    case QUERN__JOB_STATE__JOB_FAILED: return "failed";
    case QUERN__JOB_STATE__JOB_CANCELLED: return "cancelled";
    default: return "unknown";
    }
}

const char *qn_task_state_name(unsigned state)
{
    static const char *const names[] = {"pending", "running", "done"};
    return state < 3 ? names[state] : "unknown";
}

void qn_task_name(char *out, size_t cap, int kind, unsigned index)
{
    snprintf(out, cap, "%c%u", kind == QUERN__TASK_KIND__REDUCE ? 'r' : 'm',
             index);
}

int qn_task_parse(const char *s, int *kind, unsigned *index)
{
    static const struct {
        const char *prefix;
        int kind;
    } forms[] = {{"map-", QUERN__TASK_KIND__MAP},
                 {"map", QUERN__TASK_KIND__MAP},
                 {"m", QUERN__TASK_KIND__MAP},
                 {"reduce-", QUERN__TASK_KIND__REDUCE},
                 {"reduce", QUERN__TASK_KIND__REDUCE},
                 {"r", QUERN__TASK_KIND__REDUCE}};
    for (size_t i = 0; i < sizeof forms / sizeof *forms; i++) {
        size_t n = strlen(forms[i].prefix);
        if (strncmp(s, forms[i].prefix, n) != 0)
            continue;
        const char *d = s + n;
        if (*d < '0' || *d > '9')
            continue;
        char *end;
        unsigned long v = strtoul(d, &end, 10);
        if (*end || v > 0xffffffffUL)
            return -1;
        *kind = forms[i].kind;
        *index = (unsigned)v;
        return 0;
    }
    return -1;
}

double qn_job_progress(const Quern__JobStatus *st)
{
    /* Maps and reduces weigh the same: a rough but steady measure. */
    return (st->map_progress + st->reduce_progress) / 2;
}

long long qn_job_eta_ms(const Quern__JobStatus *st)
{
    double p = qn_job_progress(st);
    /* Written so that a NaN progress (from a reply no sane master sends)
     * gives no estimate, and the estimate fits its type. */
    if (st->state != QUERN__JOB_STATE__JOB_RUNNING || !(p >= 0.01 && p < 1))
        return -1;
    double eta = (double)st->elapsed_ms * (1 - p) / p;
    return eta < 9e18 ? (long long)eta : -1;
}

static void s_set(json_t *o, const char *k, json_t *v)
{
    json_object_set_new(o, k, v);
}

static json_t *s_int(unsigned long long v)
{
    return json_integer((json_int_t)v);
}

static json_t *s_str_or_null(const char *s)
{
    return s && s[0] ? json_string(s) : json_null();
}

static json_t *s_pending(unsigned total, unsigned done, unsigned running)
{
    return s_int(done + running < total ? total - done - running : 0);
}

static const char *s_kind(int kind)
{
    return kind == QUERN__TASK_KIND__REDUCE ? "reduce" : "map";
}

/* A job's status as the JSON object quern status --json and the API
 * print: its counts, progress, counters, failures and skipped records. */
json_t *qn_json_job(const Quern__JobStatus *st)
{
    json_t *o = json_object();
    s_set(o, "id", json_string(st->job_id));
    s_set(o, "name", json_string(st->name));
    s_set(o, "state", json_string(qn_job_state_name(st->state)));
    s_set(o, "error", s_str_or_null(st->error));
    s_set(o, "warning", s_str_or_null(st->warning));
    s_set(o, "output", json_string(st->output));
    s_set(o, "submitted_at_ms", s_int(st->submitted_at_ms));
    s_set(o, "elapsed_ms", s_int(st->elapsed_ms));
    long long eta = qn_job_eta_ms(st);
    s_set(o, "eta_ms", eta >= 0 ? json_integer(eta) : json_null());
    s_set(o, "progress", json_real(qn_job_progress(st)));
    s_set(o, "maps", s_int(st->maps));
    s_set(o, "maps_done", s_int(st->maps_done));
    s_set(o, "maps_running", s_int(st->maps_running));
    s_set(o, "maps_pending",
          s_pending(st->maps, st->maps_done, st->maps_running));
    s_set(o, "map_progress", json_real(st->map_progress));
    s_set(o, "reduces", s_int(st->reduces));
    s_set(o, "reduces_done", s_int(st->reduces_done));
    s_set(o, "reduces_running", s_int(st->reduces_running));
    s_set(o, "reduces_pending",
          s_pending(st->reduces, st->reduces_done, st->reduces_running));
    s_set(o, "reduce_progress", json_real(st->reduce_progress));
    s_set(o, "task_rss_peak_bytes", s_int(st->task_rss_peak));
    s_set(o, "worker_rss_peak_bytes", s_int(st->worker_rss_peak));
    s_set(o, "master_rss_peak_bytes", s_int(st->master_rss_peak));
    s_set(o, "waiting_for", s_str_or_null(st->waiting_for));
    json_t *cs = json_object();
    for (size_t i = 0; i < st->n_counters; i++)
        s_set(cs, st->counters[i]->name, json_integer(st->counters[i]->value));
    s_set(o, "counters", cs);
    json_t *fs = json_array();
    for (size_t i = 0; i < st->n_failures; i++) {
        const Quern__AttemptFailure *fl = st->failures[i];
        json_t *x = json_object();
        char tn[24];
        qn_task_name(tn, sizeof tn, fl->kind, fl->task);
        s_set(x, "kind", json_string(s_kind(fl->kind)));
        s_set(x, "task", s_int(fl->task));
        s_set(x, "task_name", json_string(tn));
        s_set(x, "attempt", s_int(fl->attempt));
        s_set(x, "worker", json_string(fl->worker_id));
        s_set(x, "reason", json_string(fl->reason));
        s_set(x, "stderr_tail", json_string(fl->stderr_tail));
        s_set(x, "record_offset", s_int(fl->record_offset));
        s_set(x, "shard", s_str_or_null(fl->shard));
        json_array_append_new(fs, x);
    }
    s_set(o, "failures", fs);
    json_t *sk = json_array();
    for (size_t i = 0; i < st->n_skipped; i++) {
        json_t *x = json_object();
        s_set(x, "map", s_int(st->skipped[i]->map));
        s_set(x, "shard", json_string(st->skipped[i]->shard));
        s_set(x, "offset", s_int(st->skipped[i]->offset));
        json_array_append_new(sk, x);
    }
    s_set(o, "skipped", sk);
    if (st->n_tasks) {
        json_t *ts = json_array();
        for (size_t i = 0; i < st->n_tasks; i++)
            json_array_append_new(ts, qn_json_task(st->tasks[i]));
        s_set(o, "tasks", ts);
    }
    return o;
}

const char *qn_worker_state_name(Quern__WorkerState s)
{
    switch (s) {
    case QUERN__WORKER_STATE__WORKER_DRAINING: return "draining";
    case QUERN__WORKER_STATE__WORKER_DRAINED: return "drained";
    case QUERN__WORKER_STATE__WORKER_DEAD: return "dead";
    default: return "active";
    }
}

json_t *qn_json_worker(const Quern__WorkerInfo *w)
{
    json_t *o = json_object();
    s_set(o, "id", json_string(w->worker_id));
    s_set(o, "host", json_string(w->host));
    s_set(o, "pid", s_int(w->pid));
    s_set(o, "alive", json_boolean(w->alive));
    /* A master before drains says no state: alive or dead is all. */
    s_set(o, "state",
          json_string(w->alive || w->state ? qn_worker_state_name(w->state)
                                           : "dead"));
    if (w->state == QUERN__WORKER_STATE__WORKER_DRAINING) {
        s_set(o, "drain_waits", json_string(w->drain_waits));
        s_set(o, "drain_deadline_ms", s_int(w->drain_deadline_ms));
    }
    s_set(o, "slots", s_int(w->slots));
    s_set(o, "busy", s_int(w->busy));
    s_set(o, "heartbeat_age_ms", s_int(w->heartbeat_age_ms));
    s_set(o, "shuffle_endpoint", json_string(w->shuffle_endpoint));
    s_set(o, "failures", s_int(w->failures));
    s_set(o, "shards", s_int(w->shards));
    s_set(o, "shard_bytes", s_int(w->shard_bytes));
    s_set(o, "rss_peak_bytes", s_int(w->rss_peak));
    /* Its tasks' sandbox: the level, the layers, what the kernel lacks
     * and the user (a worker before sandboxes says nothing). */
    json_t *sb = json_object();
    s_set(sb, "level",
          json_string(w->sandbox_mode[0] ? w->sandbox_mode : "unknown"));
    json_t *ly = json_array(), *miss = json_array();
    for (size_t i = 0; i < w->n_sandbox; i++)
        json_array_append_new(ly, json_string(w->sandbox[i]));
    for (size_t i = 0; i < w->n_sandbox_missing; i++)
        json_array_append_new(miss, json_string(w->sandbox_missing[i]));
    s_set(sb, "layers", ly);
    s_set(sb, "missing", miss);
    s_set(sb, "task_user", json_string(w->task_user));
    s_set(o, "sandbox", sb);
    json_t *rs = json_array();
    for (size_t i = 0; i < w->n_running; i++) {
        const Quern__AttemptRef *a = w->running[i];
        char tn[24];
        qn_task_name(tn, sizeof tn, a->kind, a->task);
        json_t *x = json_object();
        s_set(x, "job", json_string(a->job_id));
        s_set(x, "task", json_string(tn));
        s_set(x, "attempt", s_int(a->attempt));
        json_array_append_new(rs, x);
    }
    s_set(o, "running", rs);
    return o;
}

json_t *qn_json_task(const Quern__TaskInfo *t)
{
    json_t *o = json_object();
    char tn[24];
    qn_task_name(tn, sizeof tn, t->kind, t->index);
    s_set(o, "task", json_string(tn));
    s_set(o, "kind", json_string(s_kind(t->kind)));
    s_set(o, "index", s_int(t->index));
    s_set(o, "state", json_string(qn_task_state_name(t->state)));
    s_set(o, "attempt", t->attempt ? s_int(t->attempt) : json_null());
    s_set(o, "attempts", s_int(t->attempts));
    s_set(o, "failures", s_int(t->failures));
    s_set(o, "running", s_int(t->running));
    s_set(o, "worker", s_str_or_null(t->worker_id));
    const char *loc = NULL;
    if (t->locality == 1)
        loc = "local";
    else if (t->locality == 0)
        loc = "remote";
    else if (t->locality == -1)
        loc = "any";
    s_set(o, "locality", loc ? json_string(loc) : json_null());
    s_set(o, "started_at_ms",
          t->started_at_ms ? s_int(t->started_at_ms) : json_null());
    s_set(o, "duration_ms",
          t->started_at_ms ? s_int(t->duration_ms) : json_null());
    s_set(o, "progress", json_real(t->progress));
    s_set(o, "shard", s_str_or_null(t->shard));
    return o;
}
