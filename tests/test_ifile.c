/*
 * test_ifile.c -- block streams, intermediate files, varints, key order.
 */
#include "helpers.h"

#include "ifile.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <zlib.h>

TestSuite(ifile, .fini = qn_test_leak_check);

/* ---- helpers ------------------------------------------------------------- */

/* One record, owning its bytes. */
typedef struct {
    unsigned part;
    const char *key, *val;
    size_t klen, vlen;
} s_rec;

static s_rec s_rec_make(unsigned part, const void *key, size_t klen,
                        const void *val, size_t vlen)
{
    char *k = malloc(klen + 1), *v = malloc(vlen + 1);
    if (klen)
        memcpy(k, key, klen);
    if (vlen)
        memcpy(v, val, vlen);
    return (s_rec){
        .part = part, .key = k, .val = v, .klen = klen, .vlen = vlen};
}

static void s_recs_free(s_rec *recs, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free((char *)recs[i].key);
        free((char *)recs[i].val);
    }
    free(recs);
}

/* Bytes of a record in a block: two varints, then key and value. */
static uint64_t s_raw_size(size_t klen, size_t vlen)
{
    unsigned char tmp[10];
    return qn_varint_put(tmp, klen) + qn_varint_put(tmp, vlen) + klen + vlen;
}

static uint64_t s_file_size(const char *path)
{
    struct stat st;
    cr_assert_eq(stat(path, &st), 0, "stat %s", path);
    return (uint64_t)st.st_size;
}

static void s_flip_bit(const char *path, uint64_t off, unsigned bit)
{
    int fd = open(path, O_RDWR);
    cr_assert_geq(fd, 0);
    unsigned char c;
    cr_assert_eq(pread(fd, &c, 1, (off_t)off), 1);
    c ^= (unsigned char)(1u << bit);
    cr_assert_eq(pwrite(fd, &c, 1, (off_t)off), 1);
    close(fd);
}

static void s_read_at(const char *path, uint64_t off, void *buf, size_t n)
{
    int fd = open(path, O_RDONLY);
    cr_assert_geq(fd, 0);
    cr_assert_eq(qn_pread_all(fd, buf, n, off), 0);
    close(fd);
}

static uint32_t s_le32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
           (uint32_t)p[3] << 24;
}

/*
 * Write recs (all of one stream) to path as a block stream, ending a block
 * after every flush_every records when that is not 0. Returns the totals.
 */
static qn_range s_write_stream(const char *path, int level, const s_rec *recs,
                               size_t n, size_t flush_every)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    cr_assert_geq(fd, 0, "open %s: %s", path, strerror(errno));
    qn_codec *c = qn_codec_new(QN_CODEC_ZLIB, level);
    qn_blockwriter *w = qn_blockwriter_new(fd, c);
    for (size_t i = 0; i < n; i++) {
        cr_assert_eq(qn_blockwriter_add(w, recs[i].key, recs[i].klen,
                                        recs[i].val, recs[i].vlen),
                     0, "record %zu", i);
        if (flush_every && (i + 1) % flush_every == 0)
            cr_assert_eq(qn_blockwriter_flush(w), 0);
    }
    cr_assert_eq(qn_blockwriter_flush(w), 0);
    qn_range t = qn_blockwriter_totals(w);
    qn_blockwriter_destroy(&w);
    cr_assert_null(w);
    qn_codec_destroy(&c);
    cr_assert_eq(close(fd), 0);
    return t;
}

/*
 * Read [off, off + len) of path and check it holds exactly recs[0..n).
 * Returns the reader's raw byte count.
 */
static uint64_t s_expect_range(const char *path, uint64_t off, uint64_t len,
                               const s_rec *recs, size_t n)
{
    int fd = open(path, O_RDONLY);
    cr_assert_geq(fd, 0);
    qn_blockreader r;
    cr_assert_eq(qn_blockreader_init(&r, fd, path, off, len), 0);
    const void *k, *v;
    size_t kl, vl;
    for (size_t i = 0; i < n; i++) {
        int rc = qn_blockreader_next(&r, &k, &kl, &v, &vl);
        cr_assert_eq(rc, 1, "record %zu of %zu: %d (%s)", i, n, rc,
                     qn_blockreader_error(&r));
        cr_assert_eq(kl, recs[i].klen, "record %zu key length", i);
        cr_assert_eq(vl, recs[i].vlen, "record %zu value length", i);
        cr_assert_arr_eq(k, recs[i].key, kl, "record %zu key", i);
        cr_assert_arr_eq(v, recs[i].val, vl, "record %zu value", i);
    }
    cr_assert_eq(qn_blockreader_next(&r, &k, &kl, &v, &vl), 0,
                 "records after the expected ones: %s",
                 qn_blockreader_error(&r));
    /* The end stays the end. */
    cr_assert_eq(qn_blockreader_next(&r, &k, &kl, &v, &vl), 0);
    cr_assert_eq(r.stored_bytes, len, "stored bytes read");
    uint64_t raw = r.raw_bytes;
    qn_blockreader_release(&r);
    close(fd);
    return raw;
}

/* Records with keys "key-000000" ... and values of varying length. */
static s_rec *s_make_recs(size_t n, unsigned part, uint64_t seed)
{
    s_rec *recs = calloc(n ? n : 1, sizeof *recs);
    char key[32], val[300];
    uint64_t st = seed;
    for (size_t i = 0; i < n; i++) {
        int kl = snprintf(key, sizeof key, "key-%06zu", i);
        size_t vl = qn_test_rand(&st) % sizeof val;
        for (size_t j = 0; j < vl; j++)
            val[j] = (char)('a' + (qn_test_rand(&st) % 26));
        recs[i] = s_rec_make(part, key, (size_t)kl, val, vl);
    }
    return recs;
}

/* ---- block streams ------------------------------------------------------- */

Test(ifile, blockstream_round_trips_empty_keys_and_values)
{
    char *tmp = qn_test_tmpdir();
    char path[4096];
    qn_test_join(path, sizeof path, tmp, "stream");
    s_rec recs[] = {
        {0, "", "", 0, 0},  {0, "k", "", 1, 0},
        {0, "", "v", 0, 1}, {0, "a\0b", "\0\0\0", 3, 3},
        {0, "", "", 0, 0},  {0, "key", "value", 3, 5},
    };
    size_t n = QN_ARRAY_LEN(recs);
    uint64_t raw = 0;
    for (size_t i = 0; i < n; i++)
        raw += s_raw_size(recs[i].klen, recs[i].vlen);
    for (int level = 0; level <= 9; level += 9) {
        qn_range t = s_write_stream(path, level, recs, n, 0);
        cr_assert_eq(t.offset, 0);
        cr_assert_eq(t.records, n);
        cr_assert_eq(t.raw, raw);
        cr_assert_eq(t.length, s_file_size(path));
        cr_assert_eq(s_expect_range(path, 0, t.length, recs, n), raw);
    }
    cr_assert_eq(qn_rmtree(tmp), 0);
    free(tmp);
}

Test(ifile, blockstream_of_nothing_is_empty)
{
    char *tmp = qn_test_tmpdir();
    char path[4096];
    qn_test_join(path, sizeof path, tmp, "stream");
    qn_range t = s_write_stream(path, 1, NULL, 0, 0);
    cr_assert_eq(t.length, 0);
    cr_assert_eq(t.records, 0);
    cr_assert_eq(t.raw, 0);
    cr_assert_eq(s_file_size(path), 0);
    cr_assert_eq(s_expect_range(path, 0, 0, NULL, 0), 0);
    cr_assert_eq(qn_rmtree(tmp), 0);
    free(tmp);
}

Test(ifile, blockstream_round_trips_record_larger_than_block_target)
{
    char *tmp = qn_test_tmpdir();
    char path[4096];
    qn_test_join(path, sizeof path, tmp, "stream");
    size_t big = 3 * QN_BLOCK_TARGET + 17;
    char *v = malloc(big);
    uint64_t st = 42;
    for (size_t i = 0; i < big; i++)
        v[i] = (char)(i % 7 ? 'x' : (char)qn_test_rand(&st));
    s_rec recs[] = {
        {0, "before", "small", 6, 5},
        {0, "big", v, 3, big},
        {0, "after", "small", 5, 5},
        {0, v, "x", QN_BLOCK_TARGET + 1, 1},
    };
    for (int level = 0; level <= 1; level++) {
        qn_range t = s_write_stream(path, level, recs, QN_ARRAY_LEN(recs), 0);
        cr_assert_eq(t.records, QN_ARRAY_LEN(recs));
        s_expect_range(path, 0, t.length, recs, QN_ARRAY_LEN(recs));
    }
    free(v);
    cr_assert_eq(qn_rmtree(tmp), 0);
    free(tmp);
}

Test(ifile, blockstream_round_trips_many_records_over_many_blocks)
{
    char *tmp = qn_test_tmpdir();
    char path[4096];
    qn_test_join(path, sizeof path, tmp, "stream");
    size_t n = 20000;
    s_rec *recs = s_make_recs(n, 0, 7);
    uint64_t raw = 0;
    for (size_t i = 0; i < n; i++)
        raw += s_raw_size(recs[i].klen, recs[i].vlen);
    cr_assert_gt(raw, 20 * QN_BLOCK_TARGET, "test data too small");
    qn_range t = s_write_stream(path, 1, recs, n, 0);
    cr_assert_eq(t.records, n);
    cr_assert_eq(t.raw, raw);
    cr_assert_eq(t.length, s_file_size(path));
    cr_assert_lt(t.length, raw, "text did not compress");
    cr_assert_eq(s_expect_range(path, 0, t.length, recs, n), raw);

    /* Blocks end near the target: count them from their headers. */
    size_t blocks = 0;
    uint64_t off = 0;
    while (off < t.length) {
        unsigned char h[QN_BLOCK_HEADER];
        s_read_at(path, off, h, sizeof h);
        cr_assert_leq(s_le32(h + 8), QN_BLOCK_TARGET + 512,
                      "block of %u raw bytes", s_le32(h + 8));
        off += QN_BLOCK_HEADER + s_le32(h + 12);
        blocks++;
    }
    cr_assert_eq(off, t.length);
    cr_assert_geq(blocks, raw / QN_BLOCK_TARGET);
    cr_assert_leq(blocks, raw / QN_BLOCK_TARGET + 2);
    s_recs_free(recs, n);
    cr_assert_eq(qn_rmtree(tmp), 0);
    free(tmp);
}

/*
 * The largest record the writer accepts, of bytes that do not compress:
 * deflate makes it slightly larger than it is, so the stored block must not
 * exceed what readers accept (QN_BLOCK_MAX).
 */
Test(ifile, blockstream_round_trips_largest_incompressible_record)
{
    char *tmp = qn_test_tmpdir();
    char path[4096];
    qn_test_join(path, sizeof path, tmp, "stream");
    size_t big = QN_RECORD_MAX - 1;
    char *v = malloc(big);
    uint64_t st = 99;
    for (size_t i = 0; i + 8 <= big; i += 8) {
        uint64_t x = qn_test_rand(&st);
        memcpy(v + i, &x, 8);
    }
    s_rec recs[] = {{0, "k", v, 1, big}};
    qn_range t = s_write_stream(path, 1, recs, 1, 0);
    cr_assert_eq(t.records, 1);

    /* Read it back, then clean up (64 MiB) before asserting. */
    int fd = open(path, O_RDONLY);
    cr_assert_geq(fd, 0);
    qn_blockreader r;
    cr_assert_eq(qn_blockreader_init(&r, fd, path, 0, t.length), 0);
    const void *k, *val;
    size_t kl, vl;
    int rc = qn_blockreader_next(&r, &k, &kl, &val, &vl);
    int same = rc == 1 && kl == 1 && vl == big && memcmp(val, v, big) == 0;
    int end = rc == 1 ? qn_blockreader_next(&r, &k, &kl, &val, &vl) : -1;
    char err[256];
    snprintf(err, sizeof err, "%s", qn_blockreader_error(&r));
    qn_blockreader_release(&r);
    close(fd);
    free(v);
    cr_assert_eq(qn_rmtree(tmp), 0);
    free(tmp);
    cr_assert_eq(rc, 1, "the writer wrote a block the reader refuses: %s", err);
    cr_assert(same, "the record came back different");
    cr_assert_eq(end, 0, "%s", err);
}

Test(ifile, blockwriter_rejects_records_over_the_limit)
{
    qn_codec *c = qn_codec_new(QN_CODEC_ZLIB, 1);
    qn_blockwriter *w = qn_blockwriter_new(-1, c);
    cr_assert_eq(qn_blockwriter_add(w, "k", QN_RECORD_MAX + 1, "", 0),
                 -QN_ETOOBIG);
    cr_assert_eq(qn_blockwriter_add(w, "k", 1, "v", QN_RECORD_MAX),
                 -QN_ETOOBIG);
    cr_assert_eq(qn_blockwriter_add(w, "k", 2, "v", SIZE_MAX - 1), -QN_ETOOBIG);
    qn_range t = qn_blockwriter_totals(w);
    cr_assert_eq(t.records, 0);
    qn_blockwriter_destroy(&w);
    qn_blockwriter_destroy(&w); /* NULL is fine */
    qn_codec_destroy(&c);
}

Test(ifile, blockwriter_reports_write_errors)
{
    int fds[2];
    cr_assert_eq(pipe(fds), 0);
    close(fds[0]);
    signal(SIGPIPE, SIG_IGN);
    qn_codec *c = qn_codec_new(QN_CODEC_ZLIB, 1);
    qn_blockwriter *w = qn_blockwriter_new(fds[1], c);
    cr_assert_eq(qn_blockwriter_add(w, "k", 1, "v", 1), 0);
    cr_assert_eq(qn_blockwriter_flush(w), -EPIPE);
    qn_blockwriter_destroy(&w);
    qn_codec_destroy(&c);
    close(fds[1]);
}

/* A writer started part way into a file reports where it started, and its
 * blocks read back from there. */
Test(ifile, blockwriter_starts_at_the_current_offset)
{
    char *tmp = qn_test_tmpdir();
    char path[4096];
    qn_test_join(path, sizeof path, tmp, "stream");
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
    cr_assert_geq(fd, 0);
    cr_assert_eq(qn_write_all(fd, "HEADER-BYTES", 12), 0);
    qn_codec *c = qn_codec_new(QN_CODEC_ZLIB, 1);
    qn_blockwriter *w = qn_blockwriter_new(fd, c);
    size_t n = 100;
    s_rec *recs = s_make_recs(n, 0, 3);
    for (size_t i = 0; i < n; i++)
        cr_assert_eq(qn_blockwriter_add(w, recs[i].key, recs[i].klen,
                                        recs[i].val, recs[i].vlen),
                     0);
    cr_assert_eq(qn_blockwriter_flush(w), 0);
    qn_range t = qn_blockwriter_totals(w);
    cr_assert_eq(t.offset, 12);
    cr_assert_eq(t.offset + t.length, s_file_size(path));
    qn_blockwriter_destroy(&w);
    qn_codec_destroy(&c);
    close(fd);
    s_expect_range(path, t.offset, t.length, recs, n);
    s_recs_free(recs, n);
    cr_assert_eq(qn_rmtree(tmp), 0);
    free(tmp);
}

/* ---- detecting damage ---------------------------------------------------- */

/*
 * A stream of several small blocks (a flush every 10 records). Fills
 * block_off with the offset of each block (at most cap) and returns how
 * many blocks there are.
 */
static size_t s_small_blocks(const char *path, s_rec **recs_out, size_t n,
                             uint64_t *block_off, size_t cap, qn_range *t)
{
    s_rec *recs = s_make_recs(n, 0, 11);
    *t = s_write_stream(path, 1, recs, n, 10);
    size_t blocks = 0;
    uint64_t off = 0;
    while (off < t->length) {
        unsigned char h[QN_BLOCK_HEADER];
        s_read_at(path, off, h, sizeof h);
        cr_assert_lt(blocks, cap);
        block_off[blocks++] = off;
        off += QN_BLOCK_HEADER + s_le32(h + 12);
    }
    cr_assert_eq(off, t->length);
    *recs_out = recs;
    return blocks;
}

/*
 * Read path until an error; check that the records before it are the
 * first good ones, and that the error names the file and "byte <at>".
 */
static void s_expect_error_at(const char *path, uint64_t len, const s_rec *recs,
                              size_t good, uint64_t at, const char *what)
{
    int fd = open(path, O_RDONLY);
    cr_assert_geq(fd, 0);
    qn_blockreader r;
    cr_assert_eq(qn_blockreader_init(&r, fd, path, 0, len), 0);
    const void *k, *v;
    size_t kl, vl;
    size_t i = 0;
    int rc;
    while ((rc = qn_blockreader_next(&r, &k, &kl, &v, &vl)) == 1) {
        cr_assert_lt(i, good, "%s: read past the damage", what);
        cr_assert_eq(kl, recs[i].klen);
        cr_assert_arr_eq(k, recs[i].key, kl);
        cr_assert_eq(vl, recs[i].vlen);
        cr_assert_arr_eq(v, recs[i].val, vl);
        i++;
    }
    cr_assert_lt(rc, 0, "%s: damage not detected", what);
    cr_assert_eq(i, good, "%s: %zu good records before the error", what, i);
    const char *err = qn_blockreader_error(&r);
    char want[64];
    snprintf(want, sizeof want, "byte %llu", (unsigned long long)at);
    cr_assert(strstr(err, path), "%s: error does not name the file: %s", what,
              err);
    cr_assert(strstr(err, want), "%s: error does not say \"%s\": %s", what,
              want, err);
    /* It stays failed rather than crashing or inventing records. */
    cr_assert_leq(qn_blockreader_next(&r, &k, &kl, &v, &vl), 0);
    qn_blockreader_release(&r);
    close(fd);
}

Test(ifile, detects_corrupt_block)
{
    char *tmp = qn_test_tmpdir();
    char path[4096];
    qn_test_join(path, sizeof path, tmp, "stream");
    s_rec *recs;
    uint64_t off[16];
    qn_range t;
    size_t blocks = s_small_blocks(path, &recs, 50, off, 16, &t);
    cr_assert_eq(blocks, 5);

    /* A flipped bit in the payload of the third block. */
    uint64_t at = off[2] + QN_BLOCK_HEADER + 5;
    s_flip_bit(path, at, 3);
    s_expect_error_at(path, t.length, recs, 20, off[2], "payload bit");
    s_flip_bit(path, at, 3);
    s_expect_range(path, 0, t.length, recs, 50);

    /* Every header field of the second block: magic, codec, padding,
     * lengths, record count, CRC. */
    static const unsigned fields[] = {0, 3, 4, 6, 8, 11, 12, 16, 19, 20, 23};
    for (size_t i = 0; i < QN_ARRAY_LEN(fields); i++) {
        for (unsigned bit = 0; bit < 8; bit += 7) {
            char what[64];
            snprintf(what, sizeof what, "header byte %u bit %u", fields[i],
                     bit);
            s_flip_bit(path, off[1] + fields[i], bit);
            s_expect_error_at(path, t.length, recs, 10, off[1], what);
            s_flip_bit(path, off[1] + fields[i], bit);
        }
    }
    /* The last byte of the stream. */
    s_flip_bit(path, t.length - 1, 0);
    s_expect_error_at(path, t.length, recs, 40, off[4], "last byte");

    s_recs_free(recs, 50);
    cr_assert_eq(qn_rmtree(tmp), 0);
    free(tmp);
}

/* A block range that ends part way into a block. */
Test(ifile, detects_range_truncated_mid_block)
{
    char *tmp = qn_test_tmpdir();
    char path[4096];
    qn_test_join(path, sizeof path, tmp, "stream");
    s_rec *recs;
    uint64_t off[16];
    qn_range t;
    size_t blocks = s_small_blocks(path, &recs, 30, off, 16, &t);
    cr_assert_eq(blocks, 3);
    /* Mid-payload, mid-header, one byte short. */
    s_expect_error_at(path, off[2] + QN_BLOCK_HEADER + 3, recs, 20, off[2],
                      "cut in payload");
    s_expect_error_at(path, off[1] + 10, recs, 10, off[1], "cut in header");
    s_expect_error_at(path, t.length - 1, recs, 20, off[2], "one byte short");

    /* A range longer than the file: the file is truncated. */
    int fd = open(path, O_RDONLY);
    qn_blockreader r;
    cr_assert_eq(qn_blockreader_init(&r, fd, path, 0, t.length + 100), 0);
    const void *k, *v;
    size_t kl, vl;
    int rc;
    size_t got = 0;
    while ((rc = qn_blockreader_next(&r, &k, &kl, &v, &vl)) == 1)
        got++;
    cr_assert_lt(rc, 0, "missing bytes not detected");
    cr_assert_leq(got, 30);
    cr_assert(strstr(qn_blockreader_error(&r), path), "%s",
              qn_blockreader_error(&r));
    qn_blockreader_release(&r);
    close(fd);

    s_recs_free(recs, 30);
    cr_assert_eq(qn_rmtree(tmp), 0);
    free(tmp);
}

/*
 * Build one block by hand (codec none) with a correct CRC, so the checks
 * behind the CRC can be reached.
 */
static size_t s_craft_block(unsigned char *out, const void *payload, size_t len,
                            uint32_t records)
{
    static const unsigned char magic[4] = {'Q', 'B', 'K', '1'};
    memcpy(out, magic, 4);
    memset(out + 4, 0, 4);
    for (int i = 0; i < 4; i++) {
        out[8 + i] = (unsigned char)(len >> (8 * i));
        out[12 + i] = (unsigned char)(len >> (8 * i));
        out[16 + i] = (unsigned char)(records >> (8 * i));
    }
    uLong crc = crc32(0L, out, 20);
    crc = crc32(crc, payload, (uInt)len);
    for (int i = 0; i < 4; i++)
        out[20 + i] = (unsigned char)(crc >> (8 * i));
    memcpy(out + QN_BLOCK_HEADER, payload, len);
    return QN_BLOCK_HEADER + len;
}

static int s_read_crafted(const char *path, const void *payload, size_t len,
                          uint32_t records, size_t *got, char *err,
                          size_t errcap)
{
    unsigned char block[256];
    size_t n = s_craft_block(block, payload, len, records);
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
    cr_assert_eq(qn_write_all(fd, block, n), 0);
    qn_blockreader r;
    cr_assert_eq(qn_blockreader_init(&r, fd, path, 0, n), 0);
    const void *k, *v;
    size_t kl, vl;
    int rc;
    *got = 0;
    while ((rc = qn_blockreader_next(&r, &k, &kl, &v, &vl)) == 1)
        ++*got;
    snprintf(err, errcap, "%s", qn_blockreader_error(&r));
    qn_blockreader_release(&r);
    close(fd);
    return rc;
}

Test(ifile, detects_bad_records_inside_a_valid_block)
{
    char *tmp = qn_test_tmpdir();
    char path[4096], err[256];
    qn_test_join(path, sizeof path, tmp, "crafted");
    size_t got;

    /* Sanity: a well-formed crafted block reads. */
    const unsigned char ok[] = {1, 2, 'k', 'v', 'v', 0, 0};
    cr_assert_eq(s_read_crafted(path, ok, sizeof ok, 2, &got, err, sizeof err),
                 0, "%s", err);
    cr_assert_eq(got, 2);

    /* More records claimed than the block holds. */
    cr_assert_lt(s_read_crafted(path, ok, sizeof ok, 3, &got, err, sizeof err),
                 0);
    cr_assert_eq(got, 2);
    cr_assert(strstr(err, "byte 0"), "%s", err);

    /* Fewer records claimed: bytes left over. */
    cr_assert_lt(s_read_crafted(path, ok, sizeof ok, 1, &got, err, sizeof err),
                 0);
    cr_assert(strstr(err, "byte 0"), "%s", err);

    /* A key length past the end of the block. */
    const unsigned char longkey[] = {100, 0, 'k', 'k'};
    cr_assert_lt(
        s_read_crafted(path, longkey, sizeof longkey, 1, &got, err, sizeof err),
        0);
    cr_assert_eq(got, 0);

    /* A value length past the end of the block. */
    const unsigned char longval[] = {1, 5, 'k', 'v'};
    cr_assert_lt(
        s_read_crafted(path, longval, sizeof longval, 1, &got, err, sizeof err),
        0);

    /* A varint that never ends. */
    const unsigned char endless[] = {0xff, 0xff, 0xff, 0xff};
    cr_assert_lt(
        s_read_crafted(path, endless, sizeof endless, 1, &got, err, sizeof err),
        0);

    /* A varint length near 2^64 must not wrap the bounds checks. */
    const unsigned char huge[] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
                                  0xff, 0xff, 0xff, 0x01, 0x00, 'k'};
    cr_assert_lt(
        s_read_crafted(path, huge, sizeof huge, 1, &got, err, sizeof err), 0);

    /* More records than the bytes could hold (each takes two bytes). */
    cr_assert_lt(s_read_crafted(path, ok, sizeof ok, 4, &got, err, sizeof err),
                 0);
    cr_assert_eq(got, 0, "block with impossible record count was used");

    cr_assert_eq(qn_rmtree(tmp), 0);
    free(tmp);
}

/* ---- qn_block_scan ------------------------------------------------------- */

static unsigned char *s_slurp(const char *path, size_t *len)
{
    *len = (size_t)s_file_size(path);
    unsigned char *buf = malloc(*len ? *len : 1);
    if (*len)
        s_read_at(path, 0, buf, *len);
    return buf;
}

Test(ifile, block_scan_accepts_a_complete_stream)
{
    char *tmp = qn_test_tmpdir();
    char path[4096], err[256] = "";
    qn_test_join(path, sizeof path, tmp, "stream");
    s_rec *recs;
    uint64_t off[16];
    qn_range t;
    cr_assert_eq(s_small_blocks(path, &recs, 50, off, 16, &t), 5);
    size_t len;
    unsigned char *buf = s_slurp(path, &len);
    uint64_t raw = 0;
    cr_assert_eq(qn_block_scan(buf, len, &raw, err, sizeof err), (long)len,
                 "%s", err);
    cr_assert_eq(raw, t.raw);
    cr_assert_eq(qn_block_scan(buf, len, NULL, err, sizeof err), (long)len);
    cr_assert_eq(qn_block_scan(buf, 0, NULL, err, sizeof err), 0);
    free(buf);
    s_recs_free(recs, 50);
    cr_assert_eq(qn_rmtree(tmp), 0);
    free(tmp);
}

/* Every prefix of a stream scans to the last whole block in it. */
Test(ifile, block_scan_stops_before_a_partial_block)
{
    char *tmp = qn_test_tmpdir();
    char path[4096], err[256] = "";
    qn_test_join(path, sizeof path, tmp, "stream");
    s_rec *recs;
    uint64_t off[16];
    qn_range t;
    size_t blocks = s_small_blocks(path, &recs, 50, off, 16, &t);
    size_t len;
    unsigned char *buf = s_slurp(path, &len);
    for (size_t cut = 0; cut <= len; cut++) {
        /* The scan reads only cut bytes: copy them so ASan would see an
         * overrun. */
        unsigned char *part = malloc(cut ? cut : 1);
        memcpy(part, buf, cut);
        size_t whole = 0;
        uint64_t want_raw = 0;
        for (size_t b = 0; b < blocks; b++) {
            uint64_t end = b + 1 < blocks ? off[b + 1] : len;
            if (end > cut)
                break;
            whole = (size_t)end;
            want_raw += s_le32(buf + off[b] + 8);
        }
        uint64_t raw = 0;
        long got = qn_block_scan(part, cut, &raw, err, sizeof err);
        free(part);
        cr_assert_eq(got, (long)whole, "prefix of %zu bytes: %ld (%s)", cut,
                     got, err);
        cr_assert_eq(raw, want_raw, "prefix of %zu bytes", cut);
    }
    free(buf);
    s_recs_free(recs, 50);
    cr_assert_eq(qn_rmtree(tmp), 0);
    free(tmp);
}

Test(ifile, block_scan_rejects_a_corrupt_block)
{
    char *tmp = qn_test_tmpdir();
    char path[4096];
    qn_test_join(path, sizeof path, tmp, "stream");
    s_rec *recs;
    uint64_t off[16];
    qn_range t;
    cr_assert_eq(s_small_blocks(path, &recs, 50, off, 16, &t), 5);
    size_t len;
    unsigned char *buf = s_slurp(path, &len);
    char err[256], want[64];

    /* A payload bit in block 3. */
    buf[off[3] + QN_BLOCK_HEADER + 1] ^= 0x10;
    err[0] = '\0';
    cr_assert_eq(qn_block_scan(buf, len, NULL, err, sizeof err), -QN_ECORRUPT);
    snprintf(want, sizeof want, "byte %llu", (unsigned long long)off[3]);
    cr_assert(strstr(err, want), "error does not say \"%s\": %s", want, err);
    /* Data before the damaged block still scans. */
    cr_assert_eq(qn_block_scan(buf, (size_t)off[3], NULL, err, sizeof err),
                 (long)off[3]);
    buf[off[3] + QN_BLOCK_HEADER + 1] ^= 0x10;

    /* A bad magic in block 1, even with only its header present. */
    buf[off[1]] ^= 0x01;
    cr_assert_eq(qn_block_scan(buf, len, NULL, err, sizeof err), -QN_ECORRUPT);
    snprintf(want, sizeof want, "byte %llu", (unsigned long long)off[1]);
    cr_assert(strstr(err, want), "error does not say \"%s\": %s", want, err);
    cr_assert_eq(qn_block_scan(buf, (size_t)off[1] + QN_BLOCK_HEADER, NULL, err,
                               sizeof err),
                 -QN_ECORRUPT);
    buf[off[1]] ^= 0x01;

    /* Garbage. */
    unsigned char junk[100];
    memset(junk, 0xa5, sizeof junk);
    cr_assert_eq(qn_block_scan(junk, sizeof junk, NULL, err, sizeof err),
                 -QN_ECORRUPT);
    cr_assert(strstr(err, "byte 0"), "%s", err);

    cr_assert_eq(qn_block_scan(buf, len, NULL, err, sizeof err), (long)len);
    free(buf);
    s_recs_free(recs, 50);
    cr_assert_eq(qn_rmtree(tmp), 0);
    free(tmp);
}

/* ---- intermediate files -------------------------------------------------- */

/*
 * Records for nparts partitions; counts[p] records in partition p, sorted
 * by key within each. Returns all of them in file order.
 */
static s_rec *s_part_recs(const size_t *counts, unsigned nparts, size_t *n)
{
    size_t total = 0;
    for (unsigned p = 0; p < nparts; p++)
        total += counts[p];
    s_rec *recs = calloc(total ? total : 1, sizeof *recs);
    size_t i = 0;
    uint64_t st = 5;
    char key[32], val[200];
    for (unsigned p = 0; p < nparts; p++) {
        for (size_t j = 0; j < counts[p]; j++) {
            int kl = snprintf(key, sizeof key, "p%u-%07zu", p, j);
            size_t vl = qn_test_rand(&st) % sizeof val;
            for (size_t b = 0; b < vl; b++)
                val[b] = (char)qn_test_rand(&st);
            recs[i++] = s_rec_make(p, key, (size_t)kl, val, vl);
        }
    }
    *n = total;
    return recs;
}

Test(ifile, ifile_round_trips_partitions_including_empty_ones)
{
    char *tmp = qn_test_tmpdir();
    char path[4096], err[256] = "";
    qn_test_join(path, sizeof path, tmp, "map-0.ifile");
    const size_t counts[] = {0, 3, 0, 5000, 1, 0, 0, 2};
    const unsigned nparts = QN_ARRAY_LEN(counts);
    size_t n;
    s_rec *recs = s_part_recs(counts, nparts, &n);

    qn_codec *c = qn_codec_new(QN_CODEC_ZLIB, 1);
    qn_ifile_writer *w = qn_ifile_writer_new(path, nparts, c, err, sizeof err);
    cr_assert_not_null(w, "%s", err);
    for (size_t i = 0; i < n; i++)
        cr_assert_eq(qn_ifile_writer_add(w, recs[i].part, recs[i].key,
                                         recs[i].klen, recs[i].val,
                                         recs[i].vlen),
                     0);
    qn_range written[QN_ARRAY_LEN(counts)];
    cr_assert_eq(qn_ifile_writer_close(&w, written, err, sizeof err), 0, "%s",
                 err);
    cr_assert_null(w);
    qn_codec_destroy(&c);

    qn_ifile *f = qn_ifile_open(path, err, sizeof err);
    cr_assert_not_null(f, "%s", err);
    cr_assert_eq(qn_ifile_nparts(f), nparts);
    cr_assert_str_eq(qn_ifile_path(f), path);
    uint64_t expect_off = 0;
    size_t first = 0;
    for (unsigned p = 0; p < nparts; p++) {
        qn_range r = qn_ifile_range(f, p);
        uint64_t raw = 0;
        for (size_t i = first; i < first + counts[p]; i++)
            raw += s_raw_size(recs[i].klen, recs[i].vlen);
        cr_assert_eq(r.offset, written[p].offset, "partition %u", p);
        cr_assert_eq(r.length, written[p].length, "partition %u", p);
        cr_assert_eq(r.raw, written[p].raw, "partition %u", p);
        cr_assert_eq(r.records, written[p].records, "partition %u", p);
        cr_assert_eq(r.offset, expect_off, "partition %u offset", p);
        cr_assert_eq(r.records, counts[p], "partition %u records", p);
        cr_assert_eq(r.raw, raw, "partition %u raw bytes", p);
        if (counts[p] == 0)
            cr_assert_eq(r.length, 0, "empty partition %u has bytes", p);
        /* Exactly this partition's records, read through the ifile's fd. */
        qn_blockreader br;
        cr_assert_eq(
            qn_blockreader_init(&br, qn_ifile_fd(f), path, r.offset, r.length),
            0);
        const void *k, *v;
        size_t kl, vl;
        for (size_t i = first; i < first + counts[p]; i++) {
            cr_assert_eq(qn_blockreader_next(&br, &k, &kl, &v, &vl), 1,
                         "partition %u record %zu: %s", p, i - first,
                         qn_blockreader_error(&br));
            cr_assert_eq(kl, recs[i].klen);
            cr_assert_arr_eq(k, recs[i].key, kl);
            cr_assert_eq(vl, recs[i].vlen);
            cr_assert_arr_eq(v, recs[i].val, vl);
        }
        cr_assert_eq(qn_blockreader_next(&br, &k, &kl, &v, &vl), 0,
                     "partition %u has extra records", p);
        cr_assert_eq(br.raw_bytes, raw);
        qn_blockreader_release(&br);
        expect_off += r.length;
        first += counts[p];
    }
    /* Data, then a 32-byte index entry per partition, then the footer. */
    cr_assert_eq(expect_off + 32u * nparts + 32, s_file_size(path));
    qn_ifile_destroy(&f);
    cr_assert_null(f);
    qn_ifile_destroy(&f);
    s_recs_free(recs, n);
    cr_assert_eq(qn_rmtree(tmp), 0);
    free(tmp);
}

Test(ifile, ifile_with_no_records_has_empty_partitions)
{
    char *tmp = qn_test_tmpdir();
    char path[4096], err[256] = "";
    qn_test_join(path, sizeof path, tmp, "empty.ifile");
    qn_codec *c = qn_codec_new(QN_CODEC_ZLIB, 1);
    qn_ifile_writer *w = qn_ifile_writer_new(path, 3, c, err, sizeof err);
    cr_assert_not_null(w, "%s", err);
    cr_assert_eq(qn_ifile_writer_close(&w, NULL, err, sizeof err), 0, "%s",
                 err);
    qn_codec_destroy(&c);
    qn_ifile *f = qn_ifile_open(path, err, sizeof err);
    cr_assert_not_null(f, "%s", err);
    cr_assert_eq(qn_ifile_nparts(f), 3);
    for (unsigned p = 0; p < 3; p++) {
        qn_range r = qn_ifile_range(f, p);
        cr_assert_eq(r.offset, 0);
        cr_assert_eq(r.length, 0);
        cr_assert_eq(r.records, 0);
        cr_assert_eq(r.raw, 0);
    }
    qn_ifile_destroy(&f);
    cr_assert_eq(qn_rmtree(tmp), 0);
    free(tmp);
}

Test(ifile, ifile_writer_refuses_partitions_out_of_order)
{
    char *tmp = qn_test_tmpdir();
    char path[4096], err[256] = "";
    qn_test_join(path, sizeof path, tmp, "order.ifile");
    qn_codec *c = qn_codec_new(QN_CODEC_ZLIB, 1);
    qn_ifile_writer *w = qn_ifile_writer_new(path, 4, c, err, sizeof err);
    cr_assert_not_null(w, "%s", err);
    cr_assert_eq(qn_ifile_writer_add(w, 2, "a", 1, "", 0), 0);
    cr_assert_eq(qn_ifile_writer_add(w, 1, "b", 1, "", 0), -EINVAL);
    cr_assert_eq(qn_ifile_writer_add(w, 4, "b", 1, "", 0), -EINVAL);
    cr_assert_eq(qn_ifile_writer_add(w, 2, "b", 1, "", 0), 0);
    qn_ifile_writer_abort(&w);
    cr_assert_null(w);
    struct stat st;
    cr_assert_neq(stat(path, &st), 0, "abort left the file behind");
    qn_ifile_writer_abort(&w); /* NULL is fine */
    qn_codec_destroy(&c);
    cr_assert_eq(qn_rmtree(tmp), 0);
    free(tmp);
}

Test(ifile, ifile_writer_new_reports_bad_arguments)
{
    char *tmp = qn_test_tmpdir();
    char path[4096], err[256] = "";
    qn_codec *c = qn_codec_new(QN_CODEC_ZLIB, 1);
    qn_test_join(path, sizeof path, tmp, "zero.ifile");
    cr_assert_null(qn_ifile_writer_new(path, 0, c, err, sizeof err));
    cr_assert(strstr(err, path), "%s", err);
    qn_test_join(path, sizeof path, tmp, "missing/dir.ifile");
    err[0] = '\0';
    cr_assert_null(qn_ifile_writer_new(path, 2, c, err, sizeof err));
    cr_assert(strstr(err, path), "%s", err);
    qn_codec_destroy(&c);
    cr_assert_eq(qn_rmtree(tmp), 0);
    free(tmp);
}

/* Writes a small two-partition ifile at path; returns its size. */
static uint64_t s_small_ifile(const char *path)
{
    char err[256] = "";
    qn_codec *c = qn_codec_new(QN_CODEC_ZLIB, 1);
    qn_ifile_writer *w = qn_ifile_writer_new(path, 2, c, err, sizeof err);
    cr_assert_not_null(w, "%s", err);
    cr_assert_eq(qn_ifile_writer_add(w, 0, "a", 1, "1", 1), 0);
    cr_assert_eq(qn_ifile_writer_add(w, 1, "b", 1, "2", 1), 0);
    cr_assert_eq(qn_ifile_writer_close(&w, NULL, err, sizeof err), 0, "%s",
                 err);
    qn_codec_destroy(&c);
    return s_file_size(path);
}

Test(ifile, open_rejects_a_truncated_file_naming_it)
{
    char *tmp = qn_test_tmpdir();
    char path[4096], err[256];
    qn_test_join(path, sizeof path, tmp, "cut.ifile");
    uint64_t size = s_small_ifile(path);
    const uint64_t cuts[] = {size - 1,  size - 16, size - 32, size - 33,
                             size - 64, 31,        1,         0};
    for (size_t i = 0; i < QN_ARRAY_LEN(cuts); i++) {
        s_small_ifile(path);
        cr_assert_eq(truncate(path, (off_t)cuts[i]), 0);
        err[0] = '\0';
        qn_ifile *f = qn_ifile_open(path, err, sizeof err);
        cr_assert_null(f, "file cut to %llu of %llu bytes opened",
                       (unsigned long long)cuts[i], (unsigned long long)size);
        cr_assert(strstr(err, path), "error does not name the file: %s", err);
    }
    /* A missing file. */
    qn_test_join(path, sizeof path, tmp, "missing.ifile");
    cr_assert_null(qn_ifile_open(path, err, sizeof err));
    cr_assert(strstr(err, path), "%s", err);
    cr_assert_eq(qn_rmtree(tmp), 0);
    free(tmp);
}

Test(ifile, open_rejects_a_damaged_index_or_footer)
{
    char *tmp = qn_test_tmpdir();
    char path[4096], err[256];
    qn_test_join(path, sizeof path, tmp, "bad.ifile");
    uint64_t size = s_small_ifile(path);
    uint64_t index = size - 32 - 2 * 32;
    /* Each byte of the index and footer (except unused zero padding that
     * the CRC still covers in the footer's first 24 bytes). */
    for (uint64_t at = index; at < size; at++) {
        if (at >= size - 4)
            continue; /* the footer's last 4 bytes are reserved */
        s_flip_bit(path, at, (unsigned)(at % 8));
        err[0] = '\0';
        qn_ifile *f = qn_ifile_open(path, err, sizeof err);
        cr_assert_null(f, "flipped bit at byte %llu of %llu not detected",
                       (unsigned long long)at, (unsigned long long)size);
        cr_assert(strstr(err, path), "%s", err);
        s_flip_bit(path, at, (unsigned)(at % 8));
    }
    qn_ifile *f = qn_ifile_open(path, err, sizeof err);
    cr_assert_not_null(f, "%s", err);
    qn_ifile_destroy(&f);

    /* A file that is not an ifile at all. */
    int fd = open(path, O_WRONLY | O_TRUNC);
    char junk[200];
    memset(junk, 'j', sizeof junk);
    cr_assert_eq(qn_write_all(fd, junk, sizeof junk), 0);
    close(fd);
    cr_assert_null(qn_ifile_open(path, err, sizeof err));
    cr_assert(strstr(err, path), "%s", err);
    cr_assert_eq(qn_rmtree(tmp), 0);
    free(tmp);
}

/* A damaged block inside an ifile is found when its partition is read. */
Test(ifile, detects_corrupt_block_in_an_ifile_partition)
{
    char *tmp = qn_test_tmpdir();
    char path[4096], err[256] = "";
    qn_test_join(path, sizeof path, tmp, "map.ifile");
    s_small_ifile(path);
    qn_ifile *f = qn_ifile_open(path, err, sizeof err);
    cr_assert_not_null(f, "%s", err);
    qn_range r1 = qn_ifile_range(f, 1);
    qn_ifile_destroy(&f);
    s_flip_bit(path, r1.offset + QN_BLOCK_HEADER, 0);
    /* The index is intact, so the file opens... */
    f = qn_ifile_open(path, err, sizeof err);
    cr_assert_not_null(f, "%s", err);
    /* ...partition 0 reads, partition 1 fails at its block. */
    qn_blockreader br;
    const void *k, *v;
    size_t kl, vl;
    qn_range r0 = qn_ifile_range(f, 0);
    cr_assert_eq(
        qn_blockreader_init(&br, qn_ifile_fd(f), path, r0.offset, r0.length),
        0);
    cr_assert_eq(qn_blockreader_next(&br, &k, &kl, &v, &vl), 1);
    cr_assert_eq(qn_blockreader_next(&br, &k, &kl, &v, &vl), 0);
    qn_blockreader_release(&br);
    cr_assert_eq(
        qn_blockreader_init(&br, qn_ifile_fd(f), path, r1.offset, r1.length),
        0);
    cr_assert_lt(qn_blockreader_next(&br, &k, &kl, &v, &vl), 0);
    char want[64];
    snprintf(want, sizeof want, "byte %llu", (unsigned long long)r1.offset);
    cr_assert(strstr(qn_blockreader_error(&br), want), "%s",
              qn_blockreader_error(&br));
    cr_assert(strstr(qn_blockreader_error(&br), path), "%s",
              qn_blockreader_error(&br));
    qn_blockreader_release(&br);
    qn_ifile_destroy(&f);
    cr_assert_eq(qn_rmtree(tmp), 0);
    free(tmp);
}

/* ---- varints and key order ----------------------------------------------- */

Test(ifile, varint_round_trips_edge_values)
{
    static const struct {
        uint64_t v;
        size_t len;
    } cases[] = {
        {0, 1},           {1, 1},
        {127, 1},         {128, 2},
        {255, 2},         {16383, 2},
        {16384, 3},       {(1ULL << 21) - 1, 3},
        {1ULL << 21, 4},  {UINT32_MAX, 5},
        {1ULL << 32, 5},  {(1ULL << 35) - 1, 5},
        {1ULL << 35, 6},  {(1ULL << 56) - 1, 8},
        {1ULL << 56, 9},  {(1ULL << 63) - 1, 9},
        {1ULL << 63, 10}, {UINT64_MAX, 10},
    };
    for (size_t i = 0; i < QN_ARRAY_LEN(cases); i++) {
        unsigned char buf[16];
        memset(buf, 0xee, sizeof buf);
        size_t n = qn_varint_put(buf, cases[i].v);
        cr_assert_eq(n, cases[i].len, "%llu took %zu bytes",
                     (unsigned long long)cases[i].v, n);
        cr_assert_eq(buf[n], 0xee, "wrote past its length");
        uint64_t got = 12345;
        cr_assert_eq(qn_varint_get(buf, n, &got), n);
        cr_assert_eq(got, cases[i].v);
        /* More bytes available changes nothing. */
        cr_assert_eq(qn_varint_get(buf, sizeof buf, &got), n);
        cr_assert_eq(got, cases[i].v);
        /* Any shorter read is incomplete. */
        for (size_t m = 0; m < n; m++)
            cr_assert_eq(qn_varint_get(buf, m, &got), 0,
                         "%llu decoded from %zu of %zu bytes",
                         (unsigned long long)cases[i].v, m, n);
    }
}

Test(ifile, varint_get_rejects_more_than_ten_bytes)
{
    unsigned char buf[12];
    memset(buf, 0x80, sizeof buf);
    buf[11] = 0x01;
    uint64_t v;
    cr_assert_eq(qn_varint_get(buf, sizeof buf, &v), 0);
    buf[10] = 0x01;
    cr_assert_eq(qn_varint_get(buf, sizeof buf, &v), 0);
}

Test(ifile, key_cmp_is_bytewise_with_shorter_first)
{
    cr_assert_eq(qn_key_cmp("", 0, "", 0), 0);
    cr_assert_eq(qn_key_cmp("abc", 3, "abc", 3), 0);
    cr_assert_lt(qn_key_cmp("", 0, "a", 1), 0);
    cr_assert_gt(qn_key_cmp("a", 1, "", 0), 0);
    cr_assert_lt(qn_key_cmp("abc", 3, "abd", 3), 0);
    cr_assert_gt(qn_key_cmp("abd", 3, "abc", 3), 0);
    cr_assert_lt(qn_key_cmp("ab", 2, "abc", 3), 0);
    cr_assert_gt(qn_key_cmp("abc", 3, "ab", 2), 0);
    cr_assert_gt(qn_key_cmp("b", 1, "abc", 3), 0);
    /* Bytes compare as unsigned. */
    cr_assert_gt(qn_key_cmp("\x80", 1, "\x7f", 1), 0);
    cr_assert_gt(qn_key_cmp("\xff", 1, "\x01\x02", 2), 0);
    /* NUL bytes are ordinary bytes, and only the given length counts. */
    cr_assert_lt(qn_key_cmp("a", 1, "a\0", 2), 0);
    cr_assert_lt(qn_key_cmp("a\0b", 3, "a\0c", 3), 0);
    cr_assert_eq(qn_key_cmp("abX", 2, "abY", 2), 0);
    /* Zero-length keys may have any pointer. */
    cr_assert_eq(qn_key_cmp(NULL, 0, NULL, 0), 0);
    cr_assert_lt(qn_key_cmp(NULL, 0, "x", 1), 0);
}
