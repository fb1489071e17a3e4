/*
 * querycmd.h -- the commands that ask the master about jobs and workers:
 * quern status, jobs, workers, cancel and logs. Each is one request and
 * its reply, printed for people or, with --json, as JSON.
 *
 * Each takes its command line parsed (qn_cli_parse with its allowed set,
 * opts.h) and returns the quern command's exit status.
 */
#ifndef QN_QUERYCMD_H
#define QN_QUERYCMD_H

#include "opts.h"

/* quern status [JOB [--tasks]] [--json]: one job, or every job. */
int qn_querycmd_status(qn_cli_opts *o);

/* quern jobs [--json]: a line per job. */
int qn_querycmd_jobs(qn_cli_opts *o);

/* quern workers [--json]: a line per worker. */
int qn_querycmd_workers(qn_cli_opts *o);

/* quern cancel JOB [--json]: stop a job. */
int qn_querycmd_cancel(qn_cli_opts *o);

/* quern logs JOB TASK [--attempt N] [--json]: a task attempt's stderr. */
int qn_querycmd_logs(qn_cli_opts *o);

#endif
