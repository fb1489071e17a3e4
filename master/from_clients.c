/*
 * from_clients.c -- see from_clients.h.
 */
#include "from_clients.h"

#include "actions.h"
#include "commit.h"
#include "datasets.h"
#include "drain.h"
#include "durable.h"
#include "events.h"
#include "jobspec.h"
#include "log.h"
#include "logs.h"
#include "send.h"
#include "status.h"
#include "util.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- jobs ---------------------------------------------------------------- */

static void s_submit_reply(qn_master *m, const char *id, const char *error)
{
    Quern__SubmitReply r = QUERN__SUBMIT_REPLY__INIT;
    r.job_id = (char *)(id ? id : "");
    r.error = (char *)(error ? error : "");
    qn_send_reply(m, QUERN__ENVELOPE__BODY_SUBMIT_REPLY, &r);
}

/* Can the cluster write output dataset name? 0, or -1 with err. */
static int s_check_output_dataset(qn_master *m, const char *name, char *err,
                                  size_t cap)
{
    if (qn_catalog_get(&m->data.cat, name)) {
        snprintf(err, cap,
                 "dataset %s exists; quern rm %s first or choose another name",
                 name, name);
        return -1;
    }
    if (qn_workers_takers(&m->workers) == 0) {
        snprintf(err, cap,
                 "output %s is a dataset, but no live worker keeps datasets "
                 "and takes new data (start workers with --data-dir, or "
                 "undrain one)",
                 name);
        return -1;
    }
    for (int w = 0; w < m->workers.n; w++) {
        if (qn_workers_alive(&m->workers, w) && !m->workers.v[w].has_data) {
            snprintf(err, cap,
                     "output %s is a dataset, but worker %s keeps no "
                     "datasets (no --data-dir); write to a folder instead",
                     name, m->workers.v[w].id);
            return -1;
        }
    }
    return 0;
}

/* Split job spec in's inputs, paths then datasets, into out. 0, or -1
 * with err naming what is wrong. */
static int s_job_splits(qn_master *m, const Quern__JobSpec *in, qn_splits *out,
                        char *err, size_t cap)
{
    size_t npaths = 0;
    const char **given = qn_calloc(in->n_inputs + 1, sizeof *given);
    const char **paths = qn_calloc(in->n_inputs + 1, sizeof *paths);
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
        .max_splits = QN_FROM_CLIENTS_MAX_MAPS,
    };
    memset(out, 0, sizeof *out);
    int rc =
        npaths ? qn_split_inputs(given, paths, npaths, &so, out, err, cap) : 0;
    free(given);
    free(paths);
    if (rc == 0)
        rc = qn_datasets_splits(m, in, out, err, cap);
    if (rc == 0 && out->n == 0) {
        snprintf(err, cap, "the input holds no data");
        rc = -1;
    }
    if (rc == 0 && out->n > QN_FROM_CLIENTS_MAX_MAPS) {
        snprintf(err, cap,
                 "the input makes %zu map tasks, over the limit of %d; raise "
                 "--split-size",
                 out->n, QN_FROM_CLIENTS_MAX_MAPS);
        rc = -1;
    }
    if (rc < 0)
        qn_splits_release(out);
    return rc;
}

/* Can job spec in write its output folder: no running job writes it, and
 * it is made ready? 0, or -1 with err. */
static int s_claim_output_dir(qn_master *m, const Quern__JobSpec *in, char *err,
                              size_t cap)
{
    for (size_t i = 0; i < m->jobs.n; i++) {
        const qn_job *j = &m->jobs.v[i];
        if (j->state == QUERN__JOB_STATE__JOB_RUNNING &&
            strcmp(j->spec->output, in->output) == 0) {
            snprintf(err, cap,
                     "output %s is being written by %s; choose another folder",
                     in->output, j->id);
            return -1;
        }
    }
    return qn_output_dir_prepare(in->output, err, cap);
}

/* Is the blob with this hash a running job's plugin or file? (plugins.h) */
static int s_plugin_busy(void *ctx, const char *hash)
{
    const qn_master *m = ctx;
    for (size_t i = 0; i < m->jobs.n; i++)
        if (m->jobs.v[i].state == QUERN__JOB_STATE__JOB_RUNNING &&
            qn_job_uses_blob(&m->jobs.v[i], hash))
            return 1;
    return 0;
}

/* A new job from sj, its inputs split into splits (taken). */
static void s_add_job(qn_master *m, const Quern__SubmitJob *sj,
                      qn_splits *splits, int out_ds, int64_t now)
{
    const Quern__JobSpec *in = sj->spec;
    int jx = (int)m->jobs.n;
    qn_job *j = qn_jobs_add(&m->jobs);
    char id[32];
    snprintf(id, sizeof id, "job-%s-%d", m->tag, jx + 1);
    /* A private copy of the spec: pack and unpack. */
    size_t n = quern__job_spec__get_packed_size(in);
    uint8_t *buf = qn_malloc(n ? n : 1);
    quern__job_spec__pack(in, buf);
    Quern__JobSpec *spec = quern__job_spec__unpack(NULL, n, buf);
    free(buf);
    qn_job_init(j, id, &spec, splits, out_ds, now, qn_master_wall(m, now));
    qn_plugins_keep(&m->plugins, sj->plugin_data.data, sj->plugin_data.len, now,
                    j->plugin_hash, s_plugin_busy, m);
    /* Its files by hash beside it: the job claims them all (busy), so
     * keeping one does not push out another. */
    for (size_t i = 0; i < sj->n_file_data; i++) {
        char hex[QN_SHA256_HEX];
        qn_plugins_keep(&m->plugins, sj->file_data[i].data,
                        sj->file_data[i].len, now, hex, s_plugin_busy, m);
    }
    if (out_ds)
        qn_datasets_create(m, in->output, j->id, j->out.replicas);
    int kept = qn_durable_job_submitted(m, jx, sj->plugin_data.data,
                                        sj->plugin_data.len, sj->file_data);
    if (sj->watch)
        qn_status_watch(m, jx, m->net.in.id, m->net.in.idlen);
    char size[32];
    qn_event(m, now, QN_LOG_INFO, "job_submitted", jx, -1, 0, 0, -1,
             "job %s (%s) submitted: %zu files, %s, %u maps, %u reduces", j->id,
             j->spec->name, j->splits.files,
             qn_fmt_bytes(j->splits.bytes, size, sizeof size), j->nmaps,
             j->nreduce);
    s_submit_reply(m, j->id, NULL);
    int handle =
        qn_sched_job_add(m->sched, now, j->nmaps, j->nreduce, in->max_attempts);
    /* Jobs are indexed by scheduler handle everywhere. */
    assert(handle == jx);
    qn_sched_job_speculate(m->sched, handle, in->speculation);
    if (kept < 0 && qn_sched_job_cancel(m->sched, now, jx) == 0)
        qn_commit_job_end(m, jx, QUERN__JOB_STATE__JOB_FAILED,
                          "the master could not keep the job in its state "
                          "dir (its log says why)",
                          now);
}

static void s_submit(qn_master *m, const Quern__SubmitJob *sj, int64_t now)
{
    const Quern__JobSpec *in = sj->spec;
    char err[1024];
    if (qn_jobs_running(&m->jobs) >= QN_FROM_CLIENTS_MAX_RUNNING) {
        snprintf(err, sizeof err,
                 "the master runs %d jobs, the most it takes at once; "
                 "submit again when one has finished",
                 QN_FROM_CLIENTS_MAX_RUNNING);
        s_submit_reply(m, NULL, err);
        return;
    }
    /* What the job says of itself first (jobspec.h), then the cluster. */
    int out_ds = qn_is_dataset(in->output);
    qn_splits splits;
    if (qn_jobspec_check(in, sj->plugin_data.data, sj->plugin_data.len, err,
                         sizeof err) < 0 ||
        qn_jobspec_check_files(in, sj->file_data, sj->n_file_data, err,
                               sizeof err) < 0 ||
        (out_ds &&
         s_check_output_dataset(m, in->output, err, sizeof err) < 0)) {
        s_submit_reply(m, NULL, err);
        return;
    }
    if (s_job_splits(m, in, &splits, err, sizeof err) < 0) {
        s_submit_reply(m, NULL, err);
        return;
    }
    if (!out_ds && s_claim_output_dir(m, in, err, sizeof err) < 0) {
        qn_splits_release(&splits);
        s_submit_reply(m, NULL, err);
        return;
    }
    s_add_job(m, sj, &splits, out_ds, now);
}

static void s_status(qn_master *m, const Quern__StatusRequest *rq, int64_t now)
{
    const qn_frames *in = &m->net.in;
    if (!rq->job_id[0]) {
        /* Every job, without tasks: those are one job's. */
        qn_status_send(m, in->id, in->idlen, -1, NULL, 0, now);
        return;
    }
    int jx = qn_jobs_find(&m->jobs, rq->job_id);
    if (jx < 0) {
        char err[200];
        snprintf(err, sizeof err, "no job %s (quern jobs lists them)",
                 rq->job_id);
        qn_status_send(m, in->id, in->idlen, 0, err, 0, now);
        return;
    }
    if (rq->watch && m->jobs.v[jx].state == QUERN__JOB_STATE__JOB_RUNNING)
        qn_status_watch(m, jx, in->id, in->idlen);
    qn_status_send(m, in->id, in->idlen, jx, NULL, rq->tasks, now);
}

static void s_cancel(qn_master *m, const Quern__CancelJob *c, int64_t now)
{
    Quern__CancelReply r = QUERN__CANCEL_REPLY__INIT;
    char err[200] = "";
    int jx = qn_jobs_find(&m->jobs, c->job_id);
    if (jx < 0)
        snprintf(err, sizeof err, "no job %s (quern jobs lists them)",
                 c->job_id);
    else if (qn_sched_job_cancel(m->sched, now, jx) < 0)
        snprintf(err, sizeof err, "job %s has already ended", c->job_id);
    r.error = err;
    qn_send_reply(m, QUERN__ENVELOPE__BODY_CANCEL_REPLY, &r);
    if (!err[0]) {
        qn_actions_run(m, now); /* the kills go out before the job is closed */
        qn_commit_job_end(m, jx, QUERN__JOB_STATE__JOB_CANCELLED,
                          "cancelled on request", now);
    }
}

static void s_workers(qn_master *m, int64_t now)
{
    qn_workers_view v = {0};
    qn_status_workers(m, now, &v);
    Quern__WorkersReply r = QUERN__WORKERS_REPLY__INIT;
    r.workers = v.wp;
    r.n_workers = v.n;
    qn_send_reply(m, QUERN__ENVELOPE__BODY_WORKERS_REPLY, &r);
    qn_status_workers_release(&v);
}

/* ---- datasets ------------------------------------------------------------ */

static void s_put_reply(qn_master *m, const char *error,
                        Quern__DataSource **targets, size_t n)
{
    qn_datasets_put_reply(m, m->net.in.id, m->net.in.idlen, error, targets, n);
}

static void s_put_begin(qn_master *m, const Quern__PutRequest *rq,
                        const qn_dataset *d)
{
    char err[400] = "";
    if (!qn_id_ok(rq->dataset))
        snprintf(err, sizeof err,
                 "'%s' is not a dataset name: use up to 64 letters, "
                 "digits, '.', '_' and '-', not starting with '.'",
                 rq->dataset);
    else if (rq->replicas < 1 || rq->replicas > QN_DATASETS_MAX_REPLICAS)
        snprintf(err, sizeof err, "--replicas must be 1 to %d",
                 QN_DATASETS_MAX_REPLICAS);
    else if (d)
        snprintf(err, sizeof err,
                 "dataset %s exists%s; quern rm %s first or choose "
                 "another name",
                 rq->dataset, d->writer ? " (it is being written)" : "",
                 rq->dataset);
    else if (qn_workers_takers(&m->workers) == 0)
        snprintf(err, sizeof err,
                 "no live worker keeps datasets and takes new data (start "
                 "workers with --data-dir, or undrain one)");
    else {
        qn_datasets_create(m, rq->dataset, "put", rq->replicas);
        qn_info("master: put of dataset %s begins (%u replicas)", rq->dataset,
                rq->replicas);
    }
    s_put_reply(m, err, NULL, 0);
}

/* Where the put's next shard goes: the workers it streams to. */
static void s_put_place(qn_master *m, const Quern__PutRequest *rq,
                        const qn_dataset *d)
{
    int chosen[QN_DATASETS_MAX_REPLICAS];
    unsigned n = qn_datasets_place(m, d, rq->avoid, rq->n_avoid, chosen);
    if (n == 0) {
        s_put_reply(m,
                    "no live worker that keeps datasets is left to take "
                    "this shard",
                    NULL, 0);
        return;
    }
    Quern__DataSource ds[QN_DATASETS_MAX_REPLICAS];
    Quern__DataSource *dp[QN_DATASETS_MAX_REPLICAS];
    for (unsigned k = 0; k < n; k++) {
        const qn_mworker *w = &m->workers.v[chosen[k]];
        quern__data_source__init(&ds[k]);
        ds[k].endpoint = w->endpoint;
        ds[k].worker_id = (char *)w->id;
        ds[k].curve_public = (char *)w->curve_public;
        dp[k] = &ds[k];
    }
    s_put_reply(m, NULL, dp, n);
}

static void s_put(qn_master *m, const Quern__PutRequest *rq, int64_t now)
{
    qn_dataset *d = qn_catalog_get(&m->data.cat, rq->dataset);
    int under_way = d && d->writer && strcmp(d->writer, "put") == 0;
    char err[400];
    snprintf(err, sizeof err, "no put of %s is under way", rq->dataset);
    switch (rq->op) {
    case QUERN__PUT_REQUEST__OP__BEGIN: s_put_begin(m, rq, d); return;
    case QUERN__PUT_REQUEST__OP__PLACE:
        if (under_way)
            s_put_place(m, rq, d);
        else
            s_put_reply(m, err, NULL, 0);
        return;
    case QUERN__PUT_REQUEST__OP__COMMIT:
        if (under_way)
            qn_datasets_put_wait(m, rq->dataset, m->net.in.id, m->net.in.idlen,
                                 rq->nshards, now);
        else
            s_put_reply(m, err, NULL, 0);
        return;
    case QUERN__PUT_REQUEST__OP__ABORT:
        if (under_way) {
            qn_info("master: put of dataset %s abandoned; dropping its shards",
                    rq->dataset);
            qn_datasets_drop_everywhere(m, rq->dataset);
        }
        s_put_reply(m, NULL, NULL, 0);
        return;
    default: s_put_reply(m, "unknown put step", NULL, 0);
    }
}

/* quern ls: every dataset. */
static void s_datasets_all(qn_master *m)
{
    const qn_catalog *cat = &m->data.cat;
    Quern__DatasetsReply r = QUERN__DATASETS_REPLY__INIT;
    Quern__DatasetInfo *di = qn_calloc(cat->n + 1, sizeof *di);
    Quern__DatasetInfo **dp = qn_calloc(cat->n + 1, sizeof *dp);
    for (size_t i = 0; i < cat->n; i++) {
        qn_datasets_info(m, &cat->ds[i], &di[i]);
        dp[i] = &di[i];
    }
    r.datasets = dp;
    r.n_datasets = cat->n;
    qn_send_reply(m, QUERN__ENVELOPE__BODY_DATASETS_REPLY, &r);
    free(di);
    free(dp);
}

/* quern ls NAME, cat, get: one dataset, with each shard's holders. */
static void s_dataset_one(qn_master *m, qn_dataset *d)
{
    Quern__DatasetsReply r = QUERN__DATASETS_REPLY__INIT;
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
    qn_send_reply(m, QUERN__ENVELOPE__BODY_DATASETS_REPLY, &r);
    for (uint32_t i = 0; i < n; i++) {
        free(srcs[i]);
        free(sl[i].holders);
    }
    free(srcs);
    free(sl);
    free(slp);
}

static void s_datasets(qn_master *m, const Quern__DatasetsRequest *rq)
{
    if (!rq->dataset[0]) {
        s_datasets_all(m);
        return;
    }
    qn_dataset *d = qn_catalog_get(&m->data.cat, rq->dataset);
    if (d) {
        s_dataset_one(m, d);
        return;
    }
    char err[300];
    snprintf(err, sizeof err, "no dataset %s (quern ls lists them)",
             rq->dataset);
    Quern__DatasetsReply r = QUERN__DATASETS_REPLY__INIT;
    r.error = err;
    qn_send_reply(m, QUERN__ENVELOPE__BODY_DATASETS_REPLY, &r);
}

static void s_drop(qn_master *m, const Quern__DropDataset *rq)
{
    Quern__DropReply r = QUERN__DROP_REPLY__INIT;
    char err[300] = "";
    qn_dataset *d = qn_catalog_get(&m->data.cat, rq->dataset);
    int writer = d && d->writer && strcmp(d->writer, "put") != 0
                     ? qn_jobs_find(&m->jobs, d->writer)
                     : -1;
    if (!d) {
        snprintf(err, sizeof err, "no dataset %s (quern ls lists them)",
                 rq->dataset);
    } else if (writer >= 0 &&
               m->jobs.v[writer].state == QUERN__JOB_STATE__JOB_RUNNING) {
        snprintf(err, sizeof err,
                 "dataset %s is being written by job %s; quern cancel %s "
                 "first",
                 rq->dataset, d->writer, d->writer);
    } else {
        qn_info("master: dataset %s removed", rq->dataset);
        qn_datasets_drop_everywhere(m, rq->dataset);
    }
    r.error = err;
    qn_send_reply(m, QUERN__ENVELOPE__BODY_DROP_REPLY, &r);
}

/* ---- dispatch ------------------------------------------------------------ */

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
    case QUERN__ENVELOPE__BODY_LOGS_REQUEST:
    case QUERN__ENVELOPE__BODY_DRAIN_REQUEST: return 1;
    default: return 0;
    }
}

int qn_from_client(qn_master *m, const Quern__Envelope *env, int64_t now)
{
    switch (env->body_case) {
    case QUERN__ENVELOPE__BODY_SUBMIT_JOB:
        s_submit(m, env->submit_job, now);
        return 1;
    case QUERN__ENVELOPE__BODY_STATUS_REQUEST:
        s_status(m, env->status_request, now);
        return 1;
    case QUERN__ENVELOPE__BODY_CANCEL_JOB:
        s_cancel(m, env->cancel_job, now);
        return 1;
    case QUERN__ENVELOPE__BODY_WORKERS_REQUEST: s_workers(m, now); return 1;
    case QUERN__ENVELOPE__BODY_PUT_REQUEST:
        s_put(m, env->put_request, now);
        return 1;
    case QUERN__ENVELOPE__BODY_DATASETS_REQUEST:
        s_datasets(m, env->datasets_request);
        return 1;
    case QUERN__ENVELOPE__BODY_DROP_DATASET:
        s_drop(m, env->drop_dataset);
        return 1;
    case QUERN__ENVELOPE__BODY_LOGS_REQUEST:
        qn_logs_request(m, env->logs_request, now);
        return 1;
    case QUERN__ENVELOPE__BODY_DRAIN_REQUEST:
        qn_drain_request(m, env->drain_request, now);
        return 1;
    default: return 0;
    }
}
