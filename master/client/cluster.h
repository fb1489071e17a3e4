/*
 * cluster.h -- the embedded local cluster of `quern run`: one master and N
 * workers on loopback with free ports, their logs and work dirs in a
 * private folder, all stopped by pid when the run ends.
 */
#ifndef QN_CLUSTER_H
#define QN_CLUSTER_H

#include <stddef.h>

typedef struct qn_cluster qn_cluster;

/*
 * Start a master and workers (each with slots slots, task processes
 * capped at task_mem_mb MiB resident when not 0), waiting until the
 * master listens. The master serves its status page on http (HOST:PORT;
 * NULL: a free port on 127.0.0.1; "off": none). sigfd is the caller's signalfd
 * (qn_signals_open), read here only to learn of children exiting. NULL with err
 * on failure.
 */
qn_cluster *qn_cluster_start(unsigned workers, unsigned slots,
                             unsigned task_mem_mb, const char *log_level,
                             const char *http, int sigfd, char *err,
                             size_t errcap);

/* The master's endpoint. */
const char *qn_cluster_endpoint(const qn_cluster *c);

/* The master's status page URL, or "" if it serves none. */
const char *qn_cluster_http_url(const qn_cluster *c);

/* The folder holding the daemons' logs and work dirs. */
const char *qn_cluster_dir(const qn_cluster *c);

/*
 * Reap daemons that exited. Returns 0 while all run, or -1 with a message
 * in err naming the one that stopped and where its log is.
 */
int qn_cluster_check(qn_cluster *c, char *err, size_t errcap);

/*
 * Stop every daemon (SIGTERM, then SIGKILL after a grace period) and wait
 * for each. Removes the folder unless keep is set. Clears *self_p.
 */
void qn_cluster_stop(qn_cluster **self_p, int keep);

#endif
