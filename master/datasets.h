/*
 * datasets.h -- datasets: holders, tombstones, puts waiting to be sealed
 */
#ifndef QN_MDATASETS_H
#define QN_MDATASETS_H

#include "mstate.h"

unsigned qn_datasets_live_copies(qn_master *m, const qn_dataset *d, uint32_t i);

/* Copies a shard can have: replicas, or as many live data workers. */
unsigned qn_datasets_copies_wanted(qn_master *m, unsigned replicas);

/*
 * The live holders of shard i of d as DataSources, in *src (pointing into
 * m's workers; free the two arrays). Returns how many.
 */
size_t qn_datasets_sources(qn_master *m, const qn_dataset *d, uint32_t i,
                           Quern__DataSource **src, Quern__DataSource ***ptrs);

int qn_datasets_tombstoned(qn_master *m, const char *name);

void qn_datasets_untombstone(qn_master *m, const char *name);

/* Delete a dataset on every live worker and forget it; copies on workers
 * that come back later are deleted when they announce them. */
void qn_datasets_drop_everywhere(qn_master *m, const char *name);

/* Mark d complete with nshards on every live holder and here. */
void qn_datasets_seal(qn_master *m, qn_dataset *d, uint32_t nshards);

/* A worker announces a copy of a shard. */
void qn_datasets_hold(qn_master *m, int w, const Quern__ShardInfo *si);

/* Is map task `map` of job `job` data-local on worker? (sched.h) */
int qn_datasets_local(void *ctx, int job, unsigned map, int worker);

void qn_datasets_put_reply(qn_master *m, const char *route, size_t routelen,
                           const char *error, Quern__DataSource **targets,
                           size_t n);

/*
 * Can put of d with nshards be sealed? 1 yes, 0 not yet, -1 never (why
 * says so).
 */
int qn_datasets_put_ready(qn_master *m, qn_dataset *d, uint32_t nshards,
                          char *why, size_t cap);

/* Seal the puts whose shards have all been announced (or time out). */
void qn_datasets_puts_check(qn_master *m, int64_t now);

int64_t qn_datasets_puts_due(qn_master *m);

void qn_datasets_info(qn_master *m, qn_dataset *d, Quern__DatasetInfo *di);

/* Is an input or output a dataset name (no '/') rather than a path? */
int qn_is_dataset(const char *given);

/*
 * Splits for the dataset inputs of a job, appended to out (one map per
 * shard). Returns 0, or -1 with err naming the dataset or shard.
 */
int qn_datasets_splits(qn_master *m, const Quern__JobSpec *in, qn_splits *out,
                       char *err, size_t errcap);

#endif
