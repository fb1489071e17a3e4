/*
 * wsandbox.h -- the worker's side of its tasks' sandbox (sandbox.h): the
 * layers its --sandbox level and the kernel give, the user tasks run as,
 * what a task's spec and the worker's hello say of them, and the CPU-time
 * limit a task's progress moves on.
 */
#ifndef QN_WSANDBOX_H
#define QN_WSANDBOX_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "wire.h"
#include "wstate.h"

/*
 * Decide w->sb from w->cfg: with --sandbox require, every layer or an
 * error naming the first one missing; auto, what the kernel offers (the
 * rest logged once); off, none (logged). A worker running as root runs
 * tasks as --task-user (default nobody), which must exist and not be root.
 * 0, or -1 with err.
 */
int qn_wsandbox_setup(qn_worker *w, char *err, size_t errcap);

/*
 * The layers tasks run in (*layers) and those wanted that the kernel lacks
 * (*missing), at --sandbox mode (qn_sandbox_mode) for a worker running as
 * root or not, given what the kernel offers (qn_sandbox_probe; abi its
 * Landlock ABI, for the message). 0, or -1 with err naming what is missing
 * when mode is require.
 */
int qn_wsandbox_decide(int mode, int root, unsigned offered, int abi,
                       unsigned *layers, unsigned *missing, char *err,
                       size_t errcap);

/* Fill a task spec's sandbox fields. */
void qn_wsandbox_spec(const qn_worker *w, Quern__TaskSpec *spec);

/* Fill the hello's: strings in bufs (which outlive the hello). */
typedef struct qn_wsandbox_names {
    char *layers[8], *missing[8];
    char names[16][32];
} qn_wsandbox_names;
void qn_wsandbox_hello(const qn_worker *w, Quern__WorkerHello *h,
                       qn_wsandbox_names *n);

/*
 * Attempt a reported progress at now: note the CPU time it has used and,
 * where the worker can (w->sb.cpu_kernel), give it and each process of
 * its group a->cpu_timeout_ms more from there (RLIMIT_CPU, moved on with
 * prlimit), at most once a second.
 */
void qn_wsandbox_progress(const qn_worker *w, qn_attempt *a, int64_t now);

/* Where the worker cannot move a task's RLIMIT_CPU on (a root worker
 * without CAP_SYS_RESOURCE): once a second, kill each task that used
 * more than its CPU time past its last progress report. */
void qn_wsandbox_check_cpu(qn_worker *w, int64_t now);

/* When qn_wsandbox_check_cpu is next due (INT64_MAX: never). */
int64_t qn_wsandbox_cpu_due(const qn_worker *w);

#endif
