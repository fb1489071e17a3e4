/*
 * reducetask.h -- a reduce attempt (reducetask.c): fetch this partition
 * of every map output (or, run inline, copy it from the maps' files),
 * merge the pieces, call the job's reduce once per key, and write the
 * output for the master to rename into place.
 */
#ifndef QN_REDUCETASK_H
#define QN_REDUCETASK_H

#include "task.h"

/* The path of the output file (the spec's attempt's) into b. */
void qn_reduce_output_path(const Quern__TaskSpec *sp, qn_buf *b);

/* Make the output file, _temporary/JOB/part-NNNNN.aATTEMPT in the
 * output folder, and open it on t->out_fd (t->out_name its path); done
 * already when t->out_fd is open. 0 or -1 (t->fail). */
int qn_reduce_open_output(quern_task *t);

/* Run a reduce task. Returns 0 or -1 (t->fail says why). */
int qn_reduce_run(quern_task *t);

#endif
