/*
 * plugins.c -- see plugins.h.
 */
#include "plugins.h"

#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Forget the least recently used plugin busy does not claim, if any. */
static void s_evict(qn_plugins *p, qn_plugin_busy_fn busy, void *ctx)
{
    size_t victim = SIZE_MAX;
    for (size_t i = 0; i < p->n; i++) {
        if (busy && busy(ctx, p->v[i].hash))
            continue;
        if (victim == SIZE_MAX || p->v[i].used < p->v[victim].used)
            victim = i;
    }
    if (victim != SIZE_MAX) {
        free(p->v[victim].data);
        p->v[victim] = p->v[--p->n];
    }
}

void qn_plugins_keep(qn_plugins *p, const uint8_t *data, size_t len,
                     int64_t now, char hex[QN_SHA256_HEX],
                     qn_plugin_busy_fn busy, void *ctx)
{
    uint8_t d[QN_SHA256_SIZE];
    qn_sha256(data, len, d);
    qn_sha256_hex(d, hex);
    if (qn_plugins_get(p, hex, now))
        return;
    if (p->n >= QN_PLUGINS_KEPT)
        s_evict(p, busy, ctx);
    QN_GROW(p->v, p->cap, p->n + 1);
    qn_plugin *e = &p->v[p->n++];
    snprintf(e->hash, sizeof e->hash, "%s", hex);
    e->data = qn_malloc(len ? len : 1);
    memcpy(e->data, data, len);
    e->len = len;
    e->used = now;
}

const qn_plugin *qn_plugins_get(qn_plugins *p, const char *hash, int64_t now)
{
    for (size_t i = 0; i < p->n; i++) {
        if (strcmp(p->v[i].hash, hash) == 0) {
            p->v[i].used = now;
            return &p->v[i];
        }
    }
    return NULL;
}

void qn_plugins_release(qn_plugins *p)
{
    for (size_t i = 0; i < p->n; i++)
        free(p->v[i].data);
    free(p->v);
    *p = (qn_plugins){0};
}
