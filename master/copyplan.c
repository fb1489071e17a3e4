/*
 * copyplan.c -- see copyplan.h.
 */
#include "copyplan.h"

#include "util.h"

#include <stdlib.h>
#include <string.h>

#define PUT_WRITER "put" /* a dataset being put (datasets.c's writer) */

/* A shard that needs copies, before they are placed. */
typedef struct s_need {
    const qn_dataset *d;
    uint32_t index;
    unsigned good; /* good copies now, and copies under way */
    unsigned more; /* copies to make */
} s_need;

/* The worker with this id, or -1. Workers are few next to shards; a
 * linear look is enough for hundreds of them. */
static int s_find(const qn_cp_worker *w, size_t nw, const char *id)
{
    for (size_t i = 0; i < nw; i++)
        if (strcmp(w[i].id, id) == 0)
            return (int)i;
    return -1;
}

static int s_takes(const qn_cp_worker *w)
{
    return w->alive && !w->draining;
}

/* Distinct known hosts among workers able to take a copy (0: some host
 * is unknown, so hosts say nothing). */
static unsigned s_hosts(const qn_cp_worker *w, size_t nw)
{
    unsigned n = 0;
    for (size_t i = 0; i < nw; i++) {
        if (!s_takes(&w[i]))
            continue;
        if (!w[i].host[0])
            return 0;
        int seen = 0;
        for (size_t k = 0; k < i && !seen; k++)
            seen = s_takes(&w[k]) && strcmp(w[k].host, w[i].host) == 0;
        n += !seen;
    }
    return n;
}

unsigned qn_copyplan_wanted(const qn_dataset *d, unsigned takers)
{
    unsigned want = d->replicas < takers ? d->replicas : takers;
    return want ? want : 1;
}

/* Copies under way of shard index of dataset. */
static unsigned s_busy(const qn_cp_copy *busy, size_t nbusy,
                       const char *dataset, uint32_t index)
{
    unsigned n = 0;
    for (size_t i = 0; i < nbusy; i++)
        n += busy[i].index == index && strcmp(busy[i].dataset, dataset) == 0;
    return n;
}

/* Is worker t listed in v[n] for shard index of dataset? */
static int s_listed(const qn_cp_copy *v, size_t n, const char *dataset,
                    uint32_t index, int t)
{
    for (size_t i = 0; i < n; i++)
        if (v[i].target == t && v[i].index == index &&
            strcmp(v[i].dataset, dataset) == 0)
            return 1;
    return 0;
}

/* Is a dataset's shards' health the planner's business? Sealed ones and
 * ones being put; a job's output is copied by the job's commit. */
static int s_tended(const qn_dataset *d, int *putting)
{
    *putting = d->writer && strcmp(d->writer, PUT_WRITER) == 0;
    return *putting || (d->sealed && !d->writer);
}

/* Fewer good copies first, then by dataset and index. */
static int s_need_cmp(const void *a, const void *b)
{
    const s_need *x = a, *y = b;
    if (x->good != y->good)
        return x->good < y->good ? -1 : 1;
    int c = strcmp(x->d->name, y->d->name);
    if (c)
        return c;
    return x->index < y->index ? -1 : x->index > y->index;
}

typedef struct s_plan {
    const qn_catalog *c;
    qn_cp_worker *w;
    size_t nw;
    const qn_cp_copy *busy, *failed;
    size_t nbusy, nfailed;
    const qn_cp_params *p;
    unsigned takers, hosts;
    qn_cp_order *out;
    size_t nout, cap;
    s_need *need;
    size_t nneed, cap_need;
    qn_cp_health h;
} s_plan;

static void s_order(s_plan *pl, const qn_dataset *d, uint32_t index,
                    uint64_t size, int source, int target, int drop)
{
    QN_GROW(pl->out, pl->cap, pl->nout + 1);
    pl->out[pl->nout++] = (qn_cp_order){.dataset = d->name,
                                        .index = index,
                                        .size = size,
                                        .source = source,
                                        .target = target,
                                        .drop = drop};
}

/* Look at shard i of d: count it in the health, note the copies it needs,
 * and order the drop of a surplus or draining copy. */
static void s_shard(s_plan *pl, const qn_dataset *d, uint32_t i, int putting)
{
    const qn_cshard *sh = qn_catalog_shard(d, i);
    unsigned want = qn_copyplan_wanted(d, pl->takers);
    if (!sh) {
        pl->h.under++;
        pl->h.lost++;
        return;
    }
    unsigned good = 0, live = 0, waited = 0, gone = 0;
    unsigned dropping = 0, draining = 0;
    for (size_t k = 0; k < sh->nholders; k++) {
        int x = s_find(pl->w, pl->nw, sh->holders[k]);
        if (x >= 0 &&
            s_listed(pl->p->dropping, pl->p->ndropping, d->name, i, x)) {
            dropping++;
            continue;
        }
        if (x >= 0 && pl->w[x].alive) {
            live++;
            good += !pl->w[x].draining;
            draining += pl->w[x].draining;
        } else if (putting) {
            gone++;
        } else {
            /* A holder gone a short while may come back with its copy;
             * one this master never saw may yet say hello. */
            int64_t since = x >= 0 ? pl->w[x].gone_since : pl->p->now;
            int64_t until = since + pl->p->timeout_ms;
            if (pl->p->now < until) {
                waited++;
                if (until < pl->h.next)
                    pl->h.next = until;
            }
        }
    }
    if (live == 0)
        pl->h.lost++;
    /* A put's shard is short while its copies are written: not news
     * until a holder is gone or the put is written. */
    if (good < want && (!putting || gone || d->sealing))
        pl->h.under++;
    unsigned busy = s_busy(pl->busy, pl->nbusy, d->name, i);
    /* A draining worker's copies are moved even then: it is alive and
     * leaving, and at worst a copy an unheard worker still has becomes a
     * surplus, dropped later. */
    if (!putting && !draining && pl->p->now < pl->p->quiet_until) {
        if (pl->p->quiet_until < pl->h.next)
            pl->h.next = pl->p->quiet_until;
        return;
    }
    /* A put's shard is short while its copies are being written; it is
     * made up once a holder is gone or the put asks to be sealed. */
    if (putting && !gone && !d->sealing)
        return;
    if (live > 0 && good + busy + waited < want) {
        QN_GROW(pl->need, pl->cap_need, pl->nneed + 1);
        pl->need[pl->nneed++] = (s_need){.d = d,
                                         .index = i,
                                         .good = good + busy,
                                         .more = want - good - busy - waited};
        return;
    }
    if (putting || busy || dropping)
        return;
    /* Surplus: a draining worker's copy once `replicas` good ones exist
     * elsewhere (with fewer workers left, it keeps its copy: should it
     * come back, the copy counts again), else a good copy beyond
     * replicas from the fullest holder. One drop per
     * shard per run: the holder's report confirms it before the next. */
    int worst = -1;
    for (size_t k = 0; k < sh->nholders; k++) {
        int x = s_find(pl->w, pl->nw, sh->holders[k]);
        if (x < 0 || !pl->w[x].alive || pl->w[x].keeps ||
            s_listed(pl->p->dropping, pl->p->ndropping, d->name, i, x))
            continue;
        int drain = pl->w[x].draining;
        if (drain ? good < d->replicas : good <= d->replicas)
            continue;
        int wd = worst >= 0 && pl->w[worst].draining;
        if (worst < 0 || (drain && !wd) ||
            (drain == wd && pl->w[x].bytes > pl->w[worst].bytes))
            worst = x;
    }
    if (worst >= 0) {
        s_order(pl, d, i, sh->size, -1, worst, 1);
        pl->w[worst].bytes -=
            pl->w[worst].bytes >= sh->size ? sh->size : pl->w[worst].bytes;
    }
}

/* A live holder of shard i of d with room for one more copy, the least
 * busy first (draining ones too: they are often the only source). */
static int s_source(s_plan *pl, const qn_dataset *d, uint32_t i,
                    const qn_cshard *sh)
{
    int best = -1;
    for (size_t k = 0; k < sh->nholders; k++) {
        int x = s_find(pl->w, pl->nw, sh->holders[k]);
        if (x < 0 || !pl->w[x].alive ||
            pl->w[x].inflight >= pl->p->per_worker ||
            s_listed(pl->p->dropping, pl->p->ndropping, d->name, i, x))
            continue;
        if (best < 0 || pl->w[x].inflight < pl->w[best].inflight)
            best = x;
    }
    return best;
}

/* Does a good copy of shard i of d sit, or go, on host? (A draining
 * worker's is leaving.) */
static int s_host_used(s_plan *pl, const qn_dataset *d, uint32_t i,
                       const qn_cshard *sh, const char *host)
{
    for (size_t k = 0; k < sh->nholders; k++) {
        int x = s_find(pl->w, pl->nw, sh->holders[k]);
        if (x >= 0 && s_takes(&pl->w[x]) && strcmp(pl->w[x].host, host) == 0)
            return 1;
    }
    for (size_t k = 0; k < pl->nbusy; k++)
        if (pl->busy[k].index == i &&
            strcmp(pl->busy[k].dataset, d->name) == 0 &&
            strcmp(pl->w[pl->busy[k].target].host, host) == 0)
            return 1;
    for (size_t k = 0; k < pl->nout; k++)
        if (!pl->out[k].drop && pl->out[k].index == i &&
            pl->out[k].dataset == d->name &&
            strcmp(pl->w[pl->out[k].target].host, host) == 0)
            return 1;
    return 0;
}

/* The worker to take a new copy of shard i of d: able to, without one,
 * not busy copying it nor failed at it, with room, on a host without a
 * copy while hosts allow, holding the fewest bytes. */
static int s_target(s_plan *pl, const qn_dataset *d, uint32_t i,
                    const qn_cshard *sh, unsigned want)
{
    int best = -1;
    for (size_t x = 0; x < pl->nw; x++) {
        const qn_cp_worker *t = &pl->w[x];
        if (!s_takes(t) || t->inflight >= pl->p->per_worker ||
            qn_catalog_holds(d, i, t->id) ||
            s_listed(pl->busy, pl->nbusy, d->name, i, (int)x) ||
            s_listed(pl->failed, pl->nfailed, d->name, i, (int)x))
            continue;
        int dup = 0;
        for (size_t k = 0; k < pl->nout && !dup; k++)
            dup = !pl->out[k].drop && pl->out[k].target == (int)x &&
                  pl->out[k].index == i && pl->out[k].dataset == d->name;
        if (dup)
            continue;
        if (pl->hosts >= want && s_host_used(pl, d, i, sh, t->host))
            continue;
        if (best < 0 || t->bytes < pl->w[best].bytes)
            best = (int)x;
    }
    return best;
}

size_t qn_copyplan_run(const qn_catalog *c, qn_cp_worker *w, size_t nw,
                       const qn_cp_copy *busy, size_t nbusy,
                       const qn_cp_copy *failed, size_t nfailed,
                       const qn_cp_params *p, qn_cp_order **out,
                       qn_cp_health *health)
{
    s_plan pl = {.c = c,
                 .w = w,
                 .nw = nw,
                 .busy = busy,
                 .nbusy = nbusy,
                 .failed = failed,
                 .nfailed = nfailed,
                 .p = p,
                 .h = {.next = INT64_MAX}};
    for (size_t x = 0; x < nw; x++)
        pl.takers += s_takes(&w[x]);
    pl.hosts = s_hosts(w, nw);
    for (size_t k = 0; k < c->n; k++) {
        const qn_dataset *d = &c->ds[k];
        int putting;
        if (!s_tended(d, &putting))
            continue;
        uint32_t upto = d->sealed ? d->nshards : d->nslots;
        for (uint32_t i = 0; i < upto; i++)
            s_shard(&pl, d, i, putting);
    }
    if (pl.nneed > 1)
        qsort(pl.need, pl.nneed, sizeof *pl.need, s_need_cmp);
    for (size_t k = 0; k < pl.nneed; k++) {
        const s_need *n = &pl.need[k];
        const qn_cshard *sh = qn_catalog_shard(n->d, n->index);
        unsigned want = qn_copyplan_wanted(n->d, pl.takers);
        for (unsigned m = 0; m < n->more; m++) {
            int src = s_source(&pl, n->d, n->index, sh);
            int dst = src >= 0 ? s_target(&pl, n->d, n->index, sh, want) : -1;
            if (dst < 0)
                break;
            s_order(&pl, n->d, n->index, sh->size, src, dst, 0);
            w[src].inflight++;
            w[dst].inflight++;
            w[dst].bytes += sh->size;
        }
    }
    free(pl.need);
    if (health)
        *health = pl.h;
    *out = pl.out;
    return pl.nout;
}
