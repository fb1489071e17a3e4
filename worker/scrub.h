/*
 * scrub.h -- re-reading the dataset shards a worker holds, in the
 * background and at a low rate, to find a copy that went bad on disk
 * before a map reads it. Shards are read round after round, a chunk per
 * step, each step due when the rate allows; a shard read to its end has
 * its CRC-32 compared with its description. A damaged copy is dropped from
 * the store as damaged (store.h), so the next report tells the master,
 * which has a good copy made elsewhere. A shard a map failed on is read
 * next, ahead of the round.
 *
 * No clock of its own: times come in as arguments.
 */
#ifndef QN_SCRUB_H
#define QN_SCRUB_H

#include <stddef.h>
#include <stdint.h>

struct qn_store;
typedef struct qn_scrub qn_scrub;

#define QN_SCRUB_CHUNK (1024 * 1024) /* bytes read per step */

/* A scrubber of store's shards reading bytes_per_s (0: it never reads). */
qn_scrub *qn_scrub_new(struct qn_store *store, uint64_t bytes_per_s);

/* Close it; accepts NULL, clears the pointer. */
void qn_scrub_destroy(qn_scrub **self_p);

/* When the next step is due (INT64_MAX: never). */
int64_t qn_scrub_due(const qn_scrub *s);

/*
 * Take the step due at now, if any: read the next chunk, and when a shard
 * is read to its end, check it. Returns 1 if it found a damaged copy (and
 * dropped it; why says how it differs), else 0.
 */
int qn_scrub_step(qn_scrub *s, int64_t now, char *why, size_t cap);

/* Read shard index of dataset next, ahead of the round, at once. */
void qn_scrub_soon(qn_scrub *s, const char *dataset, uint32_t index,
                   int64_t now);

/* Bytes read and damaged copies found so far. */
uint64_t qn_scrub_bytes(const qn_scrub *s);
uint64_t qn_scrub_damaged(const qn_scrub *s);

#endif
