/*
 * commit.h -- a job's end: its output committed (or cleaned away), workers told
 */
#ifndef QN_MCOMMIT_H
#define QN_MCOMMIT_H

#include "mstate.h"

/* Tell every live worker to drop the job's intermediate files. */
void qn_commit_broadcast(qn_master *m, qn_job *j);

void qn_commit_job_finished(qn_master *m, int jx, int state, const char *error,
                            int64_t now);

void qn_commit_output(qn_master *m, int jx, int64_t now);

/*
 * A job writing a dataset has finished its reduces: copy each output
 * shard until it has out_replicas live copies (or as many as there are
 * live workers keeping data), then seal the dataset and succeed.
 */
void qn_commit_replicate(qn_master *m, int jx, int64_t now);

/* Something changed in what workers hold: see who was waiting on it. */
void qn_commit_data_changed(qn_master *m, int64_t now);

#endif
