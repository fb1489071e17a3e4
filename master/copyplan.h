/*
 * copyplan.h -- which dataset shards need another copy and where it goes,
 * and which copies are surplus: a pure planner over the catalog and a
 * snapshot of the workers. No I/O; time comes in as an argument, so tests
 * drive it with a fake clock.
 *
 * The rules (README, "Datasets"):
 * - A shard wants K = min(replicas, workers that can take a copy) good
 *   copies: on live data workers that are not draining. A copy on a
 *   draining worker does not count, but can be copied from.
 * - A holder gone less than timeout_ms ago may come back: its copy is
 *   waited for, not re-made. Before quiet_until (a restarted master has
 *   not yet heard from every worker) nothing of a sealed dataset is
 *   re-made, except what a draining worker holds. Shards of a dataset
 *   being put are re-made at once.
 * - Most endangered shards first (fewest good copies), then by name.
 * - The source is a live holder, the target a worker without a copy
 *   holding the fewest bytes; neither may have per_worker copies in
 *   flight already (the throttle that keeps jobs running). A target that
 *   failed a shard's copy recently is not asked again for it.
 * - No two copies on one host while the workers span at least K hosts.
 * - A sealed shard with more than replicas good copies, and none being
 *   made, loses the surplus from its fullest holders, one at a time; a
 *   draining worker's copy goes once the shard has `replicas` good copies
 *   elsewhere (not K: with fewer workers left it keeps its copy, which
 *   counts again if it comes back). A copy being dropped counts as gone.
 *   Never below K.
 */
#ifndef QN_COPYPLAN_H
#define QN_COPYPLAN_H

#include "catalog.h"

#include <stddef.h>
#include <stdint.h>

/* A worker as the planner sees it. */
typedef struct qn_cp_worker {
    const char *id;
    const char *host;   /* "" when unknown */
    int alive;          /* live, and keeps datasets */
    int draining;       /* alive but leaving: its copies do not count */
    int64_t gone_since; /* not alive: when it was found dead or left */
    uint64_t bytes;     /* shard bytes it holds */
    unsigned inflight;  /* copies in flight to or from it */
    int keeps;          /* cannot be told to drop one copy (an older
                           worker): its copies are never surplus */
} qn_cp_worker;

/* A copy under way (target and source index the worker array), or one
 * that failed recently (source unused). */
typedef struct qn_cp_copy {
    const char *dataset;
    uint32_t index;
    int target, source;
} qn_cp_copy;

typedef struct qn_cp_params {
    int64_t now;
    int64_t timeout_ms;         /* --replica-timeout-ms */
    int64_t quiet_until;        /* no sealed shard is re-made before this */
    unsigned per_worker;        /* copies in flight per worker, at most */
    const qn_cp_copy *dropping; /* copies being dropped (target: where) */
    size_t ndropping;
} qn_cp_params;

/* What to do: copy shard index of dataset from source to target, or (drop
 * set) delete the copy on target. */
typedef struct qn_cp_order {
    const char *dataset; /* points into the catalog */
    uint32_t index;
    uint64_t size;
    int source, target;
    int drop;
} qn_cp_order;

/* A catalog's health, for ls, the page and /metrics. */
typedef struct qn_cp_health {
    unsigned under; /* shards with fewer good copies than wanted */
    unsigned lost;  /* shards with no live copy at all */
    int64_t next;   /* when a waited-for holder's grace ends
                       (INT64_MAX: none) */
} qn_cp_health;

/*
 * Plan the copies and drops due now. w[nw] are the workers (their
 * inflight counts are raised for each copy planned), busy[nbusy] the
 * copies under way, failed[nfailed] recent failures to avoid. *out
 * (caller frees) receives the orders; returns how many. health, if not
 * NULL, is filled in.
 */
size_t qn_copyplan_run(const qn_catalog *c, qn_cp_worker *w, size_t nw,
                       const qn_cp_copy *busy, size_t nbusy,
                       const qn_cp_copy *failed, size_t nfailed,
                       const qn_cp_params *p, qn_cp_order **out,
                       qn_cp_health *health);

/* Good copies wanted of a shard of d with `takers` workers able to hold
 * one: min(replicas, takers), at least 1. */
unsigned qn_copyplan_wanted(const qn_dataset *d, unsigned takers);

#endif
