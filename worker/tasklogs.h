/*
 * tasklogs.h -- the stderr of the attempts run here, kept in
 * WORK/logs/JOB/ for `quern logs`: sent to the master on request, and
 * pruned to the newest jobs' as jobs end.
 */
#ifndef QN_TASKLOGS_H
#define QN_TASKLOGS_H

#include "wstate.h"

/* Keep the stderr of the attempts of the newest few (64) jobs that have
 * no attempt running here (and of every job that has); remove the rest. */
void qn_tasklogs_prune(qn_worker *w);

/* The master asks for the stderr of one of our attempts (quern logs):
 * send it (its last bytes, up to what was asked and 1 MiB) or why not. */
void qn_tasklogs_on_request(qn_worker *w, const Quern__LogsRequest *rq);

#endif
