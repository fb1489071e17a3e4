/*
 * evring.h -- the recent events an operator wants to see (a worker lost,
 * a task run again, a backup launched): a ring of the newest
 * QN_EVRING_KEPT, each numbered, for the status page and /api/v1/events.
 */
#ifndef QN_EVRING_H
#define QN_EVRING_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#define QN_EVRING_KEPT 1000 /* events kept */

typedef struct qn_evrec {
    uint64_t seq;     /* numbered from 1, never reused */
    int64_t wall;     /* unix ms */
    int level;        /* enum qn_log_level */
    const char *kind; /* a static string: "worker_lost", ... */
    char job[32];     /* "" if none, as the three below */
    char task[24];
    unsigned attempt;
    char worker[72];
    char *msg; /* owned */
} qn_evrec;

typedef struct qn_evring {
    qn_evrec *v; /* [QN_EVRING_KEPT], made on first use */
    size_t n, head;
    uint64_t seq; /* the newest event's number */
} qn_evring;

/* Free the ring's events. */
void qn_evring_release(qn_evring *r);

/*
 * Keep an event (the oldest goes when the ring is full). kind must be a
 * static string; job, task and worker may be NULL; msg is copied.
 * Returns it.
 */
const qn_evrec *qn_evring_add(qn_evring *r, int64_t wall, int level,
                              const char *kind, const char *job,
                              const char *task, unsigned attempt,
                              const char *worker, const char *msg);

/* The i-th event kept, oldest first (i < r->n). */
const qn_evrec *qn_evring_at(const qn_evring *r, size_t i);

/* The events numbered after since, oldest first, as a JSON array
 * (caller owns it). */
json_t *qn_evring_json(const qn_evring *r, uint64_t since);

#endif
