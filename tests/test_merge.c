/*
 * test_merge.c -- k-way merge of sorted block streams, and the map side's
 * whole path: sort buffer, spills to intermediate files, merge.
 */
#include "helpers.h"

#include "hash.h"
#include "ifile.h"
#include "merge.h"
#include "sortbuf.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <zlib.h>

TestSuite(merge, .fini = qn_test_leak_check);

/* ---- helpers ------------------------------------------------------------- */

typedef struct {
    unsigned part;
    char key[24];
    size_t klen;
    char val[48];
    size_t vlen;
    size_t seq; /* insertion order */
} s_rec;

static s_rec s_rec_of(const char *key, const char *val)
{
    s_rec r = {0};
    r.klen = strlen(key);
    r.vlen = strlen(val);
    memcpy(r.key, key, r.klen);
    memcpy(r.val, val, r.vlen);
    return r;
}

/*
 * Several block streams back to back in one file, one per source; ranges
 * receives each stream's byte range.
 */
static void s_write_sources(const char *path, s_rec *const *srcs,
                            const size_t *counts, size_t nsrc, qn_range *ranges)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    cr_assert_geq(fd, 0, "open %s: %s", path, strerror(errno));
    qn_codec *c = qn_codec_new(QN_CODEC_ZLIB, 1);
    for (size_t s = 0; s < nsrc; s++) {
        qn_blockwriter *w = qn_blockwriter_new(fd, c);
        for (size_t i = 0; i < counts[s]; i++) {
            const s_rec *r = &srcs[s][i];
            cr_assert_eq(
                qn_blockwriter_add(w, r->key, r->klen, r->val, r->vlen), 0);
        }
        cr_assert_eq(qn_blockwriter_flush(w), 0);
        ranges[s] = qn_blockwriter_totals(w);
        qn_blockwriter_destroy(&w);
    }
    qn_codec_destroy(&c);
    cr_assert_eq(close(fd), 0);
}

/* Readers over ranges of fd. */
static qn_blockreader *s_readers(int fd, const char *name,
                                 const qn_range *ranges, size_t n,
                                 qn_blockreader ***ptrs)
{
    qn_blockreader *rs = calloc(n ? n : 1, sizeof *rs);
    *ptrs = calloc(n ? n : 1, sizeof **ptrs);
    for (size_t i = 0; i < n; i++) {
        cr_assert_eq(qn_blockreader_init(&rs[i], fd, name, ranges[i].offset,
                                         ranges[i].length),
                     0);
        (*ptrs)[i] = &rs[i];
    }
    return rs;
}

static void s_readers_free(qn_blockreader *rs, qn_blockreader **ptrs, size_t n)
{
    for (size_t i = 0; i < n; i++)
        qn_blockreader_release(&rs[i]);
    free(rs);
    free(ptrs);
}

/* Take every record from m and check it is want[0..n), then the end. */
static void s_expect_merge(qn_merge *m, const s_rec *want, size_t n)
{
    const void *k, *v;
    size_t kl, vl;
    for (size_t i = 0; i < n; i++) {
        int rc = qn_merge_peek(m, &k, &kl, &v, &vl);
        cr_assert_eq(rc, 1, "record %zu of %zu: %d (%s)", i, n, rc,
                     qn_merge_error(m));
        cr_assert_eq(kl, want[i].klen, "record %zu: key length", i);
        cr_assert_arr_eq(k, want[i].key, kl, "record %zu: key", i);
        cr_assert_eq(vl, want[i].vlen, "record %zu: value length", i);
        cr_assert_arr_eq(v, want[i].val, vl, "record %zu: value", i);
        qn_merge_pop(m);
    }
    cr_assert_eq(qn_merge_peek(m, &k, &kl, &v, &vl), 0, "extra records");
    cr_assert_eq(qn_merge_peek(m, &k, &kl, &v, &vl), 0);
}

/* ---- the merge ----------------------------------------------------------- */

Test(merge, merges_sorted_streams_into_one_order)
{
    char *tmp = qn_test_tmpdir();
    char path[4096];
    qn_test_join(path, sizeof path, tmp, "sources");
    enum { NSRC = 5, PER = 400 };
    s_rec *srcs[NSRC];
    size_t counts[NSRC];
    s_rec *all = calloc(NSRC * PER, sizeof *all);
    size_t total = 0;
    uint64_t st = 17;
    for (size_t s = 0; s < NSRC; s++) {
        /* Source s holds keys s, s + NSRC, s + 2 * NSRC, ...: sorted, and
         * interleaved with the others. Source 3 is empty. */
        counts[s] = s == 3 ? 0 : PER - s * 7;
        srcs[s] = calloc(PER, sizeof **srcs);
        for (size_t i = 0; i < counts[s]; i++) {
            char key[24], val[48];
            snprintf(key, sizeof key, "key%08zu", i * NSRC + s);
            snprintf(val, sizeof val, "src%zu-%zu-%llu", s, i,
                     (unsigned long long)(qn_test_rand(&st) % 1000));
            srcs[s][i] = s_rec_of(key, val);
        }
    }
    /* The expected order: by key number. */
    for (size_t key = 0; key < NSRC * PER; key++) {
        size_t s = key % NSRC, i = key / NSRC;
        if (i < counts[s])
            all[total++] = srcs[s][i];
    }
    qn_range ranges[NSRC];
    s_write_sources(path, srcs, counts, NSRC, ranges);

    int fd = open(path, O_RDONLY);
    qn_blockreader **ptrs;
    qn_blockreader *rs = s_readers(fd, path, ranges, NSRC, &ptrs);
    qn_merge *m = qn_merge_new(NULL, ptrs, NSRC);
    s_expect_merge(m, all, total);
    qn_merge_destroy(&m);
    cr_assert_null(m);
    qn_merge_destroy(&m);
    s_readers_free(rs, ptrs, NSRC);
    close(fd);

    for (size_t s = 0; s < NSRC; s++)
        free(srcs[s]);
    free(all);
    cr_assert_eq(qn_rmtree(tmp), 0);
    free(tmp);
}

Test(merge, ties_come_out_in_source_order)
{
    char *tmp = qn_test_tmpdir();
    char path[4096];
    qn_test_join(path, sizeof path, tmp, "sources");
    /* Every source has the same keys, some twice; values say where they
     * came from. */
    static const char *const keys[] = {"a", "a", "b", "c", "c", "c", "d"};
    enum { NSRC = 4, PER = 7 };
    s_rec *srcs[NSRC];
    size_t counts[NSRC];
    for (size_t s = 0; s < NSRC; s++) {
        counts[s] = PER;
        srcs[s] = calloc(PER, sizeof **srcs);
        for (size_t i = 0; i < PER; i++) {
            char val[16];
            snprintf(val, sizeof val, "s%zu.%zu", s, i);
            srcs[s][i] = s_rec_of(keys[i], val);
        }
    }
    s_rec want[NSRC * PER];
    size_t n = 0;
    for (size_t i = 0; i < PER;) {
        size_t j = i;
        while (j < PER && strcmp(keys[j], keys[i]) == 0)
            j++;
        for (size_t s = 0; s < NSRC; s++)
            for (size_t x = i; x < j; x++)
                want[n++] = srcs[s][x];
        i = j;
    }
    cr_assert_eq(n, NSRC * PER);
    qn_range ranges[NSRC];
    s_write_sources(path, srcs, counts, NSRC, ranges);

    int fd = open(path, O_RDONLY);
    qn_blockreader **ptrs;
    qn_blockreader *rs = s_readers(fd, path, ranges, NSRC, &ptrs);
    qn_merge *m = qn_merge_new(NULL, ptrs, NSRC);
    s_expect_merge(m, want, n);
    qn_merge_destroy(&m);
    s_readers_free(rs, ptrs, NSRC);
    close(fd);
    for (size_t s = 0; s < NSRC; s++)
        free(srcs[s]);
    cr_assert_eq(qn_rmtree(tmp), 0);
    free(tmp);
}

Test(merge, peek_without_pop_returns_the_same_record)
{
    char *tmp = qn_test_tmpdir();
    char path[4096];
    qn_test_join(path, sizeof path, tmp, "sources");
    s_rec a[] = {s_rec_of("a", "1"), s_rec_of("c", "3")};
    s_rec b[] = {s_rec_of("b", "2")};
    s_rec *srcs[] = {a, b};
    size_t counts[] = {2, 1};
    qn_range ranges[2];
    s_write_sources(path, srcs, counts, 2, ranges);
    int fd = open(path, O_RDONLY);
    qn_blockreader **ptrs;
    qn_blockreader *rs = s_readers(fd, path, ranges, 2, &ptrs);
    qn_merge *m = qn_merge_new(NULL, ptrs, 2);
    const void *k, *v;
    size_t kl, vl;
    for (int i = 0; i < 3; i++) {
        cr_assert_eq(qn_merge_peek(m, &k, &kl, &v, &vl), 1);
        cr_assert_eq(kl, 1);
        cr_assert_eq(*(const char *)k, 'a');
    }
    qn_merge_pop(m);
    cr_assert_eq(qn_merge_peek(m, &k, &kl, &v, &vl), 1);
    cr_assert_eq(*(const char *)k, 'b');
    cr_assert_eq(qn_merge_peek(m, &k, &kl, &v, &vl), 1);
    cr_assert_eq(*(const char *)k, 'b');
    qn_merge_pop(m);
    cr_assert_eq(qn_merge_peek(m, &k, &kl, &v, &vl), 1);
    cr_assert_eq(*(const char *)k, 'c');
    cr_assert_eq(*(const char *)v, '3');
    qn_merge_pop(m);
    cr_assert_eq(qn_merge_peek(m, &k, &kl, &v, &vl), 0);
    qn_merge_destroy(&m);
    s_readers_free(rs, ptrs, 2);
    close(fd);
    cr_assert_eq(qn_rmtree(tmp), 0);
    free(tmp);
}

Test(merge, merge_of_nothing_is_empty)
{
    const void *k, *v;
    size_t kl, vl;
    qn_merge *m = qn_merge_new(NULL, NULL, 0);
    cr_assert_eq(qn_merge_peek(m, &k, &kl, &v, &vl), 0);
    qn_merge_destroy(&m);

    /* Sources that are all empty ranges. */
    char *tmp = qn_test_tmpdir();
    char path[4096];
    qn_test_join(path, sizeof path, tmp, "empty");
    size_t counts[3] = {0, 0, 0};
    s_rec *srcs[3] = {NULL, NULL, NULL};
    qn_range ranges[3];
    s_write_sources(path, srcs, counts, 3, ranges);
    int fd = open(path, O_RDONLY);
    qn_blockreader **ptrs;
    qn_blockreader *rs = s_readers(fd, path, ranges, 3, &ptrs);
    m = qn_merge_new(NULL, ptrs, 3);
    cr_assert_eq(qn_merge_peek(m, &k, &kl, &v, &vl), 0);
    qn_merge_destroy(&m);
    s_readers_free(rs, ptrs, 3);
    close(fd);
    cr_assert_eq(qn_rmtree(tmp), 0);
    free(tmp);
}

static int s_reverse(const void *a, size_t alen, const void *b, size_t blen)
{
    return qn_key_cmp(b, blen, a, alen);
}

Test(merge, merges_with_a_custom_compare)
{
    char *tmp = qn_test_tmpdir();
    char path[4096];
    qn_test_join(path, sizeof path, tmp, "sources");
    /* Sorted in reverse byte order; "b" ties between the sources. */
    s_rec a[] = {s_rec_of("z", "a1"), s_rec_of("m", "a2"), s_rec_of("b", "a3"),
                 s_rec_of("", "a4")};
    s_rec b[] = {s_rec_of("y", "b1"), s_rec_of("b", "b2"), s_rec_of("a", "b3")};
    s_rec *srcs[] = {a, b};
    size_t counts[] = {4, 3};
    s_rec want[] = {a[0], b[0], a[1], a[2], b[1], b[2], a[3]};
    qn_range ranges[2];
    s_write_sources(path, srcs, counts, 2, ranges);
    int fd = open(path, O_RDONLY);
    qn_blockreader **ptrs;
    qn_blockreader *rs = s_readers(fd, path, ranges, 2, &ptrs);
    qn_merge *m = qn_merge_new(s_reverse, ptrs, 2);
    s_expect_merge(m, want, QN_ARRAY_LEN(want));
    qn_merge_destroy(&m);
    s_readers_free(rs, ptrs, 2);
    close(fd);
    cr_assert_eq(qn_rmtree(tmp), 0);
    free(tmp);
}

/* A source that fails part way: the merge reports it, naming the file and
 * the damaged block. */
Test(merge, reports_a_corrupt_source)
{
    char *tmp = qn_test_tmpdir();
    char path[4096];
    qn_test_join(path, sizeof path, tmp, "sources");
    enum { PER = 3000 };
    s_rec *srcs[2];
    size_t counts[2] = {PER, PER};
    uint64_t st = 5;
    for (size_t s = 0; s < 2; s++) {
        srcs[s] = calloc(PER, sizeof **srcs);
        for (size_t i = 0; i < PER; i++) {
            char key[24], val[48];
            snprintf(key, sizeof key, "k%06zu-%zu", i, s);
            for (size_t j = 0; j < 40; j++)
                val[j] = (char)('a' + qn_test_rand(&st) % 26);
            val[40] = '\0';
            srcs[s][i] = s_rec_of(key, val);
        }
    }
    qn_range ranges[2];
    s_write_sources(path, srcs, counts, 2, ranges);
    /* Damage the payload of source 1's second block. */
    int fd = open(path, O_RDWR);
    unsigned char h[QN_BLOCK_HEADER];
    cr_assert_eq(qn_pread_all(fd, h, sizeof h, ranges[1].offset), 0);
    uint32_t stored = (uint32_t)h[12] | (uint32_t)h[13] << 8 |
                      (uint32_t)h[14] << 16 | (uint32_t)h[15] << 24;
    uint64_t bad = ranges[1].offset + QN_BLOCK_HEADER + stored;
    cr_assert_lt(bad + QN_BLOCK_HEADER, ranges[1].offset + ranges[1].length,
                 "source 1 has only one block");
    unsigned char c;
    cr_assert_eq(qn_pread_all(fd, &c, 1, bad + QN_BLOCK_HEADER + 2), 0);
    c ^= 0x40;
    cr_assert_eq(pwrite(fd, &c, 1, (off_t)(bad + QN_BLOCK_HEADER + 2)), 1);

    qn_blockreader **ptrs;
    qn_blockreader *rs = s_readers(fd, path, ranges, 2, &ptrs);
    qn_merge *m = qn_merge_new(NULL, ptrs, 2);
    const void *k, *v;
    size_t kl, vl;
    int rc;
    size_t got = 0;
    while ((rc = qn_merge_peek(m, &k, &kl, &v, &vl)) == 1) {
        qn_merge_pop(m);
        got++;
        cr_assert_lt(got, 2 * PER, "the damage was never reported");
    }
    cr_assert_lt(rc, 0);
    cr_assert_gt(got, 0, "nothing came out before the damaged block");
    char want[64];
    snprintf(want, sizeof want, "byte %llu", (unsigned long long)bad);
    cr_assert(strstr(qn_merge_error(m), path), "%s", qn_merge_error(m));
    cr_assert(strstr(qn_merge_error(m), want), "no \"%s\" in: %s", want,
              qn_merge_error(m));
    qn_merge_destroy(&m);
    s_readers_free(rs, ptrs, 2);
    close(fd);
    for (size_t s = 0; s < 2; s++)
        free(srcs[s]);
    cr_assert_eq(qn_rmtree(tmp), 0);
    free(tmp);
}

static uint32_t s_le32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
           (uint32_t)p[3] << 24;
}

static void s_put_le32(unsigned char *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

/* Ways to damage a block that keep its CRC right (a CRC finds the rest). */
enum { DAMAGE_RECORDS, DAMAGE_PAYLOAD, DAMAGE_KINDS };

/*
 * Damage the block at off of fd as kind says and write a CRC that matches
 * again: the header says one record more than the block holds, or the
 * payload is not a deflate stream (0xff starts a block of reserved type).
 */
static void s_damage_keeping_crc(int fd, uint64_t off, int kind)
{
    unsigned char h[QN_BLOCK_HEADER];
    cr_assert_eq(qn_pread_all(fd, h, sizeof h, off), 0);
    uint32_t stored = s_le32(h + 12);
    unsigned char *payload = malloc(stored);
    cr_assert_eq(qn_pread_all(fd, payload, stored, off + QN_BLOCK_HEADER), 0);
    if (kind == DAMAGE_RECORDS) {
        s_put_le32(h + 16, s_le32(h + 16) + 1);
    } else {
        cr_assert_eq(h[4], QN_CODEC_ZLIB, "the block is not deflated");
        payload[0] = 0xff;
    }
    uLong crc = crc32(0L, h, 20);
    s_put_le32(h + 20, (uint32_t)crc32(crc, payload, (uInt)stored));
    cr_assert_eq(pwrite(fd, h, sizeof h, (off_t)off), (ssize_t)sizeof h);
    cr_assert_eq(pwrite(fd, payload, stored, (off_t)(off + QN_BLOCK_HEADER)),
                 (ssize_t)stored);
    free(payload);
}

/*
 * A block whose CRC is right but whose records do not decode: the merge
 * says which source it was (a reducer charges it to the map output it
 * came from), with the file and the block's offset, and stays failed.
 */
Test(merge, says_which_source_failed)
{
    char *tmp = qn_test_tmpdir();
    char path[4096];
    qn_test_join(path, sizeof path, tmp, "sources");
    enum { NSRC = 3, PER = 3000, BAD = 1 };
    s_rec *srcs[NSRC];
    size_t counts[NSRC] = {PER, PER, PER};
    uint64_t st = 11;
    for (size_t s = 0; s < NSRC; s++) {
        srcs[s] = calloc(PER, sizeof **srcs);
        for (size_t i = 0; i < PER; i++) {
            char key[24], val[48];
            snprintf(key, sizeof key, "k%06zu-%zu", i, s);
            for (size_t j = 0; j < 40; j++)
                val[j] = (char)('a' + qn_test_rand(&st) % 26);
            val[40] = '\0';
            srcs[s][i] = s_rec_of(key, val);
        }
    }
    for (int kind = 0; kind < DAMAGE_KINDS; kind++) {
        qn_range ranges[NSRC];
        s_write_sources(path, srcs, counts, NSRC, ranges);
        int fd = open(path, O_RDWR);
        cr_assert_geq(fd, 0);

        /* Undamaged, no source has failed, before or after the end. */
        qn_blockreader **ptrs;
        qn_blockreader *rs = s_readers(fd, path, ranges, NSRC, &ptrs);
        qn_merge *m = qn_merge_new(NULL, ptrs, NSRC);
        const void *k, *v;
        size_t kl, vl;
        cr_assert_eq(qn_merge_failed(m), -1);
        size_t got = 0;
        while (qn_merge_peek(m, &k, &kl, &v, &vl) == 1) {
            qn_merge_pop(m);
            got++;
        }
        cr_assert_eq(got, NSRC * PER, "%s", qn_merge_error(m));
        cr_assert_eq(qn_merge_failed(m), -1);
        qn_merge_destroy(&m);
        s_readers_free(rs, ptrs, NSRC);

        /* Damage source BAD's second block. */
        unsigned char h[QN_BLOCK_HEADER];
        cr_assert_eq(qn_pread_all(fd, h, sizeof h, ranges[BAD].offset), 0);
        uint64_t bad = ranges[BAD].offset + QN_BLOCK_HEADER + s_le32(h + 12);
        cr_assert_lt(bad + QN_BLOCK_HEADER,
                     ranges[BAD].offset + ranges[BAD].length,
                     "source %d has only one block", BAD);
        s_damage_keeping_crc(fd, bad, kind);

        rs = s_readers(fd, path, ranges, NSRC, &ptrs);
        m = qn_merge_new(NULL, ptrs, NSRC);
        int rc;
        got = 0;
        while ((rc = qn_merge_peek(m, &k, &kl, &v, &vl)) == 1) {
            cr_assert_eq(qn_merge_failed(m), -1);
            qn_merge_pop(m);
            got++;
            cr_assert_lt(got, NSRC * PER, "the damage was never reported");
        }
        cr_assert_eq(rc, -QN_ECORRUPT, "damage %d: %d", kind, rc);
        cr_assert_gt(got, 0, "nothing came out before the damaged block");
        cr_assert_eq(qn_merge_failed(m), BAD, "damage %d: source %ld failed",
                     kind, qn_merge_failed(m));
        cr_assert_eq(ptrs[BAD]->failed, -QN_ECORRUPT);
        for (size_t s = 0; s < NSRC; s++)
            if (s != BAD)
                cr_assert_eq(ptrs[s]->failed, 0, "source %zu failed too", s);
        const char *err = qn_merge_error(m);
        char want[64];
        snprintf(want, sizeof want, "%s at byte %llu",
                 kind == DAMAGE_RECORDS ? "bad record in block"
                                        : "block does not decompress",
                 (unsigned long long)bad);
        cr_assert(strstr(err, path), "%s", err);
        cr_assert(strstr(err, want), "no \"%s\" in: %s", want, err);
        /* It stays failed, saying the same. */
        cr_assert_eq(qn_merge_peek(m, &k, &kl, &v, &vl), -QN_ECORRUPT);
        cr_assert_eq(qn_merge_failed(m), BAD);
        cr_assert(strstr(qn_merge_error(m), want), "%s", qn_merge_error(m));
        qn_merge_destroy(&m);
        s_readers_free(rs, ptrs, NSRC);
        close(fd);
    }
    for (size_t s = 0; s < NSRC; s++)
        free(srcs[s]);
    cr_assert_eq(qn_rmtree(tmp), 0);
    free(tmp);
}

/* ---- sort, spill and merge ----------------------------------------------- */

enum { NPARTS = 3, NRECS = 4000 };

typedef struct {
    char *tmp;
    char **runs; /* ifile paths, in the order they were written */
    size_t nruns;
    qn_codec *codec;
} s_spills;

static void s_spill(s_spills *sp, qn_sortbuf *sb)
{
    char name[64], path[4096], err[256] = "";
    snprintf(name, sizeof name, "spill-%04zu.ifile", sp->nruns);
    qn_test_join(path, sizeof path, sp->tmp, name);
    qn_sortbuf_sort(sb);
    qn_ifile_writer *w =
        qn_ifile_writer_new(path, NPARTS, sp->codec, err, sizeof err);
    cr_assert_not_null(w, "%s", err);
    for (size_t i = 0; i < qn_sortbuf_count(sb); i++) {
        unsigned part;
        const void *k, *v;
        size_t kl, vl;
        qn_sortbuf_get(sb, i, &part, &k, &kl, &v, &vl);
        cr_assert_eq(qn_ifile_writer_add(w, part, k, kl, v, vl), 0);
    }
    qn_range ranges[NPARTS];
    cr_assert_eq(qn_ifile_writer_close(&w, ranges, err, sizeof err), 0, "%s",
                 err);
    uint64_t records = 0;
    for (unsigned p = 0; p < NPARTS; p++)
        records += ranges[p].records;
    cr_assert_eq(records, qn_sortbuf_count(sb));
    sp->runs = realloc(sp->runs, (sp->nruns + 1) * sizeof *sp->runs);
    sp->runs[sp->nruns++] = strdup(path);
    qn_sortbuf_reset(sb);
}

/*
 * Merge runs[first, first + n) into one ifile, partition by partition;
 * returns its path (malloc'd).
 */
static char *s_merge_runs(s_spills *sp, char **runs, size_t n,
                          const char *outname)
{
    char path[4096], err[256] = "";
    qn_test_join(path, sizeof path, sp->tmp, outname);
    qn_ifile **files = calloc(n, sizeof *files);
    for (size_t i = 0; i < n; i++) {
        files[i] = qn_ifile_open(runs[i], err, sizeof err);
        cr_assert_not_null(files[i], "%s", err);
        cr_assert_eq(qn_ifile_nparts(files[i]), NPARTS);
    }
    qn_ifile_writer *w =
        qn_ifile_writer_new(path, NPARTS, sp->codec, err, sizeof err);
    cr_assert_not_null(w, "%s", err);
    qn_blockreader *rs = calloc(n, sizeof *rs);
    qn_blockreader **ptrs = calloc(n, sizeof *ptrs);
    for (unsigned p = 0; p < NPARTS; p++) {
        for (size_t i = 0; i < n; i++) {
            qn_range r = qn_ifile_range(files[i], p);
            cr_assert_eq(qn_blockreader_init(&rs[i], qn_ifile_fd(files[i]),
                                             qn_ifile_path(files[i]), r.offset,
                                             r.length),
                         0);
            ptrs[i] = &rs[i];
        }
        qn_merge *m = qn_merge_new(NULL, ptrs, n);
        const void *k, *v;
        size_t kl, vl;
        int rc;
        while ((rc = qn_merge_peek(m, &k, &kl, &v, &vl)) == 1) {
            cr_assert_eq(qn_ifile_writer_add(w, p, k, kl, v, vl), 0);
            qn_merge_pop(m);
        }
        cr_assert_eq(rc, 0, "%s", qn_merge_error(m));
        qn_merge_destroy(&m);
        for (size_t i = 0; i < n; i++)
            qn_blockreader_release(&rs[i]);
    }
    cr_assert_eq(qn_ifile_writer_close(&w, NULL, err, sizeof err), 0, "%s",
                 err);
    for (size_t i = 0; i < n; i++)
        qn_ifile_destroy(&files[i]);
    free(files);
    free(rs);
    free(ptrs);
    return strdup(path);
}

static int s_ref_order(const void *pa, const void *pb)
{
    const s_rec *a = pa, *b = pb;
    if (a->part != b->part)
        return a->part < b->part ? -1 : 1;
    int c = qn_key_cmp(a->key, a->klen, b->key, b->klen);
    if (c)
        return c;
    return a->seq < b->seq ? -1 : a->seq > b->seq;
}

/*
 * Merge partition by partition every run in runs, all at once, and check
 * the output is recs (already in reference order).
 */
static void s_check_merged(char **runs, size_t nruns, const s_rec *recs,
                           size_t nrecs)
{
    char err[256] = "";
    qn_ifile **files = calloc(nruns, sizeof *files);
    qn_blockreader *rs = calloc(nruns, sizeof *rs);
    qn_blockreader **ptrs = calloc(nruns, sizeof *ptrs);
    for (size_t i = 0; i < nruns; i++) {
        files[i] = qn_ifile_open(runs[i], err, sizeof err);
        cr_assert_not_null(files[i], "%s", err);
    }
    size_t at = 0;
    for (unsigned p = 0; p < NPARTS; p++) {
        for (size_t i = 0; i < nruns; i++) {
            qn_range r = qn_ifile_range(files[i], p);
            cr_assert_eq(qn_blockreader_init(&rs[i], qn_ifile_fd(files[i]),
                                             runs[i], r.offset, r.length),
                         0);
            ptrs[i] = &rs[i];
        }
        qn_merge *m = qn_merge_new(NULL, ptrs, nruns);
        const void *k, *v;
        size_t kl, vl;
        int rc;
        while ((rc = qn_merge_peek(m, &k, &kl, &v, &vl)) == 1) {
            cr_assert_lt(at, nrecs, "more records than went in");
            const s_rec *want = &recs[at];
            cr_assert_eq(want->part, p, "record %zu: partition", at);
            cr_assert_eq(kl, want->klen, "record %zu: key length", at);
            cr_assert_arr_eq(k, want->key, kl, "record %zu: key", at);
            cr_assert_eq(vl, want->vlen, "record %zu: value length", at);
            cr_assert_arr_eq(v, want->val, vl, "record %zu: value", at);
            qn_merge_pop(m);
            at++;
        }
        cr_assert_eq(rc, 0, "%s", qn_merge_error(m));
        qn_merge_destroy(&m);
        for (size_t i = 0; i < nruns; i++)
            qn_blockreader_release(&rs[i]);
    }
    cr_assert_eq(at, nrecs, "records lost");
    for (size_t i = 0; i < nruns; i++)
        qn_ifile_destroy(&files[i]);
    free(files);
    free(rs);
    free(ptrs);
}

Test(merge, sort_spill_and_merge_with_a_buffer_of_a_few_kib)
{
    s_spills sp = {.tmp = qn_test_tmpdir()};
    sp.codec = qn_codec_new(QN_CODEC_ZLIB, 1);
    qn_sortbuf *sb = qn_sortbuf_new(4096, NULL);

    /* Keys from a small set, so many repeat across and within spills;
     * values record the insertion order. */
    s_rec *recs = calloc(NRECS, sizeof *recs);
    uint64_t st = 20240601;
    for (size_t i = 0; i < NRECS; i++) {
        s_rec *r = &recs[i];
        unsigned long word = (unsigned long)(qn_test_rand(&st) % 500);
        size_t pad = qn_test_rand(&st) % 6;
        r->klen = (size_t)snprintf(r->key, sizeof r->key, "w%lu%.*s", word,
                                   (int)pad, "~~~~~~");
        if (qn_test_rand(&st) % 50 == 0)
            r->klen = 0; /* the empty key too */
        size_t vpad = qn_test_rand(&st) % 30;
        r->vlen =
            (size_t)snprintf(r->val, sizeof r->val, "%zu:%.*s", i, (int)vpad,
                             "................................");
        r->part = qn_hash_partition(r->key, r->klen, NPARTS);
        r->seq = i;
        int rc = qn_sortbuf_add(sb, r->part, r->key, r->klen, r->val, r->vlen);
        if (rc == -QN_EFULL) {
            s_spill(&sp, sb);
            rc = qn_sortbuf_add(sb, r->part, r->key, r->klen, r->val, r->vlen);
        }
        cr_assert_eq(rc, 0, "record %zu: %d", i, rc);
    }
    if (qn_sortbuf_count(sb))
        s_spill(&sp, sb);
    cr_assert_gt(sp.nruns, QN_MERGE_FANIN,
                 "only %zu spills: the test wants more than one merge pass",
                 sp.nruns);

    /* The reference: a stable sort of everything by partition and key. */
    qsort(recs, NRECS, sizeof *recs, s_ref_order);

    /* Every spill merged at once. */
    s_check_merged(sp.runs, sp.nruns, recs, NRECS);

    /* As a reducer does it: at most QN_MERGE_FANIN runs at a time,
     * consecutive runs together so that equal keys keep their input order,
     * until one run is left. */
    char **runs = sp.runs;
    size_t nruns = sp.nruns;
    int pass = 0;
    while (nruns > 1) {
        size_t next_n = (nruns + QN_MERGE_FANIN - 1) / QN_MERGE_FANIN;
        char **next = calloc(next_n, sizeof *next);
        for (size_t g = 0; g < next_n; g++) {
            size_t first = g * QN_MERGE_FANIN;
            size_t n =
                nruns - first < QN_MERGE_FANIN ? nruns - first : QN_MERGE_FANIN;
            char name[64];
            snprintf(name, sizeof name, "pass%d-%04zu.ifile", pass, g);
            next[g] = s_merge_runs(&sp, runs + first, n, name);
        }
        for (size_t i = 0; i < nruns; i++) {
            unlink(runs[i]);
            free(runs[i]);
        }
        free(runs);
        runs = next;
        nruns = next_n;
        pass++;
    }
    cr_assert_geq(pass, 2);
    s_check_merged(runs, 1, recs, NRECS);

    unlink(runs[0]);
    free(runs[0]);
    free(runs);
    free(recs);
    qn_sortbuf_destroy(&sb);
    qn_codec_destroy(&sp.codec);
    cr_assert_eq(qn_rmtree(sp.tmp), 0);
    free(sp.tmp);
}
