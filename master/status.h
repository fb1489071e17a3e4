/*
 * status.h -- what the master tells about jobs and workers: status
 * replies (quern status, quern jobs, the status page's JSON), the clients
 * that follow a job and the pushes they get, and the workers' list.
 *
 * Views are wire structs (Quern__JobStatus, Quern__WorkerInfo) whose
 * strings point into the master's records; they live until their memory
 * is released and the state is not changed meanwhile.
 */
#ifndef QN_MSTATUS_H
#define QN_MSTATUS_H

#include "mstate.h"

#define QN_STATUS_MAX_WATCHERS 64  /* clients following one job */
#define QN_STATUS_PUSH_MIN_MS 250  /* status pushes at most this often */
#define QN_STATUS_PUSH_MAX_MS 1000 /* ... and at least this often */

/* The arrays a job's view points into. */
typedef struct qn_status_mem {
    Quern__Counter *cs;
    Quern__Counter **cp;
    Quern__AttemptFailure *fs;
    Quern__AttemptFailure **fp;
    Quern__SkippedRecord *ss;
    Quern__SkippedRecord **sp;
    Quern__TaskInfo *ts;
    Quern__TaskInfo **tp;
} qn_status_mem;

/* Task `task` of kind of job jx as users see it at now; its strings
 * point into m. */
void qn_status_task(qn_master *m, int jx, qn_kind kind, unsigned task,
                    int64_t now, Quern__TaskInfo *out);

/* Job jx as users see it at now, without its tasks, into st; free mem
 * (zeroed by the caller) with qn_status_release. */
void qn_status_job(qn_master *m, int jx, int64_t now, Quern__JobStatus *st,
                   qn_status_mem *mem);

/* Add each task of job jx to st (after qn_status_job, same mem). */
void qn_status_tasks(qn_master *m, int jx, Quern__JobStatus *st,
                     qn_status_mem *mem, int64_t now);

/* Free what a view's arrays hold. */
void qn_status_release(qn_status_mem *mem);

/* Send a StatusReply to route: job jx (every job when jx < 0; none, with
 * the error, when error is set), with its tasks when tasks is set. */
void qn_status_send(qn_master *m, const char *route, size_t routelen, int jx,
                    const char *error, int tasks, int64_t now);

/* The client at route follows job jx: it gets its status pushed while
 * the job runs, and once more when it ends. */
void qn_status_watch(qn_master *m, int jx, const char *route, size_t routelen);

/* Job jx changed: its watchers get a push soon (QN_STATUS_PUSH_MIN_MS
 * after the last one). */
void qn_status_dirty(qn_master *m, int jx);

/* Push job jx's status to its watchers now (the last push, if it ended). */
void qn_status_push(qn_master *m, int jx, int64_t now);

/* The push deadline of job jx set for at fell due: push if it is due. */
void qn_status_push_due(qn_master *m, int jx, int64_t at, int64_t now);

/* Every worker as users see it. */
typedef struct qn_workers_view {
    Quern__WorkerInfo *wi; /* [n] */
    Quern__WorkerInfo **wp;
    size_t n;
    Quern__AttemptRef *refs; /* what their running lists point into */
    char (*waits)[400];      /* [n]: what draining workers wait for */
    char **sbnames;          /* [n * 16]: their sandbox layers' names */
} qn_workers_view;

/* Worker w's state, as quern workers shows it. */
Quern__WorkerState qn_status_worker_state(const qn_master *m, int w);

/* What draining worker w still waits for (drain.h), as text into buf (""
 * and 0: nothing, it may be drained). */
int qn_status_drain_waits(qn_master *m, int w, char *buf, size_t cap);

/* Live workers draining, and drained. */
void qn_status_drain_counts(const qn_master *m, unsigned *draining,
                            unsigned *drained);

/* Fill v with every worker at now; free it with
 * qn_status_workers_release. */
void qn_status_workers(qn_master *m, int64_t now, qn_workers_view *v);
void qn_status_workers_release(qn_workers_view *v);

#endif
