/*
 * task_updates.h -- what workers say of the attempts they run: progress,
 * map outputs a reduce could not fetch, success (where a map's output is,
 * a reduce's output put in place) and failure. The worker messages that
 * concern tasks change the master's state here; from_workers.c takes the
 * rest and hands these over once it knows the worker.
 */
#ifndef QN_TASK_UPDATES_H
#define QN_TASK_UPDATES_H

#include "mstate.h"

#define QN_TASK_UPDATES_FETCH_REPORTS                                          \
    3 /* fetch failures before a map runs                                      \
         again */

/* Worker w (known, its session checked) sent u, the message being
 * handled, at now. */
void qn_task_update(qn_master *m, int w, const Quern__TaskUpdate *u,
                    int64_t now);

/*
 * Worker w lists attempt (job jx, kind, task, attempt) that this master
 * did not start: one an earlier run of the master started (a restart) is
 * taken as running there, and a reduce is told where every done map's
 * output is. Returns 1 if adopted, 0 if not (it is to be killed).
 */
int qn_task_adopt(qn_master *m, int w, int jx, qn_kind kind, unsigned task,
                  unsigned attempt, int64_t now);

#endif
