/*
 * commit.h -- a job's end. When its reduces are done, its output is put
 * in place: part files renamed and _SUCCESS written for a folder, or each
 * shard copied until it has its replicas and the dataset sealed. When it
 * fails or is cancelled, what it wrote is removed. Either way its
 * watchers are told and the workers drop its intermediate files.
 */
#ifndef QN_MCOMMIT_H
#define QN_MCOMMIT_H

#include "mstate.h"

#define QN_COMMIT_COPY_TRIES 3 /* failed copies of an output shard accepted */

/* Every reduce of job jx succeeded: commit its output (or start copying
 * its dataset's shards; the job ends when they have their copies). */
void qn_commit_job_done(qn_master *m, int jx, int64_t now);

/*
 * Job jx ended in state (a Quern__JobState) at now, with error saying why
 * it did not succeed (NULL if it did): what a failed job wrote is removed,
 * its watchers get a last push, workers drop its files, and only its
 * summary is kept.
 */
void qn_commit_job_end(qn_master *m, int jx, int state, const char *error,
                       int64_t now);

/*
 * A job writing a dataset, its reduces done: copy each output shard that
 * has fewer live copies than wanted to another worker, and when every one
 * has them, seal the dataset and succeed. A shard lost before it was
 * copied fails the job.
 */
void qn_commit_replicate(qn_master *m, int jx, int64_t now);

/* Something changed in what workers hold (or who is alive): look again at
 * what waits on it (maps waiting for a holder, puts, committing jobs). */
void qn_commit_data_changed(qn_master *m, int64_t now);

#endif
