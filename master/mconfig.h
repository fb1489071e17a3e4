/*
 * mconfig.h -- what the master daemon is started with (quern-master's
 * options), shared by its public header and its state.
 */
#ifndef QN_MCONFIG_H
#define QN_MCONFIG_H

typedef struct qn_master_config {
    const char *listen;        /* endpoint to bind, e.g. tcp://127.0.0.1:7070 */
    int heartbeat_ms;          /* how often workers heartbeat */
    int dead_ms;               /* silence after which a worker is dead */
    int task_timeout_ms;       /* an attempt without progress this long fails */
    int ready_fd;              /* if >= 0: the bound endpoint is written here */
    int locality_wait_ms;      /* a map waits this long for a free holder */
    int shard_wait_ms;         /* ... and this long for any live holder */
    const char *curve_secret;  /* our key file: CURVE on every socket */
    const char *curve_trusted; /* dir of public keys allowed to connect */
    const char *http;          /* status page address HOST:PORT; NULL or
                                  "off": none */
    const char *state_dir;     /* keep state here (NULL: in memory only) */
    unsigned keep_jobs;        /* finished jobs kept in the state dir */
    int recovery_ms;           /* after a restart, wait this long for
                                  workers before starting work anew */
    int replica_timeout_ms;    /* a shard's holder gone this long: its copy
                                  is made again elsewhere */
    unsigned replica_copies;   /* copies in flight per worker, at most */
} qn_master_config;

#endif
