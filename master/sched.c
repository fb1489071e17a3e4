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

/* One running attempt of a task. */
typedef struct {
    unsigned attempt;
    int worker;
    int64_t started;
    int64_t progress; /* last sign of progress */
    int64_t since;    /* when it last started working (not waiting) */
    double fraction;  /* how far it got, 0..1 */
    uint64_t work;    /* records plus bytes, from heartbeats */
    int backup;
} s_att;

typedef struct {
    qn_task_state state;
    unsigned attempts; /* attempts started */
    unsigned failures; /* attempts failed through their own fault */
    unsigned losses;   /* attempts lost with their worker */
    unsigned backups;  /* backup attempts started */
    unsigned nrun;
    s_att run[QN_SCHED_MAX_RUNNING];
    unsigned done_attempt; /* DONE: the attempt whose output counts */
    int done_worker;
    int queued;            /* in its job's pending queue */
    int64_t pending_since; /* when it last became pending */
    int64_t orphan_since;  /* pending with no live holder since (0: not) */
    int avoid; /* 1 + the worker its latest attempt failed on through its
                * own fault (a full disk, say), to run elsewhere; 0: none */
} s_task;

/* A FIFO of task indices. */
typedef struct {
    unsigned *items;
    unsigned cap, head, len;
} s_ring;

/* A job's pending tasks of one kind; each task is in it at most once.
 * Tasks that ran before (failed, lost, or their output lost) come first,
 * in the order they became pending, then those that never ran. */
typedef struct {
    s_ring ran, fresh;
    unsigned len; /* ran.len + fresh.len */
} s_queue;

typedef struct {
    qn_job_state state;
    unsigned n[2]; /* tasks per kind */
    unsigned done[2];
    unsigned running[2]; /* tasks with an attempt running */
    unsigned max_attempts;
    int speculate;
    int64_t took_ms[2]; /* summed run time of done tasks, per kind */
    unsigned took_n[2];
    unsigned *wfail; /* failed attempts per worker handle */
    int nwfail;
    s_task *tasks[2];
    s_queue pending[2];
} s_job;

/* A running attempt, listed so timeouts need not scan every task. */
typedef struct {
    int job;
    qn_kind kind;
    unsigned task;
    unsigned attempt;
} s_run;

struct qn_sched {
    qn_sched_config cfg;
    s_worker *workers;
    int nworkers;
    size_t cap_workers;
    s_job *jobs;
    int njobs;
    size_t cap_jobs;
    s_run *runs;
    unsigned nruns;
    size_t cap_runs;
    qn_action *acts; /* ring of pending actions */
    unsigned acts_head, acts_len, acts_cap;
    int next_worker;    /* round-robin start for ties */
    unsigned nbackups;  /* backup attempts running */
    int64_t spec_check; /* when to look for stragglers again */
    int64_t now;        /* the time of the event being handled */
    qn_sched_local_fn local;
    void *local_ctx;
    int loc_dirty;      /* holders may have changed: recheck orphans */
    int64_t hold_until; /* nothing starts before this (a restart's grace) */
    int batch;          /* qn_sched_batch: events wait to be scheduled */
};

#define SCAN_MAX 4096 /* pending maps looked at for a local one */

/* ---- small containers ---------------------------------------------------- */

static void s_ring_push(s_ring *r, unsigned v)
{
    r->items[(r->head + r->len) % r->cap] = v;
    r->len++;
}

static unsigned s_ring_take(s_ring *r, unsigned i)
{
    unsigned v = r->items[(r->head + i) % r->cap];
    if (i == 0) {
        r->head = (r->head + 1) % r->cap;
    } else {
        for (unsigned k = i; k + 1 < r->len; k++)
            r->items[(r->head + k) % r->cap] =
                r->items[(r->head + k + 1) % r->cap];
    }
    r->len--;
    return v;
}

/* The item at position i (0: the head). */
static unsigned s_queue_at(const s_queue *q, unsigned i)
{
    const s_ring *r = i < q->ran.len ? &q->ran : &q->fresh;
    if (r == &q->fresh)
        i -= q->ran.len;
    return r->items[(r->head + i) % r->cap];
}

/* Queue a task that never ran. */
static void s_queue_push(s_queue *q, unsigned v)
{
    s_ring_push(&q->fresh, v);
    q->len++;
}

/* Queue a task that ran before: ahead of those that never ran. */
static void s_queue_push_ran(s_queue *q, unsigned v)
{
    s_ring_push(&q->ran, v);
    q->len++;
}

/* Remove and return the item at position i (0: the head). */
static unsigned s_queue_take(s_queue *q, unsigned i)
{
    q->len--;
    if (i < q->ran.len)
        return s_ring_take(&q->ran, i);
    return s_ring_take(&q->fresh, i - q->ran.len);
}

static unsigned s_queue_pop(s_queue *q)
{
    return s_queue_take(q, 0);
}

static void s_queue_clear(s_queue *q)
{
    q->ran.len = q->fresh.len = q->len = 0;
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

static void s_run_add(qn_sched *s, int job, qn_kind kind, unsigned task,
                      unsigned attempt)
{
    QN_GROW(s->runs, s->cap_runs, (size_t)s->nruns + 1);
    s->runs[s->nruns++] = (s_run){job, kind, task, attempt};
}

static void s_run_remove(qn_sched *s, int job, qn_kind kind, unsigned task,
                         unsigned attempt)
{
    for (unsigned i = 0; i < s->nruns; i++) {
        s_run *r = &s->runs[i];
        if (r->job == job && r->kind == kind && r->task == task &&
            r->attempt == attempt) {
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
    s->spec_check = INT64_MAX;
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
            free(s->jobs[j].pending[k].ran.items);
            free(s->jobs[j].pending[k].fresh.items);
        }
        free(s->jobs[j].wfail);
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

static s_task *s_task_at(const qn_sched *s, int job, qn_kind kind,
                         unsigned task)
{
    if (!s_job_ok(s, job) || (kind != QN_MAP && kind != QN_REDUCE) ||
        task >= s->jobs[job].n[kind])
        return NULL;
    return &s->jobs[job].tasks[kind][task];
}

/* Index of attempt in t->run, or -1. */
static int s_att_index(const s_task *t, unsigned attempt)
{
    for (unsigned i = 0; i < t->nrun; i++)
        if (t->run[i].attempt == attempt)
            return (int)i;
    return -1;
}

/* ---- scheduling ---------------------------------------------------------- */

/* Take task out of its job's pending queue, if it is there. */
static void s_dequeue(s_job *j, qn_kind kind, unsigned task)
{
    s_task *t = &j->tasks[kind][task];
    if (!t->queued)
        return;
    s_queue *q = &j->pending[kind];
    for (unsigned i = 0; i < q->len; i++)
        if (s_queue_at(q, i) == task) {
            s_queue_take(q, i);
            break;
        }
    t->queued = 0;
}

static void s_make_pending(qn_sched *s, s_job *j, qn_kind kind, unsigned task)
{
    s_task *t = &j->tasks[kind][task];
    t->state = QN_TASK_PENDING;
    if (!t->queued) {
        t->queued = 1;
        t->pending_since = s->now;
        t->orphan_since = 0;
        /* A task that ran before (its attempt failed or was lost, or its
         * output went with its worker) goes first: the phase cannot end
         * without it, and it has waited once already. */
        if (t->attempts)
            s_queue_push_ran(&j->pending[kind], task);
        else
            s_queue_push(&j->pending[kind], task);
        if (kind == QN_MAP)
            s->loc_dirty = 1;
    }
}

/* Where map task of job jx is for worker w (QN_LOC_ANY without a fn). */
static int s_where(const qn_sched *s, int jx, unsigned task, int w)
{
    return s->local ? s->local(s->local_ctx, jx, task, w) : QN_LOC_ANY;
}

/* Does a live worker hold map task's input (or is it anywhere)? */
static int s_held(const qn_sched *s, int jx, unsigned task)
{
    for (int w = 0; w < s->nworkers; w++)
        if (s->workers[w].alive && s_where(s, jx, task, w) != 0)
            return 1;
    return s->nworkers == 0 && s_where(s, jx, task, -1) == QN_LOC_ANY;
}

/* Note which pending maps have lost (or found) every live holder. */
static void s_refresh_orphans(qn_sched *s, int64_t now)
{
    if (!s->loc_dirty || !s->local)
        return;
    s->loc_dirty = 0;
    for (int jx = 0; jx < s->njobs; jx++) {
        s_job *j = &s->jobs[jx];
        if (j->state != QN_JOB_RUNNING)
            continue;
        s_queue *q = &j->pending[QN_MAP];
        for (unsigned i = 0; i < q->len; i++) {
            s_task *t = &j->tasks[QN_MAP][s_queue_at(q, i)];
            if (s_held(s, jx, s_queue_at(q, i)))
                t->orphan_since = 0;
            else if (!t->orphan_since)
                t->orphan_since = now ? now : 1; /* 0 means "held" */
        }
    }
}

static unsigned s_wfail(const s_job *j, int w)
{
    return w >= 0 && w < j->nwfail ? j->wfail[w] : 0;
}

/*
 * Is worker w barred from job j's tasks? Yes once it failed
 * QN_SCHED_BAN_AFTER of them, unless that bars every live worker.
 */
static int s_banned(const qn_sched *s, const s_job *j, int w)
{
    if (s_wfail(j, w) < QN_SCHED_BAN_AFTER)
        return 0;
    for (int i = 0; i < s->nworkers; i++)
        if (s->workers[i].alive && s_wfail(j, i) < QN_SCHED_BAN_AFTER)
            return 1;
    return 0;
}

/*
 * Should task t of job j keep off worker w? Yes if its latest attempt
 * failed there and another live worker may run it: a retry goes
 * elsewhere, so one worker's full disk or broken library does not use up
 * a task's attempts.
 */
static int s_avoids(const qn_sched *s, const s_job *j, const s_task *t, int w)
{
    if (t->avoid != w + 1)
        return 0;
    for (int i = 0; i < s->nworkers; i++)
        if (i != w && s->workers[i].alive && s->workers[i].slots &&
            !s_banned(s, j, i))
            return 1;
    return 0;
}

/* May one of job j's pending maps run on worker w (as far as s_avoids
 * says)? */
static int s_usable(const qn_sched *s, const s_job *j, int w)
{
    const s_queue *q = &j->pending[QN_MAP];
    unsigned n = q->len < SCAN_MAX ? q->len : SCAN_MAX;
    for (unsigned i = 0; i < n; i++)
        if (!s_avoids(s, j, &j->tasks[QN_MAP][s_queue_at(q, i)], w))
            return 1;
    return 0;
}

/* The alive worker with the most free slots not in skip, or -1. */
static int s_pick_worker(qn_sched *s, const char *skip)
{
    int best = -1;
    unsigned best_free = 0;
    for (int i = 0; i < s->nworkers; i++) {
        int w = (s->next_worker + i) % s->nworkers;
        s_worker *wk = &s->workers[w];
        if (!wk->alive || wk->busy >= wk->slots || skip[w])
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
 * What job jx can give worker w now: 1 with the kind, the position in
 * its pending queue and the locality, or 0. Maps come first: a local one
 * (or one readable anywhere), else one that waited locality_wait_ms for a
 * holder and has a live one to stream from. Reduces once no map is pending.
 */
static int s_offer(const qn_sched *s, int jx, int w, int64_t now,
                   int allow_remote, qn_kind *kind, unsigned *pos, int *local)
{
    const s_job *j = &s->jobs[jx];
    const s_queue *q = &j->pending[QN_MAP];
    if (q->len) {
        unsigned n = q->len < SCAN_MAX ? q->len : SCAN_MAX;
        int remote = -1;
        for (unsigned i = 0; i < n; i++) {
            unsigned t = s_queue_at(q, i);
            if (s_avoids(s, j, &j->tasks[QN_MAP][t], w))
                continue;
            int l = s_where(s, jx, t, w);
            if (l != 0) {
                *kind = QN_MAP;
                *pos = i;
                *local = l;
                return 1;
            }
            const s_task *tk = &j->tasks[QN_MAP][t];
            if (allow_remote && remote < 0 && !tk->orphan_since &&
                now - tk->pending_since >= s->cfg.locality_wait_ms)
                remote = (int)i;
        }
        if (remote < 0)
            return 0;
        *kind = QN_MAP;
        *pos = (unsigned)remote;
        *local = 0;
        return 1;
    }
    /* No map waits for a slot: reduces may start, and fetch each map's
     * output as soon as it is done. */
    const s_queue *rq = &j->pending[QN_REDUCE];
    unsigned n = rq->len < SCAN_MAX ? rq->len : SCAN_MAX;
    for (unsigned i = 0; i < n; i++) {
        if (s_avoids(s, j, &j->tasks[QN_REDUCE][s_queue_at(rq, i)], w))
            continue;
        *kind = QN_REDUCE;
        *pos = i;
        *local = QN_LOC_ANY;
        return 1;
    }
    return 0;
}

/*
 * The next task for worker w: from the running job with the fewest tasks
 * running (the oldest on ties) that has one for w. Returns 1 and sets the
 * outputs.
 */
static int s_pick_task(qn_sched *s, int w, int64_t now, int allow_remote,
                       int *job, qn_kind *kind, unsigned *task, int *local)
{
    int best = -1;
    unsigned best_run = 0, best_pos = 0;
    qn_kind best_kind = QN_MAP;
    int best_local = QN_LOC_ANY;
    for (int jx = 0; jx < s->njobs; jx++) {
        s_job *j = &s->jobs[jx];
        if (j->state != QN_JOB_RUNNING || s_banned(s, j, w))
            continue;
        unsigned run = j->running[QN_MAP] + j->running[QN_REDUCE];
        if (best >= 0 && run >= best_run)
            continue;
        qn_kind k;
        unsigned pos;
        int l;
        if (!s_offer(s, jx, w, now, allow_remote, &k, &pos, &l))
            continue;
        best = jx;
        best_run = run;
        best_kind = k;
        best_pos = pos;
        best_local = l;
    }
    if (best < 0)
        return 0;
    s_job *j = &s->jobs[best];
    unsigned t = s_queue_take(&j->pending[best_kind], best_pos);
    j->tasks[best_kind][t].queued = 0;
    *job = best;
    *kind = best_kind;
    *task = t;
    *local = best_local;
    return 1;
}

static void s_start(qn_sched *s, int64_t now, int w, int job, qn_kind kind,
                    unsigned task, int backup, int local)
{
    s_job *j = &s->jobs[job];
    s_task *t = &j->tasks[kind][task];
    if (t->nrun == 0)
        j->running[kind]++;
    s_att *a = &t->run[t->nrun++];
    *a = (s_att){.attempt = ++t->attempts,
                 .worker = w,
                 .started = now,
                 .progress = now,
                 .since = now,
                 .backup = backup};
    t->state = QN_TASK_RUNNING;
    s->workers[w].busy++;
    if (backup) {
        t->backups++;
        s->nbackups++;
    }
    s_run_add(s, job, kind, task, a->attempt);
    s_act(s, (qn_action){.act = QN_ACT_ASSIGN,
                         .worker = w,
                         .job = job,
                         .kind = kind,
                         .task = task,
                         .attempt = a->attempt,
                         .backup = backup,
                         .local = local});
}

/* Running attempt i of a task stops: free its slot. */
static void s_stop(qn_sched *s, int job, qn_kind kind, unsigned task,
                   unsigned i)
{
    s_job *j = &s->jobs[job];
    s_task *t = &j->tasks[kind][task];
    s_att a = t->run[i];
    if (a.worker >= 0 && a.worker < s->nworkers &&
        s->workers[a.worker].busy > 0)
        s->workers[a.worker].busy--;
    if (a.backup && s->nbackups > 0)
        s->nbackups--;
    s_run_remove(s, job, kind, task, a.attempt);
    for (unsigned k = i + 1; k < t->nrun; k++)
        t->run[k - 1] = t->run[k];
    t->nrun--;
    if (t->nrun == 0)
        j->running[kind]--;
}

/* Cancel every running attempt of a task. */
static void s_cancel_all(qn_sched *s, int job, qn_kind kind, unsigned task,
                         int reason)
{
    s_task *t = &s->jobs[job].tasks[kind][task];
    while (t->nrun > 0) {
        s_act(s, (qn_action){.act = QN_ACT_CANCEL,
                             .worker = t->run[0].worker,
                             .job = job,
                             .kind = kind,
                             .task = task,
                             .attempt = t->run[0].attempt,
                             .reason = reason});
        s_stop(s, job, kind, task, 0);
    }
}

/* End a job: kill its attempts, clear its queues. */
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
            s_cancel_all(s, job, (qn_kind)k, i, QN_CANCEL_JOB_END);
            t->state = QN_TASK_PENDING;
        }
        s_queue_clear(&j->pending[k]);
    }
}

/*
 * Running attempt i of a task failed: through its own fault (fault set:
 * reported, or timed out), or lost with its worker.
 */
static void s_attempt_failed(qn_sched *s, int job, qn_kind kind, unsigned task,
                             unsigned i, int fault)
{
    s_job *j = &s->jobs[job];
    s_task *t = &j->tasks[kind][task];
    int w = t->run[i].worker;
    unsigned attempt = t->run[i].attempt;
    s_stop(s, job, kind, task, i);
    if (fault) {
        t->failures++;
        if (w >= j->nwfail) {
            int n = w + 16;
            j->wfail = qn_realloc(j->wfail, (size_t)n * sizeof *j->wfail);
            memset(j->wfail + j->nwfail, 0,
                   (size_t)(n - j->nwfail) * sizeof *j->wfail);
            j->nwfail = n;
        }
        j->wfail[w]++;
        t->avoid = w + 1;
    } else {
        t->losses++;
    }
    if (t->failures >= j->max_attempts ||
        t->losses >= j->max_attempts * QN_SCHED_LOSS_FACTOR) {
        s_cancel_all(s, job, kind, task, QN_CANCEL_JOB_END);
        t->state = QN_TASK_PENDING;
        s_end_job(s, job, QN_JOB_FAILED);
        s_act(s, (qn_action){.act = QN_ACT_JOB_FAILED,
                             .worker = -1,
                             .job = job,
                             .kind = kind,
                             .task = task,
                             .attempt = attempt});
        return;
    }
    if (t->nrun == 0)
        s_make_pending(s, j, kind, task);
}

/*
 * Is the phase of kind in job j at its end, where stragglers get backups:
 * nothing pending, something running, something done to compare with?
 */
static int s_phase_ending(const s_job *j, qn_kind kind)
{
    if (!j->speculate || j->state != QN_JOB_RUNNING ||
        j->pending[kind].len > 0 || j->running[kind] == 0 ||
        j->took_n[kind] == 0)
        return 0;
    /* A reduce waiting for a map that runs again is not slow. */
    return kind == QN_MAP || j->done[QN_MAP] == j->n[QN_MAP];
}

/*
 * How much longer a running attempt is expected to take than its phase's
 * mean task, in ms, if it is a straggler worth a backup; else 0.
 */
static int64_t s_straggling(const qn_sched *s, const s_job *j, qn_kind kind,
                            const s_task *t, int64_t now)
{
    if (t->nrun != 1 || t->backups > 0)
        return 0;
    const s_att *a = &t->run[0];
    int64_t mean = j->took_ms[kind] / j->took_n[kind];
    int64_t ran = now - a->since;
    if (ran < mean || ran < s->cfg.spec_min_ms)
        return 0;
    /* Expected total from its progress; no progress at all: very slow. */
    int64_t expect = a->fraction > 0.001 ? (int64_t)((double)ran / a->fraction)
                                         : INT64_MAX / 4;
    if (expect < mean * QN_SCHED_SPEC_SLOWER)
        return 0;
    return expect - mean + 1;
}

/* Does a running attempt wait, through no fault of its own, for maps? */
static int s_waiting(const qn_sched *s, const s_run *r)
{
    const s_job *j = &s->jobs[r->job];
    return r->kind == QN_REDUCE && j->done[QN_MAP] < j->n[QN_MAP];
}

/*
 * The youngest reduce attempt of job jx waiting for maps, on a worker
 * other than not_on that the job may use (it lost least by giving way):
 * its index in s->runs, or -1.
 */
static int s_waiting_reduce(const qn_sched *s, int jx, int not_on)
{
    const s_job *j = &s->jobs[jx];
    int best = -1;
    int64_t best_started = 0;
    for (unsigned i = 0; i < s->nruns; i++) {
        const s_run *r = &s->runs[i];
        if (r->job != jx || !s_waiting(s, r))
            continue;
        const s_task *t = &j->tasks[QN_REDUCE][r->task];
        int ix = s_att_index(t, r->attempt);
        /* Not on a worker found dead in this tick: its slot is no room. */
        if (ix < 0 || t->run[ix].worker == not_on ||
            !s->workers[t->run[ix].worker].alive ||
            s_banned(s, j, t->run[ix].worker))
            continue;
        if (best < 0 || t->run[ix].started > best_started) {
            best = (int)i;
            best_started = t->run[ix].started;
        }
    }
    return best;
}

/*
 * Cancel the waiting reduce attempt s->runs[ri] of job jx to make room
 * for a map (not counted against it; the reduce runs later). Returns the
 * worker whose slot it freed.
 */
static int s_preempt_reduce(qn_sched *s, int jx, int ri)
{
    s_job *j = &s->jobs[jx];
    s_run r = s->runs[ri];
    s_task *t = &j->tasks[QN_REDUCE][r.task];
    int ix = s_att_index(t, r.attempt);
    int w = t->run[ix].worker;
    s_act(s, (qn_action){.act = QN_ACT_CANCEL,
                         .worker = w,
                         .job = jx,
                         .kind = QN_REDUCE,
                         .task = r.task,
                         .attempt = r.attempt,
                         .reason = QN_CANCEL_PREEMPTED});
    s_stop(s, jx, QN_REDUCE, r.task, (unsigned)ix);
    if (t->nrun == 0)
        s_make_pending(s, j, QN_REDUCE, r.task);
    return w;
}

/* Start backups of stragglers on free slots, slowest first. */
static void s_speculate(qn_sched *s, int64_t now)
{
    s->spec_check = INT64_MAX;
    unsigned slots = 0;
    for (int w = 0; w < s->nworkers; w++)
        if (s->workers[w].alive)
            slots += s->workers[w].slots;
    unsigned cap = slots / 10 > 1 ? slots / 10 : 1;
    int ending = 0;
    while (s->nbackups < cap) {
        s_run best = {.job = -1};
        int64_t best_by = 0;
        int best_w = -1, best_victim = -1;
        for (unsigned i = 0; i < s->nruns; i++) {
            s_run r = s->runs[i];
            s_job *j = &s->jobs[r.job];
            if (!s_phase_ending(j, r.kind))
                continue;
            ending = 1;
            s_task *t = &j->tasks[r.kind][r.task];
            int64_t by = s_straggling(s, j, r.kind, t, now);
            if (by <= best_by)
                continue;
            /* A worker with a free slot other than the straggler's. */
            int w = -1;
            unsigned best_free = 0;
            for (int k = 0; k < s->nworkers; k++) {
                s_worker *wk = &s->workers[k];
                if (!wk->alive || wk->busy >= wk->slots ||
                    k == t->run[0].worker || s_banned(s, j, k))
                    continue;
                if (wk->slots - wk->busy > best_free) {
                    best_free = wk->slots - wk->busy;
                    w = k;
                }
            }
            int victim = -1;
            if (w < 0 && r.kind == QN_MAP)
                victim = s_waiting_reduce(s, r.job, t->run[0].worker);
            if (w < 0 && victim < 0)
                continue;
            best = r;
            best_by = by;
            best_w = w;
            best_victim = victim;
        }
        if (best.job < 0)
            break;
        if (best_w < 0)
            best_w = s_preempt_reduce(s, best.job, best_victim);
        s_start(s, now, best_w, best.job, best.kind, best.task, 1,
                best.kind == QN_MAP ? s_where(s, best.job, best.task, best_w)
                                    : QN_LOC_ANY);
    }
    if (ending)
        s->spec_check = now + QN_SCHED_SPEC_CHECK_MS;
}

/*
 * Maps that must run again for a job whose reduces hold the slots they
 * could run in: cancel waiting reduces on workers the job may use, one
 * per map waiting beyond the job's maps that run, and start those maps
 * in their slots (sched.h says why no more). Returns how many were
 * cancelled.
 */
static unsigned s_preempt(qn_sched *s, int64_t now)
{
    unsigned freed = 0;
    for (int jx = 0; jx < s->njobs; jx++) {
        s_job *j = &s->jobs[jx];
        /* Each running map frees its slot for a map that waits: only the
         * maps waiting beyond those need a reduce to lose what it
         * fetched. */
        if (j->state != QN_JOB_RUNNING ||
            j->pending[QN_MAP].len <= j->running[QN_MAP] ||
            j->running[QN_REDUCE] == 0)
            continue;
        /* A free slot the job's maps may use means they wait for a holder
         * (locality), not for room: no reduce need give way. (A slot on
         * the worker where a map just failed is not one it may use.) */
        int room = 0;
        for (int w = 0; w < s->nworkers && !room; w++)
            room = s->workers[w].alive &&
                   s->workers[w].busy < s->workers[w].slots &&
                   !s_banned(s, j, w) && s_usable(s, j, w);
        if (room)
            continue;
        unsigned need = j->pending[QN_MAP].len - j->running[QN_MAP];
        while (need > 0) {
            s_queue *q = &j->pending[QN_MAP];
            if (j->tasks[QN_MAP][s_queue_at(q, 0)].orphan_since)
                break; /* nowhere to read it from: no slot helps */
            int best = s_waiting_reduce(s, jx, -1);
            if (best < 0)
                break;
            int w = s_preempt_reduce(s, jx, best);
            /* The slot goes to the map it was freed for, not another
             * job; that map runs now, so one fewer needs room. */
            unsigned m = s_queue_pop(q);
            j->tasks[QN_MAP][m].queued = 0;
            s_start(s, now, w, jx, QN_MAP, m, 0, s_where(s, jx, m, w));
            freed++;
            need = j->pending[QN_MAP].len > j->running[QN_MAP]
                       ? j->pending[QN_MAP].len - j->running[QN_MAP]
                       : 0;
        }
    }
    return freed;
}

/*
 * Start pending tasks on free slots: first what each free worker can run
 * where its data is, then maps that waited long enough to run remotely,
 * so a free holder is never passed over for a worker that must stream.
 */
static void s_assign_free(qn_sched *s, int64_t now)
{
    char *skip = qn_calloc((size_t)s->nworkers + 1, 1);
    for (int allow_remote = 0; allow_remote < 2; allow_remote++) {
        memset(skip, 0, (size_t)s->nworkers + 1);
        for (;;) {
            int w = s_pick_worker(s, skip);
            if (w < 0)
                break;
            int job, local;
            qn_kind kind;
            unsigned task;
            if (!s_pick_task(s, w, now, allow_remote, &job, &kind, &task,
                             &local)) {
                skip[w] = 1; /* nothing it may run; others may still */
                continue;
            }
            s_start(s, now, w, job, kind, task, 0, local);
            s->next_worker = (w + 1) % s->nworkers;
        }
    }
    free(skip);
}

static void s_schedule(qn_sched *s, int64_t now)
{
    s->now = now;
    if (now < s->hold_until || s->batch)
        return; /* workers are still telling what they run */
    s_refresh_orphans(s, now);
    s_assign_free(s, now);
    /* A preempted reduce may start at once on a slot its maps could not
     * use. */
    if (s_preempt(s, now))
        s_assign_free(s, now);
    s_speculate(s, now);
}

/* ---- events -------------------------------------------------------------- */

int qn_sched_worker_join(qn_sched *s, int64_t now, unsigned slots)
{
    s->now = now;
    QN_GROW(s->workers, s->cap_workers, (size_t)s->nworkers + 1);
    int w = s->nworkers++;
    s->workers[w] = (s_worker){.alive = 1, .slots = slots, .seen = now};
    s->loc_dirty = 1;
    s_schedule(s, now);
    return w;
}

int qn_sched_worker_seen(qn_sched *s, int64_t now, int worker)
{
    s->now = now;
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

void qn_sched_worker_slots(qn_sched *s, int64_t now, int worker, unsigned slots)
{
    if (worker < 0 || worker >= s->nworkers)
        return;
    s->workers[worker].slots = slots;
    s_schedule(s, now);
}

/* A done map of job jx runs again (its output is gone). */
static void s_map_again(qn_sched *s, int jx, unsigned task, int why)
{
    s_job *j = &s->jobs[jx];
    s_task *t = &j->tasks[QN_MAP][task];
    j->done[QN_MAP]--;
    s_make_pending(s, j, QN_MAP, task);
    s_act(s, (qn_action){.act = QN_ACT_MAP_RERUN,
                         .worker = t->done_worker,
                         .job = jx,
                         .kind = QN_MAP,
                         .task = task,
                         .attempt = t->done_attempt,
                         .reason = why});
}

/* An action on running attempt r, on worker w. */
static void s_act_on(qn_sched *s, qn_act_kind act, int w, const s_run *r,
                     int reason)
{
    s_act(s, (qn_action){.act = act,
                         .worker = w,
                         .job = r->job,
                         .kind = r->kind,
                         .task = r->task,
                         .attempt = r->attempt,
                         .reason = reason});
}

/* Every attempt running on worker w is lost (why: a qn_lost_reason); a
 * worker still running them is told to kill them (cancel: a
 * qn_cancel_reason, 0 for none). */
static void s_lose_running(qn_sched *s, int w, int why, int cancel)
{
    /* Work from a copy of the run list and re-check each entry. */
    unsigned n;
    s_run *snap = s_runs_copy(s, &n);
    for (unsigned i = 0; i < n; i++) {
        s_run r = snap[i];
        if (s->jobs[r.job].state != QN_JOB_RUNNING)
            continue;
        s_task *t = &s->jobs[r.job].tasks[r.kind][r.task];
        int ix = s_att_index(t, r.attempt);
        if (ix < 0 || t->run[ix].worker != w)
            continue;
        if (cancel)
            s_act_on(s, QN_ACT_CANCEL, w, &r, cancel);
        s_act_on(s, QN_ACT_ATTEMPT_LOST, w, &r, why);
        s_attempt_failed(s, r.job, r.kind, r.task, (unsigned)ix, 0);
    }
    free(snap);
}

/*
 * A worker is gone: its running attempts are lost, and maps it completed
 * for jobs that still need their output must run again elsewhere.
 */
static void s_worker_gone(qn_sched *s, int64_t now, int w)
{
    s->workers[w].alive = 0;
    s->loc_dirty = 1;
    s_act(s, (qn_action){.act = QN_ACT_WORKER_DEAD, .worker = w, .job = -1});
    s_lose_running(s, w, QN_LOST_WORKER_DEAD, 0);
    for (int jx = 0; jx < s->njobs; jx++) {
        s_job *j = &s->jobs[jx];
        if (j->state != QN_JOB_RUNNING || j->done[QN_REDUCE] == j->n[QN_REDUCE])
            continue;
        for (unsigned i = 0; i < j->n[QN_MAP]; i++) {
            s_task *t = &j->tasks[QN_MAP][i];
            if (t->state == QN_TASK_DONE && t->done_worker == w)
                s_map_again(s, jx, i, QN_RERUN_DEAD);
        }
    }
    s->workers[w].busy = 0;
    s_schedule(s, now);
}

void qn_sched_worker_restarted(qn_sched *s, int64_t now, int worker)
{
    s->now = now;
    if (!qn_sched_worker_alive(s, worker))
        return;
    s->workers[worker].seen = now;
    s_lose_running(s, worker, QN_LOST_RESTARTED, 0);
    s_schedule(s, now);
}

void qn_sched_worker_evict(qn_sched *s, int64_t now, int worker)
{
    s->now = now;
    if (!qn_sched_worker_alive(s, worker))
        return;
    s_lose_running(s, worker, QN_LOST_DRAINED, QN_CANCEL_DRAINED);
    s_schedule(s, now);
}

unsigned qn_sched_worker_outputs(const qn_sched *s, int worker)
{
    unsigned n = 0;
    for (int jx = 0; jx < s->njobs; jx++) {
        const s_job *j = &s->jobs[jx];
        if (j->state != QN_JOB_RUNNING || j->done[QN_REDUCE] == j->n[QN_REDUCE])
            continue;
        for (unsigned i = 0; i < j->n[QN_MAP]; i++) {
            const s_task *t = &j->tasks[QN_MAP][i];
            n += t->state == QN_TASK_DONE && t->done_worker == worker;
        }
    }
    return n;
}

void qn_sched_worker_leave(qn_sched *s, int64_t now, int worker)
{
    s->now = now;
    if (worker >= 0 && worker < s->nworkers && s->workers[worker].alive)
        s_worker_gone(s, now, worker);
}

void qn_sched_set_locality(qn_sched *s, qn_sched_local_fn fn, void *ctx)
{
    s->local = fn;
    s->local_ctx = ctx;
    s->loc_dirty = 1;
}

void qn_sched_locality_changed(qn_sched *s, int64_t now)
{
    s->now = now;
    s->loc_dirty = 1;
    s_schedule(s, now);
}

/* A new job's record with its task arrays; every task not yet queued. */
static int s_job_new(qn_sched *s, unsigned nmaps, unsigned nreduce,
                     unsigned max_attempts)
{
    if (nmaps == 0 || nreduce == 0 || max_attempts == 0)
        return -1;
    QN_GROW(s->jobs, s->cap_jobs, (size_t)s->njobs + 1);
    int jx = s->njobs++;
    s_job *j = &s->jobs[jx];
    memset(j, 0, sizeof *j);
    j->state = QN_JOB_RUNNING;
    j->n[QN_MAP] = nmaps;
    j->n[QN_REDUCE] = nreduce;
    j->max_attempts = max_attempts;
    for (int k = 0; k < 2; k++) {
        j->tasks[k] = qn_calloc(j->n[k], sizeof(s_task));
        j->pending[k].ran.items = qn_calloc(j->n[k], sizeof(unsigned));
        j->pending[k].ran.cap = j->n[k];
        j->pending[k].fresh.items = qn_calloc(j->n[k], sizeof(unsigned));
        j->pending[k].fresh.cap = j->n[k];
        for (unsigned i = 0; i < j->n[k]; i++)
            j->tasks[k][i].done_worker = -1;
    }
    return jx;
}

int qn_sched_job_add(qn_sched *s, int64_t now, unsigned nmaps, unsigned nreduce,
                     unsigned max_attempts)
{
    s->now = now;
    int jx = s_job_new(s, nmaps, nreduce, max_attempts);
    if (jx < 0)
        return -1;
    s_job *j = &s->jobs[jx];
    for (int k = 0; k < 2; k++)
        for (unsigned i = 0; i < j->n[k]; i++)
            s_make_pending(s, j, (qn_kind)k, i);
    s_schedule(s, now);
    return jx;
}

int qn_sched_job_restore(qn_sched *s, int64_t now, unsigned nmaps,
                         unsigned nreduce, unsigned max_attempts,
                         qn_job_state state, const qn_task_restore *maps,
                         const qn_task_restore *reduces)
{
    s->now = now;
    /* A record from disk that cannot be true is refused, not believed. */
    const qn_task_restore *from[2] = {maps, reduces};
    unsigned n[2] = {nmaps, nreduce};
    for (int k = 0; k < 2; k++)
        for (unsigned i = 0; from[k] && i < n[k]; i++)
            if (from[k][i].done_attempt > from[k][i].attempts)
                return -1;
    int jx = s_job_new(s, nmaps, nreduce, max_attempts);
    if (jx < 0)
        return -1;
    s_job *j = &s->jobs[jx];
    for (int k = 0; k < 2; k++) {
        for (unsigned i = 0; i < j->n[k]; i++) {
            s_task *t = &j->tasks[k][i];
            const qn_task_restore *r = from[k] ? &from[k][i] : NULL;
            t->attempts = r ? r->attempts : 0;
            if (r && r->done_attempt) {
                t->state = QN_TASK_DONE;
                t->done_attempt = r->done_attempt;
                t->done_worker = r->done_worker;
                j->done[k]++;
            } else if (state == QN_JOB_RUNNING) {
                s_make_pending(s, j, (qn_kind)k, i);
            }
        }
    }
    if (state != QN_JOB_RUNNING) {
        j->state = state;
    } else if (j->done[QN_REDUCE] == j->n[QN_REDUCE]) {
        s_end_job(s, jx, QN_JOB_DONE);
        s_act(s, (qn_action){.act = QN_ACT_JOB_DONE, .worker = -1, .job = jx});
    }
    s_schedule(s, now);
    return jx;
}

void qn_sched_batch(qn_sched *s, int64_t now, int on)
{
    s->batch = on;
    if (!on)
        s_schedule(s, now);
}

void qn_sched_hold(qn_sched *s, int64_t until)
{
    s->hold_until = until;
}

int qn_sched_adopt(qn_sched *s, int64_t now, int job, qn_kind kind,
                   unsigned task, unsigned attempt, int worker)
{
    s->now = now;
    s_task *t = s_task_at(s, job, kind, task);
    if (!t || s->jobs[job].state != QN_JOB_RUNNING || attempt == 0 ||
        attempt > t->attempts || t->state == QN_TASK_DONE ||
        t->nrun >= QN_SCHED_MAX_RUNNING || s_att_index(t, attempt) >= 0 ||
        !qn_sched_worker_alive(s, worker))
        return -1;
    s_job *j = &s->jobs[job];
    s_dequeue(j, kind, task);
    if (t->nrun == 0)
        j->running[kind]++;
    t->run[t->nrun++] = (s_att){.attempt = attempt,
                                .worker = worker,
                                .started = now,
                                .progress = now,
                                .since = now};
    t->state = QN_TASK_RUNNING;
    s->workers[worker].busy++;
    s_run_add(s, job, kind, task, attempt);
    return 0;
}

void qn_sched_job_speculate(qn_sched *s, int job, int on)
{
    if (s_job_ok(s, job))
        s->jobs[job].speculate = on;
}

int qn_sched_job_cancel(qn_sched *s, int64_t now, int job)
{
    s->now = now;
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
    const s_task *t = s_task_at(s, job, kind, task);
    if (!t)
        return info;
    info.state = t->state;
    info.attempts = t->attempts;
    info.failures = t->failures;
    info.losses = t->losses;
    info.running = t->nrun;
    if (t->state == QN_TASK_RUNNING && t->nrun > 0) {
        info.attempt = t->run[0].attempt;
        info.worker = t->run[0].worker;
        info.started = t->run[0].started;
    } else if (t->state == QN_TASK_DONE) {
        info.attempt = t->done_attempt;
        info.worker = t->done_worker;
    }
    return info;
}

/* The running attempt's entry, if attempt runs and its job does. */
static s_att *s_current(const qn_sched *s, int job, qn_kind kind, unsigned task,
                        unsigned attempt, int *index)
{
    s_task *t = s_task_at(s, job, kind, task);
    if (!t || t->state != QN_TASK_RUNNING ||
        s->jobs[job].state != QN_JOB_RUNNING)
        return NULL;
    int i = s_att_index(t, attempt);
    if (i < 0)
        return NULL;
    if (index)
        *index = i;
    return &t->run[i];
}

int qn_sched_attempt_worker(const qn_sched *s, int job, qn_kind kind,
                            unsigned task, unsigned attempt)
{
    const s_att *a = s_current(s, job, kind, task, attempt, NULL);
    return a ? a->worker : -1;
}

unsigned qn_sched_running(const qn_sched *s, int job, qn_kind kind,
                          unsigned task, unsigned *attempts, int *workers)
{
    const s_task *t = s_task_at(s, job, kind, task);
    if (!t || t->state != QN_TASK_RUNNING)
        return 0;
    for (unsigned i = 0; i < t->nrun; i++) {
        attempts[i] = t->run[i].attempt;
        workers[i] = t->run[i].worker;
    }
    return t->nrun;
}

void qn_sched_progress(qn_sched *s, int64_t now, int job, qn_kind kind,
                       unsigned task, unsigned attempt)
{
    s->now = now;
    s_att *a = s_current(s, job, kind, task, attempt, NULL);
    if (a)
        a->progress = now;
}

void qn_sched_fraction(qn_sched *s, int job, qn_kind kind, unsigned task,
                       unsigned attempt, double fraction)
{
    s_att *a = s_current(s, job, kind, task, attempt, NULL);
    if (a && fraction >= 0 && fraction <= 1)
        a->fraction = fraction;
}

void qn_sched_work(qn_sched *s, int64_t now, int job, qn_kind kind,
                   unsigned task, unsigned attempt, uint64_t work)
{
    s->now = now;
    s_att *a = s_current(s, job, kind, task, attempt, NULL);
    if (a && work > a->work) {
        a->work = work;
        a->progress = now;
    }
}

int qn_sched_map_lost(qn_sched *s, int64_t now, int job, unsigned task,
                      unsigned attempt)
{
    s->now = now;
    s_task *t = s_task_at(s, job, QN_MAP, task);
    if (!t || t->state != QN_TASK_DONE || t->done_attempt != attempt ||
        s->jobs[job].state != QN_JOB_RUNNING)
        return -1;
    s_map_again(s, job, task, QN_RERUN_FETCH);
    s_schedule(s, now);
    return 0;
}

int qn_sched_map_not_kept(qn_sched *s, int64_t now, int job, unsigned task,
                          unsigned attempt)
{
    s->now = now;
    s_task *t = s_task_at(s, job, QN_MAP, task);
    if (!t || t->state != QN_TASK_DONE || t->done_attempt != attempt ||
        s->jobs[job].state != QN_JOB_RUNNING ||
        s->jobs[job].done[QN_REDUCE] == s->jobs[job].n[QN_REDUCE])
        return -1;
    s_map_again(s, job, task, QN_RERUN_NOT_KEPT);
    s_schedule(s, now);
    return 0;
}

static void s_task_done(qn_sched *s, int64_t now, int job, qn_kind kind,
                        unsigned task, unsigned attempt, int w);

int qn_sched_done(qn_sched *s, int64_t now, int job, qn_kind kind,
                  unsigned task, unsigned attempt)
{
    s->now = now;
    int i;
    s_att *a = s_current(s, job, kind, task, attempt, &i);
    if (!a)
        return QN_SCHED_STALE;
    s_job *j = &s->jobs[job];
    int w = a->worker;
    j->took_ms[kind] += now - a->since; /* working, not waiting for maps */
    j->took_n[kind]++;
    s_stop(s, job, kind, task, (unsigned)i);
    s_task_done(s, now, job, kind, task, attempt, w);
    s_schedule(s, now);
    return QN_SCHED_ACCEPTED;
}

/*
 * Task is done with attempt's output, on worker w: other attempts are
 * cancelled; a map phase that ends starts its waiting reduces' clocks,
 * and a reduce phase that ends ends the job.
 */
static void s_task_done(qn_sched *s, int64_t now, int job, qn_kind kind,
                        unsigned task, unsigned attempt, int w)
{
    s_job *j = &s->jobs[job];
    s_task *t = &j->tasks[kind][task];
    s_cancel_all(s, job, kind, task, QN_CANCEL_LOST_RACE);
    s_dequeue(j, kind, task);
    t->state = QN_TASK_DONE;
    t->done_attempt = attempt;
    t->done_worker = w;
    j->done[kind]++;
    if (kind == QN_MAP && j->done[QN_MAP] == j->n[QN_MAP]) {
        /* Reduces that waited for a map run again start their clocks. */
        for (unsigned r = 0; r < s->nruns; r++) {
            s_run *run = &s->runs[r];
            if (run->job != job || run->kind != QN_REDUCE)
                continue;
            s_att *ra =
                s_current(s, job, QN_REDUCE, run->task, run->attempt, NULL);
            if (ra)
                ra->progress = ra->since = now;
        }
    }
    if (kind == QN_REDUCE && j->done[QN_REDUCE] == j->n[QN_REDUCE]) {
        /* A map re-run for a lost worker may still be going: stop it. */
        s_end_job(s, job, QN_JOB_DONE);
        s_act(s, (qn_action){.act = QN_ACT_JOB_DONE, .worker = -1, .job = job});
    }
}

int qn_sched_take_back(qn_sched *s, int64_t now, int job, unsigned task,
                       unsigned attempt, int worker)
{
    s->now = now;
    s_task *t = s_task_at(s, job, QN_MAP, task);
    if (!t || t->state == QN_TASK_DONE || attempt == 0 ||
        attempt > t->attempts || !qn_sched_worker_alive(s, worker))
        return -1;
    s_job *j = &s->jobs[job];
    if (j->state != QN_JOB_RUNNING || j->done[QN_REDUCE] == j->n[QN_REDUCE])
        return -1;
    int i = s_att_index(t, attempt);
    if (i >= 0 && t->run[i].worker != worker)
        return -1; /* it runs elsewhere: that output cannot be here */
    if (i >= 0)
        s_stop(s, job, QN_MAP, task, (unsigned)i);
    s_task_done(s, now, job, QN_MAP, task, attempt, worker);
    s_schedule(s, now);
    return 0;
}

unsigned qn_sched_worker_attempts(const qn_sched *s, int worker,
                                  qn_attempt_ref *out, unsigned cap)
{
    unsigned n = 0;
    for (unsigned i = 0; i < s->nruns && n < cap; i++) {
        const s_run *r = &s->runs[i];
        const s_att *a =
            s_current(s, r->job, r->kind, r->task, r->attempt, NULL);
        if (a && a->worker == worker)
            out[n++] = (qn_attempt_ref){r->job, r->kind, r->task, r->attempt,
                                        a->started};
    }
    return n;
}

/* How a running attempt ended without success. */
typedef enum {
    S_END_FAILED,   /* its own fault: counts against the task and worker */
    S_END_SPOILED,  /* no fault of its own: counts as lost */
    S_END_VANISHED, /* its worker does not have it: lost, and said so */
} s_end;

/* The one way qn_sched_failed, _spoiled and _vanished end an attempt. */
static int s_attempt_end(qn_sched *s, int64_t now, int job, qn_kind kind,
                         unsigned task, unsigned attempt, s_end how)
{
    s->now = now;
    int i;
    s_att *a = s_current(s, job, kind, task, attempt, &i);
    if (!a)
        return QN_SCHED_STALE;
    if (how == S_END_VANISHED)
        s_act(s, (qn_action){.act = QN_ACT_ATTEMPT_LOST,
                             .worker = a->worker,
                             .job = job,
                             .kind = kind,
                             .task = task,
                             .attempt = attempt,
                             .reason = QN_LOST_VANISHED});
    s_attempt_failed(s, job, kind, task, (unsigned)i, how == S_END_FAILED);
    s_schedule(s, now);
    return QN_SCHED_ACCEPTED;
}

int qn_sched_spoiled(qn_sched *s, int64_t now, int job, qn_kind kind,
                     unsigned task, unsigned attempt)
{
    return s_attempt_end(s, now, job, kind, task, attempt, S_END_SPOILED);
}

int qn_sched_vanished(qn_sched *s, int64_t now, int job, qn_kind kind,
                      unsigned task, unsigned attempt)
{
    return s_attempt_end(s, now, job, kind, task, attempt, S_END_VANISHED);
}

int qn_sched_failed(qn_sched *s, int64_t now, int job, qn_kind kind,
                    unsigned task, unsigned attempt)
{
    return s_attempt_end(s, now, job, kind, task, attempt, S_END_FAILED);
}

/*
 * The clock moved: declare overdue workers dead (all of them before any
 * of their attempts is rescheduled), fail attempts without progress for
 * the task timeout (not reduces waiting for maps), fail jobs whose maps
 * waited for a live holder past shard_wait_ms, then schedule.
 */
void qn_sched_tick(qn_sched *s, int64_t now)
{
    s->now = now;
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
        int ix;
        s_att *a = s_current(s, r.job, r.kind, r.task, r.attempt, &ix);
        if (!a)
            continue;
        if (s_waiting(s, &r)) {
            a->progress = now;
            continue;
        }
        if (now - a->progress < s->cfg.task_timeout_ms)
            continue;
        s_act_on(s, QN_ACT_CANCEL, a->worker, &r, QN_CANCEL_TIMEOUT);
        s_act_on(s, QN_ACT_ATTEMPT_LOST, a->worker, &r, QN_LOST_TIMEOUT);
        s_attempt_failed(s, r.job, r.kind, r.task, (unsigned)ix, 1);
    }
    free(snap);
    s_refresh_orphans(s, now);
    for (int jx = 0; jx < s->njobs; jx++) {
        s_job *j = &s->jobs[jx];
        if (j->state != QN_JOB_RUNNING)
            continue;
        s_queue *q = &j->pending[QN_MAP];
        for (unsigned i = 0; i < q->len; i++) {
            unsigned t = s_queue_at(q, i);
            int64_t since = j->tasks[QN_MAP][t].orphan_since;
            if (!since || now - since < s->cfg.shard_wait_ms)
                continue;
            s_end_job(s, jx, QN_JOB_FAILED);
            s_act(s, (qn_action){.act = QN_ACT_JOB_FAILED,
                                 .worker = -1,
                                 .job = jx,
                                 .kind = QN_MAP,
                                 .task = t,
                                 .reason = QN_FAIL_NO_HOLDER});
            break;
        }
    }
    s_schedule(s, now);
}

int64_t qn_sched_deadline(const qn_sched *s)
{
    int64_t d = s->spec_check;
    if (s->hold_until > s->now && s->hold_until < d)
        d = s->hold_until;
    /* Maps about to be allowed to run remotely, or to give up waiting
     * for a holder (only future times: past ones are acted on already). */
    int free_slot = 0;
    for (int w = 0; w < s->nworkers; w++)
        if (s->workers[w].alive && s->workers[w].busy < s->workers[w].slots)
            free_slot = 1;
    for (int jx = 0; s->local && jx < s->njobs; jx++) {
        const s_job *j = &s->jobs[jx];
        if (j->state != QN_JOB_RUNNING)
            continue;
        const s_queue *q = &j->pending[QN_MAP];
        unsigned n = q->len < SCAN_MAX ? q->len : SCAN_MAX;
        for (unsigned i = 0; i < n; i++) {
            const s_task *t = &j->tasks[QN_MAP][s_queue_at(q, i)];
            int64_t when =
                t->orphan_since
                    ? t->orphan_since + s->cfg.shard_wait_ms
                    : (free_slot ? t->pending_since + s->cfg.locality_wait_ms
                                 : INT64_MAX);
            if (when > s->now && when < d)
                d = when;
        }
    }
    for (int w = 0; w < s->nworkers; w++) {
        if (s->workers[w].alive && s->workers[w].seen + s->cfg.dead_ms < d)
            d = s->workers[w].seen + s->cfg.dead_ms;
    }
    for (unsigned i = 0; i < s->nruns; i++) {
        const s_run *r = &s->runs[i];
        const s_att *a =
            s_current(s, r->job, r->kind, r->task, r->attempt, NULL);
        if (!a || s_waiting(s, r))
            continue;
        if (a->progress + s->cfg.task_timeout_ms < d)
            d = a->progress + s->cfg.task_timeout_ms;
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
