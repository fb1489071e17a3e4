/*
 * plugins.h -- job plugins and the files shipped with jobs (--file), sent
 * by clients: blobs kept by the SHA-256 of their bytes for the workers
 * that run the jobs to fetch (PluginRequest). A plugin and a file are
 * alike here; the job's spec says which is which.
 *
 * At most QN_PLUGINS_KEPT are kept past the ones running jobs need; past
 * that, the least recently used of the others is forgotten.
 */
#ifndef QN_PLUGINS_H
#define QN_PLUGINS_H

#include "sha256.h"

#include <stddef.h>
#include <stdint.h>

#define QN_PLUGINS_KEPT 16 /* blobs kept when no running job uses them */

typedef struct qn_plugin {
    char hash[QN_SHA256_HEX];
    uint8_t *data;
    size_t len;
    int64_t used; /* when it was last kept or fetched */
} qn_plugin;

typedef struct qn_plugins {
    qn_plugin *v;
    size_t n, cap;
} qn_plugins;

/* Is the blob with this hash needed (by a running job)? */
typedef int (*qn_plugin_busy_fn)(void *ctx, const char *hash);

/*
 * Keep a copy of len bytes at data (once per content), used at now; its
 * hash, as hex, into hex. Past the limit, the least recently used plugin
 * that busy (may be NULL) does not claim is forgotten first.
 */
void qn_plugins_keep(qn_plugins *p, const uint8_t *data, size_t len,
                     int64_t now, char hex[QN_SHA256_HEX],
                     qn_plugin_busy_fn busy, void *ctx);

/* The plugin with this hash, marked used at now, or NULL. */
const qn_plugin *qn_plugins_get(qn_plugins *p, const char *hash, int64_t now);

/* Free every plugin. */
void qn_plugins_release(qn_plugins *p);

#endif
