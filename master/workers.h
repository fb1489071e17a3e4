/*
 * workers.h -- the registry of workers the master knows
 */
#ifndef QN_MWORKERS_H
#define QN_MWORKERS_H

#include "mstate.h"

int qn_workers_find(qn_master *m, const char *id);

/* The handle of the live worker with this id, or -1. */
int qn_workers_alive_id(qn_master *m, const char *id);

unsigned qn_workers_data_live(qn_master *m);

/* Workers alive and dead, and the slots of the live ones, busy or not. */
void qn_workers_counts(qn_master *m, unsigned *alive, unsigned *dead,
                       unsigned *slots, unsigned *busy);

int qn_jobs_find(qn_master *m, const char *id);

int qn_jobs_running(const qn_master *m);

/* Jobs by state: [running, succeeded, failed, cancelled]. */
void qn_jobs_by_state(qn_master *m, unsigned out[4]);

#endif
