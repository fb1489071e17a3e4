/*
 * events.h -- an event an operator wants to see (a worker lost, a task
 * run again, a job ended): logged, and kept in the master's ring of
 * recent events (evring.h) for the status page.
 */
#ifndef QN_MEVENTS_H
#define QN_MEVENTS_H

#include "mstate.h"

/*
 * Note an event at now: log it (one line, the message printf-formatted)
 * and keep it with the ids of job jx, the task (kind, task, attempt) and
 * worker w it concerns. jx, kind and w are -1 when it concerns none.
 */
void qn_event(qn_master *m, int64_t now, int level, const char *what, int jx,
              int kind, unsigned task, unsigned attempt, int w, const char *fmt,
              ...) __attribute__((format(printf, 10, 11)));

#endif
