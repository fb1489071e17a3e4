/*
 * jobcmd.h -- the commands that run a job: quern run (on a local cluster
 * started for it, or --inline in this process) and quern submit (to a
 * running master).
 *
 * Each takes its command line parsed (qn_cli_parse with its allowed set,
 * opts.h) and returns the quern command's exit status.
 */
#ifndef QN_JOBCMD_H
#define QN_JOBCMD_H

#include "opts.h"

/* quern run: the job on a local cluster, or --inline. */
int qn_jobcmd_run(qn_cli_opts *o);

/* quern submit: the job to --master; prints its id, follows it with
 * --wait. */
int qn_jobcmd_submit(qn_cli_opts *o);

#endif
