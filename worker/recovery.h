/*
 * recovery.h -- the map outputs a worker keeps across its own restarts.
 *
 * When a map attempt succeeds, its SUCCEEDED update is kept beside its
 * output (WORK/jobs/JOB/map-NNNNN-aK.done). A worker started again on the
 * same work dir scans it: each output whose index and footer are intact
 * and agree with its kept update is offered to the master in the hello
 * (the told list, masterlink.h); everything else under WORK/jobs (outputs
 * damaged or never finished, spills, reduce segments, the leftovers of
 * attempts the old process ran) is deleted. Blocks' CRCs are checked when
 * reducers fetch them, as for any output.
 */
#ifndef QN_RECOVERY_H
#define QN_RECOVERY_H

#include "wstate.h"

/* Map attempt r succeeded with u: keep u beside its output. 0, or -1
 * (logged: the output is then not offered after a restart). */
int qn_recovery_note(qn_worker *w, const qn_attempt_ref *r,
                     const Quern__TaskUpdate *u);

/* The master needs none of these offered map outputs (made again
 * elsewhere): delete them and forget them. */
void qn_recovery_drop(qn_worker *w, const Quern__DropOutputs *d);

/* What a scan found. */
typedef struct qn_recovered {
    size_t outputs; /* finished map outputs offered */
    size_t jobs;    /* of this many jobs */
    size_t damaged; /* outputs deleted: damaged, or their update was */
    size_t deleted; /* other leftovers deleted (files and folders) */
} qn_recovered;

/* Scan WORK/jobs as described above: keep and offer, or delete. */
qn_recovered qn_recovery_scan(qn_worker *w);

#endif
