/*
 * logs.c -- see logs.h.
 */
#include "logs.h"

#include "commit.h"
#include "datasets.h"
#include "status.h"
#include "workers.h"
#include "events.h"
#include "send.h"
#include "job.h"
#include "catalog.h"
#include "curve.h"
#include "droplog.h"
#include "http.h"
#include "ifile.h"
#include "jobspec.h"
#include "log.h"
#include "proc.h"
#include "ratelimit.h"
#include "sched.h"
#include "sha256.h"
#include "split.h"
#include "statusjson.h"
#include "util.h"
#include "wire.h"
#include <dirent.h>
#include <jansson.h>
#include <limits.h>
#include <stdarg.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zmq.h>

void qn_logs_answer(qn_master *m, const char *route, size_t routelen,
                    const Quern__LogsReply *r, const char *error)
{
    Quern__Envelope env = QUERN__ENVELOPE__INIT;
    Quern__LogsReply lr = QUERN__LOGS_REPLY__INIT;
    if (r)
        lr = *r;
    lr.request = 0;
    if (error)
        lr.error = (char *)error;
    env.body_case = QUERN__ENVELOPE__BODY_LOGS_REPLY;
    env.logs_reply = &lr;
    qn_send(m, route, routelen, &env);
}

void qn_logs_request(qn_master *m, const Quern__LogsRequest *rq, int64_t now)
{
    char err[400];
    int jx = qn_jobs_find(m, rq->job_id);
    qn_kind kind = rq->kind == QUERN__TASK_KIND__REDUCE ? QN_REDUCE : QN_MAP;
    char tn[24];
    qn_task_name(tn, sizeof tn, rq->kind, rq->task);
    if (jx < 0) {
        snprintf(err, sizeof err, "no job %s (quern jobs lists them)",
                 rq->job_id);
        qn_logs_answer(m, m->in.id, m->in.idlen, NULL, err);
        return;
    }
    qn_job *j = &m->jobs[jx];
    unsigned n = kind == QN_MAP ? j->nmaps : j->nreduce;
    if (rq->task >= n) {
        snprintf(err, sizeof err,
                 "job %s has %u %s tasks (%s0 to %s%u); there is no %s", j->id,
                 n, qn_kind_name(kind), kind == QN_MAP ? "m" : "r",
                 kind == QN_MAP ? "m" : "r", n ? n - 1 : 0, tn);
        qn_logs_answer(m, m->in.id, m->in.idlen, NULL, err);
        return;
    }
    qn_trec *t = &j->trec[kind][rq->task];
    qn_arec *r = NULL;
    if (!rq->attempt && t->n)
        r = &t->a[t->n - 1];
    else if (rq->attempt)
        r = qn_job_arec_find(j, kind, rq->task, rq->attempt);
    if (!r) {
        if (t->n)
            snprintf(err, sizeof err,
                     "%s of job %s has no attempt %u: it had %u (--attempt 1 "
                     "to %u)",
                     tn, j->id, rq->attempt, t->n, t->a[t->n - 1].attempt);
        else
            snprintf(err, sizeof err, "%s of job %s has not started yet", tn,
                     j->id);
        qn_logs_answer(m, m->in.id, m->in.idlen, NULL, err);
        return;
    }
    qn_mworker *w = &m->workers[r->worker];
    if (!qn_sched_worker_alive(m->sched, r->worker)) {
        snprintf(err, sizeof err,
                 "attempt %u of %s ran on worker %s, which is gone (lost or "
                 "left); its stderr went with it. quern status %s shows the "
                 "tail of each failed attempt's stderr",
                 r->attempt, tn, w->id, j->id);
        qn_logs_answer(m, m->in.id, m->in.idlen, NULL, err);
        return;
    }
    if (m->nlogs == MAX_LOG_WAITS) {
        qn_logs_answer(m, m->in.id, m->in.idlen, NULL,
                       "too many logs requests in flight; try again");
        return;
    }
    m->logs = qn_realloc(m->logs, (m->nlogs + 1) * sizeof *m->logs);
    qn_logs_wait *lw = &m->logs[m->nlogs++];
    lw->id = ++m->logs_seq;
    memcpy(lw->route, m->in.id, m->in.idlen);
    lw->routelen = m->in.idlen;
    lw->worker = r->worker;
    lw->deadline = now + LOGS_WAIT_MS;
    Quern__Envelope env = QUERN__ENVELOPE__INIT;
    Quern__LogsRequest fw = *rq;
    fw.attempt = r->attempt;
    fw.request = lw->id;
    fw.worker_id = w->id;
    fw.max_bytes =
        rq->max_bytes && rq->max_bytes < LOGS_MAX ? rq->max_bytes : LOGS_MAX;
    env.body_case = QUERN__ENVELOPE__BODY_LOGS_REQUEST;
    env.logs_request = &fw;
    qn_send(m, w->route, w->routelen, &env);
}

void qn_logs_reply(qn_master *m, const Quern__LogsReply *r)
{
    for (size_t i = 0; i < m->nlogs; i++) {
        qn_logs_wait *lw = &m->logs[i];
        if (lw->id != r->request)
            continue;
        const qn_mworker *w = &m->workers[lw->worker];
        if (strcmp(w->id, r->worker_id) != 0 || w->routelen != m->in.idlen ||
            memcmp(w->route, m->in.id, m->in.idlen) != 0) {
            qn_drop(m, DROP_INVALID,
                    "logs reply from another peer than the worker asked");
            return;
        }
        qn_logs_answer(m, lw->route, lw->routelen, r, NULL);
        m->logs[i] = m->logs[--m->nlogs];
        return;
    }
    qn_debug("master: a logs reply nobody waits for (late?)");
}

/* Answer the logs requests waiting for worker w, which is gone. */
void qn_logs_worker_gone(qn_master *m, int w)
{
    for (size_t i = 0; i < m->nlogs;) {
        qn_logs_wait *lw = &m->logs[i];
        if (lw->worker != w) {
            i++;
            continue;
        }
        char err[200];
        snprintf(err, sizeof err,
                 "worker %s was lost before it sent the log; its stderr went "
                 "with it",
                 m->workers[w].id);
        qn_logs_answer(m, lw->route, lw->routelen, NULL, err);
        m->logs[i] = m->logs[--m->nlogs];
    }
}

/* Answer the logs requests whose worker did not answer in time. */
void qn_logs_check(qn_master *m, int64_t now)
{
    for (size_t i = 0; i < m->nlogs;) {
        qn_logs_wait *lw = &m->logs[i];
        if (now < lw->deadline) {
            i++;
            continue;
        }
        char err[200];
        snprintf(err, sizeof err,
                 "worker %s did not send the log within %d s; try again",
                 m->workers[lw->worker].id, LOGS_WAIT_MS / 1000);
        qn_logs_answer(m, lw->route, lw->routelen, NULL, err);
        m->logs[i] = m->logs[--m->nlogs];
    }
}

int64_t qn_logs_due(qn_master *m)
{
    int64_t due = INT64_MAX;
    for (size_t i = 0; i < m->nlogs; i++)
        if (m->logs[i].deadline < due)
            due = m->logs[i].deadline;
    return due;
}
