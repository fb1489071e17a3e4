/*
 * sortbuf.c -- see sortbuf.h.
 */
#include "sortbuf.h"

#include "util.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define MIN_BYTES (4 * 1024)
#define MAX_BYTES ((size_t)4095 * 1024 * 1024)
#define REC_HEADER 8 /* u32 klen, u32 vlen before each record */

#define LEN_BITS 12 /* low bits of s_entry.pk: the key length, capped */
#define LEN_CAP ((1u << LEN_BITS) - 1)
#define MAX_PARTS (1u << (32 - LEN_BITS))

/* One index entry; 16 bytes, sorted in place at the back of the buffer. */
typedef struct {
    uint64_t prefix; /* first 8 key bytes, big-endian, zero-padded */
    uint32_t off;    /* record offset from the start of the buffer */
    uint32_t pk;     /* partition << LEN_BITS | min(key length, LEN_CAP) */
} s_entry;

struct qn_sortbuf {
    char *mem;     /* the whole buffer, */
    size_t bytes;  /* mapped */
    size_t front;  /* bytes of records at the front */
    s_entry *end;  /* one past the last index slot */
    size_t count;  /* records (and index entries) */
    qn_cmp_fn cmp; /* user order, or NULL for the default */
};

qn_sortbuf *qn_sortbuf_new(size_t bytes, qn_cmp_fn cmp)
{
    if (bytes < MIN_BYTES || bytes > MAX_BYTES)
        return NULL;
    qn_sortbuf *sb = qn_calloc(1, sizeof *sb);
    /* Pages are only touched as records arrive, so a large buffer costs
     * resident memory only as it fills. */
    sb->mem = qn_big_alloc(bytes);
    if (!sb->mem) {
        free(sb);
        return NULL;
    }
    sb->bytes = bytes;
    sb->end = (s_entry *)(sb->mem + (bytes & ~(size_t)15));
    sb->cmp = cmp;
    return sb;
}

void qn_sortbuf_destroy(qn_sortbuf **self_p)
{
    qn_sortbuf *sb = *self_p;
    if (!sb)
        return;
    qn_big_free(sb->mem, sb->bytes);
    free(sb);
    *self_p = NULL;
}

static s_entry *s_base(const qn_sortbuf *sb)
{
    return sb->end - sb->count;
}

int qn_sortbuf_add(qn_sortbuf *sb, unsigned part, const void *key, size_t klen,
                   const void *val, size_t vlen)
{
    size_t room = (size_t)((char *)s_base(sb) - sb->mem) - sb->front;
    size_t need = REC_HEADER + klen + vlen + sizeof(s_entry);
    if (part >= MAX_PARTS)
        return -QN_ETOOBIG;
    if (klen > UINT32_MAX || vlen > UINT32_MAX || need < klen || need > room) {
        size_t total = (size_t)((char *)sb->end - sb->mem);
        if (klen > QN_RECORD_MAX || vlen > QN_RECORD_MAX - klen ||
            REC_HEADER + klen + vlen + sizeof(s_entry) > total)
            return -QN_ETOOBIG;
        return -QN_EFULL;
    }
    char *p = sb->mem + sb->front;
    uint32_t kl = (uint32_t)klen, vl = (uint32_t)vlen;
    memcpy(p, &kl, 4);
    memcpy(p + 4, &vl, 4);
    if (klen)
        memcpy(p + REC_HEADER, key, klen);
    if (vlen)
        memcpy(p + REC_HEADER + klen, val, vlen);

    s_entry *e = s_base(sb) - 1;
    e->pk = part << LEN_BITS | (uint32_t)(klen < LEN_CAP ? klen : LEN_CAP);
    e->off = (uint32_t)sb->front;
    uint64_t prefix = 0;
    if (!sb->cmp) {
        const unsigned char *k = key;
        for (size_t i = 0; i < 8; i++)
            prefix = (prefix << 8) | (i < klen ? k[i] : 0);
    }
    e->prefix = prefix;
    sb->front += REC_HEADER + klen + vlen;
    sb->count++;
    return 0;
}

size_t qn_sortbuf_count(const qn_sortbuf *sb)
{
    return sb->count;
}

size_t qn_sortbuf_bytes(const qn_sortbuf *sb)
{
    return sb->front;
}

static void s_record(const qn_sortbuf *sb, const s_entry *e, const char **key,
                     size_t *klen, const char **val, size_t *vlen)
{
    const char *p = sb->mem + e->off;
    uint32_t kl, vl;
    memcpy(&kl, p, 4);
    memcpy(&vl, p + 4, 4);
    *key = p + REC_HEADER;
    *klen = kl;
    *val = p + REC_HEADER + kl;
    *vlen = vl;
}

/*
 * Order on keys whose index entries leave it open: two keys over 8 bytes
 * long with equal prefixes, or any two keys in a user order.
 */
static int s_reccmp(const qn_sortbuf *sb, const s_entry *a, const s_entry *b)
{
    const char *ak, *av, *bk, *bv;
    size_t akl, avl, bkl, bvl;
    s_record(sb, a, &ak, &akl, &av, &avl);
    s_record(sb, b, &bk, &bkl, &bv, &bvl);
    if (!sb->cmp)
        return qn_key_cmp(ak + 8, akl - 8, bk + 8, bkl - 8);
    return sb->cmp(ak, akl, bk, bkl);
}

/*
 * Order on entries' partitions and keys. With the default key order most
 * comparisons never touch the records: a zero-padded big-endian prefix
 * orders exactly as the bytewise, shorter-first comparison of the keys
 * whenever the prefixes differ; when they are equal and either key is at
 * most 8 bytes long, the shorter key is the smaller (equal lengths: equal
 * keys). Only two longer keys with equal prefixes are compared in memory.
 * Inline, as the sort's inner loops call it.
 */
static inline int s_keycmp(const qn_sortbuf *sb, const s_entry *a,
                           const s_entry *b)
{
    uint32_t ap = a->pk >> LEN_BITS, bp = b->pk >> LEN_BITS;
    if (ap != bp)
        return ap < bp ? -1 : 1;
    if (!sb->cmp) {
        if (a->prefix != b->prefix)
            return a->prefix < b->prefix ? -1 : 1;
        uint32_t al = a->pk & LEN_CAP, bl = b->pk & LEN_CAP;
        if (al <= 8 || bl <= 8)
            return al < bl ? -1 : al > bl;
    }
    return s_reccmp(sb, a, b);
}

/* Total order: partition, key, insertion order. */
static inline int s_cmp(const qn_sortbuf *sb, const s_entry *a,
                        const s_entry *b)
{
    int c = s_keycmp(sb, a, b);
    if (c)
        return c;
    return a->off < b->off ? -1 : a->off > b->off;
}

static void s_swap(s_entry *a, s_entry *b)
{
    s_entry t = *a;
    *a = *b;
    *b = t;
}

static void s_insertion(const qn_sortbuf *sb, s_entry *a, size_t n)
{
    for (size_t i = 1; i < n; i++) {
        s_entry x = a[i];
        size_t j = i;
        while (j > 0 && s_cmp(sb, &x, &a[j - 1]) < 0) {
            a[j] = a[j - 1];
            j--;
        }
        a[j] = x;
    }
}

static void s_sift(const qn_sortbuf *sb, s_entry *a, size_t n, size_t i)
{
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= n)
            return;
        if (c + 1 < n && s_cmp(sb, &a[c], &a[c + 1]) < 0)
            c++;
        if (s_cmp(sb, &a[i], &a[c]) >= 0)
            return;
        s_swap(&a[i], &a[c]);
        i = c;
    }
}

static void s_heapsort(const qn_sortbuf *sb, s_entry *a, size_t n)
{
    for (size_t i = n / 2; i-- > 0;)
        s_sift(sb, a, n, i);
    for (size_t i = n; i-- > 1;) {
        s_swap(&a[0], &a[i]);
        s_sift(sb, a, i, 0);
    }
}

/*
 * Introsort: quicksort with a median-of-three pivot, insertion sort for
 * short runs, heapsort when recursion goes too deep. In place, so the sort
 * needs no memory beyond the buffer. Entries are all distinct (the offset
 * breaks ties), which keeps Hoare partitioning simple.
 */
static void s_introsort(const qn_sortbuf *sb, s_entry *a, size_t n,
                        unsigned depth)
{
    while (n > 16) {
        if (depth-- == 0) {
            s_heapsort(sb, a, n);
            return;
        }
        s_entry *x = &a[0], *y = &a[n / 2], *z = &a[n - 1];
        if (s_cmp(sb, x, y) > 0) {
            s_entry *t = x;
            x = y;
            y = t;
        }
        if (s_cmp(sb, y, z) > 0)
            y = s_cmp(sb, x, z) > 0 ? x : z;
        s_entry pivot = *y;
        size_t i = (size_t)-1, j = n;
        for (;;) {
            do
                i++;
            while (s_cmp(sb, &a[i], &pivot) < 0);
            do
                j--;
            while (s_cmp(sb, &a[j], &pivot) > 0);
            if (i >= j)
                break;
            s_swap(&a[i], &a[j]);
        }
        size_t left = j + 1;
        if (left < n - left) {
            s_introsort(sb, a, left, depth);
            a += left;
            n -= left;
        } else {
            s_introsort(sb, a + left, n - left, depth);
            n = left;
        }
    }
    s_insertion(sb, a, n);
}

/* ---- radix sort ---------------------------------------------------------- */

/*
 * The sort is a radix sort on digits of the index entries that order them
 * as s_cmp does, most significant first:
 *
 *   levels 0-2    the partition, in three bytes (the first holds 4 bits);
 *   levels 3-10   with the default order, the 8 bytes of the key prefix;
 *   level 11      with the default order, the key length, 9 for "over 8";
 *   levels 12-15  the record offset, in four bytes: the insertion order.
 *
 * Entries that agree on the first 12 digits with a length under 9 have
 * equal keys, so the offset digits finish them. Entries that share their
 * partition and (with the default order) their prefix but have longer keys
 * or a user order are finished by comparison; when their keys all turn out
 * equal, by the offset digits after all.
 */
#define PART_LEVELS 3                /* levels of the partition */
#define KEY_LEVELS (PART_LEVELS + 8) /* ...and of the key prefix */
#define LEN_LEVEL KEY_LEVELS         /* the key length level */
#define OFF_LEVEL (LEN_LEVEL + 1)    /* the first offset level */
#define ALL_LEVELS (OFF_LEVEL + 4)   /* one past the last level */
#define LONG_KEY 9                   /* length digit of keys over 8 bytes */
#define RADIX_SMALL 48               /* runs this short: insertion sort */

static inline unsigned s_digit(const s_entry *e, unsigned level)
{
    if (level < PART_LEVELS)
        return (e->pk >> (LEN_BITS + 8 * (PART_LEVELS - 1 - level))) & 0xff;
    if (level < KEY_LEVELS)
        return (unsigned)(e->prefix >> (8 * (KEY_LEVELS - 1 - level))) & 0xff;
    if (level == LEN_LEVEL) {
        uint32_t len = e->pk & LEN_CAP;
        return len < LONG_KEY ? len : LONG_KEY;
    }
    return (e->off >> (8 * (ALL_LEVELS - 1 - level))) & 0xff;
}

/*
 * The first level from level on (below last) where a[0..n) may not all
 * have the same digit. One pass in place of a counting pass per level that
 * would put every entry in one bucket (one partition, keys sharing bytes,
 * nearby offsets). The length digit is not a bit field, but equal length
 * bits mean equal digits, which is all this needs. It stops at the first
 * offset level, where long keys leave the radix (see s_sort_from).
 */
static unsigned s_first_split(const s_entry *a, size_t n, unsigned level,
                              unsigned last)
{
    s_entry diff = {0, 0, 0};
    for (size_t i = 1; i < n; i++) {
        diff.prefix |= a[i].prefix ^ a[0].prefix;
        diff.off |= a[i].off ^ a[0].off;
        diff.pk |= a[i].pk ^ a[0].pk;
    }
    while (level < last && level != OFF_LEVEL && s_digit(&diff, level) == 0)
        level++;
    return level;
}

/* Introsort of a[0..n), for runs the digits cannot split. */
static void s_cmpsort(const qn_sortbuf *sb, s_entry *a, size_t n)
{
    unsigned depth = 0;
    for (size_t m = n; m > 1; m >>= 1)
        depth += 2;
    s_introsort(sb, a, n, depth);
}

static void s_radix(const qn_sortbuf *sb, s_entry *a, size_t n, unsigned level,
                    unsigned last);

/*
 * Finish a[0..n) (more than RADIX_SMALL entries), which agree on every
 * digit before the offset but not necessarily on their keys (long keys
 * with one prefix, or one partition in a user order): by offset when the
 * keys are all equal (a frequent key), which one pass finds out, else by
 * comparison.
 */
static void s_finish(const qn_sortbuf *sb, s_entry *a, size_t n)
{
    for (size_t i = 1; i < n; i++) {
        if (s_keycmp(sb, &a[0], &a[i]) != 0) {
            s_cmpsort(sb, a, n);
            return;
        }
    }
    s_radix(sb, a, n, OFF_LEVEL, ALL_LEVELS);
}

/*
 * Sort a[0..n), which agree on every digit before level: short runs by
 * insertion, runs the digits have no more to say about by s_finish, the
 * rest by the next digit.
 */
static void s_sort_from(const qn_sortbuf *sb, s_entry *a, size_t n,
                        unsigned level, unsigned last)
{
    if (n < 2)
        return;
    if (n <= RADIX_SMALL)
        s_insertion(sb, a, n);
    else if (level >= ALL_LEVELS) /* offsets are distinct: never */
        s_cmpsort(sb, a, n);
    else if (level == last ||
             (level == OFF_LEVEL && s_digit(a, LEN_LEVEL) == LONG_KEY))
        s_finish(sb, a, n);
    else
        s_radix(sb, a, n, level, last);
}

/*
 * American flag sort of a[0..n) on digit level, then on the next ones up
 * to last: count the entries of each of 256 buckets, move every entry to
 * its bucket in place by following cycles of swaps, and sort each bucket
 * from the next level. Entries all in one bucket skip to the first level
 * that splits them. Recursion is at most ALL_LEVELS deep, and the counts
 * on the stack are the only memory used.
 */
static void s_radix(const qn_sortbuf *sb, s_entry *a, size_t n, unsigned level,
                    unsigned last)
{
    /* Indices fit: a buffer of at most 4 GiB holds fewer than 2^28. */
    uint32_t count[256], next[256];

    memset(count, 0, sizeof count);
    for (size_t i = 0; i < n; i++)
        count[s_digit(&a[i], level)]++;
    if (count[s_digit(a, level)] == n) {
        s_sort_from(sb, a, n, s_first_split(a, n, level + 1, last), last);
        return;
    }

    uint32_t sum = 0;
    for (unsigned b = 0; b < 256; b++) {
        next[b] = sum;
        sum += count[b];
    }
    /* Fill bucket b up from its next free slot: the entry found there goes
     * to the next free slot of its own bucket, the entry it displaces goes
     * on to its own, and so on until one that belongs in b turns up. Each
     * entry moves once. */
    for (unsigned b = 0; b < 256; b++) {
        while (count[b] > 0) {
            s_entry e = a[next[b]];
            unsigned d = s_digit(&e, level);
            while (d != b) {
                s_entry t = a[next[d]];
                a[next[d]++] = e;
                count[d]--;
                e = t;
                d = s_digit(&e, level);
            }
            a[next[b]++] = e;
            count[b]--;
        }
    }

    /* Bucket b now ends where next[b] stopped. */
    uint32_t start = 0;
    for (unsigned b = 0; b < 256; b++) {
        s_sort_from(sb, a + start, next[b] - start, level + 1, last);
        start = next[b];
    }
}

/*
 * With a user order the prefix is unused (zero) and equal keys cannot be
 * told from their index entries, so the digits stop after the partition.
 */
void qn_sortbuf_sort(qn_sortbuf *sb)
{
    s_sort_from(sb, s_base(sb), sb->count, 0,
                sb->cmp ? PART_LEVELS : ALL_LEVELS);
}

void qn_sortbuf_get(const qn_sortbuf *sb, size_t i, unsigned *part,
                    const void **key, size_t *klen, const void **val,
                    size_t *vlen)
{
    const s_entry *e = &s_base(sb)[i];
    const char *k, *v;
    s_record(sb, e, &k, klen, &v, vlen);
    *part = e->pk >> LEN_BITS;
    *key = k;
    *val = v;
}

int qn_sortbuf_same_key(const qn_sortbuf *sb, size_t i, size_t j)
{
    return s_keycmp(sb, &s_base(sb)[i], &s_base(sb)[j]) == 0;
}

void qn_sortbuf_reset(qn_sortbuf *sb)
{
    sb->front = 0;
    sb->count = 0;
}
