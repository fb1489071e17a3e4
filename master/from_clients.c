/*
 * from_clients.c -- see from_clients.h.
 */
#include "from_clients.h"

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

void qn_from_client_submit_reply(qn_master *m, const char *id,
                                 const char *error)
{
    Quern__Envelope env = QUERN__ENVELOPE__INIT;
    Quern__SubmitReply r = QUERN__SUBMIT_REPLY__INIT;
    r.job_id = (char *)(id ? id : "");
    r.error = (char *)(error ? error : "");
    env.body_case = QUERN__ENVELOPE__BODY_SUBMIT_REPLY;
    env.submit_reply = &r;
    qn_send(m, m->in.id, m->in.idlen, &env);
}

void qn_from_client_submit(qn_master *m, const Quern__SubmitJob *sj,
                           int64_t now)
{
    const Quern__JobSpec *in = sj->spec;
    char err[1024];
    /* What the job says of itself first (jobspec.h), then the cluster. */
    if (qn_jobspec_check(in, sj->plugin_data.data, sj->plugin_data.len, err,
                         sizeof err) < 0) {
        qn_from_client_submit_reply(m, NULL, err);
        return;
    }
    int out_ds = qn_is_dataset(in->output);
    if (out_ds) {
        qn_dataset *d = qn_catalog_get(&m->cat, in->output);
        if (d)
            snprintf(err, sizeof err,
                     "dataset %s exists; quern rm %s first or choose "
                     "another name",
                     in->output, in->output);
        else if (qn_workers_data_live(m) == 0)
            snprintf(err, sizeof err,
                     "output %s is a dataset, but no live worker keeps "
                     "datasets (start workers with --data-dir)",
                     in->output);
        else
            err[0] = 0;
        for (int w = 0; !err[0] && w < m->nworkers; w++)
            if (qn_sched_worker_alive(m->sched, w) && !m->workers[w].has_data)
                snprintf(err, sizeof err,
                         "output %s is a dataset, but worker %s keeps no "
                         "datasets (no --data-dir); write to a folder instead",
                         in->output, m->workers[w].id);
        if (err[0]) {
            qn_from_client_submit_reply(m, NULL, err);
            return;
        }
    }
    size_t npaths = 0;
    const char **given = qn_calloc(in->n_inputs, sizeof *given);
    const char **paths = qn_calloc(in->n_inputs, sizeof *paths);
    for (size_t i = 0; i < in->n_inputs; i++) {
        if (qn_is_dataset(in->inputs[i]->given))
            continue;
        given[npaths] = in->inputs[i]->given;
        paths[npaths++] = in->inputs[i]->path;
    }
    qn_split_opts so = {
        .split_size = in->split_size,
        .whole = in->input_kind == QUERN__INPUT_KIND__WHOLE,
        .align =
            in->input_kind == QUERN__INPUT_KIND__FIXED ? in->record_size : 0,
        .max_splits = MAX_MAPS,
    };
    qn_splits splits;
    memset(&splits, 0, sizeof splits);
    int rc = npaths ? qn_split_inputs(given, paths, npaths, &so, &splits, err,
                                      sizeof err)
                    : 0;
    free(given);
    free(paths);
    if (rc == 0)
        rc = qn_datasets_splits(m, in, &splits, err, sizeof err);
    if (rc == 0 && splits.n == 0) {
        snprintf(err, sizeof err, "the input holds no data");
        rc = -1;
    }
    if (rc < 0) {
        qn_splits_release(&splits);
        qn_from_client_submit_reply(m, NULL, err);
        return;
    }
    if (splits.n > MAX_MAPS) {
        snprintf(err, sizeof err,
                 "the input makes %zu map tasks, over the limit of %d; raise "
                 "--split-size",
                 splits.n, MAX_MAPS);
        qn_splits_release(&splits);
        qn_from_client_submit_reply(m, NULL, err);
        return;
    }
    for (int i = 0; i < m->njobs && !out_ds; i++) {
        if (m->jobs[i].state == QUERN__JOB_STATE__JOB_RUNNING &&
            strcmp(m->jobs[i].spec->output, in->output) == 0) {
            qn_splits_release(&splits);
            snprintf(err, sizeof err,
                     "output %s is being written by %s; choose another "
                     "folder",
                     in->output, m->jobs[i].id);
            qn_from_client_submit_reply(m, NULL, err);
            return;
        }
    }
    if (!out_ds && qn_output_dir_prepare(in->output, err, sizeof err) < 0) {
        qn_splits_release(&splits);
        qn_from_client_submit_reply(m, NULL, err);
        return;
    }

    m->jobs = qn_realloc(m->jobs, (size_t)(m->njobs + 1) * sizeof *m->jobs);
    int jx = m->njobs++;
    qn_job *j = &m->jobs[jx];
    memset(j, 0, sizeof *j);
    snprintf(j->id, sizeof j->id, "job-%s-%d", m->tag, jx + 1);
    /* A private copy of the spec: pack and unpack. */
    size_t n = quern__job_spec__get_packed_size(in);
    uint8_t *buf = qn_malloc(n ? n : 1);
    quern__job_spec__pack(in, buf);
    j->spec = quern__job_spec__unpack(NULL, n, buf);
    free(buf);
    j->splits = splits;
    j->nmaps = (unsigned)splits.n;
    j->nreduce = in->nreduce;
    qn_plugins_keep(m, sj->plugin_data.data, sj->plugin_data.len, now,
                    j->plugin_hash);
    if (out_ds) {
        j->out_dataset = 1;
        j->out_replicas = in->output_replicas ? in->output_replicas : 2;
        qn_datasets_untombstone(m, in->output);
        qn_catalog_create(&m->cat, in->output, j->id, j->out_replicas);
        j->part_copy = qn_calloc(j->nreduce, sizeof *j->part_copy);
        j->part_copy_fails = qn_calloc(j->nreduce, sizeof *j->part_copy_fails);
        for (unsigned p = 0; p < j->nreduce; p++)
            j->part_copy[p] = -1;
    }
    j->outs = qn_calloc(j->nmaps, sizeof *j->outs);
    for (unsigned i = 0; i < j->nmaps; i++)
        j->outs[i].parts = qn_calloc(j->nreduce, sizeof(Quern__PartitionInfo));
    j->progress[0] = qn_calloc(j->nmaps, sizeof(double));
    j->progress[1] = qn_calloc(j->nreduce, sizeof(double));
    j->trec[0] = qn_calloc(j->nmaps, sizeof(qn_trec));
    j->trec[1] = qn_calloc(j->nreduce, sizeof(qn_trec));
    j->state = QUERN__JOB_STATE__JOB_RUNNING;
    j->start = now;
    j->submit_wall = qn_wall_ms();
    /* Shown from the start, 0 or not, so readers can rely on them. */
    static const char *const faults[] = {
        "map_attempts",    "reduce_attempts", "failed_attempts",
        "killed_attempts", "backup_attempts", "maps_rerun",
        "skipped_records", "data_local_maps", "remote_maps"};
    for (size_t i = 0; i < sizeof faults / sizeof *faults; i++)
        qn_job_count(j, faults[i], 0);
    j->last_push = now;
    if (sj->watch)
        qn_status_watch(j, m->in.id, m->in.idlen);
    char size[32];
    qn_event(m, QN_LOG_INFO, "job_submitted", jx, -1, 0, 0, -1,
             "job %s (%s) submitted: %zu files, %s, %u maps, %u reduces", j->id,
             j->spec->name, splits.files,
             qn_fmt_bytes(splits.bytes, size, sizeof size), j->nmaps,
             j->nreduce);
    qn_from_client_submit_reply(m, j->id, NULL);
    int handle =
        qn_sched_job_add(m->sched, now, j->nmaps, j->nreduce, in->max_attempts);
    if (handle != jx)
        qn_error("master: scheduler handle %d for job %s is out of step",
                 handle, j->id);
    qn_sched_job_speculate(m->sched, handle, in->speculation);
}

void qn_from_client_status(qn_master *m, const Quern__StatusRequest *rq)
{
    if (!rq->job_id[0]) {
        qn_status_send(m, m->in.id, m->in.idlen, -1, NULL,
                       0); /* tasks: one job's */
        return;
    }
    int jx = qn_jobs_find(m, rq->job_id);
    if (jx < 0) {
        char err[200];
        snprintf(err, sizeof err, "no job %s (quern jobs lists them)",
                 rq->job_id);
        qn_status_send(m, m->in.id, m->in.idlen, 0, err, 0);
        return;
    }
    if (rq->watch && m->jobs[jx].state == QUERN__JOB_STATE__JOB_RUNNING)
        qn_status_watch(&m->jobs[jx], m->in.id, m->in.idlen);
    qn_status_send(m, m->in.id, m->in.idlen, jx, NULL, rq->tasks);
}

void qn_from_client_cancel(qn_master *m, const Quern__CancelJob *c, int64_t now)
{
    Quern__Envelope env = QUERN__ENVELOPE__INIT;
    Quern__CancelReply r = QUERN__CANCEL_REPLY__INIT;
    char err[200] = "";
    int jx = qn_jobs_find(m, c->job_id);
    if (jx < 0)
        snprintf(err, sizeof err, "no job %s (quern jobs lists them)",
                 c->job_id);
    else if (qn_sched_job_cancel(m->sched, now, jx) < 0)
        snprintf(err, sizeof err, "job %s has already ended", c->job_id);
    r.error = err;
    env.body_case = QUERN__ENVELOPE__BODY_CANCEL_REPLY;
    env.cancel_reply = &r;
    qn_send(m, m->in.id, m->in.idlen, &env);
    if (!err[0]) {
        qn_actions_run(m, now); /* the kills go out before the job is closed */
        qn_commit_job_finished(m, jx, QUERN__JOB_STATE__JOB_CANCELLED,
                               "cancelled on request", now);
    }
}

void qn_from_client_workers(qn_master *m, int64_t now)
{
    size_t n = (size_t)m->nworkers;
    Quern__WorkerInfo *wi = qn_calloc(n + 1, sizeof *wi);
    Quern__WorkerInfo **wp = qn_calloc(n + 1, sizeof *wp);
    void *mem = NULL;
    qn_status_workers(m, now, wi, wp, &mem);
    Quern__Envelope env = QUERN__ENVELOPE__INIT;
    Quern__WorkersReply r = QUERN__WORKERS_REPLY__INIT;
    r.workers = wp;
    r.n_workers = n;
    env.body_case = QUERN__ENVELOPE__BODY_WORKERS_REPLY;
    env.workers_reply = &r;
    qn_send(m, m->in.id, m->in.idlen, &env);
    free(mem);
    free(wi);
    free(wp);
}

void qn_from_client_put(qn_master *m, const Quern__PutRequest *rq, int64_t now)
{
    char err[400] = "";
    qn_dataset *d = qn_catalog_get(&m->cat, rq->dataset);
    switch (rq->op) {
    case QUERN__PUT_REQUEST__OP__BEGIN:
        if (!qn_id_ok(rq->dataset))
            snprintf(err, sizeof err,
                     "'%s' is not a dataset name: use up to 64 letters, "
                     "digits, '.', '_' and '-', not starting with '.'",
                     rq->dataset);
        else if (rq->replicas < 1 || rq->replicas > MAX_REPLICAS)
            snprintf(err, sizeof err, "--replicas must be 1 to %d",
                     MAX_REPLICAS);
        else if (d)
            snprintf(err, sizeof err,
                     "dataset %s exists%s; quern rm %s first or choose "
                     "another name",
                     rq->dataset, d->writer ? " (it is being written)" : "",
                     rq->dataset);
        else if (qn_workers_data_live(m) == 0)
            snprintf(err, sizeof err,
                     "no live worker keeps datasets (start workers with "
                     "--data-dir)");
        else {
            qn_datasets_untombstone(m, rq->dataset);
            qn_catalog_create(&m->cat, rq->dataset, "put", rq->replicas);
            qn_info("master: put of dataset %s begins (%u replicas)",
                    rq->dataset, rq->replicas);
        }
        qn_datasets_put_reply(m, m->in.id, m->in.idlen, err, NULL, 0);
        return;
    case QUERN__PUT_REQUEST__OP__PLACE: {
        if (!d || !d->writer || strcmp(d->writer, "put") != 0) {
            snprintf(err, sizeof err, "no put of %s is under way", rq->dataset);
            qn_datasets_put_reply(m, m->in.id, m->in.idlen, err, NULL, 0);
            return;
        }
        /* The live data workers holding the fewest shards, distinct. */
        int chosen[MAX_REPLICAS];
        unsigned n = 0;
        while (n < d->replicas) {
            int best = -1;
            for (int w = 0; w < m->nworkers; w++) {
                qn_mworker *wk = &m->workers[w];
                if (!wk->has_data || !qn_sched_worker_alive(m->sched, w))
                    continue;
                int skip = 0;
                for (unsigned k = 0; k < n; k++)
                    skip |= chosen[k] == w;
                for (size_t k = 0; k < rq->n_avoid; k++)
                    skip |= strcmp(rq->avoid[k], wk->id) == 0;
                if (skip)
                    continue;
                if (best < 0 || wk->placed < m->workers[best].placed)
                    best = w;
            }
            if (best < 0)
                break;
            chosen[n++] = best;
            m->workers[best].placed++;
        }
        if (n == 0) {
            qn_datasets_put_reply(
                m, m->in.id, m->in.idlen,
                "no live worker that keeps datasets is left to take "
                "this shard",
                NULL, 0);
            return;
        }
        Quern__DataSource ds[MAX_REPLICAS], *dp[MAX_REPLICAS];
        for (unsigned k = 0; k < n; k++) {
            quern__data_source__init(&ds[k]);
            ds[k].endpoint = m->workers[chosen[k]].endpoint;
            ds[k].worker_id = m->workers[chosen[k]].id;
            ds[k].curve_public = m->workers[chosen[k]].curve_public;
            dp[k] = &ds[k];
        }
        qn_datasets_put_reply(m, m->in.id, m->in.idlen, NULL, dp, n);
        return;
    }
    case QUERN__PUT_REQUEST__OP__COMMIT:
        if (!d || !d->writer || strcmp(d->writer, "put") != 0) {
            snprintf(err, sizeof err, "no put of %s is under way", rq->dataset);
            qn_datasets_put_reply(m, m->in.id, m->in.idlen, err, NULL, 0);
            return;
        }
        m->puts = qn_realloc(m->puts, (m->nputs + 1) * sizeof *m->puts);
        qn_put_wait *pw = &m->puts[m->nputs++];
        memset(pw, 0, sizeof *pw);
        snprintf(pw->dataset, sizeof pw->dataset, "%s", rq->dataset);
        memcpy(pw->route, m->in.id, m->in.idlen);
        pw->routelen = m->in.idlen;
        pw->nshards = rq->nshards;
        pw->deadline = now + PUT_COMMIT_MS;
        qn_datasets_puts_check(m, now);
        return;
    case QUERN__PUT_REQUEST__OP__ABORT:
        if (d && d->writer && strcmp(d->writer, "put") == 0) {
            qn_info("master: put of dataset %s abandoned; dropping its shards",
                    rq->dataset);
            qn_datasets_drop_everywhere(m, rq->dataset);
        }
        qn_datasets_put_reply(m, m->in.id, m->in.idlen, NULL, NULL, 0);
        return;
    default:
        qn_datasets_put_reply(m, m->in.id, m->in.idlen, "unknown put step",
                              NULL, 0);
    }
}

void qn_from_client_datasets(qn_master *m, const Quern__DatasetsRequest *rq)
{
    Quern__Envelope env = QUERN__ENVELOPE__INIT;
    Quern__DatasetsReply r = QUERN__DATASETS_REPLY__INIT;
    env.body_case = QUERN__ENVELOPE__BODY_DATASETS_REPLY;
    env.datasets_reply = &r;
    char err[300];
    if (!rq->dataset[0]) {
        Quern__DatasetInfo *di = qn_calloc(m->cat.n + 1, sizeof *di);
        Quern__DatasetInfo **dp = qn_calloc(m->cat.n + 1, sizeof *dp);
        for (size_t i = 0; i < m->cat.n; i++) {
            qn_datasets_info(m, &m->cat.ds[i], &di[i]);
            dp[i] = &di[i];
        }
        r.datasets = dp;
        r.n_datasets = m->cat.n;
        qn_send(m, m->in.id, m->in.idlen, &env);
        free(di);
        free(dp);
        return;
    }
    qn_dataset *d = qn_catalog_get(&m->cat, rq->dataset);
    if (!d) {
        snprintf(err, sizeof err, "no dataset %s (quern ls lists them)",
                 rq->dataset);
        r.error = err;
        qn_send(m, m->in.id, m->in.idlen, &env);
        return;
    }
    Quern__DatasetInfo di;
    Quern__DatasetInfo *dip = &di;
    qn_datasets_info(m, d, &di);
    uint32_t n = d->sealed ? d->nshards : d->nslots;
    Quern__ShardLocation *sl = qn_calloc(n + 1, sizeof *sl);
    Quern__ShardLocation **slp = qn_calloc(n + 1, sizeof *slp);
    Quern__DataSource **srcs = qn_calloc(n + 1, sizeof *srcs);
    for (uint32_t i = 0; i < n; i++) {
        quern__shard_location__init(&sl[i]);
        sl[i].index = i;
        const qn_cshard *sh = qn_catalog_shard(d, i);
        if (sh) {
            sl[i].size = sh->size;
            sl[i].crc = sh->crc;
        }
        sl[i].n_holders =
            qn_datasets_sources(m, d, i, &srcs[i], &sl[i].holders);
        slp[i] = &sl[i];
    }
    di.shards = slp;
    di.n_shards = n;
    r.datasets = &dip;
    r.n_datasets = 1;
    qn_send(m, m->in.id, m->in.idlen, &env);
    for (uint32_t i = 0; i < n; i++) {
        free(srcs[i]);
        free(sl[i].holders);
    }
    free(srcs);
    free(sl);
    free(slp);
}

void qn_from_client_drop(qn_master *m, const Quern__DropDataset *rq)
{
    Quern__Envelope env = QUERN__ENVELOPE__INIT;
    Quern__DropReply r = QUERN__DROP_REPLY__INIT;
    char err[300] = "";
    qn_dataset *d = qn_catalog_get(&m->cat, rq->dataset);
    if (!d) {
        snprintf(err, sizeof err, "no dataset %s (quern ls lists them)",
                 rq->dataset);
    } else if (d->writer && strcmp(d->writer, "put") != 0 &&
               qn_jobs_find(m, d->writer) >= 0 &&
               m->jobs[qn_jobs_find(m, d->writer)].state ==
                   QUERN__JOB_STATE__JOB_RUNNING) {
        snprintf(err, sizeof err,
                 "dataset %s is being written by job %s; quern cancel %s "
                 "first",
                 rq->dataset, d->writer, d->writer);
    } else {
        qn_info("master: dataset %s removed", rq->dataset);
        qn_datasets_drop_everywhere(m, rq->dataset);
    }
    r.error = err;
    env.body_case = QUERN__ENVELOPE__BODY_DROP_REPLY;
    env.drop_reply = &r;
    qn_send(m, m->in.id, m->in.idlen, &env);
}

/* Is a message of this kind a client's request (rate-limited per
 * address), rather than a worker's? */
int qn_from_client_is_request(Quern__Envelope__BodyCase c)
{
    switch (c) {
    case QUERN__ENVELOPE__BODY_SUBMIT_JOB:
    case QUERN__ENVELOPE__BODY_STATUS_REQUEST:
    case QUERN__ENVELOPE__BODY_CANCEL_JOB:
    case QUERN__ENVELOPE__BODY_WORKERS_REQUEST:
    case QUERN__ENVELOPE__BODY_PUT_REQUEST:
    case QUERN__ENVELOPE__BODY_DATASETS_REQUEST:
    case QUERN__ENVELOPE__BODY_DROP_DATASET:
    case QUERN__ENVELOPE__BODY_LOGS_REQUEST: return 1;
    default: return 0;
    }
}
