/*
 * status.c -- see status.h.
 */
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

/* One task as shown to users; its strings point into m. */
void qn_status_task(qn_master *m, int jx, qn_kind kind, unsigned task,
                    int64_t now, Quern__TaskInfo *out)
{
    qn_job *j = &m->jobs[jx];
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
    out->shard = (char *)"";
    if (kind == QN_MAP && j->splits.splits && task < j->splits.n &&
        j->splits.splits[task].n)
        out->shard = j->splits.splits[task].pieces[0].name;
    if (ti.state == QN_TASK_DONE)
        out->progress = 1;
    else if (ti.state == QN_TASK_RUNNING && j->progress[kind])
        out->progress = j->progress[kind][task];
    /* The attempt that counts: the oldest running one, or the winner; a
     * pending task shows its last attempt, if any. */
    unsigned attempt = ti.state == QN_TASK_PENDING ? 0 : ti.attempt;
    qn_arec *r = NULL;
    if (attempt)
        r = qn_job_arec_find(j, kind, task, attempt);
    else if (j->trec[kind] && j->trec[kind][task].n)
        r = &j->trec[kind][task].a[j->trec[kind][task].n - 1];
    if (!r)
        return;
    out->attempt = r->attempt;
    if (r->worker >= 0 && r->worker < m->nworkers)
        out->worker_id = m->workers[r->worker].id;
    if (kind == QN_MAP)
        out->locality = r->local;
    out->started_at_ms = (uint64_t)r->start_wall;
    int64_t end = r->end ? r->end : (j->end ? j->end : now);
    out->duration_ms = end > r->start ? (uint64_t)(end - r->start) : 0;
}

void qn_status_job(qn_master *m, int jx, Quern__JobStatus *st,
                   qn_status_mem *mem)
{
    qn_job *j = &m->jobs[jx];
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
    for (int k = 0; k < 2; k++) {
        unsigned n = k ? j->nreduce : j->nmaps;
        double sum = 0;
        for (unsigned i = 0; i < n; i++) {
            qn_task_info ti = qn_sched_task(m->sched, jx, (qn_kind)k, i);
            if (ti.state == QN_TASK_DONE)
                sum += 1;
            else if (ti.state == QN_TASK_RUNNING)
                sum += j->progress[k][i];
        }
        if (k == 0)
            st->map_progress = n ? sum / n : 1;
        else
            st->reduce_progress = n ? sum / n : 1;
    }
    int64_t end = j->end ? j->end : qn_now_ms();
    st->elapsed_ms = (uint64_t)(end - j->start);
    mem->cs = qn_calloc(j->ncounters + 1, sizeof *mem->cs);
    mem->cp = qn_calloc(j->ncounters + 1, sizeof *mem->cp);
    for (size_t i = 0; i < j->ncounters; i++) {
        quern__counter__init(&mem->cs[i]);
        mem->cs[i].name = j->counters[i].name;
        mem->cs[i].value = j->counters[i].value;
        mem->cp[i] = &mem->cs[i];
    }
    st->counters = mem->cp;
    st->n_counters = j->ncounters;
    st->error = j->error ? j->error : (char *)"";
    mem->fp = qn_calloc(j->nfailures + 1, sizeof *mem->fp);
    for (size_t i = 0; i < j->nfailures; i++)
        mem->fp[i] = &j->failures[i];
    st->failures = mem->fp;
    st->n_failures = j->nfailures;
    st->task_rss_peak = j->task_rss_peak;
    uint64_t wpeak = 0;
    for (int w = 0; w < m->nworkers; w++)
        if (m->workers[w].rss_peak > wpeak)
            wpeak = m->workers[w].rss_peak;
    st->worker_rss_peak = wpeak;
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) == 0)
        st->master_rss_peak = (uint64_t)ru.ru_maxrss * 1024;
    st->output = j->spec->output;
    mem->sp = qn_calloc(j->nskipped + 1, sizeof *mem->sp);
    for (size_t i = 0; i < j->nskipped; i++)
        mem->sp[i] = &j->skipped[i];
    st->skipped = mem->sp;
    st->n_skipped = j->nskipped;
    st->submitted_at_ms = (uint64_t)j->submit_wall;
}

/* With tasks: each task of job jx in st (after qn_status_job). */
void qn_status_tasks(qn_master *m, int jx, Quern__JobStatus *st,
                     qn_status_mem *mem, int64_t now)
{
    qn_job *j = &m->jobs[jx];
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
    free(mem->fp);
    free(mem->sp);
    free(mem->ts);
    free(mem->tp);
}

/* Send the status of job jx (all when jx < 0, none with an error), with
 * each task's if tasks is set. */
void qn_status_send(qn_master *m, const char *route, size_t routelen, int jx,
                    const char *error, int tasks)
{
    int from = jx < 0 ? 0 : jx, to = jx < 0 ? m->njobs : jx + 1;
    if (error)
        from = to = 0;
    size_t n = (size_t)(to - from);
    Quern__JobStatus *st = qn_calloc(n + 1, sizeof *st);
    Quern__JobStatus **sp = qn_calloc(n + 1, sizeof *sp);
    qn_status_mem *mem = qn_calloc(n + 1, sizeof *mem);
    for (int i = from; i < to; i++) {
        qn_status_job(m, i, &st[i - from], &mem[i - from]);
        if (tasks)
            qn_status_tasks(m, i, &st[i - from], &mem[i - from], qn_now_ms());
        sp[i - from] = &st[i - from];
    }
    Quern__Envelope env = QUERN__ENVELOPE__INIT;
    Quern__StatusReply r = QUERN__STATUS_REPLY__INIT;
    r.jobs = sp;
    r.n_jobs = n;
    if (error)
        r.error = (char *)error;
    env.body_case = QUERN__ENVELOPE__BODY_STATUS_REPLY;
    env.status_reply = &r;
    qn_send(m, route, routelen, &env);
    for (size_t i = 0; i < n; i++)
        qn_status_release(&mem[i]);
    free(mem);
    free(st);
    free(sp);
}

void qn_status_watch(qn_job *j, const char *route, size_t routelen)
{
    for (size_t i = 0; i < j->nwatchers; i++)
        if (j->watchers[i].routelen == routelen &&
            memcmp(j->watchers[i].route, route, routelen) == 0)
            return;
    if (j->nwatchers == MAX_WATCHERS)
        return;
    j->watchers =
        qn_realloc(j->watchers, (j->nwatchers + 1) * sizeof *j->watchers);
    qn_route *r = &j->watchers[j->nwatchers++];
    memcpy(r->route, route, routelen);
    r->routelen = routelen;
}

void qn_status_push(qn_master *m, int jx, int64_t now)
{
    qn_job *j = &m->jobs[jx];
    for (size_t i = 0; i < j->nwatchers; i++)
        qn_status_send(m, j->watchers[i].route, j->watchers[i].routelen, jx,
                       NULL, 0);
    j->dirty = 0;
    j->last_push = now;
    if (j->state != QUERN__JOB_STATE__JOB_RUNNING) {
        free(j->watchers);
        j->watchers = NULL;
        j->nwatchers = 0;
    }
}

/* When the next status push is due (INT64_MAX if nobody watches). */
int64_t qn_status_push_due(qn_master *m)
{
    int64_t due = INT64_MAX;
    for (int i = 0; i < m->njobs; i++) {
        qn_job *j = &m->jobs[i];
        if (!j->nwatchers)
            continue;
        int64_t d = j->last_push + (j->dirty ? PUSH_MIN_MS : PUSH_MAX_MS);
        if (d < due)
            due = d;
    }
    return due;
}

/* Every worker as shown to users, in wi[nworkers] (refs: a block to free). */
void qn_status_workers(qn_master *m, int64_t now, Quern__WorkerInfo *wi,
                       Quern__WorkerInfo **wp, void **mem)
{
    size_t n = (size_t)m->nworkers;
    size_t nrefs = 0;
    for (size_t i = 0; i < n; i++)
        nrefs += qn_sched_worker_busy(m->sched, (int)i);
    /* One block: the refs, then pointers to them. */
    Quern__AttemptRef *refs = qn_calloc(nrefs + 1, sizeof *refs + sizeof refs);
    Quern__AttemptRef **rp = (Quern__AttemptRef **)(refs + nrefs + 1);
    *mem = refs;
    size_t used = 0;
    for (size_t i = 0; i < n; i++) {
        qn_mworker *w = &m->workers[i];
        quern__worker_info__init(&wi[i]);
        wi[i].worker_id = w->id;
        wi[i].host = w->host;
        wi[i].pid = w->pid;
        wi[i].slots = w->slots;
        wi[i].busy = qn_sched_worker_busy(m->sched, (int)i);
        wi[i].alive = qn_sched_worker_alive(m->sched, (int)i);
        wi[i].heartbeat_age_ms = (uint64_t)(now - w->seen);
        wi[i].shuffle_endpoint = w->endpoint;
        wi[i].failures = w->failures;
        for (size_t d = 0; d < m->cat.n; d++) {
            const qn_dataset *ds = &m->cat.ds[d];
            for (uint32_t k = 0; k < ds->nslots; k++) {
                if (qn_catalog_holds(ds, k, w->id)) {
                    wi[i].shards++;
                    wi[i].shard_bytes += ds->shards[k].size;
                }
            }
        }
        wi[i].rss_peak = w->rss_peak;
        qn_attempt_ref run[64];
        unsigned nr = qn_sched_worker_attempts(m->sched, (int)i, run, 64);
        wi[i].running = rp + used;
        for (unsigned k = 0; k < nr && used < nrefs; k++) {
            Quern__AttemptRef *r = &refs[used];
            quern__attempt_ref__init(r);
            r->job_id = m->jobs[run[k].job].id;
            r->kind = run[k].kind == QN_REDUCE ? QUERN__TASK_KIND__REDUCE
                                               : QUERN__TASK_KIND__MAP;
            r->task = run[k].task;
            r->attempt = run[k].attempt;
            rp[used++] = r;
            wi[i].n_running++;
        }
        wp[i] = &wi[i];
    }
}
