/*
 * wconfig.h -- what the worker daemon is told on its command line, and
 * its handle: all that worker.h (for quern-worker's main) and wstate.h
 * (for the daemon's modules) both need.
 */
#ifndef QN_WCONFIG_H
#define QN_WCONFIG_H

#include <stdint.h>

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
    int master_grace_ms;       /* with the master away this long, attempts
                                  are killed and map outputs dropped */
    uint64_t scrub_rate;       /* bytes a second of shards re-read (0: none) */
    int stop_timeout_ms;       /* SIGTERM: drained by then, or stop anyway */
    int sandbox;               /* --sandbox: qn_sandbox_mode (sandbox.h) */
    const char *task_user;     /* run tasks as (root only; NULL: nobody) */
} qn_worker_config;

typedef struct qn_worker qn_worker;

#endif
