/*
 * test_masterlink.c -- a worker's session with its master
 * (worker/masterlink.c): hello with backoff, welcome, heartbeats, data
 * reports, forwarded updates, refusals and a master gone silent.
 */
#include "wfixture.h"

#include "../worker/masterlink.h"

TestSuite(masterlink, .fini = qn_test_leak_check);

static void welcome(wfix *f, uint64_t session, unsigned heartbeat_ms,
                    int64_t now)
{
    Quern__WorkerWelcome ww = QUERN__WORKER_WELCOME__INIT;
    ww.session = session;
    ww.heartbeat_ms = heartbeat_ms;
    qn_masterlink_joined(f->w, &ww, now);
}

Test(masterlink, hello_lists_the_shards_held_and_backs_off)
{
    wfix f;
    wfix_start(&f, &(wfix_opts){.data = 1});
    wfix_put_shard(&f, "logs", 0, "x");
    wfix_put_shard(&f, "logs", 1, "x");
    qn_masterlink_hello(f.w, 0);
    Quern__Envelope *env =
        wfix_next(&f, QUERN__ENVELOPE__BODY_WORKER_HELLO, 10000);
    cr_assert_not_null(env);
    const Quern__WorkerHello *h = env->worker_hello;
    cr_assert_str_eq(h->worker_id, f.w->id);
    cr_assert_eq(h->slots, 2);
    cr_assert(h->has_data);
    cr_assert_eq(h->n_shards, 2);
    cr_assert_str_eq(h->shuffle_endpoint, qn_shuffle_endpoint(f.w->shuffle));
    qn_wire_free(env);
    int64_t waits[] = {1000, 2000, 4000, 8000, 8000};
    int64_t now = 0;
    for (size_t i = 0; i < QN_ARRAY_LEN(waits); i++) {
        cr_assert_eq(f.w->link.next_hello, now + waits[i], "hello %zu", i);
        now = f.w->link.next_hello;
        qn_masterlink_hello(f.w, now);
    }
    /* What the hello listed is not reported again as a change. */
    welcome(&f, 9, 1000, now);
    qn_masterlink_data_report(f.w);
    cr_assert_null(wfix_next(&f, QUERN__ENVELOPE__BODY_DATA_REPORT, 200));
    wfix_stop(&f);
}

Test(masterlink, the_data_dirs_changes_wait_for_a_welcome_and_go_once)
{
    wfix f;
    wfix_start(&f, &(wfix_opts){.data = 1});
    wfix_put_shard(&f, "logs", 0, "x");
    qn_masterlink_data_report(f.w);
    cr_assert_null(wfix_next(&f, QUERN__ENVELOPE__BODY_DATA_REPORT, 200));
    welcome(&f, 77, 250, 5000);
    cr_assert(f.w->link.welcomed);
    cr_assert_eq(f.w->link.heartbeat_ms, 250);
    Quern__Envelope *env =
        wfix_next(&f, QUERN__ENVELOPE__BODY_HEARTBEAT, 10000);
    cr_assert_not_null(env, "a welcome is answered with a heartbeat");
    cr_assert_eq(env->heartbeat->session, 77);
    qn_wire_free(env);
    cr_assert_eq(f.w->link.next_heartbeat, 5250);
    qn_masterlink_data_report(f.w);
    env = wfix_next(&f, QUERN__ENVELOPE__BODY_DATA_REPORT, 10000);
    cr_assert_not_null(env);
    cr_assert_eq(env->data_report->session, 77);
    cr_assert_eq(env->data_report->n_added, 1);
    cr_assert_eq(env->data_report->added[0]->index, 0);
    qn_wire_free(env);
    qn_masterlink_data_report(f.w);
    cr_assert_null(wfix_next(&f, QUERN__ENVELOPE__BODY_DATA_REPORT, 200));
    wfix_stop(&f);
}

Test(masterlink, a_heartbeat_lists_tasks_running_with_their_work_not_copies)
{
    wfix f;
    wfix_start(&f, &(wfix_opts){0});
    qn_attempt_ref map = {
        .kind = QUERN__TASK_KIND__MAP, .task = 5, .attempt = 2};
    snprintf(map.job_id, sizeof map.job_id, "job-1");
    qn_attempt_ref copy = map;
    copy.kind = QUERN__TASK_KIND__COPY;
    qn_attempts_add(&f.w->att, &map)->records = 123;
    qn_attempts_add(&f.w->att, &copy);
    qn_masterlink_heartbeat(f.w, 0);
    Quern__Envelope *env =
        wfix_next(&f, QUERN__ENVELOPE__BODY_HEARTBEAT, 10000);
    cr_assert_not_null(env);
    const Quern__Heartbeat *hb = env->heartbeat;
    cr_assert_eq(hb->n_running, 1);
    cr_assert_str_eq(hb->running[0]->job_id, "job-1");
    cr_assert_eq(hb->running[0]->task, 5);
    cr_assert_eq(hb->n_work, 1);
    cr_assert_eq(hb->work[0]->records, 123);
    cr_assert_eq(hb->seq, 1);
    qn_wire_free(env);
    wfix_stop(&f);
}

Test(masterlink, an_update_is_forwarded_naming_the_attempt_and_the_worker)
{
    wfix f;
    wfix_start(&f, &(wfix_opts){0});
    welcome(&f, 31, 1000, 0);
    Quern__TaskUpdate u = QUERN__TASK_UPDATE__INIT;
    u.state = QUERN__TASK_STATE__RUNNING;
    u.progress = 0.5;
    qn_attempt_ref r = {
        .kind = QUERN__TASK_KIND__REDUCE, .task = 1, .attempt = 3};
    snprintf(r.job_id, sizeof r.job_id, "job-2");
    qn_masterlink_update(f.w, &r, &u);
    cr_assert_null(u.attempt, "the caller's update is left as it was");
    cr_assert_str_eq(u.worker_id, "");
    Quern__Envelope *env = wfix_update(&f, "job-2", 1, 3);
    cr_assert_eq(env->task_update->session, 31);
    cr_assert_eq(env->task_update->attempt->kind, QUERN__TASK_KIND__REDUCE);
    cr_assert_eq(env->task_update->progress, 0.5);
    qn_wire_free(env);
    wfix_stop(&f);
}

Test(masterlink, a_silent_master_is_connected_to_again)
{
    wfix f;
    wfix_start(&f, &(wfix_opts){0});
    welcome(&f, 5, 100, 0); /* 5 beats of 100 ms, but at least 3 s */
    qn_masterlink_check(f.w, 2999);
    cr_assert(f.w->link.welcomed);
    void *old = f.w->link.sock;
    qn_masterlink_check(f.w, 3000);
    cr_assert_not(f.w->link.welcomed);
    cr_assert_neq(f.w->link.sock, old, "a fresh socket");
    Quern__Envelope *env =
        wfix_next(&f, QUERN__ENVELOPE__BODY_WORKER_HELLO, 10000);
    cr_assert_not_null(env, "hello on the new socket");
    cr_assert_eq(env->worker_hello->session, 5, "the session it had");
    qn_wire_free(env);
    wfix_stop(&f);
}

Test(masterlink, a_rejoin_drops_the_session_and_says_hello)
{
    wfix f;
    wfix_start(&f, &(wfix_opts){0});
    welcome(&f, 5, 1000, 0);
    qn_masterlink_rejoin(f.w, 10);
    cr_assert_not(f.w->link.welcomed);
    cr_assert_eq(f.w->link.session, 0);
    cr_assert_eq(f.w->link.next_hello, 1010);
    Quern__Envelope *env =
        wfix_next(&f, QUERN__ENVELOPE__BODY_WORKER_HELLO, 10000);
    cr_assert_not_null(env);
    cr_assert_eq(env->worker_hello->session, 0);
    qn_wire_free(env);
    wfix_stop(&f);
}

Test(masterlink, a_refusal_is_logged_at_once_then_once_a_minute)
{
    wfix f;
    wfix_start(&f, &(wfix_opts){0});
    qn_masterlink_refused(f.w, NULL, 2, 1000);
    cr_assert_eq(f.w->link.refused_logged, 1000);
    qn_masterlink_refused(f.w, NULL, 2, 2000);
    qn_masterlink_refused(f.w, NULL, 2, 60999);
    cr_assert_eq(f.w->link.refused_quiet, 2);
    cr_assert_eq(f.w->link.refused_logged, 1000);
    qn_masterlink_refused(f.w, NULL, 2, 61000);
    cr_assert_eq(f.w->link.refused_quiet, 0);
    cr_assert_eq(f.w->link.refused_logged, 61000);
    /* A welcome makes the next refusal news again. */
    welcome(&f, 1, 1000, 62000);
    cr_assert_eq(f.w->link.refused_logged, 0);
    wfix_stop(&f);
}
