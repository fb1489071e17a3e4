/*
 * merge.h -- k-way merge of sorted block streams.
 *
 * The merge holds one decoded block per source, never a whole stream, so
 * its memory depends on the number of sources (callers bound that with
 * QN_MERGE_FANIN) and not on the size of the data.
 */
#ifndef QN_MERGE_H
#define QN_MERGE_H

#include <stddef.h>

#include "ifile.h"

/* Most sources merged at once; more are merged in passes. */
#define QN_MERGE_FANIN 32

typedef struct qn_merge qn_merge;

/*
 * Merge n sources (borrowed; each sorted by cmp, NULL for the default
 * order). Records with equal keys come out in source order, so values keep
 * the order of the input when sources are given in input order.
 */
qn_merge *qn_merge_new(qn_cmp_fn cmp, qn_blockreader **sources, size_t n);

/* Free the merge (not its sources); accepts NULL, clears the pointer. */
void qn_merge_destroy(qn_merge **self_p);

/*
 * Look at the smallest record without taking it. Returns 1 and sets the
 * pointers (valid until the next peek), 0 when every source is done, or <0
 * (what the source's reader returned) when a source fails:
 * qn_merge_error() says which and where, qn_merge_failed() which index.
 */
int qn_merge_peek(qn_merge *m, const void **key, size_t *klen, const void **val,
                  size_t *vlen);

/* Take the record the last peek returned. */
void qn_merge_pop(qn_merge *m);

/* The error of the source that failed. */
const char *qn_merge_error(const qn_merge *m);

/*
 * The index (among the sources given to qn_merge_new) of the source that
 * failed, or -1 while none has. A caller that knows where each source came
 * from charges the failure to it: a reducer reports the map output a
 * corrupt segment was fetched from, so that the map runs again.
 */
long qn_merge_failed(const qn_merge *m);

#endif
