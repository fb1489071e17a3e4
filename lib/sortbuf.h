/*
 * sortbuf.h -- the map side's fixed-size sort buffer.
 *
 * Emitted records are copied into one block of memory allocated up front
 * (--sort-mb): record bytes grow from the front, a 16-byte index entry per
 * record (partition, key prefix, offset) grows from the back. When the two
 * meet the buffer is full; the caller sorts it, spills it to disk and
 * resets it. Memory use never depends on the size of the input.
 */
#ifndef QN_SORTBUF_H
#define QN_SORTBUF_H

#include <stddef.h>

#include "ifile.h"

typedef struct qn_sortbuf qn_sortbuf;

/*
 * A buffer of bytes bytes (at least 4 KiB, at most 4 GiB). cmp orders keys;
 * NULL means the default order, which lets the sort compare 8-byte key
 * prefixes as integers before touching the keys. NULL if bytes is out of
 * range.
 */
qn_sortbuf *qn_sortbuf_new(size_t bytes, qn_cmp_fn cmp);

/* Free the buffer; accepts NULL, clears the pointer. */
void qn_sortbuf_destroy(qn_sortbuf **self_p);

/*
 * Copy a record into the buffer for partition part (below 2^20). Returns
 * 0, -QN_EFULL when there is no room (sort, spill, reset, add again), or
 * -QN_ETOOBIG when the record would not fit even in an empty buffer or the
 * partition is out of range.
 */
int qn_sortbuf_add(qn_sortbuf *sb, unsigned part, const void *key, size_t klen,
                   const void *val, size_t vlen);

/* Number of records held. */
size_t qn_sortbuf_count(const qn_sortbuf *sb);

/* Bytes of records held (without index entries). */
size_t qn_sortbuf_bytes(const qn_sortbuf *sb);

/*
 * Sort the records by partition, then key, then the order they were added
 * (so equal keys keep their values in input order).
 */
void qn_sortbuf_sort(qn_sortbuf *sb);

/* Record i (after sort: in sorted order). Pointers are valid until reset. */
void qn_sortbuf_get(const qn_sortbuf *sb, size_t i, unsigned *part,
                    const void **key, size_t *klen, const void **val,
                    size_t *vlen);

/*
 * Do records i and j have the same partition and key? Cheaper than
 * fetching and comparing the keys.
 */
int qn_sortbuf_same_key(const qn_sortbuf *sb, size_t i, size_t j);

/* Drop every record, keeping the memory. */
void qn_sortbuf_reset(qn_sortbuf *sb);

#endif
