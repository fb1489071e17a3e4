/*
 * logs.c -- see logs.h.
 */
#include "logs.h"

#include "log.h"
#include "send.h"
#include "statusjson.h"
#include "util.h"

#include <stdio.h>
#include <string.h>

/* Answer the client at route: the worker's reply r, or error. */
static void s_answer(qn_master *m, const char *route, size_t routelen,
                     const Quern__LogsReply *r, const char *error)
{
    Quern__LogsReply lr = QUERN__LOGS_REPLY__INIT;
    if (r)
        lr = *r;
    lr.request = 0;
    if (error)
        lr.error = (char *)error;
    qn_send(m, route, routelen, QUERN__ENVELOPE__BODY_LOGS_REPLY, &lr);
}

/* Remove wait i (order is not kept). */
static void s_remove(qn_master *m, size_t i)
{
    m->logs.v[i] = m->logs.v[--m->logs.n];
}

/*
 * The attempt rq names (its newest when it names none) of a job the
 * master knows, or NULL with err saying what is wrong. *jx is its job.
 */
static qn_arec *s_attempt(qn_master *m, const Quern__LogsRequest *rq, int *jx,
                          char *err, size_t cap)
{
    qn_kind kind = rq->kind == QUERN__TASK_KIND__REDUCE ? QN_REDUCE : QN_MAP;
    char tn[24];
    qn_task_name(tn, sizeof tn, rq->kind, rq->task);
    *jx = qn_jobs_find(&m->jobs, rq->job_id);
    if (*jx < 0) {
        snprintf(err, cap, "no job %s (quern jobs lists them)", rq->job_id);
        return NULL;
    }
    qn_job *j = &m->jobs.v[*jx];
    unsigned n = kind == QN_MAP ? j->nmaps : j->nreduce;
    const char *letter = kind == QN_MAP ? "m" : "r";
    if (rq->task >= n) {
        snprintf(err, cap,
                 "job %s has %u %s tasks (%s0 to %s%u); there is no %s", j->id,
                 n, qn_kind_name(kind), letter, letter, n ? n - 1 : 0, tn);
        return NULL;
    }
    qn_arec *last = qn_job_arec_last(j, kind, rq->task);
    qn_arec *r =
        rq->attempt ? qn_job_arec_find(j, kind, rq->task, rq->attempt) : last;
    if (r)
        return r;
    if (last)
        snprintf(err, cap,
                 "%s of job %s has no attempt %u: it had %zu (--attempt 1 "
                 "to %u)",
                 tn, j->id, rq->attempt, j->trec[kind][rq->task].n,
                 last->attempt);
    else
        snprintf(err, cap, "%s of job %s has not started yet", tn, j->id);
    return NULL;
}

/* Wait for worker w's answer on behalf of the client being handled;
 * returns the wait's id. */
static uint64_t s_wait(qn_master *m, int w, int64_t now)
{
    QN_GROW(m->logs.v, m->logs.cap, m->logs.n + 1);
    qn_logs_wait *lw = &m->logs.v[m->logs.n++];
    lw->id = ++m->logs.seq;
    memcpy(lw->route, m->net.in.id, m->net.in.idlen);
    lw->routelen = m->net.in.idlen;
    lw->worker = w;
    lw->deadline = now + QN_LOGS_WAIT_MS;
    qn_deadline_add(&m->due, lw->deadline, QN_DUE_LOGS, lw->id);
    return lw->id;
}

void qn_logs_request(qn_master *m, const Quern__LogsRequest *rq, int64_t now)
{
    char err[400];
    int jx;
    const qn_arec *r = s_attempt(m, rq, &jx, err, sizeof err);
    if (!r) {
        s_answer(m, m->net.in.id, m->net.in.idlen, NULL, err);
        return;
    }
    qn_mworker *w = &m->workers.v[r->worker];
    if (!qn_workers_alive(&m->workers, r->worker)) {
        char tn[24];
        qn_task_name(tn, sizeof tn, rq->kind, rq->task);
        snprintf(err, sizeof err,
                 "attempt %u of %s ran on worker %s, which is gone (lost or "
                 "left); its stderr went with it. quern status %s shows the "
                 "tail of each failed attempt's stderr",
                 r->attempt, tn, w->id, m->jobs.v[jx].id);
        s_answer(m, m->net.in.id, m->net.in.idlen, NULL, err);
        return;
    }
    if (m->logs.n == QN_LOGS_MAX_WAITS) {
        s_answer(m, m->net.in.id, m->net.in.idlen, NULL,
                 "too many logs requests in flight; try again");
        return;
    }
    Quern__LogsRequest fw = *rq;
    fw.attempt = r->attempt;
    fw.request = s_wait(m, r->worker, now);
    fw.worker_id = w->id;
    fw.max_bytes = rq->max_bytes && rq->max_bytes < QN_LOGS_MAX ? rq->max_bytes
                                                                : QN_LOGS_MAX;
    qn_send_worker(m, r->worker, QUERN__ENVELOPE__BODY_LOGS_REQUEST, &fw);
}

void qn_logs_reply(qn_master *m, const Quern__LogsReply *r)
{
    const qn_frames *in = &m->net.in;
    for (size_t i = 0; i < m->logs.n; i++) {
        qn_logs_wait *lw = &m->logs.v[i];
        if (lw->id != r->request)
            continue;
        const qn_mworker *w = &m->workers.v[lw->worker];
        if (strcmp(w->id, r->worker_id) != 0 || w->routelen != in->idlen ||
            memcmp(w->route, in->id, in->idlen) != 0) {
            qn_drop(m, DROP_INVALID,
                    "logs reply from another peer than the worker asked");
            return;
        }
        s_answer(m, lw->route, lw->routelen, r, NULL);
        s_remove(m, i);
        return;
    }
    qn_debug("master: a logs reply nobody waits for (late?)");
}

void qn_logs_worker_gone(qn_master *m, int w)
{
    for (size_t i = 0; i < m->logs.n;) {
        qn_logs_wait *lw = &m->logs.v[i];
        if (lw->worker != w) {
            i++;
            continue;
        }
        char err[200];
        snprintf(err, sizeof err,
                 "worker %s was lost before it sent the log; its stderr went "
                 "with it",
                 m->workers.v[w].id);
        s_answer(m, lw->route, lw->routelen, NULL, err);
        s_remove(m, i);
    }
}

void qn_logs_check(qn_master *m, int64_t now)
{
    for (size_t i = 0; i < m->logs.n;) {
        qn_logs_wait *lw = &m->logs.v[i];
        if (now < lw->deadline) {
            i++;
            continue;
        }
        char err[200];
        snprintf(err, sizeof err,
                 "worker %s did not send the log within %d s; try again",
                 m->workers.v[lw->worker].id, QN_LOGS_WAIT_MS / 1000);
        s_answer(m, lw->route, lw->routelen, NULL, err);
        s_remove(m, i);
    }
}
