/*
 * catalog.c -- see catalog.h.
 */
#include "catalog.h"

#include "util.h"

#include <stdlib.h>
#include <string.h>

static void s_dataset_free(qn_dataset *d)
{
    for (uint32_t i = 0; i < d->nslots; i++) {
        for (size_t k = 0; k < d->shards[i].nholders; k++)
            free(d->shards[i].holders[k]);
        free(d->shards[i].holders);
    }
    free(d->shards);
    free(d->name);
    free(d->writer);
}

void qn_catalog_release(qn_catalog *c)
{
    for (size_t i = 0; i < c->n; i++)
        s_dataset_free(&c->ds[i]);
    free(c->ds);
    c->ds = NULL;
    c->n = c->cap = 0;
}

qn_dataset *qn_catalog_get(qn_catalog *c, const char *name)
{
    for (size_t i = 0; i < c->n; i++)
        if (strcmp(c->ds[i].name, name) == 0)
            return &c->ds[i];
    return NULL;
}

static qn_dataset *s_add(qn_catalog *c, const char *name)
{
    QN_GROW(c->ds, c->cap, c->n + 1);
    qn_dataset *d = &c->ds[c->n++];
    memset(d, 0, sizeof *d);
    d->name = qn_strdup(name);
    d->replicas = 1;
    return d;
}

qn_dataset *qn_catalog_create(qn_catalog *c, const char *name,
                              const char *writer, unsigned replicas)
{
    if (qn_catalog_get(c, name))
        return NULL;
    qn_dataset *d = s_add(c, name);
    d->writer = writer ? qn_strdup(writer) : NULL;
    d->replicas = replicas ? replicas : 1;
    return d;
}

void qn_catalog_remove(qn_catalog *c, const char *name)
{
    for (size_t i = 0; i < c->n; i++) {
        if (strcmp(c->ds[i].name, name) == 0) {
            s_dataset_free(&c->ds[i]);
            memmove(&c->ds[i], &c->ds[i + 1], (c->n - i - 1) * sizeof *c->ds);
            c->n--;
            return;
        }
    }
}

int qn_catalog_hold(qn_catalog *c, const char *worker, const char *dataset,
                    uint32_t index, uint64_t size, uint32_t crc, int sealed,
                    uint32_t nshards)
{
    if (index >= QN_SHARDS_MAX ||
        (sealed && (nshards > QN_SHARDS_MAX || nshards <= index)))
        return -1; /* wire.c refuses these; never grow the table for one */
    qn_dataset *d = qn_catalog_get(c, dataset);
    if (!d)
        d = s_add(c, dataset);
    if (index >= d->nslots) {
        uint32_t n = index + 1;
        QN_GROW(d->shards, d->cap_slots, n);
        memset(d->shards + d->nslots, 0, (n - d->nslots) * sizeof *d->shards);
        d->nslots = n;
    }
    qn_cshard *sh = &d->shards[index];
    if (sh->known && (sh->size != size || sh->crc != crc))
        return -1;
    sh->known = 1;
    sh->size = size;
    sh->crc = crc;
    if (sealed && !d->sealed && nshards > index) {
        d->sealed = 1;
        d->nshards = nshards;
    }
    if (!qn_catalog_holds(d, index, worker)) {
        QN_GROW(sh->holders, sh->cap_holders, sh->nholders + 1);
        sh->holders[sh->nholders++] = qn_strdup(worker);
    }
    return 0;
}

static void s_unhold(qn_cshard *sh, const char *worker)
{
    qn_strv_remove(sh->holders, &sh->nholders, worker);
    /* With no copy left, the shard's size and CRC are no longer known. */
    if (sh->nholders == 0)
        sh->known = 0;
}

void qn_catalog_unhold(qn_catalog *c, const char *worker, const char *dataset,
                       uint32_t index)
{
    qn_dataset *d = qn_catalog_get(c, dataset);
    if (d && index < d->nslots)
        s_unhold(&d->shards[index], worker);
}

void qn_catalog_forget_worker(qn_catalog *c, const char *worker)
{
    for (size_t i = 0; i < c->n; i++)
        for (uint32_t k = 0; k < c->ds[i].nslots; k++)
            s_unhold(&c->ds[i].shards[k], worker);
}

int qn_catalog_holds(const qn_dataset *d, uint32_t index, const char *worker)
{
    if (index >= d->nslots)
        return 0;
    const qn_cshard *sh = &d->shards[index];
    for (size_t k = 0; k < sh->nholders; k++)
        if (strcmp(sh->holders[k], worker) == 0)
            return 1;
    return 0;
}

const qn_cshard *qn_catalog_shard(const qn_dataset *d, uint32_t index)
{
    if (index >= d->nslots || !d->shards[index].known)
        return NULL;
    return &d->shards[index];
}

uint64_t qn_catalog_bytes(const qn_dataset *d)
{
    uint64_t n = 0;
    for (uint32_t i = 0; i < d->nslots; i++)
        if (d->shards[i].known)
            n += d->shards[i].size;
    return n;
}

void qn_catalog_held(const qn_catalog *c, const char *worker, uint32_t *n,
                     uint64_t *bytes)
{
    *n = 0;
    *bytes = 0;
    for (size_t d = 0; d < c->n; d++) {
        const qn_dataset *ds = &c->ds[d];
        for (uint32_t k = 0; k < ds->nslots; k++) {
            if (qn_catalog_holds(ds, k, worker)) {
                (*n)++;
                *bytes += ds->shards[k].size;
            }
        }
    }
}
