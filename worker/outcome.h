/*
 * outcome.h -- the failure report of an attempt whose process has ended
 * without success: why (the master's cancel, the memory cap, a copied
 * shard that could not be installed, the task's own reason, a malformed
 * report, or just how its process ended), where it was when it died (the
 * last gasp: in setup(), loading the plugin, or in map() on which record
 * of which input), how its process ended, and the tail of its stderr.
 */
#ifndef QN_OUTCOME_H
#define QN_OUTCOME_H

#include "wstate.h"

#include <stdint.h>

/* A failure report and the memory behind its strings. */
typedef struct qn_outcome {
    Quern__TaskUpdate u; /* KILLED or FAILED, for the master */
    qn_buf reason;       /* u.reason */
    char *tail;          /* u.stderr_tail */
} qn_outcome;

/*
 * Fill o with the failure report of attempt a of worker w, whose process
 * ended with wait status status after using rss bytes at most;
 * install_err says why its copied shard could not be installed ("" if
 * that is not why). Release o with qn_outcome_release.
 */
void qn_outcome_failure(qn_outcome *o, const qn_worker *w, const qn_attempt *a,
                        int status, uint64_t rss, const char *install_err);

/* Free what o holds. */
void qn_outcome_release(qn_outcome *o);

#endif
