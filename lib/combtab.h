/*
 * combtab.h -- the map side's combining hash table.
 *
 * A job with a combiner does not need its map output sorted record by
 * record: equal keys can be gathered as they are emitted and combined
 * while they are still in memory. The table holds one entry per distinct
 * (partition, key) with that key's values in a block of its own; when a
 * block fills, the job's combiner runs over it and its output replaces the
 * values, so a key emitted a million times costs a few hundred bytes, not
 * a million records. Only when the table is full (or the map ends) are its
 * entries, not its records, sorted and written.
 *
 * Like the sort buffer, the table is one block of memory allocated up
 * front (--sort-mb): an open-addressing index takes an eighth of it,
 * entries and value blocks fill the rest. Memory use never depends on the
 * size of the input.
 *
 * Values in a block are framed as a 4-byte length (host order) and the
 * bytes; a frame whose length has QN_COMBTAB_REPEAT set is followed by a
 * 4-byte count and stands for that many copies of its value. An entry
 * also keeps the run of its latest value (up to 8 bytes) in itself, with
 * a count, so a key emitted with the same value over and over (a word
 * count's "1") touches only its entry, not its block, and no combiner runs
 * until the entry is read. qn_combtab_iter walks the block, then the run.
 */
#ifndef QN_COMBTAB_H
#define QN_COMBTAB_H

#include <stddef.h>
#include <stdint.h>

#include "ifile.h"
#include "util.h"

typedef struct qn_combtab qn_combtab;

#define QN_COMBTAB_REPEAT 0x80000000u /* in a frame's length: repeated */

/* One key's values: framed values in a block, then reps copies of run. */
typedef struct {
    const char *vals; /* the block */
    size_t vbytes;
    const void *run; /* the latest value, repeated */
    size_t runlen, reps;
    size_t nvals; /* values in all */
} qn_combtab_vals;

/* Walks a qn_combtab_vals: set it up with qn_combtab_iter_init. */
typedef struct {
    qn_combtab_vals v;
    size_t pos;      /* the next frame in the block */
    const char *cur; /* the current repeated frame's value */
    size_t curlen, left;
} qn_combtab_iter;

void qn_combtab_iter_init(qn_combtab_iter *it, const qn_combtab_vals *v);

/* The next value: 1, or 0 at the end (or at a frame that overruns the
 * block, which ends the block's values). */
int qn_combtab_iter_next(qn_combtab_iter *it, const void **val, size_t *vlen);

/*
 * Combine one key's values (vals->nvals of them); append the combined
 * values, framed with qn_combtab_frame, to out. Returns 0 or <0 to stop
 * (the add that called it returns that).
 */
typedef int (*qn_combtab_fn)(void *ctx, unsigned part, const void *key,
                             size_t klen, const qn_combtab_vals *vals,
                             qn_buf *out);

/*
 * Compute the partition of a key (for QN_COMBTAB_PART_LATER): a partition,
 * or QN_COMBTAB_PART_LATER when it cannot (the add then returns -EINVAL).
 */
typedef unsigned (*qn_combtab_part_fn)(void *ctx, const void *key, size_t klen);

/* As an add's part: the table asks its partitioner, once per new key. */
#define QN_COMBTAB_PART_LATER 0xffffffffu

/*
 * A table of bytes bytes (at least 64 KiB, at most 4 GiB). cmp orders
 * keys when the table is sorted (NULL: the default order); fn combines,
 * with ctx. NULL if bytes is out of range.
 */
qn_combtab *qn_combtab_new(size_t bytes, qn_cmp_fn cmp, qn_combtab_fn fn,
                           void *ctx);

/* Free the table; accepts NULL, clears the pointer. */
void qn_combtab_destroy(qn_combtab **self_p);

/* The hash an add must be given: fast, not the partition hash. */
uint64_t qn_combtab_hash(const void *key, size_t klen);

/* Set the partitioner that QN_COMBTAB_PART_LATER adds use (with the
 * table's ctx). A table's adds are all LATER or none. */
void qn_combtab_set_partitioner(qn_combtab *ct, qn_combtab_part_fn fn);

/*
 * Add a value for key in partition part (or QN_COMBTAB_PART_LATER); hash
 * is qn_combtab_hash of the key.
 * Returns 0, -QN_EFULL when there is no room (sort, write, reset, add
 * again), -QN_ETOOBIG when the record would not fit even in an empty
 * table, or what the combiner returned when it failed.
 */
int qn_combtab_add(qn_combtab *ct, unsigned part, uint64_t hash,
                   const void *key, size_t klen, const void *val, size_t vlen);

/*
 * Like qn_combtab_add, but the record may wait in a short queue first (so
 * that the memory it will touch is fetched while earlier records are
 * added); the bytes are copied. A failure (-QN_EFULL included) concerns
 * the oldest queued record or this one: the caller writes and resets the
 * table on -QN_EFULL and pushes this record again, and nothing queued is
 * lost. Call qn_combtab_drain before sorting.
 */
int qn_combtab_push(qn_combtab *ct, unsigned part, uint64_t hash,
                    const void *key, size_t klen, const void *val, size_t vlen);

/* Add every queued record: 0, or what qn_combtab_add returned for the
 * oldest (which stays queued). */
int qn_combtab_drain(qn_combtab *ct);

/* Number of entries (distinct partition and key pairs) held; queued
 * records are not counted. */
size_t qn_combtab_count(const qn_combtab *ct);

/*
 * Sort the entries by partition, then key. After this only
 * qn_combtab_get, qn_combtab_reset and qn_combtab_destroy may be called.
 */
void qn_combtab_sort(qn_combtab *ct);

/*
 * Entry i of the sorted table: its partition, key and values. Pointers
 * are valid until reset.
 */
void qn_combtab_get(const qn_combtab *ct, size_t i, unsigned *part,
                    const void **key, size_t *klen, qn_combtab_vals *vals);

/* Append one framed value to b; 0 or -ENOMEM. */
int qn_combtab_frame(qn_buf *b, const void *val, size_t vlen);

/* Drop every entry, keeping the memory. */
void qn_combtab_reset(qn_combtab *ct);

#endif
