/*
 * commit.c -- see commit.h.
 */
#include "commit.h"

#include "datasets.h"
#include "durable.h"
#include "events.h"
#include "log.h"
#include "replicas.h"
#include "send.h"
#include "status.h"
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Tell every live worker to drop the job's intermediate files. */
static void s_broadcast_end(qn_master *m, qn_job *j)
{
    Quern__JobEnd je = QUERN__JOB_END__INIT;
    je.job_id = j->id;
    for (int w = 0; w < m->workers.n; w++)
        if (qn_workers_alive(&m->workers, w))
            qn_send_worker(m, w, QUERN__ENVELOPE__BODY_JOB_END, &je);
}

/* Log and keep the event of job jx's end. */
static void s_end_event(qn_master *m, int jx, int state, const char *error,
                        int64_t now)
{
    const qn_job *j = &m->jobs.v[jx];
    if (state == QUERN__JOB_STATE__JOB_SUCCEEDED)
        qn_event(m, now, QN_LOG_INFO, "job_succeeded", jx, -1, 0, 0, -1,
                 "job %s succeeded in %.1f s; output in %s%s", j->id,
                 (double)(now - j->start) / 1000,
                 j->out.dataset ? "dataset " : "", j->spec->output);
    else if (state == QUERN__JOB_STATE__JOB_CANCELLED)
        qn_event(m, now, QN_LOG_WARN, "job_cancelled", jx, -1, 0, 0, -1,
                 "job %s cancelled: %s", j->id, error ? error : "");
    else
        qn_event(m, now, QN_LOG_ERROR, "job_failed", jx, -1, 0, 0, -1,
                 "job %s failed: %s", j->id, error ? error : "");
}

void qn_commit_job_end(qn_master *m, int jx, int state, const char *error,
                       int64_t now)
{
    qn_job *j = &m->jobs.v[jx];
    j->state = state;
    j->end = now;
    s_end_event(m, jx, state, error, now);
    free(j->error);
    j->error = error ? qn_strdup(error) : NULL;
    j->out.committing = 0;
    /* Its end is kept (for a success: with its output in place, which
     * is done before this), on disk before clients are told: a restarted
     * master must not run again, or forget, a job they saw end. */
    qn_durable_job_ended(m, jx, now);
    qn_journal_hold(&m->journal, "telling clients a job ended");
    if (state != QUERN__JOB_STATE__JOB_SUCCEEDED && j->out.dataset) {
        qn_dataset *d = qn_catalog_get(&m->data.cat, j->spec->output);
        if (d && d->writer && strcmp(d->writer, j->id) == 0)
            qn_datasets_drop_everywhere(m, j->spec->output);
    } else if (state != QUERN__JOB_STATE__JOB_SUCCEEDED) {
        qn_output_dir_clean(j->spec->output);
    }
    s_broadcast_end(m, j);
    qn_status_push(m, jx, now);
    qn_job_trim(j);
}

void qn_commit_job_done(qn_master *m, int jx, int64_t now)
{
    qn_job *j = &m->jobs.v[jx];
    if (j->out.dataset) {
        j->out.committing = 1;
        qn_commit_replicate(m, jx, now);
        return;
    }
    char why[600];
    if (qn_output_dir_commit(j->spec->output, why, sizeof why) < 0) {
        qn_commit_job_end(m, jx, QUERN__JOB_STATE__JOB_FAILED, why, now);
        return;
    }
    qn_commit_job_end(m, jx, QUERN__JOB_STATE__JOB_SUCCEEDED, NULL, now);
}

/* The live data worker, not draining, without a copy of shard p of d that
 * holds the fewest shards, or -1. */
static int s_copy_target(qn_master *m, const qn_dataset *d, uint32_t p)
{
    int target = -1;
    for (int w = 0; w < m->workers.n; w++) {
        const qn_mworker *wk = &m->workers.v[w];
        if (!qn_workers_takes_data(&m->workers, w) ||
            qn_catalog_holds(d, p, wk->id))
            continue;
        if (target < 0 || wk->placed < m->workers.v[target].placed)
            target = w;
    }
    return target;
}

/* Have worker target copy shard p of job jx's output dataset d from its
 * live holders (a COPY task). */
static void s_send_copy(qn_master *m, int jx, qn_dataset *d, uint32_t p,
                        int target)
{
    qn_job *j = &m->jobs.v[jx];
    m->workers.v[target].placed++;
    j->out.copy[p] = target;
    qn_replicas_send_copy(m, j->id, ++j->out.seq, d, p, target, -1);
    qn_info("master: job %s copies output shard %s/part-%05u to worker %s",
            j->id, d->name, p, m->workers.v[target].id);
}

/*
 * Where shard p of job jx's output d stands: 1 it has its copies (or all
 * it will get), 0 not yet (a copy was started or is under way), -1 it was
 * lost before it was copied (the job has failed).
 */
static int s_shard_copies(qn_master *m, int jx, qn_dataset *d, uint32_t p,
                          unsigned want, int64_t now)
{
    qn_job *j = &m->jobs.v[jx];
    unsigned live = d ? qn_datasets_live_copies(m, d, p) : 0;
    if (live >= want || (live >= 1 && j->out.fails[p] >= QN_COMMIT_COPY_TRIES))
        return 1;
    if (live == 0) {
        qn_task_info ti = qn_sched_task(m->sched, jx, QN_REDUCE, p);
        if (ti.worker >= 0 && qn_workers_alive(&m->workers, ti.worker))
            return 0; /* its worker has not announced it yet */
        char msg[300];
        snprintf(msg, sizeof msg,
                 "output shard %u of %s was lost with worker %s before it "
                 "was copied; run the job again",
                 p, j->spec->output,
                 ti.worker >= 0 ? m->workers.v[ti.worker].id : "?");
        qn_commit_job_end(m, jx, QUERN__JOB_STATE__JOB_FAILED, msg, now);
        return -1;
    }
    if (j->out.copy[p] >= 0 && qn_workers_alive(&m->workers, j->out.copy[p]))
        return 0; /* a copy is on its way */
    int target = s_copy_target(m, d, p);
    if (target >= 0)
        s_send_copy(m, jx, d, p, target);
    return 0;
}

void qn_commit_replicate(qn_master *m, int jx, int64_t now)
{
    qn_job *j = &m->jobs.v[jx];
    if (!j->out.committing || j->state != QUERN__JOB_STATE__JOB_RUNNING)
        return;
    qn_dataset *d = qn_catalog_get(&m->data.cat, j->spec->output);
    unsigned want = qn_datasets_copies_wanted(m, j->out.replicas);
    int complete = 1;
    for (unsigned p = 0; p < j->nreduce; p++) {
        int r = s_shard_copies(m, jx, d, p, want, now);
        if (r < 0)
            return;
        complete &= r;
    }
    if (!complete)
        return;
    qn_datasets_seal(m, d, j->nreduce);
    qn_commit_job_end(m, jx, QUERN__JOB_STATE__JOB_SUCCEEDED, NULL, now);
}

void qn_commit_data_changed(qn_master *m, int64_t now)
{
    qn_sched_locality_changed(m->sched, now);
    qn_datasets_puts_check(m, now);
    for (size_t jx = 0; jx < m->jobs.n; jx++)
        if (m->jobs.v[jx].out.committing)
            qn_commit_replicate(m, (int)jx, now);
    qn_replicas_soon(m, now);
}
