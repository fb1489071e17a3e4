/*
 * confine.h -- how quern-task puts a map or reduce attempt in its
 * sandbox (sandbox.h), before the job's plugin is loaded:
 *
 *   1. makes the attempt's folder and its tmp/ (layout.h), tmp/ owned by
 *      the task user, and moves into the folder;
 *   2. forks its broker (broker.h), which keeps the worker's rights;
 *   3. opens the plugin and (a reduce) its output file;
 *   4. enters the sandbox with the layers the worker put in the spec.
 *
 * With no layers (--sandbox off) only step 1 is done. A COPY runs no job
 * code and is not confined.
 */
#ifndef QN_CONFINE_H
#define QN_CONFINE_H

#include <sys/types.h>

#include "task.h"

#define QN_TASK_NPROC 1024 /* processes of the task's user, at most */

/* Confine t (its spec read, qn_task_init done). The broker's pid into
 * *broker (0: none). 0, or -1 with t->fail set. */
int qn_task_confine(quern_task *t, pid_t *broker);

#endif
