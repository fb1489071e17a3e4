/*
 * test_copyplan.c -- the planner that keeps dataset shards at their
 * copies, driven with a fake clock: when a gone holder's copy is made
 * again, which shard first, from where to where, the throttle, hosts,
 * failed targets, surplus and draining copies, and puts.
 */
#include "helpers.h"

#include "../master/copyplan.h"

#include <stdint.h>

#define MB (1024 * 1024)

static qn_catalog cat;
static qn_cp_worker w[8];
static size_t nw;
static qn_cp_order *out;

static void teardown(void)
{
    qn_catalog_release(&cat);
    free(out);
    out = NULL;
    qn_test_leak_check();
}

TestSuite(copyplan, .fini = teardown);

static const char *const IDS[] = {"w0", "w1", "w2", "w3",
                                  "w4", "w5", "w6", "w7"};

/* n live workers w0..w(n-1) on host "h", nothing in flight. */
static void workers(size_t n)
{
    memset(w, 0, sizeof w);
    nw = n;
    for (size_t i = 0; i < n; i++) {
        w[i].id = IDS[i];
        w[i].host = "h";
        w[i].alive = 1;
    }
}

/* Worker i died at `at`. */
static void dies(size_t i, int64_t at)
{
    w[i].alive = 0;
    w[i].gone_since = at;
}

/* A sealed dataset of nshards shards of `size` bytes, replicas copies
 * wanted; shard k is held by the workers listed in holders[k] (a string
 * of worker digits, like "01"). */
static qn_dataset *dataset(const char *name, unsigned replicas,
                           uint32_t nshards, uint64_t size,
                           const char *const *holders)
{
    qn_dataset *d = qn_catalog_create(&cat, name, NULL, replicas);
    cr_assert_not_null(d);
    for (uint32_t k = 0; k < nshards; k++)
        for (const char *h = holders[k]; *h; h++)
            cr_assert_eq(qn_catalog_hold(&cat, IDS[*h - '0'], name, k, size,
                                         0x1000 + k, 1, nshards),
                         0);
    d = qn_catalog_get(&cat, name);
    cr_assert(d->sealed);
    return d;
}

static qn_cp_params params(int64_t now)
{
    return (qn_cp_params){
        .now = now, .timeout_ms = 3000, .quiet_until = 0, .per_worker = 2};
}

/* Plan with nothing under way. */
static size_t plan(const qn_cp_params *p, qn_cp_health *h)
{
    free(out);
    out = NULL;
    return qn_copyplan_run(&cat, w, nw, NULL, 0, NULL, 0, p, &out, h);
}

Test(copyplan, a_gone_holders_copy_is_made_again_only_after_the_timeout)
{
    workers(4);
    const char *const holders[] = {"01", "12"};
    dataset("t", 2, 2, MB, holders);
    dies(1, 1000);
    qn_cp_health h;
    qn_cp_params p = params(3999);
    cr_assert_eq(plan(&p, &h), 0, "copied while the holder may come back");
    cr_assert_eq(h.under, 2);
    cr_assert_eq(h.lost, 0);
    cr_assert_eq(h.next, 4000, "the grace ends at death + timeout");
    p.now = 4000;
    cr_assert_eq(plan(&p, &h), 2);
    for (int i = 0; i < 2; i++) {
        cr_assert_not(out[i].drop);
        cr_assert_eq(out[i].index, (uint32_t)i);
        cr_assert_eq(out[i].source, i == 0 ? 0 : 2, "from the live holder");
        cr_assert(out[i].target == 3 || out[i].target == (i == 0 ? 2 : 0),
                  "to a worker without a copy");
        cr_assert_eq(out[i].size, MB);
    }
    cr_assert_eq(h.next, INT64_MAX);
}

Test(copyplan, nothing_is_made_again_before_quiet_until)
{
    workers(3);
    const char *const holders[] = {"01"};
    dataset("t", 2, 1, MB, holders);
    dies(1, 0);
    qn_cp_params p = params(10000);
    p.quiet_until = 12000;
    qn_cp_health h;
    cr_assert_eq(plan(&p, &h), 0);
    cr_assert_eq(h.next, 12000);
    p.now = 12000;
    cr_assert_eq(plan(&p, &h), 1);
}

Test(copyplan, a_draining_workers_copy_is_moved_even_before_quiet_until)
{
    /* A restarted master goes on with a drain at once: its worker is
     * alive and leaving. */
    workers(3);
    const char *const holders[] = {"01", "12"};
    dataset("t", 2, 2, MB, holders);
    w[0].draining = 1;
    qn_cp_params p = params(10000);
    p.quiet_until = 12000;
    qn_cp_health h;
    cr_assert_eq(plan(&p, &h), 1, "shard 0 is copied off the draining w0");
    cr_assert_eq(out[0].index, 0);
    cr_assert_not(out[0].drop);
    cr_assert_eq(out[0].target, 2);
}

Test(copyplan, the_most_endangered_shard_goes_first)
{
    /* Three copies wanted: shard 0 has two, shard 1 one, both only on w0
     * as a source. One copy in flight per worker: shard 1 gets it. */
    workers(4);
    const char *const holders[] = {"01", "0"};
    dataset("t", 3, 2, MB, holders);
    w[1].inflight = 1; /* busy: w0 is the only source */
    qn_cp_params p = params(100000);
    p.per_worker = 1;
    cr_assert_eq(plan(&p, NULL), 1);
    cr_assert_eq(out[0].index, 1, "the shard with one copy goes first");
    cr_assert_eq(out[0].source, 0);
}

Test(copyplan, the_target_is_the_least_full_worker)
{
    workers(4);
    const char *const holders[] = {"01"};
    dataset("t", 2, 1, MB, holders);
    dies(1, 0);
    w[2].bytes = 50 * MB;
    w[3].bytes = 10 * MB;
    qn_cp_params p = params(10000);
    cr_assert_eq(plan(&p, NULL), 1);
    cr_assert_eq(out[0].target, 3);
    w[3].bytes = 60 * MB;
    cr_assert_eq(plan(&p, NULL), 1);
    cr_assert_eq(out[0].target, 2);
}

Test(copyplan, copies_in_flight_per_worker_are_throttled)
{
    /* Ten shards on w0 and the dead w1: w0 is the only source, and sends
     * at most per_worker copies at once, counting those under way. */
    workers(6);
    const char *const holders[] = {"01", "01", "01", "01", "01",
                                   "01", "01", "01", "01", "01"};
    dataset("t", 2, 10, MB, holders);
    dies(1, 0);
    qn_cp_params p = params(10000);
    p.per_worker = 3;
    cr_assert_eq(plan(&p, NULL), 3);
    for (int i = 0; i < 3; i++)
        cr_assert_eq(out[i].source, 0);
    cr_assert_eq(w[0].inflight, 3, "the plan counts what it starts");
    /* One copy under way: two more. */
    workers(6);
    dies(1, 0);
    w[0].inflight = 1;
    w[2].inflight = 1;
    qn_cp_copy busy = {.dataset = "t", .index = 0, .target = 2, .source = 0};
    free(out);
    size_t n = qn_copyplan_run(&cat, w, nw, &busy, 1, NULL, 0, &p, &out, NULL);
    cr_assert_eq(n, 2);
    for (size_t i = 0; i < n; i++)
        cr_assert_neq(out[i].index, 0, "shard 0 is being copied already");
}

Test(copyplan, no_two_copies_on_one_host_while_hosts_allow)
{
    workers(4);
    w[0].host = "a";
    w[1].host = "b";
    w[2].host = "a";
    w[3].host = "c";
    w[3].bytes = 100 * MB; /* fuller, but on a host without a copy */
    const char *const holders[] = {"01"};
    dataset("t", 2, 1, MB, holders);
    dies(1, 0);
    qn_cp_params p = params(10000);
    cr_assert_eq(plan(&p, NULL), 1);
    cr_assert_eq(out[0].target, 3, "not on host a, which has a copy");
    /* Only hosts a and c left alive with c full of work: still not a. */
    w[3].inflight = 2;
    cr_assert_eq(plan(&p, NULL), 0);
    /* One host for everything (a laptop, a test): hosts say nothing. */
    workers(3);
    dies(1, 0);
    cr_assert_eq(plan(&p, NULL), 1);
    cr_assert_eq(out[0].target, 2);
}

Test(copyplan, a_target_that_failed_is_not_asked_again)
{
    workers(4);
    const char *const holders[] = {"01"};
    dataset("t", 2, 1, MB, holders);
    dies(1, 0);
    w[3].bytes = 10 * MB;
    qn_cp_copy failed = {.dataset = "t", .index = 0, .target = 2};
    qn_cp_params p = params(10000);
    size_t n =
        qn_copyplan_run(&cat, w, nw, NULL, 0, &failed, 1, &p, &out, NULL);
    cr_assert_eq(n, 1);
    cr_assert_eq(out[0].target, 3, "w2 failed this shard's copy");
}

Test(copyplan, a_lost_shard_is_counted_not_copied)
{
    workers(3);
    const char *const holders[] = {"1"};
    dataset("t", 2, 1, MB, holders);
    dies(1, 0);
    qn_cp_params p = params(10000);
    qn_cp_health h;
    cr_assert_eq(plan(&p, &h), 0);
    cr_assert_eq(h.lost, 1);
    cr_assert_eq(h.under, 1);
}

Test(copyplan, surplus_copies_go_one_at_a_time_never_below_the_replicas)
{
    workers(4);
    const char *const holders[] = {"0123"};
    dataset("t", 2, 1, MB, holders);
    w[2].bytes = 90 * MB;
    qn_cp_params p = params(10000);
    qn_cp_health h;
    cr_assert_eq(plan(&p, &h), 1);
    cr_assert(out[0].drop);
    cr_assert_eq(out[0].target, 2, "the fullest holder drops its copy");
    cr_assert_eq(h.under, 0);
    /* While that drop is pending, the next one waits for it. */
    qn_cp_copy dropping = {.dataset = "t", .index = 0, .target = 2};
    p.dropping = &dropping;
    p.ndropping = 1;
    cr_assert_eq(plan(&p, NULL), 0);
    /* Confirmed: one more to go, then none. */
    qn_catalog_unhold(&cat, "w2", "t", 0);
    p.ndropping = 0;
    cr_assert_eq(plan(&p, NULL), 1);
    cr_assert(out[0].drop);
    qn_catalog_unhold(&cat, IDS[out[0].target], "t", 0);
    cr_assert_eq(plan(&p, NULL), 0, "two copies are not a surplus");
    /* An older worker cannot be told to drop one copy. */
    cr_assert_eq(qn_catalog_hold(&cat, "w2", "t", 0, MB, 0x1000, 1, 1), 0);
    for (size_t i = 0; i < nw; i++)
        w[i].keeps = qn_catalog_holds(qn_catalog_get(&cat, "t"), 0, w[i].id);
    cr_assert_eq(plan(&p, NULL), 0);
}

Test(copyplan, no_surplus_is_dropped_while_a_copy_is_being_made)
{
    workers(4);
    const char *const holders[] = {"012"};
    dataset("t", 2, 1, MB, holders);
    qn_cp_copy busy = {.dataset = "t", .index = 0, .target = 3, .source = 0};
    qn_cp_params p = params(10000);
    cr_assert_eq(
        qn_copyplan_run(&cat, w, nw, &busy, 1, NULL, 0, &p, &out, NULL), 0);
}

Test(copyplan, a_draining_workers_copies_are_made_elsewhere_then_dropped)
{
    workers(3);
    const char *const holders[] = {"01", "12"};
    dataset("t", 2, 2, MB, holders);
    w[1].draining = 1;
    qn_cp_params p = params(10000);
    qn_cp_health h;
    cr_assert_eq(plan(&p, &h), 2);
    cr_assert_eq(h.under, 2, "a draining copy does not count");
    cr_assert_eq(out[0].target, 2);
    cr_assert_eq(out[1].target, 0);
    /* Made: now the draining worker's copies go. */
    cr_assert_eq(qn_catalog_hold(&cat, "w2", "t", 0, MB, 0x1000, 1, 2), 0);
    cr_assert_eq(qn_catalog_hold(&cat, "w0", "t", 1, MB, 0x1001, 1, 2), 0);
    cr_assert_eq(plan(&p, &h), 2);
    cr_assert_eq(h.under, 0);
    for (int i = 0; i < 2; i++) {
        cr_assert(out[i].drop);
        cr_assert_eq(out[i].target, 1);
    }
    /* A surplus and a draining copy: the draining one goes first, even
     * from a worker holding less. */
    workers(4);
    w[1].draining = 1;
    w[3].bytes = 80 * MB;
    cr_assert_eq(qn_catalog_hold(&cat, "w3", "t", 0, MB, 0x1000, 1, 2), 0);
    cr_assert_eq(plan(&p, NULL), 2);
    cr_assert(out[0].drop);
    cr_assert_eq(out[0].target, 1);
    /* A draining worker with the only copy: copied, not dropped; it is
     * the source. */
    workers(2);
    w[0].draining = 1;
    qn_catalog_release(&cat);
    const char *const only[] = {"0"};
    dataset("u", 2, 1, MB, only);
    cr_assert_eq(plan(&p, &h), 1);
    cr_assert_not(out[0].drop);
    cr_assert_eq(out[0].source, 0);
    cr_assert_eq(out[0].target, 1);
    /* Held by both of two workers, one draining: K is 1 and the other
     * has it, but the draining copy is not dropped (2 wanted). */
    qn_catalog_release(&cat);
    const char *const both[] = {"01"};
    dataset("v", 2, 1, MB, both);
    cr_assert_eq(plan(&p, &h), 0);
    cr_assert_eq(h.under, 0, "K = 1 good copy is there");
}

Test(copyplan, a_puts_shards_are_made_up_when_a_holder_dies_or_it_seals)
{
    workers(4);
    qn_dataset *d = qn_catalog_create(&cat, "p", "put", 2);
    cr_assert_not_null(d);
    cr_assert_eq(qn_catalog_hold(&cat, "w0", "p", 0, MB, 1, 0, 0), 0);
    cr_assert_eq(qn_catalog_hold(&cat, "w0", "p", 1, MB, 2, 0, 0), 0);
    cr_assert_eq(qn_catalog_hold(&cat, "w1", "p", 1, MB, 2, 0, 0), 0);
    qn_cp_params p = params(10000);
    p.quiet_until = 1000000; /* a put does not wait for it */
    /* Its second copy may still be on its way: nothing, and not counted
     * short (a put would be news on every shard). */
    qn_cp_health h;
    cr_assert_eq(plan(&p, &h), 0);
    cr_assert_eq(h.under, 0);
    /* A holder of shard 1 dies: made up at once, no timeout. */
    dies(1, 9999);
    cr_assert_eq(plan(&p, &h), 1);
    cr_assert_eq(out[0].index, 1);
    cr_assert_eq(h.under, 1);
    /* The put is written and waits for its copies: shard 0 too. */
    d = qn_catalog_get(&cat, "p");
    d->sealing = 1;
    for (size_t i = 0; i < nw; i++)
        w[i].inflight = 0; /* the copy above was not started */
    cr_assert_eq(plan(&p, NULL), 2);
}

Test(copyplan, a_jobs_output_is_left_to_its_commit)
{
    workers(3);
    qn_catalog_create(&cat, "o", "job-x-1", 2);
    cr_assert_eq(qn_catalog_hold(&cat, "w0", "o", 0, MB, 1, 0, 0), 0);
    qn_cp_params p = params(10000);
    cr_assert_eq(plan(&p, NULL), 0);
}

Test(copyplan, copies_wanted_are_capped_by_the_workers_that_can_take_one)
{
    workers(2);
    const char *const holders[] = {"0"};
    qn_dataset *d = dataset("t", 3, 1, MB, holders);
    cr_assert_eq(qn_copyplan_wanted(d, 2), 2);
    cr_assert_eq(qn_copyplan_wanted(d, 0), 1);
    qn_cp_params p = params(10000);
    cr_assert_eq(plan(&p, NULL), 1, "a second copy, not a third");
    cr_assert_eq(out[0].target, 1);
}
