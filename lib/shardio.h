/*
 * shardio.h -- reading dataset shards from the workers that hold them.
 *
 * A reader keeps a few ShardRead requests outstanding on one connection
 * (that is the flow control: a server sends only what was asked for),
 * writes the bytes in order, and checks the shard's size and CRC-32 at the
 * end. When a holder errs or goes quiet, the next one carries on from the
 * same offset. Used by task processes (a map reading a shard it has no
 * copy of, a copy between workers) and by `quern cat` / `quern get`.
 */
#ifndef QN_SHARDIO_H
#define QN_SHARDIO_H

#include <stddef.h>
#include <stdint.h>

struct qn_curve;

/* A worker holding a shard. */
typedef struct qn_source {
    const char *endpoint;     /* its data server */
    const char *worker_id;    /* for messages */
    const char *curve_public; /* its CURVE key (Z85), or "" */
} qn_source;

/* What a read is after. */
typedef struct qn_shard_want {
    const char *dataset;
    uint32_t index;
    uint64_t size; /* expected bytes */
    uint32_t crc;  /* expected CRC-32 */
} qn_shard_want;

/*
 * Read a shard from the first of n sources that serves it, writing it to
 * fd in order. A source silent for stall_ms is given up for the next.
 * curve (NULL or without a key: plain sockets) authenticates us to the
 * servers. Returns 0, or -1 with err naming the shard and every source's
 * failure. *got (if not NULL) receives the bytes written.
 */
int qn_shard_pull(void *zmq_ctx, const struct qn_curve *curve,
                  const qn_source *src, size_t n, const qn_shard_want *want,
                  int fd, int stall_ms, uint64_t *got, char *err,
                  size_t errcap);

#endif
