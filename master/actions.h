/*
 * actions.h -- the scheduler's actions, turned into messages and records
 */
#ifndef QN_MACTIONS_H
#define QN_MACTIONS_H

#include "mstate.h"

void qn_actions_assign(qn_master *m, const qn_action *a);

void qn_actions_cancel(qn_master *m, const qn_action *a);

/* A map's output is gone: take back what its attempt added to counters. */
void qn_actions_map_rerun(qn_master *m, const qn_action *a);

void qn_actions_run(qn_master *m, int64_t now);

#endif
