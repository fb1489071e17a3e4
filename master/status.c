/*
 * status.c -- see status.h.
 */
#include "status.h"

#include "sandbox.h"

#include "copyplan.h"
#include "send.h"
#include "util.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

void qn_status_task(qn_master *m, int jx, qn_kind kind, unsigned task,
                    int64_t now, Quern__TaskInfo *out)
{
    qn_job *j = &m->jobs.v[jx];
    qn_task_info ti = qn_sched_task(m->sched, jx, kind, task);
    quern__task_info__init(out);
    out->kind =
        kind == QN_REDUCE ? QUERN__TASK_KIND__REDUCE : QUERN__TASK_KIND__MAP;
    out->index = task;
    out->state = ti.state == QN_TASK_DONE      ? 2
                 : ti.state == QN_TASK_RUNNING ? 1
                                               : 0;
    out->attempts = ti.attempts;
    out->failures = ti.failures;
    out->running = ti.running;
    out->locality = -2;
    out->worker_id = (char *)"";
    out->shard = (char *)(kind == QN_MAP ? qn_job_shard(j, task, 0) : "");
    if (ti.state == QN_TASK_DONE)
        out->progress = 1;
    else if (ti.state == QN_TASK_RUNNING && j->progress[kind])
        out->progress = j->progress[kind][task];
    /* The attempt that counts: the oldest running one, or the winner; a
     * pending task shows its last attempt, if any. */
    const qn_arec *r = ti.state == QN_TASK_PENDING
                           ? qn_job_arec_last(j, kind, task)
                           : qn_job_arec_find(j, kind, task, ti.attempt);
    if (!r)
        return;
    out->attempt = r->attempt;
    if (r->worker >= 0 && r->worker < m->workers.n)
        out->worker_id = m->workers.v[r->worker].id;
    if (kind == QN_MAP)
        out->locality = r->local;
    out->started_at_ms = (uint64_t)r->start_wall;
    int64_t end = r->end ? r->end : (j->end ? j->end : now);
    out->duration_ms = end > r->start ? (uint64_t)(end - r->start) : 0;
}

/* The share of job jx's tasks of kind that is done, running ones counted
 * by their progress. */
static double s_progress(qn_master *m, int jx, qn_kind kind)
{
    const qn_job *j = &m->jobs.v[jx];
    unsigned n = kind == QN_REDUCE ? j->nreduce : j->nmaps;
    double sum = 0;
    for (unsigned i = 0; i < n; i++) {
        qn_task_info ti = qn_sched_task(m->sched, jx, kind, i);
        if (ti.state == QN_TASK_DONE)
            sum += 1;
        else if (ti.state == QN_TASK_RUNNING)
            sum += j->progress[kind][i];
    }
    return n ? sum / n : 1;
}

/* The job's counters, failures and skipped records, as wire structs. */
static void s_job_lists(const qn_job *j, Quern__JobStatus *st,
                        qn_status_mem *mem)
{
    size_t nc = j->counters.n;
    mem->cs = qn_calloc(nc + 1, sizeof *mem->cs);
    mem->cp = qn_calloc(nc + 1, sizeof *mem->cp);
    for (size_t i = 0; i < nc; i++) {
        quern__counter__init(&mem->cs[i]);
        mem->cs[i].name = (char *)j->counters.v[i].name;
        mem->cs[i].value = j->counters.v[i].value;
        mem->cp[i] = &mem->cs[i];
    }
    st->counters = mem->cp;
    st->n_counters = nc;
    mem->fs = qn_calloc(j->nfailures + 1, sizeof *mem->fs);
    mem->fp = qn_calloc(j->nfailures + 1, sizeof *mem->fp);
    for (size_t i = 0; i < j->nfailures; i++) {
        const qn_failure *f = &j->failures[i];
        Quern__AttemptFailure *af = &mem->fs[i];
        quern__attempt_failure__init(af);
        af->kind = (Quern__TaskKind)f->kind;
        af->task = f->task;
        af->attempt = f->attempt;
        af->worker_id = f->worker;
        af->reason = f->reason;
        af->stderr_tail = f->tail;
        af->record_offset = f->offset;
        af->shard = f->shard;
        mem->fp[i] = af;
    }
    st->failures = mem->fp;
    st->n_failures = j->nfailures;
    mem->ss = qn_calloc(j->nskipped + 1, sizeof *mem->ss);
    mem->sp = qn_calloc(j->nskipped + 1, sizeof *mem->sp);
    for (size_t i = 0; i < j->nskipped; i++) {
        quern__skipped_record__init(&mem->ss[i]);
        mem->ss[i].map = j->skipped[i].map;
        mem->ss[i].shard = j->skipped[i].shard;
        mem->ss[i].offset = j->skipped[i].offset;
        mem->sp[i] = &mem->ss[i];
    }
    st->skipped = mem->sp;
    st->n_skipped = j->nskipped;
}

void qn_status_job(qn_master *m, int jx, int64_t now, Quern__JobStatus *st,
                   qn_status_mem *mem)
{
    qn_job *j = &m->jobs.v[jx];
    qn_job_info info = qn_sched_job(m->sched, jx);
    quern__job_status__init(st);
    st->job_id = j->id;
    st->name = j->spec->name;
    st->state = (Quern__JobState)j->state;
    st->maps = info.maps;
    st->maps_done = info.maps_done;
    st->maps_running = info.maps_running;
    st->reduces = info.reduces;
    st->reduces_done = info.reduces_done;
    st->reduces_running = info.reduces_running;
    st->map_progress = s_progress(m, jx, QN_MAP);
    st->reduce_progress = s_progress(m, jx, QN_REDUCE);
    int64_t end = j->end ? j->end : now;
    st->elapsed_ms = (uint64_t)(end - j->start);
    s_job_lists(j, st, mem);
    st->error = j->error ? j->error : (char *)"";
    st->warning = j->warning ? j->warning : (char *)"";
    st->task_rss_peak = j->task_rss_peak;
    uint64_t wpeak = 0;
    for (int w = 0; w < m->workers.n; w++)
        if (m->workers.v[w].rss_peak > wpeak)
            wpeak = m->workers.v[w].rss_peak;
    st->worker_rss_peak = wpeak;
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) == 0)
        st->master_rss_peak = (uint64_t)ru.ru_maxrss * 1024;
    st->output = j->spec->output;
    st->submitted_at_ms = (uint64_t)j->submit_wall;
}

void qn_status_tasks(qn_master *m, int jx, Quern__JobStatus *st,
                     qn_status_mem *mem, int64_t now)
{
    qn_job *j = &m->jobs.v[jx];
    size_t n = (size_t)j->nmaps + j->nreduce;
    mem->ts = qn_calloc(n + 1, sizeof *mem->ts);
    mem->tp = qn_calloc(n + 1, sizeof *mem->tp);
    for (size_t i = 0; i < n; i++) {
        qn_kind k = i < j->nmaps ? QN_MAP : QN_REDUCE;
        unsigned t = (unsigned)(i < j->nmaps ? i : i - j->nmaps);
        qn_status_task(m, jx, k, t, now, &mem->ts[i]);
        mem->tp[i] = &mem->ts[i];
    }
    st->tasks = mem->tp;
    st->n_tasks = n;
}

void qn_status_release(qn_status_mem *mem)
{
    free(mem->cs);
    free(mem->cp);
    free(mem->fs);
    free(mem->fp);
    free(mem->ss);
    free(mem->sp);
    free(mem->ts);
    free(mem->tp);
    memset(mem, 0, sizeof *mem);
}

void qn_status_send(qn_master *m, const char *route, size_t routelen, int jx,
                    const char *error, int tasks, int64_t now)
{
    int from = jx < 0 ? 0 : jx, to = jx < 0 ? (int)m->jobs.n : jx + 1;
    if (error)
        from = to = 0;
    size_t n = (size_t)(to - from);
    Quern__JobStatus *st = qn_calloc(n + 1, sizeof *st);
    Quern__JobStatus **sp = qn_calloc(n + 1, sizeof *sp);
    qn_status_mem *mem = qn_calloc(n + 1, sizeof *mem);
    for (int i = from; i < to; i++) {
        qn_status_job(m, i, now, &st[i - from], &mem[i - from]);
        if (tasks)
            qn_status_tasks(m, i, &st[i - from], &mem[i - from], now);
        sp[i - from] = &st[i - from];
    }
    Quern__StatusReply r = QUERN__STATUS_REPLY__INIT;
    r.jobs = sp;
    r.n_jobs = n;
    if (error)
        r.error = (char *)error;
    qn_send(m, route, routelen, QUERN__ENVELOPE__BODY_STATUS_REPLY, &r);
    for (size_t i = 0; i < n; i++)
        qn_status_release(&mem[i]);
    free(mem);
    free(st);
    free(sp);
}

/* ---- watchers ------------------------------------------------------------ */

/* Set job jx's push deadline, if it has watchers and none sooner is set. */
static void s_schedule_push(qn_master *m, int jx)
{
    qn_job *j = &m->jobs.v[jx];
    if (!j->watch.n)
        return;
    int64_t due = j->watch.last_push + (j->watch.dirty ? QN_STATUS_PUSH_MIN_MS
                                                       : QN_STATUS_PUSH_MAX_MS);
    if (due >= j->watch.push_at)
        return;
    j->watch.push_at = due;
    qn_deadline_add(&m->due, due, QN_DUE_PUSH, (uint64_t)jx);
}

void qn_status_watch(qn_master *m, int jx, const char *route, size_t routelen)
{
    qn_job *j = &m->jobs.v[jx];
    for (size_t i = 0; i < j->watch.n; i++)
        if (j->watch.v[i].routelen == routelen &&
            memcmp(j->watch.v[i].route, route, routelen) == 0)
            return;
    if (j->watch.n == QN_STATUS_MAX_WATCHERS)
        return;
    QN_GROW(j->watch.v, j->watch.cap, j->watch.n + 1);
    qn_route *r = &j->watch.v[j->watch.n++];
    memcpy(r->route, route, routelen);
    r->routelen = routelen;
    s_schedule_push(m, jx);
}

void qn_status_dirty(qn_master *m, int jx)
{
    m->jobs.v[jx].watch.dirty = 1;
    s_schedule_push(m, jx);
}

void qn_status_push(qn_master *m, int jx, int64_t now)
{
    qn_job *j = &m->jobs.v[jx];
    for (size_t i = 0; i < j->watch.n; i++)
        qn_status_send(m, j->watch.v[i].route, j->watch.v[i].routelen, jx, NULL,
                       0, now);
    j->watch.dirty = 0;
    j->watch.last_push = now;
    if (j->state != QUERN__JOB_STATE__JOB_RUNNING) {
        free(j->watch.v);
        j->watch.v = NULL;
        j->watch.n = j->watch.cap = 0;
    }
    s_schedule_push(m, jx);
}

void qn_status_push_due(qn_master *m, int jx, int64_t at, int64_t now)
{
    if (jx < 0 || (size_t)jx >= m->jobs.n)
        return;
    qn_job *j = &m->jobs.v[jx];
    if (at != j->watch.push_at)
        return; /* a deadline set before a sooner one took its place */
    j->watch.push_at = INT64_MAX;
    if (j->watch.n &&
        now >= j->watch.last_push + (j->watch.dirty ? QN_STATUS_PUSH_MIN_MS
                                                    : QN_STATUS_PUSH_MAX_MS))
        qn_status_push(m, jx, now);
    else
        s_schedule_push(m, jx);
}

/* ---- workers ------------------------------------------------------------- */

Quern__WorkerState qn_status_worker_state(const qn_master *m, int w)
{
    const qn_mworker *wk = &m->workers.v[w];
    if (!qn_workers_alive(&m->workers, w))
        return QUERN__WORKER_STATE__WORKER_DEAD;
    if (!wk->draining)
        return QUERN__WORKER_STATE__WORKER_ACTIVE;
    return wk->drained ? QUERN__WORKER_STATE__WORKER_DRAINED
                       : QUERN__WORKER_STATE__WORKER_DRAINING;
}

/* Append one clause to a "waits for" list. */
static void s_clause(char *buf, size_t cap, size_t *len, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void s_clause(char *buf, size_t cap, size_t *len, const char *fmt, ...)
{
    if (*len >= cap)
        return;
    if (*len)
        *len += (size_t)snprintf(buf + *len, cap - *len, ", ");
    if (*len >= cap)
        return;
    va_list ap;
    va_start(ap, fmt);
    *len += (size_t)vsnprintf(buf + *len, cap - *len, fmt, ap);
    va_end(ap);
}

/*
 * Shards worker w holds that still keep it draining, and their bytes: one
 * with fewer than K good copies elsewhere (K = copies wanted with the
 * workers that can take one), whose copy is being made; and one with all
 * its replicas elsewhere, whose copy here is about to be dropped. A copy
 * with K but fewer than replicas elsewhere stays, and does not keep it.
 */
static uint32_t s_shards_held(qn_master *m, int w, uint64_t *bytes)
{
    const char *id = m->workers.v[w].id;
    unsigned takers = qn_workers_takers(&m->workers);
    uint32_t n = 0;
    *bytes = 0;
    for (size_t k = 0; k < m->data.cat.n; k++) {
        const qn_dataset *d = &m->data.cat.ds[k];
        unsigned want = qn_copyplan_wanted(d, takers);
        for (uint32_t i = 0; i < d->nslots; i++) {
            const qn_cshard *sh = qn_catalog_shard(d, i);
            if (!sh || !qn_catalog_holds(d, i, id))
                continue;
            unsigned good = 0;
            for (size_t h = 0; h < sh->nholders; h++)
                good += qn_workers_takes_data(
                    &m->workers,
                    qn_workers_alive_id(&m->workers, sh->holders[h]));
            if (good < want || good >= d->replicas) {
                n++;
                *bytes += sh->size;
            }
        }
    }
    return n;
}

int qn_status_drain_waits(qn_master *m, int w, char *buf, size_t cap)
{
    const qn_mworker *wk = &m->workers.v[w];
    size_t len = 0;
    buf[0] = '\0';
    if (wk->unheard)
        s_clause(buf, cap, &len,
                 "it has not been heard from since the master started");
    unsigned busy = qn_sched_worker_busy(m->sched, w);
    if (busy)
        s_clause(buf, cap, &len, "%u attempt%s running", busy,
                 busy == 1 ? "" : "s");
    unsigned outs = qn_sched_worker_outputs(m->sched, w);
    if (outs)
        s_clause(buf, cap, &len, "%u map output%s a running job needs", outs,
                 outs == 1 ? "" : "s");
    uint64_t bytes;
    uint32_t shards = s_shards_held(m, w, &bytes);
    if (shards)
        s_clause(buf, cap, &len,
                 "%" PRIu32 " dataset shard%s (%" PRIu64
                 " bytes) to copy elsewhere and drop",
                 shards, shards == 1 ? "" : "s", bytes);
    return len > 0;
}

void qn_status_drain_counts(const qn_master *m, unsigned *draining,
                            unsigned *drained)
{
    *draining = *drained = 0;
    for (int w = 0; w < m->workers.n; w++) {
        Quern__WorkerState st = qn_status_worker_state(m, w);
        *draining += st == QUERN__WORKER_STATE__WORKER_DRAINING;
        *drained += st == QUERN__WORKER_STATE__WORKER_DRAINED;
    }
}

/* The names of bits into v; how many. */
static size_t s_layer_names(unsigned bits, char **v)
{
    size_t k = 0;
    for (unsigned b = 1; b && b <= QN_SB_ALL && k < 8; b <<= 1)
        if (bits & b)
            v[k++] = (char *)qn_sandbox_layer_name(b);
    return k;
}

/* Worker w's sandbox, as its hello said; names holds 16 pointers. */
static void s_sandbox_info(const qn_mworker *w, Quern__WorkerInfo *wi,
                           char **names)
{
    wi->sandbox_mode = (char *)w->sb_mode;
    wi->task_user = (char *)w->task_user;
    wi->sandbox = names;
    wi->n_sandbox = s_layer_names(w->sb_layers, names);
    wi->sandbox_missing = names + 8;
    wi->n_sandbox_missing = s_layer_names(w->sb_missing, names + 8);
}

void qn_status_workers(qn_master *m, int64_t now, qn_workers_view *v)
{
    size_t n = (size_t)m->workers.n;
    size_t nrefs = 0;
    for (size_t i = 0; i < n; i++)
        nrefs += qn_sched_worker_busy(m->sched, (int)i);
    v->n = n;
    v->wi = qn_calloc(n + 1, sizeof *v->wi);
    v->wp = qn_calloc(n + 1, sizeof *v->wp);
    v->waits = qn_calloc(n + 1, sizeof *v->waits);
    v->sbnames = qn_calloc((n + 1) * 16, sizeof *v->sbnames);
    /* One block: the refs, then pointers to them. */
    v->refs = qn_calloc(nrefs + 1, sizeof *v->refs + sizeof v->refs);
    Quern__AttemptRef **rp = (Quern__AttemptRef **)(v->refs + nrefs + 1);
    size_t used = 0;
    for (size_t i = 0; i < n; i++) {
        qn_mworker *w = &m->workers.v[i];
        Quern__WorkerInfo *wi = &v->wi[i];
        quern__worker_info__init(wi);
        wi->worker_id = w->id;
        wi->host = w->host;
        wi->pid = w->pid;
        wi->slots = w->slots;
        wi->busy = qn_sched_worker_busy(m->sched, (int)i);
        wi->alive = qn_workers_alive(&m->workers, (int)i);
        wi->heartbeat_age_ms = (uint64_t)(now - w->seen);
        wi->shuffle_endpoint = w->endpoint;
        wi->failures = w->failures;
        qn_catalog_held(&m->data.cat, w->id, &wi->shards, &wi->shard_bytes);
        wi->rss_peak = w->rss_peak;
        wi->state = qn_status_worker_state(m, (int)i);
        s_sandbox_info(w, wi, v->sbnames + i * 16);
        if (wi->state == QUERN__WORKER_STATE__WORKER_DRAINING) {
            qn_status_drain_waits(m, (int)i, v->waits[i], sizeof v->waits[i]);
            wi->drain_waits = v->waits[i];
            if (w->drain_deadline > now)
                wi->drain_deadline_ms = (uint64_t)(w->drain_deadline - now);
        }
        qn_attempt_ref run[64];
        unsigned nr = qn_sched_worker_attempts(m->sched, (int)i, run, 64);
        wi->running = rp + used;
        for (unsigned k = 0; k < nr && used < nrefs; k++) {
            Quern__AttemptRef *r = &v->refs[used];
            quern__attempt_ref__init(r);
            r->job_id = m->jobs.v[run[k].job].id;
            r->kind = run[k].kind == QN_REDUCE ? QUERN__TASK_KIND__REDUCE
                                               : QUERN__TASK_KIND__MAP;
            r->task = run[k].task;
            r->attempt = run[k].attempt;
            rp[used++] = r;
            wi->n_running++;
        }
        v->wp[i] = wi;
    }
}

void qn_status_workers_release(qn_workers_view *v)
{
    free(v->wi);
    free(v->wp);
    free(v->refs);
    free(v->waits);
    free(v->sbnames);
    memset(v, 0, sizeof *v);
}
