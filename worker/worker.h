/*
 * worker.h -- the worker daemon: registers with the master, heartbeats,
 * runs each task attempt in its own quern-task process, and serves its map
 * outputs to reducers.
 */
#ifndef QN_WORKER_H
#define QN_WORKER_H

#include <stddef.h>

typedef struct qn_worker_config {
    const char *master;        /* master endpoint */
    unsigned slots;            /* task processes at once */
    const char *work_dir;      /* NULL: a private temp dir removed at exit */
    const char *data_dir;      /* dataset shards; NULL: keeps no datasets */
    const char *shuffle;       /* endpoint to serve map output and shards on */
    const char *task_bin;      /* quern-task; NULL: ../libexec next to us */
    unsigned task_mem_mb;      /* resident memory cap per task (0: none) */
    const char *curve_secret;  /* our key file: CURVE on every socket */
    const char *curve_trusted; /* dir of public keys allowed to connect */
    const char *curve_master;  /* the master's public key file */
} qn_worker_config;

typedef struct qn_worker qn_worker;

/* Set up sockets and directories. NULL with a message in err on failure. */
qn_worker *qn_worker_new(const qn_worker_config *cfg, char *err, size_t errcap);

/* Run until SIGTERM or SIGINT. Returns 0, or 1 on a fatal error. */
int qn_worker_run(qn_worker *w);

/* Kill running attempts, close everything; accepts NULL. */
void qn_worker_destroy(qn_worker **self_p);

#endif
