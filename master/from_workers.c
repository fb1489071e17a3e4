/*
 * from_workers.c -- see from_workers.h.
 */
#include "from_workers.h"

#include "actions.h"
#include "plugins.h"
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

void qn_from_worker_hello(qn_master *m, const Quern__WorkerHello *h,
                          int64_t now)
{
    int w = qn_workers_find(m, h->worker_id);
    if (w >= 0 && qn_sched_worker_alive(m->sched, w)) {
        /* It missed our welcome, or its connection is new. Only the
         * worker itself can say so: on the connection we know, or with
         * the session we gave it. Anyone else claiming its id would take
         * its traffic and rewrite what it holds. */
        qn_mworker *wk = &m->workers[w];
        int same = wk->routelen == m->in.idlen &&
                   memcmp(wk->route, m->in.id, m->in.idlen) == 0;
        if (!same && h->session != wk->session) {
            char why[200];
            snprintf(why, sizeof why,
                     "a hello for worker %s, which is alive on another "
                     "connection, without its session (is another process "
                     "using its id?)",
                     wk->id);
            qn_drop(m, DROP_INVALID, why);
            return;
        }
        qn_route_here(m, w);
        qn_sched_worker_seen(m->sched, now, w);
        qn_send_welcome(m, m->in.id, m->in.idlen, h->worker_id, 0, 0,
                        wk->session);
        qn_catalog_forget_worker(&m->cat, h->worker_id);
        for (size_t i = 0; i < h->n_shards; i++)
            qn_datasets_hold(m, w, h->shards[i]);
        qn_commit_data_changed(m, now);
        return;
    }
    int live = 0;
    for (int i = 0; i < m->nworkers; i++)
        live += qn_sched_worker_alive(m->sched, i);
    if (live >= MAX_LIVE_WORKERS) {
        char why[120];
        snprintf(why, sizeof why,
                 "a hello from worker %s, one too many (the master takes %d "
                 "at once)",
                 h->worker_id, MAX_LIVE_WORKERS);
        qn_drop(m, DROP_INVALID, why);
        return;
    }
    /* Given up for dead before (w >= 0): it joins as new, and drops what
     * it ran and holds, which this master has already replaced. */
    int reset = w >= 0;
    m->workers =
        qn_realloc(m->workers, (size_t)(m->nworkers + 1) * sizeof *m->workers);
    qn_mworker *wk = &m->workers[m->nworkers++];
    memset(wk, 0, sizeof *wk);
    snprintf(wk->id, sizeof wk->id, "%s", h->worker_id);
    snprintf(wk->host, sizeof wk->host, "%s", h->host);
    wk->pid = h->pid;
    wk->slots = h->slots;
    wk->endpoint = qn_strdup(h->shuffle_endpoint);
    memcpy(wk->route, m->in.id, m->in.idlen);
    wk->routelen = m->in.idlen;
    wk->seen = now;
    wk->has_data = h->has_data;
    wk->session = qn_random_u64();
    snprintf(wk->curve_public, sizeof wk->curve_public, "%s", h->curve_public);
    /* Welcome first, so it arrives before any assignment. */
    qn_send_welcome(m, m->in.id, m->in.idlen, h->worker_id, 0, reset,
                    wk->session);
    /* What it holds, as of now, replaces what we knew of it. */
    qn_catalog_forget_worker(&m->cat, h->worker_id);
    int handle = qn_sched_worker_join(m->sched, now, h->slots);
    if (handle != m->nworkers - 1)
        qn_error("master: scheduler handle %d for worker %s is out of step",
                 handle, h->worker_id);
    for (size_t i = 0; i < h->n_shards; i++)
        qn_datasets_hold(m, handle, h->shards[i]);
    qn_event(m, QN_LOG_INFO, "worker_joined", -1, -1, 0, 0, handle,
             "worker %s joined from %s with %u slots, shuffle on %s%s, "
             "holding %zu dataset shards",
             m->workers[handle].id, m->workers[handle].host,
             m->workers[handle].slots, m->workers[handle].endpoint,
             h->has_data ? "" : " (no data dir)", h->n_shards);
    qn_commit_data_changed(m, now);
}

/*
 * The worker a message claims to come from, or -1: unknown or given up
 * for dead (it is asked to join again), or not holding the worker's
 * session (dropped, unless it is an older membership's: late, not
 * hostile). With route set, replies to it go where this message came from.
 */
int qn_from_worker_known(qn_master *m, const char *id, uint64_t session,
                         int64_t now, int route)
{
    int w = qn_workers_find(m, id);
    if (w >= 0 && session != m->workers[w].session &&
        qn_sched_worker_alive(m->sched, w)) {
        for (int old = w - 1; old >= 0; old--)
            if (strcmp(m->workers[old].id, id) == 0 &&
                m->workers[old].session == session) {
                qn_debug("master: a late message from worker %s's earlier "
                         "membership; ignored",
                         id);
                return -1;
            }
        char why[160];
        snprintf(why, sizeof why, "a message for worker %s without its session",
                 id);
        qn_drop(m, DROP_INVALID, why);
        return -1;
    }
    if (w < 0 || qn_sched_worker_seen(m->sched, now, w) < 0) {
        qn_send_welcome(m, m->in.id, m->in.idlen, id, 1, 0, 0);
        return -1;
    }
    if (route)
        qn_route_here(m, w);
    m->workers[w].seen = now;
    return w;
}

void qn_from_worker_heartbeat(qn_master *m, const Quern__Heartbeat *hb,
                              int64_t now)
{
    int w = qn_from_worker_known(m, hb->worker_id, hb->session, now, 0);
    if (w < 0)
        return;
    qn_mworker *wk = &m->workers[w];
    if (hb->seq && hb->seq <= wk->hb_seq) {
        /* Queued across a reconnect and delivered late: what it says
         * about attempts is old news. (It still shows the worker lives.) */
        qn_debug("master: worker %s: ignoring heartbeat %llu, older than "
                 "%llu",
                 wk->id, (unsigned long long)hb->seq,
                 (unsigned long long)wk->hb_seq);
        return;
    }
    wk->hb_seq = hb->seq;
    /* Intervals that passed without a heartbeat (a late one is missed). */
    int64_t hb_ms = m->cfg.heartbeat_ms > 0 ? m->cfg.heartbeat_ms : 1000;
    if (wk->hb_last && now - wk->hb_last > hb_ms + hb_ms / 2)
        m->heartbeats_missed +=
            (uint64_t)((now - wk->hb_last + hb_ms / 2) / hb_ms - 1);
    wk->hb_last = now;
    qn_route_here(m, w); /* a fresh message: its connection is current */
    /* The answer tells the worker its master is still there. */
    qn_send_welcome(m, wk->route, wk->routelen, wk->id, 0, 0, wk->session);
    /* An attempt running here for a while that the worker does not list
     * never reached it, or its end never reached us: lost, not failed. */
    qn_attempt_ref mine[256];
    unsigned n = qn_sched_worker_attempts(m->sched, w, mine, 256);
    int64_t grace = 3 * (int64_t)m->cfg.heartbeat_ms;
    if (grace < 2000)
        grace = 2000;
    for (unsigned i = 0; i < n; i++) {
        if (now - mine[i].started < grace)
            continue;
        const char *job = m->jobs[mine[i].job].id;
        int listed = 0;
        for (size_t k = 0; k < hb->n_running && !listed; k++) {
            const Quern__AttemptRef *r = hb->running[k];
            listed = r->task == mine[i].task && r->attempt == mine[i].attempt &&
                     r->kind == (Quern__TaskKind)mine[i].kind &&
                     strcmp(r->job_id, job) == 0;
        }
        if (!listed)
            qn_sched_vanished(m->sched, now, mine[i].job, mine[i].kind,
                              mine[i].task, mine[i].attempt);
    }
    if (hb->rss_peak > wk->rss_peak)
        wk->rss_peak = hb->rss_peak;
    if (hb->shuffle_dropped > wk->shuffle_dropped)
        wk->shuffle_dropped = hb->shuffle_dropped;
    for (size_t i = 0; i < hb->n_work; i++) {
        const Quern__AttemptRef *r = hb->work[i]->attempt;
        int jx = qn_jobs_find(m, r->job_id);
        if (jx < 0 || r->kind > QUERN__TASK_KIND__REDUCE)
            continue;
        qn_sched_work(m->sched, now, jx, (qn_kind)r->kind, r->task, r->attempt,
                      hb->work[i]->records + hb->work[i]->bytes);
    }
    /* An attempt the worker runs that is not current here (given up on,
     * or of a job this master never ran) only wastes a slot: kill it.
     * Said once per heartbeat, however many it lists. */
    unsigned stale = 0;
    for (size_t i = 0; i < hb->n_running; i++) {
        const Quern__AttemptRef *r = hb->running[i];
        int jx = qn_jobs_find(m, r->job_id);
        qn_kind kind = r->kind == QUERN__TASK_KIND__REDUCE ? QN_REDUCE : QN_MAP;
        if (jx >= 0 && qn_sched_attempt_worker(m->sched, jx, kind, r->task,
                                               r->attempt) == w)
            continue;
        Quern__Envelope env = QUERN__ENVELOPE__INIT;
        Quern__CancelTask ct = QUERN__CANCEL_TASK__INIT;
        ct.attempt = (Quern__AttemptRef *)r;
        env.body_case = QUERN__ENVELOPE__BODY_CANCEL_TASK;
        env.cancel_task = &ct;
        qn_send(m, wk->route, wk->routelen, &env);
        if (stale++ == 0)
            qn_info("master: worker %s runs %s %s task %u attempt %u, which "
                    "is not current; cancelling it",
                    wk->id, r->job_id, qn_kind_name(kind), r->task, r->attempt);
    }
    if (stale > 1)
        qn_info("master: worker %s: cancelled %u more attempts that are not "
                "current",
                wk->id, stale - 1);
}

/*
 * Tell running reduce attempts of job jx (only the one named by to, if
 * set) where map task's output now is.
 */
void qn_from_worker_send_location(qn_master *m, int jx, unsigned task,
                                  const Quern__AttemptRef *to)
{
    qn_job *j = &m->jobs[jx];
    const qn_mapout *mo = &j->outs[task];
    Quern__MapOutput out = QUERN__MAP_OUTPUT__INIT;
    Quern__MapOutput *op = &out;
    out.map = task;
    out.attempt = mo->attempt;
    out.endpoint = m->workers[mo->worker].endpoint;
    out.worker_id = m->workers[mo->worker].id;
    out.curve_public = m->workers[mo->worker].curve_public;
    for (unsigned r = 0; r < j->nreduce; r++) {
        unsigned atts[QN_SCHED_MAX_RUNNING];
        int ws[QN_SCHED_MAX_RUNNING];
        unsigned n = qn_sched_running(m->sched, jx, QN_REDUCE, r, atts, ws);
        for (unsigned k = 0; k < n; k++) {
            if (to && (to->task != r || to->attempt != atts[k]))
                continue;
            Quern__AttemptRef ref = QUERN__ATTEMPT_REF__INIT;
            ref.job_id = j->id;
            ref.kind = QUERN__TASK_KIND__REDUCE;
            ref.task = r;
            ref.attempt = atts[k];
            out.bytes = mo->parts[r].bytes;
            out.raw_bytes = mo->parts[r].raw_bytes;
            Quern__MapLocations ml = QUERN__MAP_LOCATIONS__INIT;
            ml.reduce = &ref;
            ml.outputs = &op;
            ml.n_outputs = 1;
            Quern__Envelope env = QUERN__ENVELOPE__INIT;
            env.body_case = QUERN__ENVELOPE__BODY_MAP_LOCATIONS;
            env.map_locations = &ml;
            qn_send(m, m->workers[ws[k]].route, m->workers[ws[k]].routelen,
                    &env);
        }
    }
}

/*
 * A current reduce attempt (ref, on worker rw) of running job jx could not
 * fetch a map output.
 */
void qn_from_worker_fetch_failure(qn_master *m, int jx, int rw,
                                  const Quern__AttemptRef *ref,
                                  const Quern__FetchFailure *ff, int64_t now)
{
    qn_job *j = &m->jobs[jx];
    const char *reducer = m->workers[rw].id;
    unsigned rtask = ref->task;
    if (ff->map >= j->nmaps || !j->outs) {
        qn_drop(m, DROP_INVALID, "fetch failure for a map out of range");
        return;
    }
    qn_task_info ti = qn_sched_task(m->sched, jx, QN_MAP, ff->map);
    if (ti.state != QN_TASK_DONE)
        return; /* running again: its new place is sent when it is done */
    if (ti.attempt != ff->attempt) {
        /* It tries an older output: our word of the new one was lost. */
        qn_from_worker_send_location(m, jx, ff->map, ref);
        return;
    }
    qn_mapout *mo = &j->outs[ff->map];
    mo->reports++;
    qn_job_info info = qn_sched_job(m->sched, jx);
    unsigned undone = info.reduces - info.reduces_done;
    unsigned limit = (undone + 1) / 2;
    if (limit > FETCH_REPORTS)
        limit = FETCH_REPORTS;
    if (limit < 1)
        limit = 1;
    qn_warn("master: job %s reduce task %u on worker %s cannot fetch map %u "
            "attempt %u from worker %s: %s (report %u of %u)",
            j->id, rtask, reducer, ff->map, ff->attempt,
            m->workers[mo->worker].id, ff->reason, mo->reports, limit);
    if (ff->lost) {
        /* Its input was bad: if it fails now, that is not its fault. */
        qn_arec *ra = qn_job_arec_find(j, QN_REDUCE, rtask, ref->attempt);
        if (ra)
            ra->blamed = 1;
    }
    if (ff->lost || mo->reports >= limit)
        qn_sched_map_lost(m->sched, now, jx, ff->map, ff->attempt);
}

/* A copy of an output shard (qn_commit_replicate) ended, or reports progress.
 */
void qn_from_worker_copy_update(qn_master *m, int jx, int w,
                                const Quern__TaskUpdate *u, int64_t now)
{
    qn_job *j = &m->jobs[jx];
    unsigned p = u->attempt->task;
    if (!j->committing || p >= j->nreduce ||
        u->state == QUERN__TASK_STATE__RUNNING)
        return;
    if (j->part_copy[p] == w)
        j->part_copy[p] = -1;
    if (u->state != QUERN__TASK_STATE__SUCCEEDED) {
        j->part_copy_fails[p]++;
        qn_warn("master: job %s: copying output shard %u to worker %s "
                "failed: %s",
                j->id, p, m->workers[w].id, u->reason);
    }
    qn_commit_replicate(m, jx, now);
}

void qn_from_worker_task_update(qn_master *m, const Quern__TaskUpdate *u,
                                int64_t now)
{
    int w = qn_from_worker_known(m, u->worker_id, u->session, now, 1);
    if (w < 0)
        return;
    const Quern__AttemptRef *r = u->attempt;
    int jx = qn_jobs_find(m, r->job_id);
    if (jx < 0 || (r->kind != QUERN__TASK_KIND__MAP &&
                   r->kind != QUERN__TASK_KIND__REDUCE &&
                   r->kind != QUERN__TASK_KIND__COPY)) {
        qn_drop(m, DROP_INVALID, "task update for an unknown job or task kind");
        return;
    }
    qn_job *j = &m->jobs[jx];
    if (r->kind == QUERN__TASK_KIND__COPY) {
        qn_from_worker_copy_update(m, jx, w, u, now);
        return;
    }
    qn_kind kind = (qn_kind)r->kind;
    unsigned n = kind == QN_MAP ? j->nmaps : j->nreduce;
    if (r->task >= n) {
        qn_drop(m, DROP_INVALID, "task update for a task out of range");
        return;
    }
    int current =
        qn_sched_attempt_worker(m->sched, jx, kind, r->task, r->attempt) == w;
    switch (u->state) {
    case QUERN__TASK_STATE__RUNNING:
        if (current) {
            qn_sched_progress(m->sched, now, jx, kind, r->task, r->attempt);
            double p = u->progress;
            if (p >= 0 && p <= 1) {
                qn_sched_fraction(m->sched, jx, kind, r->task, r->attempt, p);
                if (p > j->progress[kind][r->task])
                    j->progress[kind][r->task] = p;
            }
            j->dirty = 1;
        }
        if (kind == QN_REDUCE && current &&
            j->state == QUERN__JOB_STATE__JOB_RUNNING)
            for (size_t i = 0; i < u->n_fetch_failures; i++)
                qn_from_worker_fetch_failure(m, jx, w, r, u->fetch_failures[i],
                                             now);
        break;
    case QUERN__TASK_STATE__SUCCEEDED:
        if (!current) {
            qn_info("master: job %s ignores a success of %s task %u attempt "
                    "%u on worker %s: that attempt is not current",
                    j->id, qn_kind_name(kind), r->task, r->attempt,
                    u->worker_id);
            break;
        }
        if (kind == QN_MAP && u->n_partitions != j->nreduce) {
            qn_job_add_failure(j, kind, r->task, r->attempt, u->worker_id,
                               "map reported the wrong number of partitions",
                               NULL, 0, NULL);
            m->attempts_failed[kind]++;
            qn_job_arec_end(j, kind, r->task, r->attempt, now);
            qn_sched_failed(m->sched, now, jx, kind, r->task, r->attempt);
            break;
        }
        if (kind == QN_REDUCE && j->out_dataset) {
            /* The worker installs it as a shard and announces it. */
            Quern__DataCommand c = QUERN__DATA_COMMAND__INIT;
            c.op = QUERN__DATA_COMMAND__OP__COMMIT;
            c.dataset = j->spec->output;
            c.index = r->task;
            c.job_id = j->id;
            c.attempt = r->attempt;
            c.size = u->output_size;
            c.crc = u->output_crc;
            qn_send_data_cmd(m, w, &c);
        } else if (kind == QN_REDUCE) {
            char why[1200];
            if (qn_output_part_commit(j->spec->output, j->id, r->task,
                                      r->attempt, why, sizeof why) < 0) {
                qn_warn("master: job %s reduce task %u attempt %u: %s", j->id,
                        r->task, r->attempt, why);
                qn_job_add_failure(j, kind, r->task, r->attempt, u->worker_id,
                                   why, NULL, 0, NULL);
                m->attempts_failed[kind]++;
                qn_job_arec_end(j, kind, r->task, r->attempt, now);
                qn_sched_failed(m->sched, now, jx, kind, r->task, r->attempt);
                break;
            }
        }
        if (kind == QN_MAP) {
            qn_mapout *mo = &j->outs[r->task];
            mo->attempt = r->attempt;
            mo->worker = w;
            mo->reports = 0;
            for (unsigned p = 0; p < j->nreduce; p++) {
                quern__partition_info__init(&mo->parts[p]);
                mo->parts[p].bytes = u->partitions[p]->bytes;
                mo->parts[p].raw_bytes = u->partitions[p]->raw_bytes;
                mo->parts[p].records = u->partitions[p]->records;
            }
            /* Kept per map, so a map run again is not counted twice. */
            for (size_t i = 0; i < u->n_counters; i++) {
                size_t c = qn_job_count(j, u->counters[i]->name,
                                        u->counters[i]->value);
                if (c == SIZE_MAX)
                    continue;
                if (c >= mo->ncv) {
                    mo->cv = qn_realloc(mo->cv, (c + 1) * sizeof *mo->cv);
                    memset(mo->cv + mo->ncv, 0,
                           (c + 1 - mo->ncv) * sizeof *mo->cv);
                    mo->ncv = c + 1;
                }
                mo->cv[c] = qn_sat_add(mo->cv[c], u->counters[i]->value);
            }
            if (j->spec->skip_bad_records)
                qn_job_note_skipped(j, r->task);
        } else {
            for (size_t i = 0; i < u->n_counters; i++)
                qn_job_count(j, u->counters[i]->name, u->counters[i]->value);
        }
        if (u->rss_peak > j->task_rss_peak)
            j->task_rss_peak = u->rss_peak;
        qn_job_info before = qn_sched_job(m->sched, jx);
        qn_job_arec_end(j, kind, r->task, r->attempt, now);
        qn_sched_done(m->sched, now, jx, kind, r->task, r->attempt);
        /* A map run again while reduces wait for it: say where it is. */
        if (kind == QN_MAP && before.reduces_running > 0 &&
            m->jobs[jx].state == QUERN__JOB_STATE__JOB_RUNNING)
            qn_from_worker_send_location(m, jx, r->task, NULL);
        j->dirty = 1;
        break;
    case QUERN__TASK_STATE__FAILED:
    case QUERN__TASK_STATE__KILLED:
        if (!current) {
            /* Killed on request is expected; anything else is news. */
            if (u->state == QUERN__TASK_STATE__KILLED)
                qn_debug("master: job %s %s task %u attempt %u was killed",
                         j->id, qn_kind_name(kind), r->task, r->attempt);
            else
                qn_info("master: job %s ignores the failure of %s task %u "
                        "attempt %u on worker %s: that attempt is not current",
                        j->id, qn_kind_name(kind), r->task, r->attempt,
                        u->worker_id);
            break;
        }
        qn_event(m, QN_LOG_WARN, "attempt_failed", jx, (int)kind, r->task,
                 r->attempt, w,
                 "job %s %s task %u attempt %u failed on worker %s: %s", j->id,
                 qn_kind_name(kind), r->task, r->attempt, u->worker_id,
                 u->reason);
        m->attempts_failed[kind]++;
        qn_job_arec_end(j, kind, r->task, r->attempt, now);
        const char *shard = NULL;
        if (kind == QN_MAP && u->in_record) {
            shard = qn_job_shard(j, r->task, u->input_piece);
            qn_job_note_crash(j, r->task, u);
        }
        qn_job_add_failure(j, kind, r->task, r->attempt, u->worker_id,
                           u->reason, u->stderr_tail, u->record_offset, shard);
        const qn_arec *ra = qn_job_arec_find(j, kind, r->task, r->attempt);
        if (ra && ra->blamed && u->state == QUERN__TASK_STATE__FAILED) {
            /* A map output it read was corrupt, and that map runs again:
             * neither the reduce nor its worker is to blame. */
            qn_sched_spoiled(m->sched, now, jx, kind, r->task, r->attempt);
        } else {
            m->workers[w].failures++;
            qn_sched_failed(m->sched, now, jx, kind, r->task, r->attempt);
        }
        j->dirty = 1;
        break;
    default: qn_drop(m, DROP_INVALID, "task update with an unknown state");
    }
}

/*
 * Worker w could not install a reduce's output as its dataset shard (a
 * full disk, say). The reduce is done and its staged output gone, so the
 * job fails saying why rather than wait for a shard that never comes.
 */
void qn_from_worker_commit_failure(qn_master *m, int w,
                                   const Quern__CommitFailure *cf, int64_t now)
{
    int jx = qn_jobs_find(m, cf->job_id);
    qn_job *j = jx >= 0 ? &m->jobs[jx] : NULL;
    qn_task_info ti = {.worker = -1};
    if (j && cf->index < j->nreduce)
        ti = qn_sched_task(m->sched, jx, QN_REDUCE, cf->index);
    /* Only a COMMIT we sent can fail: one for a reduce done on w. */
    if (!j || !j->out_dataset || ti.state != QN_TASK_DONE || ti.worker != w ||
        strcmp(j->spec->output, cf->dataset) != 0) {
        qn_drop(m, DROP_INVALID, "a commit failure for no output it holds");
        return;
    }
    if (j->state != QUERN__JOB_STATE__JOB_RUNNING)
        return;
    char msg[1200];
    snprintf(msg, sizeof msg,
             "worker %s could not install output shard %u of %s: %s",
             m->workers[w].id, cf->index, cf->dataset, cf->reason);
    /* Other reduces may still run: the scheduler lets the job go too (and
     * its attempts are killed), or it would go on acting for a job whose
     * tasks are gone. (Found by fuzz_master.) */
    if (qn_sched_job_cancel(m->sched, now, jx) == 0)
        qn_actions_run(m, now);
    qn_commit_job_finished(m, jx, QUERN__JOB_STATE__JOB_FAILED, msg, now);
}

void qn_from_worker_data_report(qn_master *m, const Quern__DataReport *dr,
                                int64_t now)
{
    int w = qn_from_worker_known(m, dr->worker_id, dr->session, now, 1);
    if (w < 0)
        return;
    for (size_t i = 0; i < dr->n_added; i++)
        qn_datasets_hold(m, w, dr->added[i]);
    for (size_t i = 0; i < dr->n_removed; i++)
        qn_catalog_unhold(&m->cat, dr->worker_id, dr->removed[i]->dataset,
                          dr->removed[i]->index);
    for (size_t i = 0; i < dr->n_failed; i++)
        qn_from_worker_commit_failure(m, w, dr->failed[i], now);
    qn_commit_data_changed(m, now);
}

void qn_from_worker_plugin_request(qn_master *m, const Quern__PluginRequest *pr,
                                   int64_t now)
{
    Quern__Envelope env = QUERN__ENVELOPE__INIT;
    Quern__PluginReply r = QUERN__PLUGIN_REPLY__INIT;
    /* A job's code goes only to the workers that run it. */
    int w = qn_from_worker_known(m, pr->worker_id, pr->session, now, 0);
    if (w < 0)
        return;
    r.hash = pr->hash;
    r.error = (char *)"no job uses a plugin with that hash";
    for (size_t i = 0; i < m->nplugins; i++) {
        if (strcmp(m->plugins[i].hash, pr->hash) == 0) {
            r.data.data = m->plugins[i].data;
            r.data.len = m->plugins[i].len;
            r.error = (char *)"";
            m->plugins[i].used = now;
            break;
        }
    }
    env.body_case = QUERN__ENVELOPE__BODY_PLUGIN_REPLY;
    env.plugin_reply = &r;
    qn_send(m, m->in.id, m->in.idlen, &env);
}
