/*
 * datasets.h -- the master's side of datasets: which live workers hold a
 * shard, datasets removed (so copies that turn up later are dropped),
 * where a put's shards go, and puts waiting for their shards before they
 * are sealed.
 *
 * The catalog (catalog.h) is the bookkeeping; this module acts on it with
 * the workers' liveness and messages, and notes each durable change in
 * the journal.
 */
#ifndef QN_MDATASETS_H
#define QN_MDATASETS_H

#include "mstate.h"

#define QN_DATASETS_MAX_REPLICAS 16 /* copies of a dataset shard at most */
#define QN_DATASETS_PUT_WAIT_MS                                                \
    30000 /* a put's shards must all be                                        \
             announced by then */

/* Is an input or output a dataset name (no '/') rather than a path? */
int qn_is_dataset(const char *given);

/* Live workers holding a copy of shard i of d. */
unsigned qn_datasets_live_copies(qn_master *m, const qn_dataset *d, uint32_t i);

/* Copies a shard can have: replicas, or as many live data workers (at
 * least 1). */
unsigned qn_datasets_copies_wanted(qn_master *m, unsigned replicas);

/*
 * The live holders of shard i of d as DataSources: *src holds them, *ptrs
 * points at each (strings point into m's workers; free both arrays).
 * Returns how many.
 */
size_t qn_datasets_sources(qn_master *m, const qn_dataset *d, uint32_t i,
                           Quern__DataSource **src, Quern__DataSource ***ptrs);

/* A new dataset written by writer (a job id, or "put"), with replicas
 * copies of each shard; a name removed before is taken back. Returns it,
 * or NULL if the name is taken. */
qn_dataset *qn_datasets_create(qn_master *m, const char *name,
                               const char *writer, unsigned replicas);

/* Delete a dataset on every live worker and forget it; copies on workers
 * that come back later are deleted when they announce them. */
void qn_datasets_drop_everywhere(qn_master *m, const char *name);

/* Mark d complete with nshards on every live holder and here. */
void qn_datasets_seal(qn_master *m, qn_dataset *d, uint32_t nshards);

/* Worker w announces a copy of a shard (a removed dataset's is dropped). */
void qn_datasets_hold(qn_master *m, int w, const Quern__ShardInfo *si);

/* Worker w no longer holds shard index of dataset. */
void qn_datasets_unhold(qn_master *m, int w, const char *dataset,
                        uint32_t index);

/* Is map task `map` of job `job` data-local on worker? (sched.h's
 * qn_sched_local_fn; ctx is the master) */
int qn_datasets_local(void *ctx, int job, unsigned map, int worker);

/*
 * Where a put of d places its next shard: up to d->replicas distinct live
 * data workers, not draining, holding the fewest shards, none of the
 * avoid ids, into chosen[QN_DATASETS_MAX_REPLICAS] (each counted as
 * holding one more). Ties are broken so that the shards one worker holds
 * have their other copies spread over the others, not on one partner.
 * Returns how many.
 */
unsigned qn_datasets_place(qn_master *m, const qn_dataset *d,
                           char *const *avoid, size_t navoid, int *chosen);

/* Send a PutReply to route: error ("" or NULL: none) and targets. */
void qn_datasets_put_reply(qn_master *m, const char *route, size_t routelen,
                           const char *error, Quern__DataSource **targets,
                           size_t n);

/* The client at route waits for the put of dataset (nshards shards) to be
 * sealed: it is answered when every shard has its copies, or after
 * QN_DATASETS_PUT_WAIT_MS. */
void qn_datasets_put_wait(qn_master *m, const char *dataset, const char *route,
                          size_t routelen, uint32_t nshards, int64_t now);

/* Seal the puts whose shards have all been announced, and answer those
 * that cannot be or whose time is up. */
void qn_datasets_puts_check(qn_master *m, int64_t now);

/* Dataset d as users see it (shards, bytes, fewest live copies), without
 * its shards' list; strings point into d. */
void qn_datasets_info(qn_master *m, qn_dataset *d, Quern__DatasetInfo *di);

/*
 * Splits for the dataset inputs of job spec in, appended to out (one map
 * per shard). Returns 0, or -1 with err naming the dataset or shard.
 */
int qn_datasets_splits(qn_master *m, const Quern__JobSpec *in, qn_splits *out,
                       char *err, size_t errcap);

#endif
