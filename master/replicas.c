/*
 * replicas.c -- see replicas.h.
 */
#include "replicas.h"

#include "copyplan.h"
#include "datasets.h"
#include "events.h"
#include "log.h"
#include "send.h"
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LOOK_MS 1000 /* copies under way are looked at this often */

void qn_replicas_release(qn_master *m)
{
    free(m->heal.busy);
    free(m->heal.failed);
    free(m->heal.dropping);
    m->heal.busy = m->heal.failed = m->heal.dropping = NULL;
    m->heal.nbusy = m->heal.nfailed = m->heal.ndropping = 0;
    m->heal.cap_busy = m->heal.cap_failed = m->heal.cap_dropping = 0;
}

void qn_replicas_send_copy(qn_master *m, const char *job_id, uint32_t attempt,
                           const qn_dataset *d, uint32_t index, int target,
                           int source)
{
    const qn_cshard *sh = qn_catalog_shard(d, index);
    Quern__DataSource *src, **sp;
    size_t ns = qn_datasets_sources(m, d, index, &src, &sp);
    /* The planner's source first: it spreads the reads; the others are
     * there if it fails. */
    for (size_t k = 1; source >= 0 && k < ns; k++) {
        if (strcmp(sp[k]->worker_id, m->workers.v[source].id) == 0) {
            Quern__DataSource *t = sp[0];
            sp[0] = sp[k];
            sp[k] = t;
            break;
        }
    }
    Quern__InputPiece pc = QUERN__INPUT_PIECE__INIT;
    Quern__InputPiece *pcp = &pc;
    char name[100];
    snprintf(name, sizeof name, "%s/part-%05u", d->name, index);
    pc.name = name;
    pc.dataset = d->name;
    pc.shard = index;
    pc.crc = sh ? sh->crc : 0;
    pc.length = pc.file_size = sh ? sh->size : 0;
    pc.sources = sp;
    pc.n_sources = ns;
    Quern__TaskSpec ts = QUERN__TASK_SPEC__INIT;
    ts.job_id = (char *)job_id;
    ts.kind = QUERN__TASK_KIND__COPY;
    ts.task = index;
    ts.attempt = attempt;
    ts.nreduce = 1;
    ts.inputs = &pcp;
    ts.n_inputs = 1;
    Quern__AssignTask at = QUERN__ASSIGN_TASK__INIT;
    at.spec = &ts;
    qn_send_worker(m, target, QUERN__ENVELOPE__BODY_ASSIGN_TASK, &at);
    free(src);
    free(sp);
}

/* ---- the planner's view ---------------------------------------------- */

typedef struct s_view {
    qn_cp_worker *w;
    int *handle; /* w[i]'s registry handle */
    size_t n;
    qn_cp_copy *busy, *failed, *dropping;
    size_t nbusy, nfailed, ndropping;
} s_view;

static int s_index(const s_view *v, int handle)
{
    for (size_t i = 0; i < v->n; i++)
        if (v->handle[i] == handle)
            return (int)i;
    return -1;
}

/* The copies c[n] whose target the view holds, as the planner takes
 * them (*out_n of them; the caller frees the array). */
static qn_cp_copy *s_targets(const s_view *v, const qn_heal_copy *c, size_t n,
                             size_t *out_n)
{
    qn_cp_copy *out = qn_calloc(n + 1, sizeof *out);
    *out_n = 0;
    for (size_t k = 0; k < n; k++) {
        int t = s_index(v, c[k].target);
        if (t >= 0)
            out[(*out_n)++] = (qn_cp_copy){
                .dataset = c[k].dataset, .index = c[k].index, .target = t};
    }
    return out;
}

/* Every data worker the master knows, by its newest entry. */
static void s_view_build(qn_master *m, s_view *v, int64_t now)
{
    memset(v, 0, sizeof *v);
    v->w = qn_calloc((size_t)m->workers.n + 1, sizeof *v->w);
    v->handle = qn_calloc((size_t)m->workers.n + 1, sizeof *v->handle);
    for (int h = 0; h < m->workers.n; h++) {
        const qn_mworker *wk = &m->workers.v[h];
        if (!wk->has_data || qn_workers_find(&m->workers, wk->id) != h)
            continue;
        qn_cp_worker *c = &v->w[v->n];
        c->id = wk->id;
        c->host = wk->host;
        c->alive = qn_workers_alive(&m->workers, h) && !wk->unheard;
        c->draining = c->alive && wk->draining;
        c->keeps = wk->minor < 3;
        c->gone_since = wk->gone ? wk->gone : m->stats.start;
        if (c->alive)
            c->gone_since = now;
        v->handle[v->n++] = h;
    }
    /* Bytes held, for the least-full choice. */
    const qn_catalog *cat = &m->data.cat;
    for (size_t k = 0; k < cat->n; k++)
        for (uint32_t i = 0; i < cat->ds[k].nslots; i++) {
            const qn_cshard *sh = &cat->ds[k].shards[i];
            for (size_t x = 0; sh->known && x < sh->nholders; x++)
                for (size_t y = 0; y < v->n; y++)
                    if (strcmp(v->w[y].id, sh->holders[x]) == 0)
                        v->w[y].bytes += sh->size;
        }
    v->busy = qn_calloc(m->heal.nbusy + 1, sizeof *v->busy);
    for (size_t k = 0; k < m->heal.nbusy; k++) {
        const qn_heal_copy *c = &m->heal.busy[k];
        int t = s_index(v, c->target), s = s_index(v, c->source);
        if (t < 0)
            continue;
        v->busy[v->nbusy++] = (qn_cp_copy){
            .dataset = c->dataset, .index = c->index, .target = t, .source = s};
        v->w[t].inflight++;
        if (s >= 0)
            v->w[s].inflight++;
    }
    v->dropping =
        s_targets(v, m->heal.dropping, m->heal.ndropping, &v->ndropping);
    v->failed = s_targets(v, m->heal.failed, m->heal.nfailed, &v->nfailed);
}

static void s_view_release(s_view *v)
{
    free(v->w);
    free(v->handle);
    free(v->busy);
    free(v->failed);
    free(v->dropping);
}

/* ---- copies under way ------------------------------------------------ */

static void s_fail(qn_master *m, size_t k, const char *why, int64_t now)
{
    qn_heal_copy c = m->heal.busy[k];
    m->heal.busy[k] = m->heal.busy[--m->heal.nbusy];
    m->heal.failures++;
    qn_event(m, now, QN_LOG_WARN, "replica_failed", -1, -1, 0, 0, c.target,
             "copying shard %s/part-%05u to worker %s failed: %s; another "
             "worker is tried",
             c.dataset, c.index, m->workers.v[c.target].id, why);
    QN_GROW(m->heal.failed, m->heal.cap_failed, m->heal.nfailed + 1);
    c.at = now + QN_REPLICAS_RETRY_MS;
    m->heal.failed[m->heal.nfailed++] = c;
}

/* Forget copies whose target reported the shard (or took too long to),
 * give up copies silent too long, and let failed targets be tried again
 * once their time is up. Returns when this next needs a look. */
static int64_t s_expire(qn_master *m, int64_t now)
{
    int64_t next = INT64_MAX;
    for (size_t k = 0; k < m->heal.nbusy;) {
        qn_heal_copy *c = &m->heal.busy[k];
        if (c->done) {
            qn_dataset *d = qn_catalog_get(&m->data.cat, c->dataset);
            if (!d ||
                qn_catalog_holds(d, c->index, m->workers.v[c->target].id) ||
                now - c->at >= QN_REPLICAS_REPORT_MS) {
                m->heal.busy[k] = m->heal.busy[--m->heal.nbusy];
                continue;
            }
        } else if (now - c->at >= QN_REPLICAS_COPY_MS) {
            s_fail(m, k, "it took too long", now);
            continue;
        }
        if (now + LOOK_MS < next)
            next = now + LOOK_MS;
        k++;
    }
    /* A drop is done once its worker no longer reports the copy. */
    for (size_t k = 0; k < m->heal.ndropping;) {
        const qn_heal_copy *c = &m->heal.dropping[k];
        qn_dataset *d = qn_catalog_get(&m->data.cat, c->dataset);
        if (!d || !qn_catalog_holds(d, c->index, m->workers.v[c->target].id) ||
            !qn_workers_alive(&m->workers, c->target) ||
            now - c->at >= QN_REPLICAS_REPORT_MS) {
            m->heal.dropping[k] = m->heal.dropping[--m->heal.ndropping];
            continue;
        }
        if (now + LOOK_MS < next)
            next = now + LOOK_MS;
        k++;
    }
    for (size_t k = 0; k < m->heal.nfailed;) {
        if (m->heal.failed[k].at <= now) {
            m->heal.failed[k] = m->heal.failed[--m->heal.nfailed];
            continue;
        }
        if (m->heal.failed[k].at < next)
            next = m->heal.failed[k].at;
        k++;
    }
    return next;
}

/* Carry out one order of the planner. */
static void s_act(qn_master *m, const s_view *v, const qn_cp_order *o,
                  int64_t now)
{
    int target = v->handle[o->target];
    const qn_dataset *d = qn_catalog_get(&m->data.cat, o->dataset);
    if (o->drop) {
        Quern__DataCommand c = QUERN__DATA_COMMAND__INIT;
        c.op = QUERN__DATA_COMMAND__OP__DROP_SHARD;
        c.dataset = (char *)o->dataset;
        c.index = o->index;
        qn_send_worker(m, target, QUERN__ENVELOPE__BODY_DATA_COMMAND, &c);
        QN_GROW(m->heal.dropping, m->heal.cap_dropping, m->heal.ndropping + 1);
        qn_heal_copy *dc = &m->heal.dropping[m->heal.ndropping++];
        memset(dc, 0, sizeof *dc);
        snprintf(dc->dataset, sizeof dc->dataset, "%s", o->dataset);
        dc->index = o->index;
        dc->target = target;
        dc->source = -1;
        dc->at = now;
        m->heal.drops++;
        qn_event(m, now, QN_LOG_INFO, "replica_dropped", -1, -1, 0, 0, target,
                 "worker %s drops its copy of shard %s/part-%05u: %s",
                 m->workers.v[target].id, o->dataset, o->index,
                 m->workers.v[target].draining
                     ? "it is draining and the shard has its copies elsewhere"
                     : "the shard has more copies than it needs");
        return;
    }
    int source = v->handle[o->source];
    QN_GROW(m->heal.busy, m->heal.cap_busy, m->heal.nbusy + 1);
    qn_heal_copy *c = &m->heal.busy[m->heal.nbusy++];
    memset(c, 0, sizeof *c);
    snprintf(c->dataset, sizeof c->dataset, "%s", o->dataset);
    c->index = o->index;
    c->size = o->size;
    c->target = target;
    c->source = source;
    c->attempt = ++m->heal.seq;
    c->at = now;
    qn_info("master: copying shard %s/part-%05u (%llu bytes) from worker %s "
            "to worker %s",
            o->dataset, o->index, (unsigned long long)o->size,
            m->workers.v[source].id, m->workers.v[target].id);
    qn_replicas_send_copy(m, QN_REPLICAS_JOB, c->attempt, d, o->index, target,
                          source);
}

/* Be woken at `at` (or earlier, if set so already). */
static void s_wake(qn_master *m, int64_t at)
{
    if (at == INT64_MAX)
        return;
    if (m->heal.due && m->heal.due <= at)
        return;
    m->heal.due = at;
    qn_deadline_add(&m->due, at, QN_DUE_HEAL, 0);
}

void qn_replicas_check(qn_master *m, int64_t now)
{
    if (m->heal.due && m->heal.due <= now)
        m->heal.due = 0;
    int64_t next = s_expire(m, now);
    s_view v;
    s_view_build(m, &v, now);
    qn_cp_params p = {.now = now,
                      .timeout_ms = m->cfg.replica_timeout_ms,
                      .quiet_until = m->stats.start + m->cfg.replica_timeout_ms,
                      .per_worker = m->cfg.replica_copies,
                      .dropping = v.dropping,
                      .ndropping = v.ndropping};
    /* A master without a past (no state dir) knew every holder it saw. */
    if (!m->cfg.state_dir)
        p.quiet_until = m->stats.start;
    qn_cp_order *orders = NULL;
    qn_cp_health h;
    size_t n = qn_copyplan_run(&m->data.cat, v.w, v.n, v.busy, v.nbusy,
                               v.failed, v.nfailed, &p, &orders, &h);
    for (size_t i = 0; i < n; i++)
        s_act(m, &v, &orders[i], now);
    if (h.under && !m->heal.under)
        qn_event(m, now, QN_LOG_WARN, "shards_under_replicated", -1, -1, 0, 0,
                 -1,
                 "%u dataset shards have fewer live copies than they want "
                 "(%u have none)",
                 h.under, h.lost);
    else if (!h.under && m->heal.under)
        qn_event(m, now, QN_LOG_INFO, "shards_replicated", -1, -1, 0, 0, -1,
                 "every dataset shard has its copies again");
    m->heal.under = h.under;
    m->heal.lost = h.lost;
    free(orders);
    /* Throttled shards wait for a copy to end, which looks again. */
    if (h.next < next)
        next = h.next;
    s_view_release(&v);
    s_wake(m, next);
}

void qn_replicas_soon(qn_master *m, int64_t now)
{
    s_wake(m, now);
}

void qn_replicas_update(qn_master *m, int w, const Quern__TaskUpdate *u,
                        int64_t now)
{
    const Quern__AttemptRef *r = u->attempt;
    if (u->state == QUERN__TASK_STATE__RUNNING)
        return;
    for (size_t k = 0; k < m->heal.nbusy; k++) {
        qn_heal_copy *c = &m->heal.busy[k];
        if (c->attempt != r->attempt || c->target != w || c->done)
            continue;
        if (u->state == QUERN__TASK_STATE__SUCCEEDED) {
            c->done = 1;
            c->at = now;
            m->heal.bytes += c->size;
            m->heal.copies++;
            qn_event(m, now, QN_LOG_INFO, "replica_made", -1, -1, 0, 0, w,
                     "worker %s has a new copy of shard %s/part-%05u "
                     "(%llu bytes)",
                     m->workers.v[w].id, c->dataset, c->index,
                     (unsigned long long)c->size);
        } else {
            s_fail(m, k, u->reason[0] ? u->reason : "no reason given", now);
        }
        qn_replicas_soon(m, now);
        return;
    }
}

void qn_replicas_worker_gone(qn_master *m, int w, int64_t now)
{
    for (size_t k = 0; k < m->heal.nbusy;) {
        if (m->heal.busy[k].target == w && !m->heal.busy[k].done) {
            s_fail(m, k, "the worker is gone", now);
            continue;
        }
        k++;
    }
    qn_replicas_soon(m, now);
}
