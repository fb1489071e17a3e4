/*
 * test_combtab.c -- the map side's combining hash table: values gathered
 * in order, runs of a repeated short value counted in their entry,
 * combined when blocks fill, sorted entries, a full table that spills
 * without losing a value, limits, the value iterator.
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
#define RUN_MAX 8 /* the longest value an entry keeps a run of */

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

/*
 * The values in a block of frames, walked here independently of
 * qn_combtab_iter: every frame whole and the last one ending exactly at
 * vbytes. A repeated frame (the table writes one for a run of two or
 * more copies of a short value) stands for its count of values.
 */
static size_t s_walk_block(const char *vals, size_t vbytes, size_t *nframes)
{
    size_t pos = 0, n = 0, frames = 0;
    while (pos < vbytes) {
        uint32_t l, r = 1;
        cr_assert_geq(vbytes - pos, 4, "a length cut at %zu of %zu", pos,
                      vbytes);
        memcpy(&l, vals + pos, 4);
        pos += 4;
        if (l & QN_COMBTAB_REPEAT) {
            l &= ~QN_COMBTAB_REPEAT;
            cr_assert_geq(vbytes - pos, 4, "a count cut at %zu of %zu", pos,
                          vbytes);
            memcpy(&r, vals + pos, 4);
            pos += 4;
            cr_assert_geq(r, 2, "a repeated frame of %u copies", r);
            cr_assert_leq(l, RUN_MAX, "a repeated value of %u bytes", l);
        }
        cr_assert_leq(l, vbytes - pos, "a value of %u bytes at %zu of %zu", l,
                      pos, vbytes);
        pos += l;
        n += r;
        frames++;
    }
    if (nframes)
        *nframes = frames;
    return n;
}

/* Entry i of a sorted table, checked: its block holds exactly its framed
 * values and nothing after them, then come reps copies of its run, and
 * the iterator gives nvals values, those of the block then the run's. */
typedef struct {
    unsigned part;
    const char *key;
    size_t klen;
    qn_combtab_vals v;
    size_t nvals;   /* v.nvals */
    size_t nblock;  /* values in the block */
    size_t nframes; /* frames in the block */
} s_entry;

static s_entry s_get(const qn_combtab *ct, size_t i)
{
    s_entry e;
    const void *k;
    qn_combtab_get(ct, i, &e.part, &k, &e.klen, &e.v);
    e.key = k;
    e.nvals = e.v.nvals;
    e.nblock = s_walk_block(e.v.vals, e.v.vbytes, &e.nframes);
    cr_assert_eq(e.nblock + e.v.reps, e.nvals,
                 "entry %zu: %zu values in the block and a run of %zu, nvals "
                 "says %zu",
                 i, e.nblock, e.v.reps, e.nvals);
    cr_assert_gt(e.nvals, 0, "entry %zu has no value", i);
    if (e.v.reps) {
        cr_assert_not_null(e.v.run);
        cr_assert_leq(e.v.runlen, RUN_MAX, "entry %zu: a run of %zu bytes", i,
                      e.v.runlen);
    }
    qn_combtab_iter it;
    qn_combtab_iter_init(&it, &e.v);
    size_t n = 0, vl;
    const void *v;
    while (qn_combtab_iter_next(&it, &v, &vl)) {
        cr_assert_lt(n, e.nvals, "entry %zu: more than %zu values", i, e.nvals);
        if (n >= e.nblock) {
            cr_assert_eq(vl, e.v.runlen, "entry %zu: value %zu is not the run",
                         i, n);
            cr_assert(vl == 0 || memcmp(v, e.v.run, vl) == 0,
                      "entry %zu: value %zu is not the run", i, n);
        }
        n++;
    }
    cr_assert_eq(n, e.nvals, "entry %zu: %zu values, nvals says %zu", i, n,
                 e.nvals);
    return e;
}

/* The sum of an entry's values, each a count. */
static unsigned long long s_entry_sum(const s_entry *e)
{
    qn_combtab_iter it;
    qn_combtab_iter_init(&it, &e->v);
    size_t vl;
    const void *v;
    unsigned long long sum = 0;
    while (qn_combtab_iter_next(&it, &v, &vl))
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
    size_t calls;               /* times the combiner ran */
    size_t vals_in;             /* values it was given, in all */
    int fail;                   /* s_fail_comb returns this */
    unsigned long long last;    /* s_drop: the last value it dropped */
    int dropped;                /* s_drop: it dropped something */
    unsigned long long seen[4]; /* s_sum: the sums of its calls since */
    size_t nseen;               /* the test last cleared nseen */
} s_comb;

/* Word count's combiner: the values are counts; emit their sum. */
static int s_sum(void *ctx, unsigned part, const void *key, size_t klen,
                 const qn_combtab_vals *vals, qn_buf *out)
{
    s_comb *c = ctx;
    (void)part;
    (void)key;
    (void)klen;
    c->calls++;
    qn_combtab_iter it;
    qn_combtab_iter_init(&it, vals);
    size_t vl, n = 0;
    const void *v;
    unsigned long long sum = 0;
    while (qn_combtab_iter_next(&it, &v, &vl)) {
        sum += s_num(v, vl);
        n++;
    }
    cr_assert_eq(n, vals->nvals, "the combiner got %zu values, told %zu", n,
                 vals->nvals);
    cr_assert_eq(s_walk_block(vals->vals, vals->vbytes, NULL) + vals->reps,
                 vals->nvals, "the combiner's block and run are not nvals");
    c->vals_in += n;
    if (c->nseen < sizeof c->seen / sizeof c->seen[0])
        c->seen[c->nseen++] = sum;
    char d[24];
    int len = snprintf(d, sizeof d, "%llu", sum);
    return qn_combtab_frame(out, d, (size_t)len);
}

/* Emit one value: the values concatenated, so their order shows. */
static int s_concat(void *ctx, unsigned part, const void *key, size_t klen,
                    const qn_combtab_vals *vals, qn_buf *out)
{
    s_comb *c = ctx;
    (void)part;
    (void)key;
    (void)klen;
    c->calls++;
    c->vals_in += vals->nvals;
    qn_buf all = {0};
    qn_combtab_iter it;
    qn_combtab_iter_init(&it, vals);
    size_t vl, n = 0;
    const void *v;
    while (qn_combtab_iter_next(&it, &v, &vl)) {
        cr_assert_eq(qn_buf_add(&all, v, vl), 0);
        n++;
    }
    cr_assert_eq(n, vals->nvals, "the combiner got %zu values, told %zu", n,
                 vals->nvals);
    int rc = qn_combtab_frame(out, all.data, all.len);
    qn_buf_release(&all);
    return rc;
}

static int s_fail_comb(void *ctx, unsigned part, const void *key, size_t klen,
                       const qn_combtab_vals *vals, qn_buf *out)
{
    s_comb *c = ctx;
    (void)part;
    (void)key;
    (void)klen;
    (void)vals;
    (void)out;
    c->calls++;
    return c->fail;
}

/* Keep nothing; for key "gone" (whose values are 0, 1, 2, ...) check
 * they come in order and remember the last one dropped. */
static int s_drop(void *ctx, unsigned part, const void *key, size_t klen,
                  const qn_combtab_vals *vals, qn_buf *out)
{
    s_comb *c = ctx;
    (void)part;
    (void)out;
    c->calls++;
    c->vals_in += vals->nvals;
    if (klen != 4 || memcmp(key, "gone", 4) != 0)
        return 0;
    qn_combtab_iter it;
    qn_combtab_iter_init(&it, vals);
    size_t vl;
    const void *v;
    while (qn_combtab_iter_next(&it, &v, &vl)) {
        unsigned long long n = s_num(v, vl);
        cr_assert(!c->dropped || n == c->last + 1,
                  "value %llu given to the combiner after %llu", n, c->last);
        c->last = n;
        c->dropped = 1;
    }
    return 0;
}

/* ---- gathering and combining --------------------------------------------- */

/* Without a combiner every value is kept, in the order it was added. */
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
    size_t vl;
    const void *val;
    qn_combtab_iter it;
    qn_combtab_iter_init(&it, &hot.v);
    for (size_t i = 0; i < 3000; i++) {
        cr_assert(qn_combtab_iter_next(&it, &val, &vl));
        cr_assert_eq(s_num(val, vl), i, "value %zu out of order", i);
    }
    cr_assert_not(qn_combtab_iter_next(&it, &val, &vl), "a value too many");
    qn_combtab_iter_init(&it, &oth.v);
    for (size_t i = 0; i < other; i++) {
        cr_assert(qn_combtab_iter_next(&it, &val, &vl));
        cr_assert_eq(s_num(val, vl), 3 * i);
    }
    cr_assert_not(qn_combtab_iter_next(&it, &val, &vl), "a value too many");
    qn_combtab_destroy(&ct);
    cr_assert_null(ct);
    qn_combtab_destroy(&ct); /* NULL is fine */
}

/* Combined and not yet combined values, read in order, are the values as
 * they were added (each value distinct, so no run forms). */
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
        size_t vl;
        const void *val;
        qn_combtab_iter it;
        qn_combtab_iter_init(&it, &e.v);
        while (qn_combtab_iter_next(&it, &val, &vl))
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

/*
 * What the table should hold after values seq[0..n) for one key: the
 * frames of its block (a frame per run of equal short values, one per
 * long value) and the copies in its run (the latest short values, if
 * equal; 0 when the latest value is long).
 */
static void s_model(const char *const *seq, size_t n, size_t *frames,
                    size_t *reps)
{
    size_t f = 0, r = 0;
    const char *run = NULL;
    for (size_t i = 0; i < n; i++) {
        size_t l = strlen(seq[i]);
        if (l <= RUN_MAX && r && strcmp(seq[i], run) == 0) {
            r++;
            continue;
        }
        if (r)
            f++; /* the run goes to the block */
        if (l <= RUN_MAX) {
            run = seq[i];
            r = 1;
        } else {
            f++;
            r = 0;
        }
    }
    *frames = f;
    *reps = r;
}

/*
 * Runs that start and stop (a, a, a, b, b, a, c), empty values, values of
 * exactly RUN_MAX bytes and one more, long values in between and first:
 * the values come out exactly in the order they were added, the block
 * holds one frame per run (a repeated frame for two or more copies) and
 * one per long value, and the latest run stays in the entry.
 */
Test(combtab, values_come_out_in_insertion_order_across_run_changes)
{
    static const char *const seq[] = {
        "a", "a", "a", "b", "b",        "a",        "c",         "a-long-value",
        "c", "c", "",  "",  "12345678", "12345678", "123456789", "123456789",
        "a", "a", "x"};
    enum { N = sizeof seq / sizeof seq[0], LONG_AT = 7 };
    const char *rev[N];
    for (size_t i = 0; i < N; i++)
        rev[i] = seq[N - 1 - i];
    /* "k": seq; "l": seq from its long value on (no run at first); "j"
     * in partition 1: seq backwards (ending with a run of three). */
    struct {
        const char *key;
        unsigned part;
        const char *const *vals;
        size_t n;
    } keys[] = {{"k", 0, seq, N},
                {"l", 0, seq + LONG_AT, N - LONG_AT},
                {"j", 1, rev, N}};
    for (int with_fn = 0; with_fn < 2; with_fn++) {
        /* A combiner changes nothing: these blocks never fill. */
        s_comb c = {0};
        qn_combtab *ct =
            qn_combtab_new(1 * MIB, NULL, with_fn ? s_sum : NULL, &c);
        cr_assert_not_null(ct);
        for (size_t i = 0; i < N; i++)
            for (size_t k = 0; k < 3; k++)
                if (i < keys[k].n)
                    cr_assert_eq(s_add_str(ct, keys[k].part, keys[k].key,
                                           keys[k].vals[i]),
                                 0, "key %s, add %zu", keys[k].key, i);
        cr_assert_eq(c.calls, 0);
        cr_assert_eq(qn_combtab_count(ct), 3);
        qn_combtab_sort(ct);
        for (size_t k = 0; k < 3; k++) {
            s_entry e = s_get(ct, k); /* sorted: k, l, then j */
            cr_assert_eq(e.klen, 1);
            cr_assert_eq(e.key[0], keys[k].key[0], "entry %zu", k);
            cr_assert_eq(e.part, keys[k].part);
            cr_assert_eq(e.nvals, keys[k].n, "key %s: nvals %zu of %zu",
                         keys[k].key, e.nvals, keys[k].n);
            size_t frames, reps;
            s_model(keys[k].vals, keys[k].n, &frames, &reps);
            cr_assert_eq(e.nframes, frames, "key %s: %zu frames, not %zu",
                         keys[k].key, e.nframes, frames);
            cr_assert_eq(e.v.reps, reps, "key %s: a run of %zu, not %zu",
                         keys[k].key, e.v.reps, reps);
            qn_combtab_iter it;
            qn_combtab_iter_init(&it, &e.v);
            size_t vl;
            const void *v;
            for (size_t i = 0; i < keys[k].n; i++) {
                const char *w = keys[k].vals[i];
                cr_assert(qn_combtab_iter_next(&it, &v, &vl),
                          "key %s: value %zu missing", keys[k].key, i);
                cr_assert(vl == strlen(w) && memcmp(v, w, vl) == 0,
                          "key %s: value %zu is '%.*s', not '%s'", keys[k].key,
                          i, (int)vl, (const char *)v, w);
            }
            cr_assert_not(qn_combtab_iter_next(&it, &v, &vl),
                          "key %s: a value too many", keys[k].key);
        }
        qn_combtab_destroy(&ct);
    }
}

/*
 * The same short value added again and again is only counted: the
 * combiner never runs (it would fail the add), no block is used, and the
 * value comes out as many times as it was added. Also for the empty value
 * and a value of exactly RUN_MAX bytes.
 */
Test(combtab, same_short_value_repeated_is_a_run_and_never_combined)
{
    enum { N = 100000 };
    s_comb c = {.fail = -77};
    qn_combtab *ct = qn_combtab_new(1 * MIB, NULL, s_fail_comb, &c);
    cr_assert_not_null(ct);
    static const char *const vals[] = {"1", "", "12345678"};
    static const char *const keys[] = {"a", "b", "c"};
    for (size_t i = 0; i < N; i++)
        for (size_t k = 0; k < 3; k++)
            cr_assert_eq(s_add_str(ct, 0, keys[k], vals[k]), 0, "add %zu of %s",
                         i, keys[k]);
    cr_assert_eq(c.calls, 0, "the combiner ran %zu times", c.calls);
    cr_assert_eq(qn_combtab_count(ct), 3);
    qn_combtab_sort(ct);
    for (size_t k = 0; k < 3; k++) {
        s_entry e = s_get(ct, k);
        cr_assert_eq(e.key[0], keys[k][0]);
        cr_assert_eq(e.nvals, N);
        cr_assert_eq(e.v.reps, N, "key %s: a run of %zu", keys[k], e.v.reps);
        cr_assert_eq(e.v.vbytes, 0, "key %s: %zu bytes in its block", keys[k],
                     e.v.vbytes);
        cr_assert_eq(e.v.runlen, strlen(vals[k]));
        /* s_get saw the iterator give N copies of the run. */
        if (k == 0)
            cr_assert_eq(s_entry_sum(&e), N);
    }
    qn_combtab_destroy(&ct);
}

/*
 * Runs of one to six copies of short values, long values (once or twice)
 * between them, one key in two partitions, a combiner that concatenates:
 * the runs flushed into blocks and combined there come out as the values
 * were added, in order, and a repeat of a run's value never runs the
 * combiner.
 */
Test(combtab, combined_values_keep_insertion_order_across_runs)
{
    s_comb c = {0};
    qn_combtab *ct = qn_combtab_new(1 * MIB, NULL, s_concat, &c);
    cr_assert_not_null(ct);
    qn_buf want[2] = {{0}, {0}};
    uint64_t rs = 7;
    size_t adds = 0;
    char v[32];
    for (size_t j = 0; j < 4000; j++) {
        size_t k = (size_t)(qn_test_rand(&rs) % 2);
        size_t n, vl;
        if (j % 5 == 0) {
            vl = (size_t)snprintf(v, sizeof v, "%09zu,", j); /* long */
            n = 1 + (size_t)(qn_test_rand(&rs) % 2);
        } else {
            vl = (size_t)snprintf(v, sizeof v, "%zu,", j % 1000);
            n = 1 + (size_t)(qn_test_rand(&rs) % 6);
        }
        for (size_t i = 0; i < n; i++) {
            size_t calls = c.calls;
            cr_assert_eq(s_add(ct, (unsigned)k, "k", 1, v, vl), 0);
            if (i > 0 && vl <= RUN_MAX)
                cr_assert_eq(c.calls, calls, "a repeat ran the combiner");
            cr_assert_eq(qn_buf_add(&want[k], v, vl), 0);
            adds++;
        }
    }
    cr_assert_gt(c.calls, 10, "the combiner ran %zu times", c.calls);
    qn_combtab_sort(ct);
    size_t held = 0;
    for (size_t k = 0; k < 2; k++) {
        s_entry e = s_get(ct, k);
        cr_assert_eq(e.part, (unsigned)k);
        held += e.nvals;
        qn_buf got = {0};
        size_t vl;
        const void *val;
        qn_combtab_iter it;
        qn_combtab_iter_init(&it, &e.v);
        while (qn_combtab_iter_next(&it, &val, &vl))
            cr_assert_eq(qn_buf_add(&got, val, vl), 0);
        cr_assert_eq(got.len, want[k].len, "partition %zu", k);
        cr_assert_arr_eq(got.data, want[k].data, got.len,
                         "partition %zu: values out of order", k);
        qn_buf_release(&got);
        qn_buf_release(&want[k]);
    }
    cr_assert_lt(held, adds, "nothing was combined");
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
    double u = (double)(qn_test_rand(rs) >> 11) / 9007199254740992.0;
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

/*
 * Zipf-distributed keys with counts that vary from add to add (so a key's
 * run keeps being flushed into its block and blocks fill): the combiner
 * runs often, every key's sum is the true one, and the most frequent
 * key's block stays small.
 */
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
        /* Mostly 1 to 3, sometimes a larger count. */
        unsigned val = i % 10 == 0 ? 1 + (unsigned)(qn_test_rand(&rs) % 999)
                                   : 1 + (unsigned)(qn_test_rand(&rs) % 3);
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
        if (r == 0) {
            cr_assert_lt(e.nvals, 64, "the most frequent key holds %zu values",
                         e.nvals);
            cr_assert_lt(e.nframes, 64,
                         "the most frequent key holds %zu frames", e.nframes);
        }
        if (i > 0)
            s_check_after(&prev, &e, s_ref_cmp, i);
        prev = e;
    }
    free(seen);
    free(truth);
    free(z.cum);
    qn_combtab_destroy(&ct);
}

/*
 * Runs of random lengths of counts 1 to 9, and now and then a long
 * (zero-padded) count, for two keys: when a run is flushed into a full
 * block the combiner runs on the block's values only (their sum is what
 * was added before the run), a repeat never runs it, and every key's sum
 * is the true one, with its block kept small.
 */
Test(combtab, run_flushed_into_a_full_block_is_combined_with_true_sums)
{
    enum { NRUNS = 3000 };
    s_comb c = {0};
    qn_combtab *ct = qn_combtab_new(1 * MIB, NULL, s_sum, &c);
    cr_assert_not_null(ct);
    static const char *const keys[] = {"ka", "kb"};
    unsigned long long truth[2] = {0};
    /* The model of each key's run. */
    char run[2][16];
    size_t runlen[2], reps[2] = {0};
    size_t flush_combines = 0; /* adds of a new short value that combined */
    uint64_t rs = 4242;
    char v[16];
    for (size_t j = 0; j < NRUNS; j++) {
        size_t k = (size_t)(qn_test_rand(&rs) % 2), n, vl;
        unsigned val = 1 + (unsigned)(qn_test_rand(&rs) % 9);
        if (qn_test_rand(&rs) % 16 == 0) {
            vl = (size_t)snprintf(v, sizeof v, "%012u", val);
            n = 1;
        } else {
            vl = (size_t)snprintf(v, sizeof v, "%u", val);
            n = 1 + (size_t)(qn_test_rand(&rs) % 40);
        }
        for (size_t i = 0; i < n; i++) {
            unsigned long long before = truth[k];
            unsigned long long pend =
                reps[k] ? s_num(run[k], runlen[k]) * reps[k] : 0;
            int same = vl <= RUN_MAX && reps[k] && runlen[k] == vl &&
                       memcmp(run[k], v, vl) == 0;
            size_t calls = c.calls;
            c.nseen = 0;
            cr_assert_eq(s_add(ct, 0, keys[k], 2, v, vl), 0, "run %zu", j);
            truth[k] += val;
            cr_assert_eq(c.calls - calls, c.nseen);
            if (same) {
                cr_assert_eq(c.nseen, 0, "a repeated value ran the combiner");
                reps[k]++;
            } else if (vl <= RUN_MAX) {
                /* Only the run's flush can fill the block. */
                cr_assert_leq(c.nseen, 1);
                if (c.nseen) {
                    cr_assert_eq(c.seen[0], before - pend,
                                 "run %zu: the combiner saw %llu, the block "
                                 "held %llu (and the run %llu)",
                                 j, c.seen[0], before - pend, pend);
                    flush_combines++;
                }
                memcpy(run[k], v, vl);
                runlen[k] = vl;
                reps[k] = 1;
            } else {
                /* The run's flush, then the long value, may each fill it. */
                cr_assert_leq(c.nseen, 2);
                if (c.nseen == 2) {
                    cr_assert_eq(c.seen[0], before - pend);
                    cr_assert_eq(c.seen[1], before);
                } else if (c.nseen == 1) {
                    cr_assert(c.seen[0] == before - pend || c.seen[0] == before,
                              "run %zu: the combiner saw %llu", j, c.seen[0]);
                }
                reps[k] = 0;
            }
        }
    }
    cr_assert_gt(flush_combines, 10, "a run's flush combined %zu times",
                 flush_combines);
    cr_assert_eq(qn_combtab_count(ct), 2);
    qn_combtab_sort(ct);
    for (size_t k = 0; k < 2; k++) {
        s_entry e = s_get(ct, k);
        cr_assert_eq(e.klen, 2);
        cr_assert_arr_eq(e.key, keys[k], 2);
        cr_assert_eq(s_entry_sum(&e), truth[k], "key %s: sum %llu, true %llu",
                     keys[k], s_entry_sum(&e), truth[k]);
        cr_assert_eq(e.v.reps, reps[k], "key %s: a run of %zu, not %zu",
                     keys[k], e.v.reps, reps[k]);
        if (reps[k]) {
            cr_assert_eq(e.v.runlen, runlen[k]);
            cr_assert_arr_eq(e.v.run, run[k], runlen[k]);
        }
        cr_assert_lt(e.nframes, 64, "key %s: %zu frames", keys[k], e.nframes);
        cr_assert_lt(e.v.vbytes, 1024, "key %s: a block of %zu bytes", keys[k],
                     e.v.vbytes);
    }
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
 * with qsort of the (partition, key) pairs by ref. Every entry's two
 * values come out in the order they were added.
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
        size_t j = (size_t)(qn_test_rand(&rs) % (i + 1));
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
        size_t vl;
        const void *val;
        unsigned long long first = 0;
        qn_combtab_iter it;
        qn_combtab_iter_init(&it, &e.v);
        for (int j = 0; j < 2; j++) {
            cr_assert(qn_combtab_iter_next(&it, &val, &vl));
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

/* Entries come out by partition, then in the default key order. */
Test(combtab, sorts_by_partition_then_key)
{
    s_check_order(NULL, s_ref_cmp);
}

/* Within a partition, the job's comparator orders the keys. */
Test(combtab, sorts_by_the_jobs_comparator)
{
    s_check_order(s_reverse_cmp, s_reverse_cmp);
}

/* ---- a full table -------------------------------------------------------- */

/* What a spill checks and takes from a full table. */
typedef struct {
    size_t nkeys, npart;
    unsigned long long *got; /* per key rank: the counts taken */
    size_t *got_n;           /* per key rank: the values taken */
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
        sp->got_n[r] += e.nvals;
        if (j > 0)
            s_check_after(&prev, &e, s_ref_cmp, j);
        prev = e;
    }
    qn_combtab_reset(ct);
    cr_assert_eq(qn_combtab_count(ct), 0);
}

/* How a spill run's values are drawn. */
enum {
    S_VARIED, /* counts 1 to 9 at random: runs are short */
    S_RUNS,   /* mostly 1, sometimes 2 to 9 or a long (zero-padded) count:
               * most keys have a run pending when the table fills */
};

/*
 * Add NADDS counts for Zipf-distributed keys to a 64 KiB table; whenever
 * it is full, do what a map does (sort, take every entry, reset, add
 * again). The counts taken over all spills must be the true ones (and,
 * without a combiner, as many values as were added). pad makes keys long,
 * so the arena fills before the index does; push adds with
 * qn_combtab_push (and drains at the end) instead of qn_combtab_add.
 * Returns the number of spills before the end; *grow_full (if not NULL)
 * counts the adds refused as full for a key already in the table (a run
 * or a block that found no room), which add (not push) can tell.
 */
static size_t s_spill_run(qn_combtab_fn fn, size_t pad, int push, int mode,
                          size_t *grow_full)
{
    enum { NKEYS = 20000, NADDS = 100000, NPART = 2 };
    s_comb c = {0};
    qn_combtab *ct = qn_combtab_new(64 * KIB, NULL, fn, &c);
    cr_assert_not_null(ct);
    s_zipf z;
    s_zipf_init(&z, NKEYS);
    unsigned long long *truth = qn_calloc(NKEYS, sizeof *truth);
    size_t *adds = qn_calloc(NKEYS, sizeof *adds);
    size_t *in_spill = qn_calloc(NKEYS, sizeof *in_spill); /* spills + 1 */
    s_spiller sp = {.nkeys = NKEYS, .npart = NPART};
    sp.got = qn_calloc(NKEYS, sizeof *sp.got);
    sp.got_n = qn_calloc(NKEYS, sizeof *sp.got_n);
    sp.spill_of = qn_calloc(NKEYS, sizeof *sp.spill_of);
    int (*add)(qn_combtab *, unsigned, uint64_t, const void *, size_t,
               const void *, size_t) = push ? qn_combtab_push : qn_combtab_add;
    uint64_t rs = 0x2545f4914f6cdd1dULL;
    char key[256], v[16];
    size_t grown = 0;
    for (size_t i = 0; i < NADDS; i++) {
        size_t r = s_zipf_draw(&z, &rs);
        size_t kl = s_word(key, sizeof key, r, pad);
        unsigned val = 1 + (unsigned)(qn_test_rand(&rs) % 9);
        int vl;
        if (mode == S_VARIED) {
            vl = snprintf(v, sizeof v, "%u", val);
        } else {
            unsigned u = (unsigned)(qn_test_rand(&rs) % 32);
            if (u == 0)
                vl = snprintf(v, sizeof v, "%012u", val);
            else if (u < 5)
                vl = snprintf(v, sizeof v, "%u", val);
            else
                vl = snprintf(v, sizeof v, "%u", val = 1);
        }
        truth[r] += val;
        adds[r]++;
        unsigned part = (unsigned)(r % NPART);
        uint64_t h = qn_combtab_hash(key, kl);
        int rc = add(ct, part, h, key, kl, v, (size_t)vl);
        if (rc == -QN_EFULL) {
            cr_assert_gt(qn_combtab_count(ct), 0, "full with no entries");
            if (in_spill[r] == sp.spills + 1)
                grown++;
            s_take(ct, &sp);
            rc = add(ct, part, h, key, kl, v, (size_t)vl);
            cr_assert_eq(rc, 0, "add %zu again after a reset", i);
        }
        cr_assert_eq(rc, 0, "add %zu", i);
        in_spill[r] = sp.spills + 1;
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
    for (size_t r = 0; r < NKEYS; r++) {
        cr_assert_eq(sp.got[r], truth[r],
                     "key %zu: %llu over all spills, %llu added", r, sp.got[r],
                     truth[r]);
        if (!fn)
            cr_assert_eq(sp.got_n[r], adds[r],
                         "key %zu: %zu values over all spills, %zu added", r,
                         sp.got_n[r], adds[r]);
    }
    if (fn)
        cr_assert_gt(c.calls, 0, "the combiner never ran");
    if (grow_full)
        *grow_full = push ? 0 : grown;
    free(sp.spill_of);
    free(sp.got_n);
    free(sp.got);
    free(in_spill);
    free(adds);
    free(truth);
    free(z.cum);
    qn_combtab_destroy(&ct);
    return spills;
}

/* A full index (too many keys) spills; the sums over spills are true. */
Test(combtab, full_index_spills_without_losing_counts)
{
    /* Short keys: 512 entries (half of 1024 slots) fill it first. */
    size_t n = s_spill_run(s_sum, 0, 0, S_VARIED, NULL);
    cr_assert_gt(n, 10, "only %zu spills", n);
}

/* A full arena (long keys) spills; the sums over spills are true. */
Test(combtab, full_arena_spills_without_losing_counts)
{
    /* Keys of some 150 bytes: the arena fills before the index. */
    size_t n = s_spill_run(s_sum, 140, 0, S_VARIED, NULL);
    cr_assert_gt(n, 10, "only %zu spills", n);
}

/* Without a combiner every value added is taken, in some spill. */
Test(combtab, full_table_without_combiner_loses_nothing)
{
    /* Every value kept: the frequent keys' blocks double until one does
     * not fit. */
    size_t n = s_spill_run(NULL, 0, 0, S_VARIED, NULL);
    cr_assert_gt(n, 10, "only %zu spills", n);
    size_t grown;
    n = s_spill_run(NULL, 140, 0, S_VARIED, &grown);
    cr_assert_gt(n, 10, "only %zu spills", n);
    cr_assert_gt(grown, 0, "no block ever failed to grow");
}

/* Records queued by push are added, not lost, when the table fills. */
Test(combtab, pushed_records_survive_spills)
{
    /* Queued records (short) and records too big to queue (long keys). */
    size_t n = s_spill_run(s_sum, 0, 1, S_VARIED, NULL);
    cr_assert_gt(n, 10, "only %zu spills", n);
    n = s_spill_run(s_sum, 140, 1, S_VARIED, NULL);
    cr_assert_gt(n, 10, "only %zu spills", n);
    n = s_spill_run(NULL, 0, 1, S_VARIED, NULL);
    cr_assert_gt(n, 10, "only %zu spills", n);
}

/*
 * Mostly repeated values: when the table fills most keys have a run
 * pending (held only in their entry), and some adds are refused because
 * a run's flush or a long value finds no room in a key's block. Taken
 * spill by spill, nothing is lost or counted twice, with or without a
 * combiner, added or pushed.
 */
Test(combtab, full_table_with_pending_runs_loses_nothing)
{
    static const struct {
        qn_combtab_fn fn;
        size_t klen;
        int push;
    } runs[] = {{NULL, 0, 0},    {NULL, 140, 0}, {s_sum, 0, 0},
                {s_sum, 140, 0}, {s_sum, 0, 1},  {NULL, 140, 1}};
    for (size_t i = 0; i < sizeof runs / sizeof runs[0]; i++) {
        size_t grown = 0;
        size_t n =
            s_spill_run(runs[i].fn, runs[i].klen, runs[i].push, S_RUNS, &grown);
        cr_assert_gt(n, 10, "case %zu: only %zu spills", i, n);
        if (i == 1)
            cr_assert_gt(grown, 0, "no run or block ever failed to find room");
    }
}

/*
 * A key whose block is full and cannot grow keeps counting its run while
 * the table is full; the add of a different value, which must flush the
 * run, is refused as full with the entry as it was (the block and the
 * whole run still there), and after a reset it is added again.
 */
Test(combtab, full_table_keeps_a_run_whose_flush_is_refused)
{
    qn_combtab *ct = qn_combtab_new(64 * KIB, NULL, NULL, NULL);
    cr_assert_not_null(ct);
    char big[2048], key[256];
    memset(big, 'v', sizeof big);
    /* "k": a block just big enough for its long value, then a run. */
    cr_assert_eq(s_add(ct, 0, "k", 1, big, sizeof big), 0);
    for (int i = 0; i < 1000; i++)
        cr_assert_eq(s_add_str(ct, 0, "k", "1"), 0);
    /* Fill the arena with long keys (before the index is full). */
    size_t fill = 0;
    int rc;
    for (;;) {
        snprintf(key, sizeof key, "%0200zu", fill);
        rc = s_add_str(ct, 1, key, "1");
        if (rc != 0)
            break;
        fill++;
    }
    cr_assert_eq(rc, -QN_EFULL);
    cr_assert_gt(fill, 100);
    /* Full, yet the run still counts. */
    for (int i = 0; i < 1000; i++)
        cr_assert_eq(s_add_str(ct, 0, "k", "1"), 0, "repeat %d", i);
    cr_assert_eq(s_add_str(ct, 0, "k", "2"), -QN_EFULL);
    cr_assert_eq(s_add(ct, 0, "k", 1, big, sizeof big), -QN_EFULL);
    cr_assert_eq(qn_combtab_count(ct), fill + 1);
    qn_combtab_sort(ct);
    s_entry e = s_get(ct, 0);
    cr_assert_eq(e.part, 0);
    cr_assert_eq(e.klen, 1);
    cr_assert_eq(e.nvals, 1 + 2000);
    cr_assert_eq(e.v.reps, 2000, "a run of %zu", e.v.reps);
    cr_assert_eq(e.v.runlen, 1);
    cr_assert_eq(*(const char *)e.v.run, '1');
    cr_assert_eq(e.nblock, 1);
    cr_assert_eq(e.v.vbytes, 4 + sizeof big);
    cr_assert_arr_eq(e.v.vals + 4, big, sizeof big);
    qn_combtab_reset(ct);
    cr_assert_eq(s_add_str(ct, 0, "k", "2"), 0);
    qn_combtab_destroy(&ct);
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
        size_t vl;
        const void *v;
        qn_combtab_iter it;
        qn_combtab_iter_init(&it, &e.v);
        while (qn_combtab_iter_next(&it, &v, &vl)) {
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
 * spill, they come out in the order they were pushed. (The other keys'
 * values are all "1": runs, which fill only the index.)
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
                          (unsigned)(qn_test_rand(&rs) % 5000));
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

/*
 * A record that would not fit even an empty table is too big; one that
 * does not fit this table is full, and the table is as it was.
 */
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
    cr_assert_eq(e.v.vbytes, 4 + 2 * KIB);
    cr_assert_eq(e.v.reps, 0);
    e = s_get(ct, 0);
    cr_assert_eq(e.nvals, 1);
    cr_assert_eq(e.v.vbytes, 4 + 50 * KIB);
    cr_assert_arr_eq(e.v.vals + 4, big, 50 * KIB);
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

/*
 * The index doubles as keys arrive, from 4096 slots: every key is still
 * found (a second value joins the first), also after a reset.
 */
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

/*
 * How many keys of 120 bytes fit in a 64 KiB table (whose arena, not its
 * index, fills first with keys that long) when each key is given n
 * values: the same value "1" n times, or "1" and "2" in turn.
 */
static size_t s_keys_that_fit(qn_combtab_fn fn, size_t n, int alternate)
{
    s_comb c = {.fail = -77};
    qn_combtab *ct = qn_combtab_new(64 * KIB, NULL, fn, &c);
    cr_assert_not_null(ct);
    char key[128];
    size_t keys = 0;
    for (;; keys++) {
        snprintf(key, sizeof key, "%0120zu", keys);
        size_t j;
        int rc = 0;
        for (j = 0; j < n && rc == 0; j++)
            rc = s_add_str(ct, 0, key, alternate && j % 2 ? "2" : "1");
        if (rc != 0) {
            cr_assert_eq(rc, -QN_EFULL, "key %zu, value %zu: %d", keys, j, rc);
            /* A repeated value never needs room of its own. */
            if (!alternate)
                cr_assert_eq(j, 1, "key %zu: value %zu full", keys, j);
            break;
        }
    }
    cr_assert_eq(c.calls, 0);
    if (!alternate) {
        qn_combtab_sort(ct);
        for (size_t i = 0; i < keys; i++) {
            s_entry e = s_get(ct, i);
            cr_assert_eq(e.nvals, n);
            cr_assert_eq(e.v.vbytes, 0);
            cr_assert_eq(s_entry_sum(&e), n);
        }
    }
    qn_combtab_destroy(&ct);
    return keys;
}

/*
 * A key whose values are all the same short value takes no table memory
 * beyond its entry: as many keys fit with a thousand copies of "1" each
 * (with or without a combiner, which never runs) as with one, while
 * values that change (which go to a block) fit fewer keys; the old
 * layout, which framed every value in a block, fitted only a few keys
 * with a thousand values each.
 */
Test(combtab, repeated_short_values_take_no_room_beyond_their_entry)
{
    size_t once = s_keys_that_fit(NULL, 1, 0);
    cr_assert_gt(once, 100, "only %zu keys fit", once);
    size_t many = s_keys_that_fit(NULL, 1000, 0);
    cr_assert_eq(many, once, "%zu keys fit with 1000 values, %zu with one",
                 many, once);
    many = s_keys_that_fit(s_fail_comb, 1000, 0);
    cr_assert_eq(many, once, "%zu keys fit with 1000 values, %zu with one",
                 many, once);
    size_t varied = s_keys_that_fit(NULL, 16, 1);
    cr_assert_lt(varied, once, "%zu keys fit with varied values, %zu with one",
                 varied, once);
}

/* ---- combiners that fail or keep nothing --------------------------------- */

/*
 * A combiner's failure is what the add that ran it returns; it runs only
 * once a block has filled (the values alternate, so they go to the block),
 * and the table keeps every value before the refused one, in order.
 */
Test(combtab, combiner_failure_is_returned_by_add)
{
    s_comb c = {.fail = -77};
    qn_combtab *ct = qn_combtab_new(1 * MIB, NULL, s_fail_comb, &c);
    cr_assert_not_null(ct);
    int rc = 0;
    size_t i;
    for (i = 0; i < 10000 && rc == 0; i++)
        rc = s_add_str(ct, 0, "k", i % 2 ? "2" : "1");
    cr_assert_eq(rc, -77, "add returned %d", rc);
    cr_assert_eq(c.calls, 1);
    cr_assert_gt(i, 2, "the combiner ran at the first values");
    cr_assert_eq(qn_combtab_count(ct), 1);
    /* The table still answers: sort shows the values held, every one
     * before the add that failed. */
    qn_combtab_sort(ct);
    s_entry e = s_get(ct, 0);
    cr_assert_geq(e.nvals, 2);
    cr_assert_eq(e.nvals, i - 1, "%zu values held of %zu added", e.nvals,
                 i - 1);
    qn_combtab_iter it;
    qn_combtab_iter_init(&it, &e.v);
    size_t vl;
    const void *v;
    for (size_t j = 0; qn_combtab_iter_next(&it, &v, &vl); j++)
        cr_assert_eq(s_num(v, vl), j % 2 ? 2u : 1u, "value %zu", j);
    qn_combtab_destroy(&ct);
}

/*
 * A combiner that keeps nothing: what is left of each key is the values
 * added after its last combining, in order; the table never leaves an
 * entry with no value, and every value was either given to the combiner
 * or is still held.
 */
Test(combtab, combiner_that_keeps_nothing)
{
    s_comb c = {0};
    qn_combtab *ct = qn_combtab_new(1 * MIB, NULL, s_drop, &c);
    cr_assert_not_null(ct);
    char v[24];
    for (size_t i = 0; i < 5000; i++) {
        int n = snprintf(v, sizeof v, "%zu", i);
        cr_assert_eq(s_add(ct, 0, "gone", 4, v, (size_t)n), 0, "add %zu", i);
        /* 7 and 8 in turn, so that the block fills. */
        cr_assert_eq(s_add(ct, 1, "once", 4, i % 2 ? "8" : "7", 1), 0,
                     "add %zu", i);
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
    size_t vl;
    const void *val;
    qn_combtab_iter it;
    qn_combtab_iter_init(&it, &e.v);
    for (unsigned long long want = c.last + 1; want < 5000; want++) {
        cr_assert(qn_combtab_iter_next(&it, &val, &vl));
        cr_assert_eq(s_num(val, vl), want);
    }
    cr_assert_not(qn_combtab_iter_next(&it, &val, &vl));
    /* "once" in partition 1 was combined away too; what is left is the
     * last of its 7s and 8s, in turn, ending with an 8. */
    s_entry o = s_get(ct, 1);
    cr_assert_eq(o.part, 1);
    cr_assert_geq(o.nvals, 1);
    cr_assert_lt(o.nvals, 5000, "nothing of \"once\" was combined");
    qn_combtab_iter_init(&it, &o.v);
    for (size_t j = o.nvals; j > 0; j--) {
        cr_assert(qn_combtab_iter_next(&it, &val, &vl));
        cr_assert_eq(s_num(val, vl), j % 2 ? 8u : 7u, "%zu from the end", j);
    }
    /* Every value was either given to the combiner or is still held. */
    cr_assert_eq(c.vals_in + e.nvals + o.nvals, 2 * 5000,
                 "%zu combined away, %zu + %zu held", c.vals_in, e.nvals,
                 o.nvals);
    qn_combtab_destroy(&ct);
}

/* ---- the value iterator -------------------------------------------------- */

/* Append a repeated frame, made by hand: the length with
 * QN_COMBTAB_REPEAT, the count, the bytes. */
static void s_repeat_frame(qn_buf *b, const char *val, uint32_t count)
{
    uint32_t l = (uint32_t)strlen(val) | QN_COMBTAB_REPEAT;
    cr_assert_eq(qn_buf_add(b, &l, 4), 0);
    cr_assert_eq(qn_buf_add(b, &count, 4), 0);
    cr_assert_eq(qn_buf_add(b, val, strlen(val)), 0);
}

/*
 * Iterate over the block vals[0..vbytes) copied to memory of exactly that
 * size (so that a read past it shows under ASan or valgrind), then reps
 * copies of run: the values must be want[0..nwant), and no more, even
 * when asked again.
 */
static void s_expect(const char *vals, size_t vbytes, const char *run,
                     size_t reps, const char *const *want, size_t nwant,
                     const char *what)
{
    char *copy = vbytes ? qn_calloc(1, vbytes) : NULL;
    if (vbytes)
        memcpy(copy, vals, vbytes);
    qn_combtab_vals vs = {.vals = copy,
                          .vbytes = vbytes,
                          .run = run,
                          .runlen = run ? strlen(run) : 0,
                          .reps = reps};
    qn_combtab_iter it;
    qn_combtab_iter_init(&it, &vs);
    const void *v;
    size_t vl;
    for (size_t i = 0; i < nwant; i++) {
        cr_assert(qn_combtab_iter_next(&it, &v, &vl), "%s: value %zu missing",
                  what, i);
        cr_assert(vl == strlen(want[i]) &&
                      (vl == 0 || memcmp(v, want[i], vl) == 0),
                  "%s: value %zu is '%.*s', not '%s'", what, i, (int)vl,
                  (const char *)v, want[i]);
    }
    cr_assert_not(qn_combtab_iter_next(&it, &v, &vl), "%s: a value too many",
                  what);
    cr_assert_not(qn_combtab_iter_next(&it, &v, &vl),
                  "%s: a value after the end", what);
    free(copy);
}

/*
 * The iterator walks plain and repeated frames, then the run's copies; a
 * frame cut short (in its length, its count or its bytes), a count of 0,
 * a length that overruns the block (or is near 2 or 4 GiB) ends the
 * block's values, and the run's copies still follow.
 */
Test(combtab, iter_walks_frames_and_stops_at_bad_ones)
{
    /* Plain frames, as qn_combtab_frame writes them. */
    qn_buf b = {0};
    cr_assert_eq(qn_combtab_frame(&b, "abc", 3), 0);
    cr_assert_eq(qn_combtab_frame(&b, "", 0), 0);
    cr_assert_eq(qn_combtab_frame(&b, "defgh", 5), 0);
    cr_assert_eq(b.len, 4 + 3 + 4 + 0 + 4 + 5);
    static const char *const plain[] = {"abc", "", "defgh", "r", "r"};
    s_expect(b.data, b.len, NULL, 0, plain, 3, "plain frames");
    s_expect(b.data, b.len, "r", 2, plain, 5, "plain frames and a run");

    /* Repeated frames (one of a single copy, one of the empty value)
     * between plain ones, then a run. */
    qn_buf r = {0};
    /* Where each frame ends, and how many values there are up to it. */
    size_t ends[8], nends = 0;
    static const size_t upto[] = {1, 4, 6, 7, 8};
    cr_assert_eq(qn_combtab_frame(&r, "abc", 3), 0);
    ends[nends++] = r.len;
    s_repeat_frame(&r, "xy", 3);
    ends[nends++] = r.len;
    s_repeat_frame(&r, "", 2);
    ends[nends++] = r.len;
    cr_assert_eq(qn_combtab_frame(&r, "defgh", 5), 0);
    ends[nends++] = r.len;
    s_repeat_frame(&r, "q", 1);
    ends[nends++] = r.len;
    static const char *const rep[] = {"abc", "xy",    "xy", "xy", "",
                                      "",    "defgh", "q",  "zz", "zz"};
    s_expect(r.data, r.len, NULL, 0, rep, 8, "repeated frames");
    s_expect(r.data, r.len, "zz", 2, rep, 10, "repeated frames and a run");

    /* Cut at every byte: in a length, a count, a value's bytes, or
     * between frames. The frames before the cut, then the run. */
    for (size_t cut = 0; cut <= r.len; cut++) {
        size_t n = 0;
        for (size_t f = 0; f < nends && ends[f] <= cut; f++)
            n = upto[f];
        const char *want[12];
        for (size_t i = 0; i < n; i++)
            want[i] = rep[i];
        want[n] = want[n + 1] = "zz";
        char what[64];
        snprintf(what, sizeof what, "cut at %zu of %zu", cut, r.len);
        s_expect(r.data, cut, NULL, 0, want, n, what);
        s_expect(r.data, cut, "zz", 2, want, n + 2, what);
    }

    /* A count of 0 ends the block (the frame after it is not read). */
    qn_buf z = {0};
    cr_assert_eq(qn_combtab_frame(&z, "abc", 3), 0);
    s_repeat_frame(&z, "xy", 0);
    cr_assert_eq(qn_combtab_frame(&z, "f", 1), 0);
    static const char *const zero[] = {"abc", "zz"};
    s_expect(z.data, z.len, "zz", 1, zero, 2, "a count of 0");

    /* Lengths that overrun the block, by one byte or nearly 2 or 4 GiB,
     * plain or repeated (the count read being the bytes after the
     * length): the block ends; the length that reaches exactly to the
     * end is one value of the rest of the block. */
    qn_buf o = {0};
    cr_assert_eq(qn_combtab_frame(&o, "abc", 3), 0);
    size_t at = o.len; /* the second frame's length */
    cr_assert_eq(qn_combtab_frame(&o, "de", 2), 0);
    cr_assert_eq(qn_combtab_frame(&o, "f", 1), 0);
    uint32_t exact = (uint32_t)(o.len - at - 4);
    memcpy(o.data + at, &exact, 4);
    {
        qn_combtab_vals vs = {.vals = o.data, .vbytes = o.len};
        qn_combtab_iter it;
        qn_combtab_iter_init(&it, &vs);
        const void *v;
        size_t vl;
        cr_assert(qn_combtab_iter_next(&it, &v, &vl));
        cr_assert(qn_combtab_iter_next(&it, &v, &vl));
        cr_assert_eq(vl, exact);
        cr_assert_arr_eq(v, o.data + at + 4, exact);
        cr_assert_not(qn_combtab_iter_next(&it, &v, &vl));
    }
    uint32_t lens[] = {exact + 1,
                       0x7fffffffu,
                       0x7ffffffcu,
                       0xffffffffu,
                       0xfffffffcu,
                       QN_COMBTAB_REPEAT | 6,
                       QN_COMBTAB_REPEAT | (exact - 4 + 1)};
    static const char *const over[] = {"abc", "zz", "zz"};
    for (size_t i = 0; i < sizeof lens / sizeof lens[0]; i++) {
        memcpy(o.data + at, &lens[i], 4);
        char what[64];
        snprintf(what, sizeof what, "length %#x in a block of %zu", lens[i],
                 o.len);
        s_expect(o.data, o.len, NULL, 0, over, 1, what);
        s_expect(o.data, o.len, "zz", 2, over, 3, what);
    }

    /* Empty blocks, one shorter than a length; an empty run. */
    static const char *const runs[] = {"r", "r", "r"};
    static const char *const empties[] = {"", ""};
    s_expect(NULL, 0, NULL, 0, NULL, 0, "no block, no run");
    s_expect(NULL, 0, "r", 3, runs, 3, "no block, a run");
    s_expect(b.data, 3, NULL, 0, NULL, 0, "a block of 3 bytes");
    s_expect(b.data, 3, "r", 1, runs, 1, "a block of 3 bytes, a run");
    s_expect(NULL, 0, "", 2, empties, 2, "a run of the empty value");
    qn_buf_release(&b);
    qn_buf_release(&r);
    qn_buf_release(&z);
    qn_buf_release(&o);
}

/* ---- limits -------------------------------------------------------------- */

/* Sizes out of range are refused; the smallest table takes the empty key
 * with the empty value. */
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
    /* The same (empty) value twice: a run of two, no block. */
    cr_assert_eq(e.v.reps, 2);
    cr_assert_eq(e.v.runlen, 0);
    cr_assert_eq(e.v.vbytes, 0);
    /* An empty value in the block: "", "x", "". */
    qn_combtab_reset(ct);
    cr_assert_eq(s_add_str(ct, 0, "", ""), 0);
    cr_assert_eq(s_add_str(ct, 0, "", "x"), 0);
    cr_assert_eq(s_add_str(ct, 0, "", ""), 0);
    qn_combtab_sort(ct);
    e = s_get(ct, 0);
    cr_assert_eq(e.nvals, 3);
    cr_assert_eq(e.v.vbytes, 4 + 4 + 1);
    cr_assert_eq(e.v.reps, 1);
    cr_assert_eq(e.v.runlen, 0);
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

/* QN_COMBTAB_PART_LATER asks the partitioner once per new key (not per
 * record), and a key it refuses is refused. */
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
        size_t kl;
        qn_combtab_vals vals;
        qn_combtab_get(ct, i, &part, &k, &kl, &vals);
        cr_assert_eq(part, kl % 3, "key of %zu bytes in partition %u", kl,
                     part);
        cr_assert_eq(vals.nvals, 50);
        cr_assert_eq(vals.reps, 50, "the same value 50 times: a run");
    }
    qn_combtab_destroy(&ct);
}
