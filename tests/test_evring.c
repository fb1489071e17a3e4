/*
 * test_evring.c -- the ring of recent events: numbering, the newest kept
 * when it is full, and the JSON of those after a number.
 */
#include "helpers.h"

#include "../master/evring.h"
#include "log.h"

static qn_evring ring;

static void teardown(void)
{
    qn_evring_release(&ring);
    qn_test_leak_check();
}

TestSuite(evring, .fini = teardown);

Test(evring, numbers_events_and_copies_what_it_is_given)
{
    char msg[] = "worker w1 is dead";
    const qn_evrec *e = qn_evring_add(&ring, 777, QN_LOG_WARN, "worker_lost",
                                      NULL, NULL, 0, "w1", msg);
    msg[0] = 'X';
    cr_assert_eq(e->seq, 1);
    cr_assert_eq(e->wall, 777);
    cr_assert_str_eq(e->msg, "worker w1 is dead");
    cr_assert_str_eq(e->job, "");
    cr_assert_str_eq(e->worker, "w1");
    e = qn_evring_add(&ring, 778, QN_LOG_INFO, "task_rerun", "job-1", "m3", 2,
                      "w2", "again");
    cr_assert_eq(e->seq, 2);
    cr_assert_str_eq(qn_evring_at(&ring, 0)->msg, "worker w1 is dead");
    cr_assert_str_eq(qn_evring_at(&ring, 1)->task, "m3");
}

Test(evring, keeps_the_newest_when_full)
{
    char msg[32];
    for (int i = 1; i <= QN_EVRING_KEPT + 10; i++) {
        snprintf(msg, sizeof msg, "event %d", i);
        qn_evring_add(&ring, i, QN_LOG_INFO, "k", NULL, NULL, 0, NULL, msg);
    }
    cr_assert_eq(ring.n, QN_EVRING_KEPT);
    cr_assert_eq(qn_evring_at(&ring, 0)->seq, 11);
    cr_assert_str_eq(qn_evring_at(&ring, 0)->msg, "event 11");
    cr_assert_eq(qn_evring_at(&ring, QN_EVRING_KEPT - 1)->seq,
                 QN_EVRING_KEPT + 10);
}

Test(evring, json_lists_events_after_a_number_with_nulls_for_none)
{
    qn_evring_add(&ring, 1, QN_LOG_INFO, "a", NULL, NULL, 0, NULL, "one");
    qn_evring_add(&ring, 2, QN_LOG_ERROR, "b", "job-1", "r0", 3, "w9", "two");
    json_t *all = qn_evring_json(&ring, 0);
    cr_assert_eq(json_array_size(all), 2);
    json_decref(all);
    json_t *a = qn_evring_json(&ring, 1);
    cr_assert_eq(json_array_size(a), 1);
    json_t *o = json_array_get(a, 0);
    cr_assert_eq(json_integer_value(json_object_get(o, "seq")), 2);
    cr_assert_str_eq(json_string_value(json_object_get(o, "level")), "error");
    cr_assert_str_eq(json_string_value(json_object_get(o, "job")), "job-1");
    cr_assert_eq(json_integer_value(json_object_get(o, "attempt")), 3);
    json_decref(a);
    json_t *b = qn_evring_json(&ring, 0);
    o = json_array_get(b, 0);
    cr_assert(json_is_null(json_object_get(o, "job")));
    cr_assert(json_is_null(json_object_get(o, "task")));
    cr_assert(json_is_null(json_object_get(o, "attempt")));
    cr_assert(json_is_null(json_object_get(o, "worker")));
    json_decref(b);
    json_t *none = qn_evring_json(&ring, 2);
    cr_assert_eq(json_array_size(none), 0);
    json_decref(none);
}
