/*
 * job.c -- see job.h.
 */
#include "job.h"

#include "log.h"
#include "util.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Shown from the start, 0 or not, so readers can rely on them. */
static const char *const BUILTIN_COUNTERS[] = {
    "map_attempts",    "reduce_attempts", "failed_attempts",
    "killed_attempts", "backup_attempts", "maps_rerun",
    "skipped_records", "data_local_maps", "remote_maps"};

void qn_job_init(qn_job *j, const char *id, Quern__JobSpec **spec,
                 qn_splits *splits, int out_dataset, int64_t now, int64_t wall)
{
    memset(j, 0, sizeof *j);
    snprintf(j->id, sizeof j->id, "%s", id);
    j->spec = *spec;
    *spec = NULL;
    j->splits = *splits;
    memset(splits, 0, sizeof *splits);
    j->nmaps = (unsigned)j->splits.n;
    j->nreduce = j->spec->nreduce;
    j->state = QUERN__JOB_STATE__JOB_RUNNING;
    j->start = now;
    j->submit_wall = wall;
    j->outs = qn_calloc(j->nmaps, sizeof *j->outs);
    /* Every map's partitions in one block (outs[0].parts owns it). */
    qn_part *parts =
        j->nmaps ? qn_calloc((size_t)j->nmaps * j->nreduce + 1, sizeof *parts)
                 : NULL;
    for (unsigned i = 0; i < j->nmaps; i++)
        j->outs[i].parts = parts + (size_t)i * j->nreduce;
    j->progress[QN_MAP] = qn_calloc(j->nmaps, sizeof(double));
    j->progress[QN_REDUCE] = qn_calloc(j->nreduce, sizeof(double));
    j->trec[QN_MAP] = qn_calloc(j->nmaps, sizeof(qn_trec));
    j->trec[QN_REDUCE] = qn_calloc(j->nreduce, sizeof(qn_trec));
    qn_counters_init(&j->counters, NULL, 0);
    j->counters.max = QN_JOB_MAX_COUNTERS;
    for (size_t i = 0; i < QN_ARRAY_LEN(BUILTIN_COUNTERS); i++)
        qn_job_count(j, BUILTIN_COUNTERS[i], 0);
    j->watch.last_push = now;
    j->watch.push_at = INT64_MAX;
    if (out_dataset) {
        j->out.dataset = 1;
        j->out.replicas =
            j->spec->output_replicas ? j->spec->output_replicas : 2;
        j->out.copy = qn_calloc(j->nreduce, sizeof *j->out.copy);
        j->out.fails = qn_calloc(j->nreduce, sizeof *j->out.fails);
        for (unsigned p = 0; p < j->nreduce; p++)
            j->out.copy[p] = -1;
    }
}

static void s_outs_free(qn_job *j)
{
    if (j->outs && j->nmaps)
        free(j->outs[0].parts);
    for (unsigned i = 0; i < j->nmaps && j->outs; i++) {
        free(j->outs[i].cv);
        free(j->outs[i].crashes);
    }
    free(j->outs);
    j->outs = NULL;
}

void qn_job_trim(qn_job *j)
{
    s_outs_free(j);
    qn_splits_release(&j->splits);
    for (int k = 0; k < 2; k++) {
        free(j->progress[k]);
        j->progress[k] = NULL;
    }
}

static void s_failure_free(qn_failure *f)
{
    free(f->worker);
    free(f->reason);
    free(f->tail);
    free(f->shard);
}

void qn_job_release(qn_job *j)
{
    if (j->spec)
        quern__job_spec__free_unpacked(j->spec, NULL);
    qn_job_trim(j);
    qn_counters_release(&j->counters);
    for (size_t i = 0; i < j->nfailures; i++)
        s_failure_free(&j->failures[i]);
    free(j->failures);
    for (size_t i = 0; i < j->nskipped; i++)
        free(j->skipped[i].shard);
    free(j->skipped);
    free(j->warning);
    free(j->error);
    free(j->watch.v);
    free(j->out.copy);
    free(j->out.fails);
    for (int k = 0; k < 2; k++) {
        unsigned n = k ? j->nreduce : j->nmaps;
        for (unsigned i = 0; j->trec[k] && i < n; i++)
            free(j->trec[k][i].a);
        free(j->trec[k]);
    }
    memset(j, 0, sizeof *j);
}

size_t qn_job_count(qn_job *j, const char *name, long long v)
{
    return qn_counters_add(&j->counters, "", name, v);
}

long long qn_job_counter(const qn_job *j, const char *name)
{
    return qn_counters_get(&j->counters, name);
}

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
    if (j->nfailures == QN_JOB_MAX_FAILURES) {
        /* Keep the newest. */
        s_failure_free(&j->failures[0]);
        memmove(j->failures, j->failures + 1,
                (QN_JOB_MAX_FAILURES - 1) * sizeof *j->failures);
        j->nfailures--;
    }
    QN_GROW(j->failures, j->cap_failures, j->nfailures + 1);
    j->failures[j->nfailures++] = (qn_failure){
        .kind = kind,
        .task = task,
        .attempt = attempt,
        .worker = qn_strdup(worker),
        .reason = qn_strdup(reason),
        .tail = qn_strdup(tail ? tail : ""),
        .offset = offset,
        .shard = qn_strdup(shard ? shard : ""),
    };
}

const char *qn_job_last_failure(const qn_job *j, qn_kind kind, unsigned task)
{
    for (size_t i = j->nfailures; i-- > 0;)
        if (j->failures[i].kind == kind && j->failures[i].task == task)
            return j->failures[i].reason;
    return "";
}

qn_arec *qn_job_attempt_start(qn_job *j, qn_kind kind, unsigned task,
                              unsigned attempt, int worker, int local,
                              int64_t now, int64_t wall)
{
    qn_trec *tr = &j->trec[kind][task];
    QN_GROW(tr->a, tr->cap, tr->n + 1);
    qn_arec *r = &tr->a[tr->n++];
    *r = (qn_arec){.attempt = attempt,
                   .worker = worker,
                   .local = local,
                   .start = now,
                   .start_wall = wall};
    return r;
}

qn_arec *qn_job_arec_find(qn_job *j, qn_kind kind, unsigned task,
                          unsigned attempt)
{
    if (!j->trec[kind])
        return NULL;
    qn_trec *t = &j->trec[kind][task];
    for (size_t i = t->n; i-- > 0;)
        if (t->a[i].attempt == attempt)
            return &t->a[i];
    return NULL;
}

qn_arec *qn_job_arec_last(qn_job *j, qn_kind kind, unsigned task)
{
    if (!j->trec[kind] || !j->trec[kind][task].n)
        return NULL;
    return &j->trec[kind][task].a[j->trec[kind][task].n - 1];
}

void qn_job_arec_end(qn_job *j, qn_kind kind, unsigned task, unsigned attempt,
                     int64_t now)
{
    qn_arec *r = qn_job_arec_find(j, kind, task, attempt);
    if (r && !r->end)
        r->end = now;
}

void qn_job_map_done(qn_job *j, unsigned task, unsigned attempt, int worker,
                     const qn_part *parts, const char *const *names,
                     const long long *values, size_t ncounters)
{
    qn_mapout *mo = &j->outs[task];
    mo->attempt = attempt;
    mo->worker = worker;
    mo->reports = 0;
    memcpy(mo->parts, parts, j->nreduce * sizeof *parts);
    for (size_t i = 0; i < ncounters; i++) {
        size_t c = qn_job_count(j, names[i], values[i]);
        if (c == SIZE_MAX)
            continue;
        if (c >= mo->ncv) {
            QN_GROW(mo->cv, mo->cap_cv, c + 1);
            memset(mo->cv + mo->ncv, 0, (c + 1 - mo->ncv) * sizeof *mo->cv);
            mo->ncv = c + 1;
        }
        mo->cv[c] = qn_sat_add(mo->cv[c], values[i]);
    }
}

void qn_job_map_done_update(qn_job *j, int worker, const Quern__TaskUpdate *u)
{
    qn_part *parts = qn_calloc(j->nreduce + 1, sizeof *parts);
    for (unsigned p = 0; p < j->nreduce && p < u->n_partitions; p++)
        parts[p] =
            (qn_part){u->partitions[p]->bytes, u->partitions[p]->raw_bytes,
                      u->partitions[p]->records};
    const char **names = qn_calloc(u->n_counters + 1, sizeof *names);
    long long *values = qn_calloc(u->n_counters + 1, sizeof *values);
    for (size_t i = 0; i < u->n_counters; i++) {
        names[i] = u->counters[i]->name;
        values[i] = u->counters[i]->value;
    }
    qn_job_map_done(j, u->attempt->task, u->attempt->attempt, worker, parts,
                    names, values, u->n_counters);
    free(parts);
    free(names);
    free(values);
}

void qn_job_map_lost(qn_job *j, unsigned task)
{
    qn_mapout *mo = &j->outs[task];
    /* A value held at LLONG_MIN cannot be negated: move as far back up. */
    for (size_t i = 0; i < mo->ncv && i < j->counters.n; i++) {
        qn_counter *c = &j->counters.v[i];
        c->value = mo->cv[i] == LLONG_MIN ? qn_sat_add(c->value, LLONG_MAX)
                                          : qn_sat_add(c->value, -mo->cv[i]);
    }
    mo->ncv = 0;
    mo->reports = 0;
}

void qn_job_note_crash(qn_job *j, unsigned task, uint32_t piece,
                       uint64_t offset)
{
    qn_mapout *mo = &j->outs[task];
    for (size_t i = 0; i < mo->ncrashes; i++) {
        if (mo->crashes[i].piece == piece && mo->crashes[i].offset == offset) {
            mo->crashes[i].crashes++;
            return;
        }
    }
    if (mo->ncrashes >= QN_JOB_MAX_CRASHES)
        return; /* a map that crashes everywhere is not a bad record */
    QN_GROW(mo->crashes, mo->cap_crashes, mo->ncrashes + 1);
    mo->crashes[mo->ncrashes++] = (qn_crash){piece, offset, 1};
}

/* Is the record at offset of shard, read by map task, listed already? */
static int s_skip_listed(const qn_job *j, unsigned task, const char *shard,
                         uint64_t offset)
{
    for (size_t k = 0; k < j->nskipped; k++)
        if (j->skipped[k].map == task && j->skipped[k].offset == offset &&
            strcmp(j->skipped[k].shard, shard) == 0)
            return 1;
    return 0;
}

void qn_job_note_skipped(qn_job *j, unsigned task)
{
    const qn_mapout *mo = &j->outs[task];
    for (size_t i = 0; i < mo->ncrashes; i++) {
        const qn_crash *c = &mo->crashes[i];
        if (c->crashes < QN_JOB_SKIP_AFTER || j->nskipped >= QN_JOB_MAX_SKIPPED)
            continue;
        const char *shard = qn_job_shard(j, task, c->piece);
        if (s_skip_listed(j, task, shard, c->offset))
            continue;
        QN_GROW(j->skipped, j->cap_skipped, j->nskipped + 1);
        j->skipped[j->nskipped++] =
            (qn_skipped){task, qn_strdup(shard), c->offset};
        qn_warn("master: job %s map task %u skipped the record at offset %llu "
                "of %s, which crashed %u attempts",
                j->id, task, (unsigned long long)c->offset, shard, c->crashes);
    }
}

int qn_job_uses_blob(const qn_job *j, const char *hash)
{
    if (strcmp(j->plugin_hash, hash) == 0)
        return 1;
    for (size_t i = 0; j->spec && i < j->spec->n_files; i++)
        if (strcmp(j->spec->files[i]->hash, hash) == 0)
            return 1;
    return 0;
}

const char *qn_kind_name(qn_kind k)
{
    return k == QN_MAP ? "map" : "reduce";
}

/* ---- the list ------------------------------------------------------------ */

qn_job *qn_jobs_add(qn_jobs *list)
{
    QN_GROW(list->v, list->cap, list->n + 1);
    qn_job *j = &list->v[list->n++];
    memset(j, 0, sizeof *j);
    return j;
}

int qn_jobs_find(const qn_jobs *list, const char *id)
{
    for (size_t i = 0; i < list->n; i++)
        if (strcmp(list->v[i].id, id) == 0)
            return (int)i;
    return -1;
}

int qn_jobs_running(const qn_jobs *list)
{
    int n = 0;
    for (size_t i = 0; i < list->n; i++)
        n += list->v[i].state == QUERN__JOB_STATE__JOB_RUNNING;
    return n;
}

void qn_jobs_by_state(const qn_jobs *list, unsigned out[4])
{
    memset(out, 0, 4 * sizeof *out);
    for (size_t i = 0; i < list->n; i++)
        if (list->v[i].state >= 0 && list->v[i].state < 4)
            out[list->v[i].state]++;
}

void qn_jobs_release(qn_jobs *list)
{
    for (size_t i = 0; i < list->n; i++)
        qn_job_release(&list->v[i]);
    free(list->v);
    *list = (qn_jobs){0};
}
