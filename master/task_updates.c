/*
 * task_updates.c -- see task_updates.h.
 */
#include "task_updates.h"

#include "commit.h"
#include "compress.h"
#include "durable.h"
#include "events.h"
#include "log.h"
#include "send.h"
#include "replicas.h"
#include "status.h"
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- map outputs --------------------------------------------------------- */

/*
 * Tell running reduce attempts of job jx (only the one named by to, if
 * set) where map task's output now is.
 */
static void s_send_location(qn_master *m, int jx, unsigned task,
                            const Quern__AttemptRef *to)
{
    qn_job *j = &m->jobs.v[jx];
    const qn_mapout *mo = &j->outs[task];
    const qn_mworker *mw = &m->workers.v[mo->worker];
    Quern__MapOutput out = QUERN__MAP_OUTPUT__INIT;
    Quern__MapOutput *op = &out;
    out.map = task;
    out.attempt = mo->attempt;
    out.endpoint = mw->endpoint;
    out.worker_id = (char *)mw->id;
    out.curve_public = (char *)mw->curve_public;
    out.incarnation = mw->incarnation;
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
            qn_send_worker(m, ws[k], QUERN__ENVELOPE__BODY_MAP_LOCATIONS, &ml);
        }
    }
}

/*
 * A current reduce attempt (ref, on worker rw) of running job jx could not
 * fetch a map output. Enough reports (or one saying it is corrupt) and the
 * map runs again.
 */
static void s_fetch_failure(qn_master *m, int jx, int rw,
                            const Quern__AttemptRef *ref,
                            const Quern__FetchFailure *ff, int64_t now)
{
    qn_job *j = &m->jobs.v[jx];
    if (ff->map >= j->nmaps || !j->outs) {
        qn_drop(m, DROP_INVALID, "fetch failure for a map out of range");
        return;
    }
    qn_task_info ti = qn_sched_task(m->sched, jx, QN_MAP, ff->map);
    if (ti.state != QN_TASK_DONE)
        return; /* running again: its new place is sent when it is done */
    qn_mapout *mo = &j->outs[ff->map];
    if (ti.attempt != ff->attempt ||
        (ff->incarnation &&
         ff->incarnation < m->workers.v[mo->worker].incarnation)) {
        /* It tries an older output, or the output where it was before its
         * worker restarted: our word of where it is now was lost, or is on
         * its way. */
        s_send_location(m, jx, ff->map, ref);
        return;
    }
    mo->reports++;
    qn_job_info info = qn_sched_job(m->sched, jx);
    unsigned undone = info.reduces - info.reduces_done;
    unsigned limit = (undone + 1) / 2;
    if (limit > QN_TASK_UPDATES_FETCH_REPORTS)
        limit = QN_TASK_UPDATES_FETCH_REPORTS;
    if (limit < 1)
        limit = 1;
    qn_warn("master: job %s reduce task %u on worker %s cannot fetch map %u "
            "attempt %u from worker %s: %s (report %u of %u)",
            j->id, ref->task, m->workers.v[rw].id, ff->map, ff->attempt,
            m->workers.v[mo->worker].id, ff->reason, mo->reports, limit);
    if (ff->lost) {
        /* Its input was bad: if it fails now, that is not its fault. */
        qn_arec *ra = qn_job_arec_find(j, QN_REDUCE, ref->task, ref->attempt);
        if (ra)
            ra->blamed = 1;
    }
    if (ff->lost || mo->reports >= limit)
        qn_sched_map_lost(m->sched, now, jx, ff->map, ff->attempt);
}

/* ---- task updates -------------------------------------------------------- */

/* A copy of an output shard (commit.h) ended, or reports progress. */
static void s_copy_update(qn_master *m, int jx, int w,
                          const Quern__TaskUpdate *u, int64_t now)
{
    qn_job *j = &m->jobs.v[jx];
    unsigned p = u->attempt->task;
    if (!j->out.committing || p >= j->nreduce ||
        u->state == QUERN__TASK_STATE__RUNNING)
        return;
    if (j->out.copy[p] == w)
        j->out.copy[p] = -1;
    if (u->state != QUERN__TASK_STATE__SUCCEEDED) {
        j->out.fails[p]++;
        qn_warn("master: job %s: copying output shard %u to worker %s "
                "failed: %s",
                j->id, p, m->workers.v[w].id, u->reason);
    }
    qn_commit_replicate(m, jx, now);
}

/* A running attempt's progress, and (a reduce's) map outputs it could not
 * fetch. */
static void s_update_running(qn_master *m, int jx, int w,
                             const Quern__TaskUpdate *u, int64_t now)
{
    const Quern__AttemptRef *r = u->attempt;
    qn_job *j = &m->jobs.v[jx];
    qn_kind kind = (qn_kind)r->kind;
    qn_sched_progress(m->sched, now, jx, kind, r->task, r->attempt);
    double p = u->progress;
    if (p >= 0 && p <= 1) {
        qn_sched_fraction(m->sched, jx, kind, r->task, r->attempt, p);
        if (p > j->progress[kind][r->task])
            j->progress[kind][r->task] = p;
    }
    qn_status_dirty(m, jx);
    if (kind == QN_REDUCE && j->state == QUERN__JOB_STATE__JOB_RUNNING)
        for (size_t i = 0; i < u->n_fetch_failures; i++)
            s_fetch_failure(m, jx, w, r, u->fetch_failures[i], now);
}

/* A current attempt failed through its own fault (reason), or through no
 * fault of its own when blamed is set. */
static void s_attempt_failed(qn_master *m, int jx, int w,
                             const Quern__AttemptRef *r, const char *reason,
                             int64_t now)
{
    qn_job *j = &m->jobs.v[jx];
    qn_kind kind = (qn_kind)r->kind;
    qn_job_add_failure(j, kind, r->task, r->attempt, m->workers.v[w].id, reason,
                       NULL, 0, NULL);
    m->stats.attempts_failed[kind]++;
    qn_job_arec_end(j, kind, r->task, r->attempt, now);
    qn_sched_failed(m->sched, now, jx, kind, r->task, r->attempt);
}

/*
 * Put a current reduce attempt's output in place: a folder's part file
 * renamed now, or a dataset shard the worker installs and announces.
 * Returns 0, or -1 when the part file could not be (the attempt failed).
 */
static int s_reduce_output(qn_master *m, int jx, int w,
                           const Quern__TaskUpdate *u, int64_t now)
{
    qn_job *j = &m->jobs.v[jx];
    const Quern__AttemptRef *r = u->attempt;
    if (j->out.dataset) {
        Quern__DataCommand c = QUERN__DATA_COMMAND__INIT;
        c.op = QUERN__DATA_COMMAND__OP__COMMIT;
        c.dataset = j->spec->output;
        c.index = r->task;
        c.job_id = j->id;
        c.attempt = r->attempt;
        c.size = u->output_size;
        c.crc = u->output_crc;
        qn_send_worker(m, w, QUERN__ENVELOPE__BODY_DATA_COMMAND, &c);
        return 0;
    }
    char why[1200];
    if (qn_output_part_commit(j->spec->output, j->id, r->task, r->attempt,
                              qn_compress_ext((int)j->spec->output_codec), why,
                              sizeof why) == 0)
        return 0;
    qn_warn("master: job %s reduce task %u attempt %u: %s", j->id, r->task,
            r->attempt, why);
    s_attempt_failed(m, jx, w, r, why, now);
    return -1;
}

/* A current map attempt's output: where it is, and what it counted. */
static void s_map_output(qn_master *m, int jx, int w,
                         const Quern__TaskUpdate *u)
{
    qn_job *j = &m->jobs.v[jx];
    qn_job_map_done_update(j, w, u);
    if (j->spec->skip_bad_records)
        qn_job_note_skipped(j, u->attempt->task);
    if (u->warning[0] && !j->warning) /* once a job */
        j->warning = qn_strdup(u->warning);
}

int qn_task_adopt(qn_master *m, int w, int jx, qn_kind kind, unsigned task,
                  unsigned attempt, int64_t now)
{
    qn_job *j = &m->jobs.v[jx];
    /* Only an attempt an earlier run of this master started: one this run
     * knows of and gave up on stays given up. */
    if (j->state != QUERN__JOB_STATE__JOB_RUNNING || !j->trec[kind] ||
        qn_job_arec_find(j, kind, task, attempt) ||
        qn_sched_adopt(m->sched, now, jx, kind, task, attempt, w) < 0)
        return 0;
    qn_job_attempt_start(j, kind, task, attempt, w, QN_LOC_ANY, now,
                         qn_master_wall(m, now));
    qn_event(m, now, QN_LOG_INFO, "attempt_adopted", jx, (int)kind, task,
             attempt, w,
             "job %s %s task %u attempt %u runs on worker %s: adopted after "
             "the restart",
             j->id, qn_kind_name(kind), task, attempt, m->workers.v[w].id);
    /* A reduce may have missed where maps done before the restart are. */
    if (kind == QN_REDUCE) {
        Quern__AttemptRef ref = QUERN__ATTEMPT_REF__INIT;
        ref.job_id = j->id;
        ref.kind = QUERN__TASK_KIND__REDUCE;
        ref.task = task;
        ref.attempt = attempt;
        for (unsigned t = 0; j->outs && t < j->nmaps; t++)
            if (qn_sched_task(m->sched, jx, QN_MAP, t).state == QN_TASK_DONE &&
                j->outs[t].attempt && j->outs[t].worker >= 0)
                s_send_location(m, jx, t, &ref);
    }
    qn_status_dirty(m, jx);
    return 1;
}

/* Tell every running reduce attempt (of running jobs) where the outputs
 * of the maps done on worker w are now: one message per attempt. */
void qn_task_relocate(qn_master *m, int w)
{
    const qn_mworker *mw = &m->workers.v[w];
    for (size_t jx = 0; jx < m->jobs.n; jx++) {
        qn_job *j = &m->jobs.v[jx];
        qn_job_info info = qn_sched_job(m->sched, (int)jx);
        if (j->state != QUERN__JOB_STATE__JOB_RUNNING || !j->outs ||
            info.reduces_running == 0)
            continue;
        Quern__MapOutput *outs = qn_calloc(j->nmaps, sizeof *outs);
        Quern__MapOutput **op = qn_calloc(j->nmaps, sizeof *op);
        size_t n = 0;
        for (unsigned t = 0; t < j->nmaps; t++) {
            qn_task_info ti = qn_sched_task(m->sched, (int)jx, QN_MAP, t);
            if (ti.state != QN_TASK_DONE || j->outs[t].worker != w ||
                j->outs[t].attempt != ti.attempt)
                continue;
            quern__map_output__init(&outs[n]);
            outs[n].map = t;
            outs[n].attempt = ti.attempt;
            outs[n].endpoint = mw->endpoint;
            outs[n].worker_id = (char *)mw->id;
            outs[n].curve_public = (char *)mw->curve_public;
            outs[n].incarnation = mw->incarnation;
            op[n] = &outs[n];
            n++;
        }
        for (unsigned r = 0; n && r < j->nreduce; r++) {
            unsigned atts[QN_SCHED_MAX_RUNNING];
            int ws[QN_SCHED_MAX_RUNNING];
            unsigned nrun =
                qn_sched_running(m->sched, (int)jx, QN_REDUCE, r, atts, ws);
            for (size_t i = 0; i < n; i++) {
                outs[i].bytes = j->outs[outs[i].map].parts[r].bytes;
                outs[i].raw_bytes = j->outs[outs[i].map].parts[r].raw_bytes;
            }
            for (unsigned k = 0; k < nrun; k++) {
                Quern__AttemptRef ref = QUERN__ATTEMPT_REF__INIT;
                ref.job_id = j->id;
                ref.kind = QUERN__TASK_KIND__REDUCE;
                ref.task = r;
                ref.attempt = atts[k];
                Quern__MapLocations ml = QUERN__MAP_LOCATIONS__INIT;
                ml.reduce = &ref;
                ml.outputs = op;
                ml.n_outputs = n;
                qn_send_worker(m, ws[k], QUERN__ENVELOPE__BODY_MAP_LOCATIONS,
                               &ml);
            }
        }
        free(outs);
        free(op);
    }
}

static void s_update_succeeded(qn_master *m, int jx, int w,
                               const Quern__TaskUpdate *u, int64_t now)
{
    qn_job *j = &m->jobs.v[jx];
    const Quern__AttemptRef *r = u->attempt;
    qn_kind kind = (qn_kind)r->kind;
    if (kind == QN_MAP && u->n_partitions != j->nreduce) {
        s_attempt_failed(m, jx, w, r,
                         "map reported the wrong number of partitions", now);
        return;
    }
    if (kind == QN_REDUCE && s_reduce_output(m, jx, w, u, now) < 0)
        return;
    if (kind == QN_MAP)
        s_map_output(m, jx, w, u);
    else
        for (size_t i = 0; i < u->n_counters; i++)
            qn_job_count(j, u->counters[i]->name, u->counters[i]->value);
    if (u->rss_peak > j->task_rss_peak)
        j->task_rss_peak = u->rss_peak;
    qn_job_info before = qn_sched_job(m->sched, jx);
    qn_job_arec_end(j, kind, r->task, r->attempt, now);
    qn_sched_done(m->sched, now, jx, kind, r->task, r->attempt);
    qn_durable_task(m, jx, kind, r->task, u);
    /* A map run again while reduces wait for it: say where it is. */
    if (kind == QN_MAP && before.reduces_running > 0 &&
        m->jobs.v[jx].state == QUERN__JOB_STATE__JOB_RUNNING)
        s_send_location(m, jx, r->task, NULL);
    qn_status_dirty(m, jx);
}

static void s_update_failed(qn_master *m, int jx, int w,
                            const Quern__TaskUpdate *u, int64_t now)
{
    qn_job *j = &m->jobs.v[jx];
    const Quern__AttemptRef *r = u->attempt;
    qn_kind kind = (qn_kind)r->kind;
    qn_event(m, now, QN_LOG_WARN, "attempt_failed", jx, (int)kind, r->task,
             r->attempt, w,
             "job %s %s task %u attempt %u failed on worker %s: %s", j->id,
             qn_kind_name(kind), r->task, r->attempt, u->worker_id, u->reason);
    m->stats.attempts_failed[kind]++;
    qn_job_arec_end(j, kind, r->task, r->attempt, now);
    const char *shard = NULL;
    if (kind == QN_MAP && u->in_record) {
        shard = qn_job_shard(j, r->task, u->input_piece);
        qn_job_note_crash(j, r->task, u->input_piece, u->record_offset);
    }
    qn_job_add_failure(j, kind, r->task, r->attempt, u->worker_id, u->reason,
                       u->stderr_tail, u->record_offset, shard);
    const qn_arec *ra = qn_job_arec_find(j, kind, r->task, r->attempt);
    if (ra && ra->blamed && u->state == QUERN__TASK_STATE__FAILED) {
        /* A map output it read was corrupt, and that map runs again:
         * neither the reduce nor its worker is to blame. */
        qn_sched_spoiled(m->sched, now, jx, kind, r->task, r->attempt);
    } else {
        m->workers.v[w].failures++;
        qn_sched_failed(m->sched, now, jx, kind, r->task, r->attempt);
    }
    qn_status_dirty(m, jx);
}

/* An update about an attempt that is not current: expected news when it
 * was killed on request, ignored either way. */
static void s_update_stale(qn_master *m, int jx, const Quern__TaskUpdate *u)
{
    const Quern__AttemptRef *r = u->attempt;
    const char *id = m->jobs.v[jx].id, *kind = qn_kind_name((qn_kind)r->kind);
    if (u->state == QUERN__TASK_STATE__SUCCEEDED)
        qn_info("master: job %s ignores a success of %s task %u attempt "
                "%u on worker %s: that attempt is not current",
                id, kind, r->task, r->attempt, u->worker_id);
    else if (u->state == QUERN__TASK_STATE__KILLED)
        qn_debug("master: job %s %s task %u attempt %u was killed", id, kind,
                 r->task, r->attempt);
    else if (u->state == QUERN__TASK_STATE__FAILED)
        qn_info("master: job %s ignores the failure of %s task %u "
                "attempt %u on worker %s: that attempt is not current",
                id, kind, r->task, r->attempt, u->worker_id);
}

int qn_task_take_back(qn_master *m, int w, const Quern__TaskUpdate *u,
                      int64_t now)
{
    const Quern__AttemptRef *r = u->attempt;
    int jx = qn_jobs_find(&m->jobs, r->job_id);
    if (jx < 0 || m->jobs.v[jx].state != QUERN__JOB_STATE__JOB_RUNNING)
        return QN_TAKE_JOB_OVER;
    qn_job *j = &m->jobs.v[jx];
    if (r->kind != QUERN__TASK_KIND__MAP || r->task >= j->nmaps ||
        u->n_partitions != j->nreduce || !j->outs) {
        qn_drop(m, DROP_INVALID, "a finished map output that cannot be");
        return QN_TAKE_UNNEEDED;
    }
    qn_task_info ti = qn_sched_task(m->sched, jx, QN_MAP, r->task);
    if (ti.state == QN_TASK_DONE)
        return ti.attempt == r->attempt && ti.worker == w ? QN_TAKE_KEPT
                                                          : QN_TAKE_UNNEEDED;
    /* Its success came while it counted as running here: as if heard. */
    if (qn_sched_attempt_worker(m->sched, jx, QN_MAP, r->task, r->attempt) ==
        w) {
        s_update_succeeded(m, jx, w, u, now);
        return QN_TAKE_TAKEN;
    }
    qn_job_info before = qn_sched_job(m->sched, jx);
    if (qn_sched_take_back(m->sched, now, jx, r->task, r->attempt, w) < 0)
        return QN_TAKE_UNNEEDED;
    s_map_output(m, jx, w, u);
    qn_job_arec_end(j, QN_MAP, r->task, r->attempt, now);
    qn_durable_task(m, jx, QN_MAP, r->task, u);
    qn_event(m, now, QN_LOG_INFO, "map_taken_back", jx, QN_MAP, r->task,
             r->attempt, w,
             "job %s map task %u: the output of attempt %u is on worker %s "
             "again; taken back, not run again",
             j->id, r->task, r->attempt, m->workers.v[w].id);
    if (before.reduces_running > 0 && j->state == QUERN__JOB_STATE__JOB_RUNNING)
        s_send_location(m, jx, r->task, NULL);
    qn_status_dirty(m, jx);
    return QN_TAKE_TAKEN;
}

void qn_task_update(qn_master *m, int w, const Quern__TaskUpdate *u,
                    int64_t now)
{
    const Quern__AttemptRef *r = u->attempt;
    if (r->kind == QUERN__TASK_KIND__COPY &&
        strcmp(r->job_id, QN_REPLICAS_JOB) == 0) {
        qn_replicas_update(m, w, u, now);
        return;
    }
    int jx = qn_jobs_find(&m->jobs, r->job_id);
    if (jx < 0 || (r->kind != QUERN__TASK_KIND__MAP &&
                   r->kind != QUERN__TASK_KIND__REDUCE &&
                   r->kind != QUERN__TASK_KIND__COPY)) {
        qn_drop(m, DROP_INVALID, "task update for an unknown job or task kind");
        return;
    }
    if (r->kind == QUERN__TASK_KIND__COPY) {
        s_copy_update(m, jx, w, u, now);
        return;
    }
    qn_kind kind = (qn_kind)r->kind;
    const qn_job *j = &m->jobs.v[jx];
    if (r->task >= (kind == QN_MAP ? j->nmaps : j->nreduce)) {
        qn_drop(m, DROP_INVALID, "task update for a task out of range");
        return;
    }
    int current =
        qn_sched_attempt_worker(m->sched, jx, kind, r->task, r->attempt) == w;
    /* An attempt an earlier run of this master started, that ended while
     * the master was away, tells of it now: taken as if it had been seen
     * running, so its output counts. */
    if (!current && (u->state == QUERN__TASK_STATE__SUCCEEDED ||
                     u->state == QUERN__TASK_STATE__RUNNING))
        current = qn_task_adopt(m, w, jx, kind, r->task, r->attempt, now);
    if (u->state != QUERN__TASK_STATE__RUNNING &&
        u->state != QUERN__TASK_STATE__SUCCEEDED &&
        u->state != QUERN__TASK_STATE__FAILED &&
        u->state != QUERN__TASK_STATE__KILLED)
        qn_drop(m, DROP_INVALID, "task update with an unknown state");
    else if (!current)
        s_update_stale(m, jx, u);
    else if (u->state == QUERN__TASK_STATE__RUNNING)
        s_update_running(m, jx, w, u, now);
    else if (u->state == QUERN__TASK_STATE__SUCCEEDED)
        s_update_succeeded(m, jx, w, u, now);
    else
        s_update_failed(m, jx, w, u, now);
}
