/*
 * drain.c -- see drain.h.
 */
#include "drain.h"

#include "actions.h"
#include "durable.h"
#include "events.h"
#include "log.h"
#include "replicas.h"
#include "send.h"
#include "status.h"
#include "util.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void s_reply(qn_master *m, const char *route, size_t routelen, int w,
                    const char *error, int done, const char *waits)
{
    Quern__DrainReply r = QUERN__DRAIN_REPLY__INIT;
    r.error = (char *)(error ? error : "");
    r.state = qn_status_worker_state(m, w);
    r.done = done;
    r.waits = (char *)(waits ? waits : "");
    qn_send(m, route, routelen, QUERN__ENVELOPE__BODY_DRAIN_REPLY, &r);
}

/* Answer the clients waiting for worker w. */
static void s_answer(qn_master *m, int w, const char *error, int done,
                     const char *waits)
{
    for (size_t i = 0; i < m->drain.nwaits;) {
        qn_drain_wait *dw = &m->drain.waits[i];
        if (dw->worker != w) {
            i++;
            continue;
        }
        s_reply(m, dw->route, dw->routelen, w, error, done, waits);
        m->drain.waits[i] = m->drain.waits[--m->drain.nwaits];
    }
}

/* The scheduler's slots for w, as draining leaves them (what that
 * decides is carried out after the message, as for any). */
static void s_slots(qn_master *m, int w, int64_t now)
{
    qn_sched_worker_slots(m->sched, now, w,
                          qn_workers_usable_slots(&m->workers, w));
}

/* A worker that asked to be drained is told it is: it stops. */
static void s_tell_drained(qn_master *m, int w)
{
    if (!m->workers.v[w].drain_asked || !m->workers.v[w].drained)
        return;
    Quern__WorkerDrained wd = QUERN__WORKER_DRAINED__INIT;
    qn_send_worker(m, w, QUERN__ENVELOPE__BODY_WORKER_DRAINED, &wd);
}

void qn_drain_start(qn_master *m, int w, uint32_t deadline_ms, const char *by,
                    int64_t now)
{
    qn_mworker *wk = &m->workers.v[w];
    int64_t deadline =
        now + (deadline_ms ? (int64_t)deadline_ms : QN_DRAIN_DEADLINE_MS);
    m->drain.any = 1;
    if (wk->draining) {
        if (wk->drain_deadline && deadline < wk->drain_deadline) {
            wk->drain_deadline = deadline;
            qn_deadline_add(&m->due, deadline, QN_DUE_DRAIN, (uint64_t)w);
            qn_durable_worker(m, w);
        }
        return;
    }
    wk->draining = 1;
    wk->drained = 0;
    wk->drain_deadline = deadline;
    qn_deadline_add(&m->due, deadline, QN_DUE_DRAIN, (uint64_t)w);
    qn_event(m, now, QN_LOG_INFO, "worker_draining", -1, -1, 0, 0, w,
             "worker %s is draining (%s): it takes no new work; its "
             "attempts still running in %" PRId64
             " s run elsewhere; its shards are copied elsewhere",
             wk->id, by, (deadline - now + 999) / 1000);
    qn_durable_worker(m, w);
    s_slots(m, w, now);
    qn_replicas_soon(m, now);
}

void qn_drain_undrain(qn_master *m, int w, int64_t now)
{
    qn_mworker *wk = &m->workers.v[w];
    if (!wk->draining)
        return;
    wk->draining = 0;
    wk->drained = 0;
    wk->drain_deadline = 0;
    wk->drain_client = 0;
    char msg[200];
    snprintf(msg, sizeof msg, "worker %s was put back in service (undrain)",
             wk->id);
    s_answer(m, w, msg, 0, NULL);
    qn_event(m, now, QN_LOG_INFO, "worker_undrained", -1, -1, 0, 0, w,
             "worker %s is back in service", wk->id);
    qn_durable_worker(m, w);
    s_slots(m, w, now);
    qn_replicas_soon(m, now);
}

void qn_drain_worker_asks(qn_master *m, int w, uint32_t deadline_ms,
                          int64_t now)
{
    qn_mworker *wk = &m->workers.v[w];
    wk->drain_asked = 1;
    qn_drain_start(m, w, deadline_ms, "it was told to stop", now);
    s_tell_drained(m, w);
}

/* Worker w drains: its deadline, and whether it is drained now. */
static void s_check_worker(qn_master *m, int w, int64_t now)
{
    qn_mworker *wk = &m->workers.v[w];
    unsigned busy = qn_sched_worker_busy(m->sched, w);
    if (wk->drain_deadline && now >= wk->drain_deadline && !wk->unheard) {
        wk->drain_deadline = 0;
        if (busy) {
            qn_event(m, now, QN_LOG_WARN, "drain_deadline", -1, -1, 0, 0, w,
                     "worker %s is draining and its deadline passed: its %u "
                     "running attempt%s run elsewhere",
                     wk->id, busy, busy == 1 ? "" : "s");
            qn_sched_worker_evict(m->sched, now, w);
            qn_actions_run(m, now);
        }
    }
    char waits[400];
    int waiting = qn_status_drain_waits(m, w, waits, sizeof waits);
    if (waiting || wk->drained) {
        wk->drained = !waiting;
        return;
    }
    wk->drained = 1;
    qn_event(m, now, QN_LOG_INFO, "worker_drained", -1, -1, 0, 0, w,
             "worker %s is drained: it holds nothing anyone needs and may be "
             "stopped",
             wk->id);
    s_answer(m, w, NULL, 1, NULL);
    s_tell_drained(m, w);
}

/* Clients whose worker died, or who waited long enough, are answered. */
static void s_check_waits(qn_master *m, int64_t now)
{
    for (size_t i = 0; i < m->drain.nwaits;) {
        qn_drain_wait *dw = &m->drain.waits[i];
        int w = dw->worker;
        char msg[500] = "";
        if (!qn_workers_alive(&m->workers, w))
            snprintf(msg, sizeof msg, "worker %s was lost while draining",
                     m->workers.v[w].id);
        else if (now < dw->reply_by) {
            i++;
            continue;
        }
        if (msg[0]) {
            s_reply(m, dw->route, dw->routelen, w, msg, 0, NULL);
        } else {
            qn_status_drain_waits(m, w, msg, sizeof msg);
            s_reply(m, dw->route, dw->routelen, w, NULL, 0, msg);
        }
        m->drain.waits[i] = m->drain.waits[--m->drain.nwaits];
    }
}

void qn_drain_check(qn_master *m, int64_t now)
{
    if (!m->drain.any && !m->drain.nwaits)
        return;
    int any = 0;
    for (int w = 0; w < m->workers.n; w++) {
        if (!m->workers.v[w].draining || !qn_workers_alive(&m->workers, w))
            continue;
        any = 1;
        s_check_worker(m, w, now);
    }
    m->drain.any = any;
    s_check_waits(m, now);
}

/* The live worker a client names, or -1 with err said. */
static int s_named(qn_master *m, const char *id, char *err, size_t cap)
{
    int w = qn_workers_find(&m->workers, id);
    if (w < 0)
        snprintf(err, cap, "no worker %s (quern workers lists them)", id);
    else if (!qn_workers_alive(&m->workers, w))
        snprintf(err, cap, "worker %s is not alive", id);
    else
        return w;
    return -1;
}

void qn_drain_request(qn_master *m, const Quern__DrainRequest *rq, int64_t now)
{
    char err[300];
    int w = s_named(m, rq->worker_id, err, sizeof err);
    if (w < 0) {
        Quern__DrainReply r = QUERN__DRAIN_REPLY__INIT;
        r.error = err;
        r.state = QUERN__WORKER_STATE__WORKER_DEAD;
        r.refused = 1;
        qn_send_reply(m, QUERN__ENVELOPE__BODY_DRAIN_REPLY, &r);
        return;
    }
    qn_mworker *wk = &m->workers.v[w];
    if (rq->undrain) {
        qn_drain_undrain(m, w, now);
        s_reply(m, m->net.in.id, m->net.in.idlen, w, NULL, 1, NULL);
        return;
    }
    if (!wk->drain_client) {
        wk->drain_client = 1;
        qn_durable_worker(m, w);
    }
    qn_drain_start(m, w, rq->deadline_ms, "asked by a client", now);
    s_check_worker(m, w, now);
    char waits[400];
    qn_status_drain_waits(m, w, waits, sizeof waits);
    if (wk->drained || !rq->wait) {
        s_reply(m, m->net.in.id, m->net.in.idlen, w, NULL, wk->drained, waits);
        return;
    }
    QN_GROW(m->drain.waits, m->drain.cap, m->drain.nwaits + 1);
    qn_drain_wait *dw = &m->drain.waits[m->drain.nwaits++];
    memset(dw, 0, sizeof *dw);
    dw->routelen =
        m->net.in.idlen < sizeof dw->route ? m->net.in.idlen : sizeof dw->route;
    memcpy(dw->route, m->net.in.id, dw->routelen);
    dw->worker = w;
    uint32_t wait = rq->wait_ms && rq->wait_ms < QN_DRAIN_WAIT_MS
                        ? rq->wait_ms
                        : QN_DRAIN_WAIT_MS;
    dw->reply_by = now + wait;
    qn_deadline_add(&m->due, dw->reply_by, QN_DUE_DRAIN, (uint64_t)w);
}

void qn_drain_release(qn_master *m)
{
    free(m->drain.waits);
    m->drain.waits = NULL;
    m->drain.nwaits = m->drain.cap = 0;
}
