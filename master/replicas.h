/*
 * replicas.h -- keeping every dataset shard at its copies. The planner
 * (copyplan.h) says what to do; this module does it: a copy is a COPY
 * task of the pseudo-job QN_REPLICAS_JOB that the target worker runs,
 * pulling the shard from its holders over their data servers and checking
 * its CRC before it installs it; a surplus copy is dropped with a
 * DataCommand. It tracks the copies under way (failed ones are retried
 * elsewhere) and keeps the figures for ls, the page and /metrics.
 *
 * It looks again whenever what workers hold changes, a worker dies or a
 * copy ends, and when a gone holder's grace runs out.
 */
#ifndef QN_REPLICAS_H
#define QN_REPLICAS_H

#include "mstate.h"

#define QN_REPLICAS_JOB "heal" /* the job id of its COPY tasks */
#define QN_REPLICAS_RETRY_MS                                                   \
    60000 /* a target that failed a copy is                                    \
             not asked again for it before */
#define QN_REPLICAS_REPORT_MS                                                  \
    10000                                /* a copy done waits this long for    \
                                            its target's report */
#define QN_REPLICAS_COPY_MS (30 * 60000) /* a copy still silent is given up */

/* Free what it holds. */
void qn_replicas_release(qn_master *m);

/* Look at every shard now: start the copies and drops due, and set the
 * next look. */
void qn_replicas_check(qn_master *m, int64_t now);

/* Look at every shard once the messages before now are handled: a burst
 * of reports (a put, a worker's hello) makes one look, not one each. */
void qn_replicas_soon(qn_master *m, int64_t now);

/* Worker w ran (or failed) a copy: u is its COPY task's update. */
void qn_replicas_update(qn_master *m, int w, const Quern__TaskUpdate *u,
                        int64_t now);

/* Worker w is gone (dead, left or restarted): its copies under way fail. */
void qn_replicas_worker_gone(qn_master *m, int w, int64_t now);

/*
 * Have worker target copy shard index of d (described by sh) from its
 * live holders, source first if >= 0: a COPY task of job job_id with
 * this attempt number.
 */
void qn_replicas_send_copy(qn_master *m, const char *job_id, uint32_t attempt,
                           const qn_dataset *d, uint32_t index, int target,
                           int source);

#endif
