/*
 * worker.h -- the worker daemon: registers with the master, heartbeats,
 * runs each task attempt in its own quern-task process, and serves its map
 * outputs to reducers.
 */
#ifndef QN_WORKER_H
#define QN_WORKER_H

#include <stddef.h>

#include "wconfig.h"

/* Set up sockets and directories. NULL with a message in err on failure. */
qn_worker *qn_worker_new(const qn_worker_config *cfg, char *err, size_t errcap);

/* Run until SIGTERM or SIGINT. Returns 0, or 1 on a fatal error. */
int qn_worker_run(qn_worker *w);

/* Kill running attempts, close everything; accepts NULL. */
void qn_worker_destroy(qn_worker **self_p);

#endif
