/*
 * events.h -- events an operator wants to see: logged and kept for the status
 * page
 */
#ifndef QN_MEVENTS_H
#define QN_MEVENTS_H

#include "mstate.h"

void qn_event(qn_master *m, int level, const char *what, int jx, int kind,
              unsigned task, unsigned attempt, int w, const char *fmt, ...);

#endif
