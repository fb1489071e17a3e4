/*
 * counters.h -- named counters: those a task keeps (the built-in ones, at
 * fixed places, and those its plugin names with quern_count), and a job's
 * totals, as the master keeps them and as `quern run --inline` adds up
 * its tasks'. Values saturate at the limits of long long (plugins and
 * peers may send anything).
 */
#ifndef QN_COUNTERS_H
#define QN_COUNTERS_H

#include <stddef.h>

typedef struct qn_counter {
    const char *name; /* a fixed name (static), or a copy the table owns */
    long long value;
} qn_counter;

typedef struct qn_counters {
    qn_counter *v;
    size_t n, cap;
    size_t nfixed; /* v[0..nfixed) have fixed names, never looked up */
    size_t max;    /* names made at most (0: no limit) */
} qn_counters;

/* Start cs with n fixed counters, at zero, named names[0..n) (static:
 * borrowed for as long as cs lives). */
void qn_counters_init(qn_counters *cs, const char *const *names, size_t n);

/*
 * Add delta to the counter named prefix followed by name (among those
 * without a fixed place), made at the end when there is none: its name is
 * a copy, with what is not UTF-8 replaced. Returns its index, or
 * SIZE_MAX when it is new and cs->max counters are there already.
 */
size_t qn_counters_add(qn_counters *cs, const char *prefix, const char *name,
                       long long delta);

/* Add every counter of from to the one of into with its name (made when
 * missing, in from's order). */
void qn_counters_fold(qn_counters *into, const qn_counters *from);

/* The value of the counter named name (0 if there is none). */
long long qn_counters_get(const qn_counters *cs, const char *name);

/* Free the names cs made and its array; it is empty after. */
void qn_counters_release(qn_counters *cs);

#endif
