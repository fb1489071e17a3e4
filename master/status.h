/*
 * status.h -- what the master tells about jobs and workers: status replies,
 * watchers, pushes
 */
#ifndef QN_MSTATUS_H
#define QN_MSTATUS_H

#include "mstate.h"

/*
 * Fill st from job j. Strings and arrays point into j or into the arrays
 * passed in, which the caller frees with qn_status_release.
 */
typedef struct qn_status_mem {
    Quern__Counter *cs;
    Quern__Counter **cp;
    Quern__AttemptFailure **fp;
    Quern__SkippedRecord **sp;
    Quern__TaskInfo *ts;
    Quern__TaskInfo **tp;
} qn_status_mem;

/* One task as shown to users; its strings point into m. */
void qn_status_task(qn_master *m, int jx, qn_kind kind, unsigned task,
                    int64_t now, Quern__TaskInfo *out);

void qn_status_job(qn_master *m, int jx, Quern__JobStatus *st,
                   qn_status_mem *mem);

/* With tasks: each task of job jx in st (after qn_status_job). */
void qn_status_tasks(qn_master *m, int jx, Quern__JobStatus *st,
                     qn_status_mem *mem, int64_t now);

void qn_status_release(qn_status_mem *mem);

/* Send the status of job jx (all when jx < 0, none with an error), with
 * each task's if tasks is set. */
void qn_status_send(qn_master *m, const char *route, size_t routelen, int jx,
                    const char *error, int tasks);

void qn_status_watch(qn_job *j, const char *route, size_t routelen);

void qn_status_push(qn_master *m, int jx, int64_t now);

/* When the next status push is due (INT64_MAX if nobody watches). */
int64_t qn_status_push_due(qn_master *m);

/* Every worker as shown to users, in wi[nworkers] (refs: a block to free). */
void qn_status_workers(qn_master *m, int64_t now, Quern__WorkerInfo *wi,
                       Quern__WorkerInfo **wp, void **mem);

#endif
