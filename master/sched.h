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
 *
 * The rules, each tested in tests/test_sched.c:
 * - A task runs at most QN_SCHED_MAX_RUNNING attempts at once: the first,
 *   and near the end of its phase a backup when the job speculates.
 * - An attempt that fails (reported, or no progress within the task
 *   timeout) counts against the task's max_attempts; one lost with its
 *   worker counts against a looser bound (QN_SCHED_LOSS_FACTOR times
 *   max_attempts), since the task did nothing wrong.
 * - A worker that has failed QN_SCHED_BAN_AFTER attempts of a job gets no
 *   more of that job's tasks, unless every live worker is in that state.
 * - A task whose latest attempt failed on a worker runs again on another
 *   live worker (waiting for a slot there, or taking a waiting reduce's),
 *   unless none other may run its job's tasks.
 * - A dead worker's running attempts are lost; its completed maps run
 *   again while any reduce of their job is unfinished.
 * - A worker whose process restarted (the same worker, a new incarnation)
 *   loses only its running attempts: its completed maps stay done, unless
 *   the master finds it no longer holds their output. A map output that
 *   turns up on a live worker (it came back after it was given up for
 *   dead, or its success was not heard) is taken back while its map is not
 *   done again: the map is done with it, and attempts re-making it are
 *   cancelled. So a restart never makes a job's done maps fewer.
 * - A draining worker has no slots (the master sets them to 0): what it
 *   runs finishes there, unless evicted (qn_sched_worker_evict), when it
 *   runs elsewhere; its done maps stay done, served from it.
 * - Free slots go to the running job with the fewest running tasks (the
 *   oldest on ties), so jobs share the cluster.
 * - A map goes to a free worker holding a copy of its input; after
 *   locality_wait_ms without one it may go to any worker (which streams
 *   the input from a holder). A map whose input no live worker holds
 *   waits; past shard_wait_ms its job fails (QN_FAIL_NO_HOLDER).
 * - Pending tasks start in the order they became pending, except that a
 *   task that ran before (an attempt failed or was lost, or its map output
 *   went with its worker) goes ahead of those that never ran.
 * - Reduces start once no map of their job is pending (every map runs or
 *   is done), so they fetch map outputs as the last maps finish. A reduce
 *   waiting for maps (still running, or run again) does not time out
 *   meanwhile, and its clock starts when the last map is done. If a map
 *   finds no free slot it may run in, a waiting reduce of its job is
 *   cancelled (not counted as a failure) and runs later, so reduces cannot
 *   hold every slot while the maps they wait for cannot start. Only for
 *   the maps waiting beyond those of the job that run: a running map
 *   frees its slot when it ends, for a map that waits (maps go before
 *   reduces), so waiting for it costs no reduce its fetched input. A job
 *   whose maps keep failing, one at a time while others run, cancels no
 *   reduce for them; a reduce gives way only when more maps wait than
 *   run (a worker lost with its outputs, say).
 * - Backups: once a phase has no pending tasks and at least one finished,
 *   an attempt running longer than both the phase's mean task time and
 *   spec_min_ms, and expected (from its progress) to take more than
 *   QN_SCHED_SPEC_SLOWER times the mean, gets a backup on another worker
 *   with a free slot (for a map, one a waiting reduce of its job gives up
 *   if none is free); at most a tenth of all slots (at least one) run
 *   backups. The first attempt to succeed wins; the others are cancelled.
 *   A phase's mean task time counts only working time, not time a reduce
 *   waited for maps.
 */
#ifndef QN_SCHED_H
#define QN_SCHED_H

#include <stdint.h>

typedef enum { QN_MAP = 0, QN_REDUCE = 1 } qn_kind;

#define QN_SCHED_MAX_RUNNING 2 /* attempts of one task at once */
#define QN_SCHED_BAN_AFTER 3   /* failed attempts of a job on one worker */
#define QN_SCHED_LOSS_FACTOR 3 /* lost attempts allowed per max_attempts */
#define QN_SCHED_SPEC_SLOWER 2 /* expected time over the mean for a backup */
#define QN_SCHED_SPEC_CHECK_MS 500 /* how often stragglers are looked for */

typedef struct qn_sched_config {
    int64_t dead_ms;          /* a worker silent this long is dead */
    int64_t task_timeout_ms;  /* an attempt without progress this long fails */
    int64_t spec_min_ms;      /* no backup for an attempt younger than this */
    int64_t locality_wait_ms; /* a map waits this long for a free worker
                                 holding its input before it may run on
                                 another (which streams the input) */
    int64_t shard_wait_ms;    /* a map whose input no live worker holds
                                 waits this long; then its job fails */
} qn_sched_config;

/*
 * Where a map's input is, as the scheduler asks the master: 1 if worker
 * holds a copy of map's input, 0 if not, QN_LOC_ANY if the input is not
 * tied to workers (a path every worker can read).
 */
#define QN_LOC_ANY (-1)
typedef int (*qn_sched_local_fn)(void *ctx, int job, unsigned map, int worker);

/* Why a job failed (QN_ACT_JOB_FAILED's reason). */
#define QN_FAIL_ATTEMPTS 0  /* a task ran out of attempts */
#define QN_FAIL_NO_HOLDER 1 /* no live worker holds a map's input */

typedef enum {
    QN_ACT_ASSIGN,       /* start attempt on worker */
    QN_ACT_CANCEL,       /* kill attempt on worker (it may be gone) */
    QN_ACT_ATTEMPT_LOST, /* attempt failed without a report: see reason */
    QN_ACT_WORKER_DEAD,  /* worker declared dead */
    QN_ACT_JOB_DONE,     /* every reduce succeeded: commit the output */
    QN_ACT_JOB_FAILED,   /* task ran out of attempts (kind, task say which) */
    QN_ACT_MAP_RERUN,    /* a done map runs again: its output was lost */
} qn_act_kind;

typedef enum {
    QN_LOST_WORKER_DEAD = 1, /* its worker stopped heartbeating */
    QN_LOST_TIMEOUT,         /* no progress within the task timeout */
    QN_LOST_VANISHED,        /* its worker does not have it (a message lost) */
    QN_LOST_RESTARTED,       /* its worker's process restarted */
    QN_LOST_DRAINED,         /* its worker is draining, past its deadline */
} qn_lost_reason;

/* Why a done map runs again (QN_ACT_MAP_RERUN's reason). */
#define QN_RERUN_FETCH 0    /* reducers could not fetch its output */
#define QN_RERUN_DEAD 1     /* its worker died */
#define QN_RERUN_NOT_KEPT 2 /* its worker restarted without it */

/* Why an attempt is cancelled. */
typedef enum {
    QN_CANCEL_JOB_END = 1, /* its job ended (done, failed or cancelled) */
    QN_CANCEL_TIMEOUT,     /* no progress within the task timeout */
    QN_CANCEL_LOST_RACE,   /* another attempt of its task finished first */
    QN_CANCEL_PREEMPTED,   /* a reduce waiting for maps made room for one */
    QN_CANCEL_DRAINED,     /* its worker is draining, past its deadline */
} qn_cancel_reason;

typedef struct qn_action {
    qn_act_kind act;
    int worker;       /* ASSIGN, CANCEL, ATTEMPT_LOST, WORKER_DEAD */
    int job;          /* all but WORKER_DEAD */
    qn_kind kind;     /* task kind */
    unsigned task;    /* task index within its kind */
    unsigned attempt; /* attempt number, from 1 */
    int reason;       /* ATTEMPT_LOST: a qn_lost_reason; CANCEL: a
                         qn_cancel_reason; MAP_RERUN: a QN_RERUN_* */
    int backup;       /* ASSIGN: a backup of a running attempt */
    int local;        /* ASSIGN of a map: 1 data-local, 0 remote,
                         QN_LOC_ANY input readable anywhere */
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
    unsigned losses;   /* attempts lost with their worker */
    unsigned running;  /* attempts running now (0 to QN_SCHED_MAX_RUNNING) */
    unsigned attempt;  /* RUNNING: the oldest running attempt; DONE: the
                          attempt whose output counts */
    int worker;        /* RUNNING or DONE: where that attempt ran */
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

/*
 * Tell the scheduler how to learn where maps' inputs are (without it,
 * every input is QN_LOC_ANY).
 */
void qn_sched_set_locality(qn_sched *s, qn_sched_local_fn fn, void *ctx);

/* Copies of inputs appeared or went away: look again at waiting maps. */
void qn_sched_locality_changed(qn_sched *s, int64_t now);

/* A worker with slots task slots joined; returns its handle. */
int qn_sched_worker_join(qn_sched *s, int64_t now, unsigned slots);

/* A worker was heard from (any message). Returns 0, or -1 if it is
 * unknown or already declared dead (it must join again). */
int qn_sched_worker_seen(qn_sched *s, int64_t now, int worker);

/*
 * A worker's process restarted: its running attempts are lost (reason
 * QN_LOST_RESTARTED), but it stays alive, and its done maps stay done.
 */
void qn_sched_worker_restarted(qn_sched *s, int64_t now, int worker);

/*
 * The output of a map task's attempt is on live worker: if the job is
 * running with reduces to do and the task is not done (its output was
 * given up with its worker, or the attempt's success was not heard), the
 * map is done with that output, and attempts running for it are
 * cancelled. The attempt must be one the task started. 0, or -1 if not
 * taken.
 */
int qn_sched_take_back(qn_sched *s, int64_t now, int job, unsigned task,
                       unsigned attempt, int worker);

/*
 * A done map's output is not on its worker after all (it restarted
 * without it): the map runs again (QN_RERUN_NOT_KEPT). 0, or -1 if that
 * attempt's output is not the one in use.
 */
int qn_sched_map_not_kept(qn_sched *s, int64_t now, int job, unsigned task,
                          unsigned attempt);

/*
 * A draining worker's deadline passed: its running attempts are cancelled
 * there and run elsewhere (QN_LOST_DRAINED, counted as losses, not
 * failures). Its done maps stay done: it still serves their output.
 */
void qn_sched_worker_evict(qn_sched *s, int64_t now, int worker);

/* Done maps whose output is on worker and still needed: their job runs
 * and has reduces to finish. */
unsigned qn_sched_worker_outputs(const qn_sched *s, int worker);

/* A worker left on purpose (or its connection is known to be gone). */
void qn_sched_worker_leave(qn_sched *s, int64_t now, int worker);

/* Is the worker alive? */
int qn_sched_worker_alive(const qn_sched *s, int worker);

/* Attempts running on a worker (for display). */
unsigned qn_sched_worker_busy(const qn_sched *s, int worker);

/* The worker now has this many slots (a restarted master restores its
 * workers with none until each is heard from again). */
void qn_sched_worker_slots(qn_sched *s, int64_t now, int worker,
                           unsigned slots);

/*
 * A job with nmaps map tasks (at least 1) and nreduce reduce tasks (at
 * least 1); each task gets at most max_attempts attempts. Returns its
 * handle.
 */
int qn_sched_job_add(qn_sched *s, int64_t now, unsigned nmaps, unsigned nreduce,
                     unsigned max_attempts);

/* What a restarted master knows of one task (qn_sched_job_restore). */
typedef struct qn_task_restore {
    unsigned attempts;     /* attempts started before the restart */
    unsigned done_attempt; /* the attempt whose output counts; 0: not done */
    int done_worker;       /* where that output is (-1: unknown) */
} qn_task_restore;

/*
 * A job as a restarted master found it: like qn_sched_job_add, but each
 * task (maps[i], reduces[i]; a NULL array: none had started) keeps the
 * count of attempts it had started, so a new attempt gets a new number
 * and a message from an old one stays stale, and a task done stays done
 * instead of running again. A job in a state other than QN_JOB_RUNNING is
 * history: nothing of it runs. A running job whose reduces are all done
 * ends at once (QN_ACT_JOB_DONE). Returns its handle, or -1.
 */
int qn_sched_job_restore(qn_sched *s, int64_t now, unsigned nmaps,
                         unsigned nreduce, unsigned max_attempts,
                         qn_job_state state, const qn_task_restore *maps,
                         const qn_task_restore *reduces);

/*
 * Start nothing before until: a restarted master waits for its workers
 * to say what they run (qn_sched_adopt) before it starts anything anew.
 * Workers still join, jobs are still added, and time still runs out.
 */
void qn_sched_hold(qn_sched *s, int64_t until);

/*
 * A worker runs attempt of a task that this scheduler did not start (a
 * restarted master learns of it): take it as running there, as if it had
 * been started now. Only an attempt the task had started (attempt <= its
 * attempts), of a running job, not done, not already running, on a live
 * worker, with room for one more attempt. 0, or -1 if not taken (the
 * caller has it killed).
 */
int qn_sched_adopt(qn_sched *s, int64_t now, int job, qn_kind kind,
                   unsigned task, unsigned attempt, int worker);

/*
 * Take several events as one (on: 1, then 0): between the two calls
 * nothing is started or cancelled to make room, so a worker that
 * restarted is not given work in its old process's slots, nor a map whose
 * output it is about to offer; leaving (0) schedules once.
 */
void qn_sched_batch(qn_sched *s, int64_t now, int on);

/* Let a job's tasks get backup attempts (off unless set). */
void qn_sched_job_speculate(qn_sched *s, int job, int on);

/* Cancel a running job: its attempts are killed. Returns 0 or -1. */
int qn_sched_job_cancel(qn_sched *s, int64_t now, int job);

/* The job's state and task counts. */
qn_job_info qn_sched_job(const qn_sched *s, int job);

/* One task's state. */
qn_task_info qn_sched_task(const qn_sched *s, int job, qn_kind kind,
                           unsigned task);

/* The worker running attempt of a task if that attempt is running, or -1. */
int qn_sched_attempt_worker(const qn_sched *s, int job, qn_kind kind,
                            unsigned task, unsigned attempt);

/*
 * The running attempts of a task: fills up to QN_SCHED_MAX_RUNNING
 * attempt numbers and workers; returns how many.
 */
unsigned qn_sched_running(const qn_sched *s, int job, qn_kind kind,
                          unsigned task, unsigned *attempts, int *workers);

/* One running attempt, as listed by qn_sched_worker_attempts. */
typedef struct qn_attempt_ref {
    int job;
    qn_kind kind;
    unsigned task, attempt;
    int64_t started;
} qn_attempt_ref;

/* The attempts running on a worker: fills up to cap; returns how many. */
unsigned qn_sched_worker_attempts(const qn_sched *s, int worker,
                                  qn_attempt_ref *out, unsigned cap);

/*
 * The worker says it does not run an attempt the scheduler thinks it runs
 * (an assignment or a result was lost on the way): the attempt is lost,
 * not failed. Returns QN_SCHED_ACCEPTED or QN_SCHED_STALE.
 */
int qn_sched_vanished(qn_sched *s, int64_t now, int job, qn_kind kind,
                      unsigned task, unsigned attempt);

/* An attempt reported progress (it is alive and working). Stale reports are
 * ignored. fraction (0..1, or negative if unknown) is how far it got. */
void qn_sched_progress(qn_sched *s, int64_t now, int job, qn_kind kind,
                       unsigned task, unsigned attempt);
void qn_sched_fraction(qn_sched *s, int job, qn_kind kind, unsigned task,
                       unsigned attempt, double fraction);

/* A heartbeat says how much an attempt has done (records plus bytes); it
 * counts as progress only if the figure grew. */
void qn_sched_work(qn_sched *s, int64_t now, int job, qn_kind kind,
                   unsigned task, unsigned attempt, uint64_t work);

/*
 * Reducers could not fetch the output of a done map's attempt: run the map
 * again. Returns 0, or -1 if that attempt's output is not the one in use
 * (the map is already running again, or the report is stale).
 */
int qn_sched_map_lost(qn_sched *s, int64_t now, int job, unsigned task,
                      unsigned attempt);

/* An attempt succeeded. Returns QN_SCHED_ACCEPTED or QN_SCHED_STALE. */
int qn_sched_done(qn_sched *s, int64_t now, int job, qn_kind kind,
                  unsigned task, unsigned attempt);

/* An attempt failed through its own fault (it counts against its worker
 * too). Returns QN_SCHED_ACCEPTED or QN_SCHED_STALE. */
int qn_sched_failed(qn_sched *s, int64_t now, int job, qn_kind kind,
                    unsigned task, unsigned attempt);

/* An attempt failed through no fault of its own or its worker's: an
 * input it read was corrupt (a reduce that reported a map output lost).
 * It counts as lost, not failed. Returns QN_SCHED_ACCEPTED or
 * QN_SCHED_STALE. */
int qn_sched_spoiled(qn_sched *s, int64_t now, int job, qn_kind kind,
                     unsigned task, unsigned attempt);

/* The clock moved: check heartbeats and task timeouts. */
void qn_sched_tick(qn_sched *s, int64_t now);

/* When qn_sched_tick must next be called (INT64_MAX: no deadline). */
int64_t qn_sched_deadline(const qn_sched *s);

/* Pop the next action; returns 1, or 0 when there is none. */
int qn_sched_next_action(qn_sched *s, qn_action *a);

#endif
