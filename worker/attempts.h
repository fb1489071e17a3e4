/*
 * attempts.h -- the task attempts running on this worker, each in its own
 * quern-task process: starting one, reading its control channel (progress
 * forwarded to the master, its last word kept), passing it new map
 * locations, killing it (cancelled, its job over, or over the memory
 * cap), and reporting its end once its process has exited.
 *
 * The table (w->att) is this module's; the others only read it.
 */
#ifndef QN_ATTEMPTS_H
#define QN_ATTEMPTS_H

#include "wstate.h"

#include <stdint.h>

/* A new attempt named ref at the end of tab (tab->v[tab->n - 1]), with
 * nothing running yet; the pointer is good until the table changes. */
qn_attempt *qn_attempts_add(qn_attempts *tab, const qn_attempt_ref *ref);

/* Free what attempt i of tab holds and take it out of the table (the last
 * one takes its place). */
void qn_attempts_remove(qn_attempts *tab, size_t i);

/* The attempt named so in tab, or NULL. */
qn_attempt *qn_attempts_find(qn_attempts *tab, const char *job, int kind,
                             unsigned task, unsigned attempt);

/*
 * Start the attempt the master assigned (a duplicate of one running is
 * ignored): a quern-task process given its own spec (taskspec.h) on fd 4,
 * a control channel on fd 3 and the last-gasp page on fd 5. An attempt
 * that cannot be started is reported failed at once.
 */
void qn_attempts_start(qn_worker *w, const Quern__TaskSpec *assigned);

/*
 * Read what attempt a's process sent: forward progress, keep the end.
 * Returns the bytes read (0 when nothing was waiting); the channel is
 * closed at EOF or when the task sends something malformed (the reason is
 * kept for the failure report).
 */
int qn_attempts_on_ctl(qn_worker *w, qn_attempt *a);

/* Write what is queued for a's task as far as its socket takes it. */
void qn_attempts_flush(qn_attempt *a);

/*
 * New map output locations (env) for a reduce attempt: queue them for it.
 * The loop writes them as its socket has room, so a task that is not
 * reading (it is past fetching) never blocks the worker; past 1 MiB
 * queued they are dropped whole, and a reducer that still needs one asks
 * again.
 */
void qn_attempts_on_locations(qn_worker *w, Quern__Envelope *env);

/* Reap every attempt process that exited and report its end. */
void qn_attempts_reap(qn_worker *w);

/* Kill attempt a's process group (its end is reported when reaped). */
void qn_attempts_kill(qn_attempt *a);

/* The master cancels attempt r: kill it, to be reported KILLED. */
void qn_attempts_cancel(qn_worker *w, const Quern__AttemptRef *r);

/* Kill (as cancelled) every attempt of job_id, or every one when NULL. */
void qn_attempts_kill_job(qn_attempts *tab, const char *job_id);

/* Kill capped attempts whose resident memory is over --task-mem-mb
 * (read at most every 100 ms). */
void qn_attempts_check_memory(qn_worker *w, int64_t now);

/* Kill every attempt and wait for it, and free the table. */
void qn_attempts_destroy(qn_attempts *tab);

#endif
