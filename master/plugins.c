/*
 * plugins.c -- see plugins.h.
 */
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

/* Keep a plugin's bytes by hash (once); its hash into hex. */
void qn_plugins_keep(qn_master *m, const uint8_t *data, size_t len, int64_t now,
                     char hex[QN_SHA256_HEX])
{
    uint8_t d[QN_SHA256_SIZE];
    qn_sha256(data, len, d);
    qn_sha256_hex(d, hex);
    for (size_t i = 0; i < m->nplugins; i++) {
        if (strcmp(m->plugins[i].hash, hex) == 0) {
            m->plugins[i].used = now;
            return;
        }
    }
    /* Past the limit, forget the least recently used plugin no running
     * job needs. */
    if (m->nplugins >= PLUGINS_KEPT) {
        size_t victim = SIZE_MAX;
        for (size_t i = 0; i < m->nplugins; i++) {
            int busy = 0;
            for (int j = 0; j < m->njobs; j++)
                busy |= m->jobs[j].state == QUERN__JOB_STATE__JOB_RUNNING &&
                        strcmp(m->jobs[j].plugin_hash, m->plugins[i].hash) == 0;
            if (!busy && (victim == SIZE_MAX ||
                          m->plugins[i].used < m->plugins[victim].used))
                victim = i;
        }
        if (victim != SIZE_MAX) {
            free(m->plugins[victim].data);
            m->plugins[victim] = m->plugins[--m->nplugins];
        }
    }
    m->plugins = qn_realloc(m->plugins, (m->nplugins + 1) * sizeof *m->plugins);
    qn_plugin *p = &m->plugins[m->nplugins++];
    snprintf(p->hash, sizeof p->hash, "%s", hex);
    p->data = qn_malloc(len ? len : 1);
    memcpy(p->data, data, len);
    p->len = len;
    p->used = now;
}
