/*
 * commit.c -- see commit.h.
 */
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

/* Remove what a job that did not succeed left in its output folder. */
/* Tell every live worker to drop the job's intermediate files. */
void qn_commit_broadcast(qn_master *m, qn_job *j)
{
    Quern__Envelope env = QUERN__ENVELOPE__INIT;
    Quern__JobEnd je = QUERN__JOB_END__INIT;
    je.job_id = j->id;
    env.body_case = QUERN__ENVELOPE__BODY_JOB_END;
    env.job_end = &je;
    for (int w = 0; w < m->nworkers; w++)
        if (qn_sched_worker_alive(m->sched, w))
            qn_send(m, m->workers[w].route, m->workers[w].routelen, &env);
}

void qn_commit_job_finished(qn_master *m, int jx, int state, const char *error,
                            int64_t now)
{
    qn_job *j = &m->jobs[jx];
    j->state = state;
    j->end = now;
    if (state == QUERN__JOB_STATE__JOB_SUCCEEDED)
        qn_event(m, QN_LOG_INFO, "job_succeeded", jx, -1, 0, 0, -1,
                 "job %s succeeded in %.1f s; output in %s%s", j->id,
                 (double)(now - j->start) / 1000,
                 j->out_dataset ? "dataset " : "", j->spec->output);
    else if (state == QUERN__JOB_STATE__JOB_CANCELLED)
        qn_event(m, QN_LOG_WARN, "job_cancelled", jx, -1, 0, 0, -1,
                 "job %s cancelled: %s", j->id, error ? error : "");
    else
        qn_event(m, QN_LOG_ERROR, "job_failed", jx, -1, 0, 0, -1,
                 "job %s failed: %s", j->id, error ? error : "");
    free(j->error);
    j->error = error ? qn_strdup(error) : NULL;
    j->committing = 0;
    if (state != QUERN__JOB_STATE__JOB_SUCCEEDED && j->out_dataset) {
        qn_dataset *d = qn_catalog_get(&m->cat, j->spec->output);
        if (d && d->writer && strcmp(d->writer, j->id) == 0)
            qn_datasets_drop_everywhere(m, j->spec->output);
    } else if (state != QUERN__JOB_STATE__JOB_SUCCEEDED) {
        qn_output_dir_clean(j->spec->output);
    }
    qn_commit_broadcast(m, j);
    qn_status_push(m, jx, now);
    /* Keep a summary; what scheduling needed can go. */
    qn_job_outs_free(j);
    qn_splits_release(&j->splits);
    for (int k = 0; k < 2; k++) {
        free(j->progress[k]);
        j->progress[k] = NULL;
    }
}

void qn_commit_output(qn_master *m, int jx, int64_t now)
{
    qn_job *j = &m->jobs[jx];
    char why[600];
    if (qn_output_dir_commit(j->spec->output, why, sizeof why) < 0)
        qn_commit_job_finished(m, jx, QUERN__JOB_STATE__JOB_FAILED, why, now);
    else
        qn_commit_job_finished(m, jx, QUERN__JOB_STATE__JOB_SUCCEEDED, NULL,
                               now);
}

/*
 * A job writing a dataset has finished its reduces: copy each output
 * shard until it has out_replicas live copies (or as many as there are
 * live workers keeping data), then seal the dataset and succeed.
 */
void qn_commit_replicate(qn_master *m, int jx, int64_t now)
{
    qn_job *j = &m->jobs[jx];
    if (!j->committing || j->state != QUERN__JOB_STATE__JOB_RUNNING)
        return;
    qn_dataset *d = qn_catalog_get(&m->cat, j->spec->output);
    unsigned want = qn_datasets_copies_wanted(m, j->out_replicas);
    int complete = 1;
    for (unsigned p = 0; p < j->nreduce; p++) {
        unsigned live = d ? qn_datasets_live_copies(m, d, p) : 0;
        if (live >= want || (live >= 1 && j->part_copy_fails[p] >= COPY_TRIES))
            continue;
        complete = 0;
        if (live == 0) {
            qn_task_info ti = qn_sched_task(m->sched, jx, QN_REDUCE, p);
            if (ti.worker >= 0 && qn_sched_worker_alive(m->sched, ti.worker))
                continue; /* its worker has not announced it yet */
            char msg[300];
            snprintf(msg, sizeof msg,
                     "output shard %u of %s was lost with worker %s before it "
                     "was copied; run the job again",
                     p, j->spec->output,
                     ti.worker >= 0 ? m->workers[ti.worker].id : "?");
            qn_commit_job_finished(m, jx, QUERN__JOB_STATE__JOB_FAILED, msg,
                                   now);
            return;
        }
        if (j->part_copy[p] >= 0 &&
            qn_sched_worker_alive(m->sched, j->part_copy[p]))
            continue; /* a copy is on its way */
        /* The live data worker without a copy that holds the fewest. */
        int target = -1;
        size_t best = SIZE_MAX;
        for (int w = 0; w < m->nworkers; w++) {
            if (!m->workers[w].has_data ||
                !qn_sched_worker_alive(m->sched, w) ||
                qn_catalog_holds(d, p, m->workers[w].id))
                continue;
            size_t load = m->workers[w].placed;
            if (load < best) {
                best = load;
                target = w;
            }
        }
        if (target < 0)
            continue;
        m->workers[target].placed++;
        j->part_copy[p] = target;
        const qn_cshard *sh = qn_catalog_shard(d, p);
        Quern__DataSource *src, **sp;
        size_t ns = qn_datasets_sources(m, d, p, &src, &sp);
        Quern__InputPiece pc = QUERN__INPUT_PIECE__INIT;
        Quern__InputPiece *pcp = &pc;
        char name[100];
        snprintf(name, sizeof name, "%s/part-%05u", d->name, p);
        pc.name = name;
        pc.dataset = d->name;
        pc.shard = p;
        pc.crc = sh->crc;
        pc.length = pc.file_size = sh->size;
        pc.sources = sp;
        pc.n_sources = ns;
        Quern__TaskSpec ts = QUERN__TASK_SPEC__INIT;
        ts.job_id = j->id;
        ts.kind = QUERN__TASK_KIND__COPY;
        ts.task = p;
        ts.attempt = ++j->copy_seq;
        ts.nreduce = 1;
        ts.inputs = &pcp;
        ts.n_inputs = 1;
        Quern__AssignTask at = QUERN__ASSIGN_TASK__INIT;
        at.spec = &ts;
        Quern__Envelope env = QUERN__ENVELOPE__INIT;
        env.body_case = QUERN__ENVELOPE__BODY_ASSIGN_TASK;
        env.assign_task = &at;
        qn_send(m, m->workers[target].route, m->workers[target].routelen, &env);
        qn_info("master: job %s copies output shard %s/part-%05u to worker %s",
                j->id, d->name, p, m->workers[target].id);
        free(src);
        free(sp);
    }
    if (!complete)
        return;
    qn_datasets_seal(m, d, j->nreduce);
    qn_commit_job_finished(m, jx, QUERN__JOB_STATE__JOB_SUCCEEDED, NULL, now);
}

/* Something changed in what workers hold: see who was waiting on it. */
void qn_commit_data_changed(qn_master *m, int64_t now)
{
    qn_sched_locality_changed(m->sched, now);
    qn_datasets_puts_check(m, now);
    for (int jx = 0; jx < m->njobs; jx++)
        if (m->jobs[jx].committing)
            qn_commit_replicate(m, jx, now);
}
