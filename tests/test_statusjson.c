/*
 * test_statusjson.c -- jobs, tasks and workers as JSON (lib/statusjson.c):
 * the field names and types the README promises.
 */
#include "helpers.h"

#include "statusjson.h"

#include <math.h>
#include <stdint.h>

TestSuite(statusjson, .fini = qn_test_leak_check);

Test(statusjson, task_names_round_trip_and_bad_ones_are_refused)
{
    char b[24];
    qn_task_name(b, sizeof b, QUERN__TASK_KIND__MAP, 3);
    cr_assert_str_eq(b, "m3");
    qn_task_name(b, sizeof b, QUERN__TASK_KIND__REDUCE, 0);
    cr_assert_str_eq(b, "r0");
    static const struct {
        const char *s;
        int kind;
        unsigned index;
    } ok[] = {{"m3", QUERN__TASK_KIND__MAP, 3},
              {"map3", QUERN__TASK_KIND__MAP, 3},
              {"map-12", QUERN__TASK_KIND__MAP, 12},
              {"r0", QUERN__TASK_KIND__REDUCE, 0},
              {"reduce-7", QUERN__TASK_KIND__REDUCE, 7}};
    for (size_t i = 0; i < sizeof ok / sizeof *ok; i++) {
        int kind = -1;
        unsigned index = 99;
        cr_assert_eq(qn_task_parse(ok[i].s, &kind, &index), 0, "%s", ok[i].s);
        cr_assert_eq(kind, ok[i].kind, "%s", ok[i].s);
        cr_assert_eq(index, ok[i].index, "%s", ok[i].s);
    }
    static const char *const bad[] = {
        "", "m", "x1", "m-1", "m3x", "r", "reduce", "m99999999999", "3"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        int kind;
        unsigned index;
        cr_assert_eq(qn_task_parse(bad[i], &kind, &index), -1, "'%s'", bad[i]);
    }
}

Test(statusjson, eta_follows_progress_and_is_unknown_when_it_cannot_be_said)
{
    Quern__JobStatus st = QUERN__JOB_STATUS__INIT;
    st.state = QUERN__JOB_STATE__JOB_RUNNING;
    st.elapsed_ms = 10000;
    st.map_progress = 1;
    st.reduce_progress = 0; /* half way overall */
    cr_assert_eq(qn_job_eta_ms(&st), 10000);
    st.map_progress = 0.01;
    st.reduce_progress = 0;
    cr_assert_eq(qn_job_eta_ms(&st), -1, "too early to say");
    st.map_progress = st.reduce_progress = 1;
    st.state = QUERN__JOB_STATE__JOB_SUCCEEDED;
    cr_assert_eq(qn_job_eta_ms(&st), -1, "over");
    /* What no sane master sends (fuzz_config found these): no estimate,
     * not undefined behaviour. */
    st.state = QUERN__JOB_STATE__JOB_RUNNING;
    st.map_progress = NAN;
    cr_assert_eq(qn_job_eta_ms(&st), -1, "NaN progress");
    st.map_progress = 0.02;
    st.elapsed_ms = UINT64_MAX;
    cr_assert_eq(qn_job_eta_ms(&st), -1, "past what a long long holds");
}

Test(statusjson, a_job_has_the_documented_fields)
{
    Quern__JobStatus st = QUERN__JOB_STATUS__INIT;
    st.job_id = (char *)"job-ab12-1";
    st.name = (char *)"wordcount";
    st.state = QUERN__JOB_STATE__JOB_RUNNING;
    st.maps = 8;
    st.maps_done = 5;
    st.maps_running = 2;
    st.reduces = 2;
    st.map_progress = 0.8;
    st.elapsed_ms = 4000;
    st.output = (char *)"/out";
    st.error = (char *)"";
    st.waiting_for = (char *)"";
    Quern__Counter c = QUERN__COUNTER__INIT, *cp = &c;
    c.name = (char *)"user.urls";
    c.value = 42;
    st.counters = &cp;
    st.n_counters = 1;
    Quern__AttemptFailure f = QUERN__ATTEMPT_FAILURE__INIT, *fp = &f;
    f.kind = QUERN__TASK_KIND__REDUCE;
    f.task = 1;
    f.attempt = 2;
    f.worker_id = (char *)"w-1";
    f.reason = (char *)"exit code 7";
    f.stderr_tail = (char *)"oops\n";
    f.shard = (char *)"";
    st.failures = &fp;
    st.n_failures = 1;
    Quern__TaskInfo t = QUERN__TASK_INFO__INIT, *tp = &t;
    t.kind = QUERN__TASK_KIND__MAP;
    t.index = 4;
    t.state = 1;
    t.attempt = 1;
    t.attempts = 1;
    t.running = 1;
    t.worker_id = (char *)"w-2";
    t.locality = 1;
    t.started_at_ms = 1000;
    t.duration_ms = 250;
    t.progress = 0.5;
    t.shard = (char *)"ds/part-00004";
    st.tasks = &tp;
    st.n_tasks = 1;

    json_t *o = qn_json_job(&st);
    cr_assert_str_eq(json_string_value(json_object_get(o, "id")), "job-ab12-1");
    cr_assert_str_eq(json_string_value(json_object_get(o, "state")), "running");
    cr_assert(json_is_null(json_object_get(o, "error")));
    cr_assert(json_is_null(json_object_get(o, "waiting_for")));
    cr_assert_eq(json_integer_value(json_object_get(o, "maps_pending")), 1);
    cr_assert_eq(json_integer_value(json_object_get(o, "reduces_pending")), 2);
    cr_assert(json_is_integer(json_object_get(o, "eta_ms")));
    cr_assert_float_eq(json_real_value(json_object_get(o, "progress")), 0.4,
                       1e-9);
    cr_assert_eq(json_integer_value(json_object_get(
                     json_object_get(o, "counters"), "user.urls")),
                 42);
    json_t *fl = json_array_get(json_object_get(o, "failures"), 0);
    cr_assert_str_eq(json_string_value(json_object_get(fl, "kind")), "reduce");
    cr_assert_str_eq(json_string_value(json_object_get(fl, "task_name")), "r1");
    cr_assert(json_is_null(json_object_get(fl, "shard")));
    json_t *tk = json_array_get(json_object_get(o, "tasks"), 0);
    cr_assert_str_eq(json_string_value(json_object_get(tk, "task")), "m4");
    cr_assert_str_eq(json_string_value(json_object_get(tk, "state")),
                     "running");
    cr_assert_str_eq(json_string_value(json_object_get(tk, "locality")),
                     "local");
    cr_assert_eq(json_integer_value(json_object_get(tk, "duration_ms")), 250);
    json_decref(o);

    /* Never started: no attempt, worker, time or locality. */
    Quern__TaskInfo p = QUERN__TASK_INFO__INIT;
    p.kind = QUERN__TASK_KIND__REDUCE;
    p.locality = -2;
    p.worker_id = (char *)"";
    p.shard = (char *)"";
    json_t *pj = qn_json_task(&p);
    cr_assert_str_eq(json_string_value(json_object_get(pj, "state")),
                     "pending");
    static const char *const nulls[] = {"attempt",     "worker",
                                        "locality",    "started_at_ms",
                                        "duration_ms", "shard"};
    for (size_t i = 0; i < sizeof nulls / sizeof *nulls; i++)
        cr_assert(json_is_null(json_object_get(pj, nulls[i])), "%s", nulls[i]);
    json_decref(pj);
}

Test(statusjson, a_worker_lists_what_runs_there)
{
    Quern__WorkerInfo w = QUERN__WORKER_INFO__INIT;
    w.worker_id = (char *)"w-1";
    w.host = (char *)"h";
    w.shuffle_endpoint = (char *)"tcp://127.0.0.1:1";
    w.alive = 1;
    w.rss_peak = 7 << 20;
    Quern__AttemptRef a = QUERN__ATTEMPT_REF__INIT, *ap = &a;
    a.job_id = (char *)"job-x-1";
    a.kind = QUERN__TASK_KIND__REDUCE;
    a.task = 2;
    a.attempt = 3;
    w.running = &ap;
    w.n_running = 1;
    json_t *o = qn_json_worker(&w);
    cr_assert(json_is_true(json_object_get(o, "alive")));
    cr_assert_eq(json_integer_value(json_object_get(o, "rss_peak_bytes")),
                 7 << 20);
    json_t *r = json_array_get(json_object_get(o, "running"), 0);
    cr_assert_str_eq(json_string_value(json_object_get(r, "task")), "r2");
    cr_assert_eq(json_integer_value(json_object_get(r, "attempt")), 3);
    json_decref(o);
}
