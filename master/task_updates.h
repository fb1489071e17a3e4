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

/* What became of a map output a worker offers (qn_task_take_back). */
enum {
    QN_TAKE_TAKEN,    /* its map was not done: it is now, with this output */
    QN_TAKE_KEPT,     /* it is the output in use already */
    QN_TAKE_UNNEEDED, /* its map is done with another, or needs none */
    QN_TAKE_JOB_OVER, /* its job is not running here: the worker is told */
};

/*
 * Worker w (known, alive) holds the finished map output u (its SUCCEEDED
 * update, from its hello): take it back if its running job needs it
 * (sched.h says when), as if the success had just been heard, and tell
 * the reduces where it is. Returns a QN_TAKE_*.
 */
int qn_task_take_back(qn_master *m, int w, const Quern__TaskUpdate *u,
                      int64_t now);

/* Tell the running reduces where the outputs of maps done on worker w
 * are now (it restarted, at a new place or not). */
void qn_task_relocate(qn_master *m, int w);

#endif
