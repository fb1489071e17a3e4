/*
 * fetch.h -- the reducer's side of the shuffle (fetch.c), with where each
 * fetched segment came from.
 *
 * A segment's blocks are checked (CRCs, and their sizes against what the
 * map reported) as it arrives, but its records only when the reduce merges
 * them. A segment found corrupt then is charged to the map output it holds,
 * so that the map runs again; the reduce needs to know which one that is.
 */
#ifndef QN_FETCH_H
#define QN_FETCH_H

#include <stddef.h>

#include "task.h"

/* The map output a fetched segment file holds. */
typedef struct qn_fetched {
    char *path;       /* the segment file (a copy: merge passes free theirs) */
    unsigned map;     /* the map task */
    unsigned attempt; /* its attempt whose output was fetched */
} qn_fetched;

/*
 * Fetch this reducer's partition of every map output into local segment
 * files: their paths into segs and, for error messages, which map output
 * each holds into names (both in map order, caller frees; empty
 * partitions are skipped), and in *from which map output each segment
 * holds: one entry per segment, in the same order, also on failure (the
 * caller frees it with qn_fetched_free; from may be NULL). Returns 0 or -1
 * (t->fail says why).
 */
int qn_fetch_segments(quern_task *t, char ***segs, char ***names,
                      qn_fetched **from, size_t *nsegs);

/* The entry of from[0..n) for the segment file path, or NULL. */
const qn_fetched *qn_fetched_find(const qn_fetched *from, size_t n,
                                  const char *path);

/* Free n entries and the array; accepts NULL, clears the pointer. */
void qn_fetched_free(qn_fetched **from_p, size_t n);

#endif
