/*
 * worker.h -- the worker daemon: registers with the master, heartbeats,
 * runs each task attempt in its own quern-task process, and serves its map
 * outputs to reducers.
 */
#ifndef QN_WORKER_H
#define QN_WORKER_H

#include <stddef.h>

typedef struct qn_worker_config {
    const char *master;   /* master endpoint */
    unsigned slots;       /* task processes at once */
    const char *work_dir; /* NULL: a private temp dir removed at exit */
    const char *data_dir; /* dataset shards (not used yet) */
    const char *shuffle;  /* endpoint to serve map output on */
    const char *task_bin; /* quern-task; NULL: ../libexec next to us */
} qn_worker_config;

typedef struct qn_worker qn_worker;

/* Set up sockets and directories. NULL with a message in err on failure. */
qn_worker *qn_worker_new(const qn_worker_config *cfg, char *err, size_t errcap);

/* Run until SIGTERM or SIGINT. Returns 0, or 1 on a fatal error. */
int qn_worker_run(qn_worker *w);

/* Kill running attempts, close everything; accepts NULL. */
void qn_worker_destroy(qn_worker **self_p);

#endif
