/*
 * plugins.h -- job plugins sent by clients, kept by content hash for workers
 */
#ifndef QN_MPLUGINS_H
#define QN_MPLUGINS_H

#include "mstate.h"

/* Keep a plugin's bytes by hash (once); its hash into hex. */
void qn_plugins_keep(qn_master *m, const uint8_t *data, size_t len, int64_t now,
                     char hex[QN_SHA256_HEX]);

#endif
