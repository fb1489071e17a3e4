/*
 * test_ratelimit.c -- the per-address token bucket.
 */
#include "helpers.h"
#include "ratelimit.h"

#include <criterion/criterion.h>
#include <stdio.h>

static unsigned s_taken(qn_ratelimit *r, const char *addr, int64_t now,
                        unsigned tries)
{
    unsigned n = 0;
    for (unsigned i = 0; i < tries; i++)
        n += (unsigned)qn_ratelimit_take(r, addr, now);
    return n;
}

Test(ratelimit, takes_a_burst_then_refuses)
{
    static qn_ratelimit r;
    qn_ratelimit_init(&r, 100, 50);
    cr_assert_eq(s_taken(&r, "10.0.0.1", 1000, 80), 50);
    cr_assert_eq(qn_ratelimit_take(&r, "10.0.0.1", 1000), 0);
}

Test(ratelimit, refills_at_its_rate_up_to_the_burst)
{
    static qn_ratelimit r;
    qn_ratelimit_init(&r, 100, 50);
    cr_assert_eq(s_taken(&r, "a", 1000, 50), 50);
    /* 100 ms at 100 a second: 10 more. */
    cr_assert_eq(s_taken(&r, "a", 1100, 30), 10);
    /* A minute later: full again, but no more than the burst. */
    cr_assert_eq(s_taken(&r, "a", 61100, 80), 50);
}

Test(ratelimit, addresses_have_buckets_of_their_own)
{
    static qn_ratelimit r;
    qn_ratelimit_init(&r, 1, 5);
    cr_assert_eq(s_taken(&r, "a", 1000, 10), 5);
    cr_assert_eq(s_taken(&r, "b", 1000, 10), 5);
    cr_assert_eq(s_taken(&r, NULL, 1000, 10), 5);
    cr_assert_eq(s_taken(&r, "", 1000, 10), 0); /* NULL is "" */
}

Test(ratelimit, many_addresses_use_a_fixed_table)
{
    static qn_ratelimit r;
    qn_ratelimit_init(&r, 1, 2);
    char addr[32];
    /* Twice the table's addresses, each taking its burst. */
    for (int i = 0; i < 2 * QN_RATELIMIT_SLOTS; i++) {
        snprintf(addr, sizeof addr, "10.0.%d.%d", i / 256, i % 256);
        cr_assert_eq(s_taken(&r, addr, 1000 + i, 3), 2);
    }
    /* The most recent are remembered, still empty ... */
    cr_assert_eq(qn_ratelimit_take(&r, addr, 1000 + 2 * QN_RATELIMIT_SLOTS), 0);
    /* ... the first was forgotten, and starts full. */
    cr_assert_eq(s_taken(&r, "10.0.0.0", 1000 + 2 * QN_RATELIMIT_SLOTS, 3), 2);
}
