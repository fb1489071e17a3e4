/*
 * timers.h -- the clock as an input: what falls due with time. Puts and
 * logs requests that waited too long are answered, the scheduler checks
 * heartbeats and task timeouts (and its actions are carried out), and the
 * clients that follow a job get its status pushed.
 */
#ifndef QN_MTIMERS_H
#define QN_MTIMERS_H

#include "mstate.h"

/* When something next falls due (INT64_MAX: nothing waits). */
int64_t qn_timers_next(const qn_master *m);

/* Do whatever has fallen due by now. */
void qn_timers_run(qn_master *m, int64_t now);

#endif
