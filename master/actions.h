/*
 * actions.h -- the scheduler's actions (sched.h), carried out: an
 * attempt assigned becomes an AssignTask to its worker and a record in its
 * job, a cancel a CancelTask, a lost attempt or a dead worker an event, a
 * done or failed job its end (commit.h).
 *
 * Every change the scheduler decides reaches the master's state here.
 */
#ifndef QN_MACTIONS_H
#define QN_MACTIONS_H

#include "mstate.h"

/* Carry out every action the scheduler has queued, at now. */
void qn_actions_run(qn_master *m, int64_t now);

#endif
