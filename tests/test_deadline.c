/*
 * test_deadline.c -- the deadline heap: earliest first, only what is due,
 * and the same order as a sort for many random deadlines.
 */
#include "helpers.h"

#include "deadline.h"

static qn_deadline dl;

static void teardown(void)
{
    qn_deadline_release(&dl);
    qn_test_leak_check();
}

TestSuite(deadline, .fini = teardown);

Test(deadline, empty_has_no_next_and_pops_nothing)
{
    qn_due d;
    cr_assert_eq(qn_deadline_next(&dl), INT64_MAX);
    cr_assert_eq(qn_deadline_pop(&dl, INT64_MAX, &d), 0);
}

Test(deadline, pops_only_what_is_due_earliest_first)
{
    qn_deadline_add(&dl, 300, 1, 30);
    qn_deadline_add(&dl, 100, 2, 10);
    qn_deadline_add(&dl, 200, 3, 20);
    cr_assert_eq(qn_deadline_next(&dl), 100);
    qn_due d;
    cr_assert_eq(qn_deadline_pop(&dl, 99, &d), 0, "nothing is due at 99");
    cr_assert_eq(qn_deadline_pop(&dl, 250, &d), 1);
    cr_assert(d.at == 100 && d.kind == 2 && d.key == 10);
    cr_assert_eq(qn_deadline_pop(&dl, 250, &d), 1);
    cr_assert(d.at == 200 && d.kind == 3 && d.key == 20);
    cr_assert_eq(qn_deadline_pop(&dl, 250, &d), 0, "300 is not due at 250");
    cr_assert_eq(qn_deadline_next(&dl), 300);
}

Test(deadline, keeps_duplicates)
{
    qn_deadline_add(&dl, 5, 0, 1);
    qn_deadline_add(&dl, 5, 0, 1);
    qn_due d;
    cr_assert_eq(qn_deadline_pop(&dl, 5, &d), 1);
    cr_assert_eq(qn_deadline_pop(&dl, 5, &d), 1);
    cr_assert_eq(qn_deadline_pop(&dl, 5, &d), 0);
}

static int s_cmp(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

Test(deadline, pops_random_deadlines_in_sorted_order)
{
    enum { N = 5000 };
    static int64_t want[N];
    uint64_t st = 42;
    for (int i = 0; i < N; i++) {
        want[i] = (int64_t)(qn_test_rand(&st) % 100000);
        qn_deadline_add(&dl, want[i], 0, (uint64_t)i);
    }
    qsort(want, N, sizeof *want, s_cmp);
    qn_due d;
    for (int i = 0; i < N; i++) {
        cr_assert_eq(qn_deadline_pop(&dl, INT64_MAX, &d), 1);
        cr_assert_eq(d.at, want[i], "pop %d: %lld, want %lld", i,
                     (long long)d.at, (long long)want[i]);
    }
    cr_assert_eq(dl.n, 0);
}
