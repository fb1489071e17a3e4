/*
 * test_sortbuf.c -- the map side's sort buffer: order, limits, reset.
 */
#include "helpers.h"

#include "sortbuf.h"
#include "util.h"

#include <stdint.h>

TestSuite(sortbuf, .fini = qn_test_leak_check);

/* Bytes a record takes: an 8-byte header, key, value, 16-byte index entry. */
#define REC_COST(klen, vlen) (8 + (klen) + (vlen) + 16)

/* A record as added, for the reference sort. */
typedef struct {
    unsigned part;
    const char *key;
    size_t klen;
    char val[32];
    size_t vlen;
    size_t seq; /* insertion order */
} s_rec;

static qn_cmp_fn s_ref_cmp;

/* The default order, spelled out: bytes, then the shorter key first. */
static int s_bytes_cmp(const void *a, size_t alen, const void *b, size_t blen)
{
    size_t n = alen < blen ? alen : blen;
    int c = n ? memcmp(a, b, n) : 0;
    if (c)
        return c;
    return alen < blen ? -1 : alen > blen;
}

static int s_ref_order(const void *pa, const void *pb)
{
    const s_rec *a = pa, *b = pb;
    if (a->part != b->part)
        return a->part < b->part ? -1 : 1;
    int c = s_ref_cmp(a->key, a->klen, b->key, b->klen);
    if (c)
        return c;
    return a->seq < b->seq ? -1 : a->seq > b->seq;
}

/* Add recs in order, sort, and compare with a stable reference sort. */
static void s_check_sort(qn_sortbuf *sb, s_rec *recs, size_t n, qn_cmp_fn cmp)
{
    size_t bytes = 0;
    for (size_t i = 0; i < n; i++) {
        recs[i].seq = i;
        cr_assert_eq(qn_sortbuf_add(sb, recs[i].part, recs[i].key, recs[i].klen,
                                    recs[i].val, recs[i].vlen),
                     0, "record %zu", i);
        bytes += 8 + recs[i].klen + recs[i].vlen;
    }
    cr_assert_eq(qn_sortbuf_count(sb), n);
    cr_assert_eq(qn_sortbuf_bytes(sb), bytes);
    qn_sortbuf_sort(sb);
    s_ref_cmp = cmp ? cmp : s_bytes_cmp;
    qsort(recs, n, sizeof *recs, s_ref_order);
    for (size_t i = 0; i < n; i++) {
        unsigned part;
        const void *k, *v;
        size_t kl, vl;
        qn_sortbuf_get(sb, i, &part, &k, &kl, &v, &vl);
        cr_assert_eq(part, recs[i].part, "position %zu: partition", i);
        cr_assert_eq(kl, recs[i].klen, "position %zu: key length", i);
        cr_assert_arr_eq(k, recs[i].key, kl, "position %zu: key", i);
        cr_assert_eq(vl, recs[i].vlen, "position %zu: value length", i);
        cr_assert_arr_eq(v, recs[i].val, vl,
                         "position %zu: value (insertion order)", i);
        if (i > 0) {
            int same = recs[i - 1].part == recs[i].part &&
                       s_ref_cmp(recs[i - 1].key, recs[i - 1].klen, recs[i].key,
                                 recs[i].klen) == 0;
            cr_assert_eq(!!qn_sortbuf_same_key(sb, i - 1, i), same,
                         "same_key(%zu, %zu)", i - 1, i);
            cr_assert_eq(!!qn_sortbuf_same_key(sb, i, i - 1), same,
                         "same_key(%zu, %zu)", i, i - 1);
        }
        cr_assert(qn_sortbuf_same_key(sb, i, i));
    }
    cr_assert_eq(qn_sortbuf_count(sb), n);
}

/*
 * Keys that probe the 8-byte prefix shortcut of the default order: keys
 * that are prefixes of each other, NUL bytes (which equal the prefix's
 * padding), bytes over 0x7f, and long keys sharing their first 8 bytes.
 */
static const struct {
    const char *s;
    size_t len;
} s_keys[] = {
    {"", 0},
    {"a", 1},
    {"a\0", 2},
    {"a\0\0\0\0\0\0\0", 8},
    {"a\0\0\0\0\0\0\0\0", 9},
    {"a\0\0\0\0\0\0\0\x01", 9},
    {"ab", 2},
    {"b", 1},
    {"\x7f", 1},
    {"\x80", 1},
    {"\xff\xff", 2},
    {"abcdefgh", 8},
    {"abcdefghA", 9},
    {"abcdefghB", 9},
    {"abcdefghAA", 10},
    {"abcdefgh\x80", 9},
    {"abcdefg", 7},
    {"abcdefgi", 8},
    {"\0", 1},
    {"\0\0", 2},
};

Test(sortbuf, sorts_by_partition_then_key_then_insertion_order)
{
    qn_sortbuf *sb = qn_sortbuf_new(1 << 20, NULL);
    cr_assert_not_null(sb);
    size_t n = 3000;
    s_rec *recs = calloc(n, sizeof *recs);
    uint64_t st = 1;
    for (size_t i = 0; i < n; i++) {
        size_t k = qn_test_rand(&st) % QN_ARRAY_LEN(s_keys);
        recs[i].part = (unsigned)(qn_test_rand(&st) % 4);
        recs[i].key = s_keys[k].s;
        recs[i].klen = s_keys[k].len;
        recs[i].vlen =
            (size_t)snprintf(recs[i].val, sizeof recs[i].val, "v%zu", i);
    }
    s_check_sort(sb, recs, n, NULL);
    free(recs);
    qn_sortbuf_destroy(&sb);
    cr_assert_null(sb);
    qn_sortbuf_destroy(&sb);
}

/*
 * Keys longer than 8 bytes that share their first 8, around the key
 * length the index entries can hold (4095), so the sort must compare the
 * keys themselves.
 */
Test(sortbuf, sorts_long_keys_sharing_a_prefix)
{
    static const size_t lens[] = {0,    7,    8,    9,    10,   100,
                                  4094, 4095, 4096, 4097, 5000, 9000};
    enum { NLENS = sizeof lens / sizeof lens[0] };
    /* Key j: "prefix!!" then j's length of 'x', with byte 8 + (j % 5) set
     * to 'y' when it exists, so keys differ at various depths. */
    char *keys[NLENS * 2];
    size_t n = 0;
    for (size_t i = 0; i < NLENS; i++) {
        for (int variant = 0; variant < 2; variant++) {
            size_t len = lens[i];
            char *k = malloc(len + 1);
            memcpy(k, "prefix!!", len < 8 ? len : 8);
            for (size_t b = 8; b < len; b++)
                k[b] = 'x';
            if (variant && len > 8)
                k[len - 1 - (i % (len - 8))] = 'y';
            else if (variant && len > 0)
                k[len - 1] = '\0';
            keys[n++] = k;
        }
    }
    qn_sortbuf *sb = qn_sortbuf_new(1 << 20, NULL);
    size_t total = n * 3;
    s_rec *recs = calloc(total, sizeof *recs);
    uint64_t st = 8;
    for (size_t i = 0; i < total; i++) {
        size_t k = qn_test_rand(&st) % n;
        recs[i].part = (unsigned)(qn_test_rand(&st) % 2);
        recs[i].key = keys[k];
        recs[i].klen = lens[k / 2];
        recs[i].vlen =
            (size_t)snprintf(recs[i].val, sizeof recs[i].val, "%zu", i);
    }
    s_check_sort(sb, recs, total, NULL);
    free(recs);
    for (size_t i = 0; i < n; i++)
        free(keys[i]);
    qn_sortbuf_destroy(&sb);
}

Test(sortbuf, equal_keys_keep_insertion_order)
{
    qn_sortbuf *sb = qn_sortbuf_new(1 << 20, NULL);
    size_t n = 2000;
    s_rec *recs = calloc(n, sizeof *recs);
    for (size_t i = 0; i < n; i++) {
        recs[i].part = 0;
        recs[i].key = i % 3 ? "same-long-key-0123456789" : "same";
        recs[i].klen = strlen(recs[i].key);
        recs[i].vlen =
            (size_t)snprintf(recs[i].val, sizeof recs[i].val, "%zu", i);
    }
    s_check_sort(sb, recs, n, NULL);
    free(recs);
    qn_sortbuf_destroy(&sb);
}

/* Inputs that upset naive quicksorts: sorted, reversed, organ pipe. */
Test(sortbuf, sorts_adversarial_input_orders)
{
    static char keys[4000][8];
    qn_sortbuf *sb = qn_sortbuf_new(1 << 20, NULL);
    size_t n = QN_ARRAY_LEN(keys);
    s_rec *recs = calloc(n, sizeof *recs);
    for (int shape = 0; shape < 4; shape++) {
        for (size_t i = 0; i < n; i++) {
            size_t v = shape == 0   ? i
                       : shape == 1 ? n - i
                       : shape == 2 ? (i < n / 2 ? i : n - i)
                                    : i % 7;
            snprintf(keys[i], sizeof keys[i], "%07zu", v);
            recs[i].part = 0;
            recs[i].key = keys[i];
            recs[i].klen = 7;
            recs[i].vlen = (size_t)snprintf(recs[i].val, sizeof recs[i].val,
                                            "%d-%zu", shape, i);
        }
        s_check_sort(sb, recs, n, NULL);
        qn_sortbuf_reset(sb);
    }
    free(recs);
    qn_sortbuf_destroy(&sb);
}

/* A custom order: decimal numbers by value, so "9" < "10". */
static int s_numeric(const void *a, size_t alen, const void *b, size_t blen)
{
    unsigned long x = 0, y = 0;
    for (size_t i = 0; i < alen; i++)
        x = x * 10 + (unsigned long)(((const char *)a)[i] - '0');
    for (size_t i = 0; i < blen; i++)
        y = y * 10 + (unsigned long)(((const char *)b)[i] - '0');
    return x < y ? -1 : x > y;
}

Test(sortbuf, sorts_with_a_custom_compare)
{
    static char keys[2000][12];
    qn_sortbuf *sb = qn_sortbuf_new(1 << 20, s_numeric);
    size_t n = QN_ARRAY_LEN(keys);
    s_rec *recs = calloc(n, sizeof *recs);
    uint64_t st = 99;
    for (size_t i = 0; i < n; i++) {
        /* "7" and "007" are equal in this order: insertion order decides. */
        unsigned long v = qn_test_rand(&st) % 300;
        int zeros = (int)(qn_test_rand(&st) % 3);
        recs[i].klen =
            (size_t)snprintf(keys[i], sizeof keys[i], "%0*lu", zeros + 1, v);
        recs[i].key = keys[i];
        recs[i].part = (unsigned)(qn_test_rand(&st) % 3);
        recs[i].vlen =
            (size_t)snprintf(recs[i].val, sizeof recs[i].val, "%zu", i);
    }
    s_check_sort(sb, recs, n, s_numeric);
    /* Spot check that the custom order, not bytes, decided: in bytes,
     * "10" would come before "9". */
    unsigned part;
    const void *k, *v;
    size_t kl, vl;
    int saw_9_before_10 = 0;
    int prev_9 = 0;
    for (size_t i = 0; i < n; i++) {
        qn_sortbuf_get(sb, i, &part, &k, &kl, &v, &vl);
        int is_10 = s_numeric(k, kl, "10", 2) == 0;
        if (part == 0 && prev_9 && is_10)
            saw_9_before_10 = 1;
        prev_9 = part == 0 && s_numeric(k, kl, "9", 1) == 0;
    }
    cr_assert(saw_9_before_10, "9 did not come before 10 in partition 0");
    free(recs);
    qn_sortbuf_destroy(&sb);
}

Test(sortbuf, sorts_empty_keys_and_values)
{
    qn_sortbuf *sb = qn_sortbuf_new(4096, NULL);
    s_rec recs[6] = {
        {.part = 1, .key = "", .klen = 0, .val = "", .vlen = 0},
        {.part = 0, .key = "x", .klen = 1, .val = "", .vlen = 0},
        {.part = 0, .key = "", .klen = 0, .val = "a", .vlen = 1},
        {.part = 1, .key = "", .klen = 0, .val = "b", .vlen = 1},
        {.part = 0, .key = "", .klen = 0, .val = "", .vlen = 0},
        {.part = 2, .key = "x", .klen = 1, .val = "c", .vlen = 1},
    };
    s_check_sort(sb, recs, QN_ARRAY_LEN(recs), NULL);
    qn_sortbuf_destroy(&sb);
}

Test(sortbuf, sort_of_nothing_or_one_record)
{
    qn_sortbuf *sb = qn_sortbuf_new(4096, NULL);
    qn_sortbuf_sort(sb);
    cr_assert_eq(qn_sortbuf_count(sb), 0);
    cr_assert_eq(qn_sortbuf_add(sb, 5, "k", 1, "v", 1), 0);
    qn_sortbuf_sort(sb);
    unsigned part;
    const void *k, *v;
    size_t kl, vl;
    qn_sortbuf_get(sb, 0, &part, &k, &kl, &v, &vl);
    cr_assert_eq(part, 5);
    cr_assert_eq(kl, 1);
    cr_assert_eq(*(const char *)k, 'k');
    cr_assert_eq(vl, 1);
    cr_assert_eq(*(const char *)v, 'v');
    qn_sortbuf_destroy(&sb);
}

/* ---- the radix sort ------------------------------------------------------ */

/*
 * The sort is a radix sort on partition bytes, key prefix bytes, key
 * length and insertion order, finished by comparisons; these tests check
 * its order against the reference on inputs that take each of its paths,
 * at sizes around its thresholds and up to 200k records.
 */

/* Makes record i's partition and key (at most MAX_TEST_KEY bytes). */
typedef void s_fill_fn(uint64_t *st, size_t i, unsigned *part,
                       unsigned char *key, size_t *klen);

#define MAX_TEST_KEY 100

/* Sort n records made by fill in a buffer just big enough, and check. */
static void s_check_filled(size_t n, s_fill_fn *fill, qn_cmp_fn cmp,
                           uint64_t seed)
{
    s_rec *recs = calloc(n ? n : 1, sizeof *recs);
    unsigned char *keys = malloc(n ? n * MAX_TEST_KEY : 1);
    uint64_t st = seed;
    size_t bytes = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char *k = keys + i * MAX_TEST_KEY;
        fill(&st, i, &recs[i].part, k, &recs[i].klen);
        cr_assert_leq(recs[i].klen, MAX_TEST_KEY);
        recs[i].key = (const char *)k;
        recs[i].vlen =
            (size_t)snprintf(recs[i].val, sizeof recs[i].val, "%zu", i);
        bytes += REC_COST(recs[i].klen, recs[i].vlen);
    }
    qn_sortbuf *sb = qn_sortbuf_new(bytes + 4096, cmp);
    cr_assert_not_null(sb);
    s_check_sort(sb, recs, n, cmp);
    qn_sortbuf_destroy(&sb);
    free(keys);
    free(recs);
}

/* Sizes around the insertion sort threshold and the radix's levels. */
static const size_t s_sizes[] = {0,   1,   2,    3,    5,     16,    47,
                                 48,  49,  64,   200,  255,   256,   257,
                                 300, 999, 4096, 4097, 20000, 200000};

/* Partitions that differ in each of their three bytes, or not at all. */
static unsigned s_some_part(uint64_t *st)
{
    static const unsigned parts[] = {0,       1,       2,       255,
                                     256,     0x1ff,   0xffff,  0x10000,
                                     0x10001, 0x8ff00, 0xffffe, 0xfffff};
    return parts[qn_test_rand(st) % QN_ARRAY_LEN(parts)];
}

static void s_fill_random(uint64_t *st, size_t i, unsigned *part,
                          unsigned char *key, size_t *klen)
{
    (void)i;
    *part = s_some_part(st);
    *klen = qn_test_rand(st) % 21;
    for (size_t b = 0; b < *klen; b++)
        key[b] = (unsigned char)qn_test_rand(st);
}

Test(sortbuf, radix_sorts_random_keys_of_random_lengths)
{
    for (size_t i = 0; i < QN_ARRAY_LEN(s_sizes); i++)
        s_check_filled(s_sizes[i], s_fill_random, NULL, 10 + i);
}

/*
 * Keys from a small vocabulary, drawn so that a few are very frequent: the
 * radix cannot tell equal keys apart, so their insertion order must come
 * from the offsets. Short keys, long keys (whose equality the sort must
 * check in memory) and long keys sharing their first 8 bytes.
 */
static void s_fill_zipf(uint64_t *st, size_t i, unsigned *part,
                        unsigned char *key, size_t *klen)
{
    (void)i;
    static const struct {
        const char *s;
        size_t len;
    } words[] = {
        {"the", 3},
        {"of", 2},
        {"and", 3},
        {"a", 1},
        {"", 0},
        {"to", 2},
        {"in", 2},
        {"a\0", 2},
        {"information", 11},
        {"informative", 11},
        {"informal", 8},
        {"inform", 6},
        {"informati", 9},
        {"xxxxxxxxxx", 10},
        {"xxxxxxxxxy", 10},
        {"abcdefgh", 8},
        {"abcdefghi", 9},
        {"abcdefghij", 10},
        {"z", 1},
        {"zz", 2},
    };
    size_t r = qn_test_rand(st) % QN_ARRAY_LEN(words);
    r = qn_test_rand(st) % (r + 1); /* skewed to the first words */
    memcpy(key, words[r].s, words[r].len);
    *klen = words[r].len;
    *part = (unsigned)(qn_test_rand(st) % 3) * 0x10101u;
}

Test(sortbuf, radix_keeps_insertion_order_of_frequent_keys)
{
    for (size_t i = 0; i < QN_ARRAY_LEN(s_sizes); i++)
        s_check_filled(s_sizes[i], s_fill_zipf, NULL, 20 + i);
}

/*
 * Keys that agree on their first 8 to 16 bytes and differ after, or only
 * in length, or not at all, with a few short keys (zero bytes at the end
 * look like the prefix's padding): the radix runs out of digits and
 * comparisons finish the job.
 */
static void s_fill_shared_prefix(uint64_t *st, size_t i, unsigned *part,
                                 unsigned char *key, size_t *klen)
{
    (void)i;
    static const unsigned char common[] = "0123456789abcdef";
    static const unsigned char tail[] = {0, 'a', 0xff};
    size_t len = 8 + qn_test_rand(st) % 9;
    size_t extra = qn_test_rand(st) % 4;
    if (qn_test_rand(st) % 16 == 0)
        len = qn_test_rand(st) % 9; /* a short key: a prefix of the others */
    memcpy(key, common, len);
    for (size_t b = 0; b < extra; b++)
        key[len + b] = tail[qn_test_rand(st) % 3];
    *klen = len + extra;
    if (*klen <= 8 && qn_test_rand(st) % 2)
        memset(key + len, 0, *klen - len);
    *part = (unsigned)(qn_test_rand(st) % 2);
}

Test(sortbuf, radix_sorts_keys_sharing_long_prefixes)
{
    /* Comparisons do most of the work here: fewer records. */
    for (size_t i = 0; i < QN_ARRAY_LEN(s_sizes) - 1; i++)
        s_check_filled(s_sizes[i], s_fill_shared_prefix, NULL, 30 + i);
    s_check_filled(50000, s_fill_shared_prefix, NULL, 30);
}

/* Equal long keys but the last, which the equality check must notice. */
static void s_fill_one_differs(uint64_t *st, size_t i, unsigned *part,
                               unsigned char *key, size_t *klen)
{
    (void)st;
    *part = 0;
    *klen = 12;
    memcpy(key, i == 499 ? "abcdefghijXZ" : "abcdefghijXY", 12);
}

Test(sortbuf, radix_notices_one_different_long_key)
{
    s_check_filled(500, s_fill_one_differs, NULL, 1);
}

/* TeraSort: 100 random bytes, range-partitioned on the first. */
static void s_fill_tera(uint64_t *st, size_t i, unsigned *part,
                        unsigned char *key, size_t *klen)
{
    (void)i;
    for (size_t b = 0; b < 100; b++)
        key[b] = (unsigned char)qn_test_rand(st);
    *klen = 100;
    *part = key[0] / 64u;
}

Test(sortbuf, radix_sorts_100_byte_random_keys)
{
    s_check_filled(100000, s_fill_tera, NULL, 40);
}

/* A user order, the bytes' reverse: the radix stops at the partition. */
static int s_reverse(const void *a, size_t alen, const void *b, size_t blen)
{
    return -s_bytes_cmp(a, alen, b, blen);
}

static void s_fill_user(uint64_t *st, size_t i, unsigned *part,
                        unsigned char *key, size_t *klen)
{
    (void)i;
    *part = s_some_part(st);
    *klen = qn_test_rand(st) % 13;
    for (size_t b = 0; b < *klen; b++)
        key[b] = (unsigned char)("ab\0\xff"[qn_test_rand(st) % 4]);
    /* One partition holds a single key, so comparisons find all equal. */
    if (*part == 0xffff) {
        *klen = 4;
        memcpy(key, "same", 4);
    }
}

Test(sortbuf, radix_sorts_with_a_user_order)
{
    for (size_t i = 0; i < QN_ARRAY_LEN(s_sizes) - 1; i++)
        s_check_filled(s_sizes[i], s_fill_user, s_reverse, 50 + i);
    s_check_filled(50000, s_fill_user, s_reverse, 50);
}

/* ---- limits -------------------------------------------------------------- */

Test(sortbuf, new_refuses_sizes_out_of_range)
{
    cr_assert_null(qn_sortbuf_new(0, NULL));
    cr_assert_null(qn_sortbuf_new(4095, NULL));
    cr_assert_null(qn_sortbuf_new((size_t)4 << 30, NULL));
    cr_assert_null(qn_sortbuf_new(SIZE_MAX, NULL));
    qn_sortbuf *sb = qn_sortbuf_new(4096, NULL);
    cr_assert_not_null(sb);
    cr_assert_eq(qn_sortbuf_count(sb), 0);
    cr_assert_eq(qn_sortbuf_bytes(sb), 0);
    qn_sortbuf_destroy(&sb);
}

Test(sortbuf, partitions_up_to_2_pow_20_sort_in_order)
{
    qn_sortbuf *sb = qn_sortbuf_new(4096, NULL);
    const unsigned top = (1u << 20) - 1;
    cr_assert_eq(qn_sortbuf_add(sb, 1u << 20, "k", 1, "v", 1), -QN_ETOOBIG);
    cr_assert_eq(qn_sortbuf_add(sb, UINT32_MAX, "k", 1, "v", 1), -QN_ETOOBIG);
    cr_assert_eq(qn_sortbuf_count(sb), 0);
    s_rec recs[] = {
        {.part = top, .key = "a", .klen = 1, .val = "1", .vlen = 1},
        {.part = 0, .key = "z", .klen = 1, .val = "2", .vlen = 1},
        {.part = 4095, .key = "m", .klen = 1, .val = "3", .vlen = 1},
        {.part = 4096, .key = "", .klen = 0, .val = "4", .vlen = 1},
        {.part = top - 1, .key = "b", .klen = 1, .val = "5", .vlen = 1},
        {.part = top, .key = "", .klen = 0, .val = "6", .vlen = 1},
    };
    s_check_sort(sb, recs, QN_ARRAY_LEN(recs), NULL);
    unsigned part;
    const void *k, *v;
    size_t kl, vl;
    qn_sortbuf_get(sb, 5, &part, &k, &kl, &v, &vl);
    cr_assert_eq(part, top);
    cr_assert_eq(kl, 1);
    qn_sortbuf_destroy(&sb);
}

Test(sortbuf, add_returns_efull_when_the_buffer_is_full)
{
    qn_sortbuf *sb = qn_sortbuf_new(4096, NULL);
    /* 100-byte records cost 124 bytes: 33 fit in 4096, 4 bytes are left. */
    char key[10], val[91];
    memset(val, 'v', sizeof val);
    size_t added = 0;
    int rc;
    for (;;) {
        snprintf(key, sizeof key, "k%08zu", added);
        rc = qn_sortbuf_add(sb, 0, key, 9, val, sizeof val);
        if (rc != 0)
            break;
        added++;
        cr_assert_lt(added, 1000, "never full");
    }
    cr_assert_eq(rc, -QN_EFULL);
    cr_assert_eq(added, 33);
    cr_assert_eq(qn_sortbuf_count(sb), added, "a refused record was counted");
    cr_assert_eq(qn_sortbuf_bytes(sb), added * (8 + 9 + 91));
    /* Still full, for this record and for a bigger one. */
    cr_assert_eq(qn_sortbuf_add(sb, 0, key, 9, val, sizeof val), -QN_EFULL);
    cr_assert_eq(qn_sortbuf_add(sb, 0, key, 9, val, 4000 - 33), -QN_EFULL);
    /* 4 bytes are left: not even an empty record fits. */
    cr_assert_eq(qn_sortbuf_add(sb, 0, "", 0, "", 0), -QN_EFULL);
    cr_assert_eq(qn_sortbuf_count(sb), added);

    /* What was added is intact. */
    qn_sortbuf_sort(sb);
    unsigned part;
    const void *k, *v;
    size_t kl, vl;
    for (size_t i = 0; i < added; i++) {
        qn_sortbuf_get(sb, i, &part, &k, &kl, &v, &vl);
        snprintf(key, sizeof key, "k%08zu", i);
        cr_assert_eq(kl, 9);
        cr_assert_arr_eq(k, key, 9);
        cr_assert_eq(vl, sizeof val);
        cr_assert_arr_eq(v, val, sizeof val);
    }
    qn_sortbuf_destroy(&sb);
}

Test(sortbuf, add_returns_etoobig_for_a_record_that_cannot_fit)
{
    qn_sortbuf *sb = qn_sortbuf_new(4096, NULL);
    static char big[8192];
    size_t exact = 4096 - REC_COST(0, 0); /* key + value that fill it */
    cr_assert_eq(qn_sortbuf_add(sb, 0, big, 1, big, exact), -QN_ETOOBIG);
    cr_assert_eq(qn_sortbuf_add(sb, 0, big, exact + 1, "", 0), -QN_ETOOBIG);
    cr_assert_eq(qn_sortbuf_add(sb, 0, big, 8000, big, 8000), -QN_ETOOBIG);
    cr_assert_eq(qn_sortbuf_add(sb, 0, "k", 1, big, SIZE_MAX - 10),
                 -QN_ETOOBIG);
    cr_assert_eq(qn_sortbuf_count(sb), 0);
    /* Exactly the whole buffer fits when empty... */
    cr_assert_eq(qn_sortbuf_add(sb, 0, big, 1, big, exact - 1), 0);
    cr_assert_eq(qn_sortbuf_count(sb), 1);
    /* ...and is only "full", not "too big", when it is not. */
    cr_assert_eq(qn_sortbuf_add(sb, 0, big, 1, big, exact - 1), -QN_EFULL);
    cr_assert_eq(qn_sortbuf_add(sb, 0, "", 0, "", 0), -QN_EFULL);
    qn_sortbuf_destroy(&sb);
}

Test(sortbuf, reset_empties_the_buffer_for_reuse)
{
    qn_sortbuf *sb = qn_sortbuf_new(4096, NULL);
    char key[32];
    int i = 0;
    for (;; i++) {
        snprintf(key, sizeof key, "old-%04d", i);
        if (qn_sortbuf_add(sb, 1, key, 8, "old", 3) != 0)
            break;
    }
    size_t full = qn_sortbuf_count(sb);
    cr_assert_gt(full, 0);
    qn_sortbuf_reset(sb);
    cr_assert_eq(qn_sortbuf_count(sb), 0);
    cr_assert_eq(qn_sortbuf_bytes(sb), 0);
    /* The whole room is there again, and no old record comes back. */
    for (size_t j = 0; j < full; j++) {
        snprintf(key, sizeof key, "new-%04zu", full - 1 - j);
        cr_assert_eq(qn_sortbuf_add(sb, 0, key, 8, "new", 3), 0, "record %zu",
                     j);
    }
    cr_assert_eq(qn_sortbuf_add(sb, 0, key, 8, "new", 3), -QN_EFULL);
    qn_sortbuf_sort(sb);
    for (size_t j = 0; j < full; j++) {
        unsigned part;
        const void *k, *v;
        size_t kl, vl;
        qn_sortbuf_get(sb, j, &part, &k, &kl, &v, &vl);
        snprintf(key, sizeof key, "new-%04zu", j);
        cr_assert_eq(part, 0);
        cr_assert_arr_eq(k, key, 8);
        cr_assert_arr_eq(v, "new", 3);
    }
    qn_sortbuf_destroy(&sb);
}

/* The smallest buffer, used until full, sorted, reset, several times. */
Test(sortbuf, buffer_of_4_kib_sorts_each_fill)
{
    for (size_t size = 4096; size <= 4096 + 15; size += 5) {
        qn_sortbuf *sb = qn_sortbuf_new(size, NULL);
        cr_assert_not_null(sb, "size %zu", size);
        uint64_t st = 3 + size;
        s_rec recs[300];
        char keys[300][12];
        for (int round = 0; round < 5; round++) {
            size_t n = 0;
            for (;; n++) {
                cr_assert_lt(n, QN_ARRAY_LEN(recs));
                recs[n].part = (unsigned)(qn_test_rand(&st) % 3);
                recs[n].klen = 1 + qn_test_rand(&st) % 10;
                for (size_t b = 0; b < recs[n].klen; b++)
                    keys[n][b] = (char)('a' + qn_test_rand(&st) % 3);
                recs[n].key = keys[n];
                recs[n].vlen = (size_t)snprintf(recs[n].val, sizeof recs[n].val,
                                                "%d/%zu", round, n);
                int rc =
                    qn_sortbuf_add(sb, recs[n].part, recs[n].key, recs[n].klen,
                                   recs[n].val, recs[n].vlen);
                if (rc == -QN_EFULL)
                    break;
                cr_assert_eq(rc, 0);
            }
            cr_assert_gt(n, 50, "a 4 KiB buffer held only %zu records", n);
            qn_sortbuf_reset(sb);
            s_check_sort(sb, recs, n, NULL);
            qn_sortbuf_reset(sb);
        }
        qn_sortbuf_destroy(&sb);
    }
}
