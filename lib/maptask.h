/*
 * maptask.h -- a map attempt (maptask.c): read the split record by
 * record, call the job's map, gather and sort what it emits (combined in
 * memory when the job has a combiner), spill sorted runs when memory is
 * full, and merge the runs into one intermediate file with a partition
 * index, which the worker's shuffle server serves to reducers.
 */
#ifndef QN_MAPTASK_H
#define QN_MAPTASK_H

#include "task.h"

/*
 * Open input piece index of t's spec: its file, or a copy streamed from
 * a holder of a dataset shard this worker has none of (read through the
 * descriptor, the copy already unlinked; *local is 0 then). The
 * descriptor, or -1 (t->fail). In a sandbox the broker does this
 * (broker.h).
 */
int qn_map_open_piece(quern_task *t, size_t index, int *local);

/*
 * Run a map task. On success fills parts[nreduce] with the output's
 * partition ranges. Returns 0 or -1 (t->fail says why).
 */
int qn_map_run(quern_task *t, qn_range *parts);

#endif
