/*
 * test_plugins.c -- plugins kept by content: one copy per content, its
 * SHA-256 as its name, and the least recently used idle one forgotten
 * past the limit.
 */
#include "helpers.h"

#include "../master/plugins.h"

static qn_plugins store;

static void teardown(void)
{
    qn_plugins_release(&store);
    qn_test_leak_check();
}

TestSuite(plugins, .fini = teardown);

/* A plugin whose hash is busy's. */
static int s_busy(void *ctx, const char *hash)
{
    return strcmp(ctx, hash) == 0;
}

Test(plugins, keeps_one_copy_named_by_its_sha256)
{
    char h1[QN_SHA256_HEX], h2[QN_SHA256_HEX];
    qn_plugins_keep(&store, (const uint8_t *)"abc", 3, 10, h1, NULL, NULL);
    cr_assert_str_eq(
        h1, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    qn_plugins_keep(&store, (const uint8_t *)"abc", 3, 20, h2, NULL, NULL);
    cr_assert_str_eq(h1, h2);
    cr_assert_eq(store.n, 1);
    const qn_plugin *p = qn_plugins_get(&store, h1, 30);
    cr_assert(p && p->len == 3 && memcmp(p->data, "abc", 3) == 0);
    cr_assert_eq(p->used, 30);
    cr_assert_null(qn_plugins_get(&store, "00", 40));
}

Test(plugins, past_the_limit_forgets_the_least_recently_used_idle_one)
{
    char hex[QN_PLUGINS_KEPT + 1][QN_SHA256_HEX];
    uint8_t b;
    for (int i = 0; i < QN_PLUGINS_KEPT; i++) {
        b = (uint8_t)i;
        qn_plugins_keep(&store, &b, 1, 100 + i, hex[i], NULL, NULL);
    }
    /* The oldest (0) is busy: the next oldest (1) goes. */
    b = 200;
    qn_plugins_keep(&store, &b, 1, 500, hex[QN_PLUGINS_KEPT], s_busy, hex[0]);
    cr_assert_eq(store.n, QN_PLUGINS_KEPT);
    cr_assert_not_null(qn_plugins_get(&store, hex[0], 600));
    cr_assert_null(qn_plugins_get(&store, hex[1], 600));
    cr_assert_not_null(qn_plugins_get(&store, hex[QN_PLUGINS_KEPT], 600));
}
