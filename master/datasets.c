/*
 * datasets.c -- see datasets.h.
 */
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

unsigned qn_datasets_live_copies(qn_master *m, const qn_dataset *d, uint32_t i)
{
    const qn_cshard *sh = qn_catalog_shard(d, i);
    unsigned n = 0;
    for (size_t k = 0; sh && k < sh->nholders; k++)
        if (qn_workers_alive_id(m, sh->holders[k]) >= 0)
            n++;
    return n;
}

/* Copies a shard can have: replicas, or as many live data workers. */
unsigned qn_datasets_copies_wanted(qn_master *m, unsigned replicas)
{
    unsigned have = qn_workers_data_live(m);
    unsigned want = replicas < have ? replicas : have;
    return want ? want : 1;
}

/*
 * The live holders of shard i of d as DataSources, in *src (pointing into
 * m's workers; free the two arrays). Returns how many.
 */
size_t qn_datasets_sources(qn_master *m, const qn_dataset *d, uint32_t i,
                           Quern__DataSource **src, Quern__DataSource ***ptrs)
{
    const qn_cshard *sh = qn_catalog_shard(d, i);
    size_t n = sh ? sh->nholders : 0;
    *src = qn_calloc(n + 1, sizeof **src);
    *ptrs = qn_calloc(n + 1, sizeof **ptrs);
    size_t got = 0;
    for (size_t k = 0; k < n; k++) {
        int w = qn_workers_alive_id(m, sh->holders[k]);
        if (w < 0)
            continue;
        Quern__DataSource *ds = &(*src)[got];
        quern__data_source__init(ds);
        ds->endpoint = m->workers[w].endpoint;
        ds->worker_id = m->workers[w].id;
        ds->curve_public = m->workers[w].curve_public;
        (*ptrs)[got++] = ds;
    }
    return got;
}

int qn_datasets_tombstoned(qn_master *m, const char *name)
{
    for (size_t i = 0; i < m->ndropped_ds; i++)
        if (strcmp(m->dropped_ds[i], name) == 0)
            return 1;
    return 0;
}

void qn_datasets_untombstone(qn_master *m, const char *name)
{
    for (size_t i = 0; i < m->ndropped_ds; i++) {
        if (strcmp(m->dropped_ds[i], name) == 0) {
            free(m->dropped_ds[i]);
            m->dropped_ds[i] = m->dropped_ds[--m->ndropped_ds];
            return;
        }
    }
}

/* Delete a dataset on every live worker and forget it; copies on workers
 * that come back later are deleted when they announce them. */
void qn_datasets_drop_everywhere(qn_master *m, const char *name)
{
    Quern__DataCommand c = QUERN__DATA_COMMAND__INIT;
    c.op = QUERN__DATA_COMMAND__OP__DROP;
    c.dataset = (char *)name;
    for (int w = 0; w < m->nworkers; w++)
        if (m->workers[w].has_data && qn_sched_worker_alive(m->sched, w))
            qn_send_data_cmd(m, w, &c);
    if (!qn_datasets_tombstoned(m, name)) {
        m->dropped_ds = qn_realloc(m->dropped_ds, (m->ndropped_ds + 1) *
                                                      sizeof *m->dropped_ds);
        m->dropped_ds[m->ndropped_ds++] = qn_strdup(name);
    }
    qn_catalog_remove(&m->cat, name);
}

/* Mark d complete with nshards on every live holder and here. */
void qn_datasets_seal(qn_master *m, qn_dataset *d, uint32_t nshards)
{
    Quern__DataCommand c = QUERN__DATA_COMMAND__INIT;
    c.op = QUERN__DATA_COMMAND__OP__SEAL;
    c.dataset = d->name;
    c.nshards = nshards;
    for (int w = 0; w < m->nworkers; w++) {
        if (!m->workers[w].has_data || !qn_sched_worker_alive(m->sched, w))
            continue;
        for (uint32_t i = 0; i < nshards; i++) {
            if (qn_catalog_holds(d, i, m->workers[w].id)) {
                qn_send_data_cmd(m, w, &c);
                break;
            }
        }
    }
    d->sealed = 1;
    d->nshards = nshards;
    free(d->writer);
    d->writer = NULL;
}

/* A worker announces a copy of a shard. */
void qn_datasets_hold(qn_master *m, int w, const Quern__ShardInfo *si)
{
    if (qn_datasets_tombstoned(m, si->dataset)) {
        Quern__DataCommand c = QUERN__DATA_COMMAND__INIT;
        c.op = QUERN__DATA_COMMAND__OP__DROP;
        c.dataset = si->dataset;
        qn_send_data_cmd(m, w, &c);
        return;
    }
    if (qn_catalog_hold(&m->cat, m->workers[w].id, si->dataset, si->index,
                        si->size, si->crc, si->sealed, si->nshards) < 0)
        qn_warn("master: worker %s holds shard %s/%u with %llu bytes and CRC "
                "%08x, which differs from the other copies; not used",
                m->workers[w].id, si->dataset, si->index,
                (unsigned long long)si->size, si->crc);
}

/* Is map task `map` of job `job` data-local on worker? (sched.h) */
int qn_datasets_local(void *ctx, int job, unsigned map, int worker)
{
    qn_master *m = ctx;
    if (job < 0 || job >= m->njobs)
        return QN_LOC_ANY;
    qn_job *j = &m->jobs[job];
    if (!j->splits.splits || map >= j->splits.n)
        return QN_LOC_ANY;
    const qn_split *sp = &j->splits.splits[map];
    int any = 1;
    for (size_t i = 0; i < sp->n; i++) {
        const qn_piece *pc = &sp->pieces[i];
        if (!pc->dataset)
            continue;
        any = 0;
        qn_dataset *d = qn_catalog_get(&m->cat, pc->dataset);
        if (worker < 0 || worker >= m->nworkers || !d ||
            !qn_catalog_holds(d, pc->shard, m->workers[worker].id))
            return 0;
    }
    return any ? QN_LOC_ANY : 1;
}

void qn_datasets_put_reply(qn_master *m, const char *route, size_t routelen,
                           const char *error, Quern__DataSource **targets,
                           size_t n)
{
    Quern__Envelope env = QUERN__ENVELOPE__INIT;
    Quern__PutReply r = QUERN__PUT_REPLY__INIT;
    r.error = (char *)(error ? error : "");
    r.targets = targets;
    r.n_targets = n;
    env.body_case = QUERN__ENVELOPE__BODY_PUT_REPLY;
    env.put_reply = &r;
    qn_send(m, route, routelen, &env);
}

/*
 * Can put of d with nshards be sealed? 1 yes, 0 not yet, -1 never (why
 * says so).
 */
int qn_datasets_put_ready(qn_master *m, qn_dataset *d, uint32_t nshards,
                          char *why, size_t cap)
{
    unsigned want = qn_datasets_copies_wanted(m, d->replicas);
    if (d->nslots > nshards) {
        snprintf(why, cap, "workers hold shard %u, past the %u the put wrote",
                 d->nslots - 1, nshards);
        return -1;
    }
    for (uint32_t i = 0; i < nshards; i++) {
        unsigned live = qn_datasets_live_copies(m, d, i);
        if (live < want) {
            snprintf(why, cap, "shard %u has %u of %u copies", i, live, want);
            return 0;
        }
    }
    return 1;
}

/* Seal the puts whose shards have all been announced (or time out). */
void qn_datasets_puts_check(qn_master *m, int64_t now)
{
    for (size_t i = 0; i < m->nputs;) {
        qn_put_wait *pw = &m->puts[i];
        qn_dataset *d = qn_catalog_get(&m->cat, pw->dataset);
        char why[300] = "", msg[600];
        int r =
            d ? qn_datasets_put_ready(m, d, pw->nshards, why, sizeof why) : -1;
        if (r == 0 && now < pw->deadline) {
            i++;
            continue;
        }
        if (r == 1) {
            qn_datasets_seal(m, d, pw->nshards);
            qn_info("master: dataset %s is complete: %u shards, %llu bytes",
                    d->name, pw->nshards,
                    (unsigned long long)qn_catalog_bytes(d));
            qn_datasets_put_reply(m, pw->route, pw->routelen, NULL, NULL, 0);
        } else {
            snprintf(msg, sizeof msg, "dataset %s cannot be completed: %s",
                     pw->dataset, d ? why : "it was removed");
            qn_datasets_put_reply(m, pw->route, pw->routelen, msg, NULL, 0);
        }
        m->puts[i] = m->puts[--m->nputs];
    }
}

int64_t qn_datasets_puts_due(qn_master *m)
{
    int64_t due = INT64_MAX;
    for (size_t i = 0; i < m->nputs; i++)
        if (m->puts[i].deadline < due)
            due = m->puts[i].deadline;
    return due;
}

void qn_datasets_info(qn_master *m, qn_dataset *d, Quern__DatasetInfo *di)
{
    quern__dataset_info__init(di);
    di->name = d->name;
    di->sealed = d->sealed;
    uint32_t n = d->sealed ? d->nshards : 0;
    if (!d->sealed)
        for (uint32_t i = 0; i < d->nslots; i++)
            n += d->shards[i].known;
    di->nshards = n;
    di->bytes = qn_catalog_bytes(d);
    di->writer = d->writer ? d->writer : (char *)"";
    unsigned fewest = UINT32_MAX;
    uint32_t upto = d->sealed ? d->nshards : d->nslots;
    for (uint32_t i = 0; i < upto; i++) {
        unsigned live = qn_datasets_live_copies(m, d, i);
        if (live < fewest)
            fewest = live;
    }
    di->replicas = upto ? fewest : 0;
}

/* Is an input or output a dataset name (no '/') rather than a path? */
int qn_is_dataset(const char *given)
{
    return !strchr(given, '/');
}

/*
 * Splits for the dataset inputs of a job, appended to out (one map per
 * shard). Returns 0, or -1 with err naming the dataset or shard.
 */
int qn_datasets_splits(qn_master *m, const Quern__JobSpec *in, qn_splits *out,
                       char *err, size_t errcap)
{
    for (size_t i = 0; i < in->n_inputs; i++) {
        const char *name = in->inputs[i]->given;
        if (!qn_is_dataset(name))
            continue;
        qn_dataset *d = qn_catalog_get(&m->cat, name);
        if (!d) {
            snprintf(err, errcap, "no dataset %s (quern ls lists them)", name);
            return -1;
        }
        if (!d->sealed) {
            snprintf(err, errcap,
                     "dataset %s is not complete (it is being written, or "
                     "its writer stopped: quern rm it)",
                     name);
            return -1;
        }
        out->files++;
        for (uint32_t k = 0; k < d->nshards; k++) {
            const qn_cshard *sh = qn_catalog_shard(d, k);
            if (!sh) {
                snprintf(err, errcap,
                         "shard %s/part-%05u has no copy on any worker the "
                         "master knows; start a worker that holds it",
                         name, k);
                return -1;
            }
            out->splits =
                qn_realloc(out->splits, (out->n + 1) * sizeof *out->splits);
            qn_split *sp = &out->splits[out->n++];
            sp->pieces = qn_calloc(1, sizeof *sp->pieces);
            sp->n = 1;
            sp->bytes = sh->size;
            qn_piece *pc = &sp->pieces[0];
            qn_buf nm = {0};
            qn_buf_printf(&nm, "%s/part-%05u", name, k);
            pc->name = nm.data;
            pc->path = qn_strdup("");
            pc->offset = 0;
            pc->length = pc->file_size = sh->size;
            pc->dataset = qn_strdup(name);
            pc->shard = k;
            pc->crc = sh->crc;
            out->bytes += sh->size;
        }
    }
    return 0;
}
