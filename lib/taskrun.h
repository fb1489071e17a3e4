/*
 * taskrun.h -- one task of a job, run in this process, whatever its kind:
 * the dispatch above the map and reduce sides (and the copy of a dataset
 * shard), shared by quern-task, which runs one attempt for a worker, and
 * by `quern run --inline`, which runs every task of a job in turn.
 */
#ifndef QN_TASKRUN_H
#define QN_TASKRUN_H

#include "task.h"

/*
 * Run the task of t->spec (t set up by qn_task_init): a COPY pulls its
 * shard; a map or a reduce loads the job's plugin and runs. A map fills
 * parts[nreduce] (the caller's; NULL for other kinds) with its output's
 * partition ranges. Returns 0 or -1 (t->fail says why).
 */
int qn_taskrun_run(quern_task *t, qn_range *parts);

/*
 * quern-task: run the attempt whose spec the worker left in the file on
 * spec_fd, reporting to it on ctl (and in the shared page on QN_GASP_FD,
 * when there is one). Returns the process's exit code: 0 when the attempt
 * succeeded and said so, 1 when it failed, 2 without a readable spec, 3
 * when the worker is already gone.
 */
int qn_taskrun_main(int ctl, int spec_fd);

#endif
