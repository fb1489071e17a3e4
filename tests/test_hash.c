/*
 * test_hash.c -- qn_hash64 is XXH64 and the default partitioner uses it.
 *
 * The vectors are the partitioner's contract: a key's partition may not
 * depend on the machine, the build or the library's version.
 *
 * Seed-0 vectors were checked with Debian's xxhsum -H1 (xxHash 0.8.1); the
 * seeded ones with XXH64() from Debian's libxxhash0 0.8.1.
 */
#include "helpers.h"

#include "hash.h"

TestSuite(hash, .fini = qn_test_leak_check);

typedef struct {
    const char *text;
    uint64_t seed;
    uint64_t want;
} s_vector;

static const s_vector s_vectors[] = {
    {"", 0, 0xef46db3751d8e999ULL},
    {"a", 0, 0xd24ec4f1a98c6e5bULL},
    {"abc", 0, 0x44bc2cf5ad770999ULL},
    {"abcd", 0, 0xde0327b0d25d92ccULL},
    {"hello world", 0, 0x45ab6734b21e6968ULL},
    {"abcdefghijklmno", 0, 0x2e1218a2b1375068ULL},
    {"The quick brown fox jumps over the lazy dog", 0, 0x0b242d361fda71bcULL},
    {"0123456789abcdef0123456789abcdef0123456789", 0, 0xa76190c3acf08a1cULL},
    {"", 1, 0xd5afba1336a3be4bULL},
    {"abc", 1, 0xbea9ca8199328908ULL},
    {"0123456789abcdef0123456789abcdef0123456789", 1, 0x2b8d7720869b31a6ULL},
    {"abc", 0x9E3779B185EBCA87ULL, 0xa7cb2aac405e36c7ULL},
    {"0123456789abcdef0123456789abcdef0123456789", 0x9E3779B185EBCA87ULL,
     0x98037c7c9b6ac100ULL},
};

Test(hash, matches_xxh64_vectors)
{
    for (size_t i = 0; i < sizeof s_vectors / sizeof s_vectors[0]; i++) {
        const s_vector *v = &s_vectors[i];
        uint64_t got = qn_hash64(v->text, strlen(v->text), v->seed);
        cr_expect_eq(got, v->want,
                     "XXH64(\"%s\", seed %#llx) = %016llx, want %016llx",
                     v->text, (unsigned long long)v->seed,
                     (unsigned long long)got, (unsigned long long)v->want);
    }
}

/* An empty key may come with no pointer at all. */
Test(hash, hashes_no_bytes_at_null)
{
    cr_expect_eq(qn_hash64(NULL, 0, 0), 0xef46db3751d8e999ULL);
    cr_expect_eq(qn_hash64(NULL, 0, 1), 0xd5afba1336a3be4bULL);
}

/* Inputs long enough for several 32-byte stripes, with every tail path. */
Test(hash, matches_xxh64_on_long_inputs)
{
    char x100[101];
    memset(x100, 'x', 100);
    x100[100] = '\0';
    cr_expect_eq(qn_hash64(x100, 100, 0), 0x92f0de5a88a3c094ULL);

    char seq[200];
    size_t n = 0;
    for (int i = 1; i <= 40; i++)
        n += (size_t)snprintf(seq + n, sizeof seq - n, i > 1 ? ",%d" : "%d", i);
    cr_assert_eq(n, 110);
    cr_expect_eq(qn_hash64(seq, n, 0), 0x669b673778607cc3ULL);
}

/* The hash reads bytes, not words: the result cannot depend on alignment. */
Test(hash, does_not_depend_on_alignment)
{
    const char *text = "The quick brown fox jumps over the lazy dog";
    size_t len = strlen(text);
    char buf[64 + 8];
    for (size_t shift = 0; shift < 8; shift++) {
        memcpy(buf + shift, text, len);
        cr_expect_eq(qn_hash64(buf + shift, len, 0), 0x0b242d361fda71bcULL,
                     "at offset %zu", shift);
    }
}

Test(hash, partition_is_hash_modulo_reducers)
{
    char key[32];
    const unsigned counts[] = {1, 2, 3, 7, 10, 64, 1000, 65537};
    for (int k = 0; k < 500; k++) {
        int klen = snprintf(key, sizeof key, "key-%d", k);
        uint64_t h = qn_hash64(key, (size_t)klen, 0);
        for (size_t i = 0; i < sizeof counts / sizeof counts[0]; i++) {
            unsigned p = qn_hash_partition(key, (size_t)klen, counts[i]);
            cr_assert_lt(p, counts[i]);
            cr_assert_eq(p, (unsigned)(h % counts[i]), "key %s, %u reducers",
                         key, counts[i]);
        }
    }
}

Test(hash, partition_of_pinned_keys)
{
    cr_expect_eq(qn_hash_partition("hello world", 11, 10),
                 (unsigned)(0x45ab6734b21e6968ULL % 10));
    cr_expect_eq(qn_hash_partition("", 0, 7),
                 (unsigned)(0xef46db3751d8e999ULL % 7));
    cr_expect_eq(qn_hash_partition("abc", 3, 1), 0u);
}

Test(hash, partition_spreads_keys_over_reducers)
{
    /* Not a statistical test: every one of 8 reducers gets some of 10000
     * distinct keys, which any working hash does. */
    unsigned seen[8] = {0};
    char key[32];
    for (int k = 0; k < 10000; k++) {
        int klen = snprintf(key, sizeof key, "w%d", k);
        seen[qn_hash_partition(key, (size_t)klen, 8)]++;
    }
    for (int i = 0; i < 8; i++)
        cr_expect_gt(seen[i], 0u, "reducer %d got no keys", i);
}
