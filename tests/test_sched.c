/*
 * test_sched.c -- the master's scheduler, driven with a fake clock.
 *
 * Time is whatever int64_t we pass in; every action the scheduler emits is
 * drained and checked, so a test fails on an unexpected action as well as
 * on a missing one.
 */
#include "helpers.h"

#include "../master/sched.h"

#include <stdint.h>

/* Heartbeat silence of 10 s kills a worker; 60 s without progress kills an
 * attempt (the daemon's defaults). */
static const qn_sched_config CFG = {.dead_ms = 10000, .task_timeout_ms = 60000};

/* The same, with no backup for an attempt younger than 3 s. */
static const qn_sched_config SPEC_CFG = {
    .dead_ms = 10000, .task_timeout_ms = 60000, .spec_min_ms = 3000};

/* The test's scheduler, freed by the fixture even when an assertion
 * fails, so that only the scheduler's own leaks trip the leak check. */
static qn_sched *cur;

static qn_sched *new_sched_cfg(const qn_sched_config *cfg)
{
    cr_assert_null(cur, "one scheduler per test");
    cur = qn_sched_new(cfg);
    cr_assert_not_null(cur);
    return cur;
}

static qn_sched *new_sched(void)
{
    return new_sched_cfg(&CFG);
}

static void teardown(void)
{
    qn_sched_destroy(&cur);
    qn_test_leak_check();
}

TestSuite(sched, .fini = teardown);

/* ---- helpers ------------------------------------------------------------- */

/* The next action, which must exist. */
static qn_action pop(qn_sched *s)
{
    qn_action a;
    memset(&a, 0, sizeof a);
    cr_assert_eq(qn_sched_next_action(s, &a), 1,
                 "expected another action, got none");
    return a;
}

/* There must be no action left. */
static void expect_none(qn_sched *s)
{
    qn_action a;
    int got = qn_sched_next_action(s, &a);
    cr_assert_eq(got, 0,
                 "unexpected action %d (worker %d job %d kind %d task %u "
                 "attempt %u)",
                 got ? (int)a.act : -1, a.worker, a.job, (int)a.kind, a.task,
                 a.attempt);
}

#define expect_act(a_, ACT, W, J, K, T, N)                                     \
    do {                                                                       \
        qn_action x_ = (a_);                                                   \
        cr_assert_eq(x_.act, (ACT), "action %d, expected %d", (int)x_.act,     \
                     (int)(ACT));                                              \
        cr_assert_eq(x_.worker, (W), "worker %d, expected %d", x_.worker,      \
                     (int)(W));                                                \
        cr_assert_eq(x_.job, (J), "job %d, expected %d", x_.job, (int)(J));    \
        cr_assert_eq(x_.kind, (K), "kind %d, expected %d", (int)x_.kind,       \
                     (int)(K));                                                \
        cr_assert_eq(x_.task, (T), "task %u, expected %u", x_.task,            \
                     (unsigned)(T));                                           \
        cr_assert_eq(x_.attempt, (N), "attempt %u, expected %u", x_.attempt,   \
                     (unsigned)(N));                                           \
    } while (0)

/* Workers 0 to n-1 are heard from at now (all must be alive). */
static void beat(qn_sched *s, int64_t now, int n)
{
    for (int w = 0; w < n; w++)
        cr_assert_eq(qn_sched_worker_seen(s, now, w), 0, "worker %d dead", w);
}

/* Pop an ASSIGN for (job, kind, task, attempt) on any worker; return it. */
static qn_action pop_assign(qn_sched *s, int job, qn_kind kind, unsigned task,
                            unsigned attempt)
{
    qn_action a = pop(s);
    cr_assert_eq(a.act, QN_ACT_ASSIGN, "action %d, expected ASSIGN",
                 (int)a.act);
    cr_assert_eq(a.job, job);
    cr_assert_eq(a.kind, kind, "kind %d, expected %d", (int)a.kind, (int)kind);
    cr_assert_eq(a.task, task, "task %u, expected %u", a.task, task);
    cr_assert_eq(a.attempt, attempt, "attempt %u, expected %u", a.attempt,
                 attempt);
    return a;
}

/* The job's counts agree with its tasks' states, and each running task
 * has a sane attempt and worker: the oldest of its running attempts, as
 * qn_sched_running and qn_sched_attempt_worker also report. */
static void check_counts(const qn_sched *s, int job)
{
    qn_job_info ji = qn_sched_job(s, job);
    unsigned n[2] = {ji.maps, ji.reduces};
    unsigned running[2] = {0, 0}, done[2] = {0, 0};
    for (int k = 0; k < 2; k++) {
        for (unsigned i = 0; i < n[k]; i++) {
            qn_task_info ti = qn_sched_task(s, job, (qn_kind)k, i);
            cr_assert_leq(ti.failures + ti.losses, ti.attempts);
            unsigned atts[QN_SCHED_MAX_RUNNING];
            int ws[QN_SCHED_MAX_RUNNING];
            unsigned nr = qn_sched_running(s, job, (qn_kind)k, i, atts, ws);
            if (ti.state == QN_TASK_RUNNING) {
                running[k]++;
                cr_assert(ti.running >= 1 && ti.running <= QN_SCHED_MAX_RUNNING,
                          "a running task with %u attempts running",
                          ti.running);
                cr_assert_geq(ti.attempt, 1);
                cr_assert_leq(ti.attempt, ti.attempts);
                cr_assert_geq(ti.worker, 0);
                cr_assert_eq(nr, ti.running);
                cr_assert_eq(atts[0], ti.attempt);
                cr_assert_eq(ws[0], ti.worker);
                for (unsigned r = 0; r < nr; r++)
                    cr_assert_eq(
                        qn_sched_attempt_worker(s, job, (qn_kind)k, i, atts[r]),
                        ws[r]);
            } else if (ti.state == QN_TASK_DONE) {
                done[k]++;
                cr_assert_geq(ti.attempt, 1);
                cr_assert_eq(ti.running, 0);
                cr_assert_eq(nr, 0);
            } else {
                cr_assert_eq(ti.worker, -1, "a pending task has no worker");
                cr_assert_eq(ti.running, 0);
                cr_assert_eq(nr, 0);
            }
        }
    }
    cr_assert_eq(ji.maps_running, running[QN_MAP]);
    cr_assert_eq(ji.maps_done, done[QN_MAP]);
    cr_assert_eq(ji.reduces_running, running[QN_REDUCE]);
    cr_assert_eq(ji.reduces_done, done[QN_REDUCE]);
}

/* ---- assignment ---------------------------------------------------------- */

Test(sched, assigns_only_to_free_slots)
{
    qn_sched *s = new_sched();
    int w0 = qn_sched_worker_join(s, 0, 1);
    int w1 = qn_sched_worker_join(s, 0, 1);
    expect_none(s);
    int j = qn_sched_job_add(s, 0, 5, 1, 4);
    cr_assert_geq(j, 0);

    /* Two slots in all: two maps start, three wait. */
    qn_action a = pop_assign(s, j, QN_MAP, 0, 1);
    qn_action b = pop_assign(s, j, QN_MAP, 1, 1);
    expect_none(s);
    cr_assert_neq(a.worker, b.worker, "both maps went to worker %d", a.worker);
    cr_assert_eq(qn_sched_worker_busy(s, w0), 1);
    cr_assert_eq(qn_sched_worker_busy(s, w1), 1);
    cr_assert_eq(qn_sched_task(s, j, QN_MAP, 2).state, QN_TASK_PENDING);
    check_counts(s, j);

    /* A finished map frees exactly one slot, which the next map takes. */
    cr_assert_eq(qn_sched_done(s, 10, j, QN_MAP, 0, 1), QN_SCHED_ACCEPTED);
    qn_action c = pop_assign(s, j, QN_MAP, 2, 1);
    cr_assert_eq(c.worker, a.worker);
    expect_none(s);
    check_counts(s, j);
}

Test(sched, prefers_worker_with_most_free_slots)
{
    qn_sched *s = new_sched();
    int small = qn_sched_worker_join(s, 0, 1);
    int big = qn_sched_worker_join(s, 0, 3);
    int j = qn_sched_job_add(s, 0, 4, 1, 4);

    /* big has 3 free, then 2 free: it gets the first two maps. */
    cr_assert_eq(pop_assign(s, j, QN_MAP, 0, 1).worker, big);
    cr_assert_eq(pop_assign(s, j, QN_MAP, 1, 1).worker, big);
    /* Then both have one free slot: one map each. */
    qn_action c = pop_assign(s, j, QN_MAP, 2, 1);
    qn_action d = pop_assign(s, j, QN_MAP, 3, 1);
    cr_assert_neq(c.worker, d.worker);
    expect_none(s);
    cr_assert_eq(qn_sched_worker_busy(s, small), 1);
    cr_assert_eq(qn_sched_worker_busy(s, big), 3);
}

Test(sched, spreads_tasks_across_equal_workers)
{
    qn_sched *s = new_sched();
    int w[3];
    for (int i = 0; i < 3; i++)
        w[i] = qn_sched_worker_join(s, 0, 2);
    int j = qn_sched_job_add(s, 0, 3, 1, 4);
    int used[3] = {0, 0, 0};
    for (unsigned t = 0; t < 3; t++) {
        qn_action a = pop_assign(s, j, QN_MAP, t, 1);
        cr_assert(a.worker >= 0 && a.worker < 3);
        used[a.worker]++;
    }
    for (int i = 0; i < 3; i++)
        cr_assert_eq(used[i], 1, "worker %d got %d of 3 maps", w[i], used[i]);
    /* No map is pending, so the reduce starts too: the rotation goes on
     * from the worker after the last map's, back to the first. */
    expect_act(pop(s), QN_ACT_ASSIGN, w[0], j, QN_REDUCE, 0, 1);
    expect_none(s);
    cr_assert_eq(qn_sched_worker_busy(s, w[0]), 2);
    cr_assert_eq(qn_sched_worker_busy(s, w[1]), 1);
    cr_assert_eq(qn_sched_worker_busy(s, w[2]), 1);
}

Test(sched, worker_joining_later_gets_pending_tasks)
{
    qn_sched *s = new_sched();
    int j = qn_sched_job_add(s, 0, 2, 1, 4);
    expect_none(s);
    cr_assert_eq(qn_sched_task(s, j, QN_MAP, 0).state, QN_TASK_PENDING);
    int w = qn_sched_worker_join(s, 5, 2);
    expect_act(pop(s), QN_ACT_ASSIGN, w, j, QN_MAP, 0, 1);
    expect_act(pop(s), QN_ACT_ASSIGN, w, j, QN_MAP, 1, 1);
    expect_none(s);
    qn_task_info ti = qn_sched_task(s, j, QN_MAP, 1);
    cr_assert_eq(ti.state, QN_TASK_RUNNING);
    cr_assert_eq(ti.worker, w);
    cr_assert_eq(ti.started, 5);
}

Test(sched, rejects_job_without_maps_reduces_or_attempts)
{
    qn_sched *s = new_sched();
    cr_assert_eq(qn_sched_job_add(s, 0, 0, 1, 4), -1);
    cr_assert_eq(qn_sched_job_add(s, 0, 1, 0, 4), -1);
    cr_assert_eq(qn_sched_job_add(s, 0, 1, 1, 0), -1);
    expect_none(s);
}

/* ---- phases -------------------------------------------------------------- */

Test(sched, maps_run_before_reduces)
{
    qn_sched *s = new_sched();
    int w = qn_sched_worker_join(s, 0, 1);
    int j = qn_sched_job_add(s, 0, 3, 2, 4);
    /* One slot: every map goes through it before any reduce, as a
     * reduce never takes a slot while a map waits for one. */
    for (unsigned t = 0; t < 3; t++) {
        expect_act(pop(s), QN_ACT_ASSIGN, w, j, QN_MAP, t, 1);
        expect_none(s);
        cr_assert_eq(qn_sched_done(s, 10 * (t + 1), j, QN_MAP, t, 1),
                     QN_SCHED_ACCEPTED);
    }
    expect_act(pop(s), QN_ACT_ASSIGN, w, j, QN_REDUCE, 0, 1);
    expect_none(s);
}

Test(sched, reduces_start_once_no_map_waits_for_a_slot)
{
    qn_sched *s = new_sched();
    int w = qn_sched_worker_join(s, 0, 2);
    int j = qn_sched_job_add(s, 0, 3, 2, 4);
    /* Two slots, three maps: maps 0 and 1 start; map 2 waits for a slot,
     * and so do the reduces. */
    expect_act(pop(s), QN_ACT_ASSIGN, w, j, QN_MAP, 0, 1);
    expect_act(pop(s), QN_ACT_ASSIGN, w, j, QN_MAP, 1, 1);
    expect_none(s);
    /* The slot map 0 frees goes to map 2, not to a reduce. */
    cr_assert_eq(qn_sched_done(s, 10, j, QN_MAP, 0, 1), QN_SCHED_ACCEPTED);
    expect_act(pop(s), QN_ACT_ASSIGN, w, j, QN_MAP, 2, 1);
    expect_none(s);
    cr_assert_eq(qn_sched_task(s, j, QN_REDUCE, 0).state, QN_TASK_PENDING);
    /* No map is pending now, though map 2 still runs: the next free slot
     * goes to a reduce, which fetches map outputs as they appear. */
    cr_assert_eq(qn_sched_done(s, 20, j, QN_MAP, 1, 1), QN_SCHED_ACCEPTED);
    qn_action r = pop(s);
    expect_act(r, QN_ACT_ASSIGN, w, j, QN_REDUCE, 0, 1);
    cr_assert_eq(r.backup, 0);
    expect_none(s);
    qn_job_info ji = qn_sched_job(s, j);
    cr_assert_eq(ji.maps_done, 2);
    cr_assert_eq(ji.maps_running, 1);
    cr_assert_eq(ji.reduces_running, 1);
    cr_assert_eq(qn_sched_task(s, j, QN_REDUCE, 1).state, QN_TASK_PENDING);
    check_counts(s, j);
    /* The last map's slot goes to the other reduce. */
    cr_assert_eq(qn_sched_done(s, 30, j, QN_MAP, 2, 1), QN_SCHED_ACCEPTED);
    expect_act(pop(s), QN_ACT_ASSIGN, w, j, QN_REDUCE, 1, 1);
    expect_none(s);
    check_counts(s, j);
}

/*
 * A reduce that starts while maps still run waits for them: it reports
 * no progress meanwhile, yet it does not time out, nor is it part of the
 * deadline. Its clock starts when the last map is done, not when the
 * first of them is.
 */
Test(sched, reduce_waiting_for_running_maps_does_not_time_out)
{
    qn_sched *s = new_sched();
    int w = qn_sched_worker_join(s, 0, 3);
    int j = qn_sched_job_add(s, 0, 2, 1, 4);
    expect_act(pop(s), QN_ACT_ASSIGN, w, j, QN_MAP, 0, 1);
    expect_act(pop(s), QN_ACT_ASSIGN, w, j, QN_MAP, 1, 1);
    expect_act(pop(s), QN_ACT_ASSIGN, w, j, QN_REDUCE, 0, 1); /* at 0 */
    expect_none(s);
    cr_assert_eq(qn_sched_deadline(s), CFG.dead_ms, "the heartbeat only");

    /* Map 0 is done at 100000, map 1 at 302000; both report progress. */
    for (int64_t now = 5000; now <= 300000; now += 5000) {
        beat(s, now, 1);
        if (now < 100000)
            qn_sched_progress(s, now, j, QN_MAP, 0, 1);
        qn_sched_progress(s, now, j, QN_MAP, 1, 1);
        if (now == 100000) {
            cr_assert_eq(qn_sched_done(s, now, j, QN_MAP, 0, 1),
                         QN_SCHED_ACCEPTED);
            expect_none(s);
        }
        qn_sched_tick(s, now);
        expect_none(s);
        cr_assert_eq(qn_sched_deadline(s), now + CFG.dead_ms);
    }
    cr_assert_eq(qn_sched_attempt_worker(s, j, QN_REDUCE, 0, 1), w);
    qn_task_info ti = qn_sched_task(s, j, QN_REDUCE, 0);
    cr_assert_eq(ti.started, 0);
    cr_assert_eq(ti.failures, 0);

    /* The last map is done at 302000, between ticks: the reduce's clock
     * starts there, so it times out at 362000. */
    cr_assert_eq(qn_sched_done(s, 302000, j, QN_MAP, 1, 1), QN_SCHED_ACCEPTED);
    expect_none(s);
    for (int64_t now = 305000; now <= 360000; now += 5000) {
        beat(s, now, 1);
        qn_sched_tick(s, now);
        expect_none(s);
    }
    cr_assert_eq(qn_sched_deadline(s), 362000);
    qn_sched_tick(s, 361999);
    expect_none(s);
    qn_sched_tick(s, 362000);
    qn_action c = pop(s);
    expect_act(c, QN_ACT_CANCEL, w, j, QN_REDUCE, 0, 1);
    cr_assert_eq(c.reason, QN_CANCEL_TIMEOUT);
    qn_action lost = pop(s);
    expect_act(lost, QN_ACT_ATTEMPT_LOST, w, j, QN_REDUCE, 0, 1);
    cr_assert_eq(lost.reason, QN_LOST_TIMEOUT);
    expect_act(pop(s), QN_ACT_ASSIGN, w, j, QN_REDUCE, 0, 2);
    expect_none(s);
    cr_assert_eq(qn_sched_task(s, j, QN_REDUCE, 0).failures, 1);
}

Test(sched, job_runs_to_done_exactly_once)
{
    enum { NMAP = 5, NRED = 3, SLOTS = 2, NW = 2 };
    qn_sched *s = new_sched();
    for (int i = 0; i < NW; i++)
        cr_assert_eq(qn_sched_worker_join(s, 0, SLOTS), i);
    int j = qn_sched_job_add(s, 0, NMAP, NRED, 4);

    qn_action running[NMAP + NRED];
    size_t nrun = 0;
    int load[NW] = {0};
    int started_map[NMAP] = {0}, done_map[NMAP] = {0}, done_red[NRED] = {0};
    int job_done = 0, reduce_before_last_map = 0;
    int64_t now = 0;
    for (int step = 0; step < 100; step++) {
        qn_action a;
        while (qn_sched_next_action(s, &a)) {
            if (a.act == QN_ACT_JOB_DONE) {
                cr_assert_eq(a.job, j);
                job_done++;
                continue;
            }
            cr_assert_eq(a.act, QN_ACT_ASSIGN, "unexpected action %d",
                         (int)a.act);
            cr_assert_eq(a.job, j);
            cr_assert_eq(a.attempt, 1, "nothing failed, yet attempt %u",
                         a.attempt);
            cr_assert_eq(a.backup, 0,
                         "a backup though the job does not "
                         "speculate");
            cr_assert(a.worker >= 0 && a.worker < NW);
            cr_assert_lt(load[a.worker], SLOTS, "worker %d over its slots",
                         a.worker);
            load[a.worker]++;
            if (a.kind == QN_MAP) {
                started_map[a.task] = 1;
            } else {
                /* A reduce starts only once no map is pending: every
                 * map has started (it may still run). */
                for (int m = 0; m < NMAP; m++) {
                    cr_assert(started_map[m], "reduce %u before map %d started",
                              a.task, m);
                    cr_assert_neq(qn_sched_task(s, j, QN_MAP, m).state,
                                  QN_TASK_PENDING);
                    reduce_before_last_map |= !done_map[m];
                }
            }
            running[nrun++] = a;
        }
        check_counts(s, j);
        for (int w = 0; w < NW; w++)
            cr_assert_eq(qn_sched_worker_busy(s, w), (unsigned)load[w]);
        if (nrun == 0)
            break;
        /* Finish the oldest running attempt. */
        qn_action r = running[0];
        memmove(running, running + 1, --nrun * sizeof *running);
        load[r.worker]--;
        now += 100;
        cr_assert_eq(qn_sched_done(s, now, r.job, r.kind, r.task, r.attempt),
                     QN_SCHED_ACCEPTED);
        int *seen = r.kind == QN_MAP ? &done_map[r.task] : &done_red[r.task];
        cr_assert_eq(*seen, 0, "task finished twice");
        *seen = 1;
    }
    cr_assert_eq(job_done, 1);
    cr_assert(reduce_before_last_map,
              "no reduce started while the last maps ran, in free slots");
    for (int m = 0; m < NMAP; m++)
        cr_assert(done_map[m]);
    for (int r = 0; r < NRED; r++)
        cr_assert(done_red[r]);
    qn_job_info ji = qn_sched_job(s, j);
    cr_assert_eq(ji.state, QN_JOB_DONE);
    cr_assert_eq(ji.maps, NMAP);
    cr_assert_eq(ji.maps_done, NMAP);
    cr_assert_eq(ji.reduces, NRED);
    cr_assert_eq(ji.reduces_done, NRED);
    cr_assert_eq(ji.maps_running + ji.reduces_running, 0);

    /* A late duplicate changes nothing and does not finish it again. */
    cr_assert_eq(qn_sched_done(s, now + 1, j, QN_REDUCE, 0, 1), QN_SCHED_STALE);
    expect_none(s);
    cr_assert_eq(qn_sched_job_cancel(s, now + 2, j), -1);
    cr_assert_eq(qn_sched_job(s, j).state, QN_JOB_DONE);
    expect_none(s);
}

/* ---- failures and retries ------------------------------------------------ */

Test(sched, failed_attempt_is_retried_with_next_attempt_number)
{
    qn_sched *s = new_sched();
    int w = qn_sched_worker_join(s, 0, 1);
    int j = qn_sched_job_add(s, 0, 1, 1, 4);
    expect_act(pop(s), QN_ACT_ASSIGN, w, j, QN_MAP, 0, 1);
    cr_assert_eq(qn_sched_failed(s, 10, j, QN_MAP, 0, 1), QN_SCHED_ACCEPTED);
    expect_act(pop(s), QN_ACT_ASSIGN, w, j, QN_MAP, 0, 2);
    expect_none(s);
    qn_task_info ti = qn_sched_task(s, j, QN_MAP, 0);
    cr_assert_eq(ti.state, QN_TASK_RUNNING);
    cr_assert_eq(ti.attempts, 2);
    cr_assert_eq(ti.failures, 1);
    cr_assert_eq(ti.attempt, 2);
    cr_assert_eq(ti.started, 10);
    cr_assert_eq(qn_sched_job(s, j).state, QN_JOB_RUNNING);

    /* The retry's success counts; the job goes on to its reduce. */
    cr_assert_eq(qn_sched_done(s, 20, j, QN_MAP, 0, 2), QN_SCHED_ACCEPTED);
    expect_act(pop(s), QN_ACT_ASSIGN, w, j, QN_REDUCE, 0, 1);
    expect_none(s);
}

Test(sched, a_task_that_ran_before_goes_ahead_of_those_that_never_ran)
{
    qn_sched *s = new_sched();
    int w = qn_sched_worker_join(s, 0, 2);
    int j = qn_sched_job_add(s, 0, 4, 1, 4);
    expect_act(pop(s), QN_ACT_ASSIGN, w, j, QN_MAP, 0, 1);
    expect_act(pop(s), QN_ACT_ASSIGN, w, j, QN_MAP, 1, 1);
    expect_none(s);
    /* Map 1 fails: its retry takes the free slot before maps 2 and 3. */
    cr_assert_eq(qn_sched_failed(s, 10, j, QN_MAP, 1, 1), QN_SCHED_ACCEPTED);
    expect_act(pop(s), QN_ACT_ASSIGN, w, j, QN_MAP, 1, 2);
    expect_none(s);
    /* Then the others, in order. */
    cr_assert_eq(qn_sched_done(s, 20, j, QN_MAP, 0, 1), QN_SCHED_ACCEPTED);
    expect_act(pop(s), QN_ACT_ASSIGN, w, j, QN_MAP, 2, 1);
    cr_assert_eq(qn_sched_done(s, 30, j, QN_MAP, 1, 2), QN_SCHED_ACCEPTED);
    expect_act(pop(s), QN_ACT_ASSIGN, w, j, QN_MAP, 3, 1);
    expect_none(s);
}

Test(sched, job_fails_after_max_attempts_and_cancels_the_rest)
{
    qn_sched *s = new_sched();
    int w = qn_sched_worker_join(s, 0, 2);
    int j = qn_sched_job_add(s, 0, 2, 1, 3);
    expect_act(pop(s), QN_ACT_ASSIGN, w, j, QN_MAP, 0, 1);
    expect_act(pop(s), QN_ACT_ASSIGN, w, j, QN_MAP, 1, 1);
    expect_none(s);

    for (unsigned n = 1; n < 3; n++) {
        cr_assert_eq(qn_sched_failed(s, 10 * n, j, QN_MAP, 0, n),
                     QN_SCHED_ACCEPTED);
        expect_act(pop(s), QN_ACT_ASSIGN, w, j, QN_MAP, 0, n + 1);
        expect_none(s);
    }
    /* The third failure of map 0 ends the job: map 1 is killed. */
    cr_assert_eq(qn_sched_failed(s, 100, j, QN_MAP, 0, 3), QN_SCHED_ACCEPTED);
    qn_action got[2] = {pop(s), pop(s)};
    expect_none(s);
    int cancels = 0, failed = 0;
    for (int i = 0; i < 2; i++) {
        if (got[i].act == QN_ACT_CANCEL) {
            expect_act(got[i], QN_ACT_CANCEL, w, j, QN_MAP, 1, 1);
            cr_assert_eq(got[i].reason, QN_CANCEL_JOB_END);
            cancels++;
        } else {
            cr_assert_eq(got[i].act, QN_ACT_JOB_FAILED);
            cr_assert_eq(got[i].job, j);
            cr_assert_eq(got[i].kind, QN_MAP);
            cr_assert_eq(got[i].task, 0, "JOB_FAILED names task %u",
                         got[i].task);
            cr_assert_eq(got[i].attempt, 3);
            failed++;
        }
    }
    cr_assert_eq(cancels, 1);
    cr_assert_eq(failed, 1);

    qn_job_info ji = qn_sched_job(s, j);
    cr_assert_eq(ji.state, QN_JOB_FAILED);
    cr_assert_eq(ji.maps_running, 0);
    cr_assert_eq(ji.reduces_running, 0);
    cr_assert_eq(qn_sched_worker_busy(s, w), 0);
    qn_task_info ti = qn_sched_task(s, j, QN_MAP, 0);
    cr_assert_eq(ti.failures, 3);
    cr_assert_eq(ti.attempts, 3);
    cr_assert_neq(qn_sched_task(s, j, QN_MAP, 1).state, QN_TASK_RUNNING);

    /* The cancelled attempt's late report is stale; nothing restarts. */
    cr_assert_eq(qn_sched_done(s, 110, j, QN_MAP, 1, 1), QN_SCHED_STALE);
    qn_sched_worker_join(s, 120, 4);
    qn_sched_tick(s, 130);
    expect_none(s);
    cr_assert_eq(qn_sched_job(s, j).state, QN_JOB_FAILED);
}

Test(sched, reduce_failures_also_count)
{
    qn_sched *s = new_sched();
    int w = qn_sched_worker_join(s, 0, 1);
    int j = qn_sched_job_add(s, 0, 1, 1, 2);
    pop_assign(s, j, QN_MAP, 0, 1);
    cr_assert_eq(qn_sched_done(s, 1, j, QN_MAP, 0, 1), QN_SCHED_ACCEPTED);
    pop_assign(s, j, QN_REDUCE, 0, 1);
    cr_assert_eq(qn_sched_failed(s, 2, j, QN_REDUCE, 0, 1), QN_SCHED_ACCEPTED);
    pop_assign(s, j, QN_REDUCE, 0, 2);
    cr_assert_eq(qn_sched_failed(s, 3, j, QN_REDUCE, 0, 2), QN_SCHED_ACCEPTED);
    expect_act(pop(s), QN_ACT_JOB_FAILED, -1, j, QN_REDUCE, 0, 2);
    expect_none(s);
    cr_assert_eq(qn_sched_job(s, j).state, QN_JOB_FAILED);
    cr_assert_eq(qn_sched_worker_busy(s, w), 0);
}

/* ---- stale and duplicate reports ----------------------------------------- */

Test(sched, report_for_wrong_attempt_is_stale_and_changes_nothing)
{
    qn_sched *s = new_sched();
    int w = qn_sched_worker_join(s, 0, 1);
    int j = qn_sched_job_add(s, 0, 1, 1, 4);
    pop_assign(s, j, QN_MAP, 0, 1);
    cr_assert_eq(qn_sched_failed(s, 10, j, QN_MAP, 0, 1), QN_SCHED_ACCEPTED);
    pop_assign(s, j, QN_MAP, 0, 2);
    qn_task_info before = qn_sched_task(s, j, QN_MAP, 0);

    /* Attempt 1 was given up on; attempt 3 never started. */
    cr_assert_eq(qn_sched_done(s, 20, j, QN_MAP, 0, 1), QN_SCHED_STALE);
    cr_assert_eq(qn_sched_failed(s, 20, j, QN_MAP, 0, 1), QN_SCHED_STALE);
    cr_assert_eq(qn_sched_done(s, 20, j, QN_MAP, 0, 3), QN_SCHED_STALE);
    cr_assert_eq(qn_sched_failed(s, 20, j, QN_MAP, 0, 0), QN_SCHED_STALE);
    /* Nonexistent jobs and tasks. */
    cr_assert_eq(qn_sched_done(s, 20, j, QN_MAP, 1, 1), QN_SCHED_STALE);
    cr_assert_eq(qn_sched_done(s, 20, j + 1, QN_MAP, 0, 1), QN_SCHED_STALE);
    cr_assert_eq(qn_sched_done(s, 20, -1, QN_MAP, 0, 1), QN_SCHED_STALE);
    cr_assert_eq(qn_sched_done(s, 20, j, QN_REDUCE, 0, 1), QN_SCHED_STALE);
    expect_none(s);

    qn_task_info after = qn_sched_task(s, j, QN_MAP, 0);
    cr_assert_eq(after.state, QN_TASK_RUNNING);
    cr_assert_eq(after.attempt, before.attempt);
    cr_assert_eq(after.attempts, before.attempts);
    cr_assert_eq(after.failures, before.failures);
    cr_assert_eq(qn_sched_job(s, j).maps_done, 0);
    cr_assert_eq(qn_sched_worker_busy(s, w), 1);
}

Test(sched, second_done_is_stale_and_changes_nothing)
{
    qn_sched *s = new_sched();
    qn_sched_worker_join(s, 0, 1);
    int j = qn_sched_job_add(s, 0, 2, 1, 4);
    pop_assign(s, j, QN_MAP, 0, 1);
    cr_assert_eq(qn_sched_done(s, 10, j, QN_MAP, 0, 1), QN_SCHED_ACCEPTED);
    pop_assign(s, j, QN_MAP, 1, 1);
    expect_none(s);

    cr_assert_eq(qn_sched_done(s, 11, j, QN_MAP, 0, 1), QN_SCHED_STALE);
    cr_assert_eq(qn_sched_failed(s, 12, j, QN_MAP, 0, 1), QN_SCHED_STALE);
    expect_none(s);
    qn_job_info ji = qn_sched_job(s, j);
    cr_assert_eq(ji.maps_done, 1);
    cr_assert_eq(ji.maps_running, 1);
    qn_task_info ti = qn_sched_task(s, j, QN_MAP, 0);
    cr_assert_eq(ti.state, QN_TASK_DONE);
    cr_assert_eq(ti.failures, 0);
    cr_assert_eq(ti.attempts, 1);
    check_counts(s, j);
}

Test(sched, stale_progress_does_not_postpone_timeout)
{
    qn_sched *s = new_sched();
    int w = qn_sched_worker_join(s, 0, 1);
    int j = qn_sched_job_add(s, 0, 1, 1, 4);
    pop_assign(s, j, QN_MAP, 0, 1);
    qn_sched_worker_seen(s, 5000, w);
    qn_sched_progress(s, 5000, j, QN_MAP, 0, 2); /* not its attempt */
    qn_sched_progress(s, 5000, j, QN_MAP, 1, 1); /* no such task */
    cr_assert_eq(qn_sched_deadline(s), 15000);   /* the heartbeat, not 65000 */
    for (int64_t t = 10000; t <= 60000; t += 5000)
        cr_assert_eq(qn_sched_worker_seen(s, t, w), 0);
    qn_sched_tick(s, 60000);
    expect_act(pop(s), QN_ACT_CANCEL, w, j, QN_MAP, 0, 1);
    qn_action lost = pop(s);
    expect_act(lost, QN_ACT_ATTEMPT_LOST, w, j, QN_MAP, 0, 1);
    cr_assert_eq(lost.reason, QN_LOST_TIMEOUT);
    pop_assign(s, j, QN_MAP, 0, 2);
    expect_none(s);
}

/* ---- dead workers -------------------------------------------------------- */

Test(sched, silent_worker_dies_on_tick_and_its_attempt_reruns_elsewhere)
{
    qn_sched *s = new_sched();
    int w0 = qn_sched_worker_join(s, 0, 1);
    int j = qn_sched_job_add(s, 0, 2, 1, 4);
    expect_act(pop(s), QN_ACT_ASSIGN, w0, j, QN_MAP, 0, 1);
    int w1 = qn_sched_worker_join(s, 0, 1);
    expect_act(pop(s), QN_ACT_ASSIGN, w1, j, QN_MAP, 1, 1);
    expect_none(s);

    /* w1 heartbeats; w0 says nothing. */
    cr_assert_eq(qn_sched_worker_seen(s, 5000, w1), 0);
    qn_sched_tick(s, 9999);
    expect_none(s);
    cr_assert(qn_sched_worker_alive(s, w0));

    qn_sched_tick(s, 10000);
    expect_act(pop(s), QN_ACT_WORKER_DEAD, w0, -1, QN_MAP, 0, 0);
    qn_action lost = pop(s);
    expect_act(lost, QN_ACT_ATTEMPT_LOST, w0, j, QN_MAP, 0, 1);
    cr_assert_eq(lost.reason, QN_LOST_WORKER_DEAD);
    expect_none(s); /* w1 is busy: map 0 waits */
    cr_assert_not(qn_sched_worker_alive(s, w0));
    cr_assert(qn_sched_worker_alive(s, w1));
    cr_assert_eq(qn_sched_worker_busy(s, w0), 0);
    /* Lost with its worker: a loss, not a failure of the task. */
    qn_task_info ti = qn_sched_task(s, j, QN_MAP, 0);
    cr_assert_eq(ti.state, QN_TASK_PENDING);
    cr_assert_eq(ti.failures, 0);
    cr_assert_eq(ti.losses, 1);
    check_counts(s, j);

    /* When w1 frees up, map 0 runs there as attempt 2. */
    cr_assert_eq(qn_sched_done(s, 10500, j, QN_MAP, 1, 1), QN_SCHED_ACCEPTED);
    expect_act(pop(s), QN_ACT_ASSIGN, w1, j, QN_MAP, 0, 2);
    expect_none(s);
    /* The dead worker's late report is ignored. */
    cr_assert_eq(qn_sched_done(s, 10600, j, QN_MAP, 0, 1), QN_SCHED_STALE);
    expect_none(s);
}

Test(sched, worker_leaving_loses_its_attempts)
{
    qn_sched *s = new_sched();
    int w0 = qn_sched_worker_join(s, 0, 2);
    int j = qn_sched_job_add(s, 0, 2, 1, 4);
    pop_assign(s, j, QN_MAP, 0, 1);
    pop_assign(s, j, QN_MAP, 1, 1);
    qn_sched_worker_leave(s, 100, w0);
    expect_act(pop(s), QN_ACT_WORKER_DEAD, w0, -1, QN_MAP, 0, 0);
    for (unsigned t = 0; t < 2; t++) {
        qn_action a = pop(s);
        cr_assert_eq(a.act, QN_ACT_ATTEMPT_LOST);
        cr_assert_eq(a.reason, QN_LOST_WORKER_DEAD);
        cr_assert_eq(a.worker, w0);
        cr_assert_eq(a.attempt, 1);
    }
    expect_none(s);
    cr_assert_not(qn_sched_worker_alive(s, w0));
    qn_job_info ji = qn_sched_job(s, j);
    cr_assert_eq(ji.maps_running, 0);
    cr_assert_eq(ji.state, QN_JOB_RUNNING);
    /* Leaving twice is harmless. */
    qn_sched_worker_leave(s, 200, w0);
    expect_none(s);
    int w1 = qn_sched_worker_join(s, 300, 2);
    expect_act(pop(s), QN_ACT_ASSIGN, w1, j, QN_MAP, 0, 2);
    expect_act(pop(s), QN_ACT_ASSIGN, w1, j, QN_MAP, 1, 2);
    expect_none(s);
}

Test(sched, dead_workers_completed_maps_run_again)
{
    qn_sched *s = new_sched();
    int w0 = qn_sched_worker_join(s, 0, 1);
    int w1 = qn_sched_worker_join(s, 0, 1);
    int j = qn_sched_job_add(s, 0, 2, 3, 4);
    expect_act(pop(s), QN_ACT_ASSIGN, w0, j, QN_MAP, 0, 1);
    expect_act(pop(s), QN_ACT_ASSIGN, w1, j, QN_MAP, 1, 1);
    expect_none(s);
    /* No map is pending: each slot a map frees goes to a reduce, which
     * waits for the maps still running. */
    cr_assert_eq(qn_sched_done(s, 100, j, QN_MAP, 0, 1), QN_SCHED_ACCEPTED);
    expect_act(pop(s), QN_ACT_ASSIGN, w0, j, QN_REDUCE, 0, 1);
    expect_none(s);
    cr_assert_eq(qn_sched_done(s, 200, j, QN_MAP, 1, 1), QN_SCHED_ACCEPTED);
    expect_act(pop(s), QN_ACT_ASSIGN, w1, j, QN_REDUCE, 1, 1);
    expect_none(s); /* reduce 2 waits for a slot */

    /* The worker that ran map 0 (and runs reduce 0) goes silent; the
     * other heartbeats. */
    int dead = w0, live = w1;
    qn_sched_worker_seen(s, 9000, live);
    qn_sched_tick(s, 10000);
    expect_act(pop(s), QN_ACT_WORKER_DEAD, dead, -1, QN_MAP, 0, 0);
    qn_action lost = pop(s);
    expect_act(lost, QN_ACT_ATTEMPT_LOST, dead, j, QN_REDUCE, 0, 1);
    cr_assert_eq(lost.reason, QN_LOST_WORKER_DEAD);
    /* Map 0's output lived there: it runs again, for that reason. */
    qn_action rerun = pop(s);
    expect_act(rerun, QN_ACT_MAP_RERUN, dead, j, QN_MAP, 0, 1);
    cr_assert_eq(rerun.reason, 1,
                 "MAP_RERUN reason %d, expected 1 (worker "
                 "died)",
                 rerun.reason);
    /* The live worker's only slot holds a reduce that waits for map 0,
     * which could run nowhere else: the reduce makes room (a cancel that
     * is neither a failure nor a loss) and map 0 runs there. */
    unsigned live_reduce = 1;
    qn_action pre = pop(s);
    expect_act(pre, QN_ACT_CANCEL, live, j, QN_REDUCE, live_reduce, 1);
    cr_assert_eq(pre.reason, QN_CANCEL_PREEMPTED);
    expect_act(pop(s), QN_ACT_ASSIGN, live, j, QN_MAP, 0, 2);
    expect_none(s);
    qn_task_info lr = qn_sched_task(s, j, QN_REDUCE, lost.task);
    cr_assert_eq(lr.state, QN_TASK_PENDING);
    cr_assert_eq(lr.losses, 1);
    cr_assert_eq(lr.failures, 0);
    qn_task_info pr = qn_sched_task(s, j, QN_REDUCE, live_reduce);
    cr_assert_eq(pr.state, QN_TASK_PENDING);
    cr_assert_eq(pr.losses, 0);
    cr_assert_eq(pr.failures, 0);
    /* Its late report changes nothing. */
    cr_assert_eq(qn_sched_done(s, 10050, j, QN_REDUCE, live_reduce, 1),
                 QN_SCHED_STALE);

    /* Map 0 ran again without counting as a failure or a loss; no slot is
     * free for a reduce while it runs. */
    qn_task_info ti = qn_sched_task(s, j, QN_MAP, 0);
    cr_assert_eq(ti.state, QN_TASK_RUNNING);
    cr_assert_eq(ti.failures, 0);
    cr_assert_eq(ti.losses, 0, "a done map running again is not a loss");
    cr_assert_eq(qn_sched_task(s, j, QN_MAP, 1).state, QN_TASK_DONE);
    qn_job_info ji = qn_sched_job(s, j);
    cr_assert_eq(ji.maps_done, 1);
    cr_assert_eq(ji.reduces_running, 0);
    check_counts(s, j);

    /* Its slot goes to the reduce lost with the dead worker: it became
     * pending first of the two that ran before, which go ahead of
     * reduce 2. */
    cr_assert_eq(qn_sched_done(s, 10200, j, QN_MAP, 0, 2), QN_SCHED_ACCEPTED);
    expect_act(pop(s), QN_ACT_ASSIGN, live, j, QN_REDUCE, 0, 2);
    expect_none(s);
    check_counts(s, j);
}

Test(sched, completed_maps_of_finished_job_are_not_rerun)
{
    qn_sched *s = new_sched();
    int w = qn_sched_worker_join(s, 0, 1);
    int j = qn_sched_job_add(s, 0, 1, 1, 4);
    pop_assign(s, j, QN_MAP, 0, 1);
    qn_sched_done(s, 1, j, QN_MAP, 0, 1);
    pop_assign(s, j, QN_REDUCE, 0, 1);
    qn_sched_done(s, 2, j, QN_REDUCE, 0, 1);
    expect_act(pop(s), QN_ACT_JOB_DONE, -1, j, QN_MAP, 0, 0);
    expect_none(s);
    int w2 = qn_sched_worker_join(s, 3, 1);
    qn_sched_worker_leave(s, 4, w);
    expect_act(pop(s), QN_ACT_WORKER_DEAD, w, -1, QN_MAP, 0, 0);
    expect_none(s);
    cr_assert_eq(qn_sched_job(s, j).maps_done, 1);
    cr_assert_eq(qn_sched_task(s, j, QN_MAP, 0).state, QN_TASK_DONE);
    cr_assert_eq(qn_sched_worker_busy(s, w2), 0);
}

Test(sched, heartbeats_keep_worker_alive)
{
    qn_sched *s = new_sched();
    int w = qn_sched_worker_join(s, 0, 1);
    for (int64_t t = 5000; t <= 50000; t += 5000) {
        cr_assert_eq(qn_sched_worker_seen(s, t, w), 0);
        qn_sched_tick(s, t + 9999);
        expect_none(s);
        cr_assert(qn_sched_worker_alive(s, w));
    }
    /* Silence from 50000 on: dead at 60000, not before. */
    qn_sched_tick(s, 59999);
    expect_none(s);
    qn_sched_tick(s, 60000);
    expect_act(pop(s), QN_ACT_WORKER_DEAD, w, -1, QN_MAP, 0, 0);
    expect_none(s);
    cr_assert_not(qn_sched_worker_alive(s, w));
}

Test(sched, worker_seen_after_death_returns_error)
{
    qn_sched *s = new_sched();
    int w = qn_sched_worker_join(s, 0, 1);
    cr_assert_eq(qn_sched_worker_seen(s, 100, w), 0);
    cr_assert_eq(qn_sched_worker_seen(s, 100, w + 1), -1, "unknown worker");
    cr_assert_eq(qn_sched_worker_seen(s, 100, -1), -1, "unknown worker");
    qn_sched_tick(s, 10100);
    expect_act(pop(s), QN_ACT_WORKER_DEAD, w, -1, QN_MAP, 0, 0);
    /* It must join again; being heard from does not revive it. */
    cr_assert_eq(qn_sched_worker_seen(s, 10200, w), -1);
    cr_assert_not(qn_sched_worker_alive(s, w));
    int again = qn_sched_worker_join(s, 10300, 1);
    cr_assert_neq(again, w, "handles are never reused");
    cr_assert(qn_sched_worker_alive(s, again));
    expect_none(s);
}

/* ---- task timeouts ------------------------------------------------------- */

Test(sched, attempt_without_progress_times_out)
{
    qn_sched *s = new_sched();
    int w = qn_sched_worker_join(s, 0, 1);
    int j = qn_sched_job_add(s, 0, 1, 1, 4);
    expect_act(pop(s), QN_ACT_ASSIGN, w, j, QN_MAP, 0, 1);
    /* The worker is alive; only the attempt is stuck. */
    for (int64_t t = 5000; t < 60000; t += 5000) {
        qn_sched_worker_seen(s, t, w);
        qn_sched_tick(s, t);
        expect_none(s);
    }
    qn_sched_worker_seen(s, 59999, w);
    qn_sched_tick(s, 59999);
    expect_none(s);
    qn_sched_tick(s, 60000);
    qn_action cancel = pop(s);
    expect_act(cancel, QN_ACT_CANCEL, w, j, QN_MAP, 0, 1);
    cr_assert_eq(cancel.reason, QN_CANCEL_TIMEOUT);
    qn_action lost = pop(s);
    expect_act(lost, QN_ACT_ATTEMPT_LOST, w, j, QN_MAP, 0, 1);
    cr_assert_eq(lost.reason, QN_LOST_TIMEOUT);
    expect_act(pop(s), QN_ACT_ASSIGN, w, j, QN_MAP, 0, 2);
    expect_none(s);
    cr_assert(qn_sched_worker_alive(s, w), "a stuck task is not a dead worker");
    cr_assert_eq(qn_sched_task(s, j, QN_MAP, 0).failures, 1);
    cr_assert_eq(qn_sched_done(s, 60001, j, QN_MAP, 0, 1), QN_SCHED_STALE);
}

Test(sched, progress_postpones_timeout)
{
    qn_sched *s = new_sched();
    int w = qn_sched_worker_join(s, 0, 1);
    int j = qn_sched_job_add(s, 0, 1, 1, 4);
    pop_assign(s, j, QN_MAP, 0, 1);
    qn_sched_worker_seen(s, 30000, w);
    qn_sched_progress(s, 30000, j, QN_MAP, 0, 1);
    cr_assert_eq(qn_sched_deadline(s), 40000);
    qn_sched_worker_seen(s, 60000, w);
    cr_assert_eq(qn_sched_deadline(s), 70000);
    qn_sched_tick(s, 60000);
    expect_none(s);
    qn_sched_worker_seen(s, 89999, w);
    qn_sched_tick(s, 89999);
    expect_none(s);
    cr_assert_eq(qn_sched_task(s, j, QN_MAP, 0).state, QN_TASK_RUNNING);
    cr_assert_eq(qn_sched_deadline(s), 90000);
    qn_sched_tick(s, 90000);
    expect_act(pop(s), QN_ACT_CANCEL, w, j, QN_MAP, 0, 1);
    qn_action lost = pop(s);
    expect_act(lost, QN_ACT_ATTEMPT_LOST, w, j, QN_MAP, 0, 1);
    cr_assert_eq(lost.reason, QN_LOST_TIMEOUT);
    pop_assign(s, j, QN_MAP, 0, 2);
    expect_none(s);
}

Test(sched, last_attempt_timing_out_fails_the_job)
{
    qn_sched *s = new_sched();
    int w = qn_sched_worker_join(s, 0, 1);
    int j = qn_sched_job_add(s, 0, 1, 1, 1);
    pop_assign(s, j, QN_MAP, 0, 1);
    qn_sched_worker_seen(s, 60000, w);
    qn_sched_tick(s, 60000);
    expect_act(pop(s), QN_ACT_CANCEL, w, j, QN_MAP, 0, 1);
    qn_action lost = pop(s);
    expect_act(lost, QN_ACT_ATTEMPT_LOST, w, j, QN_MAP, 0, 1);
    cr_assert_eq(lost.reason, QN_LOST_TIMEOUT);
    expect_act(pop(s), QN_ACT_JOB_FAILED, -1, j, QN_MAP, 0, 1);
    expect_none(s);
    cr_assert_eq(qn_sched_job(s, j).state, QN_JOB_FAILED);
    cr_assert_eq(qn_sched_worker_busy(s, w), 0);
}

/* ---- deadlines ----------------------------------------------------------- */

Test(sched, deadline_is_nearest_heartbeat_or_task_timeout)
{
    qn_sched *s = new_sched();
    cr_assert_eq(qn_sched_deadline(s), INT64_MAX);
    int j = qn_sched_job_add(s, 0, 1, 1, 4);
    cr_assert_eq(qn_sched_deadline(s), INT64_MAX, "pending work alone");

    int w0 = qn_sched_worker_join(s, 1000, 1); /* takes map 0 at 1000 */
    pop_assign(s, j, QN_MAP, 0, 1);
    cr_assert_eq(qn_sched_deadline(s), 11000);
    /* w1 takes the reduce at 2000: it waits for map 0, so it has no
     * task deadline. */
    int w1 = qn_sched_worker_join(s, 2000, 1);
    expect_act(pop(s), QN_ACT_ASSIGN, w1, j, QN_REDUCE, 0, 1);
    expect_none(s);
    cr_assert_eq(qn_sched_deadline(s), 11000);
    qn_sched_worker_seen(s, 3000, w0);
    cr_assert_eq(qn_sched_deadline(s), 12000, "w1 silent since 2000");
    qn_sched_worker_seen(s, 55000, w0);
    qn_sched_worker_seen(s, 56000, w1);
    cr_assert_eq(qn_sched_deadline(s), 61000, "map 0 started at 1000");
    qn_sched_progress(s, 56000, j, QN_MAP, 0, 1);
    cr_assert_eq(qn_sched_deadline(s), 65000, "w0 silent since 55000");

    /* Ticking just before the deadline does nothing; at it, something:
     * map 0 is lost with w0, and the reduce on w1 makes room for it. */
    qn_sched_tick(s, 64999);
    expect_none(s);
    qn_sched_tick(s, 65000);
    expect_act(pop(s), QN_ACT_WORKER_DEAD, w0, -1, QN_MAP, 0, 0);
    expect_act(pop(s), QN_ACT_ATTEMPT_LOST, w0, j, QN_MAP, 0, 1);
    qn_action pre = pop(s);
    expect_act(pre, QN_ACT_CANCEL, w1, j, QN_REDUCE, 0, 1);
    cr_assert_eq(pre.reason, QN_CANCEL_PREEMPTED);
    expect_act(pop(s), QN_ACT_ASSIGN, w1, j, QN_MAP, 0, 2);
    expect_none(s);
    cr_assert_eq(qn_sched_deadline(s), 66000, "w1 silent since 56000");
    qn_sched_tick(s, 66000);
    expect_act(pop(s), QN_ACT_WORKER_DEAD, w1, -1, QN_MAP, 0, 0);
    expect_act(pop(s), QN_ACT_ATTEMPT_LOST, w1, j, QN_MAP, 0, 2);
    expect_none(s);
    cr_assert_eq(qn_sched_deadline(s), INT64_MAX, "nobody left to watch");
}

Test(sched, finished_attempts_leave_no_task_deadline)
{
    qn_sched *s = new_sched();
    int w = qn_sched_worker_join(s, 0, 1);
    int j = qn_sched_job_add(s, 0, 1, 1, 4);
    pop_assign(s, j, QN_MAP, 0, 1);
    qn_sched_done(s, 100, j, QN_MAP, 0, 1);
    pop_assign(s, j, QN_REDUCE, 0, 1);
    qn_sched_done(s, 200, j, QN_REDUCE, 0, 1);
    expect_act(pop(s), QN_ACT_JOB_DONE, -1, j, QN_MAP, 0, 0);
    qn_sched_worker_seen(s, 200, w);
    cr_assert_eq(qn_sched_deadline(s), 10200, "only the heartbeat");
}

/* ---- cancel -------------------------------------------------------------- */

Test(sched, cancel_kills_running_attempts)
{
    qn_sched *s = new_sched();
    int w = qn_sched_worker_join(s, 0, 2);
    int j = qn_sched_job_add(s, 0, 3, 1, 4);
    pop_assign(s, j, QN_MAP, 0, 1);
    pop_assign(s, j, QN_MAP, 1, 1);
    expect_none(s);

    cr_assert_eq(qn_sched_job_cancel(s, 100, j), 0);
    for (unsigned t = 0; t < 2; t++) {
        qn_action c = pop(s);
        expect_act(c, QN_ACT_CANCEL, w, j, QN_MAP, t, 1);
        cr_assert_eq(c.reason, QN_CANCEL_JOB_END);
    }
    expect_none(s); /* map 2 is not started */
    qn_job_info ji = qn_sched_job(s, j);
    cr_assert_eq(ji.state, QN_JOB_CANCELLED);
    cr_assert_eq(ji.maps_running, 0);
    cr_assert_eq(qn_sched_worker_busy(s, w), 0);
    cr_assert_eq(qn_sched_deadline(s), 10000, "no task deadline left");

    cr_assert_eq(qn_sched_done(s, 110, j, QN_MAP, 0, 1), QN_SCHED_STALE);
    cr_assert_eq(qn_sched_failed(s, 110, j, QN_MAP, 1, 1), QN_SCHED_STALE);
    cr_assert_eq(qn_sched_job_cancel(s, 120, j), -1, "already cancelled");
    cr_assert_eq(qn_sched_job_cancel(s, 120, j + 1), -1, "no such job");
    qn_sched_worker_join(s, 130, 1);
    expect_none(s);
    cr_assert_eq(qn_sched_job(s, j).state, QN_JOB_CANCELLED);
}

Test(sched, cancel_frees_slots_for_other_jobs)
{
    qn_sched *s = new_sched();
    int w = qn_sched_worker_join(s, 0, 1);
    int a = qn_sched_job_add(s, 0, 1, 1, 4);
    int b = qn_sched_job_add(s, 0, 1, 1, 4);
    cr_assert_neq(a, b);
    expect_act(pop(s), QN_ACT_ASSIGN, w, a, QN_MAP, 0, 1);
    expect_none(s);
    cr_assert_eq(qn_sched_job_cancel(s, 10, a), 0);
    expect_act(pop(s), QN_ACT_CANCEL, w, a, QN_MAP, 0, 1);
    expect_act(pop(s), QN_ACT_ASSIGN, w, b, QN_MAP, 0, 1);
    expect_none(s);
}

/* ---- several jobs -------------------------------------------------------- */

Test(sched, older_job_is_scheduled_first)
{
    qn_sched *s = new_sched();
    int w = qn_sched_worker_join(s, 0, 1);
    int a = qn_sched_job_add(s, 0, 2, 1, 4);
    int b = qn_sched_job_add(s, 1, 2, 1, 4);
    expect_act(pop(s), QN_ACT_ASSIGN, w, a, QN_MAP, 0, 1);
    expect_none(s);
    qn_sched_done(s, 10, a, QN_MAP, 0, 1);
    expect_act(pop(s), QN_ACT_ASSIGN, w, a, QN_MAP, 1, 1);
    expect_none(s);
    /* A retry of the older job still goes before the newer job. */
    qn_sched_failed(s, 20, a, QN_MAP, 1, 1);
    expect_act(pop(s), QN_ACT_ASSIGN, w, a, QN_MAP, 1, 2);
    qn_sched_done(s, 30, a, QN_MAP, 1, 2);
    expect_act(pop(s), QN_ACT_ASSIGN, w, a, QN_REDUCE, 0, 1);
    qn_sched_done(s, 40, a, QN_REDUCE, 0, 1);
    expect_act(pop(s), QN_ACT_JOB_DONE, -1, a, QN_MAP, 0, 0);
    expect_act(pop(s), QN_ACT_ASSIGN, w, b, QN_MAP, 0, 1);
    expect_none(s);
}

Test(sched, newer_job_uses_slots_older_job_cannot)
{
    qn_sched *s = new_sched();
    int w = qn_sched_worker_join(s, 0, 3);
    int a = qn_sched_job_add(s, 0, 1, 1, 4);
    expect_act(pop(s), QN_ACT_ASSIGN, w, a, QN_MAP, 0, 1);
    expect_act(pop(s), QN_ACT_ASSIGN, w, a, QN_REDUCE, 0, 1);
    expect_none(s); /* a has nothing left to start: a slot stays free */
    int b = qn_sched_job_add(s, 1, 1, 1, 4);
    expect_act(pop(s), QN_ACT_ASSIGN, w, b, QN_MAP, 0, 1);
    expect_none(s); /* b's reduce waits for a slot */
    cr_assert_eq(qn_sched_task(s, b, QN_REDUCE, 0).state, QN_TASK_PENDING);
    check_counts(s, a);
    check_counts(s, b);
}

Test(sched, job_and_task_info_for_unknown_handles)
{
    qn_sched *s = new_sched();
    int j = qn_sched_job_add(s, 0, 2, 1, 4);
    qn_job_info ji = qn_sched_job(s, j);
    cr_assert_eq(ji.maps, 2);
    cr_assert_eq(ji.reduces, 1);
    cr_assert_eq(ji.maps_done + ji.maps_running, 0);
    qn_task_info ti = qn_sched_task(s, j, QN_MAP, 1);
    cr_assert_eq(ti.state, QN_TASK_PENDING);
    cr_assert_eq(ti.attempts, 0);
    cr_assert_eq(ti.worker, -1);
    ji = qn_sched_job(s, j + 1);
    cr_assert_eq(ji.maps + ji.reduces, 0);
    ti = qn_sched_task(s, j, QN_MAP, 2);
    cr_assert_eq(ti.worker, -1);
    cr_assert_eq(ti.attempts, 0);
    cr_assert_eq(qn_sched_worker_busy(s, 7), 0);
    cr_assert_not(qn_sched_worker_alive(s, 7));
    qn_sched_destroy(&cur);
    cr_assert_null(cur, "destroy clears the pointer");
    qn_sched_destroy(&cur); /* NULL is fine */
}

/* ---- barred workers ------------------------------------------------------ */

Test(sched, worker_failing_three_attempts_is_barred_while_another_is_not)
{
    qn_sched *s = new_sched();
    int w0 = qn_sched_worker_join(s, 0, 1);
    int j = qn_sched_job_add(s, 0, 1, 2, 10);

    /* w0 fails map 0 three times. Alone, it still gets the fourth
     * attempt: barring it would bar every live worker. */
    for (unsigned n = 1; n <= QN_SCHED_BAN_AFTER; n++) {
        expect_act(pop(s), QN_ACT_ASSIGN, w0, j, QN_MAP, 0, n);
        expect_none(s);
        cr_assert_eq(qn_sched_failed(s, 10 * n, j, QN_MAP, 0, n),
                     QN_SCHED_ACCEPTED);
    }
    expect_act(pop(s), QN_ACT_ASSIGN, w0, j, QN_MAP, 0, 4);
    expect_none(s);
    qn_task_info ti = qn_sched_task(s, j, QN_MAP, 0);
    cr_assert_eq(ti.failures, 3);
    cr_assert_eq(ti.attempts, 4);

    /* w1 joins while attempt 4 runs on w0: no map is pending, so w1
     * takes a reduce at once. */
    int w1 = qn_sched_worker_join(s, 100, 1);
    expect_act(pop(s), QN_ACT_ASSIGN, w1, j, QN_REDUCE, 0, 1);
    expect_none(s);
    /* Attempt 4 succeeds. Reduce 1 is pending and w0 is idle, but it is
     * barred now that w1 is not: reduce 1 waits. */
    cr_assert_eq(qn_sched_done(s, 200, j, QN_MAP, 0, 4), QN_SCHED_ACCEPTED);
    expect_none(s);
    cr_assert_eq(qn_sched_worker_busy(s, w0), 0);
    cr_assert_eq(qn_sched_task(s, j, QN_REDUCE, 1).state, QN_TASK_PENDING);
    qn_sched_tick(s, 300);
    expect_none(s);
    cr_assert_eq(qn_sched_worker_busy(s, w0), 0, "barred w0 got a task");

    /* The bar is for that job only: another job's tasks go to w0. */
    int k = qn_sched_job_add(s, 400, 1, 1, 4);
    expect_act(pop(s), QN_ACT_ASSIGN, w0, k, QN_MAP, 0, 1);
    expect_none(s);
    cr_assert_eq(qn_sched_done(s, 500, k, QN_MAP, 0, 1), QN_SCHED_ACCEPTED);
    expect_act(pop(s), QN_ACT_ASSIGN, w0, k, QN_REDUCE, 0, 1);
    expect_none(s);

    /* w1 leaves: its reduce is lost, and w0, the only live worker, is
     * barred like every live worker: it gets j's tasks again. */
    qn_sched_worker_leave(s, 600, w1);
    expect_act(pop(s), QN_ACT_WORKER_DEAD, w1, -1, QN_MAP, 0, 0);
    expect_act(pop(s), QN_ACT_ATTEMPT_LOST, w1, j, QN_REDUCE, 0, 1);
    expect_none(s); /* w0 is busy with k */
    cr_assert_eq(qn_sched_done(s, 700, k, QN_REDUCE, 0, 1), QN_SCHED_ACCEPTED);
    expect_act(pop(s), QN_ACT_JOB_DONE, -1, k, QN_MAP, 0, 0);
    /* The lost reduce goes ahead of the one that never ran. */
    expect_act(pop(s), QN_ACT_ASSIGN, w0, j, QN_REDUCE, 0, 2);
    expect_none(s);
    cr_assert_eq(qn_sched_done(s, 800, j, QN_REDUCE, 0, 2), QN_SCHED_ACCEPTED);
    expect_act(pop(s), QN_ACT_ASSIGN, w0, j, QN_REDUCE, 1, 1);
    expect_none(s);
    check_counts(s, j);
}

Test(sched, failures_of_another_job_do_not_bar_a_worker)
{
    qn_sched *s = new_sched();
    /* w1 stays alive and clean, its two slots busy with job c throughout:
     * c's map and, as no map of c is pending, one of c's reduces. */
    int w1 = qn_sched_worker_join(s, 0, 2);
    int c = qn_sched_job_add(s, 0, 1, 2, 10);
    expect_act(pop(s), QN_ACT_ASSIGN, w1, c, QN_MAP, 0, 1);
    expect_act(pop(s), QN_ACT_ASSIGN, w1, c, QN_REDUCE, 0, 1);
    expect_none(s);
    int a = qn_sched_job_add(s, 0, 3, 1, 10);
    int b = qn_sched_job_add(s, 0, 3, 1, 10);
    expect_none(s); /* no free slot */
    /* w0 joins: a and b run fewer tasks than c, and a is the older. */
    int w0 = qn_sched_worker_join(s, 0, 1);
    expect_act(pop(s), QN_ACT_ASSIGN, w0, a, QN_MAP, 0, 1);
    expect_none(s);

    /* Two failures in job a, each of a different map (a failed map keeps
     * off w0 while w1 lives), then a's last map succeeds on w0. */
    cr_assert_eq(qn_sched_failed(s, 10, a, QN_MAP, 0, 1), QN_SCHED_ACCEPTED);
    expect_act(pop(s), QN_ACT_ASSIGN, w0, a, QN_MAP, 1, 1);
    expect_none(s);
    cr_assert_eq(qn_sched_failed(s, 20, a, QN_MAP, 1, 1), QN_SCHED_ACCEPTED);
    expect_act(pop(s), QN_ACT_ASSIGN, w0, a, QN_MAP, 2, 1);
    expect_none(s);
    cr_assert_eq(qn_sched_done(s, 30, a, QN_MAP, 2, 1), QN_SCHED_ACCEPTED);
    /* a's pending maps keep off w0: b's first map takes the slot. */
    expect_act(pop(s), QN_ACT_ASSIGN, w0, b, QN_MAP, 0, 1);
    expect_none(s);

    /* Two failures in job b: four on w0 in all, but two per job, so w0
     * still gets b's third map although w1 is not barred. */
    cr_assert_eq(qn_sched_failed(s, 40, b, QN_MAP, 0, 1), QN_SCHED_ACCEPTED);
    expect_act(pop(s), QN_ACT_ASSIGN, w0, b, QN_MAP, 1, 1);
    expect_none(s);
    cr_assert_eq(qn_sched_failed(s, 50, b, QN_MAP, 1, 1), QN_SCHED_ACCEPTED);
    expect_act(pop(s), QN_ACT_ASSIGN, w0, b, QN_MAP, 2, 1);
    expect_none(s);
    /* The third failure in b bars w0 from b (w1, though busy, is not),
     * but not from job c: c's pending reduce takes the slot. */
    cr_assert_eq(qn_sched_failed(s, 60, b, QN_MAP, 2, 1), QN_SCHED_ACCEPTED);
    expect_act(pop(s), QN_ACT_ASSIGN, w0, c, QN_REDUCE, 1, 1);
    expect_none(s);
    for (unsigned t = 0; t < 3; t++) {
        qn_task_info ti = qn_sched_task(s, b, QN_MAP, t);
        cr_assert_eq(ti.state, QN_TASK_PENDING);
        cr_assert_eq(ti.failures, 1);
    }
    /* c's map is done: a failed map goes to the slot it frees on w1. */
    cr_assert_eq(qn_sched_done(s, 90, c, QN_MAP, 0, 1), QN_SCHED_ACCEPTED);
    expect_act(pop(s), QN_ACT_ASSIGN, w1, a, QN_MAP, 0, 2);
    expect_none(s);
    cr_assert_eq(qn_sched_worker_busy(s, w0), 1);
    cr_assert_eq(qn_sched_worker_busy(s, w1), 2);
    check_counts(s, a);
    check_counts(s, b);
    check_counts(s, c);
}

/*
 * A task whose attempt failed on a worker runs again on another one, even
 * when that means waiting for a slot there; with no other live worker it
 * runs again where it failed.
 */
Test(sched, a_failed_task_runs_again_elsewhere)
{
    qn_sched *s = new_sched();
    int w0 = qn_sched_worker_join(s, 0, 1);
    int w1 = qn_sched_worker_join(s, 0, 1);
    int j = qn_sched_job_add(s, 0, 2, 1, 4);
    qn_action x = pop(s), y = pop(s);
    cr_assert_eq(x.act, QN_ACT_ASSIGN);
    cr_assert_eq(y.act, QN_ACT_ASSIGN);
    cr_assert_neq(x.worker, y.worker);
    qn_action on0 = x.worker == w0 ? x : y, on1 = x.worker == w0 ? y : x;
    expect_none(s);
    /* The map on w0 fails: w0 is free, but the map waits for w1. */
    cr_assert_eq(qn_sched_failed(s, 10, j, QN_MAP, on0.task, 1),
                 QN_SCHED_ACCEPTED);
    expect_none(s);
    cr_assert_eq(qn_sched_worker_busy(s, w0), 0);
    cr_assert_eq(qn_sched_done(s, 20, j, QN_MAP, on1.task, 1),
                 QN_SCHED_ACCEPTED);
    expect_act(pop(s), QN_ACT_ASSIGN, w1, j, QN_MAP, on0.task, 2);
    /* No map waits for a slot now: the reduce takes w0's. */
    expect_act(pop(s), QN_ACT_ASSIGN, w0, j, QN_REDUCE, 0, 1);
    expect_none(s);
    /* It fails on w1 too. w1's free slot is no use to it, so the reduce
     * waiting on w0 gives way, the map runs there, and the reduce starts
     * again on w1. */
    cr_assert_eq(qn_sched_failed(s, 30, j, QN_MAP, on0.task, 2),
                 QN_SCHED_ACCEPTED);
    qn_action k = pop(s);
    cr_assert_eq(k.act, QN_ACT_CANCEL);
    cr_assert_eq(k.worker, w0);
    cr_assert_eq(k.kind, QN_REDUCE);
    expect_act(pop(s), QN_ACT_ASSIGN, w0, j, QN_MAP, on0.task, 3);
    expect_act(pop(s), QN_ACT_ASSIGN, w1, j, QN_REDUCE, 0, 2);
    expect_none(s);
    /* It fails on w0 again while w1 is busy: it waits for w1 (the reduce
     * there waits for it, so gives way) ... */
    cr_assert_eq(qn_sched_failed(s, 40, j, QN_MAP, on0.task, 3),
                 QN_SCHED_ACCEPTED);
    k = pop(s);
    cr_assert_eq(k.act, QN_ACT_CANCEL);
    cr_assert_eq(k.worker, w1);
    expect_act(pop(s), QN_ACT_ASSIGN, w1, j, QN_MAP, on0.task, 4);
    expect_act(pop(s), QN_ACT_ASSIGN, w0, j, QN_REDUCE, 0, 3);
    expect_none(s);
    check_counts(s, j);
}

/* With no other live worker, a failed task runs again where it failed. */
Test(sched, a_failed_task_runs_again_on_the_only_worker)
{
    qn_sched *s = new_sched();
    int w0 = qn_sched_worker_join(s, 0, 1);
    int w1 = qn_sched_worker_join(s, 0, 1);
    int j = qn_sched_job_add(s, 0, 1, 1, 4);
    expect_act(pop(s), QN_ACT_ASSIGN, w0, j, QN_MAP, 0, 1);
    expect_act(pop(s), QN_ACT_ASSIGN, w1, j, QN_REDUCE, 0, 1);
    expect_none(s);
    qn_sched_worker_leave(s, 5, w1);
    expect_act(pop(s), QN_ACT_WORKER_DEAD, w1, -1, QN_MAP, 0, 0);
    qn_action a;
    while (qn_sched_next_action(s, &a)) /* the reduce waits for a slot */
        cr_assert_neq(a.act, QN_ACT_ASSIGN);
    cr_assert_eq(qn_sched_failed(s, 10, j, QN_MAP, 0, 1), QN_SCHED_ACCEPTED);
    expect_act(pop(s), QN_ACT_ASSIGN, w0, j, QN_MAP, 0, 2);
    expect_none(s);
    check_counts(s, j);
}

/* ---- backups ------------------------------------------------------------- */

/*
 * Three one-slot workers and a speculating job of two maps and a reduce:
 * both maps start at 0 on workers 0 and 1, and the reduce (no map is
 * pending) on worker 2, where it waits for them. Map 1 finishes at 1000
 * (the mean map time), and map 0 straggles with no progress figure.
 * Following the deadlines the scheduler gives, map 0 gets its backup at
 * 3000 (spec_min_ms), not before, in the slot map 1 freed. Returns the
 * job; *orig and *backup are the map's two ASSIGNs, *red the reduce's.
 */
static int s_straggler_with_backup(qn_sched *s, qn_action *orig,
                                   qn_action *backup, qn_action *red)
{
    for (int i = 0; i < 3; i++)
        qn_sched_worker_join(s, 0, 1);
    int j = qn_sched_job_add(s, 0, 2, 1, 4);
    qn_sched_job_speculate(s, j, 1);
    *orig = pop_assign(s, j, QN_MAP, 0, 1);
    qn_action m1 = pop_assign(s, j, QN_MAP, 1, 1);
    *red = pop(s);
    expect_act(*orig, QN_ACT_ASSIGN, 0, j, QN_MAP, 0, 1);
    expect_act(m1, QN_ACT_ASSIGN, 1, j, QN_MAP, 1, 1);
    expect_act(*red, QN_ACT_ASSIGN, 2, j, QN_REDUCE, 0, 1);
    cr_assert_eq(orig->backup, 0);
    cr_assert_eq(m1.backup, 0);
    cr_assert_eq(red->backup, 0);
    expect_none(s);
    cr_assert_eq(qn_sched_deadline(s), 10000,
                 "no speculation re-check before any map is done");

    cr_assert_eq(qn_sched_done(s, 1000, j, QN_MAP, 1, 1), QN_SCHED_ACCEPTED);
    expect_none(s); /* map 0 is younger than spec_min_ms */
    /* The phase is ending: the scheduler asks to look again soon. */
    cr_assert_eq(qn_sched_deadline(s), 1000 + QN_SCHED_SPEC_CHECK_MS);
    int64_t now;
    while ((now = qn_sched_deadline(s)) < SPEC_CFG.spec_min_ms) {
        beat(s, now, 3);
        qn_sched_tick(s, now);
        expect_none(s);
        cr_assert_eq(qn_sched_deadline(s), now + QN_SCHED_SPEC_CHECK_MS);
    }
    cr_assert_eq(now, SPEC_CFG.spec_min_ms);
    beat(s, now, 3);
    qn_sched_tick(s, now);
    *backup = pop_assign(s, j, QN_MAP, 0, 2);
    expect_none(s);
    cr_assert_eq(backup->backup, 1, "the second attempt is not a backup");
    cr_assert_eq(backup->worker, m1.worker);
    cr_assert(qn_sched_worker_alive(s, backup->worker));
    cr_assert_eq(qn_sched_worker_busy(s, backup->worker), 1);
    return j;
}

Test(sched, straggler_gets_a_backup_and_the_first_success_wins)
{
    qn_sched *s = new_sched_cfg(&SPEC_CFG);
    qn_action orig, bk, red;
    int j = s_straggler_with_backup(s, &orig, &bk, &red);

    qn_task_info ti = qn_sched_task(s, j, QN_MAP, 0);
    cr_assert_eq(ti.state, QN_TASK_RUNNING);
    cr_assert_eq(ti.running, 2);
    cr_assert_eq(ti.attempts, 2);
    cr_assert_eq(ti.attempt, 1, "the oldest running attempt is reported");
    cr_assert_eq(ti.worker, orig.worker);
    cr_assert_eq(ti.started, 0);
    unsigned atts[QN_SCHED_MAX_RUNNING];
    int ws[QN_SCHED_MAX_RUNNING];
    cr_assert_eq(qn_sched_running(s, j, QN_MAP, 0, atts, ws), 2);
    cr_assert_eq(atts[0], 1);
    cr_assert_eq(ws[0], orig.worker);
    cr_assert_eq(atts[1], 2);
    cr_assert_eq(ws[1], bk.worker);
    cr_assert_eq(qn_sched_attempt_worker(s, j, QN_MAP, 0, 1), orig.worker);
    cr_assert_eq(qn_sched_attempt_worker(s, j, QN_MAP, 0, 2), bk.worker);
    cr_assert_eq(qn_sched_attempt_worker(s, j, QN_MAP, 0, 3), -1);
    cr_assert_eq(qn_sched_job(s, j).maps_running, 1, "one task, two attempts");
    check_counts(s, j);

    /* A task gets one backup, however long it goes on. */
    for (int64_t now = 3500; now <= 8000; now += 500) {
        beat(s, now, 3);
        qn_sched_tick(s, now);
        expect_none(s);
    }

    /* The backup succeeds first: the original is cancelled (the reduce
     * already runs: nothing takes the slot). */
    cr_assert_eq(qn_sched_done(s, 9000, j, QN_MAP, 0, 2), QN_SCHED_ACCEPTED);
    qn_action c = pop(s);
    expect_act(c, QN_ACT_CANCEL, orig.worker, j, QN_MAP, 0, 1);
    cr_assert_eq(c.reason, QN_CANCEL_LOST_RACE);
    expect_none(s);
    cr_assert_eq(qn_sched_attempt_worker(s, j, QN_REDUCE, 0, 1), red.worker);
    ti = qn_sched_task(s, j, QN_MAP, 0);
    cr_assert_eq(ti.state, QN_TASK_DONE);
    cr_assert_eq(ti.attempt, 2, "the backup's output counts");
    cr_assert_eq(ti.worker, bk.worker);
    cr_assert_eq(ti.running, 0);
    cr_assert_eq(ti.failures, 0);
    cr_assert_eq(ti.losses, 0);
    cr_assert_eq(qn_sched_worker_busy(s, orig.worker), 0);

    /* The loser's late reports are stale and change nothing. */
    cr_assert_eq(qn_sched_done(s, 9100, j, QN_MAP, 0, 1), QN_SCHED_STALE);
    cr_assert_eq(qn_sched_failed(s, 9100, j, QN_MAP, 0, 1), QN_SCHED_STALE);
    expect_none(s);
    ti = qn_sched_task(s, j, QN_MAP, 0);
    cr_assert_eq(ti.attempt, 2);
    cr_assert_eq(ti.failures, 0);
    cr_assert_eq(qn_sched_job(s, j).maps_done, 2);
    check_counts(s, j);
}

Test(sched, original_finishing_first_cancels_its_backup)
{
    qn_sched *s = new_sched_cfg(&SPEC_CFG);
    qn_action orig, bk, red;
    int j = s_straggler_with_backup(s, &orig, &bk, &red);
    cr_assert_eq(qn_sched_done(s, 4000, j, QN_MAP, 0, 1), QN_SCHED_ACCEPTED);
    qn_action c = pop(s);
    expect_act(c, QN_ACT_CANCEL, bk.worker, j, QN_MAP, 0, 2);
    cr_assert_eq(c.reason, QN_CANCEL_LOST_RACE);
    expect_none(s);
    qn_task_info ti = qn_sched_task(s, j, QN_MAP, 0);
    cr_assert_eq(ti.state, QN_TASK_DONE);
    cr_assert_eq(ti.attempt, 1);
    cr_assert_eq(ti.worker, orig.worker);
    cr_assert_eq(qn_sched_worker_busy(s, bk.worker), 0);
    cr_assert_eq(qn_sched_done(s, 4100, j, QN_MAP, 0, 2), QN_SCHED_STALE);
    cr_assert_eq(qn_sched_attempt_worker(s, j, QN_MAP, 0, 2), -1);
    expect_none(s);
    /* The map phase is over and no reduce is done: no re-check. The
     * reduce's clock started at 4000: only the heartbeats (last at 3000)
     * are due before it times out. */
    cr_assert_eq(qn_sched_deadline(s), 13000);
    check_counts(s, j);
}

Test(sched, failure_of_one_of_two_attempts_leaves_the_task_running)
{
    qn_sched *s = new_sched_cfg(&SPEC_CFG);
    qn_action orig, bk, red;
    int j = s_straggler_with_backup(s, &orig, &bk, &red);
    /* The backup fails; the original, still slow, goes on. */
    cr_assert_eq(qn_sched_failed(s, 4000, j, QN_MAP, 0, 2), QN_SCHED_ACCEPTED);
    expect_none(s); /* no new attempt: the original still runs */
    qn_task_info ti = qn_sched_task(s, j, QN_MAP, 0);
    cr_assert_eq(ti.state, QN_TASK_RUNNING);
    cr_assert_eq(ti.running, 1);
    cr_assert_eq(ti.failures, 1);
    cr_assert_eq(ti.attempts, 2);
    cr_assert_eq(ti.attempt, 1);
    cr_assert_eq(ti.worker, orig.worker);
    cr_assert_eq(qn_sched_attempt_worker(s, j, QN_MAP, 0, 1), orig.worker);
    cr_assert_eq(qn_sched_attempt_worker(s, j, QN_MAP, 0, 2), -1);
    cr_assert_eq(qn_sched_worker_busy(s, bk.worker), 0);
    check_counts(s, j);
    /* It had its backup: no other one, though slots and the backup cap
     * are free again. */
    for (int64_t now = 4500; now <= 9000; now += 500) {
        beat(s, now, 3);
        qn_sched_tick(s, now);
        expect_none(s);
    }
    cr_assert_eq(qn_sched_done(s, 9500, j, QN_MAP, 0, 1), QN_SCHED_ACCEPTED);
    expect_none(s); /* the reduce already runs */
    cr_assert_eq(qn_sched_task(s, j, QN_MAP, 0).attempt, 1);
}

Test(sched, losing_one_of_two_attempts_leaves_the_task_running)
{
    qn_sched *s = new_sched_cfg(&SPEC_CFG);
    qn_action orig, bk, red;
    int j = s_straggler_with_backup(s, &orig, &bk, &red);
    /* The original's worker (it completed nothing) goes away. */
    qn_sched_worker_leave(s, 4000, orig.worker);
    expect_act(pop(s), QN_ACT_WORKER_DEAD, orig.worker, -1, QN_MAP, 0, 0);
    qn_action lost = pop(s);
    expect_act(lost, QN_ACT_ATTEMPT_LOST, orig.worker, j, QN_MAP, 0, 1);
    cr_assert_eq(lost.reason, QN_LOST_WORKER_DEAD);
    expect_none(s);
    qn_task_info ti = qn_sched_task(s, j, QN_MAP, 0);
    cr_assert_eq(ti.state, QN_TASK_RUNNING);
    cr_assert_eq(ti.running, 1);
    cr_assert_eq(ti.losses, 1);
    cr_assert_eq(ti.failures, 0);
    cr_assert_eq(ti.attempt, 2);
    check_counts(s, j);
}

Test(sched, no_backup_without_speculation)
{
    qn_sched *s = new_sched_cfg(&SPEC_CFG);
    for (int i = 0; i < 3; i++)
        qn_sched_worker_join(s, 0, 1);
    int j = qn_sched_job_add(s, 0, 2, 1, 4);
    expect_act(pop(s), QN_ACT_ASSIGN, 0, j, QN_MAP, 0, 1);
    expect_act(pop(s), QN_ACT_ASSIGN, 1, j, QN_MAP, 1, 1);
    expect_act(pop(s), QN_ACT_ASSIGN, 2, j, QN_REDUCE, 0, 1);
    expect_none(s);
    /* Map 1's worker is free from 1000 on, and map 0 straggles. */
    cr_assert_eq(qn_sched_done(s, 1000, j, QN_MAP, 1, 1), QN_SCHED_ACCEPTED);
    expect_none(s);
    cr_assert_eq(qn_sched_deadline(s), 10000,
                 "a re-check though the job "
                 "does not speculate");
    for (int64_t now = 1500; now <= 50000; now += 500) {
        beat(s, now, 3);
        qn_sched_tick(s, now);
        expect_none(s);
    }
    qn_task_info ti = qn_sched_task(s, j, QN_MAP, 0);
    cr_assert_eq(ti.running, 1);
    cr_assert_eq(ti.attempts, 1);
}

Test(sched, backup_waits_until_the_attempt_ran_longer_than_the_mean)
{
    qn_sched *s = new_sched_cfg(&SPEC_CFG);
    int w0 = qn_sched_worker_join(s, 0, 1);
    int w1 = qn_sched_worker_join(s, 0, 1);
    int j = qn_sched_job_add(s, 0, 3, 1, 4);
    qn_sched_job_speculate(s, j, 1);
    expect_act(pop(s), QN_ACT_ASSIGN, w0, j, QN_MAP, 0, 1);
    expect_act(pop(s), QN_ACT_ASSIGN, w1, j, QN_MAP, 1, 1);
    expect_none(s);
    cr_assert_eq(qn_sched_done(s, 4000, j, QN_MAP, 0, 1), QN_SCHED_ACCEPTED);
    expect_act(pop(s), QN_ACT_ASSIGN, w0, j, QN_MAP, 2, 1); /* at 4000 */
    expect_none(s);
    /* No map is pending: the reduce takes a third worker, so that the
     * slot map 1 frees stays free for the backup. Map 1, past the mean
     * (4000) by then, is 80% done: no straggler to back up there. */
    qn_sched_fraction(s, j, QN_MAP, 1, 1, 0.8);
    int w2 = qn_sched_worker_join(s, 4500, 1);
    expect_act(pop(s), QN_ACT_ASSIGN, w2, j, QN_REDUCE, 0, 1);
    expect_none(s);
    /* Mean map time (4000 + 5000) / 2 = 4500: map 2, started at 4000, is
     * past spec_min_ms from 7000 but past the mean only from 8500. */
    cr_assert_eq(qn_sched_done(s, 5000, j, QN_MAP, 1, 1), QN_SCHED_ACCEPTED);
    expect_none(s);
    int64_t now = 5000;
    qn_action a;
    for (;;) {
        int64_t d = qn_sched_deadline(s);
        cr_assert_eq(d, now + QN_SCHED_SPEC_CHECK_MS);
        now = d;
        cr_assert_leq(now, 8500, "no backup by %lld", (long long)now);
        beat(s, now, 3);
        qn_sched_tick(s, now);
        if (qn_sched_next_action(s, &a))
            break;
    }
    cr_assert_eq(now, 8500, "backup at %lld, expected 8500", (long long)now);
    expect_act(a, QN_ACT_ASSIGN, w1, j, QN_MAP, 2, 2);
    cr_assert_eq(a.backup, 1);
    expect_none(s);
}

Test(sched, no_backup_while_progress_predicts_an_early_finish)
{
    qn_sched *s = new_sched_cfg(&SPEC_CFG);
    for (int i = 0; i < 3; i++)
        qn_sched_worker_join(s, 0, 1);
    int j = qn_sched_job_add(s, 0, 2, 1, 4);
    qn_sched_job_speculate(s, j, 1);
    qn_action orig = pop_assign(s, j, QN_MAP, 0, 1);
    qn_action m1 = pop_assign(s, j, QN_MAP, 1, 1);
    pop_assign(s, j, QN_REDUCE, 0, 1); /* on the third worker */
    expect_none(s);
    qn_sched_fraction(s, j, QN_MAP, 0, 1, 0.9);
    qn_sched_fraction(s, j, QN_MAP, 0, 2, 0.0); /* no such attempt */
    /* Mean 4000. From 4000 map 0 is past the mean and spec_min_ms, but at
     * 90% done it is expected to take ran / 0.9, under twice the mean
     * (8000) until it has run 7200 ms: the check at 7500 starts it. */
    cr_assert_eq(qn_sched_done(s, 4000, j, QN_MAP, 1, 1), QN_SCHED_ACCEPTED);
    expect_none(s);
    int64_t now = 4000;
    qn_action a;
    for (;;) {
        now = qn_sched_deadline(s);
        cr_assert_leq(now, 7500, "no backup by %lld", (long long)now);
        beat(s, now, 3);
        qn_sched_tick(s, now);
        if (qn_sched_next_action(s, &a))
            break;
    }
    cr_assert_eq(now, 7500, "backup at %lld, expected 7500", (long long)now);
    cr_assert_eq(a.act, QN_ACT_ASSIGN);
    cr_assert_eq(a.task, 0);
    cr_assert_eq(a.attempt, 2);
    cr_assert_eq(a.backup, 1);
    cr_assert_neq(a.worker, orig.worker);
    cr_assert_eq(a.worker, m1.worker, "not in the slot map 1 freed");
    expect_none(s);
}

Test(sched, backup_needs_a_free_slot_on_another_worker)
{
    qn_sched *s = new_sched_cfg(&SPEC_CFG);
    int w0 = qn_sched_worker_join(s, 0, 3);
    int j = qn_sched_job_add(s, 0, 2, 1, 4);
    qn_sched_job_speculate(s, j, 1);
    expect_act(pop(s), QN_ACT_ASSIGN, w0, j, QN_MAP, 0, 1);
    expect_act(pop(s), QN_ACT_ASSIGN, w0, j, QN_MAP, 1, 1);
    expect_act(pop(s), QN_ACT_ASSIGN, w0, j, QN_REDUCE, 0, 1);
    cr_assert_eq(qn_sched_done(s, 100, j, QN_MAP, 1, 1), QN_SCHED_ACCEPTED);
    expect_none(s);
    /* w0 has a free slot, but it is the straggler's own worker. */
    for (int64_t now = 500; now <= 5000; now += 500) {
        beat(s, now, 1);
        qn_sched_tick(s, now);
        expect_none(s);
        cr_assert_eq(qn_sched_deadline(s), now + QN_SCHED_SPEC_CHECK_MS,
                     "stopped looking for a place for the backup");
    }
    cr_assert_eq(qn_sched_worker_busy(s, w0), 2);
    int w1 = qn_sched_worker_join(s, 5000, 1);
    qn_action a = pop(s);
    expect_act(a, QN_ACT_ASSIGN, w1, j, QN_MAP, 0, 2);
    cr_assert_eq(a.backup, 1);
    expect_none(s);
}

/*
 * A map straggler that finds no free slot on another worker takes one
 * from a reduce of its job waiting for maps on another worker: the
 * reduce is cancelled (neither a failure nor a loss) and goes back to
 * pending, the backup starts in its slot, and the reduce runs again
 * when a slot frees.
 */
Test(sched, map_straggler_preempts_a_waiting_reduce_for_its_backup)
{
    qn_sched *s = new_sched_cfg(&SPEC_CFG);
    int w0 = qn_sched_worker_join(s, 0, 1);
    int w1 = qn_sched_worker_join(s, 0, 1);
    int j = qn_sched_job_add(s, 0, 2, 1, 4);
    qn_sched_job_speculate(s, j, 1);
    expect_act(pop(s), QN_ACT_ASSIGN, w0, j, QN_MAP, 0, 1);
    expect_act(pop(s), QN_ACT_ASSIGN, w1, j, QN_MAP, 1, 1);
    expect_none(s);
    /* Map 1 is done at 1000 (the mean): the reduce takes its slot and
     * waits for map 0, which straggles. */
    cr_assert_eq(qn_sched_done(s, 1000, j, QN_MAP, 1, 1), QN_SCHED_ACCEPTED);
    expect_act(pop(s), QN_ACT_ASSIGN, w1, j, QN_REDUCE, 0, 1);
    expect_none(s);
    int64_t now;
    while ((now = qn_sched_deadline(s)) < SPEC_CFG.spec_min_ms) {
        beat(s, now, 2);
        qn_sched_tick(s, now);
        expect_none(s);
        cr_assert_eq(qn_sched_deadline(s), now + QN_SCHED_SPEC_CHECK_MS);
    }
    /* At spec_min_ms map 0 deserves a backup; w1, its only place, is
     * held by the waiting reduce, which gives way. */
    cr_assert_eq(now, SPEC_CFG.spec_min_ms);
    beat(s, now, 2);
    qn_sched_tick(s, now);
    qn_action c = pop(s);
    expect_act(c, QN_ACT_CANCEL, w1, j, QN_REDUCE, 0, 1);
    cr_assert_eq(c.reason, QN_CANCEL_PREEMPTED);
    qn_action b = pop(s);
    expect_act(b, QN_ACT_ASSIGN, w1, j, QN_MAP, 0, 2);
    cr_assert_eq(b.backup, 1);
    expect_none(s);
    qn_task_info rt = qn_sched_task(s, j, QN_REDUCE, 0);
    cr_assert_eq(rt.state, QN_TASK_PENDING);
    cr_assert_eq(rt.attempts, 1);
    cr_assert_eq(rt.failures, 0);
    cr_assert_eq(rt.losses, 0);
    cr_assert_eq(qn_sched_task(s, j, QN_MAP, 0).running, 2);
    cr_assert_eq(qn_sched_worker_busy(s, w1), 1);
    check_counts(s, j);
    /* Its late report changes nothing. */
    cr_assert_eq(qn_sched_done(s, 3100, j, QN_REDUCE, 0, 1), QN_SCHED_STALE);
    expect_none(s);

    /* No slot is free until map 0 is done: the reduce waits pending, and
     * no second backup is started for anyone. */
    for (now = 3500; now <= 6000; now += 500) {
        beat(s, now, 2);
        qn_sched_tick(s, now);
        expect_none(s);
    }
    /* The backup wins: the original is cancelled, and the reduce runs
     * again in the first slot free (the rotation's next, w0). */
    cr_assert_eq(qn_sched_done(s, 6200, j, QN_MAP, 0, 2), QN_SCHED_ACCEPTED);
    qn_action lr = pop(s);
    expect_act(lr, QN_ACT_CANCEL, w0, j, QN_MAP, 0, 1);
    cr_assert_eq(lr.reason, QN_CANCEL_LOST_RACE);
    qn_action r = pop(s);
    expect_act(r, QN_ACT_ASSIGN, w0, j, QN_REDUCE, 0, 2);
    cr_assert_eq(r.backup, 0);
    expect_none(s);
    rt = qn_sched_task(s, j, QN_REDUCE, 0);
    cr_assert_eq(rt.failures, 0);
    cr_assert_eq(rt.losses, 0);
    cr_assert_eq(rt.started, 6200);
    check_counts(s, j);
}

/*
 * A map straggler's backup never preempts a reduce on the straggler's
 * own worker: a backup there would share the straggler's fate. The
 * reduce goes on; the backup waits for a slot elsewhere.
 */
Test(sched, no_backup_preempts_a_waiting_reduce_on_the_stragglers_worker)
{
    qn_sched *s = new_sched_cfg(&SPEC_CFG);
    int w0 = qn_sched_worker_join(s, 0, 2);
    int j = qn_sched_job_add(s, 0, 2, 1, 4);
    qn_sched_job_speculate(s, j, 1);
    expect_act(pop(s), QN_ACT_ASSIGN, w0, j, QN_MAP, 0, 1);
    expect_act(pop(s), QN_ACT_ASSIGN, w0, j, QN_MAP, 1, 1);
    expect_none(s);
    /* Map 1's slot goes to the reduce, which waits for map 0 on the same
     * worker; map 0 straggles. */
    cr_assert_eq(qn_sched_done(s, 100, j, QN_MAP, 1, 1), QN_SCHED_ACCEPTED);
    expect_act(pop(s), QN_ACT_ASSIGN, w0, j, QN_REDUCE, 0, 1);
    expect_none(s);
    for (int64_t now = 500; now <= 5000; now += 500) {
        beat(s, now, 1);
        qn_sched_tick(s, now);
        expect_none(s);
        cr_assert_eq(qn_sched_deadline(s), now + QN_SCHED_SPEC_CHECK_MS,
                     "stopped looking for a place for the backup");
    }
    cr_assert_eq(qn_sched_attempt_worker(s, j, QN_REDUCE, 0, 1), w0);
    cr_assert_eq(qn_sched_task(s, j, QN_MAP, 0).attempts, 1);
    /* A free slot elsewhere: the backup goes there, the reduce stays. */
    int w1 = qn_sched_worker_join(s, 5000, 1);
    qn_action a = pop(s);
    expect_act(a, QN_ACT_ASSIGN, w1, j, QN_MAP, 0, 2);
    cr_assert_eq(a.backup, 1);
    expect_none(s);
    cr_assert_eq(qn_sched_attempt_worker(s, j, QN_REDUCE, 0, 1), w0);
    check_counts(s, j);
}

/*
 * Two workers of slots each and a speculating job of four maps and a
 * reduce, which starts at once (no map is pending) on worker 0 and waits;
 * map 0 finishes at 100, maps 1 to 3 straggle, map 1 the worst and map 3
 * the least by their progress. At 3000 backups start, slowest first, in
 * free slots; they are returned in bk (room for four), their number is
 * the result.
 */
static unsigned s_many_stragglers(qn_sched *s, unsigned slots, int *job,
                                  qn_action *bk)
{
    qn_sched_worker_join(s, 0, slots);
    qn_sched_worker_join(s, 0, slots);
    int j = qn_sched_job_add(s, 0, 4, 1, 4);
    qn_sched_job_speculate(s, j, 1);
    for (unsigned t = 0; t < 4; t++)
        expect_act(pop(s), QN_ACT_ASSIGN, (int)(t % 2), j, QN_MAP, t, 1);
    expect_act(pop(s), QN_ACT_ASSIGN, 0, j, QN_REDUCE, 0, 1);
    expect_none(s);
    qn_sched_fraction(s, j, QN_MAP, 1, 1, 0.01);
    qn_sched_fraction(s, j, QN_MAP, 2, 1, 0.02);
    qn_sched_fraction(s, j, QN_MAP, 3, 1, 0.03);
    cr_assert_eq(qn_sched_done(s, 100, j, QN_MAP, 0, 1), QN_SCHED_ACCEPTED);
    expect_none(s);
    for (int64_t now = 500; now < 3000; now += 500) {
        beat(s, now, 2);
        qn_sched_tick(s, now);
        expect_none(s);
    }
    beat(s, 3000, 2);
    qn_sched_tick(s, 3000);
    unsigned n = 0;
    qn_action a;
    while (qn_sched_next_action(s, &a)) {
        cr_assert_lt(n, 4);
        cr_assert_eq(a.act, QN_ACT_ASSIGN);
        cr_assert_eq(a.backup, 1);
        cr_assert_eq(a.kind, QN_MAP);
        cr_assert_eq(a.task, n + 1, "backup %u for map %u: not slowest first",
                     n, a.task);
        cr_assert_eq(a.attempt, 2);
        cr_assert_neq(a.worker,
                      qn_sched_attempt_worker(s, j, QN_MAP, a.task, 1));
        bk[n++] = a;
    }
    *job = j;
    return n;
}

Test(sched, at_most_one_backup_with_fewer_than_twenty_slots)
{
    qn_sched *s = new_sched_cfg(&SPEC_CFG);
    int j;
    qn_action bk[4];
    /* 8 slots, 4 free: a tenth is 0, at least 1. */
    cr_assert_eq(s_many_stragglers(s, 4, &j, bk), 1);
    for (int64_t now = 3500; now <= 5000; now += 500) {
        beat(s, now, 2);
        qn_sched_tick(s, now);
        expect_none(s);
    }
    /* The backup wins: its place goes to the next slowest. */
    cr_assert_eq(qn_sched_done(s, 5000, j, QN_MAP, 1, 2), QN_SCHED_ACCEPTED);
    qn_action c = pop(s);
    cr_assert_eq(c.act, QN_ACT_CANCEL);
    cr_assert_eq(c.task, 1);
    cr_assert_eq(c.attempt, 1);
    cr_assert_eq(c.reason, QN_CANCEL_LOST_RACE);
    qn_action a = pop_assign(s, j, QN_MAP, 2, 2);
    cr_assert_eq(a.backup, 1);
    expect_none(s);
    check_counts(s, j);
}

Test(sched, backups_limited_to_a_tenth_of_all_slots)
{
    qn_sched *s = new_sched_cfg(&SPEC_CFG);
    int j;
    qn_action bk[4];
    /* 20 slots: 2 backups, though 3 stragglers and 16 free slots. */
    cr_assert_eq(s_many_stragglers(s, 10, &j, bk), 2);
    beat(s, 3500, 2);
    qn_sched_tick(s, 3500);
    expect_none(s);
    cr_assert_eq(qn_sched_task(s, j, QN_MAP, 3).running, 1);
    check_counts(s, j);
}

/*
 * A job of 6 maps and 3 reduces on three two-slot workers, the fake clock
 * going in 100 ms steps with heartbeats and progress reports; attempts
 * take 1 s, map 0's 20 s. A reduce that starts while maps run (as soon as
 * none is pending) fetches their outputs meanwhile and takes its 1 s
 * after the last map is done. Returns how many ASSIGNs came out; per_task
 * counts them per task, *backups those that were backups.
 */
enum { RJ_MAPS = 6, RJ_REDS = 3, RJ_W = 3 };

static unsigned s_run_job(qn_sched *s, int speculate,
                          unsigned per_task[2][RJ_MAPS], unsigned *backups)
{
    for (int w = 0; w < RJ_W; w++)
        qn_sched_worker_join(s, 0, 2);
    int j = qn_sched_job_add(s, 0, RJ_MAPS, RJ_REDS, 4);
    qn_sched_job_speculate(s, j, speculate);
    struct {
        qn_action a;
        int64_t start;
    } run[32];
    unsigned nrun = 0, assigns = 0, cancels = 0, reduces_early = 0;
    int job_done = 0;
    int64_t now = 0, maps_done_at = INT64_MAX / 2;
    *backups = 0;
    memset(per_task, 0, 2 * RJ_MAPS * sizeof per_task[0][0]);
    for (int step = 0; step < 10000 && !job_done; step++) {
        qn_action a;
        while (qn_sched_next_action(s, &a)) {
            cr_assert_eq(a.job, j);
            if (a.act == QN_ACT_JOB_DONE) {
                job_done++;
                continue;
            }
            if (a.act == QN_ACT_CANCEL) {
                cr_assert_eq(a.reason, QN_CANCEL_LOST_RACE);
                unsigned i = 0;
                while (i < nrun &&
                       !(run[i].a.kind == a.kind && run[i].a.task == a.task &&
                         run[i].a.attempt == a.attempt))
                    i++;
                cr_assert_lt(i, nrun, "cancel of an attempt not running");
                run[i] = run[--nrun];
                cancels++;
                continue;
            }
            cr_assert_eq(a.act, QN_ACT_ASSIGN, "unexpected action %d",
                         (int)a.act);
            assigns++;
            *backups += a.backup != 0;
            per_task[a.kind][a.task]++;
            cr_assert_lt(nrun, 32);
            reduces_early += a.kind == QN_REDUCE && maps_done_at > now;
            run[nrun].a = a;
            run[nrun].start = now;
            nrun++;
        }
        check_counts(s, j);
        /* Finish one attempt that is due, then drain again. */
        unsigned i = 0;
        for (; i < nrun; i++) {
            const qn_action *r = &run[i].a;
            int64_t end = r->kind == QN_MAP
                              ? run[i].start + (r->task == 0 ? 20000 : 1000)
                              : (run[i].start > maps_done_at ? run[i].start
                                                             : maps_done_at) +
                                    1000;
            if (end <= now)
                break;
        }
        if (i < nrun) {
            qn_action r = run[i].a;
            run[i] = run[--nrun];
            cr_assert_eq(qn_sched_done(s, now, j, r.kind, r.task, r.attempt),
                         QN_SCHED_ACCEPTED);
            if (qn_sched_job(s, j).maps_done == RJ_MAPS && maps_done_at > now)
                maps_done_at = now;
            continue;
        }
        now += 100;
        beat(s, now, RJ_W);
        for (i = 0; i < nrun; i++)
            qn_sched_progress(s, now, j, run[i].a.kind, run[i].a.task,
                              run[i].a.attempt);
        qn_sched_tick(s, now);
    }
    cr_assert_eq(job_done, 1);
    cr_assert_eq(nrun, 0);
    cr_assert_eq(cancels, *backups, "each race ends with one cancel");
    /* The reduces started in the slots the short maps freed. */
    cr_assert_eq(reduces_early, RJ_REDS);
    cr_assert_eq(maps_done_at, 20000, "map 0's first attempt is done last");
    cr_assert_eq(qn_sched_job(s, j).state, QN_JOB_DONE);
    return assigns;
}

Test(sched, without_speculation_every_task_runs_exactly_once)
{
    qn_sched *s = new_sched_cfg(&SPEC_CFG);
    unsigned per[2][RJ_MAPS], backups;
    cr_assert_eq(s_run_job(s, 0, per, &backups), RJ_MAPS + RJ_REDS);
    cr_assert_eq(backups, 0);
    for (unsigned t = 0; t < RJ_MAPS; t++)
        cr_assert_eq(per[QN_MAP][t], 1, "map %u ran %u attempts", t,
                     per[QN_MAP][t]);
    for (unsigned t = 0; t < RJ_REDS; t++)
        cr_assert_eq(per[QN_REDUCE][t], 1, "reduce %u ran %u attempts", t,
                     per[QN_REDUCE][t]);
}

Test(sched, with_speculation_only_the_straggler_runs_twice)
{
    qn_sched *s = new_sched_cfg(&SPEC_CFG);
    unsigned per[2][RJ_MAPS], backups;
    cr_assert_eq(s_run_job(s, 1, per, &backups), RJ_MAPS + RJ_REDS + 1);
    cr_assert_eq(backups, 1);
    cr_assert_eq(per[QN_MAP][0], 2);
    for (unsigned t = 1; t < RJ_MAPS; t++)
        cr_assert_eq(per[QN_MAP][t], 1);
    for (unsigned t = 0; t < RJ_REDS; t++)
        cr_assert_eq(per[QN_REDUCE][t], 1);
}

Test(sched, no_backup_check_while_tasks_of_the_phase_are_pending)
{
    qn_sched *s = new_sched_cfg(&SPEC_CFG);
    int w = qn_sched_worker_join(s, 0, 1);
    int j = qn_sched_job_add(s, 0, 3, 1, 4);
    qn_sched_job_speculate(s, j, 1);
    expect_act(pop(s), QN_ACT_ASSIGN, w, j, QN_MAP, 0, 1);
    cr_assert_eq(qn_sched_done(s, 100, j, QN_MAP, 0, 1), QN_SCHED_ACCEPTED);
    expect_act(pop(s), QN_ACT_ASSIGN, w, j, QN_MAP, 1, 1);
    expect_none(s);
    /* Map 2 is pending: the phase is not ending, nothing to re-check. */
    cr_assert_eq(qn_sched_deadline(s), 10000);
    cr_assert_eq(qn_sched_done(s, 5000, j, QN_MAP, 1, 1), QN_SCHED_ACCEPTED);
    expect_act(pop(s), QN_ACT_ASSIGN, w, j, QN_MAP, 2, 1);
    expect_none(s);
    /* Now it is. */
    cr_assert_eq(qn_sched_deadline(s), 5000 + QN_SCHED_SPEC_CHECK_MS);
}

Test(sched, backup_never_goes_to_a_barred_worker)
{
    qn_sched *s = new_sched_cfg(&SPEC_CFG);
    int b = qn_sched_worker_join(s, 0, 1);
    int j = qn_sched_job_add(s, 0, 2, 1, 10);
    qn_sched_job_speculate(s, j, 1);
    /* Alone, b fails four attempts of map 0 (a retry goes ahead of map 1,
     * which never ran), then runs map 0's fifth attempt: it is barred
     * once others join. */
    for (unsigned n = 1; n <= 4; n++) {
        expect_act(pop(s), QN_ACT_ASSIGN, b, j, QN_MAP, 0, n);
        expect_none(s);
        cr_assert_eq(qn_sched_failed(s, 10 * n, j, QN_MAP, 0, n),
                     QN_SCHED_ACCEPTED);
    }
    expect_act(pop(s), QN_ACT_ASSIGN, b, j, QN_MAP, 0, 5);
    int w0 = qn_sched_worker_join(s, 50, 1);
    expect_act(pop(s), QN_ACT_ASSIGN, w0, j, QN_MAP, 1, 1);
    expect_none(s); /* j's reduce: no free slot */
    /* w1's two slots are kept busy by a job that does not speculate (its
     * map, and its reduce: it runs fewer tasks than j). j's reduce waits
     * pending, so that no reduce of j holds a slot the backup could take
     * from it. */
    int k = qn_sched_job_add(s, 55, 1, 1, 4);
    expect_none(s);
    int w1 = qn_sched_worker_join(s, 60, 2);
    expect_act(pop(s), QN_ACT_ASSIGN, w1, k, QN_MAP, 0, 1);
    expect_act(pop(s), QN_ACT_ASSIGN, w1, k, QN_REDUCE, 0, 1);
    expect_none(s);

    /* Map 0 is done on b; map 1 straggles on w0. Only b has a free slot,
     * and b is barred from j (so j's reduce does not start there either):
     * no backup. */
    cr_assert_eq(qn_sched_done(s, 1000, j, QN_MAP, 0, 5), QN_SCHED_ACCEPTED);
    expect_none(s);
    for (int64_t now = 1500; now <= 8000; now += 500) {
        beat(s, now, 3);
        qn_sched_tick(s, now);
        expect_none(s);
    }
    cr_assert_eq(qn_sched_worker_busy(s, b), 0);
    cr_assert_eq(qn_sched_task(s, j, QN_REDUCE, 0).state, QN_TASK_PENDING);
    /* A clean worker joins with two slots: j's reduce takes one, and the
     * backup the other at once. */
    int w2 = qn_sched_worker_join(s, 8000, 2);
    expect_act(pop(s), QN_ACT_ASSIGN, w2, j, QN_REDUCE, 0, 1);
    qn_action a = pop(s);
    expect_act(a, QN_ACT_ASSIGN, w2, j, QN_MAP, 1, 2);
    cr_assert_eq(a.backup, 1);
    expect_none(s);
}

/*
 * Two ten-slot workers (room for two backups) and a speculating job of
 * one map and two reduces. Reduce 0 finishes at 1100 (mean 1000); map 0's
 * output is lost at 1200 and the re-run takes until 30000, heartbeating
 * and reporting progress, while reduce 1 (10% done) waits. The re-run map
 * may get a backup; reduce 1 must not, as it waits through no fault of
 * its own. Returns the job; *map_bk is the map's backup (act ASSIGN) if
 * it got one.
 */
static int s_reduce_waits_for_rerun(qn_sched *s, qn_action *map_bk)
{
    int w0 = qn_sched_worker_join(s, 0, 10);
    qn_sched_worker_join(s, 0, 10);
    int j = qn_sched_job_add(s, 0, 1, 2, 4);
    qn_sched_job_speculate(s, j, 1);
    qn_action m = pop_assign(s, j, QN_MAP, 0, 1);
    cr_assert_eq(m.worker, w0);
    cr_assert_eq(qn_sched_done(s, 100, j, QN_MAP, 0, 1), QN_SCHED_ACCEPTED);
    pop_assign(s, j, QN_REDUCE, 0, 1);
    pop_assign(s, j, QN_REDUCE, 1, 1);
    expect_none(s);
    qn_sched_fraction(s, j, QN_REDUCE, 1, 1, 0.1);
    cr_assert_eq(qn_sched_done(s, 1100, j, QN_REDUCE, 0, 1), QN_SCHED_ACCEPTED);
    expect_none(s);
    cr_assert_eq(qn_sched_map_lost(s, 1200, j, 0, 1), 0);
    expect_act(pop(s), QN_ACT_MAP_RERUN, w0, j, QN_MAP, 0, 1);
    pop_assign(s, j, QN_MAP, 0, 2);
    expect_none(s);
    memset(map_bk, 0, sizeof *map_bk);
    map_bk->act = QN_ACT_JOB_DONE; /* none yet */
    for (int64_t now = 1500; now < 30000; now += 500) {
        beat(s, now, 2);
        qn_sched_progress(s, now, j, QN_MAP, 0, 2);
        qn_sched_tick(s, now);
        qn_action a;
        while (qn_sched_next_action(s, &a)) {
            cr_assert_eq(a.act, QN_ACT_ASSIGN);
            cr_assert_eq(a.kind, QN_MAP,
                         "reduce %u got a backup at %lld while it waits for "
                         "the map",
                         a.task, (long long)now);
            cr_assert_eq(map_bk->act, QN_ACT_JOB_DONE, "two map backups");
            cr_assert_eq(a.backup, 1);
            *map_bk = a;
        }
        qn_sched_progress(s, now, j, QN_MAP, 0, map_bk->attempt);
    }
    qn_task_info ti = qn_sched_task(s, j, QN_REDUCE, 1);
    cr_assert_eq(ti.state, QN_TASK_RUNNING);
    cr_assert_eq(ti.running, 1);
    cr_assert_eq(ti.attempts, 1);
    return j;
}

Test(sched, reduce_waiting_for_a_rerun_map_gets_no_backup)
{
    qn_sched *s = new_sched_cfg(&SPEC_CFG);
    qn_action map_bk;
    int j = s_reduce_waits_for_rerun(s, &map_bk);
    /* The re-run itself is a straggler of the map phase (mean 100). */
    cr_assert_eq(map_bk.act, QN_ACT_ASSIGN, "the re-run map got no backup");
    cr_assert_eq(map_bk.attempt, 3);
    check_counts(s, j);
}

/*
 * A phase's mean task time counts each attempt from when it last started
 * working: for reduces that started while maps ran, from when the last map
 * was done, not from their start. Four one-slot workers and a speculating
 * job of two maps and two reduces: both reduces start at 0 and wait for
 * the maps, done at 19000 and 20000 (map 0, 90% done, is no straggler).
 * Reduce 0 is done at 21000: it worked 1000 ms (it ran 21000). Reduce 1
 * straggles, with no progress figure: past spec_min_ms and the 1000 ms
 * mean it gets a backup at 23000. Were the wait counted, the mean would
 * be 21000 and no backup would start before 41000.
 */
Test(sched, mean_reduce_time_leaves_out_the_wait_for_maps)
{
    qn_sched *s = new_sched_cfg(&SPEC_CFG);
    for (int i = 0; i < 4; i++)
        qn_sched_worker_join(s, 0, 1);
    int j = qn_sched_job_add(s, 0, 2, 2, 4);
    qn_sched_job_speculate(s, j, 1);
    expect_act(pop(s), QN_ACT_ASSIGN, 0, j, QN_MAP, 0, 1);
    expect_act(pop(s), QN_ACT_ASSIGN, 1, j, QN_MAP, 1, 1);
    expect_act(pop(s), QN_ACT_ASSIGN, 2, j, QN_REDUCE, 0, 1);
    expect_act(pop(s), QN_ACT_ASSIGN, 3, j, QN_REDUCE, 1, 1);
    expect_none(s);
    qn_sched_fraction(s, j, QN_MAP, 0, 1, 0.9);
    for (int64_t now = 500; now <= 19500; now += 500) {
        beat(s, now, 4);
        if (now == 19000) {
            cr_assert_eq(qn_sched_done(s, now, j, QN_MAP, 1, 1),
                         QN_SCHED_ACCEPTED);
            expect_none(s);
        }
        qn_sched_tick(s, now);
        expect_none(s);
    }
    cr_assert_eq(qn_sched_done(s, 20000, j, QN_MAP, 0, 1), QN_SCHED_ACCEPTED);
    expect_none(s); /* both reduces already run */
    cr_assert_eq(qn_sched_done(s, 21000, j, QN_REDUCE, 0, 1),
                 QN_SCHED_ACCEPTED);
    expect_none(s);
    cr_assert_eq(qn_sched_task(s, j, QN_REDUCE, 1).started, 0);

    /* Following the deadlines: the backup at 23000, not before. */
    int64_t now = 21000;
    qn_action a;
    for (;;) {
        int64_t d = qn_sched_deadline(s);
        cr_assert_eq(d, now + QN_SCHED_SPEC_CHECK_MS);
        now = d;
        cr_assert_leq(now, 23000, "no backup by %lld", (long long)now);
        beat(s, now, 4);
        qn_sched_tick(s, now);
        if (qn_sched_next_action(s, &a))
            break;
    }
    cr_assert_eq(now, 23000, "backup at %lld, expected 23000", (long long)now);
    /* Workers 0 to 2 are free: the first of them. */
    expect_act(a, QN_ACT_ASSIGN, 0, j, QN_REDUCE, 1, 2);
    cr_assert_eq(a.backup, 1);
    expect_none(s);
    check_counts(s, j);
}

/* ---- maps run again ------------------------------------------------------ */

Test(sched, map_lost_reruns_a_done_map)
{
    qn_sched *s = new_sched();
    int w = qn_sched_worker_join(s, 0, 2);
    int j = qn_sched_job_add(s, 0, 2, 1, 4);
    expect_act(pop(s), QN_ACT_ASSIGN, w, j, QN_MAP, 0, 1);
    expect_act(pop(s), QN_ACT_ASSIGN, w, j, QN_MAP, 1, 1);
    cr_assert_eq(qn_sched_map_lost(s, 50, j, 1, 1), -1, "map not done yet");
    expect_none(s);
    cr_assert_eq(qn_sched_done(s, 100, j, QN_MAP, 0, 1), QN_SCHED_ACCEPTED);
    cr_assert_eq(qn_sched_done(s, 200, j, QN_MAP, 1, 1), QN_SCHED_ACCEPTED);
    expect_act(pop(s), QN_ACT_ASSIGN, w, j, QN_REDUCE, 0, 1);
    expect_none(s);

    cr_assert_eq(qn_sched_map_lost(s, 300, j, 0, 2), -1, "no attempt 2");
    cr_assert_eq(qn_sched_map_lost(s, 300, j, 2, 1), -1, "no map 2");
    cr_assert_eq(qn_sched_map_lost(s, 300, j + 1, 0, 1), -1, "no such job");
    expect_none(s);
    cr_assert_eq(qn_sched_job(s, j).maps_done, 2);

    /* The reducer could not fetch map 0's output: it runs again. */
    cr_assert_eq(qn_sched_map_lost(s, 400, j, 0, 1), 0);
    qn_action re = pop(s);
    expect_act(re, QN_ACT_MAP_RERUN, w, j, QN_MAP, 0, 1);
    cr_assert_eq(re.reason, 0, "MAP_RERUN reason %d, expected 0 (fetch)",
                 re.reason);
    qn_action a = pop_assign(s, j, QN_MAP, 0, 2);
    cr_assert_eq(a.worker, w);
    cr_assert_eq(a.backup, 0);
    expect_none(s);
    qn_task_info ti = qn_sched_task(s, j, QN_MAP, 0);
    cr_assert_eq(ti.state, QN_TASK_RUNNING);
    cr_assert_eq(ti.attempts, 2);
    cr_assert_eq(ti.failures, 0);
    cr_assert_eq(ti.losses, 0);
    cr_assert_eq(qn_sched_job(s, j).maps_done, 1);
    cr_assert_eq(qn_sched_task(s, j, QN_REDUCE, 0).state, QN_TASK_RUNNING,
                 "the reduce goes on");
    check_counts(s, j);

    /* Reports about it while it runs again are refused. */
    cr_assert_eq(qn_sched_map_lost(s, 410, j, 0, 1), -1);
    cr_assert_eq(qn_sched_map_lost(s, 410, j, 0, 2), -1);
    expect_none(s);

    cr_assert_eq(qn_sched_done(s, 500, j, QN_MAP, 0, 2), QN_SCHED_ACCEPTED);
    expect_none(s);
    cr_assert_eq(qn_sched_job(s, j).maps_done, 2);
    /* Attempt 1's output is no longer the one in use; attempt 2's is. */
    cr_assert_eq(qn_sched_map_lost(s, 600, j, 0, 1), -1);
    expect_none(s);
    cr_assert_eq(qn_sched_map_lost(s, 600, j, 0, 2), 0);
    re = pop(s);
    expect_act(re, QN_ACT_MAP_RERUN, w, j, QN_MAP, 0, 2);
    cr_assert_eq(re.reason, 0);
    pop_assign(s, j, QN_MAP, 0, 3);
    expect_none(s);

    cr_assert_eq(qn_sched_done(s, 700, j, QN_MAP, 0, 3), QN_SCHED_ACCEPTED);
    cr_assert_eq(qn_sched_done(s, 800, j, QN_REDUCE, 0, 1), QN_SCHED_ACCEPTED);
    expect_act(pop(s), QN_ACT_JOB_DONE, -1, j, QN_MAP, 0, 0);
    expect_none(s);
    cr_assert_eq(qn_sched_map_lost(s, 900, j, 0, 3), -1, "job is over");
    expect_none(s);
}

Test(sched, reduce_waiting_for_a_rerun_map_does_not_time_out)
{
    qn_sched *s = new_sched();
    int w = qn_sched_worker_join(s, 0, 2);
    int j = qn_sched_job_add(s, 0, 1, 1, 4);
    pop_assign(s, j, QN_MAP, 0, 1);
    cr_assert_eq(qn_sched_done(s, 100, j, QN_MAP, 0, 1), QN_SCHED_ACCEPTED);
    pop_assign(s, j, QN_REDUCE, 0, 1); /* at 100, never reports progress */
    cr_assert_eq(qn_sched_map_lost(s, 1000, j, 0, 1), 0);
    expect_act(pop(s), QN_ACT_MAP_RERUN, w, j, QN_MAP, 0, 1);
    pop_assign(s, j, QN_MAP, 0, 2);
    expect_none(s);

    /* The map takes five minutes (reporting progress); the reduce waits
     * all along and is not timed out, nor is it part of the deadline. */
    for (int64_t now = 5000; now <= 300000; now += 5000) {
        beat(s, now, 1);
        qn_sched_progress(s, now, j, QN_MAP, 0, 2);
        qn_sched_tick(s, now);
        expect_none(s);
        cr_assert_eq(qn_sched_deadline(s), now + CFG.dead_ms);
    }
    cr_assert_eq(qn_sched_attempt_worker(s, j, QN_REDUCE, 0, 1), w);

    /* The map is done at 302000, between ticks: the reduce's clock starts
     * again there, so it times out at 362000. */
    cr_assert_eq(qn_sched_done(s, 302000, j, QN_MAP, 0, 2), QN_SCHED_ACCEPTED);
    expect_none(s);
    for (int64_t now = 305000; now <= 360000; now += 5000) {
        beat(s, now, 1);
        qn_sched_tick(s, now);
        expect_none(s);
    }
    cr_assert_eq(qn_sched_deadline(s), 362000);
    qn_sched_tick(s, 361999);
    expect_none(s);
    qn_sched_tick(s, 362000);
    qn_action c = pop(s);
    expect_act(c, QN_ACT_CANCEL, w, j, QN_REDUCE, 0, 1);
    cr_assert_eq(c.reason, QN_CANCEL_TIMEOUT);
    qn_action lost = pop(s);
    expect_act(lost, QN_ACT_ATTEMPT_LOST, w, j, QN_REDUCE, 0, 1);
    cr_assert_eq(lost.reason, QN_LOST_TIMEOUT);
    expect_act(pop(s), QN_ACT_ASSIGN, w, j, QN_REDUCE, 0, 2);
    expect_none(s);
    cr_assert_eq(qn_sched_task(s, j, QN_REDUCE, 0).failures, 1);
}

/* ---- lost attempts ------------------------------------------------------- */

Test(sched, lost_attempts_fail_the_job_only_after_the_loss_bound)
{
    enum { MAX = 2, BOUND = MAX * QN_SCHED_LOSS_FACTOR };
    qn_sched *s = new_sched();
    int j = qn_sched_job_add(s, 0, 1, 1, MAX);
    for (unsigned n = 1; n <= BOUND; n++) {
        /* A new worker takes the map and dies: by leaving, or silence. */
        int64_t t = (int64_t)n * 100000;
        int w = qn_sched_worker_join(s, t, 1);
        expect_act(pop(s), QN_ACT_ASSIGN, w, j, QN_MAP, 0, n);
        if (n % 2)
            qn_sched_worker_leave(s, t + 50, w);
        else
            qn_sched_tick(s, t + CFG.dead_ms);
        expect_act(pop(s), QN_ACT_WORKER_DEAD, w, -1, QN_MAP, 0, 0);
        qn_action lost = pop(s);
        expect_act(lost, QN_ACT_ATTEMPT_LOST, w, j, QN_MAP, 0, n);
        cr_assert_eq(lost.reason, QN_LOST_WORKER_DEAD);
        qn_task_info ti = qn_sched_task(s, j, QN_MAP, 0);
        cr_assert_eq(ti.losses, n);
        cr_assert_eq(ti.failures, 0);
        cr_assert_eq(ti.attempts, n);
        if (n < BOUND) {
            expect_none(s);
            cr_assert_eq(qn_sched_job(s, j).state, QN_JOB_RUNNING,
                         "job failed after %u losses", n);
            cr_assert_eq(ti.state, QN_TASK_PENDING);
        }
    }
    expect_act(pop(s), QN_ACT_JOB_FAILED, -1, j, QN_MAP, 0, BOUND);
    expect_none(s);
    cr_assert_eq(qn_sched_job(s, j).state, QN_JOB_FAILED);
    qn_sched_worker_join(s, 2000000, 1);
    expect_none(s);
}

Test(sched, losses_and_failures_are_counted_apart)
{
    qn_sched *s = new_sched();
    int j = qn_sched_job_add(s, 0, 1, 1, 2);
    int w = qn_sched_worker_join(s, 0, 1);
    expect_act(pop(s), QN_ACT_ASSIGN, w, j, QN_MAP, 0, 1);
    cr_assert_eq(qn_sched_failed(s, 10, j, QN_MAP, 0, 1), QN_SCHED_ACCEPTED);
    /* Attempts 2 to 6 are lost: five losses, one failure, max 2. */
    for (unsigned n = 2; n <= 6; n++) {
        expect_act(pop(s), QN_ACT_ASSIGN, w, j, QN_MAP, 0, n);
        expect_none(s);
        qn_sched_worker_leave(s, 100 * n, w);
        expect_act(pop(s), QN_ACT_WORKER_DEAD, w, -1, QN_MAP, 0, 0);
        expect_act(pop(s), QN_ACT_ATTEMPT_LOST, w, j, QN_MAP, 0, n);
        expect_none(s);
        w = qn_sched_worker_join(s, 100 * n + 50, 1);
    }
    qn_task_info ti = qn_sched_task(s, j, QN_MAP, 0);
    cr_assert_eq(ti.failures, 1);
    cr_assert_eq(ti.losses, 5);
    cr_assert_eq(qn_sched_job(s, j).state, QN_JOB_RUNNING);
    /* The second failure is what ends it. */
    expect_act(pop(s), QN_ACT_ASSIGN, w, j, QN_MAP, 0, 7);
    cr_assert_eq(qn_sched_failed(s, 1000, j, QN_MAP, 0, 7), QN_SCHED_ACCEPTED);
    expect_act(pop(s), QN_ACT_JOB_FAILED, -1, j, QN_MAP, 0, 7);
    expect_none(s);
    cr_assert_eq(qn_sched_job(s, j).state, QN_JOB_FAILED);
}

/* ---- work figures and running attempts ----------------------------------- */

Test(sched, work_counts_as_progress_only_when_it_grows)
{
    qn_sched *s = new_sched();
    int w = qn_sched_worker_join(s, 0, 1);
    int j = qn_sched_job_add(s, 0, 1, 1, 4);
    pop_assign(s, j, QN_MAP, 0, 1);
    qn_sched_work(s, 20000, j, QN_MAP, 0, 1, 100); /* grew from 0 */
    for (int64_t now = 5000; now <= 75000; now += 5000) {
        beat(s, now, 1);
        if (now == 40000)
            qn_sched_work(s, now, j, QN_MAP, 0, 1, 100); /* the same */
        if (now == 50000)
            qn_sched_work(s, now, j, QN_MAP, 0, 1, 60); /* less */
        if (now == 55000)
            qn_sched_work(s, now, j, QN_MAP, 0, 2, 1000); /* stale */
        qn_sched_tick(s, now);
        expect_none(s); /* not timed out at 60000: it grew at 20000 */
    }
    qn_sched_tick(s, 79999);
    expect_none(s);
    qn_sched_tick(s, 80000);
    qn_action c = pop(s);
    expect_act(c, QN_ACT_CANCEL, w, j, QN_MAP, 0, 1);
    cr_assert_eq(c.reason, QN_CANCEL_TIMEOUT);
    expect_act(pop(s), QN_ACT_ATTEMPT_LOST, w, j, QN_MAP, 0, 1);
    pop_assign(s, j, QN_MAP, 0, 2); /* at 80000 */
    expect_none(s);

    /* A new attempt's figure starts at nothing: 0 is not growth, 50 is,
     * though attempt 1 had got to 100. */
    qn_sched_work(s, 90000, j, QN_MAP, 0, 2, 0);
    for (int64_t now = 85000; now <= 135000; now += 5000) {
        beat(s, now, 1);
        qn_sched_tick(s, now);
        expect_none(s);
    }
    qn_sched_tick(s, 140000);
    expect_act(pop(s), QN_ACT_CANCEL, w, j, QN_MAP, 0, 2);
    expect_act(pop(s), QN_ACT_ATTEMPT_LOST, w, j, QN_MAP, 0, 2);
    pop_assign(s, j, QN_MAP, 0, 3); /* at 140000 */
    expect_none(s);
    qn_sched_work(s, 150000, j, QN_MAP, 0, 3, 50);
    for (int64_t now = 145000; now <= 205000; now += 5000) {
        beat(s, now, 1);
        qn_sched_tick(s, now);
        expect_none(s);
    }
    qn_sched_tick(s, 210000);
    expect_act(pop(s), QN_ACT_CANCEL, w, j, QN_MAP, 0, 3);
    expect_act(pop(s), QN_ACT_ATTEMPT_LOST, w, j, QN_MAP, 0, 3);
    pop_assign(s, j, QN_MAP, 0, 4);
    expect_none(s);
    cr_assert_eq(qn_sched_task(s, j, QN_MAP, 0).failures, 3);
}

Test(sched, attempt_worker_and_running_report_running_attempts)
{
    qn_sched *s = new_sched();
    int w = qn_sched_worker_join(s, 0, 1);
    int j = qn_sched_job_add(s, 0, 1, 1, 4);
    pop_assign(s, j, QN_MAP, 0, 1);
    unsigned atts[QN_SCHED_MAX_RUNNING];
    int ws[QN_SCHED_MAX_RUNNING];
    cr_assert_eq(qn_sched_attempt_worker(s, j, QN_MAP, 0, 1), w);
    cr_assert_eq(qn_sched_attempt_worker(s, j, QN_MAP, 0, 0), -1);
    cr_assert_eq(qn_sched_attempt_worker(s, j, QN_MAP, 0, 2), -1);
    cr_assert_eq(qn_sched_attempt_worker(s, j, QN_MAP, 1, 1), -1);
    cr_assert_eq(qn_sched_attempt_worker(s, j, QN_REDUCE, 0, 1), -1);
    cr_assert_eq(qn_sched_attempt_worker(s, j + 1, QN_MAP, 0, 1), -1);
    cr_assert_eq(qn_sched_running(s, j, QN_MAP, 0, atts, ws), 1);
    cr_assert_eq(atts[0], 1);
    cr_assert_eq(ws[0], w);
    cr_assert_eq(qn_sched_running(s, j, QN_REDUCE, 0, atts, ws), 0);
    cr_assert_eq(qn_sched_running(s, j, QN_MAP, 1, atts, ws), 0);
    cr_assert_eq(qn_sched_running(s, j + 1, QN_MAP, 0, atts, ws), 0);

    cr_assert_eq(qn_sched_failed(s, 10, j, QN_MAP, 0, 1), QN_SCHED_ACCEPTED);
    pop_assign(s, j, QN_MAP, 0, 2);
    cr_assert_eq(qn_sched_attempt_worker(s, j, QN_MAP, 0, 1), -1);
    cr_assert_eq(qn_sched_attempt_worker(s, j, QN_MAP, 0, 2), w);
    cr_assert_eq(qn_sched_running(s, j, QN_MAP, 0, atts, ws), 1);
    cr_assert_eq(atts[0], 2);

    cr_assert_eq(qn_sched_done(s, 20, j, QN_MAP, 0, 2), QN_SCHED_ACCEPTED);
    pop_assign(s, j, QN_REDUCE, 0, 1);
    cr_assert_eq(qn_sched_attempt_worker(s, j, QN_MAP, 0, 2), -1, "done");
    cr_assert_eq(qn_sched_running(s, j, QN_MAP, 0, atts, ws), 0);
    cr_assert_eq(qn_sched_attempt_worker(s, j, QN_REDUCE, 0, 1), w);

    cr_assert_eq(qn_sched_job_cancel(s, 30, j), 0);
    expect_act(pop(s), QN_ACT_CANCEL, w, j, QN_REDUCE, 0, 1);
    expect_none(s);
    cr_assert_eq(qn_sched_attempt_worker(s, j, QN_REDUCE, 0, 1), -1);
    cr_assert_eq(qn_sched_running(s, j, QN_REDUCE, 0, atts, ws), 0);
}

/* ---- regressions: bugs once found in sched.c ----------------------------- */

/*
 * Three one-slot workers; both maps done; the worker that ran map 0 (not
 * running the reduce) leaves, so map 0 re-runs on the remaining free
 * worker; then the reduce finishes and the job is done while that re-run
 * is still going. Returns the job; *rerun is the re-run's ASSIGN.
 */
static int s_done_with_leftover_rerun(qn_sched *s, qn_action *rerun)
{
    for (int i = 0; i < 3; i++)
        qn_sched_worker_join(s, 0, 1);
    int j = qn_sched_job_add(s, 0, 2, 1, 4);
    qn_action m0 = pop_assign(s, j, QN_MAP, 0, 1);
    qn_action m1 = pop_assign(s, j, QN_MAP, 1, 1);
    qn_sched_done(s, 100, j, QN_MAP, 0, 1);
    qn_sched_done(s, 200, j, QN_MAP, 1, 1);
    qn_action r = pop_assign(s, j, QN_REDUCE, 0, 1);
    expect_none(s);
    cr_assert_neq(m0.worker, r.worker, "setup: expected the reduce elsewhere");
    (void)m1;
    qn_sched_worker_leave(s, 300, m0.worker);
    expect_act(pop(s), QN_ACT_WORKER_DEAD, m0.worker, -1, QN_MAP, 0, 0);
    qn_action again = pop(s);
    expect_act(again, QN_ACT_MAP_RERUN, m0.worker, j, QN_MAP, 0, 1);
    cr_assert_eq(again.reason, 1);
    *rerun = pop_assign(s, j, QN_MAP, 0, 2);
    expect_none(s);
    cr_assert_eq(qn_sched_done(s, 400, j, QN_REDUCE, 0, 1), QN_SCHED_ACCEPTED);
    return j;
}

Test(sched, job_done_stops_leftover_map_rerun)
{
    qn_sched *s = new_sched();
    qn_action rerun;
    int j = s_done_with_leftover_rerun(s, &rerun);
    int job_done = 0, cancels = 0;
    qn_action a;
    while (qn_sched_next_action(s, &a)) {
        if (a.act == QN_ACT_JOB_DONE) {
            job_done++;
        } else {
            expect_act(a, QN_ACT_CANCEL, rerun.worker, j, QN_MAP, 0, 2);
            cr_assert_eq(a.reason, QN_CANCEL_JOB_END);
            cancels++;
        }
    }
    cr_assert_eq(job_done, 1);
    cr_assert_eq(qn_sched_job(s, j).state, QN_JOB_DONE);
    /* The re-run is no longer needed: its slot must come back. */
    cr_assert_eq(qn_sched_worker_busy(s, rerun.worker), 0,
                 "the finished job still holds a slot on worker %d",
                 rerun.worker);
    cr_assert_eq(qn_sched_job(s, j).maps_running, 0);
    cr_assert_eq(cancels, 1, "the leftover attempt was not cancelled");
}

Test(sched, job_done_leaves_no_past_deadline)
{
    qn_sched *s = new_sched();
    qn_action rerun;
    s_done_with_leftover_rerun(s, &rerun);
    while (qn_sched_next_action(s, &rerun))
        ;
    /* Everyone heartbeats; the master ticks at each deadline it is given.
     * The deadline must move past now, or the master's loop spins. */
    int64_t now = 60300;
    for (int w = 0; w < 3; w++)
        qn_sched_worker_seen(s, now, w);
    qn_sched_tick(s, now);
    cr_assert_gt(qn_sched_deadline(s), now,
                 "deadline %lld stuck at or before now %lld",
                 (long long)qn_sched_deadline(s), (long long)now);
}

Test(sched, tick_assigns_nothing_to_workers_dead_at_that_time)
{
    qn_sched *s = new_sched();
    int w0 = qn_sched_worker_join(s, 0, 2);
    int j = qn_sched_job_add(s, 0, 1, 1, 2);
    expect_act(pop(s), QN_ACT_ASSIGN, w0, j, QN_MAP, 0, 1);
    expect_act(pop(s), QN_ACT_ASSIGN, w0, j, QN_REDUCE, 0, 1);
    int w1 = qn_sched_worker_join(s, 0, 1); /* idle: nothing left to run */
    expect_none(s);

    /* Both fall silent; at 10000 both are past dead_ms. w0's attempts are
     * lost, and must not go to w1, dead at this tick too. */
    qn_sched_tick(s, 10000);
    qn_action got[8];
    unsigned n = 0;
    while (n < 8 && qn_sched_next_action(s, &got[n])) {
        cr_assert_neq(got[n].act, QN_ACT_ASSIGN,
                      "attempt %u assigned to worker %d, which is silent "
                      "past dead_ms at this tick",
                      got[n].attempt, got[n].worker);
        cr_assert_neq(got[n].act, QN_ACT_JOB_FAILED,
                      "the job failed though only one attempt ran");
        n++;
    }
    cr_assert_eq(n, 4);
    expect_act(got[0], QN_ACT_WORKER_DEAD, w0, -1, QN_MAP, 0, 0);
    expect_act(got[1], QN_ACT_ATTEMPT_LOST, w0, j, QN_MAP, 0, 1);
    expect_act(got[2], QN_ACT_ATTEMPT_LOST, w0, j, QN_REDUCE, 0, 1);
    expect_act(got[3], QN_ACT_WORKER_DEAD, w1, -1, QN_MAP, 0, 0);
    cr_assert_not(qn_sched_worker_alive(s, w1));
    qn_task_info ti = qn_sched_task(s, j, QN_MAP, 0);
    cr_assert_eq(ti.attempts, 1);
    cr_assert_eq(ti.failures, 0);
    cr_assert_eq(ti.losses, 1);
    cr_assert_eq(qn_sched_job(s, j).state, QN_JOB_RUNNING);
}

/*
 * The same with w1 running the reduce, which waits for the map: when
 * w0's death makes map 0 pending, the reduce on w1 must not make room
 * for it, as w1 is dead at this tick too. The tick should only declare
 * both dead and lose their attempts.
 * (s_waiting_reduce, used by s_preempt and by s_speculate for backups,
 * once picked reduces on workers marked dead at this tick but not yet
 * handled: it cancelled the reduce, assigned map 0's attempt 2 to dead w1
 * and lost it with w1.)
 */
Test(sched, tick_preempts_no_reduce_on_a_worker_dead_at_that_time)
{
    qn_sched *s = new_sched();
    int w0 = qn_sched_worker_join(s, 0, 1);
    int j = qn_sched_job_add(s, 0, 1, 1, 2);
    expect_act(pop(s), QN_ACT_ASSIGN, w0, j, QN_MAP, 0, 1);
    /* w1 takes the reduce, which waits for the map. */
    int w1 = qn_sched_worker_join(s, 0, 1);
    expect_act(pop(s), QN_ACT_ASSIGN, w1, j, QN_REDUCE, 0, 1);
    expect_none(s);

    qn_sched_tick(s, 10000);
    expect_act(pop(s), QN_ACT_WORKER_DEAD, w0, -1, QN_MAP, 0, 0);
    qn_action lost = pop(s);
    expect_act(lost, QN_ACT_ATTEMPT_LOST, w0, j, QN_MAP, 0, 1);
    cr_assert_eq(lost.reason, QN_LOST_WORKER_DEAD);
    expect_act(pop(s), QN_ACT_WORKER_DEAD, w1, -1, QN_MAP, 0, 0);
    lost = pop(s);
    expect_act(lost, QN_ACT_ATTEMPT_LOST, w1, j, QN_REDUCE, 0, 1);
    cr_assert_eq(lost.reason, QN_LOST_WORKER_DEAD);
    expect_none(s);
    qn_task_info ti = qn_sched_task(s, j, QN_MAP, 0);
    cr_assert_eq(ti.state, QN_TASK_PENDING);
    cr_assert_eq(ti.attempts, 1);
    cr_assert_eq(ti.losses, 1);
    ti = qn_sched_task(s, j, QN_REDUCE, 0);
    cr_assert_eq(ti.state, QN_TASK_PENDING);
    cr_assert_eq(ti.attempts, 1);
    cr_assert_eq(ti.losses, 1);
    cr_assert_eq(qn_sched_job(s, j).state, QN_JOB_RUNNING);
    check_counts(s, j);
}

/*
 * A reduce that waited for a re-run map is backed up the moment the map
 * is done: its running time includes the wait, so it looks slow though
 * it could not run meanwhile (its timeout clock, by contrast, restarts
 * when the map is done). It should have at least spec_min_ms from then
 * before it can count as a straggler.
 */
Test(sched, reduce_that_waited_for_a_map_is_not_backed_up_at_once)
{
    qn_sched *s = new_sched_cfg(&SPEC_CFG);
    qn_action map_bk;
    int j = s_reduce_waits_for_rerun(s, &map_bk);
    cr_assert_eq(qn_sched_done(s, 30000, j, QN_MAP, 0, 2), QN_SCHED_ACCEPTED);
    int64_t now = 30000;
    for (;;) {
        qn_action a;
        while (qn_sched_next_action(s, &a)) {
            if (a.act == QN_ACT_CANCEL) {
                expect_act(a, QN_ACT_CANCEL, map_bk.worker, j, QN_MAP, 0,
                           map_bk.attempt);
                continue;
            }
            cr_assert_fail("%s %d for reduce %u at %lld, %lld ms after the "
                           "map it waited for was done",
                           a.backup ? "backup" : "action", (int)a.act, a.task,
                           (long long)now, (long long)(now - 30000));
        }
        now += 500;
        if (now >= 30000 + SPEC_CFG.spec_min_ms)
            break;
        beat(s, now, 2);
        qn_sched_tick(s, now);
    }
    cr_assert_eq(qn_sched_task(s, j, QN_REDUCE, 1).attempts, 1);
}

Test(sched, vanished_attempt_is_a_loss_and_runs_again)
{
    qn_sched *s = new_sched();
    int w0 = qn_sched_worker_join(s, 0, 1);
    int w1 = qn_sched_worker_join(s, 0, 1);
    int j = qn_sched_job_add(s, 0, 2, 1, 4);
    qn_action a0 = pop_assign(s, j, QN_MAP, 0, 1);
    pop_assign(s, j, QN_MAP, 1, 1);
    qn_attempt_ref refs[4];
    cr_assert_eq(qn_sched_worker_attempts(s, a0.worker, refs, 4), 1);
    cr_assert_eq(refs[0].job, j);
    cr_assert_eq(refs[0].kind, QN_MAP);
    cr_assert_eq(refs[0].task, 0);
    cr_assert_eq(refs[0].attempt, 1);
    /* The worker never got it: lost, not failed, and it runs again. */
    cr_assert_eq(qn_sched_vanished(s, 5000, j, QN_MAP, 0, 1),
                 QN_SCHED_ACCEPTED);
    qn_action lost = pop(s);
    expect_act(lost, QN_ACT_ATTEMPT_LOST, a0.worker, j, QN_MAP, 0, 1);
    cr_assert_eq(lost.reason, QN_LOST_VANISHED);
    expect_act(pop(s), QN_ACT_ASSIGN, a0.worker, j, QN_MAP, 0, 2);
    qn_task_info ti = qn_sched_task(s, j, QN_MAP, 0);
    cr_assert_eq(ti.failures, 0);
    cr_assert_eq(ti.losses, 1);
    /* Twice is stale; so is an attempt never run. */
    cr_assert_eq(qn_sched_vanished(s, 5001, j, QN_MAP, 0, 1), QN_SCHED_STALE);
    cr_assert_eq(qn_sched_vanished(s, 5001, j, QN_MAP, 0, 9), QN_SCHED_STALE);
    expect_none(s);
    (void)w0;
    (void)w1;
    check_counts(s, j);
}

Test(sched, preempted_slot_goes_to_the_map_not_to_another_job)
{
    qn_sched *s = new_sched();
    int w0 = qn_sched_worker_join(s, 0, 1);
    int w1 = qn_sched_worker_join(s, 0, 1);
    /* Job a: 1 map, 2 reduces, both running on the two slots. */
    int a = qn_sched_job_add(s, 0, 1, 2, 4);
    qn_action m = pop_assign(s, a, QN_MAP, 0, 1);
    cr_assert_eq(qn_sched_done(s, 10, a, QN_MAP, 0, 1), QN_SCHED_ACCEPTED);
    pop_assign(s, a, QN_REDUCE, 0, 1);
    pop_assign(s, a, QN_REDUCE, 1, 1);
    /* An older job b would take any free slot first: add it now... */
    int b = qn_sched_job_add(s, 20, 1, 1, 4);
    expect_none(s); /* no slot */
    /* ...then a's map output is lost: a waiting reduce makes room, and
     * the slot goes to a's map even though job b has a task pending. */
    cr_assert_eq(qn_sched_map_lost(s, 30, a, 0, 1), 0);
    expect_act(pop(s), QN_ACT_MAP_RERUN, m.worker, a, QN_MAP, 0, 1);
    qn_action c = pop(s);
    cr_assert_eq(c.act, QN_ACT_CANCEL);
    cr_assert_eq(c.reason, QN_CANCEL_PREEMPTED);
    cr_assert_eq(c.job, a);
    cr_assert_eq(c.kind, QN_REDUCE);
    expect_act(pop(s), QN_ACT_ASSIGN, c.worker, a, QN_MAP, 0, 2);
    expect_none(s); /* one reduce is enough to make room */
    cr_assert_eq(qn_sched_job(s, a).reduces_running, 1);
    cr_assert_eq(qn_sched_job(s, b).maps_running, 0);
    (void)w0;
    (void)w1;
    check_counts(s, a);
    check_counts(s, b);
}

/* ---- data locality ------------------------------------------------------- */

/* Maps wait 3 s for a holder, and 20 s for any live holder at all. */
static const qn_sched_config LOC_CFG = {.dead_ms = 10000,
                                        .task_timeout_ms = 60000,
                                        .locality_wait_ms = 3000,
                                        .shard_wait_ms = 20000};

#define LOC_MAPS 8
#define LOC_WORKERS 8

/* A fake holders table: holds[map][worker] is 1 when that worker holds
 * the map's input; a map with any[map] set reads a path (QN_LOC_ANY). */
typedef struct fake_loc {
    int holds[LOC_MAPS][LOC_WORKERS];
    int any[LOC_MAPS];
    int job; /* the job the table is about; other jobs read paths */
} fake_loc;

static int fake_local(void *ctx, int job, unsigned map, int worker)
{
    const fake_loc *f = ctx;
    cr_assert_lt(map, LOC_MAPS, "asked about map %u", map);
    cr_assert_lt(worker, LOC_WORKERS, "asked about worker %d", worker);
    if (job != f->job || f->any[map])
        return QN_LOC_ANY;
    return worker >= 0 ? f->holds[map][worker] : 0;
}

/* Heartbeats from every live worker. */
static void beat_alive(qn_sched *s, int64_t now, int n)
{
    for (int w = 0; w < n; w++)
        if (qn_sched_worker_alive(s, w))
            qn_sched_worker_seen(s, now, w);
}

/* The deadline must be after now, or the master's loop spins. */
static void expect_future_deadline(const qn_sched *s, int64_t now)
{
    int64_t d = qn_sched_deadline(s);
    cr_assert_gt(d, now, "deadline %lld at or before now %lld", (long long)d,
                 (long long)now);
}

Test(sched, map_goes_to_free_worker_holding_it_out_of_queue_order)
{
    static fake_loc loc;
    memset(&loc, 0, sizeof loc);
    qn_sched *s = new_sched_cfg(&LOC_CFG);
    qn_sched_set_locality(s, fake_local, &loc);
    int w0 = qn_sched_worker_join(s, 1000, 1);
    int w1 = qn_sched_worker_join(s, 1000, 1);
    /* Maps 0 and 1 are on w1 only, map 2 on w0 only. */
    loc.holds[0][w1] = loc.holds[1][w1] = 1;
    loc.holds[2][w0] = 1;
    int j = qn_sched_job_add(s, 1000, 3, 1, 4);
    loc.job = j;
    qn_action got[2] = {pop(s), pop(s)};
    expect_none(s);
    for (int i = 0; i < 2; i++) {
        cr_assert_eq(got[i].act, QN_ACT_ASSIGN);
        cr_assert_eq(got[i].kind, QN_MAP);
        cr_assert_eq(got[i].local, 1, "map %u ran remotely on worker %d",
                     got[i].task, got[i].worker);
        if (got[i].worker == w0)
            cr_assert_eq(got[i].task, 2, "w0 got map %u, not the one it holds",
                         got[i].task);
        else
            cr_assert_eq(got[i].task, 0);
    }
    /* w0 is free again: map 1 is w1's, and has not waited long enough. */
    cr_assert_eq(qn_sched_done(s, 1500, j, QN_MAP, 2, 1), QN_SCHED_ACCEPTED);
    expect_none(s);
    /* w1 is free: it takes map 1, locally. No map is pending then: the
     * reduce takes idle w0. */
    cr_assert_eq(qn_sched_done(s, 1600, j, QN_MAP, 0, 1), QN_SCHED_ACCEPTED);
    qn_action a = pop(s);
    expect_act(a, QN_ACT_ASSIGN, w1, j, QN_MAP, 1, 1);
    cr_assert_eq(a.local, 1);
    a = pop(s);
    expect_act(a, QN_ACT_ASSIGN, w0, j, QN_REDUCE, 0, 1);
    cr_assert_eq(a.local, QN_LOC_ANY);
    expect_none(s);
    check_counts(s, j);
}

Test(sched, worker_holding_nothing_gets_a_remote_map_after_locality_wait)
{
    static fake_loc loc;
    memset(&loc, 0, sizeof loc);
    qn_sched *s = new_sched_cfg(&LOC_CFG);
    qn_sched_set_locality(s, fake_local, &loc);
    int w0 = qn_sched_worker_join(s, 1000, 1);
    int w1 = qn_sched_worker_join(s, 1000, 1);
    loc.holds[0][w0] = loc.holds[1][w0] = 1; /* w1 holds nothing */
    int j = qn_sched_job_add(s, 1000, 2, 1, 4);
    loc.job = j;
    qn_action a = pop(s);
    expect_act(a, QN_ACT_ASSIGN, w0, j, QN_MAP, 0, 1);
    cr_assert_eq(a.local, 1);
    expect_none(s);
    /* The master must wake up when map 1 may run remotely. */
    cr_assert_eq(qn_sched_deadline(s), 1000 + LOC_CFG.locality_wait_ms);
    for (int64_t now = 1500; now < 1000 + LOC_CFG.locality_wait_ms;
         now += 500) {
        beat(s, now, 2);
        qn_sched_tick(s, now);
        expect_none(s);
        expect_future_deadline(s, now);
    }
    qn_sched_tick(s, 3999);
    expect_none(s);
    qn_sched_tick(s, 4000);
    a = pop(s);
    expect_act(a, QN_ACT_ASSIGN, w1, j, QN_MAP, 1, 1);
    cr_assert_eq(a.local, 0, "the remote map is marked local %d", a.local);
    expect_none(s);
    expect_future_deadline(s, 4000);
    check_counts(s, j);
}

/*
 * A map waiting for a free holder is pending too: no reduce starts while
 * it waits, though a worker is idle. Once it may run remotely (after
 * locality_wait_ms) and does, no map is pending: the reduce takes the
 * slot left, while both maps still run.
 */
Test(sched, reduces_wait_while_a_map_waits_for_a_holder)
{
    static fake_loc loc;
    memset(&loc, 0, sizeof loc);
    qn_sched *s = new_sched_cfg(&LOC_CFG);
    qn_sched_set_locality(s, fake_local, &loc);
    int w0 = qn_sched_worker_join(s, 1000, 2);
    int w1 = qn_sched_worker_join(s, 1000, 1);
    loc.holds[0][w1] = loc.holds[1][w1] = 1; /* w0 holds nothing */
    int j = qn_sched_job_add(s, 1000, 2, 1, 4);
    loc.job = j;
    qn_action a = pop(s);
    expect_act(a, QN_ACT_ASSIGN, w1, j, QN_MAP, 0, 1);
    cr_assert_eq(a.local, 1);
    expect_none(s);
    cr_assert_eq(qn_sched_deadline(s), 1000 + LOC_CFG.locality_wait_ms);
    for (int64_t now = 1500; now < 1000 + LOC_CFG.locality_wait_ms;
         now += 500) {
        beat(s, now, 2);
        qn_sched_tick(s, now);
        expect_none(s);
        cr_assert_eq(qn_sched_worker_busy(s, w0), 0);
        cr_assert_eq(qn_sched_task(s, j, QN_REDUCE, 0).state, QN_TASK_PENDING);
    }
    beat(s, 4000, 2);
    qn_sched_tick(s, 4000);
    a = pop(s);
    expect_act(a, QN_ACT_ASSIGN, w0, j, QN_MAP, 1, 1);
    cr_assert_eq(a.local, 0);
    a = pop(s);
    expect_act(a, QN_ACT_ASSIGN, w0, j, QN_REDUCE, 0, 1);
    cr_assert_eq(a.local, QN_LOC_ANY);
    expect_none(s);
    qn_job_info ji = qn_sched_job(s, j);
    cr_assert_eq(ji.maps_running, 2);
    cr_assert_eq(ji.reduces_running, 1);
    check_counts(s, j);
}

Test(sched, path_inputs_run_anywhere_at_once)
{
    static fake_loc loc;
    memset(&loc, 0, sizeof loc);
    loc.any[0] = loc.any[1] = 1;
    qn_sched *s = new_sched_cfg(&LOC_CFG);
    qn_sched_set_locality(s, fake_local, &loc);
    qn_sched_worker_join(s, 1000, 2);
    int j = qn_sched_job_add(s, 1000, 2, 1, 4);
    loc.job = j;
    cr_assert_eq(pop_assign(s, j, QN_MAP, 0, 1).local, QN_LOC_ANY);
    cr_assert_eq(pop_assign(s, j, QN_MAP, 1, 1).local, QN_LOC_ANY);
    expect_none(s);
}

/*
 * Two one-slot workers, each holding one of a job's two maps; the holder
 * of map 1 leaves while running it, and map 0 finishes at 2500, so map 1
 * waits with no live holder from 2000 on. Returns the job.
 */
static int s_map_loses_its_holders(qn_sched *s, fake_loc *loc, int *w0, int *w1)
{
    memset(loc, 0, sizeof *loc);
    qn_sched_set_locality(s, fake_local, loc);
    *w0 = qn_sched_worker_join(s, 1000, 1);
    *w1 = qn_sched_worker_join(s, 1000, 1);
    loc->holds[0][*w0] = 1;
    loc->holds[1][*w1] = 1;
    int j = qn_sched_job_add(s, 1000, 2, 1, 4);
    loc->job = j;
    qn_action got[2] = {pop(s), pop(s)};
    expect_none(s);
    for (int i = 0; i < 2; i++) {
        cr_assert_eq(got[i].act, QN_ACT_ASSIGN);
        cr_assert_eq(got[i].local, 1);
        cr_assert_eq(got[i].task, got[i].worker == *w0 ? 0u : 1u);
    }
    qn_sched_worker_leave(s, 2000, *w1);
    expect_act(pop(s), QN_ACT_WORKER_DEAD, *w1, -1, QN_MAP, 0, 0);
    expect_act(pop(s), QN_ACT_ATTEMPT_LOST, *w1, j, QN_MAP, 1, 1);
    expect_none(s);
    cr_assert_eq(qn_sched_done(s, 2500, j, QN_MAP, 0, 1), QN_SCHED_ACCEPTED);
    expect_none(s); /* w0 is free, but nobody alive holds map 1 */
    return j;
}

Test(sched, map_without_live_holder_fails_its_job_after_shard_wait)
{
    static fake_loc loc;
    qn_sched *s = new_sched_cfg(&LOC_CFG);
    int w0, w1;
    int j = s_map_loses_its_holders(s, &loc, &w0, &w1);
    int64_t fail_at = 2000 + LOC_CFG.shard_wait_ms;
    for (int64_t now = 3000; now < fail_at; now += 1000) {
        beat_alive(s, now, 2);
        qn_sched_tick(s, now);
        expect_none(s);
        expect_future_deadline(s, now);
        cr_assert_leq(qn_sched_deadline(s), fail_at);
    }
    beat_alive(s, fail_at - 1, 2);
    qn_sched_tick(s, fail_at - 1);
    expect_none(s);
    qn_sched_tick(s, fail_at);
    qn_action a = pop(s);
    expect_act(a, QN_ACT_JOB_FAILED, -1, j, QN_MAP, 1, 0);
    cr_assert_eq(a.reason, QN_FAIL_NO_HOLDER);
    expect_none(s);
    cr_assert_eq(qn_sched_job(s, j).state, QN_JOB_FAILED);
    expect_future_deadline(s, fail_at);
    cr_assert_eq(qn_sched_worker_busy(s, w0), 0);
}

Test(sched, holder_returning_before_shard_wait_lets_the_map_run)
{
    static fake_loc loc;
    qn_sched *s = new_sched_cfg(&LOC_CFG);
    int w0, w1;
    int j = s_map_loses_its_holders(s, &loc, &w0, &w1);
    /* The worker comes back under a new handle; until it says what it
     * holds, the map still waits. */
    int w2 = qn_sched_worker_join(s, 3000, 1);
    expect_none(s);
    loc.holds[1][w2] = 1;
    qn_sched_locality_changed(s, 3100);
    qn_action a = pop(s);
    expect_act(a, QN_ACT_ASSIGN, w2, j, QN_MAP, 1, 2);
    cr_assert_eq(a.local, 1);
    /* No map is pending now: the reduce takes idle w0 and waits. */
    expect_act(pop(s), QN_ACT_ASSIGN, w0, j, QN_REDUCE, 0, 1);
    expect_none(s);
    /* Past the shard wait, nothing fails (nor does the waiting reduce
     * time out). */
    for (int64_t now = 4000; now <= 30000; now += 1000) {
        beat_alive(s, now, 3);
        qn_sched_tick(s, now);
        expect_none(s);
        expect_future_deadline(s, now);
    }
    cr_assert_eq(qn_sched_job(s, j).state, QN_JOB_RUNNING);
    cr_assert_eq(qn_sched_done(s, 30500, j, QN_MAP, 1, 2), QN_SCHED_ACCEPTED);
    expect_none(s);
    cr_assert_eq(qn_sched_attempt_worker(s, j, QN_REDUCE, 0, 1), w0);
    (void)w1;
    check_counts(s, j);
}

/*
 * A map that has waited locality_wait_ms still goes to a free worker
 * holding its input when there is one (here its holder w2, back at the
 * same moment as a free non-holder w0), not to whichever free worker the
 * rotation comes to first.
 */
Test(sched, free_holder_is_preferred_to_a_remote_worker_after_the_wait)
{
    static fake_loc loc;
    qn_sched *s = new_sched_cfg(&LOC_CFG);
    int w0, w1;
    int j = s_map_loses_its_holders(s, &loc, &w0, &w1);
    int w2 = qn_sched_worker_join(s, 10000, 1); /* past locality_wait */
    expect_none(s);
    loc.holds[1][w2] = 1;
    qn_sched_locality_changed(s, 10100);
    qn_action a = pop(s);
    cr_assert_eq(a.act, QN_ACT_ASSIGN);
    cr_assert_eq(a.worker, w2,
                 "map 1 streamed to worker %d (local %d) while its holder "
                 "%d was free",
                 a.worker, a.local, w2);
    expect_act(a, QN_ACT_ASSIGN, w2, j, QN_MAP, 1, 2);
    cr_assert_eq(a.local, 1);
    /* Then, no map pending, the reduce takes w0. */
    expect_act(pop(s), QN_ACT_ASSIGN, w0, j, QN_REDUCE, 0, 1);
    expect_none(s);
}

/*
 * The daemon's loop: tick only at the deadlines the scheduler gives.
 * Map 0 runs on its holder w1; map 1 (also w1's) runs remotely on w0 once
 * it waited locality_wait_ms; map 2, which nobody holds, fails the job
 * after shard_wait_ms. Every deadline is in the future.
 */
Test(sched, deadlines_wake_the_master_for_locality_and_shard_waits)
{
    static fake_loc loc;
    memset(&loc, 0, sizeof loc);
    qn_sched *s = new_sched_cfg(&LOC_CFG);
    qn_sched_set_locality(s, fake_local, &loc);
    int w0 = qn_sched_worker_join(s, 1000, 1);
    int w1 = qn_sched_worker_join(s, 1000, 1);
    loc.holds[0][w1] = loc.holds[1][w1] = 1;
    int j = qn_sched_job_add(s, 1000, 3, 1, 4);
    loc.job = j;
    qn_action a = pop(s);
    expect_act(a, QN_ACT_ASSIGN, w1, j, QN_MAP, 0, 1);
    cr_assert_eq(a.local, 1);
    expect_none(s);

    int64_t now = 1000, remote_at = -1, failed_at = -1;
    for (int steps = 0; failed_at < 0; steps++) {
        cr_assert_lt(steps, 1000, "no failure by %lld", (long long)now);
        int64_t d = qn_sched_deadline(s);
        cr_assert_gt(d, now, "deadline %lld at or before now %lld",
                     (long long)d, (long long)now);
        cr_assert_lt(d, INT64_MAX);
        now = d;
        beat_alive(s, now, 2);
        qn_sched_tick(s, now);
        while (qn_sched_next_action(s, &a)) {
            if (a.act == QN_ACT_ASSIGN) {
                cr_assert_eq(remote_at, -1, "a second assignment");
                expect_act(a, QN_ACT_ASSIGN, w0, j, QN_MAP, 1, 1);
                cr_assert_eq(a.local, 0);
                remote_at = now;
            } else if (a.act == QN_ACT_CANCEL) {
                cr_assert_eq(a.reason, QN_CANCEL_JOB_END);
            } else {
                expect_act(a, QN_ACT_JOB_FAILED, -1, j, QN_MAP, 2, 0);
                cr_assert_eq(a.reason, QN_FAIL_NO_HOLDER);
                failed_at = now;
            }
        }
    }
    cr_assert_eq(remote_at, 1000 + LOC_CFG.locality_wait_ms);
    cr_assert_eq(failed_at, 1000 + LOC_CFG.shard_wait_ms);
    expect_future_deadline(s, now);
}

/* ---- fairness between jobs ----------------------------------------------- */

Test(sched, second_job_gets_the_first_slot_that_frees)
{
    static fake_loc loc;
    memset(&loc, 0, sizeof loc);
    qn_sched *s = new_sched_cfg(&LOC_CFG);
    qn_sched_set_locality(s, fake_local, &loc);
    loc.job = -1; /* every input is a path */
    int w = qn_sched_worker_join(s, 1000, 2);
    int a = qn_sched_job_add(s, 1000, 6, 1, 4);
    pop_assign(s, a, QN_MAP, 0, 1);
    pop_assign(s, a, QN_MAP, 1, 1);
    expect_none(s);
    int b = qn_sched_job_add(s, 1100, 2, 1, 4);
    expect_none(s); /* no free slot */
    /* The first free slot goes to b (no task running), not to a. */
    cr_assert_eq(qn_sched_done(s, 1200, a, QN_MAP, 0, 1), QN_SCHED_ACCEPTED);
    expect_act(pop(s), QN_ACT_ASSIGN, w, b, QN_MAP, 0, 1);
    expect_none(s);
    /* One running each: a tie goes to the older job. */
    cr_assert_eq(qn_sched_done(s, 1300, a, QN_MAP, 1, 1), QN_SCHED_ACCEPTED);
    expect_act(pop(s), QN_ACT_ASSIGN, w, a, QN_MAP, 2, 1);
    expect_none(s);
    cr_assert_eq(qn_sched_done(s, 1400, a, QN_MAP, 2, 1), QN_SCHED_ACCEPTED);
    expect_act(pop(s), QN_ACT_ASSIGN, w, a, QN_MAP, 3, 1);
    expect_none(s);
    /* b's map ends: b has none running, so b's next map goes first. */
    cr_assert_eq(qn_sched_done(s, 1500, b, QN_MAP, 0, 1), QN_SCHED_ACCEPTED);
    expect_act(pop(s), QN_ACT_ASSIGN, w, b, QN_MAP, 1, 1);
    expect_none(s);
    cr_assert_eq(qn_sched_job(s, a).maps_running, 1);
    cr_assert_eq(qn_sched_job(s, b).maps_running, 1);
    check_counts(s, a);
    check_counts(s, b);
}

/* An attempt spoiled by a corrupt input counts as lost: not against the
 * task's max_attempts, nor its worker, which may run it again. */
Test(sched, a_spoiled_attempt_is_not_a_failure)
{
    qn_sched *s = new_sched();
    int w0 = qn_sched_worker_join(s, 0, 1);
    int w1 = qn_sched_worker_join(s, 0, 1);
    int j = qn_sched_job_add(s, 0, 1, 1, 1);
    expect_act(pop(s), QN_ACT_ASSIGN, w0, j, QN_MAP, 0, 1);
    expect_act(pop(s), QN_ACT_ASSIGN, w1, j, QN_REDUCE, 0, 1);
    expect_none(s);
    cr_assert_eq(qn_sched_done(s, 10, j, QN_MAP, 0, 1), QN_SCHED_ACCEPTED);
    expect_none(s);
    /* The reduce finds map 0's output corrupt: the map runs again, and
     * the reduce's attempt ends spoiled. With one attempt a task, a
     * failure would have failed the job. */
    cr_assert_eq(qn_sched_map_lost(s, 20, j, 0, 1), 0);
    expect_act(pop(s), QN_ACT_MAP_RERUN, w0, j, QN_MAP, 0, 1);
    expect_act(pop(s), QN_ACT_ASSIGN, w0, j, QN_MAP, 0, 2);
    expect_none(s);
    cr_assert_eq(qn_sched_spoiled(s, 30, j, QN_REDUCE, 0, 1),
                 QN_SCHED_ACCEPTED);
    cr_assert_eq(qn_sched_spoiled(s, 30, j, QN_REDUCE, 0, 1), QN_SCHED_STALE);
    /* It runs again on the same worker (no failure to avoid there). */
    expect_act(pop(s), QN_ACT_ASSIGN, w1, j, QN_REDUCE, 0, 2);
    expect_none(s);
    qn_task_info ti = qn_sched_task(s, j, QN_REDUCE, 0);
    cr_assert_eq(ti.failures, 0);
    cr_assert_eq(ti.losses, 1);
    cr_assert_eq(qn_sched_job(s, j).state, QN_JOB_RUNNING);
    check_counts(s, j);
}

/* ---- a job restored by a restarted master ---------------------------------
 */

Test(sched, a_restored_job_keeps_its_done_maps_and_numbers_attempts_on)
{
    qn_sched *s = new_sched();
    int w = qn_sched_worker_join(s, 0, 1);
    /* Map 0 was done by attempt 2 (on w); map 1 had one attempt, lost with
     * the old master; map 2 had not started. */
    qn_task_restore maps[3] = {
        {.attempts = 2, .done_attempt = 2, .done_worker = w},
        {.attempts = 1, .done_worker = -1},
        {.done_worker = -1}};
    int j = qn_sched_job_restore(s, 0, 3, 1, 4, QN_JOB_RUNNING, maps, NULL);
    cr_assert_geq(j, 0);
    cr_assert_eq(qn_sched_job(s, j).maps_done, 1);
    cr_assert_eq(qn_sched_task(s, j, QN_MAP, 0).state, QN_TASK_DONE);
    /* The map that ran before goes first, as attempt 2: not run again is
     * map 0, and attempt 1 of map 1 is not current. */
    pop_assign(s, j, QN_MAP, 1, 2);
    expect_none(s);
    cr_assert_eq(qn_sched_done(s, 5, j, QN_MAP, 1, 1), QN_SCHED_STALE);
    cr_assert_eq(qn_sched_done(s, 10, j, QN_MAP, 1, 2), QN_SCHED_ACCEPTED);
    pop_assign(s, j, QN_MAP, 2, 1);
    cr_assert_eq(qn_sched_done(s, 20, j, QN_MAP, 2, 1), QN_SCHED_ACCEPTED);
    pop_assign(s, j, QN_REDUCE, 0, 1);
    check_counts(s, j);
    cr_assert_eq(qn_sched_done(s, 30, j, QN_REDUCE, 0, 1), QN_SCHED_ACCEPTED);
    expect_act(pop(s), QN_ACT_JOB_DONE, -1, j, QN_MAP, 0, 0);
    expect_none(s);
    cr_assert_eq(qn_sched_task(s, j, QN_MAP, 0).attempts, 2, "map 0 ran again");
}

Test(sched, a_restored_ended_job_is_history_and_runs_nothing)
{
    qn_sched *s = new_sched();
    qn_sched_worker_join(s, 0, 2);
    qn_task_restore maps[2] = {
        {.attempts = 1, .done_attempt = 1, .done_worker = -1},
        {.attempts = 3, .done_worker = -1}};
    int j = qn_sched_job_restore(s, 0, 2, 1, 3, QN_JOB_FAILED, maps, NULL);
    cr_assert_geq(j, 0);
    expect_none(s);
    qn_job_info ji = qn_sched_job(s, j);
    cr_assert_eq(ji.state, QN_JOB_FAILED);
    cr_assert_eq(ji.maps_done, 1);
    cr_assert_eq(ji.reduces_done, 0);
    cr_assert_eq(qn_sched_task(s, j, QN_MAP, 1).attempts, 3);
    /* A job added next runs, and gets the next handle. */
    int k = qn_sched_job_add(s, 0, 1, 1, 1);
    cr_assert_eq(k, j + 1);
    pop_assign(s, k, QN_MAP, 0, 1);
}

Test(sched, a_restored_running_job_with_every_reduce_done_ends)
{
    qn_sched *s = new_sched();
    qn_sched_worker_join(s, 0, 1);
    qn_task_restore maps[1] = {
        {.attempts = 1, .done_attempt = 1, .done_worker = -1}};
    qn_task_restore reds[2] = {
        {.attempts = 1, .done_attempt = 1, .done_worker = -1},
        {.attempts = 2, .done_attempt = 2, .done_worker = -1}};
    int j = qn_sched_job_restore(s, 0, 1, 2, 3, QN_JOB_RUNNING, maps, reds);
    expect_act(pop(s), QN_ACT_JOB_DONE, -1, j, QN_MAP, 0, 0);
    expect_none(s);
    cr_assert_eq(qn_sched_job(s, j).state, QN_JOB_DONE);
}

Test(sched, refuses_a_restored_task_done_by_an_attempt_never_started)
{
    qn_sched *s = new_sched();
    qn_sched_worker_join(s, 0, 1);
    qn_task_restore maps[1] = {
        {.attempts = 1, .done_attempt = 2, .done_worker = -1}};
    cr_assert_eq(
        qn_sched_job_restore(s, 0, 1, 1, 3, QN_JOB_RUNNING, maps, NULL), -1);
    cr_assert_eq(
        qn_sched_job_restore(s, 0, 0, 1, 3, QN_JOB_RUNNING, NULL, NULL), -1,
        "no maps");
    expect_none(s);
    cr_assert_eq(qn_sched_job_add(s, 0, 1, 1, 1), 0, "no job was added");
}

Test(sched, a_held_scheduler_starts_nothing_until_its_grace_ends)
{
    qn_sched *s = new_sched();
    qn_sched_hold(s, 600);
    int w = qn_sched_worker_join(s, 0, 2);
    int j = qn_sched_job_add(s, 0, 2, 1, 3);
    expect_none(s);
    cr_assert_eq(qn_sched_deadline(s), 600, "the grace's end is a deadline");
    qn_sched_tick(s, 599);
    expect_none(s);
    qn_sched_tick(s, 600);
    expect_act(pop(s), QN_ACT_ASSIGN, w, j, QN_MAP, 0, 1);
    expect_act(pop(s), QN_ACT_ASSIGN, w, j, QN_MAP, 1, 1);
    expect_none(s);
}

Test(sched, adopts_an_attempt_a_restarted_master_had_started)
{
    qn_sched *s = new_sched();
    qn_sched_hold(s, 600);
    int w0 = qn_sched_worker_join(s, 0, 1);
    int w1 = qn_sched_worker_join(s, 0, 1);
    /* Map 0 is done; map 1 had 2 attempts; map 2 one; map 3 none. */
    qn_task_restore maps[4] = {
        {.attempts = 1, .done_attempt = 1, .done_worker = w0},
        {.attempts = 2, .done_worker = -1},
        {.attempts = 1, .done_worker = -1},
        {.done_worker = -1}};
    int j = qn_sched_job_restore(s, 0, 4, 1, 3, QN_JOB_RUNNING, maps, NULL);
    cr_assert_geq(j, 0);
    cr_assert_eq(qn_sched_adopt(s, 10, j, QN_MAP, 0, 1, w0), -1, "a done task");
    cr_assert_eq(qn_sched_adopt(s, 10, j, QN_MAP, 1, 3, w0), -1,
                 "an attempt never started");
    cr_assert_eq(qn_sched_adopt(s, 10, j, QN_MAP, 3, 1, w0), -1,
                 "a task never started");
    cr_assert_eq(qn_sched_adopt(s, 10, j, QN_MAP, 1, 2, w0), 0);
    cr_assert_eq(qn_sched_adopt(s, 10, j, QN_MAP, 1, 2, w1), -1,
                 "the same attempt twice");
    cr_assert_eq(qn_sched_attempt_worker(s, j, QN_MAP, 1, 2), w0);
    cr_assert_eq(qn_sched_worker_busy(s, w0), 1);
    /* At the grace's end the tasks no worker reported start, and the
     * adopted one does not: map 2 (which ran before) first, as attempt 2,
     * on the free worker; map 3 waits for a slot. */
    qn_sched_tick(s, 600);
    expect_act(pop(s), QN_ACT_ASSIGN, w1, j, QN_MAP, 2, 2);
    expect_none(s);
    /* The adopted attempt's success counts. */
    cr_assert_eq(qn_sched_done(s, 700, j, QN_MAP, 1, 2), QN_SCHED_ACCEPTED);
    expect_act(pop(s), QN_ACT_ASSIGN, w0, j, QN_MAP, 3, 1);
    expect_none(s);
    check_counts(s, j);
    /* A worker that died cannot be given an attempt. */
    qn_sched_worker_leave(s, 800, w0);
    while (qn_sched_next_action(s, &(qn_action){0}))
        ;
    cr_assert_eq(qn_sched_adopt(s, 800, j, QN_MAP, 3, 1, w0), -1,
                 "a dead worker");
}

/* ---- restarts and map outputs taken back --------------------------------- */

/*
 * A worker whose process restarted loses only what it ran: its running map
 * and reduce are lost (QN_LOST_RESTARTED, a loss, not a failure) and run
 * again at once, on it too, as it is still alive; the map it completed
 * stays done (no MAP_RERUN), and the other worker's attempts go on.
 */
Test(sched, restart_loses_only_running_attempts_and_keeps_done_maps)
{
    qn_sched *s = new_sched();
    int w0 = qn_sched_worker_join(s, 0, 2);
    int w1 = qn_sched_worker_join(s, 0, 2);
    int j = qn_sched_job_add(s, 0, 3, 2, 4);
    expect_act(pop(s), QN_ACT_ASSIGN, w0, j, QN_MAP, 0, 1);
    expect_act(pop(s), QN_ACT_ASSIGN, w1, j, QN_MAP, 1, 1);
    expect_act(pop(s), QN_ACT_ASSIGN, w0, j, QN_MAP, 2, 1);
    expect_act(pop(s), QN_ACT_ASSIGN, w1, j, QN_REDUCE, 0, 1);
    expect_none(s);
    /* Map 0 is done on w0, whose free slot goes to reduce 1. */
    cr_assert_eq(qn_sched_done(s, 100, j, QN_MAP, 0, 1), QN_SCHED_ACCEPTED);
    expect_act(pop(s), QN_ACT_ASSIGN, w0, j, QN_REDUCE, 1, 1);
    expect_none(s);

    /* w0 restarts: map 2 and reduce 1 (in either order) are lost. */
    qn_sched_worker_restarted(s, 200, w0);
    int lost_map = 0, lost_reduce = 0;
    for (int i = 0; i < 2; i++) {
        qn_action l = pop(s);
        cr_assert_eq(l.act, QN_ACT_ATTEMPT_LOST, "action %d", (int)l.act);
        cr_assert_eq(l.worker, w0);
        cr_assert_eq(l.job, j);
        cr_assert_eq(l.attempt, 1);
        cr_assert_eq(l.reason, QN_LOST_RESTARTED);
        if (l.kind == QN_MAP && l.task == 2)
            lost_map++;
        else if (l.kind == QN_REDUCE && l.task == 1)
            lost_reduce++;
        else
            cr_assert_fail("lost kind %d task %u", (int)l.kind, l.task);
    }
    cr_assert_eq(lost_map, 1);
    cr_assert_eq(lost_reduce, 1);
    /* Both run again at once on the worker, which is still alive: the map
     * first. Map 0 does not run again. */
    expect_act(pop(s), QN_ACT_ASSIGN, w0, j, QN_MAP, 2, 2);
    expect_act(pop(s), QN_ACT_ASSIGN, w0, j, QN_REDUCE, 1, 2);
    expect_none(s);

    cr_assert(qn_sched_worker_alive(s, w0));
    cr_assert_eq(qn_sched_worker_busy(s, w0), 2);
    cr_assert_eq(qn_sched_worker_busy(s, w1), 2);
    qn_task_info m0 = qn_sched_task(s, j, QN_MAP, 0);
    cr_assert_eq(m0.state, QN_TASK_DONE);
    cr_assert_eq(m0.attempt, 1);
    cr_assert_eq(m0.worker, w0);
    cr_assert_eq(qn_sched_job(s, j).maps_done, 1);
    qn_task_info m2 = qn_sched_task(s, j, QN_MAP, 2);
    cr_assert_eq(m2.losses, 1);
    cr_assert_eq(m2.failures, 0);
    qn_task_info r1 = qn_sched_task(s, j, QN_REDUCE, 1);
    cr_assert_eq(r1.losses, 1);
    cr_assert_eq(r1.failures, 0);
    /* w1's attempts were not touched. */
    cr_assert_eq(qn_sched_attempt_worker(s, j, QN_MAP, 1, 1), w1);
    cr_assert_eq(qn_sched_attempt_worker(s, j, QN_REDUCE, 0, 1), w1);
    check_counts(s, j);
    /* A late report from the old process is stale. */
    cr_assert_eq(qn_sched_done(s, 250, j, QN_MAP, 2, 1), QN_SCHED_STALE);
    expect_none(s);

    /* The job ends with map 0's first output: no map runs again. */
    cr_assert_eq(qn_sched_done(s, 300, j, QN_MAP, 1, 1), QN_SCHED_ACCEPTED);
    cr_assert_eq(qn_sched_done(s, 400, j, QN_MAP, 2, 2), QN_SCHED_ACCEPTED);
    cr_assert_eq(qn_sched_done(s, 500, j, QN_REDUCE, 0, 1), QN_SCHED_ACCEPTED);
    expect_none(s);
    cr_assert_eq(qn_sched_done(s, 600, j, QN_REDUCE, 1, 2), QN_SCHED_ACCEPTED);
    expect_act(pop(s), QN_ACT_JOB_DONE, -1, j, QN_MAP, 0, 0);
    expect_none(s);
    cr_assert_eq(qn_sched_task(s, j, QN_MAP, 0).attempts, 1);

    /* A dead worker does not restart: nothing happens. */
    qn_sched_worker_leave(s, 700, w1);
    expect_act(pop(s), QN_ACT_WORKER_DEAD, w1, -1, QN_MAP, 0, 0);
    expect_none(s);
    qn_sched_worker_restarted(s, 800, w1);
    expect_none(s);
    cr_assert_not(qn_sched_worker_alive(s, w1));
}

/*
 * A worker given up for dead comes back (the same machine, joining as a
 * new handle) with the map outputs it made. Each is taken back while its
 * map is not done again: a map still waiting to run again is simply done,
 * one running again has that attempt cancelled (LOST_RACE), and one made
 * again already keeps its new output (-1). With every map back the job
 * completes without another map attempt.
 */
Test(sched, take_back_after_a_death_spares_maps_not_yet_made_again)
{
    qn_sched *s = new_sched();
    int w0 = qn_sched_worker_join(s, 0, 4);
    int w1 = qn_sched_worker_join(s, 0, 1);
    int j = qn_sched_job_add(s, 0, 5, 2, 4);
    expect_act(pop(s), QN_ACT_ASSIGN, w0, j, QN_MAP, 0, 1);
    expect_act(pop(s), QN_ACT_ASSIGN, w0, j, QN_MAP, 1, 1);
    expect_act(pop(s), QN_ACT_ASSIGN, w0, j, QN_MAP, 2, 1);
    expect_act(pop(s), QN_ACT_ASSIGN, w1, j, QN_MAP, 3, 1);
    expect_act(pop(s), QN_ACT_ASSIGN, w0, j, QN_MAP, 4, 1);
    expect_none(s);
    /* w0 makes maps 0, 1, 2 and 4; the reduces take its free slots and
     * wait for map 3, which runs on w1. */
    cr_assert_eq(qn_sched_done(s, 100, j, QN_MAP, 0, 1), QN_SCHED_ACCEPTED);
    expect_act(pop(s), QN_ACT_ASSIGN, w0, j, QN_REDUCE, 0, 1);
    cr_assert_eq(qn_sched_done(s, 110, j, QN_MAP, 1, 1), QN_SCHED_ACCEPTED);
    expect_act(pop(s), QN_ACT_ASSIGN, w0, j, QN_REDUCE, 1, 1);
    cr_assert_eq(qn_sched_done(s, 120, j, QN_MAP, 2, 1), QN_SCHED_ACCEPTED);
    cr_assert_eq(qn_sched_done(s, 130, j, QN_MAP, 4, 1), QN_SCHED_ACCEPTED);
    expect_none(s);

    /* w0 falls silent and is declared dead: its reduces are lost and its
     * four maps run again. */
    cr_assert_eq(qn_sched_worker_seen(s, 9000, w1), 0);
    qn_sched_tick(s, CFG.dead_ms);
    expect_act(pop(s), QN_ACT_WORKER_DEAD, w0, -1, QN_MAP, 0, 0);
    for (int i = 0; i < 2; i++) {
        qn_action l = pop(s);
        cr_assert_eq(l.act, QN_ACT_ATTEMPT_LOST);
        cr_assert_eq(l.kind, QN_REDUCE);
        cr_assert_eq(l.reason, QN_LOST_WORKER_DEAD);
    }
    const unsigned gone[] = {0, 1, 2, 4};
    for (int i = 0; i < 4; i++) {
        qn_action re = pop(s);
        expect_act(re, QN_ACT_MAP_RERUN, w0, j, QN_MAP, gone[i], 1);
        cr_assert_eq(re.reason, QN_RERUN_DEAD);
    }
    expect_none(s);
    cr_assert_eq(qn_sched_job(s, j).maps_done, 0);

    /* w1 makes map 3, then map 0 again, and starts on map 1 again. */
    cr_assert_eq(qn_sched_done(s, 10100, j, QN_MAP, 3, 1), QN_SCHED_ACCEPTED);
    expect_act(pop(s), QN_ACT_ASSIGN, w1, j, QN_MAP, 0, 2);
    cr_assert_eq(qn_sched_done(s, 10200, j, QN_MAP, 0, 2), QN_SCHED_ACCEPTED);
    expect_act(pop(s), QN_ACT_ASSIGN, w1, j, QN_MAP, 1, 2);
    expect_none(s);

    /* w0's machine joins again as a new handle, which gets map 2 again at
     * once (as the master joins it before taking anything back). Map 4
     * still waits. */
    int w2 = qn_sched_worker_join(s, 10300, 1);
    cr_assert_neq(w2, w0);
    expect_act(pop(s), QN_ACT_ASSIGN, w2, j, QN_MAP, 2, 2);
    expect_none(s);
    cr_assert_eq(qn_sched_task(s, j, QN_MAP, 4).state, QN_TASK_PENDING);

    /* Map 0 was made again: its new output stays in use. */
    cr_assert_eq(qn_sched_take_back(s, 10300, j, 0, 1, w2), -1);
    expect_none(s);
    qn_task_info ti = qn_sched_task(s, j, QN_MAP, 0);
    cr_assert_eq(ti.state, QN_TASK_DONE);
    cr_assert_eq(ti.attempt, 2);
    cr_assert_eq(ti.worker, w1);

    /* Map 4 waited to run again: it is done with the old output, and
     * leaves the queue (nothing starts it later). */
    cr_assert_eq(qn_sched_take_back(s, 10300, j, 4, 1, w2), 0);
    expect_none(s);
    ti = qn_sched_task(s, j, QN_MAP, 4);
    cr_assert_eq(ti.state, QN_TASK_DONE);
    cr_assert_eq(ti.attempt, 1);
    cr_assert_eq(ti.worker, w2);
    cr_assert_eq(ti.attempts, 1);
    cr_assert_eq(qn_sched_job(s, j).maps_done, 3);

    /* Map 1 runs again on w1: that attempt is cancelled, and its slot goes
     * to a reduce, as no map is pending. */
    cr_assert_eq(qn_sched_take_back(s, 10300, j, 1, 1, w2), 0);
    qn_action c = pop(s);
    expect_act(c, QN_ACT_CANCEL, w1, j, QN_MAP, 1, 2);
    cr_assert_eq(c.reason, QN_CANCEL_LOST_RACE);
    expect_act(pop(s), QN_ACT_ASSIGN, w1, j, QN_REDUCE, 0, 2);
    expect_none(s);
    ti = qn_sched_task(s, j, QN_MAP, 1);
    cr_assert_eq(ti.state, QN_TASK_DONE);
    cr_assert_eq(ti.attempt, 1);
    cr_assert_eq(ti.worker, w2);
    cr_assert_eq(qn_sched_done(s, 10350, j, QN_MAP, 1, 2), QN_SCHED_STALE);

    /* Map 2 runs again on w2 itself: cancelled too; the last map is back,
     * and the freed slot takes the other reduce. */
    cr_assert_eq(qn_sched_take_back(s, 10400, j, 2, 1, w2), 0);
    c = pop(s);
    expect_act(c, QN_ACT_CANCEL, w2, j, QN_MAP, 2, 2);
    cr_assert_eq(c.reason, QN_CANCEL_LOST_RACE);
    expect_act(pop(s), QN_ACT_ASSIGN, w2, j, QN_REDUCE, 1, 2);
    expect_none(s);
    qn_job_info ji = qn_sched_job(s, j);
    cr_assert_eq(ji.maps_done, 5);
    cr_assert_eq(ji.maps_running, 0);
    check_counts(s, j);

    /* The reduces finish; no map attempt was started meanwhile. */
    cr_assert_eq(qn_sched_done(s, 11000, j, QN_REDUCE, 0, 2),
                 QN_SCHED_ACCEPTED);
    expect_none(s);
    cr_assert_eq(qn_sched_done(s, 11100, j, QN_REDUCE, 1, 2),
                 QN_SCHED_ACCEPTED);
    expect_act(pop(s), QN_ACT_JOB_DONE, -1, j, QN_MAP, 0, 0);
    expect_none(s);
    const unsigned attempts[] = {2, 2, 2, 1, 1};
    const int where[] = {w1, w2, w2, w1, w2};
    for (unsigned m = 0; m < 5; m++) {
        ti = qn_sched_task(s, j, QN_MAP, m);
        cr_assert_eq(ti.state, QN_TASK_DONE, "map %u", m);
        cr_assert_eq(ti.attempts, attempts[m], "map %u", m);
        cr_assert_eq(ti.worker, where[m], "map %u", m);
    }
}

/*
 * qn_sched_take_back refuses, changing nothing: an output of an attempt
 * never started (0, or past the count), an attempt that runs on another
 * worker, a map already done, a dead or unknown worker, an unknown job or
 * task, and a job that no longer runs.
 */
Test(sched, take_back_refuses_what_it_cannot_take)
{
    qn_sched *s = new_sched();
    int w0 = qn_sched_worker_join(s, 0, 1);
    int w1 = qn_sched_worker_join(s, 0, 1);
    int j = qn_sched_job_add(s, 0, 3, 1, 4);
    expect_act(pop(s), QN_ACT_ASSIGN, w0, j, QN_MAP, 0, 1);
    expect_act(pop(s), QN_ACT_ASSIGN, w1, j, QN_MAP, 1, 1);
    expect_none(s);

    cr_assert_eq(qn_sched_take_back(s, 10, j, 0, 0, w0), -1, "attempt 0");
    cr_assert_eq(qn_sched_take_back(s, 10, j, 0, 2, w0), -1,
                 "attempt 2 never started");
    cr_assert_eq(qn_sched_take_back(s, 10, j, 2, 1, w0), -1,
                 "map 2 never started");
    cr_assert_eq(qn_sched_take_back(s, 10, j, 0, 1, w1), -1,
                 "attempt 1 runs on w0: its output is not on w1");
    cr_assert_eq(qn_sched_take_back(s, 10, j, 3, 1, w0), -1, "no map 3");
    cr_assert_eq(qn_sched_take_back(s, 10, j + 1, 0, 1, w0), -1, "no job");
    cr_assert_eq(qn_sched_take_back(s, 10, j, 0, 1, 7), -1, "no worker 7");
    expect_none(s);
    cr_assert_eq(qn_sched_task(s, j, QN_MAP, 0).state, QN_TASK_RUNNING);

    /* A done map is not taken back, from its worker or any other. */
    cr_assert_eq(qn_sched_done(s, 100, j, QN_MAP, 0, 1), QN_SCHED_ACCEPTED);
    expect_act(pop(s), QN_ACT_ASSIGN, w0, j, QN_MAP, 2, 1);
    expect_none(s);
    cr_assert_eq(qn_sched_take_back(s, 110, j, 0, 1, w0), -1, "done");
    cr_assert_eq(qn_sched_take_back(s, 110, j, 0, 1, w1), -1, "done");
    expect_none(s);

    /* w1 dies running map 1, which waits for a slot: attempt 1 ran and no
     * longer runs, yet its output is not taken from the dead worker. */
    qn_sched_worker_leave(s, 200, w1);
    expect_act(pop(s), QN_ACT_WORKER_DEAD, w1, -1, QN_MAP, 0, 0);
    qn_action l = pop(s);
    expect_act(l, QN_ACT_ATTEMPT_LOST, w1, j, QN_MAP, 1, 1);
    cr_assert_eq(l.reason, QN_LOST_WORKER_DEAD);
    expect_none(s);
    cr_assert_eq(qn_sched_take_back(s, 210, j, 1, 1, w1), -1, "dead worker");
    expect_none(s);
    cr_assert_eq(qn_sched_task(s, j, QN_MAP, 1).state, QN_TASK_PENDING);
    cr_assert_eq(qn_sched_job(s, j).maps_done, 1);
    check_counts(s, j);

    /* Once the job is cancelled, nothing is taken back (from live w0, as
     * the output of an attempt that started and is not done). */
    cr_assert_eq(qn_sched_job_cancel(s, 300, j), 0);
    qn_action c = pop(s);
    expect_act(c, QN_ACT_CANCEL, w0, j, QN_MAP, 2, 1);
    cr_assert_eq(c.reason, QN_CANCEL_JOB_END);
    expect_none(s);
    cr_assert_eq(qn_sched_take_back(s, 310, j, 1, 1, w0), -1, "cancelled");
    expect_none(s);
    cr_assert_eq(qn_sched_task(s, j, QN_MAP, 1).state, QN_TASK_PENDING);
    cr_assert_eq(qn_sched_job(s, j).maps_done, 1);
}

/*
 * Nor once every reduce is done: a map whose output went with its worker
 * and was still running again when the last reduce finished is not
 * needed any more.
 */
Test(sched, take_back_refuses_once_every_reduce_is_done)
{
    qn_sched *s = new_sched();
    qn_action rerun;
    int j = s_done_with_leftover_rerun(s, &rerun);
    while (qn_sched_next_action(s, &(qn_action){0}))
        ;
    cr_assert_eq(qn_sched_job(s, j).state, QN_JOB_DONE);
    cr_assert_eq(qn_sched_job(s, j).reduces_done, 1);
    cr_assert_neq(qn_sched_task(s, j, QN_MAP, 0).state, QN_TASK_DONE);
    cr_assert(qn_sched_worker_alive(s, rerun.worker));
    cr_assert_eq(qn_sched_take_back(s, 500, j, 0, 1, rerun.worker), -1);
    cr_assert_eq(qn_sched_take_back(s, 500, j, 0, 2, rerun.worker), -1);
    expect_none(s);
    cr_assert_neq(qn_sched_task(s, j, QN_MAP, 0).state, QN_TASK_DONE);
    cr_assert_eq(qn_sched_job(s, j).maps_done, 1);
}

/*
 * A restarted worker that did not keep a done map's output: that map, and
 * only it, runs again (QN_RERUN_NOT_KEPT). Only the attempt whose output
 * is in use may be reported so.
 */
Test(sched, map_not_kept_reruns_exactly_that_map)
{
    qn_sched *s = new_sched();
    int w = qn_sched_worker_join(s, 0, 2);
    int j = qn_sched_job_add(s, 0, 3, 1, 4);
    expect_act(pop(s), QN_ACT_ASSIGN, w, j, QN_MAP, 0, 1);
    expect_act(pop(s), QN_ACT_ASSIGN, w, j, QN_MAP, 1, 1);
    cr_assert_eq(qn_sched_done(s, 100, j, QN_MAP, 0, 1), QN_SCHED_ACCEPTED);
    expect_act(pop(s), QN_ACT_ASSIGN, w, j, QN_MAP, 2, 1);
    cr_assert_eq(qn_sched_done(s, 110, j, QN_MAP, 1, 1), QN_SCHED_ACCEPTED);
    expect_act(pop(s), QN_ACT_ASSIGN, w, j, QN_REDUCE, 0, 1);
    cr_assert_eq(qn_sched_map_not_kept(s, 115, j, 2, 1), -1, "map 2 runs");
    cr_assert_eq(qn_sched_done(s, 120, j, QN_MAP, 2, 1), QN_SCHED_ACCEPTED);
    expect_none(s);
    cr_assert_eq(qn_sched_job(s, j).maps_done, 3);

    cr_assert_eq(qn_sched_map_not_kept(s, 200, j, 1, 2), -1, "not attempt 2");
    cr_assert_eq(qn_sched_map_not_kept(s, 200, j, 3, 1), -1, "no map 3");
    cr_assert_eq(qn_sched_map_not_kept(s, 200, j + 1, 1, 1), -1, "no job");
    expect_none(s);

    cr_assert_eq(qn_sched_map_not_kept(s, 300, j, 1, 1), 0);
    qn_action re = pop(s);
    expect_act(re, QN_ACT_MAP_RERUN, w, j, QN_MAP, 1, 1);
    cr_assert_eq(re.reason, QN_RERUN_NOT_KEPT);
    expect_act(pop(s), QN_ACT_ASSIGN, w, j, QN_MAP, 1, 2);
    expect_none(s);
    /* The other maps stay done with their first output; the reduce goes
     * on; running again is neither a failure nor a loss. */
    for (unsigned m = 0; m < 3; m += 2) {
        qn_task_info ti = qn_sched_task(s, j, QN_MAP, m);
        cr_assert_eq(ti.state, QN_TASK_DONE, "map %u", m);
        cr_assert_eq(ti.attempts, 1, "map %u", m);
    }
    qn_task_info ti = qn_sched_task(s, j, QN_MAP, 1);
    cr_assert_eq(ti.state, QN_TASK_RUNNING);
    cr_assert_eq(ti.failures, 0);
    cr_assert_eq(ti.losses, 0);
    qn_job_info ji = qn_sched_job(s, j);
    cr_assert_eq(ji.maps_done, 2);
    cr_assert_eq(ji.reduces_running, 1);
    check_counts(s, j);
    /* It is no longer done: the same report again is refused. */
    cr_assert_eq(qn_sched_map_not_kept(s, 310, j, 1, 1), -1);
    expect_none(s);

    cr_assert_eq(qn_sched_done(s, 400, j, QN_MAP, 1, 2), QN_SCHED_ACCEPTED);
    cr_assert_eq(qn_sched_done(s, 500, j, QN_REDUCE, 0, 1), QN_SCHED_ACCEPTED);
    expect_act(pop(s), QN_ACT_JOB_DONE, -1, j, QN_MAP, 0, 0);
    expect_none(s);
    cr_assert_eq(qn_sched_map_not_kept(s, 600, j, 1, 2), -1, "job is over");
    expect_none(s);
}

/*
 * A waiting reduce gives way to a pending map only for the maps waiting
 * beyond those of its job that run: a running map's slot goes to a waiting
 * map when it ends. Three one-slot workers, four maps, two reduces. The
 * rule before preempted a reduce per pending map even while maps ran:
 * here it would have cancelled one when map 1's output is lost while map 3
 * runs (one waits, one runs: none need give way), and still two when w0
 * dies (three wait, none runs: both reduces give way, as they must).
 */
Test(sched, reduce_gives_way_only_for_maps_waiting_beyond_those_running)
{
    qn_sched *s = new_sched();
    int w0 = qn_sched_worker_join(s, 0, 1);
    int w1 = qn_sched_worker_join(s, 0, 1);
    int w2 = qn_sched_worker_join(s, 0, 1);
    int j = qn_sched_job_add(s, 0, 4, 2, 4);
    expect_act(pop(s), QN_ACT_ASSIGN, w0, j, QN_MAP, 0, 1);
    expect_act(pop(s), QN_ACT_ASSIGN, w1, j, QN_MAP, 1, 1);
    expect_act(pop(s), QN_ACT_ASSIGN, w2, j, QN_MAP, 2, 1);
    expect_none(s);
    cr_assert_eq(qn_sched_done(s, 100, j, QN_MAP, 0, 1), QN_SCHED_ACCEPTED);
    expect_act(pop(s), QN_ACT_ASSIGN, w0, j, QN_MAP, 3, 1);
    cr_assert_eq(qn_sched_done(s, 200, j, QN_MAP, 1, 1), QN_SCHED_ACCEPTED);
    expect_act(pop(s), QN_ACT_ASSIGN, w1, j, QN_REDUCE, 0, 1);
    cr_assert_eq(qn_sched_done(s, 300, j, QN_MAP, 2, 1), QN_SCHED_ACCEPTED);
    expect_act(pop(s), QN_ACT_ASSIGN, w2, j, QN_REDUCE, 1, 1);
    expect_none(s);
    /* Map 3 runs on w0; the reduces wait for it on w1 and w2. */

    /* Map 1's output is lost: it waits for a slot, and no reduce gives way
     * while map 3 runs, however long (its slot comes free soon). */
    cr_assert_eq(qn_sched_map_lost(s, 400, j, 1, 1), 0);
    qn_action re = pop(s);
    expect_act(re, QN_ACT_MAP_RERUN, w1, j, QN_MAP, 1, 1);
    expect_none(s);
    for (int64_t now = 1000; now <= 30000; now += 1000) {
        beat(s, now, 3);
        qn_sched_progress(s, now, j, QN_MAP, 3, 1);
        qn_sched_tick(s, now);
        expect_none(s);
    }
    qn_job_info ji = qn_sched_job(s, j);
    cr_assert_eq(ji.reduces_running, 2);
    cr_assert_eq(ji.maps_running, 1);
    cr_assert_eq(qn_sched_task(s, j, QN_MAP, 1).state, QN_TASK_PENDING);
    /* Map 3's slot goes to map 1. */
    cr_assert_eq(qn_sched_done(s, 30100, j, QN_MAP, 3, 1), QN_SCHED_ACCEPTED);
    expect_act(pop(s), QN_ACT_ASSIGN, w0, j, QN_MAP, 1, 2);
    expect_none(s);

    /* w0, which made maps 0 and 3, leaves while it runs map 1: three maps
     * wait, none runs, and the reduces hold every live slot. Both reduces
     * give way (the youngest first), each to a waiting map; the third map
     * waits for one of theirs. */
    qn_sched_worker_leave(s, 30200, w0);
    expect_act(pop(s), QN_ACT_WORKER_DEAD, w0, -1, QN_MAP, 0, 0);
    expect_act(pop(s), QN_ACT_ATTEMPT_LOST, w0, j, QN_MAP, 1, 2);
    expect_act(pop(s), QN_ACT_MAP_RERUN, w0, j, QN_MAP, 0, 1);
    expect_act(pop(s), QN_ACT_MAP_RERUN, w0, j, QN_MAP, 3, 1);
    qn_action c = pop(s);
    expect_act(c, QN_ACT_CANCEL, w2, j, QN_REDUCE, 1, 1);
    cr_assert_eq(c.reason, QN_CANCEL_PREEMPTED);
    expect_act(pop(s), QN_ACT_ASSIGN, w2, j, QN_MAP, 1, 3);
    c = pop(s);
    expect_act(c, QN_ACT_CANCEL, w1, j, QN_REDUCE, 0, 1);
    cr_assert_eq(c.reason, QN_CANCEL_PREEMPTED);
    expect_act(pop(s), QN_ACT_ASSIGN, w1, j, QN_MAP, 0, 2);
    expect_none(s);
    for (unsigned r = 0; r < 2; r++) {
        qn_task_info ri = qn_sched_task(s, j, QN_REDUCE, r);
        cr_assert_eq(ri.state, QN_TASK_PENDING);
        cr_assert_eq(ri.failures, 0);
        cr_assert_eq(ri.losses, 0);
    }
    check_counts(s, j);

    /* Two maps run, one waits: nothing more gives way, on any pass. */
    for (int64_t now = 31000; now <= 40000; now += 1000) {
        qn_sched_worker_seen(s, now, w1);
        qn_sched_worker_seen(s, now, w2);
        qn_sched_progress(s, now, j, QN_MAP, 1, 3);
        qn_sched_progress(s, now, j, QN_MAP, 0, 2);
        qn_sched_tick(s, now);
        expect_none(s);
    }
    /* The waiting map takes the first slot to come free; then the reduces
     * run again. */
    cr_assert_eq(qn_sched_done(s, 40100, j, QN_MAP, 1, 3), QN_SCHED_ACCEPTED);
    expect_act(pop(s), QN_ACT_ASSIGN, w2, j, QN_MAP, 3, 2);
    expect_none(s);
    cr_assert_eq(qn_sched_done(s, 40200, j, QN_MAP, 0, 2), QN_SCHED_ACCEPTED);
    expect_act(pop(s), QN_ACT_ASSIGN, w1, j, QN_REDUCE, 1, 2);
    expect_none(s);
    cr_assert_eq(qn_sched_done(s, 40300, j, QN_MAP, 3, 2), QN_SCHED_ACCEPTED);
    expect_act(pop(s), QN_ACT_ASSIGN, w2, j, QN_REDUCE, 0, 2);
    expect_none(s);
    cr_assert_eq(qn_sched_done(s, 41000, j, QN_REDUCE, 0, 2),
                 QN_SCHED_ACCEPTED);
    cr_assert_eq(qn_sched_done(s, 42000, j, QN_REDUCE, 1, 2),
                 QN_SCHED_ACCEPTED);
    expect_act(pop(s), QN_ACT_JOB_DONE, -1, j, QN_MAP, 0, 0);
    expect_none(s);
}

/* ---- progress under churn ------------------------------------------------ */

#define CHURN_WORKERS 3
#define CHURN_SLOTS 2
#define CHURN_MAPS 8
#define CHURN_REDUCES 3
#define CHURN_STEP_MS 50
#define CHURN_LIMIT_MS 120000
#define CHURN_REDUCE_MS 2000 /* a reduce's work once every map is done */

/* A simulated attempt: a map ends at end (failing if fail); a reduce ends
 * CHURN_REDUCE_MS after ready, when it saw every map done (-1: not yet). */
typedef struct churn_att {
    qn_kind kind;
    unsigned task, attempt;
    int worker;
    int fail;
    int64_t end, ready;
} churn_att;

/* The simulated cluster and what happened in it. */
typedef struct churn {
    qn_sched *s;
    int job;
    int64_t now;
    uint64_t rng;
    churn_att run[CHURN_WORKERS * CHURN_SLOTS];
    unsigned nrun;
    unsigned maps_done; /* the most maps seen done: it may never drop */
    unsigned failed_maps, preempted, reruns, lost, dead, job_failed;
    unsigned restarts, offered; /* done maps offered back on a restart */
    int64_t done_at;            /* when QN_ACT_JOB_DONE came (-1: not yet) */
    int64_t slowest;            /* the latest done_at of all runs */
} churn;

/* A fixed-seed xorshift64*, so every run is the same: 0 to n-1. */
static unsigned churn_rand(churn *c, unsigned n)
{
    c->rng ^= c->rng >> 12;
    c->rng ^= c->rng << 25;
    c->rng ^= c->rng >> 27;
    return (unsigned)((c->rng * 2685821657736338717ULL) >> 33) % n;
}

/* The index of a simulated attempt, or -1. */
static int churn_find(const churn *c, qn_kind kind, unsigned task,
                      unsigned attempt)
{
    for (unsigned i = 0; i < c->nrun; i++)
        if (c->run[i].kind == kind && c->run[i].task == task &&
            c->run[i].attempt == attempt)
            return (int)i;
    return -1;
}

static void churn_remove(churn *c, int i)
{
    c->run[i] = c->run[--c->nrun];
}

static unsigned churn_on(const churn *c, int w)
{
    unsigned n = 0;
    for (unsigned i = 0; i < c->nrun; i++)
        n += c->run[i].worker == w;
    return n;
}

/* Carry out every action as the master and workers would: ASSIGN starts
 * a simulated attempt, CANCEL and ATTEMPT_LOST end one; count the rest.
 * Then the job's done maps must be no fewer than ever. */
static void churn_drain(churn *c)
{
    qn_action a;
    while (qn_sched_next_action(c->s, &a)) {
        if (a.act == QN_ACT_ASSIGN) {
            cr_assert(qn_sched_worker_alive(c->s, a.worker));
            cr_assert_lt(churn_on(c, a.worker), CHURN_SLOTS,
                         "worker %d given more than its slots", a.worker);
            churn_att *t = &c->run[c->nrun++];
            *t = (churn_att){.kind = a.kind,
                             .task = a.task,
                             .attempt = a.attempt,
                             .worker = a.worker,
                             .ready = -1};
            if (a.kind == QN_MAP) {
                int64_t took = 800 + churn_rand(c, 401); /* about 1 s */
                t->fail = churn_rand(c, 3) == 0;
                t->end = c->now + (t->fail ? took / 2 : took);
            }
        } else if (a.act == QN_ACT_CANCEL || a.act == QN_ACT_ATTEMPT_LOST) {
            int i = churn_find(c, a.kind, a.task, a.attempt);
            cr_assert_geq(i, 0, "ended kind %d task %u attempt %u not running",
                          (int)a.kind, a.task, a.attempt);
            cr_assert_eq(c->run[i].worker, a.worker);
            churn_remove(c, i);
            if (a.act == QN_ACT_ATTEMPT_LOST) {
                cr_assert_eq(a.reason, QN_LOST_RESTARTED);
                c->lost++;
            } else if (a.reason == QN_CANCEL_PREEMPTED) {
                c->preempted++;
            }
        } else if (a.act == QN_ACT_MAP_RERUN) {
            c->reruns++;
        } else if (a.act == QN_ACT_JOB_DONE) {
            cr_assert_eq(c->done_at, -1, "the job is done twice");
            c->done_at = c->now;
        } else if (a.act == QN_ACT_JOB_FAILED) {
            c->job_failed++;
        } else if (a.act == QN_ACT_WORKER_DEAD) {
            c->dead++;
        }
    }
    unsigned done = qn_sched_job(c->s, c->job).maps_done;
    cr_assert_geq(done, c->maps_done, "done maps fell from %u to %u at %lld",
                  c->maps_done, done, (long long)c->now);
    c->maps_done = done;
}

/* The attempts that end at c->now: maps at their end, reduces once they
 * have worked CHURN_REDUCE_MS with every map done. Fills due; returns how
 * many. The others report progress. */
static unsigned churn_due(churn *c, churn_att *due)
{
    unsigned n = 0;
    int all_maps = qn_sched_job(c->s, c->job).maps_done == CHURN_MAPS;
    for (unsigned i = 0; i < c->nrun; i++) {
        churn_att *t = &c->run[i];
        if (t->kind == QN_REDUCE && t->ready < 0 && all_maps)
            t->ready = c->now;
        int64_t end = t->kind == QN_MAP ? t->end
                      : t->ready < 0    ? INT64_MAX
                                        : t->ready + CHURN_REDUCE_MS;
        if (c->now >= end)
            due[n++] = *t;
        else
            qn_sched_progress(c->s, c->now, c->job, t->kind, t->task,
                              t->attempt);
    }
    return n;
}

/*
 * One run of the churn simulation with the given seed (see below); adds
 * what happened to c's counters, which it keeps across runs.
 */
static void churn_run(churn *c, uint64_t seed)
{
    qn_sched *s = new_sched();
    c->s = s;
    c->rng = seed;
    c->nrun = 0;
    c->maps_done = 0;
    c->done_at = -1;
    unsigned failed_maps = c->failed_maps, preempted = c->preempted;
    for (int w = 0; w < CHURN_WORKERS; w++)
        cr_assert_eq(qn_sched_worker_join(s, 0, CHURN_SLOTS), w);
    c->now = 0;
    c->job = qn_sched_job_add(s, 0, CHURN_MAPS, CHURN_REDUCES, 50);
    churn_drain(c);
    cr_assert_eq(c->nrun, CHURN_WORKERS * CHURN_SLOTS);
    int64_t next_restart = 2000 + churn_rand(c, 2001);

    for (int step = 1; step <= CHURN_LIMIT_MS / CHURN_STEP_MS; step++) {
        c->now = (int64_t)step * CHURN_STEP_MS;
        beat(s, c->now, CHURN_WORKERS);

        /* Attempts that end now report it. */
        churn_att due[CHURN_WORKERS * CHURN_SLOTS];
        unsigned ndue = churn_due(c, due);
        for (unsigned i = 0; i < ndue; i++) {
            churn_att t = due[i];
            int at = churn_find(c, t.kind, t.task, t.attempt);
            if (at < 0)
                continue; /* ended by an earlier report's actions */
            churn_remove(c, at);
            int r = t.fail ? qn_sched_failed(s, c->now, c->job, t.kind, t.task,
                                             t.attempt)
                           : qn_sched_done(s, c->now, c->job, t.kind, t.task,
                                           t.attempt);
            cr_assert_eq(r, QN_SCHED_ACCEPTED);
            c->failed_maps += (unsigned)t.fail;
            churn_drain(c);
        }

        /* A worker restarts: what it ran is lost; the outputs it kept are
         * offered back, and refused, as their maps are still done. */
        if (c->now >= next_restart && c->done_at < 0) {
            int w = (int)churn_rand(c, CHURN_WORKERS);
            unsigned lost = c->lost, ran = churn_on(c, w);
            qn_sched_worker_restarted(s, c->now, w);
            churn_drain(c);
            cr_assert_eq(c->lost - lost, ran, "worker %d ran %u, lost %u", w,
                         ran, c->lost - lost);
            cr_assert(qn_sched_worker_alive(s, w));
            for (unsigned m = 0; m < CHURN_MAPS; m++) {
                qn_task_info ti = qn_sched_task(s, c->job, QN_MAP, m);
                if (ti.state != QN_TASK_DONE || ti.worker != w)
                    continue;
                c->offered++;
                cr_assert_eq(
                    qn_sched_take_back(s, c->now, c->job, m, ti.attempt, w), -1,
                    "map %u is done: nothing to take back", m);
                qn_task_info after = qn_sched_task(s, c->job, QN_MAP, m);
                cr_assert_eq(after.state, QN_TASK_DONE);
                cr_assert_eq(after.attempt, ti.attempt);
                cr_assert_eq(after.worker, w);
            }
            churn_drain(c);
            c->restarts++;
            next_restart = c->now + 2000 + churn_rand(c, 2001);
        }

        qn_sched_tick(s, c->now);
        churn_drain(c);
        check_counts(s, c->job);
        if (c->done_at >= 0)
            break;
    }

    cr_assert_geq(c->done_at, 0, "seed %llu: the job did not end within %d ms",
                  (unsigned long long)seed, CHURN_LIMIT_MS);
    cr_assert_eq(qn_sched_job(s, c->job).state, QN_JOB_DONE);
    cr_assert_eq(c->maps_done, CHURN_MAPS);
    cr_assert_eq(c->reruns, 0, "seed %llu: %u done maps ran again",
                 (unsigned long long)seed, c->reruns);
    cr_assert_eq(c->job_failed, 0);
    cr_assert_eq(c->dead, 0);
    cr_assert_leq(c->preempted - preempted, c->failed_maps - failed_maps,
                  "seed %llu: %u reduces preempted for %u failed maps",
                  (unsigned long long)seed, c->preempted - preempted,
                  c->failed_maps - failed_maps);
    if (c->done_at > c->slowest)
        c->slowest = c->done_at;
    qn_sched_destroy(&cur);
}

/*
 * A job keeps its done maps and finishes while its workers keep
 * restarting. Three workers of two slots run 8 maps (about 1 s each, a
 * third failing halfway) and 3 reduces (2 s once every map is done);
 * every 2 to 4 s one worker restarts, keeping the outputs it made (the
 * master offers them back: none is needed, as their maps stay done).
 * Each run must end its job within 120 s with its done maps never fewer,
 * no map run again, and no more reduces preempted than map attempts
 * failed. A run lasts a few seconds, so it is done for 50 fixed seeds.
 */
Test(sched, a_job_progresses_while_its_workers_keep_restarting)
{
    churn c = {0};
    for (uint64_t seed = 1; seed <= 50; seed++)
        churn_run(&c, seed * 0x9e3779b97f4a7c15ULL);
    /* The churn did happen: restarts lost attempts and were offered done
     * maps back, and maps failed. */
    cr_assert_geq(c.restarts, 50);
    cr_assert_geq(c.lost, 50);
    cr_assert_geq(c.offered, 10);
    cr_assert_geq(c.failed_maps, 50);
    cr_log_info("churn: 50 runs, slowest done at %lld ms, %u restarts, %u "
                "attempts lost, %u done maps offered back, %u map attempts "
                "failed, %u reduces preempted",
                (long long)c.slowest, c.restarts, c.lost, c.offered,
                c.failed_maps, c.preempted);
}

Test(sched, a_draining_worker_finishes_its_attempts_and_is_evicted_past_them)
{
    /* Draining is 0 slots (the master's doing): w0 keeps its running map,
     * gets no new task, and its done map's output counts until the job's
     * reduces are done. Evicted, its running attempt is cancelled there
     * and runs elsewhere, a loss, not a failure; its done map stays done. */
    qn_sched *s = new_sched();
    int w0 = qn_sched_worker_join(s, 0, 2);
    int w1 = qn_sched_worker_join(s, 0, 1);
    int j = qn_sched_job_add(s, 0, 4, 1, 4);
    qn_action a[3] = {pop_assign(s, j, QN_MAP, 0, 1),
                      pop_assign(s, j, QN_MAP, 1, 1),
                      pop_assign(s, j, QN_MAP, 2, 1)};
    expect_none(s);
    int on0[2], n0 = 0;
    for (int i = 0; i < 3; i++)
        if (a[i].worker == w0)
            on0[n0++] = (int)a[i].task;
    cr_assert_eq(n0, 2, "w0 has 2 slots");
    qn_sched_worker_slots(s, 10, w0, 0);
    expect_none(s);
    /* One of w0's maps ends: its slot is not used again. */
    cr_assert_eq(qn_sched_done(s, 100, j, QN_MAP, (unsigned)on0[0], 1),
                 QN_SCHED_ACCEPTED);
    expect_none(s);
    cr_assert_eq(qn_sched_worker_outputs(s, w0), 1);
    cr_assert_eq(qn_sched_worker_outputs(s, w1), 0);
    /* The deadline: w0's other map is cancelled and runs on w1 once w1's
     * map is done. */
    qn_sched_worker_evict(s, 200, w0);
    qn_action c = pop(s);
    expect_act(c, QN_ACT_CANCEL, w0, j, QN_MAP, on0[1], 1);
    cr_assert_eq(c.reason, QN_CANCEL_DRAINED);
    qn_action l = pop(s);
    expect_act(l, QN_ACT_ATTEMPT_LOST, w0, j, QN_MAP, on0[1], 1);
    cr_assert_eq(l.reason, QN_LOST_DRAINED);
    expect_none(s);
    qn_task_info ti = qn_sched_task(s, j, QN_MAP, (unsigned)on0[1]);
    cr_assert_eq(ti.failures, 0);
    cr_assert_eq(ti.losses, 1);
    cr_assert_eq(qn_sched_task(s, j, QN_MAP, (unsigned)on0[0]).state,
                 QN_TASK_DONE, "its done map stays done");
    cr_assert_eq(qn_sched_worker_busy(s, w0), 0);
    int other = a[0].worker == w1 ? 0 : a[1].worker == w1 ? 1 : 2;
    cr_assert_eq(qn_sched_done(s, 300, j, QN_MAP, a[other].task, 1),
                 QN_SCHED_ACCEPTED);
    qn_action next = pop(s);
    cr_assert_eq(next.act, QN_ACT_ASSIGN);
    cr_assert_eq(next.worker, w1, "nothing goes to the draining w0");
    cr_assert_eq(next.kind, QN_MAP);
    check_counts(s, j);
    /* Once the job's reduces are done, w0's output is needed no more. */
    cr_assert_eq(qn_sched_done(s, 400, j, QN_MAP, next.task, next.attempt),
                 QN_SCHED_ACCEPTED);
    qn_action more = pop(s);
    if (more.kind == QN_MAP) {
        cr_assert_eq(qn_sched_done(s, 500, j, QN_MAP, more.task, more.attempt),
                     QN_SCHED_ACCEPTED);
        more = pop(s);
    }
    expect_act(more, QN_ACT_ASSIGN, w1, j, QN_REDUCE, 0, 1);
    cr_assert_eq(qn_sched_worker_outputs(s, w0), 1);
    cr_assert_eq(qn_sched_done(s, 600, j, QN_REDUCE, 0, 1), QN_SCHED_ACCEPTED);
    cr_assert_eq(pop(s).act, QN_ACT_JOB_DONE);
    cr_assert_eq(qn_sched_worker_outputs(s, w0), 0);
}
