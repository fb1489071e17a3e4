/*
 * jobcmd.h -- the commands that run a job: quern run (on a local cluster
 * started for it, or --inline in this process) and quern submit (to a
 * running master).
 */
#ifndef QN_JOBCMD_H
#define QN_JOBCMD_H

/* quern run ARGS...: argv[0..argc) are the arguments after "run".
 * Returns the exit status. */
int qn_jobcmd_run(int argc, char **argv);

/* quern submit ARGS...: likewise. Returns the exit status. */
int qn_jobcmd_submit(int argc, char **argv);

#endif
