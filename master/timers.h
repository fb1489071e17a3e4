/*
 * timers.h -- what falls due with time
 */
#ifndef QN_MTIMERS_H
#define QN_MTIMERS_H

#include "mstate.h"

/* Whatever falls due by now: uploads and log requests that timed out, the
 * scheduler's deadlines, status pushed to the clients that watch a job. */
void qn_timers_run(qn_master *m, int64_t now);

#endif
