/* smalljob.c -- a shared object whose quern_job_v1 is an int, not a
 * quern_job (for tests): reading it as a quern_job would read past it. */
extern int quern_job_v1;

int quern_job_v1 = 1;
