/*
 * shuffle.h -- the worker's shuffle server: serves byte ranges of its map
 * outputs' partitions to reducers, only as much as each request asks for.
 */
#ifndef QN_SHUFFLE_H
#define QN_SHUFFLE_H

#include <stddef.h>
#include <stdint.h>

typedef struct qn_shuffle qn_shuffle;

struct qn_curve;

/*
 * Bind a ROUTER socket on endpoint (e.g. tcp://127.0.0.1:*) in ZeroMQ
 * context ctx, serving map outputs under work_dir; with curve (not NULL,
 * with a key), as a CURVE server. NULL with a message in err on failure.
 */
qn_shuffle *qn_shuffle_new(void *ctx, const char *endpoint,
                           const char *work_dir, const struct qn_curve *curve,
                           char *err, size_t errcap);

/* Close the socket and cached files; accepts NULL, clears the pointer. */
void qn_shuffle_destroy(qn_shuffle **self_p);

/* The socket, for the owner's poll loop. */
void *qn_shuffle_socket(qn_shuffle *s);

/* The endpoint reducers connect to (with the real port). */
const char *qn_shuffle_endpoint(const qn_shuffle *s);

struct qn_store;
/*
 * Serve and accept dataset shards of store too (ShardRead, ShardWrite);
 * NULL: this worker keeps no datasets.
 */
void qn_shuffle_set_store(qn_shuffle *s, struct qn_store *store);

/* Answer every request waiting on the socket. */
void qn_shuffle_handle(qn_shuffle *s);

/* Close cached files of a job (NULL: of every job) being deleted. */
void qn_shuffle_forget_job(qn_shuffle *s, const char *job_id);

/* Totals for logs and status. */
typedef struct qn_shuffle_stats {
    uint64_t requests;
    uint64_t bytes_sent;
    uint64_t dropped;              /* malformed or refused requests */
    uint64_t shard_bytes_sent;     /* dataset bytes read by others */
    uint64_t shard_bytes_received; /* dataset bytes written to us */
} qn_shuffle_stats;

qn_shuffle_stats qn_shuffle_get_stats(const qn_shuffle *s);

#endif
