/*
 * from_workers.h -- what workers say: hello, heartbeats, task updates, data
 * reports
 */
#ifndef QN_MFROM_WORKERS_H
#define QN_MFROM_WORKERS_H

#include "mstate.h"

void qn_from_worker_hello(qn_master *m, const Quern__WorkerHello *h,
                          int64_t now);

/*
 * The worker a message claims to come from, or -1: unknown or given up
 * for dead (it is asked to join again), or not holding the worker's
 * session (dropped, unless it is an older membership's: late, not
 * hostile). With route set, replies to it go where this message came from.
 */
int qn_from_worker_known(qn_master *m, const char *id, uint64_t session,
                         int64_t now, int route);

void qn_from_worker_heartbeat(qn_master *m, const Quern__Heartbeat *hb,
                              int64_t now);

/*
 * Tell running reduce attempts of job jx (only the one named by to, if
 * set) where map task's output now is.
 */
void qn_from_worker_send_location(qn_master *m, int jx, unsigned task,
                                  const Quern__AttemptRef *to);

/*
 * A current reduce attempt (ref, on worker rw) of running job jx could not
 * fetch a map output.
 */
void qn_from_worker_fetch_failure(qn_master *m, int jx, int rw,
                                  const Quern__AttemptRef *ref,
                                  const Quern__FetchFailure *ff, int64_t now);

/* A copy of an output shard (qn_commit_replicate) ended, or reports progress.
 */
void qn_from_worker_copy_update(qn_master *m, int jx, int w,
                                const Quern__TaskUpdate *u, int64_t now);

void qn_from_worker_task_update(qn_master *m, const Quern__TaskUpdate *u,
                                int64_t now);

/*
 * Worker w could not install a reduce's output as its dataset shard (a
 * full disk, say). The reduce is done and its staged output gone, so the
 * job fails saying why rather than wait for a shard that never comes.
 */
void qn_from_worker_commit_failure(qn_master *m, int w,
                                   const Quern__CommitFailure *cf, int64_t now);

void qn_from_worker_data_report(qn_master *m, const Quern__DataReport *dr,
                                int64_t now);

void qn_from_worker_plugin_request(qn_master *m, const Quern__PluginRequest *pr,
                                   int64_t now);

#endif
