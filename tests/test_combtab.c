/*
 * test_combtab.c -- the map side's combining hash table: values gathered
 * in order, combined when blocks fill, sorted entries, a full table that
 * spills without losing a value, limits, the frame walker.
 */
#include "helpers.h"

#include "combtab.h"
#include "ifile.h"
#include "util.h"

#include <errno.h>
#include <stdint.h>

TestSuite(combtab, .fini = qn_test_leak_check);

#define KIB ((size_t)1024)
#define MIB (1024 * KIB)

/* ---- helpers ------------------------------------------------------------- */

/* Add with the hash the map side passes: qn_combtab_hash of the key. */
static int s_add(qn_combtab *ct, unsigned part, const void *key, size_t klen,
                 const void *val, size_t vlen)
{
    return qn_combtab_add(ct, part, qn_combtab_hash(key, klen), key, klen, val,
                          vlen);
}

static int s_add_str(qn_combtab *ct, unsigned part, const char *key,
                     const char *val)
{
    return s_add(ct, part, key, strlen(key), val, strlen(val));
}

static uint64_t s_rand(uint64_t *state)
{
    uint64_t x = *state;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return *state = x;
}

/* The default key order, written here independently of qn_key_cmp:
 * bytewise unsigned, the shorter key first when one is a prefix. */
static int s_ref_cmp(const void *a, size_t alen, const void *b, size_t blen)
{
    const unsigned char *x = a, *y = b;
    size_t n = alen < blen ? alen : blen;
    for (size_t i = 0; i < n; i++)
        if (x[i] != y[i])
            return x[i] < y[i] ? -1 : 1;
    return alen < blen ? -1 : alen > blen;
}

/* A job's own order: the default one reversed. */
static int s_reverse_cmp(const void *a, size_t alen, const void *b, size_t blen)
{
    return s_ref_cmp(b, blen, a, alen);
}

/* A count: vlen decimal digits (not NUL-terminated). */
static unsigned long long s_num(const void *v, size_t vlen)
{
    const char *d = v;
    unsigned long long n = 0;
    cr_assert_gt(vlen, 0, "an empty count");
    for (size_t i = 0; i < vlen; i++) {
        cr_assert(d[i] >= '0' && d[i] <= '9', "count '%.*s' is not a number",
                  (int)vlen, d);
        n = n * 10 + (unsigned long long)(d[i] - '0');
    }
    return n;
}

/* The number after the last '-' of a key like "word-42". */
static size_t s_key_rank(const char *key, size_t klen)
{
    size_t i = klen;
    while (i > 0 && key[i - 1] != '-')
        i--;
    cr_assert_gt(i, 0, "key '%.*s' has no rank", (int)klen, key);
    return (size_t)s_num(key + i, klen - i);
}

/* Entry i of a sorted table, checked: its block holds exactly nvals
 * framed values and nothing after them. */
typedef struct {
    unsigned part;
    const char *key;
    size_t klen;
    const char *vals;
    size_t vbytes, nvals;
} s_entry;

static s_entry s_get(const qn_combtab *ct, size_t i)
{
    s_entry e;
    const void *k;
    qn_combtab_get(ct, i, &e.part, &k, &e.klen, &e.vals, &e.vbytes, &e.nvals);
    e.key = k;
    size_t pos = 0, n = 0, vl;
    const void *v;
    while (qn_combtab_next(e.vals, e.vbytes, &pos, &v, &vl))
        n++;
    cr_assert_eq(pos, e.vbytes, "entry %zu: its frames end at %zu of %zu", i,
                 pos, e.vbytes);
    cr_assert_eq(n, e.nvals, "entry %zu: %zu frames, nvals says %zu", i, n,
                 e.nvals);
    return e;
}

/* The sum of an entry's values, each a count. */
static unsigned long long s_entry_sum(const s_entry *e)
{
    size_t pos = 0, vl;
    const void *v;
    unsigned long long sum = 0;
    while (qn_combtab_next(e->vals, e->vbytes, &pos, &v, &vl))
        sum += s_num(v, vl);
    return sum;
}

/* Entries i-1 and i are in strictly increasing (partition, key) order. */
static void s_check_after(const s_entry *prev, const s_entry *e, qn_cmp_fn cmp,
                          size_t i)
{
    if (prev->part != e->part) {
        cr_assert_lt(prev->part, e->part, "entry %zu: partition order", i);
        return;
    }
    cr_assert_lt(cmp(prev->key, prev->klen, e->key, e->klen), 0,
                 "entry %zu ('%.*s') is not after entry %zu ('%.*s')", i,
                 (int)e->klen, e->key, i - 1, (int)prev->klen, prev->key);
}

/* ---- combiners ----------------------------------------------------------- */

typedef struct {
    size_t calls;            /* times the combiner ran */
    size_t vals_in;          /* values it was given, in all */
    int fail;                /* s_fail_comb returns this */
    unsigned long long last; /* s_drop: the last value it dropped */
    int dropped;             /* s_drop: it dropped something */
} s_comb;

/* Word count's combiner: the values are counts; emit their sum. */
static int s_sum(void *ctx, unsigned part, const void *key, size_t klen,
                 const char *vals, size_t vbytes, size_t nvals, qn_buf *out)
{
    s_comb *c = ctx;
    (void)part;
    (void)key;
    (void)klen;
    c->calls++;
    size_t pos = 0, vl, n = 0;
    const void *v;
    unsigned long long sum = 0;
    while (qn_combtab_next(vals, vbytes, &pos, &v, &vl)) {
        sum += s_num(v, vl);
        n++;
    }
    cr_assert_eq(n, nvals, "the combiner got %zu values, told %zu", n, nvals);
    cr_assert_eq(pos, vbytes);
    c->vals_in += n;
    char d[24];
    int len = snprintf(d, sizeof d, "%llu", sum);
    return qn_combtab_frame(out, d, (size_t)len);
}

/* Emit one value: the values concatenated, so their order shows. */
static int s_concat(void *ctx, unsigned part, const void *key, size_t klen,
                    const char *vals, size_t vbytes, size_t nvals, qn_buf *out)
{
    s_comb *c = ctx;
    (void)part;
    (void)key;
    (void)klen;
    c->calls++;
    c->vals_in += nvals;
    qn_buf all = {0};
    size_t pos = 0, vl;
    const void *v;
    while (qn_combtab_next(vals, vbytes, &pos, &v, &vl))
        cr_assert_eq(qn_buf_add(&all, v, vl), 0);
    int rc = qn_combtab_frame(out, all.data, all.len);
    qn_buf_release(&all);
    return rc;
}

static int s_fail_comb(void *ctx, unsigned part, const void *key, size_t klen,
                       const char *vals, size_t vbytes, size_t nvals,
                       qn_buf *out)
{
    s_comb *c = ctx;
    (void)part;
    (void)key;
    (void)klen;
    (void)vals;
    (void)vbytes;
    (void)nvals;
    (void)out;
    c->calls++;
    return c->fail;
}

/* Keep nothing; for key "gone" (whose values are 0, 1, 2, ...) check
 * they come in order and remember the last one dropped. */
static int s_drop(void *ctx, unsigned part, const void *key, size_t klen,
                  const char *vals, size_t vbytes, size_t nvals, qn_buf *out)
{
    s_comb *c = ctx;
    (void)part;
    (void)out;
    c->calls++;
    c->vals_in += nvals;
    if (klen != 4 || memcmp(key, "gone", 4) != 0)
        return 0;
    size_t pos = 0, vl;
    const void *v;
    while (qn_combtab_next(vals, vbytes, &pos, &v, &vl)) {
        unsigned long long n = s_num(v, vl);
        cr_assert(!c->dropped || n == c->last + 1,
                  "value %llu given to the combiner after %llu", n, c->last);
        c->last = n;
        c->dropped = 1;
    }
    return 0;
}

/* ---- gathering and combining --------------------------------------------- */

Test(combtab, gathers_values_in_insertion_order_without_combiner)
{
    qn_combtab *ct = qn_combtab_new(1 * MIB, NULL, NULL, NULL);
    cr_assert_not_null(ct);
    char v[24];
    size_t other = 0;
    for (size_t i = 0; i < 3000; i++) {
        int n = snprintf(v, sizeof v, "%zu", i);
        cr_assert_eq(s_add(ct, 0, "hot", 3, v, (size_t)n), 0, "add %zu", i);
        if (i % 3 == 0) {
            cr_assert_eq(s_add(ct, 0, "other", 5, v, (size_t)n), 0);
            other++;
        }
    }
    cr_assert_eq(qn_combtab_count(ct), 2);
    qn_combtab_sort(ct);
    s_entry hot = s_get(ct, 0), oth = s_get(ct, 1);
    cr_assert_eq(hot.klen, 3);
    cr_assert_arr_eq(hot.key, "hot", 3);
    cr_assert_eq(oth.klen, 5);
    cr_assert_arr_eq(oth.key, "other", 5);
    /* No combiner: every value is kept, in the order it was added. */
    cr_assert_eq(hot.nvals, 3000);
    cr_assert_eq(oth.nvals, other);
    size_t pos = 0, vl;
    const void *val;
    for (size_t i = 0; i < 3000; i++) {
        cr_assert(qn_combtab_next(hot.vals, hot.vbytes, &pos, &val, &vl));
        cr_assert_eq(s_num(val, vl), i, "value %zu out of order", i);
    }
    pos = 0;
    for (size_t i = 0; i < other; i++) {
        cr_assert(qn_combtab_next(oth.vals, oth.vbytes, &pos, &val, &vl));
        cr_assert_eq(s_num(val, vl), 3 * i);
    }
    qn_combtab_destroy(&ct);
    cr_assert_null(ct);
    qn_combtab_destroy(&ct); /* NULL is fine */
}

Test(combtab, combiner_sees_values_in_insertion_order)
{
    s_comb c = {0};
    qn_combtab *ct = qn_combtab_new(1 * MIB, NULL, s_concat, &c);
    cr_assert_not_null(ct);
    qn_buf want = {0}, want2 = {0};
    char v[24];
    for (size_t i = 0; i < 3000; i++) {
        int n = snprintf(v, sizeof v, "%zu,", i);
        cr_assert_eq(s_add(ct, 1, "k", 1, v, (size_t)n), 0, "add %zu", i);
        cr_assert_eq(qn_buf_add(&want, v, (size_t)n), 0);
        if (i % 2) {
            cr_assert_eq(s_add(ct, 0, "k", 1, v, (size_t)n), 0);
            cr_assert_eq(qn_buf_add(&want2, v, (size_t)n), 0);
        }
    }
    cr_assert_gt(c.calls, 0, "the combiner never ran");
    cr_assert_eq(qn_combtab_count(ct), 2, "one key in two partitions");
    qn_combtab_sort(ct);
    const qn_buf *wants[2] = {&want2, &want};
    for (size_t i = 0; i < 2; i++) {
        s_entry e = s_get(ct, i);
        cr_assert_eq(e.part, (unsigned)i);
        cr_assert_lt(e.nvals, 3000, "nothing was combined");
        /* Combined and not yet combined values, read in order, are the
         * values as they were added. */
        qn_buf got = {0};
        size_t pos = 0, vl;
        const void *val;
        while (qn_combtab_next(e.vals, e.vbytes, &pos, &val, &vl))
            cr_assert_eq(qn_buf_add(&got, val, vl), 0);
        cr_assert_eq(got.len, wants[i]->len, "partition %zu", i);
        cr_assert_arr_eq(got.data, wants[i]->data, got.len,
                         "partition %zu: values out of order", i);
        qn_buf_release(&got);
    }
    qn_buf_release(&want);
    qn_buf_release(&want2);
    qn_combtab_destroy(&ct);
}

/* Zipf-like ranks 0..n-1 (rank r drawn in proportion to 1/(r+1)). */
typedef struct {
    double *cum;
    size_t n;
} s_zipf;

static void s_zipf_init(s_zipf *z, size_t n)
{
    z->n = n;
    z->cum = qn_calloc(n, sizeof *z->cum);
    double t = 0;
    for (size_t r = 0; r < n; r++)
        z->cum[r] = t += 1.0 / (double)(r + 1);
}

static size_t s_zipf_draw(const s_zipf *z, uint64_t *rs)
{
    double u = (double)(s_rand(rs) >> 11) / 9007199254740992.0;
    u *= z->cum[z->n - 1];
    size_t lo = 0, hi = z->n - 1;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (z->cum[mid] <= u)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* Key of rank r: short words, and every fifth a long one that shares its
 * first 30 bytes with the others (past the 8-byte prefix). */
static size_t s_word(char *buf, size_t cap, size_t r, size_t pad)
{
    int n;
    if (pad)
        n = snprintf(buf, cap, "%0*zu-w-%zu", (int)pad, (size_t)0, r);
    else if (r % 5 == 0)
        n = snprintf(buf, cap, "a-long-word-sharing-a-prefix-%zu", r);
    else
        n = snprintf(buf, cap, "w-%zu", r);
    return (size_t)n;
}

Test(combtab, summing_combiner_keeps_true_counts)
{
    enum { NKEYS = 1000, NADDS = 100000, NPART = 3 };
    s_comb c = {0};
    qn_combtab *ct = qn_combtab_new(8 * MIB, NULL, s_sum, &c);
    cr_assert_not_null(ct);
    s_zipf z;
    s_zipf_init(&z, NKEYS);
    unsigned long long *truth = qn_calloc(NKEYS, sizeof *truth);
    uint64_t rs = 0x9e3779b97f4a7c15ULL;
    size_t distinct = 0;
    char key[64], v[8];
    for (size_t i = 0; i < NADDS; i++) {
        size_t r = s_zipf_draw(&z, &rs);
        size_t kl = s_word(key, sizeof key, r, 0);
        /* Mostly "1", as word count emits, sometimes a larger count. */
        unsigned val = i % 10 == 0 ? 1 + (unsigned)(s_rand(&rs) % 999) : 1;
        int vl = snprintf(v, sizeof v, "%u", val);
        if (!truth[r])
            distinct++;
        truth[r] += val;
        cr_assert_eq(s_add(ct, (unsigned)(r % NPART), key, kl, v, (size_t)vl),
                     0, "add %zu (key %s)", i, key);
    }
    cr_assert_eq(qn_combtab_count(ct), distinct);
    cr_assert_gt(c.calls, 100, "the combiner ran %zu times", c.calls);
    qn_combtab_sort(ct);
    char *seen = qn_calloc(NKEYS, 1);
    s_entry prev = {0};
    for (size_t i = 0; i < distinct; i++) {
        s_entry e = s_get(ct, i);
        size_t r = s_key_rank(e.key, e.klen);
        cr_assert_lt(r, NKEYS);
        cr_assert(!seen[r], "key %zu appears twice", r);
        seen[r] = 1;
        size_t kl = s_word(key, sizeof key, r, 0);
        cr_assert_eq(e.klen, kl);
        cr_assert_arr_eq(e.key, key, kl);
        cr_assert_eq(e.part, r % NPART);
        cr_assert_eq(s_entry_sum(&e), truth[r], "key %s: sum %llu, true %llu",
                     key, s_entry_sum(&e), truth[r]);
        if (r == 0)
            cr_assert_lt(e.nvals, 64, "the most frequent key holds %zu values",
                         e.nvals);
        if (i > 0)
            s_check_after(&prev, &e, s_ref_cmp, i);
        prev = e;
    }
    free(seen);
    free(truth);
    free(z.cum);
    qn_combtab_destroy(&ct);
}

/* ---- order --------------------------------------------------------------- */

/*
 * Keys that probe an 8-byte prefix shortcut: prefixes of each other, NUL
 * bytes (which equal zero padding), bytes over 0x7f, long keys that share
 * their first 8 or 16 bytes, the empty key.
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
    {"\0\0\0\0\0\0\0\0\0", 9},
    {"\0\0\0\0\0\0\0\0\0\x01", 10},
    {"0123456789abcdef", 16},
    {"0123456789abcdeg", 16},
    {"0123456789abcdefX", 17},
    {"0123456789abcdefXY", 18},
    {"0123456789abcdefX\0Y", 19},
    {"0123456789abcdefX\0Z", 19},
    {"0123456789abcdefX\xffY", 19},
};

#define NKEYS_ORDER (sizeof s_keys / sizeof s_keys[0])
#define NPART_ORDER 4

typedef struct {
    unsigned part;
    size_t key; /* index in s_keys */
} s_pk;

static qn_cmp_fn s_pk_cmp_fn;

static int s_pk_order(const void *pa, const void *pb)
{
    const s_pk *a = pa, *b = pb;
    if (a->part != b->part)
        return a->part < b->part ? -1 : 1;
    return s_pk_cmp_fn(s_keys[a->key].s, s_keys[a->key].len, s_keys[b->key].s,
                       s_keys[b->key].len);
}

/*
 * Add every key to every partition twice, in a shuffled order, each value
 * the number of its add; sort with cmp (NULL: the default) and compare
 * with qsort of the (partition, key) pairs by ref.
 */
static void s_check_order(qn_cmp_fn cmp, qn_cmp_fn ref)
{
    enum { NPK = NKEYS_ORDER * NPART_ORDER, NADD = 2 * NPK };
    qn_combtab *ct = qn_combtab_new(256 * KIB, cmp, NULL, NULL);
    cr_assert_not_null(ct);
    s_pk adds[NADD], want[NPK];
    for (size_t i = 0; i < NPK; i++) {
        want[i].part = (unsigned)(i / NKEYS_ORDER);
        want[i].key = i % NKEYS_ORDER;
        adds[2 * i] = adds[2 * i + 1] = want[i];
    }
    uint64_t rs = 12345;
    for (size_t i = NADD - 1; i > 0; i--) {
        size_t j = (size_t)(s_rand(&rs) % (i + 1));
        s_pk t = adds[i];
        adds[i] = adds[j];
        adds[j] = t;
    }
    char v[16];
    for (size_t i = 0; i < NADD; i++) {
        int n = snprintf(v, sizeof v, "%zu", i);
        cr_assert_eq(s_add(ct, adds[i].part, s_keys[adds[i].key].s,
                           s_keys[adds[i].key].len, v, (size_t)n),
                     0, "add %zu", i);
    }
    cr_assert_eq(qn_combtab_count(ct), NPK);
    qn_combtab_sort(ct);
    s_pk_cmp_fn = ref;
    qsort(want, NPK, sizeof *want, s_pk_order);
    for (size_t i = 0; i < NPK; i++) {
        s_entry e = s_get(ct, i);
        size_t k = want[i].key;
        cr_assert_eq(e.part, want[i].part, "position %zu: partition", i);
        cr_assert_eq(e.klen, s_keys[k].len, "position %zu: key length", i);
        if (e.klen)
            cr_assert_arr_eq(e.key, s_keys[k].s, e.klen, "position %zu: key",
                             i);
        /* Both values, in the order they were added. */
        cr_assert_eq(e.nvals, 2, "position %zu", i);
        size_t pos = 0, vl;
        const void *val;
        unsigned long long first = 0;
        for (int j = 0; j < 2; j++) {
            cr_assert(qn_combtab_next(e.vals, e.vbytes, &pos, &val, &vl));
            unsigned long long n = s_num(val, vl);
            cr_assert_lt(n, NADD);
            cr_assert_eq(adds[n].part, e.part, "position %zu: a stray value",
                         i);
            cr_assert_eq(adds[n].key, k, "position %zu: a stray value", i);
            if (j)
                cr_assert_gt(n, first, "position %zu: values reordered", i);
            first = n;
        }
    }
    qn_combtab_destroy(&ct);
}

Test(combtab, sorts_by_partition_then_key)
{
    s_check_order(NULL, s_ref_cmp);
}

Test(combtab, sorts_by_the_jobs_comparator)
{
    s_check_order(s_reverse_cmp, s_reverse_cmp);
}

/* ---- a full table -------------------------------------------------------- */

/* What a spill checks and takes from a full table. */
typedef struct {
    size_t nkeys, npart;
    unsigned long long *got; /* per key rank: the counts taken */
    size_t *spill_of;        /* per key rank: the last spill it was in */
    size_t spills;
} s_spiller;

/* Sort, take every entry (each key once, in order), reset. */
static void s_take(qn_combtab *ct, s_spiller *sp)
{
    size_t n = qn_combtab_count(ct);
    sp->spills++;
    qn_combtab_sort(ct);
    s_entry prev = {0};
    for (size_t j = 0; j < n; j++) {
        s_entry e = s_get(ct, j);
        size_t r = s_key_rank(e.key, e.klen);
        cr_assert_lt(r, sp->nkeys);
        cr_assert_neq(sp->spill_of[r], sp->spills, "key %zu twice in spill %zu",
                      r, sp->spills);
        sp->spill_of[r] = sp->spills;
        cr_assert_eq(e.part, r % sp->npart);
        sp->got[r] += s_entry_sum(&e);
        if (j > 0)
            s_check_after(&prev, &e, s_ref_cmp, j);
        prev = e;
    }
    qn_combtab_reset(ct);
    cr_assert_eq(qn_combtab_count(ct), 0);
}

/*
 * Add NADDS counts for Zipf-distributed keys to a 64 KiB table; whenever
 * it is full, do what a map does (sort, take every entry, reset, add
 * again). The counts taken over all spills must be the true ones. pad
 * makes keys long, so the arena fills before the index does; push adds
 * with qn_combtab_push (and drains at the end) instead of qn_combtab_add.
 * Returns the number of spills before the end.
 */
static size_t s_spill_run(qn_combtab_fn fn, size_t pad, int push)
{
    enum { NKEYS = 20000, NADDS = 100000, NPART = 2 };
    s_comb c = {0};
    qn_combtab *ct = qn_combtab_new(64 * KIB, NULL, fn, &c);
    cr_assert_not_null(ct);
    s_zipf z;
    s_zipf_init(&z, NKEYS);
    unsigned long long *truth = qn_calloc(NKEYS, sizeof *truth);
    s_spiller sp = {.nkeys = NKEYS, .npart = NPART};
    sp.got = qn_calloc(NKEYS, sizeof *sp.got);
    sp.spill_of = qn_calloc(NKEYS, sizeof *sp.spill_of);
    int (*add)(qn_combtab *, unsigned, uint64_t, const void *, size_t,
               const void *, size_t) = push ? qn_combtab_push : qn_combtab_add;
    uint64_t rs = 0x2545f4914f6cdd1dULL;
    char key[256], v[8];
    for (size_t i = 0; i < NADDS; i++) {
        size_t r = s_zipf_draw(&z, &rs);
        size_t kl = s_word(key, sizeof key, r, pad);
        unsigned val = 1 + (unsigned)(s_rand(&rs) % 9);
        int vl = snprintf(v, sizeof v, "%u", val);
        truth[r] += val;
        unsigned part = (unsigned)(r % NPART);
        uint64_t h = qn_combtab_hash(key, kl);
        int rc = add(ct, part, h, key, kl, v, (size_t)vl);
        if (rc == -QN_EFULL) {
            cr_assert_gt(qn_combtab_count(ct), 0, "full with no entries");
            s_take(ct, &sp);
            rc = add(ct, part, h, key, kl, v, (size_t)vl);
            cr_assert_eq(rc, 0, "add %zu again after a reset", i);
        }
        cr_assert_eq(rc, 0, "add %zu", i);
    }
    if (push) {
        int rc;
        size_t bound = 100;
        while ((rc = qn_combtab_drain(ct)) == -QN_EFULL && bound-- > 0)
            s_take(ct, &sp);
        cr_assert_eq(rc, 0, "drain");
    }
    size_t spills = sp.spills;
    s_take(ct, &sp); /* the map's end */
    for (size_t r = 0; r < NKEYS; r++)
        cr_assert_eq(sp.got[r], truth[r],
                     "key %zu: %llu over all spills, %llu added", r, sp.got[r],
                     truth[r]);
    if (fn)
        cr_assert_gt(c.calls, 0, "the combiner never ran");
    free(sp.spill_of);
    free(sp.got);
    free(truth);
    free(z.cum);
    qn_combtab_destroy(&ct);
    return spills;
}

Test(combtab, full_index_spills_without_losing_counts)
{
    /* Short keys: 512 entries (half of 1024 slots) fill it first. */
    size_t n = s_spill_run(s_sum, 0, 0);
    cr_assert_gt(n, 10, "only %zu spills", n);
}

Test(combtab, full_arena_spills_without_losing_counts)
{
    /* Keys of some 150 bytes: the arena fills before the index. */
    size_t n = s_spill_run(s_sum, 140, 0);
    cr_assert_gt(n, 10, "only %zu spills", n);
}

Test(combtab, full_table_without_combiner_loses_nothing)
{
    /* Every value kept: the frequent keys' blocks double until one does
     * not fit. */
    size_t n = s_spill_run(NULL, 0, 0);
    cr_assert_gt(n, 10, "only %zu spills", n);
}

Test(combtab, pushed_records_survive_spills)
{
    /* Queued records (short) and records too big to queue (long keys). */
    size_t n = s_spill_run(s_sum, 0, 1);
    cr_assert_gt(n, 10, "only %zu spills", n);
    n = s_spill_run(s_sum, 140, 1);
    cr_assert_gt(n, 10, "only %zu spills", n);
    n = s_spill_run(NULL, 0, 1);
    cr_assert_gt(n, 10, "only %zu spills", n);
}

/* The number a value starts with (digits, then padding). */
static unsigned long long s_lead_num(const void *v, size_t vlen)
{
    const char *d = v;
    size_t n = 0;
    while (n < vlen && d[n] >= '0' && d[n] <= '9')
        n++;
    return s_num(v, n);
}

/* Sort, check the values of key "hot" are the next ones in order, reset. */
static void s_take_hot(qn_combtab *ct, unsigned long long *next)
{
    qn_combtab_sort(ct);
    for (size_t j = 0; j < qn_combtab_count(ct); j++) {
        s_entry e = s_get(ct, j);
        if (e.klen != 3 || memcmp(e.key, "hot", 3) != 0)
            continue;
        size_t pos = 0, vl;
        const void *v;
        while (qn_combtab_next(e.vals, e.vbytes, &pos, &v, &vl)) {
            unsigned long long n = s_lead_num(v, vl);
            cr_assert_eq(n, *next, "value %llu where %llu was due", n, *next);
            cr_assert_eq(vl == 150, n % 7 == 0, "value %llu is %zu bytes", n,
                         vl);
            (*next)++;
        }
    }
    qn_combtab_reset(ct);
}

/* Push; when the table is full, take it and push again. */
static void s_push_or_take(qn_combtab *ct, unsigned part, const void *key,
                           size_t klen, const void *val, size_t vlen,
                           unsigned long long *next, size_t *spills)
{
    uint64_t h = qn_combtab_hash(key, klen);
    int rc = qn_combtab_push(ct, part, h, key, klen, val, vlen);
    if (rc == -QN_EFULL) {
        s_take_hot(ct, next);
        (*spills)++;
        rc = qn_combtab_push(ct, part, h, key, klen, val, vlen);
    }
    cr_assert_eq(rc, 0);
}

/*
 * One key's values, pushed among other keys that fill the table again
 * and again, some short enough to queue and some not: taken spill by
 * spill, they come out in the order they were pushed.
 */
Test(combtab, pushed_values_keep_their_order_across_spills)
{
    enum { NVALS = 20000 };
    qn_combtab *ct = qn_combtab_new(64 * KIB, NULL, NULL, NULL);
    cr_assert_not_null(ct);
    uint64_t rs = 99;
    unsigned long long next = 0; /* the value of "hot" due next */
    size_t spills = 0;
    char key[32], v[200];
    for (size_t i = 0; i < NVALS; i++) {
        /* Every 7th value is too long to queue. */
        size_t vl = (size_t)snprintf(v, sizeof v, "%zu", i);
        if (i % 7 == 0) {
            memset(v + vl, '.', 150 - vl);
            vl = 150;
        }
        s_push_or_take(ct, 0, "hot", 3, v, vl, &next, &spills);
        int kl = snprintf(key, sizeof key, "noise-%u",
                          (unsigned)(s_rand(&rs) % 5000));
        s_push_or_take(ct, (unsigned)(i % 3), key, (size_t)kl, "1", 1, &next,
                       &spills);
    }
    int rc;
    size_t bound = 100;
    while ((rc = qn_combtab_drain(ct)) == -QN_EFULL && bound-- > 0) {
        s_take_hot(ct, &next);
        spills++;
    }
    cr_assert_eq(rc, 0, "drain");
    s_take_hot(ct, &next);
    cr_assert_eq(next, NVALS, "%llu values of %d came out", next, NVALS);
    cr_assert_gt(spills, 10, "only %zu spills", spills);
    qn_combtab_destroy(&ct);
}

Test(combtab, refuses_records_larger_than_the_table)
{
    qn_combtab *ct = qn_combtab_new(64 * KIB, NULL, NULL, NULL);
    cr_assert_not_null(ct);
    char *big = qn_calloc(1, 100 * KIB);
    memset(big, 'x', 100 * KIB);
    cr_assert_eq(s_add(ct, 0, "k", 1, big, 70 * KIB), -QN_ETOOBIG);
    cr_assert_eq(s_add(ct, 0, big, 60 * KIB, "1", 1), -QN_ETOOBIG);
    cr_assert_eq(s_add(ct, 0, big, 30 * KIB, big, 30 * KIB), -QN_ETOOBIG);
    cr_assert_eq(qn_combtab_count(ct), 0);

    /* A record that fits an empty table but not this one: full, and it
     * fits once the table is reset. */
    char key[16];
    for (unsigned i = 0; i < 300; i++) {
        snprintf(key, sizeof key, "k%u", i);
        cr_assert_eq(s_add_str(ct, 0, key, "1"), 0);
    }
    cr_assert_eq(s_add(ct, 0, "big", 3, big, 50 * KIB), -QN_EFULL);
    cr_assert_eq(qn_combtab_count(ct), 300, "a refused record was added");
    qn_combtab_sort(ct);
    qn_combtab_reset(ct);
    cr_assert_eq(s_add(ct, 0, "big", 3, big, 50 * KIB), 0);

    /* An existing key whose block cannot grow: full, the entry as it was. */
    cr_assert_eq(s_add(ct, 1, "k", 1, big, 2 * KIB), 0);
    cr_assert_eq(s_add(ct, 1, "k", 1, big, 4 * KIB), -QN_EFULL);
    cr_assert_eq(qn_combtab_count(ct), 2);
    qn_combtab_sort(ct);
    s_entry e = s_get(ct, 1);
    cr_assert_eq(e.part, 1);
    cr_assert_eq(e.nvals, 1);
    cr_assert_eq(e.vbytes, 4 + 2 * KIB);
    e = s_get(ct, 0);
    cr_assert_eq(e.nvals, 1);
    cr_assert_eq(e.vbytes, 4 + 50 * KIB);
    cr_assert_arr_eq(e.vals + 4, big, 50 * KIB);
    qn_combtab_reset(ct);
    cr_assert_eq(s_add(ct, 1, "k", 1, big, 4 * KIB), 0);
    free(big);
    qn_combtab_destroy(&ct);
}

/*
 * The contract of -QN_EFULL is "reset and add again": so an empty table
 * must take every record, or say it is too big. Near the arena's size,
 * a record with a short value must not be called full.
 */
Test(combtab, empty_table_never_says_full)
{
    qn_combtab *ct = qn_combtab_new(64 * KIB, NULL, NULL, NULL);
    cr_assert_not_null(ct);
    char *big = qn_calloc(1, 64 * KIB);
    /* The arena of a 64 KiB table is 56 KiB (an eighth goes to the
     * index); try keys up to and just over that. */
    for (size_t klen = 56 * KIB - 256; klen <= 56 * KIB + 8; klen++) {
        for (size_t vlen = 0; vlen <= 16; vlen++) {
            qn_combtab_reset(ct);
            int rc = s_add(ct, 0, big, klen, big, vlen);
            cr_assert(rc == 0 || rc == -QN_ETOOBIG,
                      "a key of %zu and a value of %zu bytes: %d (full) in an "
                      "empty table",
                      klen, vlen, rc);
        }
    }
    free(big);
    qn_combtab_destroy(&ct);
}

/* ---- the index ----------------------------------------------------------- */

Test(combtab, growing_index_keeps_every_key_findable)
{
    enum { NKEYS = 60000 }; /* the index starts at 4096 slots */
    qn_combtab *ct = qn_combtab_new(16 * MIB, NULL, NULL, NULL);
    cr_assert_not_null(ct);
    char key[32];
    for (int round = 0; round < 2; round++) {
        /* The second round runs after a reset, with the grown index. */
        static const char *const vals[] = {"1", "2"};
        for (int pass = 0; pass < (round ? 1 : 2); pass++) {
            const char *val = vals[pass];
            for (unsigned i = 0; i < NKEYS; i++) {
                snprintf(key, sizeof key, "key-%u", i);
                cr_assert_eq(s_add_str(ct, i % 4, key, val), 0, "key %u", i);
            }
            cr_assert_eq(qn_combtab_count(ct), NKEYS,
                         "round %d, value %s: %zu entries", round, val,
                         qn_combtab_count(ct));
        }
        qn_combtab_sort(ct);
        char *seen = qn_calloc(NKEYS, 1);
        s_entry prev = {0};
        for (size_t i = 0; i < NKEYS; i++) {
            s_entry e = s_get(ct, i);
            size_t r = s_key_rank(e.key, e.klen);
            cr_assert_lt(r, NKEYS);
            cr_assert(!seen[r], "key %zu twice", r);
            seen[r] = 1;
            cr_assert_eq(e.part, r % 4);
            cr_assert_eq(e.nvals, round ? 1u : 2u, "key %zu", r);
            cr_assert_eq(s_entry_sum(&e), round ? 1u : 3u, "key %zu", r);
            if (i > 0)
                s_check_after(&prev, &e, s_ref_cmp, i);
            prev = e;
        }
        free(seen);
        qn_combtab_reset(ct);
        cr_assert_eq(qn_combtab_count(ct), 0);
    }
    qn_combtab_destroy(&ct);
}

/* ---- combiners that fail or keep nothing --------------------------------- */

Test(combtab, combiner_failure_is_returned_by_add)
{
    s_comb c = {.fail = -77};
    qn_combtab *ct = qn_combtab_new(1 * MIB, NULL, s_fail_comb, &c);
    cr_assert_not_null(ct);
    int rc = 0;
    size_t i;
    for (i = 0; i < 10000 && rc == 0; i++)
        rc = s_add_str(ct, 0, "k", "1");
    cr_assert_eq(rc, -77, "add returned %d", rc);
    cr_assert_eq(c.calls, 1);
    cr_assert_gt(i, 2, "the combiner ran at the first values");
    cr_assert_eq(qn_combtab_count(ct), 1);
    /* The table still answers: sort shows the values held. */
    qn_combtab_sort(ct);
    s_entry e = s_get(ct, 0);
    cr_assert_geq(e.nvals, 2);
    cr_assert_leq(e.nvals, i);
    qn_combtab_destroy(&ct);
}

Test(combtab, combiner_that_keeps_nothing)
{
    s_comb c = {0};
    qn_combtab *ct = qn_combtab_new(1 * MIB, NULL, s_drop, &c);
    cr_assert_not_null(ct);
    char v[24];
    for (size_t i = 0; i < 5000; i++) {
        int n = snprintf(v, sizeof v, "%zu", i);
        cr_assert_eq(s_add(ct, 0, "gone", 4, v, (size_t)n), 0, "add %zu", i);
        cr_assert_eq(s_add(ct, 1, "once", 4, "7", 1), 0, "add %zu", i);
    }
    cr_assert_gt(c.calls, 1);
    cr_assert(c.dropped);
    cr_assert_eq(qn_combtab_count(ct), 2);
    qn_combtab_sort(ct);
    /* What is left of "gone": the values after the last one dropped, in
     * order; the table itself never leaves an entry with no value. */
    s_entry e = s_get(ct, 0);
    cr_assert_eq(e.klen, 4);
    cr_assert_arr_eq(e.key, "gone", 4);
    cr_assert_geq(e.nvals, 1);
    cr_assert_eq(c.last + 1 + e.nvals, 5000, "dropped up to %llu, %zu left",
                 c.last, e.nvals);
    size_t pos = 0, vl;
    const void *val;
    for (unsigned long long want = c.last + 1; want < 5000; want++) {
        cr_assert(qn_combtab_next(e.vals, e.vbytes, &pos, &val, &vl));
        cr_assert_eq(s_num(val, vl), want);
    }
    /* "once" in partition 1 was combined away too; what is left is 7s. */
    s_entry o = s_get(ct, 1);
    cr_assert_eq(o.part, 1);
    cr_assert_geq(o.nvals, 1);
    cr_assert_eq(s_entry_sum(&o), 7 * o.nvals);
    /* Every value was either given to the combiner or is still held. */
    cr_assert_eq(c.vals_in + e.nvals + o.nvals, 2 * 5000,
                 "%zu combined away, %zu + %zu held", c.vals_in, e.nvals,
                 o.nvals);
    qn_combtab_destroy(&ct);
}

/* ---- frames -------------------------------------------------------------- */

Test(combtab, next_walks_frames_and_stops_at_bad_ones)
{
    qn_buf b = {0};
    cr_assert_eq(qn_combtab_frame(&b, "abc", 3), 0);
    cr_assert_eq(qn_combtab_frame(&b, "", 0), 0);
    cr_assert_eq(qn_combtab_frame(&b, "defgh", 5), 0);
    cr_assert_eq(b.len, 4 + 3 + 4 + 0 + 4 + 5);
    size_t pos = 0, vl;
    const void *v;
    cr_assert(qn_combtab_next(b.data, b.len, &pos, &v, &vl));
    cr_assert_eq(vl, 3);
    cr_assert_arr_eq(v, "abc", 3);
    cr_assert(qn_combtab_next(b.data, b.len, &pos, &v, &vl));
    cr_assert_eq(vl, 0);
    cr_assert(qn_combtab_next(b.data, b.len, &pos, &v, &vl));
    cr_assert_eq(vl, 5);
    cr_assert_arr_eq(v, "defgh", 5);
    cr_assert_eq(pos, b.len);
    cr_assert_not(qn_combtab_next(b.data, b.len, &pos, &v, &vl));
    cr_assert_eq(pos, b.len, "the end moved pos");

    /* Truncated: in the last value, in its length, just after a length. */
    size_t cuts[] = {b.len - 1, 4 + 3 + 4 + 2, 4 + 3 + 4 + 4};
    for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++) {
        pos = 0;
        size_t n = 0;
        while (qn_combtab_next(b.data, cuts[i], &pos, &v, &vl))
            n++;
        cr_assert_eq(n, 2, "cut at %zu: %zu values", cuts[i], n);
        cr_assert_eq(pos, 4 + 3 + 4, "cut at %zu", cuts[i]);
    }
    /* A length that overruns the block, and one near 4 GiB. */
    uint32_t lens[] = {6, 0xffffffffu, 0xfffffffcu};
    for (size_t i = 0; i < sizeof lens / sizeof lens[0]; i++) {
        memcpy(b.data + 4 + 3 + 4, &lens[i], 4);
        pos = 4 + 3 + 4;
        cr_assert_not(qn_combtab_next(b.data, b.len, &pos, &v, &vl),
                      "length %u in a block of %zu", lens[i], b.len);
        cr_assert_eq(pos, 4 + 3 + 4);
    }
    /* Empty blocks, a short one, and pos past the end. */
    pos = 0;
    cr_assert_not(qn_combtab_next(NULL, 0, &pos, &v, &vl));
    cr_assert_not(qn_combtab_next(b.data, 3, &pos, &v, &vl));
    pos = b.len + 1;
    cr_assert_not(qn_combtab_next(b.data, b.len, &pos, &v, &vl));
    pos = SIZE_MAX;
    cr_assert_not(qn_combtab_next(b.data, b.len, &pos, &v, &vl));
    qn_buf_release(&b);
}

/* ---- limits -------------------------------------------------------------- */

Test(combtab, new_refuses_sizes_out_of_range)
{
    cr_assert_null(qn_combtab_new(0, NULL, NULL, NULL));
    cr_assert_null(qn_combtab_new(64 * KIB - 1, NULL, NULL, NULL));
    cr_assert_null(qn_combtab_new(4096 * MIB, NULL, NULL, NULL));
    cr_assert_null(qn_combtab_new(SIZE_MAX, NULL, NULL, NULL));
    qn_combtab *ct = qn_combtab_new(64 * KIB, NULL, NULL, NULL);
    cr_assert_not_null(ct);
    cr_assert_eq(qn_combtab_count(ct), 0);
    /* An empty table sorts to nothing. */
    qn_combtab_sort(ct);
    qn_combtab_reset(ct);
    cr_assert_eq(s_add_str(ct, 0, "", ""), 0, "the empty key, empty value");
    cr_assert_eq(s_add_str(ct, 0, "", ""), 0);
    cr_assert_eq(qn_combtab_count(ct), 1);
    qn_combtab_sort(ct);
    s_entry e = s_get(ct, 0);
    cr_assert_eq(e.klen, 0);
    cr_assert_eq(e.nvals, 2);
    cr_assert_eq(e.vbytes, 8);
    qn_combtab_destroy(&ct);
}

/* The partition of a new key, asked of the partitioner once per key. */
static unsigned s_calls;
static unsigned s_part_by_len(void *ctx, const void *key, size_t klen)
{
    (void)ctx;
    (void)key;
    s_calls++;
    return klen == 7 ? QN_COMBTAB_PART_LATER : (unsigned)(klen % 3);
}

Test(combtab, partition_later_once_per_key)
{
    qn_combtab *ct = qn_combtab_new(1 << 20, NULL, NULL, NULL);
    cr_assert_not_null(ct);
    qn_combtab_set_partitioner(ct, s_part_by_len);
    s_calls = 0;
    const char *keys[] = {"a", "bb", "ccc", "dddd"};
    for (int round = 0; round < 50; round++)
        for (int k = 0; k < 4; k++)
            cr_assert_eq(
                qn_combtab_push(ct, QN_COMBTAB_PART_LATER,
                                qn_combtab_hash(keys[k], strlen(keys[k])),
                                keys[k], strlen(keys[k]), "1", 1),
                0);
    cr_assert_eq(qn_combtab_drain(ct), 0);
    cr_assert_eq(s_calls, 4, "the partitioner ran %u times for 4 keys",
                 s_calls);
    cr_assert_eq(qn_combtab_count(ct), 4);
    /* A key the partitioner refuses is refused. */
    cr_assert_eq(qn_combtab_add(ct, QN_COMBTAB_PART_LATER,
                                qn_combtab_hash("refused", 7), "refused", 7,
                                "1", 1),
                 -EINVAL);
    qn_combtab_sort(ct);
    for (size_t i = 0; i < 4; i++) {
        unsigned part;
        const void *k;
        const char *vals;
        size_t kl, vb, nv;
        qn_combtab_get(ct, i, &part, &k, &kl, &vals, &vb, &nv);
        cr_assert_eq(part, kl % 3, "key of %zu bytes in partition %u", kl,
                     part);
        cr_assert_eq(nv, 50);
    }
    qn_combtab_destroy(&ct);
}
