/*
 * datasets.c -- see datasets.h.
 */
#include "datasets.h"

#include "durable.h"

#include "log.h"
#include "send.h"
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int qn_is_dataset(const char *given)
{
    return !strchr(given, '/');
}

unsigned qn_datasets_live_copies(qn_master *m, const qn_dataset *d, uint32_t i)
{
    const qn_cshard *sh = qn_catalog_shard(d, i);
    unsigned n = 0;
    for (size_t k = 0; sh && k < sh->nholders; k++)
        if (qn_workers_alive_id(&m->workers, sh->holders[k]) >= 0)
            n++;
    return n;
}

unsigned qn_datasets_copies_wanted(qn_master *m, unsigned replicas)
{
    unsigned have = qn_workers_takers(&m->workers);
    unsigned want = replicas < have ? replicas : have;
    return want ? want : 1;
}

size_t qn_datasets_sources(qn_master *m, const qn_dataset *d, uint32_t i,
                           Quern__DataSource **src, Quern__DataSource ***ptrs)
{
    const qn_cshard *sh = qn_catalog_shard(d, i);
    size_t n = sh ? sh->nholders : 0;
    *src = qn_calloc(n + 1, sizeof **src);
    *ptrs = qn_calloc(n + 1, sizeof **ptrs);
    size_t got = 0;
    for (size_t k = 0; k < n; k++) {
        int w = qn_workers_alive_id(&m->workers, sh->holders[k]);
        if (w < 0)
            continue;
        Quern__DataSource *ds = &(*src)[got];
        quern__data_source__init(ds);
        ds->endpoint = m->workers.v[w].endpoint;
        ds->worker_id = m->workers.v[w].id;
        ds->curve_public = m->workers.v[w].curve_public;
        (*ptrs)[got++] = ds;
    }
    return got;
}

static int s_tombstoned(qn_master *m, const char *name)
{
    for (size_t i = 0; i < m->data.ndropped; i++)
        if (strcmp(m->data.dropped[i], name) == 0)
            return 1;
    return 0;
}

/* Tell worker w to drop (op DROP) or seal a dataset. */
static void s_command(qn_master *m, int w, Quern__DataCommand__Op op,
                      const char *dataset, uint32_t nshards)
{
    Quern__DataCommand c = QUERN__DATA_COMMAND__INIT;
    c.op = op;
    c.dataset = (char *)dataset;
    c.nshards = nshards;
    qn_send_worker(m, w, QUERN__ENVELOPE__BODY_DATA_COMMAND, &c);
}

/* Note a change to dataset name in the journal. */
static void s_journal(qn_master *m, qn_change_kind kind, const char *name)
{
    qn_durable_dataset(m, kind, name);
}

qn_dataset *qn_datasets_create(qn_master *m, const char *name,
                               const char *writer, unsigned replicas)
{
    qn_strv_remove(m->data.dropped, &m->data.ndropped, name);
    qn_dataset *d = qn_catalog_create(&m->data.cat, name, writer, replicas);
    if (d)
        s_journal(m, QN_CHANGE_DATASET_CREATED, name);
    return d;
}

void qn_datasets_drop_everywhere(qn_master *m, const char *name)
{
    s_journal(m, QN_CHANGE_DATASET_REMOVED, name);
    for (int w = 0; w < m->workers.n; w++)
        if (m->workers.v[w].has_data && qn_workers_alive(&m->workers, w))
            s_command(m, w, QUERN__DATA_COMMAND__OP__DROP, name, 0);
    if (!s_tombstoned(m, name)) {
        QN_GROW(m->data.dropped, m->data.cap_dropped, m->data.ndropped + 1);
        m->data.dropped[m->data.ndropped++] = qn_strdup(name);
    }
    qn_catalog_remove(&m->data.cat, name);
}

void qn_datasets_seal(qn_master *m, qn_dataset *d, uint32_t nshards)
{
    for (int w = 0; w < m->workers.n; w++) {
        if (!m->workers.v[w].has_data || !qn_workers_alive(&m->workers, w))
            continue;
        for (uint32_t i = 0; i < nshards; i++) {
            if (qn_catalog_holds(d, i, m->workers.v[w].id)) {
                s_command(m, w, QUERN__DATA_COMMAND__OP__SEAL, d->name,
                          nshards);
                break;
            }
        }
    }
    d->sealed = 1;
    d->sealing = 0;
    d->nshards = nshards;
    free(d->writer);
    d->writer = NULL;
    s_journal(m, QN_CHANGE_DATASET_CHANGED, d->name);
}

void qn_datasets_hold(qn_master *m, int w, const Quern__ShardInfo *si)
{
    if (s_tombstoned(m, si->dataset)) {
        s_command(m, w, QUERN__DATA_COMMAND__OP__DROP, si->dataset, 0);
        return;
    }
    if (qn_catalog_hold(&m->data.cat, m->workers.v[w].id, si->dataset,
                        si->index, si->size, si->crc, si->sealed,
                        si->nshards) < 0) {
        qn_warn("master: worker %s holds shard %s/%u with %llu bytes and CRC "
                "%08x, which differs from the other copies; not used",
                m->workers.v[w].id, si->dataset, si->index,
                (unsigned long long)si->size, si->crc);
        return;
    }
    s_journal(m, QN_CHANGE_DATASET_CHANGED, si->dataset);
}

void qn_datasets_unhold(qn_master *m, int w, const char *dataset,
                        uint32_t index)
{
    qn_catalog_unhold(&m->data.cat, m->workers.v[w].id, dataset, index);
    s_journal(m, QN_CHANGE_DATASET_CHANGED, dataset);
}

int qn_datasets_local(void *ctx, int job, unsigned map, int worker)
{
    qn_master *m = ctx;
    if (job < 0 || (size_t)job >= m->jobs.n)
        return QN_LOC_ANY;
    const qn_job *j = &m->jobs.v[job];
    if (!j->splits.splits || map >= j->splits.n)
        return QN_LOC_ANY;
    const qn_split *sp = &j->splits.splits[map];
    int any = 1;
    for (size_t i = 0; i < sp->n; i++) {
        const qn_piece *pc = &sp->pieces[i];
        if (!pc->dataset)
            continue;
        any = 0;
        qn_dataset *d = qn_catalog_get(&m->data.cat, pc->dataset);
        if (worker < 0 || worker >= m->workers.n || !d ||
            !qn_catalog_holds(d, pc->shard, m->workers.v[worker].id))
            return 0;
    }
    return any ? QN_LOC_ANY : 1;
}

/* May a put's shard go to worker w, with n workers chosen already? */
static int s_placeable(qn_master *m, int w, const int *chosen, unsigned n,
                       char *const *avoid, size_t navoid)
{
    const qn_mworker *wk = &m->workers.v[w];
    if (!qn_workers_takes_data(&m->workers, w))
        return 0;
    for (unsigned k = 0; k < n; k++)
        if (chosen[k] == w)
            return 0;
    for (size_t k = 0; k < navoid; k++)
        if (strcmp(avoid[k], wk->id) == 0)
            return 0;
    return 1;
}

/*
 * Among workers holding as many, which goes first: for the first copy the
 * lowest handle; for the others, the worker `stride` places after the
 * first copy's, the stride changing every nw placements, so that a
 * worker's shards have their other copies on many workers and, lost, are
 * copied again from many at once (chained pairs would leave one source).
 */
static int s_place_rank(int w, const int *chosen, unsigned n, int nw,
                        uint64_t seq)
{
    if (n == 0 || nw < 2)
        return w;
    int stride = 1 + (int)((seq / (uint64_t)nw) % (uint64_t)(nw - 1));
    return ((w - chosen[0] - stride) % nw + nw) % nw;
}

unsigned qn_datasets_place(qn_master *m, const qn_dataset *d,
                           char *const *avoid, size_t navoid, int *chosen)
{
    unsigned n = 0;
    uint64_t seq = m->data.place_seq++;
    int nw = m->workers.n;
    while (n < d->replicas && n < QN_DATASETS_MAX_REPLICAS) {
        int best = -1;
        for (int w = 0; w < nw; w++) {
            if (!s_placeable(m, w, chosen, n, avoid, navoid))
                continue;
            unsigned p = m->workers.v[w].placed;
            unsigned bp = best >= 0 ? m->workers.v[best].placed : 0;
            if (best < 0 || p < bp ||
                (p == bp && s_place_rank(w, chosen, n, nw, seq) <
                                s_place_rank(best, chosen, n, nw, seq)))
                best = w;
        }
        if (best < 0)
            break;
        chosen[n++] = best;
        m->workers.v[best].placed++;
    }
    return n;
}

void qn_datasets_put_reply(qn_master *m, const char *route, size_t routelen,
                           const char *error, Quern__DataSource **targets,
                           size_t n)
{
    Quern__PutReply r = QUERN__PUT_REPLY__INIT;
    r.error = (char *)(error ? error : "");
    r.targets = targets;
    r.n_targets = n;
    qn_send(m, route, routelen, QUERN__ENVELOPE__BODY_PUT_REPLY, &r);
}

void qn_datasets_put_wait(qn_master *m, const char *dataset, const char *route,
                          size_t routelen, uint32_t nshards, int64_t now)
{
    QN_GROW(m->data.puts, m->data.cap_puts, m->data.nputs + 1);
    qn_put_wait *pw = &m->data.puts[m->data.nputs++];
    memset(pw, 0, sizeof *pw);
    pw->id = ++m->data.put_seq;
    snprintf(pw->dataset, sizeof pw->dataset, "%s", dataset);
    memcpy(pw->route, route, routelen);
    pw->routelen = routelen;
    pw->nshards = nshards;
    pw->deadline = now + QN_DATASETS_PUT_WAIT_MS;
    qn_dataset *d = qn_catalog_get(&m->data.cat, dataset);
    if (d)
        d->sealing = 1;
    qn_deadline_add(&m->due, pw->deadline, QN_DUE_PUT, pw->id);
    qn_datasets_puts_check(m, now);
}

/*
 * Can put of d with nshards be sealed? 1 yes, 0 not yet, -1 never (why
 * says so).
 */
static int s_put_ready(qn_master *m, qn_dataset *d, uint32_t nshards, char *why,
                       size_t cap)
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

void qn_datasets_puts_check(qn_master *m, int64_t now)
{
    for (size_t i = 0; i < m->data.nputs;) {
        qn_put_wait *pw = &m->data.puts[i];
        qn_dataset *d = qn_catalog_get(&m->data.cat, pw->dataset);
        char why[300] = "", msg[600];
        int r = d ? s_put_ready(m, d, pw->nshards, why, sizeof why) : -1;
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
        m->data.puts[i] = m->data.puts[--m->data.nputs];
    }
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
    unsigned want = qn_datasets_copies_wanted(m, d->replicas);
    uint32_t upto = d->sealed ? d->nshards : d->nslots;
    for (uint32_t i = 0; i < upto; i++) {
        unsigned live = qn_datasets_live_copies(m, d, i);
        if (live < fewest)
            fewest = live;
        di->under_replicated += live < want;
    }
    di->replicas = upto ? fewest : 0;
}

/* Shard k of dataset name (sh) as the only piece of a new split of out. */
static void s_shard_split(qn_splits *out, const char *name, uint32_t k,
                          const qn_cshard *sh)
{
    qn_split *sp = qn_splits_add(out);
    sp->pieces = qn_calloc(1, sizeof *sp->pieces);
    sp->n = sp->cap = 1;
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

int qn_datasets_splits(qn_master *m, const Quern__JobSpec *in, qn_splits *out,
                       char *err, size_t errcap)
{
    for (size_t i = 0; i < in->n_inputs; i++) {
        const char *name = in->inputs[i]->given;
        if (!qn_is_dataset(name))
            continue;
        qn_dataset *d = qn_catalog_get(&m->data.cat, name);
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
            s_shard_split(out, name, k, sh);
        }
    }
    return 0;
}
