/*
 * test_counters.c -- named counters (lib/counters.c): a task's built-in
 * and plugin-named ones, and a job's totals added up from its tasks'.
 */
#include "helpers.h"

#include "counters.h"
#include "util.h"

#include <limits.h>

TestSuite(counters, .fini = qn_test_leak_check);

static const char *const fixed[] = {"map_input_records", "spills"};

Test(counters, fixed_counters_start_at_zero_in_their_places)
{
    qn_counters cs;
    qn_counters_init(&cs, fixed, 2);
    cr_assert_eq(cs.n, 2);
    cr_assert_eq(cs.v[1].name, fixed[1], "borrowed, not copied");
    cr_assert_eq(cs.v[0].value, 0);
    qn_counters_release(&cs);
    cr_assert_null(cs.v);
}

Test(counters, a_named_counter_is_made_once_and_added_to)
{
    qn_counters cs;
    qn_counters_init(&cs, fixed, 2);
    cr_assert_eq(qn_counters_add(&cs, "user.", "rows", 5), 2);
    cr_assert_eq(qn_counters_add(&cs, "user.", "bad", 1), 3);
    cr_assert_eq(qn_counters_add(&cs, "user.", "rows", -2), 2);
    cr_assert_eq(cs.n, 4);
    cr_assert_str_eq(cs.v[2].name, "user.rows");
    cr_assert_eq(cs.v[2].value, 3);
    cr_assert_eq(cs.v[3].value, 1);
    qn_counters_release(&cs);
}

Test(counters, fixed_names_are_not_looked_up)
{
    qn_counters cs;
    qn_counters_init(&cs, fixed, 2);
    /* A plugin's "spills" is its own, whatever the built-in is called. */
    cr_assert_eq(qn_counters_add(&cs, "", "spills", 4), 2);
    cr_assert_eq(cs.v[1].value, 0);
    cr_assert_eq(cs.v[2].value, 4);
    qn_counters_release(&cs);
}

Test(counters, a_name_that_is_not_utf8_is_mended)
{
    qn_counters cs;
    qn_counters_init(&cs, NULL, 0);
    qn_counters_add(&cs, "user.", "caf\xe9", 1);
    cr_assert_str_eq(cs.v[0].name, "user.caf?");
    cr_assert(qn_utf8_valid(cs.v[0].name));
    qn_counters_release(&cs);
}

Test(counters, many_counters_keep_their_values)
{
    qn_counters cs;
    qn_counters_init(&cs, fixed, 2);
    for (int round = 0; round < 3; round++)
        for (int i = 0; i < 500; i++) {
            char name[16];
            snprintf(name, sizeof name, "c%d", i);
            qn_counters_add(&cs, "user.", name, i);
        }
    cr_assert_eq(cs.n, 502);
    for (int i = 0; i < 500; i++)
        cr_assert_eq(cs.v[2 + i].value, 3 * i, "c%d", i);
    qn_counters_release(&cs);
}

Test(counters, folding_adds_each_counter_by_name_in_order)
{
    qn_counters a, b, job;
    qn_counters_init(&a, fixed, 2);
    qn_counters_init(&b, fixed, 2);
    qn_counters_init(&job, NULL, 0);
    a.v[0].value = 10;
    b.v[0].value = 7;
    b.v[1].value = 2;
    qn_counters_add(&a, "user.", "x", 1);
    qn_counters_add(&b, "user.", "y", 5);
    qn_counters_add(&b, "user.", "x", 3);
    qn_counters_fold(&job, &a);
    qn_counters_fold(&job, &b);
    const char *names[] = {"map_input_records", "spills", "user.x", "user.y"};
    long long values[] = {17, 2, 4, 5};
    cr_assert_eq(job.n, 4);
    for (size_t i = 0; i < 4; i++) {
        cr_assert_str_eq(job.v[i].name, names[i]);
        cr_assert_eq(job.v[i].value, values[i], "%s", names[i]);
    }
    cr_assert_neq(job.v[0].name, a.v[0].name, "the job's own copy");
    qn_counters_release(&a);
    qn_counters_release(&b);
    qn_counters_release(&job);
}

Test(counters, values_saturate_and_names_stop_at_the_limit)
{
    qn_counters cs;
    qn_counters_init(&cs, NULL, 0);
    cs.max = 2;
    cr_assert_eq(qn_counters_add(&cs, "", "a", LLONG_MAX), 0);
    qn_counters_add(&cs, "", "a", 5);
    cr_assert_eq(qn_counters_get(&cs, "a"), LLONG_MAX);
    cr_assert_eq(qn_counters_add(&cs, "", "b", LLONG_MIN), 1);
    qn_counters_add(&cs, "", "b", -1);
    cr_assert_eq(qn_counters_get(&cs, "b"), LLONG_MIN);
    cr_assert_eq(qn_counters_add(&cs, "", "c", 1), SIZE_MAX);
    cr_assert_eq(cs.n, 2);
    cr_assert_eq(qn_counters_get(&cs, "c"), 0);
    cr_assert_eq(qn_counters_add(&cs, "", "a", -1), 0, "known names count");
    qn_counters_release(&cs);
}
