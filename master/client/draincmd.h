/*
 * draincmd.h -- quern drain and quern undrain: take a worker out of
 * service, or put it back.
 *
 * drain asks the master to drain the worker and says where it stands;
 * with --wait it returns when the worker is drained (the master answers
 * at least every QN_DRAINCMD_ASK_MS with what the worker still waits for,
 * which is printed on stderr when it changes, and the question is asked
 * again). Exit status 0 drained (or draining, without --wait), 1 the
 * worker was lost or undrained meanwhile, 2 usage (no such worker), 3 the
 * master unreachable.
 */
#ifndef QN_DRAINCMD_H
#define QN_DRAINCMD_H

#include "opts.h"

#define QN_DRAINCMD_ASK_MS 20000 /* the master answers a wait by then */

/* quern drain WORKER [--wait] [--deadline-ms N] [--json] */
int qn_draincmd_drain(qn_cli_opts *o);

/* quern undrain WORKER [--json] */
int qn_draincmd_undrain(qn_cli_opts *o);

#endif
