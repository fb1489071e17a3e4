/*
 * sched.c -- see sched.h.
 */
#include "sched.h"

#include "util.h"

#include <stdlib.h>
#include <string.h>

typedef struct {
    int alive;
    unsigned slots;
    unsigned busy; /* attempts running on it */
    int64_t seen;  /* last time it was heard from */
} s_worker;

typedef struct {
    qn_task_state state;
    unsigned attempts; /* attempts started */
    unsigned failures; /* attempts failed */
    unsigned attempt;  /* RUNNING/DONE: the attempt */
    int worker;        /* RUNNING/DONE: where */
    int64_t started;   /* RUNNING: start time */
    int64_t progress;  /* RUNNING: last sign of progress */
    int queued;        /* in its job's pending queue */
} s_task;

/* A FIFO of task indices; each task is in it at most once. */
typedef struct {
    unsigned *items;
    unsigned cap, head, len;
} s_queue;

typedef struct {
    qn_job_state state;
    unsigned n[2]; /* tasks per kind */
    unsigned done[2];
    unsigned running[2];
    unsigned max_attempts;
    s_task *tasks[2];
    s_queue pending[2];
} s_job;

/* A running attempt, listed so timeouts need not scan every task. */
typedef struct {
    int job;
    qn_kind kind;
    unsigned task;
} s_run;

struct qn_sched {
    qn_sched_config cfg;
    s_worker *workers;
    int nworkers, cap_workers;
    s_job *jobs;
    int njobs, cap_jobs;
    s_run *runs;
    unsigned nruns, cap_runs;
    qn_action *acts; /* ring of pending actions */
    unsigned acts_head, acts_len, acts_cap;
    int next_worker; /* round-robin start for ties */
};

/* ---- small containers ---------------------------------------------------- */

static void s_queue_push(s_queue *q, unsigned v)
{
    q->items[(q->head + q->len) % q->cap] = v;
    q->len++;
}

static unsigned s_queue_pop(s_queue *q)
{
    unsigned v = q->items[q->head];
    q->head = (q->head + 1) % q->cap;
    q->len--;
    return v;
}

static void s_act(qn_sched *s, qn_action a)
{
    if (s->acts_len == s->acts_cap) {
        unsigned cap = s->acts_cap ? s->acts_cap * 2 : 64;
        qn_action *n = qn_malloc(cap * sizeof *n);
        for (unsigned i = 0; i < s->acts_len; i++)
            n[i] = s->acts[(s->acts_head + i) % s->acts_cap];
        free(s->acts);
        s->acts = n;
        s->acts_cap = cap;
        s->acts_head = 0;
    }
    s->acts[(s->acts_head + s->acts_len) % s->acts_cap] = a;
    s->acts_len++;
}

static void s_run_add(qn_sched *s, int job, qn_kind kind, unsigned task)
{
    if (s->nruns == s->cap_runs) {
        s->cap_runs = s->cap_runs ? s->cap_runs * 2 : 64;
        s->runs = qn_realloc(s->runs, s->cap_runs * sizeof *s->runs);
    }
    s->runs[s->nruns++] = (s_run){job, kind, task};
}

static void s_run_remove(qn_sched *s, int job, qn_kind kind, unsigned task)
{
    for (unsigned i = 0; i < s->nruns; i++) {
        s_run *r = &s->runs[i];
        if (r->job == job && r->kind == kind && r->task == task) {
            *r = s->runs[--s->nruns];
            return;
        }
    }
}

/*
 * A copy of the run list (free it): failing one attempt can end its job
 * and stop others, which reorders the list under a loop walking it.
 */
static s_run *s_runs_copy(const qn_sched *s, unsigned *n)
{
    *n = s->nruns;
    s_run *copy = qn_malloc((*n ? *n : 1) * sizeof *copy);
    if (*n)
        memcpy(copy, s->runs, *n * sizeof *copy);
    return copy;
}

/* ---- lifecycle ----------------------------------------------------------- */

qn_sched *qn_sched_new(const qn_sched_config *cfg)
{
    qn_sched *s = qn_calloc(1, sizeof *s);
    s->cfg = *cfg;
    return s;
}

void qn_sched_destroy(qn_sched **self_p)
{
    qn_sched *s = *self_p;
    if (!s)
        return;
    for (int j = 0; j < s->njobs; j++) {
        for (int k = 0; k < 2; k++) {
            free(s->jobs[j].tasks[k]);
            free(s->jobs[j].pending[k].items);
        }
    }
    free(s->jobs);
    free(s->workers);
    free(s->runs);
    free(s->acts);
    free(s);
    *self_p = NULL;
}

static int s_job_ok(const qn_sched *s, int job)
{
    return job >= 0 && job < s->njobs;
}

static s_task *s_task_at(qn_sched *s, int job, qn_kind kind, unsigned task)
{
    if (!s_job_ok(s, job) || (kind != QN_MAP && kind != QN_REDUCE) ||
        task >= s->jobs[job].n[kind])
        return NULL;
    return &s->jobs[job].tasks[kind][task];
}

/* ---- scheduling ---------------------------------------------------------- */

static void s_make_pending(s_job *j, qn_kind kind, unsigned task)
{
    s_task *t = &j->tasks[kind][task];
    t->state = QN_TASK_PENDING;
    if (!t->queued) {
        t->queued = 1;
        s_queue_push(&j->pending[kind], task);
    }
}

/* The alive worker with the most free slots, or -1. */
static int s_pick_worker(qn_sched *s)
{
    int best = -1;
    unsigned best_free = 0;
    for (int i = 0; i < s->nworkers; i++) {
        int w = (s->next_worker + i) % s->nworkers;
        s_worker *wk = &s->workers[w];
        if (!wk->alive || wk->busy >= wk->slots)
            continue;
        unsigned free_slots = wk->slots - wk->busy;
        if (free_slots > best_free) {
            best = w;
            best_free = free_slots;
        }
    }
    return best;
}

/*
 * The next task to run: the oldest job's pending maps first, and its
 * reduces once all its maps are done. Returns 1 and sets the outputs.
 */
static int s_pick_task(qn_sched *s, int *job, qn_kind *kind, unsigned *task)
{
    for (int jx = 0; jx < s->njobs; jx++) {
        s_job *j = &s->jobs[jx];
        if (j->state != QN_JOB_RUNNING)
            continue;
        qn_kind k = QN_MAP;
        if (j->pending[QN_MAP].len == 0) {
            if (j->done[QN_MAP] < j->n[QN_MAP] ||
                j->pending[QN_REDUCE].len == 0)
                continue;
            k = QN_REDUCE;
        }
        unsigned t = s_queue_pop(&j->pending[k]);
        j->tasks[k][t].queued = 0;
        *job = jx;
        *kind = k;
        *task = t;
        return 1;
    }
    return 0;
}

static void s_start(qn_sched *s, int64_t now, int w, int job, qn_kind kind,
                    unsigned task)
{
    s_job *j = &s->jobs[job];
    s_task *t = &j->tasks[kind][task];
    t->state = QN_TASK_RUNNING;
    t->attempt = ++t->attempts;
    t->worker = w;
    t->started = t->progress = now;
    j->running[kind]++;
    s->workers[w].busy++;
    s_run_add(s, job, kind, task);
    s_act(s, (qn_action){.act = QN_ACT_ASSIGN,
                         .worker = w,
                         .job = job,
                         .kind = kind,
                         .task = task,
                         .attempt = t->attempt});
}

static void s_schedule(qn_sched *s, int64_t now)
{
    for (;;) {
        int w = s_pick_worker(s);
        if (w < 0)
            return;
        int job;
        qn_kind kind;
        unsigned task;
        if (!s_pick_task(s, &job, &kind, &task))
            return;
        s_start(s, now, w, job, kind, task);
        s->next_worker = (w + 1) % s->nworkers;
    }
}

/* The running attempt of t stops: free its slot. */
static void s_stop(qn_sched *s, int job, qn_kind kind, unsigned task)
{
    s_task *t = &s->jobs[job].tasks[kind][task];
    s->jobs[job].running[kind]--;
    if (t->worker >= 0 && t->worker < s->nworkers &&
        s->workers[t->worker].busy > 0)
        s->workers[t->worker].busy--;
    s_run_remove(s, job, kind, task);
}

/* End a job that did not succeed: kill its attempts, clear its queues. */
static void s_end_job(qn_sched *s, int job, qn_job_state state)
{
    s_job *j = &s->jobs[job];
    j->state = state;
    for (int k = 0; k < 2; k++) {
        for (unsigned i = 0; i < j->n[k]; i++) {
            s_task *t = &j->tasks[k][i];
            t->queued = 0;
            if (t->state != QN_TASK_RUNNING)
                continue;
            s_act(s, (qn_action){.act = QN_ACT_CANCEL,
                                 .worker = t->worker,
                                 .job = job,
                                 .kind = (qn_kind)k,
                                 .task = i,
                                 .attempt = t->attempt});
            s_stop(s, job, (qn_kind)k, i);
            t->state = QN_TASK_PENDING;
        }
        j->pending[k].len = 0;
    }
}

/* The running attempt of a task failed (reported, lost or timed out). */
static void s_attempt_failed(qn_sched *s, int job, qn_kind kind, unsigned task)
{
    s_job *j = &s->jobs[job];
    s_task *t = &j->tasks[kind][task];
    s_stop(s, job, kind, task);
    t->failures++;
    if (t->failures >= j->max_attempts) {
        t->state = QN_TASK_PENDING;
        s_end_job(s, job, QN_JOB_FAILED);
        s_act(s, (qn_action){.act = QN_ACT_JOB_FAILED,
                             .worker = -1,
                             .job = job,
                             .kind = kind,
                             .task = task,
                             .attempt = t->attempt});
        return;
    }
    s_make_pending(j, kind, task);
}

/* ---- events -------------------------------------------------------------- */

int qn_sched_worker_join(qn_sched *s, int64_t now, unsigned slots)
{
    if (s->nworkers == s->cap_workers) {
        s->cap_workers = s->cap_workers ? s->cap_workers * 2 : 16;
        s->workers =
            qn_realloc(s->workers, (size_t)s->cap_workers * sizeof *s->workers);
    }
    int w = s->nworkers++;
    s->workers[w] = (s_worker){.alive = 1, .slots = slots, .seen = now};
    s_schedule(s, now);
    return w;
}

int qn_sched_worker_seen(qn_sched *s, int64_t now, int worker)
{
    if (worker < 0 || worker >= s->nworkers || !s->workers[worker].alive)
        return -1;
    s->workers[worker].seen = now;
    return 0;
}

int qn_sched_worker_alive(const qn_sched *s, int worker)
{
    return worker >= 0 && worker < s->nworkers && s->workers[worker].alive;
}

unsigned qn_sched_worker_busy(const qn_sched *s, int worker)
{
    if (worker < 0 || worker >= s->nworkers)
        return 0;
    return s->workers[worker].busy;
}

/*
 * A worker is gone: its running attempts are lost, and maps it completed
 * for jobs that still need their output must run again elsewhere.
 */
static void s_worker_gone(qn_sched *s, int64_t now, int w)
{
    s->workers[w].alive = 0;
    s_act(s, (qn_action){.act = QN_ACT_WORKER_DEAD, .worker = w, .job = -1});
    /* Work from a copy of the run list and re-check each entry. */
    unsigned n;
    s_run *snap = s_runs_copy(s, &n);
    for (unsigned i = 0; i < n; i++) {
        s_run r = snap[i];
        s_task *t = &s->jobs[r.job].tasks[r.kind][r.task];
        if (t->state != QN_TASK_RUNNING || t->worker != w ||
            s->jobs[r.job].state != QN_JOB_RUNNING)
            continue;
        s_act(s, (qn_action){.act = QN_ACT_ATTEMPT_LOST,
                             .worker = w,
                             .job = r.job,
                             .kind = r.kind,
                             .task = r.task,
                             .attempt = t->attempt,
                             .reason = QN_LOST_WORKER_DEAD});
        s_attempt_failed(s, r.job, r.kind, r.task);
    }
    free(snap);
    for (int jx = 0; jx < s->njobs; jx++) {
        s_job *j = &s->jobs[jx];
        if (j->state != QN_JOB_RUNNING || j->done[QN_REDUCE] == j->n[QN_REDUCE])
            continue;
        for (unsigned i = 0; i < j->n[QN_MAP]; i++) {
            s_task *t = &j->tasks[QN_MAP][i];
            if (t->state == QN_TASK_DONE && t->worker == w) {
                j->done[QN_MAP]--;
                s_make_pending(j, QN_MAP, i);
            }
        }
    }
    s->workers[w].busy = 0;
    s_schedule(s, now);
}

void qn_sched_worker_leave(qn_sched *s, int64_t now, int worker)
{
    if (worker >= 0 && worker < s->nworkers && s->workers[worker].alive)
        s_worker_gone(s, now, worker);
}

int qn_sched_job_add(qn_sched *s, int64_t now, unsigned nmaps, unsigned nreduce,
                     unsigned max_attempts)
{
    if (nmaps == 0 || nreduce == 0 || max_attempts == 0)
        return -1;
    if (s->njobs == s->cap_jobs) {
        s->cap_jobs = s->cap_jobs ? s->cap_jobs * 2 : 8;
        s->jobs = qn_realloc(s->jobs, (size_t)s->cap_jobs * sizeof *s->jobs);
    }
    int jx = s->njobs++;
    s_job *j = &s->jobs[jx];
    memset(j, 0, sizeof *j);
    j->state = QN_JOB_RUNNING;
    j->n[QN_MAP] = nmaps;
    j->n[QN_REDUCE] = nreduce;
    j->max_attempts = max_attempts;
    for (int k = 0; k < 2; k++) {
        j->tasks[k] = qn_calloc(j->n[k], sizeof(s_task));
        j->pending[k].items = qn_calloc(j->n[k], sizeof(unsigned));
        j->pending[k].cap = j->n[k];
        for (unsigned i = 0; i < j->n[k]; i++) {
            j->tasks[k][i].worker = -1;
            s_make_pending(j, (qn_kind)k, i);
        }
    }
    s_schedule(s, now);
    return jx;
}

int qn_sched_job_cancel(qn_sched *s, int64_t now, int job)
{
    if (!s_job_ok(s, job) || s->jobs[job].state != QN_JOB_RUNNING)
        return -1;
    s_end_job(s, job, QN_JOB_CANCELLED);
    s_schedule(s, now);
    return 0;
}

qn_job_info qn_sched_job(const qn_sched *s, int job)
{
    qn_job_info info = {0};
    if (!s_job_ok(s, job))
        return info;
    const s_job *j = &s->jobs[job];
    info.state = j->state;
    info.maps = j->n[QN_MAP];
    info.maps_done = j->done[QN_MAP];
    info.maps_running = j->running[QN_MAP];
    info.reduces = j->n[QN_REDUCE];
    info.reduces_done = j->done[QN_REDUCE];
    info.reduces_running = j->running[QN_REDUCE];
    return info;
}

qn_task_info qn_sched_task(const qn_sched *s, int job, qn_kind kind,
                           unsigned task)
{
    qn_task_info info = {.worker = -1};
    const s_task *t = s_task_at((qn_sched *)s, job, kind, task);
    if (!t)
        return info;
    info.state = t->state;
    info.attempts = t->attempts;
    info.failures = t->failures;
    if (t->state != QN_TASK_PENDING) {
        info.attempt = t->attempt;
        info.worker = t->worker;
        info.started = t->started;
    }
    return info;
}

/* The task, if attempt is its running attempt; NULL otherwise. */
static s_task *s_current(qn_sched *s, int job, qn_kind kind, unsigned task,
                         unsigned attempt)
{
    s_task *t = s_task_at(s, job, kind, task);
    if (!t || t->state != QN_TASK_RUNNING || t->attempt != attempt ||
        s->jobs[job].state != QN_JOB_RUNNING)
        return NULL;
    return t;
}

void qn_sched_progress(qn_sched *s, int64_t now, int job, qn_kind kind,
                       unsigned task, unsigned attempt)
{
    s_task *t = s_current(s, job, kind, task, attempt);
    if (t)
        t->progress = now;
}

int qn_sched_done(qn_sched *s, int64_t now, int job, qn_kind kind,
                  unsigned task, unsigned attempt)
{
    s_task *t = s_current(s, job, kind, task, attempt);
    if (!t)
        return QN_SCHED_STALE;
    s_job *j = &s->jobs[job];
    s_stop(s, job, kind, task);
    t->state = QN_TASK_DONE;
    j->done[kind]++;
    if (kind == QN_REDUCE && j->done[QN_REDUCE] == j->n[QN_REDUCE]) {
        /* A map re-run for a lost worker may still be going: stop it. */
        s_end_job(s, job, QN_JOB_DONE);
        s_act(s, (qn_action){.act = QN_ACT_JOB_DONE, .worker = -1, .job = job});
    }
    s_schedule(s, now);
    return QN_SCHED_ACCEPTED;
}

int qn_sched_failed(qn_sched *s, int64_t now, int job, qn_kind kind,
                    unsigned task, unsigned attempt)
{
    if (!s_current(s, job, kind, task, attempt))
        return QN_SCHED_STALE;
    s_attempt_failed(s, job, kind, task);
    s_schedule(s, now);
    return QN_SCHED_ACCEPTED;
}

void qn_sched_tick(qn_sched *s, int64_t now)
{
    /* Mark every overdue worker dead before rescheduling anything, so no
     * lost attempt is handed to a worker about to be declared dead too. */
    int *gone = qn_calloc((size_t)s->nworkers + 1, sizeof *gone);
    for (int w = 0; w < s->nworkers; w++) {
        if (s->workers[w].alive && now - s->workers[w].seen >= s->cfg.dead_ms) {
            s->workers[w].alive = 0;
            gone[w] = 1;
        }
    }
    for (int w = 0; w < s->nworkers; w++)
        if (gone[w])
            s_worker_gone(s, now, w);
    free(gone);
    unsigned n;
    s_run *snap = s_runs_copy(s, &n);
    for (unsigned i = 0; i < n; i++) {
        s_run r = snap[i];
        s_task *t = &s->jobs[r.job].tasks[r.kind][r.task];
        if (t->state != QN_TASK_RUNNING ||
            s->jobs[r.job].state != QN_JOB_RUNNING ||
            now - t->progress < s->cfg.task_timeout_ms)
            continue;
        s_act(s, (qn_action){.act = QN_ACT_CANCEL,
                             .worker = t->worker,
                             .job = r.job,
                             .kind = r.kind,
                             .task = r.task,
                             .attempt = t->attempt});
        s_act(s, (qn_action){.act = QN_ACT_ATTEMPT_LOST,
                             .worker = t->worker,
                             .job = r.job,
                             .kind = r.kind,
                             .task = r.task,
                             .attempt = t->attempt,
                             .reason = QN_LOST_TIMEOUT});
        s_attempt_failed(s, r.job, r.kind, r.task);
    }
    free(snap);
    s_schedule(s, now);
}

int64_t qn_sched_deadline(const qn_sched *s)
{
    int64_t d = INT64_MAX;
    for (int w = 0; w < s->nworkers; w++) {
        if (s->workers[w].alive && s->workers[w].seen + s->cfg.dead_ms < d)
            d = s->workers[w].seen + s->cfg.dead_ms;
    }
    for (unsigned i = 0; i < s->nruns; i++) {
        const s_run *r = &s->runs[i];
        const s_task *t = &s->jobs[r->job].tasks[r->kind][r->task];
        if (t->progress + s->cfg.task_timeout_ms < d)
            d = t->progress + s->cfg.task_timeout_ms;
    }
    return d;
}

int qn_sched_next_action(qn_sched *s, qn_action *a)
{
    if (s->acts_len == 0)
        return 0;
    *a = s->acts[s->acts_head];
    s->acts_head = (s->acts_head + 1) % s->acts_cap;
    s->acts_len--;
    return 1;
}
