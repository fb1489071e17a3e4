/*
 * sched.h -- the master's scheduling logic as a pure state machine.
 *
 * Events go in (a worker joined or sent a heartbeat, a job arrived, an
 * attempt made progress, finished or failed, the clock moved on); actions
 * come out (start this attempt on that worker, kill that one, a worker is
 * dead, a job is done or failed). The scheduler does no I/O and reads the
 * time only from its arguments, so tests drive it with a fake clock and
 * check every decision. The master daemon turns socket traffic into these
 * calls and the actions back into messages.
 *
 * Workers and jobs are named by small integer handles that the scheduler
 * hands out and never reuses. Attempts of a task are numbered from 1.
 */
#ifndef QN_SCHED_H
#define QN_SCHED_H

#include <stdint.h>

typedef enum { QN_MAP = 0, QN_REDUCE = 1 } qn_kind;

typedef struct qn_sched_config {
    int64_t dead_ms;         /* a worker silent this long is dead */
    int64_t task_timeout_ms; /* an attempt without progress this long fails */
} qn_sched_config;

typedef enum {
    QN_ACT_ASSIGN,       /* start attempt on worker */
    QN_ACT_CANCEL,       /* kill attempt on worker (it may be gone) */
    QN_ACT_ATTEMPT_LOST, /* attempt failed without a report: see reason */
    QN_ACT_WORKER_DEAD,  /* worker declared dead */
    QN_ACT_JOB_DONE,     /* every reduce succeeded: commit the output */
    QN_ACT_JOB_FAILED,   /* task ran out of attempts (kind, task say which) */
} qn_act_kind;

typedef enum {
    QN_LOST_WORKER_DEAD = 1, /* its worker stopped heartbeating */
    QN_LOST_TIMEOUT,         /* no progress within the task timeout */
} qn_lost_reason;

typedef struct qn_action {
    qn_act_kind act;
    int worker;       /* ASSIGN, CANCEL, ATTEMPT_LOST, WORKER_DEAD */
    int job;          /* all but WORKER_DEAD */
    qn_kind kind;     /* task kind */
    unsigned task;    /* task index within its kind */
    unsigned attempt; /* attempt number, from 1 */
    int reason;       /* ATTEMPT_LOST: a qn_lost_reason */
} qn_action;

/* Task states as reported by qn_sched_task(). */
typedef enum {
    QN_TASK_PENDING = 0, /* waiting for a slot (or for the map phase) */
    QN_TASK_RUNNING,
    QN_TASK_DONE,
} qn_task_state;

typedef struct qn_task_info {
    qn_task_state state;
    unsigned attempts; /* attempts started so far */
    unsigned failures; /* attempts that failed */
    unsigned attempt;  /* RUNNING or DONE: the attempt */
    int worker;        /* RUNNING or DONE: where it ran */
    int64_t started;   /* RUNNING: when it started */
} qn_task_info;

typedef enum {
    QN_JOB_RUNNING = 0,
    QN_JOB_DONE,
    QN_JOB_FAILED,
    QN_JOB_CANCELLED,
} qn_job_state;

typedef struct qn_job_info {
    qn_job_state state;
    unsigned maps, maps_done, maps_running;
    unsigned reduces, reduces_done, reduces_running;
} qn_job_info;

/* Results of reporting an attempt's end. */
#define QN_SCHED_ACCEPTED 0 /* the report changed the task */
#define QN_SCHED_STALE 1    /* about an attempt given up on, or a duplicate */

typedef struct qn_sched qn_sched;

/* A scheduler with the given timeouts. Caller owns the result. */
qn_sched *qn_sched_new(const qn_sched_config *cfg);

/* Free it; accepts NULL, clears the pointer. */
void qn_sched_destroy(qn_sched **self_p);

/* A worker with slots task slots joined; returns its handle. */
int qn_sched_worker_join(qn_sched *s, int64_t now, unsigned slots);

/* A worker was heard from (any message). Returns 0, or -1 if it is
 * unknown or already declared dead (it must join again). */
int qn_sched_worker_seen(qn_sched *s, int64_t now, int worker);

/* A worker left on purpose (or its connection is known to be gone). */
void qn_sched_worker_leave(qn_sched *s, int64_t now, int worker);

/* Is the worker alive? */
int qn_sched_worker_alive(const qn_sched *s, int worker);

/* Attempts running on a worker (for display). */
unsigned qn_sched_worker_busy(const qn_sched *s, int worker);

/*
 * A job with nmaps map tasks (at least 1) and nreduce reduce tasks (at
 * least 1); each task gets at most max_attempts attempts. Returns its
 * handle.
 */
int qn_sched_job_add(qn_sched *s, int64_t now, unsigned nmaps, unsigned nreduce,
                     unsigned max_attempts);

/* Cancel a running job: its attempts are killed. Returns 0 or -1. */
int qn_sched_job_cancel(qn_sched *s, int64_t now, int job);

/* The job's state and task counts. */
qn_job_info qn_sched_job(const qn_sched *s, int job);

/* One task's state. */
qn_task_info qn_sched_task(const qn_sched *s, int job, qn_kind kind,
                           unsigned task);

/* An attempt reported progress. Stale reports are ignored. */
void qn_sched_progress(qn_sched *s, int64_t now, int job, qn_kind kind,
                       unsigned task, unsigned attempt);

/* An attempt succeeded. Returns QN_SCHED_ACCEPTED or QN_SCHED_STALE. */
int qn_sched_done(qn_sched *s, int64_t now, int job, qn_kind kind,
                  unsigned task, unsigned attempt);

/* An attempt failed. Returns QN_SCHED_ACCEPTED or QN_SCHED_STALE. */
int qn_sched_failed(qn_sched *s, int64_t now, int job, qn_kind kind,
                    unsigned task, unsigned attempt);

/* The clock moved: check heartbeats and task timeouts. */
void qn_sched_tick(qn_sched *s, int64_t now);

/* When qn_sched_tick must next be called (INT64_MAX: no deadline). */
int64_t qn_sched_deadline(const qn_sched *s);

/* Pop the next action; returns 1, or 0 when there is none. */
int qn_sched_next_action(qn_sched *s, qn_action *a);

#endif
