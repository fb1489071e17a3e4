/*
 * deadline.h -- the deadlines a daemon waits for, in one ordered
 * structure: a binary min-heap of (when, kind, key).
 *
 * The run loop's poll timeout is the earliest entry (qn_deadline_next),
 * and one check pops every entry that has fallen due. Entries are never
 * removed early: a wait that ended before its deadline leaves its entry
 * behind, and whoever pops it checks that the thing it names still waits
 * (lazy removal). So adding is O(log n), and nothing needs a handle.
 */
#ifndef QN_DEADLINE_H
#define QN_DEADLINE_H

#include <stddef.h>
#include <stdint.h>

/* One deadline: at what time, for what kind of thing, and which one. */
typedef struct qn_due {
    int64_t at;   /* monotonic ms */
    int kind;     /* the owner's own numbering */
    uint64_t key; /* which one of that kind */
} qn_due;

typedef struct qn_deadline {
    qn_due *heap;
    size_t n, cap;
} qn_deadline;

/* Free the heap's memory and empty it. */
void qn_deadline_release(qn_deadline *d);

/* Add a deadline (duplicates are kept). */
void qn_deadline_add(qn_deadline *d, int64_t at, int kind, uint64_t key);

/* The earliest deadline's time, or INT64_MAX when there is none. */
int64_t qn_deadline_next(const qn_deadline *d);

/* Pop the earliest deadline if it is due at now: 1 and *out set, or 0. */
int qn_deadline_pop(qn_deadline *d, int64_t now, qn_due *out);

#endif
