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

/* The test's scheduler, freed by the fixture even when an assertion
 * fails, so that only the scheduler's own leaks trip the leak check. */
static qn_sched *cur;

static qn_sched *new_sched(void)
{
    cr_assert_null(cur, "one scheduler per test");
    cur = qn_sched_new(&CFG);
    cr_assert_not_null(cur);
    return cur;
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
 * has a sane attempt and worker. */
static void check_counts(const qn_sched *s, int job)
{
    qn_job_info ji = qn_sched_job(s, job);
    unsigned n[2] = {ji.maps, ji.reduces};
    unsigned running[2] = {0, 0}, done[2] = {0, 0};
    for (int k = 0; k < 2; k++) {
        for (unsigned i = 0; i < n[k]; i++) {
            qn_task_info ti = qn_sched_task(s, job, (qn_kind)k, i);
            cr_assert_leq(ti.failures, ti.attempts);
            if (ti.state == QN_TASK_RUNNING) {
                running[k]++;
                cr_assert_geq(ti.attempt, 1);
                cr_assert_eq(ti.attempt, ti.attempts);
                cr_assert_geq(ti.worker, 0);
            } else if (ti.state == QN_TASK_DONE) {
                done[k]++;
                cr_assert_geq(ti.attempt, 1);
            } else {
                cr_assert_eq(ti.worker, -1, "a pending task has no worker");
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
    expect_none(s);
    for (int i = 0; i < 3; i++) {
        cr_assert_eq(used[i], 1, "worker %d got %d of 3 maps", w[i], used[i]);
        cr_assert_eq(qn_sched_worker_busy(s, w[i]), 1);
    }
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
    /* One slot: every map goes through it before any reduce. */
    for (unsigned t = 0; t < 3; t++) {
        expect_act(pop(s), QN_ACT_ASSIGN, w, j, QN_MAP, t, 1);
        expect_none(s);
        cr_assert_eq(qn_sched_done(s, 10 * (t + 1), j, QN_MAP, t, 1),
                     QN_SCHED_ACCEPTED);
    }
    expect_act(pop(s), QN_ACT_ASSIGN, w, j, QN_REDUCE, 0, 1);
    expect_none(s);
}

Test(sched, reduces_wait_until_every_map_is_done)
{
    qn_sched *s = new_sched();
    qn_sched_worker_join(s, 0, 4);
    int j = qn_sched_job_add(s, 0, 2, 2, 4);
    /* Four free slots, yet only the two maps start. */
    pop_assign(s, j, QN_MAP, 0, 1);
    pop_assign(s, j, QN_MAP, 1, 1);
    expect_none(s);
    cr_assert_eq(qn_sched_done(s, 10, j, QN_MAP, 1, 1), QN_SCHED_ACCEPTED);
    expect_none(s); /* map 0 still running: no reduce yet */
    cr_assert_eq(qn_sched_task(s, j, QN_REDUCE, 0).state, QN_TASK_PENDING);
    cr_assert_eq(qn_sched_done(s, 20, j, QN_MAP, 0, 1), QN_SCHED_ACCEPTED);
    pop_assign(s, j, QN_REDUCE, 0, 1);
    pop_assign(s, j, QN_REDUCE, 1, 1);
    expect_none(s);
    check_counts(s, j);
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
    int done_map[NMAP] = {0}, done_red[NRED] = {0};
    int job_done = 0;
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
            cr_assert(a.worker >= 0 && a.worker < NW);
            cr_assert_lt(load[a.worker], SLOTS, "worker %d over its slots",
                         a.worker);
            load[a.worker]++;
            if (a.kind == QN_REDUCE) {
                for (int m = 0; m < NMAP; m++)
                    cr_assert(done_map[m], "reduce %u before map %d done",
                              a.task, m);
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
    qn_task_info ti = qn_sched_task(s, j, QN_MAP, 0);
    cr_assert_eq(ti.state, QN_TASK_PENDING);
    cr_assert_eq(ti.failures, 1);
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
    qn_action m0 = pop_assign(s, j, QN_MAP, 0, 1);
    qn_action m1 = pop_assign(s, j, QN_MAP, 1, 1);
    cr_assert_neq(m0.worker, m1.worker);
    cr_assert_eq(qn_sched_done(s, 100, j, QN_MAP, 0, 1), QN_SCHED_ACCEPTED);
    expect_none(s);
    cr_assert_eq(qn_sched_done(s, 200, j, QN_MAP, 1, 1), QN_SCHED_ACCEPTED);
    qn_action r0 = pop_assign(s, j, QN_REDUCE, 0, 1);
    qn_action r1 = pop_assign(s, j, QN_REDUCE, 1, 1);
    expect_none(s); /* reduce 2 waits for a slot */

    /* The worker that ran map 0 goes silent; the other heartbeats. */
    int dead = m0.worker, live = m1.worker;
    cr_assert(dead == w0 || dead == w1);
    qn_sched_worker_seen(s, 9000, live);
    qn_sched_tick(s, 10000);
    expect_act(pop(s), QN_ACT_WORKER_DEAD, dead, -1, QN_MAP, 0, 0);
    qn_action lost = pop(s);
    cr_assert_eq(lost.act, QN_ACT_ATTEMPT_LOST);
    cr_assert_eq(lost.reason, QN_LOST_WORKER_DEAD);
    cr_assert_eq(lost.kind, QN_REDUCE);
    cr_assert_eq(lost.task, r0.worker == dead ? 0u : 1u);
    expect_none(s); /* the live worker is still busy with a reduce */

    /* Map 0's output lived on the dead worker: it is pending again, not
     * counted as a failure, and no reduce may start until it is redone. */
    qn_task_info ti = qn_sched_task(s, j, QN_MAP, 0);
    cr_assert_eq(ti.state, QN_TASK_PENDING);
    cr_assert_eq(ti.failures, 0);
    cr_assert_eq(qn_sched_task(s, j, QN_MAP, 1).state, QN_TASK_DONE);
    qn_job_info ji = qn_sched_job(s, j);
    cr_assert_eq(ji.maps_done, 1);
    check_counts(s, j);

    unsigned live_reduce = r0.worker == live ? 0 : 1;
    (void)r1;
    cr_assert_eq(qn_sched_done(s, 10100, j, QN_REDUCE, live_reduce, 1),
                 QN_SCHED_ACCEPTED);
    expect_act(pop(s), QN_ACT_ASSIGN, live, j, QN_MAP, 0, 2);
    expect_none(s);
    cr_assert_eq(qn_sched_done(s, 10200, j, QN_MAP, 0, 2), QN_SCHED_ACCEPTED);
    qn_action next = pop(s);
    cr_assert_eq(next.act, QN_ACT_ASSIGN);
    cr_assert_eq(next.kind, QN_REDUCE);
    cr_assert_eq(next.worker, live);
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
    expect_act(pop(s), QN_ACT_CANCEL, w, j, QN_MAP, 0, 1);
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
    int w1 = qn_sched_worker_join(s, 2000, 1);
    cr_assert_eq(qn_sched_deadline(s), 11000);
    qn_sched_worker_seen(s, 3000, w0);
    cr_assert_eq(qn_sched_deadline(s), 12000, "w1 silent since 2000");
    qn_sched_worker_seen(s, 55000, w0);
    qn_sched_worker_seen(s, 56000, w1);
    cr_assert_eq(qn_sched_deadline(s), 61000, "map 0 started at 1000");
    qn_sched_progress(s, 56000, j, QN_MAP, 0, 1);
    cr_assert_eq(qn_sched_deadline(s), 65000, "w0 silent since 55000");

    /* Ticking just before the deadline does nothing; at it, something. */
    qn_sched_tick(s, 64999);
    expect_none(s);
    qn_sched_tick(s, 65000);
    expect_act(pop(s), QN_ACT_WORKER_DEAD, w0, -1, QN_MAP, 0, 0);
    expect_act(pop(s), QN_ACT_ATTEMPT_LOST, w0, j, QN_MAP, 0, 1);
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
    expect_act(pop(s), QN_ACT_CANCEL, w, j, QN_MAP, 0, 1);
    expect_act(pop(s), QN_ACT_CANCEL, w, j, QN_MAP, 1, 1);
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
    int w = qn_sched_worker_join(s, 0, 2);
    int a = qn_sched_job_add(s, 0, 1, 1, 4);
    expect_act(pop(s), QN_ACT_ASSIGN, w, a, QN_MAP, 0, 1);
    expect_none(s); /* a's reduce must wait for its map */
    int b = qn_sched_job_add(s, 1, 1, 1, 4);
    expect_act(pop(s), QN_ACT_ASSIGN, w, b, QN_MAP, 0, 1);
    expect_none(s);
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

/* ---- bugs found in sched.c: these fail until it is fixed ----------------- */

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
    int w0 = qn_sched_worker_join(s, 0, 1);
    int j = qn_sched_job_add(s, 0, 1, 1, 2);
    expect_act(pop(s), QN_ACT_ASSIGN, w0, j, QN_MAP, 0, 1);
    int w1 = qn_sched_worker_join(s, 0, 1); /* idle: the reduce waits */
    expect_none(s);

    /* Both fall silent; at 10000 both are past dead_ms. */
    qn_sched_tick(s, 10000);
    qn_action a;
    int dead = 0;
    while (qn_sched_next_action(s, &a)) {
        cr_assert_neq(a.act, QN_ACT_ASSIGN,
                      "attempt %u assigned to worker %d, which is silent "
                      "past dead_ms at this tick",
                      a.attempt, a.worker);
        cr_assert_neq(a.act, QN_ACT_JOB_FAILED,
                      "the job failed though only one attempt ran");
        if (a.act == QN_ACT_WORKER_DEAD)
            dead++;
    }
    cr_assert_eq(dead, 2);
    cr_assert_not(qn_sched_worker_alive(s, w1));
    qn_task_info ti = qn_sched_task(s, j, QN_MAP, 0);
    cr_assert_eq(ti.attempts, 1);
    cr_assert_eq(ti.failures, 1);
    cr_assert_eq(qn_sched_job(s, j).state, QN_JOB_RUNNING);
}
