/*
 * test_job.c -- the master's record of a job: counters, failures kept,
 * attempts, map outputs and what they counted, crash sites and skipped
 * records, and the list of jobs.
 */
#include "helpers.h"

#include "../master/job.h"

#include <limits.h>

static qn_job job;
static qn_jobs list;

static void teardown(void)
{
    qn_job_release(&job);
    qn_jobs_release(&list);
    qn_test_leak_check();
}

TestSuite(job, .fini = teardown);

/* A job spec with nreduce reducers, as a submit would unpack it. */
static Quern__JobSpec *s_spec(unsigned nreduce)
{
    Quern__JobSpec js = QUERN__JOB_SPEC__INIT;
    js.name = (char *)"t";
    js.output = (char *)"/tmp/out";
    js.nreduce = nreduce;
    js.skip_bad_records = 1;
    uint8_t buf[256];
    size_t n = quern__job_spec__pack(&js, buf);
    return quern__job_spec__unpack(NULL, n, buf);
}

/* Splits of nmaps maps of one piece each, named f0, f1, ... */
static qn_splits s_splits(unsigned nmaps)
{
    qn_splits s = {0};
    for (unsigned i = 0; i < nmaps; i++) {
        qn_split *sp = qn_splits_add(&s);
        sp->pieces = qn_calloc(1, sizeof *sp->pieces);
        sp->n = sp->cap = 1;
        char name[16];
        snprintf(name, sizeof name, "f%u", i);
        sp->pieces[0].name = qn_strdup(name);
        sp->pieces[0].path = qn_strdup(name);
    }
    return s;
}

static void s_init(unsigned nmaps, unsigned nreduce, int out_dataset)
{
    Quern__JobSpec *spec = s_spec(nreduce);
    qn_splits sp = s_splits(nmaps);
    qn_job_init(&job, "job-x-1", &spec, &sp, out_dataset, 1000, 5000);
    cr_assert_null(spec, "the spec is the job's now");
    cr_assert_null(sp.splits, "the splits are the job's now");
}

Test(job, starts_running_with_every_builtin_counter_at_zero)
{
    s_init(3, 2, 0);
    cr_assert_eq(job.nmaps, 3);
    cr_assert_eq(job.nreduce, 2);
    cr_assert_eq(job.state, QUERN__JOB_STATE__JOB_RUNNING);
    cr_assert_eq(job.start, 1000);
    cr_assert_eq(job.submit_wall, 5000);
    cr_assert_eq(job.counters.n, 9);
    cr_assert_str_eq(job.counters.v[0].name, "map_attempts");
    cr_assert_str_eq(job.counters.v[8].name, "remote_maps");
    for (size_t i = 0; i < job.counters.n; i++)
        cr_assert_eq(job.counters.v[i].value, 0);
    cr_assert_eq(job.out.dataset, 0);
    cr_assert_null(job.out.copy);
}

Test(job, a_dataset_output_wants_two_copies_and_none_on_the_way)
{
    s_init(1, 3, 1);
    cr_assert_eq(job.out.dataset, 1);
    cr_assert_eq(job.out.replicas, 2);
    for (unsigned p = 0; p < 3; p++)
        cr_assert_eq(job.out.copy[p], -1);
}

Test(job, counters_add_and_saturate_and_stop_at_the_limit)
{
    s_init(1, 1, 0);
    size_t i = qn_job_count(&job, "mine", 5);
    cr_assert_eq(qn_job_count(&job, "mine", 7), i);
    cr_assert_eq(qn_job_counter(&job, "mine"), 12);
    qn_job_count(&job, "mine", LLONG_MAX);
    cr_assert_eq(qn_job_counter(&job, "mine"), LLONG_MAX);
    cr_assert_eq(qn_job_counter(&job, "absent"), 0);
    char name[32];
    for (int k = 0; job.counters.n < QN_JOB_MAX_COUNTERS; k++) {
        snprintf(name, sizeof name, "c%d", k);
        cr_assert_neq(qn_job_count(&job, name, 1), SIZE_MAX);
    }
    cr_assert_eq(qn_job_count(&job, "one-too-many", 1), SIZE_MAX);
    cr_assert_eq(qn_job_count(&job, "mine", 0), i, "known names still count");
}

Test(job, keeps_the_newest_failures_and_finds_a_tasks_last)
{
    s_init(2, 1, 0);
    char why[32];
    for (unsigned k = 0; k < QN_JOB_MAX_FAILURES + 5; k++) {
        snprintf(why, sizeof why, "why %u", k);
        qn_job_add_failure(&job, QN_MAP, k % 2, k + 1, "w1", why, NULL, 0,
                           NULL);
    }
    cr_assert_eq(job.nfailures, QN_JOB_MAX_FAILURES);
    cr_assert_str_eq(job.failures[0].reason, "why 5", "the oldest went");
    cr_assert_str_eq(job.failures[0].tail, "");
    cr_assert_str_eq(job.failures[0].shard, "");
    cr_assert_eq(qn_job_counter(&job, "failed_attempts"),
                 QN_JOB_MAX_FAILURES + 5);
    cr_assert_str_eq(qn_job_last_failure(&job, QN_MAP, 0), "why 68");
    cr_assert_str_eq(qn_job_last_failure(&job, QN_MAP, 1), "why 67");
    cr_assert_str_eq(qn_job_last_failure(&job, QN_REDUCE, 0), "");
}

Test(job, attempts_are_found_by_number_and_end_once)
{
    s_init(1, 1, 0);
    cr_assert_null(qn_job_arec_last(&job, QN_REDUCE, 0));
    qn_job_attempt_start(&job, QN_REDUCE, 0, 1, 4, QN_LOC_ANY, 100, 9100);
    qn_job_attempt_start(&job, QN_REDUCE, 0, 2, 5, QN_LOC_ANY, 200, 9200);
    cr_assert_eq(qn_job_arec_last(&job, QN_REDUCE, 0)->attempt, 2);
    qn_arec *a1 = qn_job_arec_find(&job, QN_REDUCE, 0, 1);
    cr_assert(a1 && a1->worker == 4 && a1->start == 100 &&
              a1->start_wall == 9100);
    cr_assert_null(qn_job_arec_find(&job, QN_REDUCE, 0, 3));
    qn_job_arec_end(&job, QN_REDUCE, 0, 1, 150);
    qn_job_arec_end(&job, QN_REDUCE, 0, 1, 170);
    cr_assert_eq(a1->end, 150, "the first end counts");
}

Test(job, a_map_output_lost_takes_back_what_it_counted)
{
    s_init(2, 2, 0);
    qn_part parts[2] = {{10, 20, 3}, {11, 21, 4}};
    const char *names[] = {"records", "weird"};
    long long values[] = {7, LLONG_MIN};
    qn_job_count(&job, "records", 100);
    qn_job_map_done(&job, 1, 2, 3, parts, names, values, 2);
    cr_assert_eq(job.outs[1].attempt, 2);
    cr_assert_eq(job.outs[1].worker, 3);
    cr_assert_eq(job.outs[1].parts[1].raw_bytes, 21);
    cr_assert_eq(qn_job_counter(&job, "records"), 107);
    cr_assert_eq(qn_job_counter(&job, "weird"), LLONG_MIN);
    qn_job_map_lost(&job, 1);
    cr_assert_eq(qn_job_counter(&job, "records"), 100);
    cr_assert_eq(qn_job_counter(&job, "weird"), -1,
                 "LLONG_MIN is taken back as far as it goes");
    /* Run again: counted once more, and taken back once more. */
    qn_job_map_done(&job, 1, 3, 4, parts, names, values, 1);
    cr_assert_eq(qn_job_counter(&job, "records"), 107);
    qn_job_map_lost(&job, 1);
    cr_assert_eq(qn_job_counter(&job, "records"), 100);
}

Test(job, a_record_that_crashed_twice_is_listed_as_skipped_once)
{
    s_init(1, 1, 0);
    qn_job_note_crash(&job, 0, 0, 42);
    qn_job_note_skipped(&job, 0);
    cr_assert_eq(job.nskipped, 0, "one crash is not enough");
    qn_job_note_crash(&job, 0, 0, 42);
    qn_job_note_crash(&job, 0, 0, 99);
    cr_assert_eq(job.outs[0].ncrashes, 2);
    cr_assert_eq(job.outs[0].crashes[0].crashes, 2);
    qn_job_note_skipped(&job, 0);
    qn_job_note_skipped(&job, 0);
    cr_assert_eq(job.nskipped, 1);
    cr_assert_eq(job.skipped[0].offset, 42);
    cr_assert_str_eq(job.skipped[0].shard, "f0");
}

Test(job, crash_sites_are_bounded)
{
    s_init(1, 1, 0);
    for (uint64_t off = 0; off < 1000; off++)
        qn_job_note_crash(&job, 0, 0, off);
    cr_assert_eq(job.outs[0].ncrashes, QN_JOB_MAX_CRASHES);
}

Test(job, trim_keeps_the_summary)
{
    s_init(2, 1, 0);
    qn_job_count(&job, "kept", 1);
    qn_job_trim(&job);
    cr_assert_null(job.outs);
    cr_assert_null(job.progress[QN_MAP]);
    cr_assert_null(job.splits.splits);
    cr_assert_str_eq(qn_job_shard(&job, 0, 0), "", "no splits, no names");
    cr_assert_eq(qn_job_counter(&job, "kept"), 1);
}

Test(job, the_list_finds_jobs_and_counts_them_by_state)
{
    const char *ids[] = {"a", "b", "c"};
    int states[] = {QUERN__JOB_STATE__JOB_RUNNING, QUERN__JOB_STATE__JOB_FAILED,
                    QUERN__JOB_STATE__JOB_RUNNING};
    for (int i = 0; i < 3; i++) {
        qn_job *j = qn_jobs_add(&list);
        snprintf(j->id, sizeof j->id, "%s", ids[i]);
        j->state = states[i];
    }
    cr_assert_eq(qn_jobs_find(&list, "c"), 2);
    cr_assert_eq(qn_jobs_find(&list, "d"), -1);
    cr_assert_eq(qn_jobs_running(&list), 2);
    unsigned by[4];
    qn_jobs_by_state(&list, by);
    cr_assert(by[0] == 2 && by[1] == 0 && by[2] == 1 && by[3] == 0);
}
