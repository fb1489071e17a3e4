/*
 * job.c -- see job.h.
 */
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

/* Add v to a job counter; returns the counter's index. */
size_t qn_job_count(qn_job *j, const char *name, long long v)
{
    for (size_t i = 0; i < j->ncounters; i++) {
        if (strcmp(j->counters[i].name, name) == 0) {
            j->counters[i].value = qn_sat_add(j->counters[i].value, v);
            return i;
        }
    }
    if (j->ncounters >= MAX_COUNTERS)
        return SIZE_MAX; /* a plugin inventing names without end */
    j->counters =
        qn_realloc(j->counters, (j->ncounters + 1) * sizeof *j->counters);
    j->counters[j->ncounters++] = (qn_jcounter){qn_strdup(name), v};
    return j->ncounters - 1;
}

/* The name of input piece `piece` of map task `map`, or "". */
const char *qn_job_shard(const qn_job *j, unsigned map, uint32_t piece)
{
    if (!j->splits.splits || map >= j->splits.n ||
        piece >= j->splits.splits[map].n)
        return "";
    return j->splits.splits[map].pieces[piece].name;
}

void qn_job_add_failure(qn_job *j, qn_kind kind, unsigned task,
                        unsigned attempt, const char *worker,
                        const char *reason, const char *tail, uint64_t offset,
                        const char *shard)
{
    qn_job_count(j, "failed_attempts", 1);
    if (j->nfailures == MAX_FAILURES) {
        /* Keep the newest. */
        Quern__AttemptFailure *f = &j->failures[0];
        free(f->worker_id);
        free(f->reason);
        free(f->stderr_tail);
        free(f->shard);
        memmove(j->failures, j->failures + 1,
                (MAX_FAILURES - 1) * sizeof *j->failures);
        j->nfailures--;
    }
    j->failures =
        qn_realloc(j->failures, (j->nfailures + 1) * sizeof *j->failures);
    Quern__AttemptFailure *f = &j->failures[j->nfailures++];
    quern__attempt_failure__init(f);
    f->kind = (Quern__TaskKind)kind;
    f->task = task;
    f->attempt = attempt;
    f->worker_id = qn_strdup(worker);
    f->reason = qn_strdup(reason);
    f->stderr_tail = qn_strdup(tail ? tail : "");
    f->record_offset = offset;
    f->shard = qn_strdup(shard ? shard : "");
}

/* The record of attempt of a task, or NULL. */
qn_arec *qn_job_arec_find(qn_job *j, qn_kind kind, unsigned task,
                          unsigned attempt)
{
    if (!j->trec[kind])
        return NULL;
    qn_trec *t = &j->trec[kind][task];
    for (unsigned i = t->n; i-- > 0;)
        if (t->a[i].attempt == attempt)
            return &t->a[i];
    return NULL;
}

/* An attempt ended (any way): its duration stops growing. */
void qn_job_arec_end(qn_job *j, qn_kind kind, unsigned task, unsigned attempt,
                     int64_t now)
{
    qn_arec *r = qn_job_arec_find(j, kind, task, attempt);
    if (r && !r->end)
        r->end = now;
}

void qn_job_outs_free(qn_job *j)
{
    for (unsigned i = 0; i < j->nmaps && j->outs; i++) {
        free(j->outs[i].parts);
        free(j->outs[i].cv);
        free(j->outs[i].crashes);
    }
    free(j->outs);
    j->outs = NULL;
}

void qn_job_release(qn_job *j)
{
    if (j->spec)
        quern__job_spec__free_unpacked(j->spec, NULL);
    qn_splits_release(&j->splits);
    qn_job_outs_free(j);
    free(j->progress[0]);
    free(j->progress[1]);
    for (size_t i = 0; i < j->ncounters; i++)
        free(j->counters[i].name);
    free(j->counters);
    for (size_t i = 0; i < j->nfailures; i++) {
        free(j->failures[i].worker_id);
        free(j->failures[i].reason);
        free(j->failures[i].stderr_tail);
        free(j->failures[i].shard);
    }
    free(j->failures);
    for (size_t i = 0; i < j->nskipped; i++)
        free(j->skipped[i].shard);
    free(j->skipped);
    free(j->error);
    free(j->watchers);
    free(j->part_copy);
    free(j->part_copy_fails);
    for (int k = 0; k < 2; k++) {
        unsigned n = k ? j->nreduce : j->nmaps;
        for (unsigned i = 0; j->trec[k] && i < n; i++)
            free(j->trec[k][i].a);
        free(j->trec[k]);
    }
}

/* Remember the record a map attempt died in, for --skip-bad-records. */
void qn_job_note_crash(qn_job *j, unsigned task, const Quern__TaskUpdate *u)
{
    qn_mapout *mo = &j->outs[task];
    for (size_t i = 0; i < mo->ncrashes; i++) {
        if (mo->crashes[i].piece == u->input_piece &&
            mo->crashes[i].offset == u->record_offset) {
            mo->crashes[i].crashes++;
            return;
        }
    }
    if (mo->ncrashes >= 64)
        return; /* a map that crashes everywhere is not a bad record */
    mo->crashes =
        qn_realloc(mo->crashes, (mo->ncrashes + 1) * sizeof *mo->crashes);
    mo->crashes[mo->ncrashes++] =
        (qn_crash){u->input_piece, u->record_offset, 1};
}

/* A map attempt that skipped records succeeded: list them in the job. */
void qn_job_note_skipped(qn_job *j, unsigned task)
{
    const qn_mapout *mo = &j->outs[task];
    for (size_t i = 0; i < mo->ncrashes; i++) {
        const qn_crash *c = &mo->crashes[i];
        if (c->crashes < SKIP_AFTER || j->nskipped >= MAX_SKIPPED)
            continue;
        const char *shard = qn_job_shard(j, task, c->piece);
        int seen = 0;
        for (size_t k = 0; k < j->nskipped && !seen; k++)
            seen = j->skipped[k].map == task &&
                   j->skipped[k].offset == c->offset &&
                   strcmp(j->skipped[k].shard, shard) == 0;
        if (seen)
            continue;
        j->skipped =
            qn_realloc(j->skipped, (j->nskipped + 1) * sizeof *j->skipped);
        Quern__SkippedRecord *sr = &j->skipped[j->nskipped++];
        quern__skipped_record__init(sr);
        sr->map = task;
        sr->shard = qn_strdup(shard);
        sr->offset = c->offset;
        qn_warn("master: job %s map task %u skipped the record at offset %llu "
                "of %s, which crashed %u attempts",
                j->id, task, (unsigned long long)c->offset, shard, c->crashes);
    }
}

const char *qn_kind_name(qn_kind k)
{
    return k == QN_MAP ? "map" : "reduce";
}
