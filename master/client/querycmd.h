/*
 * querycmd.h -- the commands that ask the master about jobs and workers:
 * quern status, jobs, workers, cancel and logs. Each is one request and
 * its reply, printed for people or, with --json, as JSON.
 *
 * Each takes argv[0..argc), the arguments after the command's name, and
 * returns the quern command's exit status.
 */
#ifndef QN_QUERYCMD_H
#define QN_QUERYCMD_H

/* quern status [JOB [--tasks]] [--json]: one job, or every job. */
int qn_querycmd_status(int argc, char **argv);

/* quern jobs [--json]: a line per job. */
int qn_querycmd_jobs(int argc, char **argv);

/* quern workers [--json]: a line per worker. */
int qn_querycmd_workers(int argc, char **argv);

/* quern cancel JOB [--json]: stop a job. */
int qn_querycmd_cancel(int argc, char **argv);

/* quern logs JOB TASK [--attempt N] [--json]: a task attempt's stderr. */
int qn_querycmd_logs(int argc, char **argv);

#endif
