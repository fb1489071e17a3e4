/*
 * test_catalog.c -- the master's dataset catalog: holders, copies that
 * do not match, sealing, and sizes.
 */
#include "helpers.h"

#include "../master/catalog.h"

#include <stdint.h>

/* The test's catalog, released by the fixture so that only the catalog's
 * own leaks trip the leak check. */
static qn_catalog cat;

static void teardown(void)
{
    qn_catalog_release(&cat);
    qn_test_leak_check();
}

TestSuite(catalog, .fini = teardown);

/* The dataset, which must exist. */
static qn_dataset *get(const char *name)
{
    qn_dataset *d = qn_catalog_get(&cat, name);
    cr_assert_not_null(d, "no dataset %s", name);
    return d;
}

/* Is id among the shard's holders (exactly once)? */
static int listed(const qn_cshard *sh, const char *id)
{
    int n = 0;
    for (size_t k = 0; k < sh->nholders; k++)
        if (strcmp(sh->holders[k], id) == 0)
            n++;
    cr_assert_leq(n, 1, "%s listed %d times", id, n);
    return n;
}

Test(catalog, hold_adds_dataset_and_lists_holders_once)
{
    cr_assert_null(qn_catalog_get(&cat, "logs"));
    cr_assert_eq(qn_catalog_hold(&cat, "w1", "logs", 0, 100, 0xabcd, 0, 0), 0);
    cr_assert_eq(qn_catalog_hold(&cat, "w2", "logs", 0, 100, 0xabcd, 0, 0), 0);
    cr_assert_eq(qn_catalog_hold(&cat, "w1", "logs", 0, 100, 0xabcd, 0, 0), 0);
    qn_dataset *d = get("logs");
    cr_assert_str_eq(d->name, "logs");
    cr_assert_null(d->writer);
    cr_assert_not(d->sealed);
    cr_assert_eq(d->replicas, 1);
    const qn_cshard *sh = qn_catalog_shard(d, 0);
    cr_assert_not_null(sh);
    cr_assert_eq(sh->size, 100);
    cr_assert_eq(sh->crc, 0xabcd);
    cr_assert_eq(sh->nholders, 2);
    cr_assert_eq(listed(sh, "w1"), 1);
    cr_assert_eq(listed(sh, "w2"), 1);
    cr_assert(qn_catalog_holds(d, 0, "w1"));
    cr_assert(qn_catalog_holds(d, 0, "w2"));
    cr_assert_not(qn_catalog_holds(d, 0, "w3"));
    cr_assert_not(qn_catalog_holds(d, 1, "w1"));
    cr_assert_null(qn_catalog_shard(d, 1));
}

Test(catalog, shards_out_of_order_leave_unknown_gaps)
{
    cr_assert_eq(qn_catalog_hold(&cat, "w1", "d", 3, 30, 3, 0, 0), 0);
    qn_dataset *d = get("d");
    cr_assert_eq(d->nslots, 4);
    for (uint32_t i = 0; i < 3; i++)
        cr_assert_null(qn_catalog_shard(d, i), "shard %u known", i);
    cr_assert_not_null(qn_catalog_shard(d, 3));
    cr_assert_null(qn_catalog_shard(d, 4));
}

Test(catalog, unhold_removes_one_holder)
{
    qn_catalog_hold(&cat, "w1", "d", 0, 10, 1, 0, 0);
    qn_catalog_hold(&cat, "w2", "d", 0, 10, 1, 0, 0);
    qn_catalog_hold(&cat, "w1", "d", 1, 20, 2, 0, 0);
    qn_catalog_unhold(&cat, "w1", "d", 0);
    qn_dataset *d = get("d");
    cr_assert_not(qn_catalog_holds(d, 0, "w1"));
    cr_assert(qn_catalog_holds(d, 0, "w2"));
    cr_assert(qn_catalog_holds(d, 1, "w1"), "only shard 0 was let go");
    const qn_cshard *sh = qn_catalog_shard(d, 0);
    cr_assert_not_null(sh);
    cr_assert_eq(sh->nholders, 1);
    cr_assert_eq(listed(sh, "w2"), 1);
    /* The last copy going makes the shard unknown. */
    qn_catalog_unhold(&cat, "w2", "d", 0);
    cr_assert_null(qn_catalog_shard(d, 0));
    /* Unknown datasets, shards and holders are ignored. */
    qn_catalog_unhold(&cat, "w9", "d", 1);
    qn_catalog_unhold(&cat, "w1", "d", 99);
    qn_catalog_unhold(&cat, "w1", "nope", 0);
    cr_assert(qn_catalog_holds(d, 1, "w1"));
}

Test(catalog, forget_worker_drops_it_everywhere)
{
    qn_catalog_hold(&cat, "w1", "a", 0, 10, 1, 0, 0);
    qn_catalog_hold(&cat, "w1", "a", 1, 10, 2, 0, 0);
    qn_catalog_hold(&cat, "w2", "a", 1, 10, 2, 0, 0);
    qn_catalog_hold(&cat, "w1", "b", 0, 5, 3, 0, 0);
    qn_catalog_forget_worker(&cat, "w1");
    qn_dataset *a = get("a"), *b = get("b");
    cr_assert_not(qn_catalog_holds(a, 0, "w1"));
    cr_assert_not(qn_catalog_holds(a, 1, "w1"));
    cr_assert_not(qn_catalog_holds(b, 0, "w1"));
    cr_assert(qn_catalog_holds(a, 1, "w2"));
    cr_assert_null(qn_catalog_shard(a, 0));
    cr_assert_null(qn_catalog_shard(b, 0));
    cr_assert_not_null(qn_catalog_shard(a, 1));
    /* It lists what it has again. */
    cr_assert_eq(qn_catalog_hold(&cat, "w1", "a", 0, 10, 1, 0, 0), 0);
    cr_assert(qn_catalog_holds(get("a"), 0, "w1"));
}

Test(catalog, copy_with_another_size_or_crc_is_refused)
{
    cr_assert_eq(qn_catalog_hold(&cat, "w1", "d", 0, 100, 0x1111, 0, 0), 0);
    cr_assert_eq(qn_catalog_hold(&cat, "w2", "d", 0, 101, 0x1111, 0, 0), -1);
    cr_assert_eq(qn_catalog_hold(&cat, "w2", "d", 0, 100, 0x2222, 0, 0), -1);
    cr_assert_eq(qn_catalog_hold(&cat, "w1", "d", 0, 99, 0x1111, 0, 0), -1,
                 "even its first holder may not change it");
    qn_dataset *d = get("d");
    const qn_cshard *sh = qn_catalog_shard(d, 0);
    cr_assert_eq(sh->size, 100);
    cr_assert_eq(sh->crc, 0x1111);
    cr_assert_eq(sh->nholders, 1);
    cr_assert_not(qn_catalog_holds(d, 0, "w2"));
    /* A matching copy is taken. */
    cr_assert_eq(qn_catalog_hold(&cat, "w2", "d", 0, 100, 0x1111, 0, 0), 0);
    cr_assert(qn_catalog_holds(get("d"), 0, "w2"));
}

Test(catalog, sealed_with_nshards_from_a_holders_report)
{
    qn_catalog_hold(&cat, "w1", "d", 0, 10, 1, 0, 0);
    cr_assert_not(get("d")->sealed);
    cr_assert_eq(get("d")->nshards, 0);
    /* A report whose count cannot include its own shard is ignored. */
    qn_catalog_hold(&cat, "w1", "d", 2, 10, 3, 1, 2);
    cr_assert_not(get("d")->sealed);
    qn_catalog_hold(&cat, "w2", "d", 1, 10, 2, 1, 3);
    qn_dataset *d = get("d");
    cr_assert(d->sealed);
    cr_assert_eq(d->nshards, 3);
    /* Later reports do not change the count. */
    qn_catalog_hold(&cat, "w2", "d", 0, 10, 1, 1, 5);
    cr_assert_eq(get("d")->nshards, 3);
}

Test(catalog, create_refuses_an_existing_name)
{
    qn_dataset *d = qn_catalog_create(&cat, "out", "job-7", 2);
    cr_assert_not_null(d);
    cr_assert_str_eq(d->name, "out");
    cr_assert_str_eq(d->writer, "job-7");
    cr_assert_eq(d->replicas, 2);
    cr_assert_not(d->sealed);
    cr_assert_eq(d->nslots, 0);
    cr_assert_null(qn_catalog_create(&cat, "out", "put", 1));
    cr_assert_str_eq(get("out")->writer, "job-7");
    /* A dataset known only from workers' reports is taken too. */
    qn_catalog_hold(&cat, "w1", "seen", 0, 1, 1, 0, 0);
    cr_assert_null(qn_catalog_create(&cat, "seen", "put", 1));
    /* No replicas asked for means one. */
    d = qn_catalog_create(&cat, "one", "put", 0);
    cr_assert_not_null(d);
    cr_assert_eq(d->replicas, 1);
    cr_assert_eq(cat.n, 3);
    /* Once removed, the name is free. */
    qn_catalog_remove(&cat, "out");
    cr_assert_null(qn_catalog_get(&cat, "out"));
    cr_assert_eq(cat.n, 2);
    cr_assert_not_null(get("seen"));
    cr_assert_not_null(get("one"));
    cr_assert_not_null(qn_catalog_create(&cat, "out", "put", 1));
}

Test(catalog, bytes_counts_known_shards_once)
{
    qn_dataset *d = qn_catalog_create(&cat, "d", "put", 1);
    cr_assert_eq(qn_catalog_bytes(d), 0);
    qn_catalog_hold(&cat, "w1", "d", 0, 100, 1, 0, 0);
    qn_catalog_hold(&cat, "w2", "d", 0, 100, 1, 0, 0); /* a second copy */
    qn_catalog_hold(&cat, "w1", "d", 2, 50, 2, 0, 0);  /* shard 1 unknown */
    cr_assert_eq(qn_catalog_bytes(get("d")), 150);
    qn_catalog_unhold(&cat, "w1", "d", 2);
    cr_assert_eq(qn_catalog_bytes(get("d")), 100);
    qn_catalog_forget_worker(&cat, "w1");
    cr_assert_eq(qn_catalog_bytes(get("d")), 100, "w2 still holds shard 0");
    qn_catalog_forget_worker(&cat, "w2");
    cr_assert_eq(qn_catalog_bytes(get("d")), 0);
}
