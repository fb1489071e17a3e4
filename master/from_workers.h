/*
 * from_workers.h -- what workers say: hello, heartbeats, task updates,
 * data reports, plugin requests and logs replies. Every change a worker's
 * message makes to the master's state is made here, or, for the attempts
 * it runs, in task_updates.h.
 *
 * A worker's messages carry the session its welcome gave it, so no other
 * peer can speak for it; one without it is dropped, and one from a worker
 * the master does not know (or gave up for dead) is answered with a
 * welcome that asks it to join again.
 */
#ifndef QN_FROM_WORKERS_H
#define QN_FROM_WORKERS_H

#include "mstate.h"

#define QN_FROM_WORKERS_MAX_LIVE 4096 /* workers alive at once */

/*
 * Handle env, the message being handled (from m->net.in), at now, if it is
 * a worker's. Returns 1 if it was (handled or dropped), 0 if it is not a
 * worker's message.
 */
int qn_from_worker(qn_master *m, const Quern__Envelope *env, int64_t now);

#endif
