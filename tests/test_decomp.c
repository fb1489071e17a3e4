/*
 * test_decomp.c -- compressed input (lib/decomp.c): each codec known by
 * its first bytes and read back whole, several members or frames in one
 * file, and the hostile cases (a stream cut short, a damaged byte, bytes
 * after the end, a file that changes while read) as errors naming the
 * file and the offset; then the same through a map's record reader
 * (lib/records.c), with carriage returns before newlines.
 */
#include "helpers.h"

#include "decomp.h"
#include "records.h"
#include "util.h"

#include <bzlib.h>
#include <errno.h>
#include <lz4frame.h>
#include <lzma.h>
#include <string.h>
#include <sys/mman.h>
#include <zlib.h>
#include <zstd.h>

TestSuite(decomp, .fini = qn_test_leak_check);

/* ---- making compressed bytes ------------------------------------------ */

/* src compressed as kind, in a new buffer of *n bytes; free it. */
static unsigned char *pack(qn_decomp_kind kind, const void *src, size_t len,
                           size_t *n)
{
    size_t cap = len + len / 2 + 1024;
    unsigned char *out = qn_malloc(cap);
    switch (kind) {
    case QN_DECOMP_GZIP: {
        z_stream z = {0};
        cr_assert_eq(
            deflateInit2(&z, 6, Z_DEFLATED, 16 + 15, 8, Z_DEFAULT_STRATEGY),
            Z_OK);
        z.next_in = (Bytef *)src;
        z.avail_in = (uInt)len;
        z.next_out = out;
        z.avail_out = (uInt)cap;
        cr_assert_eq(deflate(&z, Z_FINISH), Z_STREAM_END);
        *n = cap - z.avail_out;
        deflateEnd(&z);
        break;
    }
    case QN_DECOMP_BZIP2: {
        unsigned int m = (unsigned)cap;
        cr_assert_eq(BZ2_bzBuffToBuffCompress((char *)out, &m, (char *)src,
                                              (unsigned)len, 1, 0, 0),
                     BZ_OK);
        *n = m;
        break;
    }
    case QN_DECOMP_XZ:
        *n = 0;
        cr_assert_eq(lzma_easy_buffer_encode(1, LZMA_CHECK_CRC64, NULL, src,
                                             len, out, n, cap),
                     LZMA_OK);
        break;
    case QN_DECOMP_ZSTD: {
        /* With the checksum the zstd tool writes by default. */
        ZSTD_CCtx *c = ZSTD_createCCtx();
        ZSTD_CCtx_setParameter(c, ZSTD_c_checksumFlag, 1);
        *n = ZSTD_compress2(c, out, cap, src, len);
        cr_assert(!ZSTD_isError(*n));
        ZSTD_freeCCtx(c);
        break;
    }
    case QN_DECOMP_LZ4: {
        LZ4F_preferences_t p = {0};
        p.frameInfo.contentChecksumFlag = LZ4F_contentChecksumEnabled;
        size_t bound = LZ4F_compressFrameBound(len, &p);
        if (bound > cap)
            out = qn_realloc(out, cap = bound);
        *n = LZ4F_compressFrame(out, cap, src, len, &p);
        cr_assert(!LZ4F_isError(*n));
        break;
    }
    default: cr_assert_fail("no codec %d", kind);
    }
    return out;
}

static const qn_decomp_kind codecs[] = {QN_DECOMP_GZIP, QN_DECOMP_BZIP2,
                                        QN_DECOMP_XZ, QN_DECOMP_ZSTD,
                                        QN_DECOMP_LZ4};
#define NCODECS (sizeof codecs / sizeof *codecs)

/* A memory file holding len bytes. */
static int mem_file(const void *data, size_t len)
{
    int fd = memfd_create("test-decomp", MFD_CLOEXEC);
    cr_assert_geq(fd, 0);
    cr_assert_eq(qn_write_all(fd, data, len), 0);
    return fd;
}

/* Text of n lines, "line I of the test\n". */
static char *lines(size_t n, size_t *len)
{
    qn_buf b = {0};
    for (size_t i = 0; i < n; i++)
        qn_buf_printf(&b, "line %zu of the test\n", i);
    *len = b.len;
    return b.data;
}

/*
 * Everything fd's first size bytes decompress to as kind, read cap bytes
 * at a time, into *out (*outlen bytes; free it). Returns what the last
 * read returned (0 at a clean end, or the error, its message in err).
 */
static ssize_t unpack(qn_decomp_kind kind, int fd, uint64_t size, size_t cap,
                      char **out, size_t *outlen, char *err, size_t errcap)
{
    err[0] = '\0';
    qn_decomp *d = qn_decomp_new(kind, fd, size, "in.gz", err, errcap);
    cr_assert_not_null(d, "%s", err);
    qn_buf b = {0};
    char *buf = qn_malloc(cap);
    ssize_t n;
    while ((n = qn_decomp_read(d, buf, cap, err, errcap)) > 0)
        qn_buf_add(&b, buf, (size_t)n);
    free(buf);
    qn_decomp_destroy(&d);
    cr_assert_null(d);
    *out = b.data;
    *outlen = b.len;
    return n;
}

/* ---- sniffing --------------------------------------------------------- */

Test(decomp, sniff_knows_each_codec_by_its_first_bytes)
{
    size_t len;
    char *text = lines(100, &len);
    for (size_t i = 0; i < NCODECS; i++) {
        size_t n;
        unsigned char *z = pack(codecs[i], text, len, &n);
        cr_assert_eq(qn_decomp_sniff(z, n), codecs[i], "%s",
                     qn_decomp_name(codecs[i]));
        int fd = mem_file(z, n);
        qn_decomp_kind k = QN_DECOMP_PLAIN;
        cr_assert_eq(qn_decomp_sniff_fd(fd, &k), 0);
        cr_assert_eq(k, codecs[i]);
        close(fd);
        free(z);
    }
    cr_assert_eq(qn_decomp_sniff(text, len), QN_DECOMP_PLAIN);
    free(text);
    /* Text that only begins like bzip2 is text; so is a short file. */
    cr_assert_eq(qn_decomp_sniff("BZh9 is a word\n", 15), QN_DECOMP_PLAIN);
    cr_assert_eq(qn_decomp_sniff("\x1f\x8b", 2), QN_DECOMP_PLAIN);
    cr_assert_eq(qn_decomp_sniff("", 0), QN_DECOMP_PLAIN);
    cr_assert_str_eq(qn_decomp_name(QN_DECOMP_ZSTD), "zstd");
    cr_assert_str_eq(qn_decomp_name((qn_decomp_kind)99), "unknown");
}

/* ---- reading ---------------------------------------------------------- */

Test(decomp, each_codec_reads_back_exactly_through_small_and_large_reads)
{
    size_t len;
    char *text = lines(20000, &len); /* several of the reader's chunks */
    for (size_t i = 0; i < NCODECS; i++) {
        size_t n;
        unsigned char *z = pack(codecs[i], text, len, &n);
        int fd = mem_file(z, n);
        static const size_t caps[] = {1, 4096, 1 << 20};
        for (size_t c = 0; c < 3; c++) {
            if (caps[c] == 1 && codecs[i] == QN_DECOMP_BZIP2)
                continue; /* a byte at a time: slow, and no different */
            char *out, err[512];
            size_t olen;
            cr_assert_eq(
                unpack(codecs[i], fd, n, caps[c], &out, &olen, err, sizeof err),
                0, "%s: %s", qn_decomp_name(codecs[i]), err);
            cr_assert_eq(olen, len, "%s", qn_decomp_name(codecs[i]));
            cr_assert(memcmp(out, text, len) == 0);
            free(out);
        }
        close(fd);
        free(z);
    }
    free(text);
}

Test(decomp, compressed_bytes_over_many_reads_come_back_whole)
{
    /* Bytes that hardly compress: the compressed file spans several of
     * the reader's 256 KiB reads (and xz's last one is its FINISH). */
    size_t len = 700 * 1024;
    unsigned char *raw = qn_malloc(len);
    uint64_t x = 0x9e3779b97f4a7c15ull;
    for (size_t i = 0; i < len; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        raw[i] = (unsigned char)x;
    }
    for (size_t i = 0; i < NCODECS; i++) {
        size_t n;
        unsigned char *z = pack(codecs[i], raw, len, &n);
        cr_assert_gt(n, 512 * 1024, "%s", qn_decomp_name(codecs[i]));
        int fd = mem_file(z, n);
        char *out, err[512];
        size_t olen;
        cr_assert_eq(
            unpack(codecs[i], fd, n, 65536, &out, &olen, err, sizeof err), 0,
            "%s: %s", qn_decomp_name(codecs[i]), err);
        cr_assert_eq(olen, len);
        cr_assert(memcmp(out, raw, len) == 0);
        free(out);
        close(fd);
        free(z);
    }
    free(raw);
}

Test(decomp, a_skippable_frame_first_is_known_by_what_follows)
{
    size_t len;
    char *text = lines(200, &len);
    size_t n;
    unsigned char *z = pack(QN_DECOMP_ZSTD, text, len, &n);
    /* pzstd's way: a skippable frame of 4 bytes, then the frames. */
    static const unsigned char skip[12] = {0x50, 0x2a, 0x4d, 0x18, 4, 0,
                                           0,    0,    1,    2,    3, 4};
    qn_buf b = {0};
    qn_buf_add(&b, skip, sizeof skip);
    qn_buf_add(&b, z, n);
    cr_assert_eq(qn_decomp_sniff(b.data, QN_DECOMP_SNIFF), QN_DECOMP_ZSTD);
    int fd = mem_file(b.data, b.len);
    char *out, err[512];
    size_t olen;
    cr_assert_eq(
        unpack(QN_DECOMP_ZSTD, fd, b.len, 4096, &out, &olen, err, sizeof err),
        0, "%s", err);
    cr_assert_eq(olen, len);
    cr_assert(memcmp(out, text, len) == 0);
    /* A skippable frame before text is no reason to think it compressed. */
    memcpy(b.data + sizeof skip, "plain text", 10);
    cr_assert_eq(qn_decomp_sniff(b.data, QN_DECOMP_SNIFF), QN_DECOMP_PLAIN);
    free(out);
    close(fd);
    qn_buf_release(&b);
    free(z);
    free(text);
}

Test(decomp, members_and_frames_one_after_another_read_as_one_stream)
{
    size_t la, lb;
    char *a = lines(300, &la), *b = lines(7, &lb);
    for (size_t i = 0; i < NCODECS; i++) {
        size_t na, nb;
        unsigned char *za = pack(codecs[i], a, la, &na);
        unsigned char *zb = pack(codecs[i], b, lb, &nb);
        qn_buf both = {0};
        qn_buf_add(&both, za, na);
        qn_buf_add(&both, zb, nb);
        int fd = mem_file(both.data, both.len);
        char *out, err[512];
        size_t olen;
        cr_assert_eq(
            unpack(codecs[i], fd, both.len, 4096, &out, &olen, err, sizeof err),
            0, "%s: %s", qn_decomp_name(codecs[i]), err);
        cr_assert_eq(olen, la + lb, "%s", qn_decomp_name(codecs[i]));
        cr_assert(memcmp(out, a, la) == 0 && memcmp(out + la, b, lb) == 0);
        free(out);
        close(fd);
        qn_buf_release(&both);
        free(za);
        free(zb);
    }
    free(a);
    free(b);
}

Test(decomp, a_stream_cut_short_is_an_error_naming_the_file_and_offset)
{
    size_t len;
    char *text = lines(5000, &len);
    for (size_t i = 0; i < NCODECS; i++) {
        size_t n;
        unsigned char *z = pack(codecs[i], text, len, &n);
        /* Cut in the middle, and just before the end (the trailer). */
        size_t cuts[] = {n / 2, n - 1};
        for (size_t c = 0; c < 2; c++) {
            int fd = mem_file(z, cuts[c]);
            char *out, err[512];
            size_t olen;
            ssize_t rc = unpack(codecs[i], fd, cuts[c], 4096, &out, &olen, err,
                                sizeof err);
            cr_assert_eq(rc, -QN_ECORRUPT, "%s cut at %zu of %zu: %zd",
                         qn_decomp_name(codecs[i]), cuts[c], n, rc);
            cr_assert(strstr(err, "in.gz: ") == err, "%s", err);
            cr_assert(strstr(err, "offset"), "%s", err);
            cr_assert(strstr(err, qn_decomp_name(codecs[i])), "%s", err);
            free(out);
            close(fd);
        }
        free(z);
    }
    free(text);
}

Test(decomp, a_damaged_byte_is_an_error_not_made_up_bytes)
{
    size_t len;
    char *text = lines(5000, &len);
    for (size_t i = 0; i < NCODECS; i++) {
        size_t n;
        unsigned char *z = pack(codecs[i], text, len, &n);
        z[n / 2] ^= 0x55; /* in the compressed body */
        int fd = mem_file(z, n);
        char *out, err[512];
        size_t olen;
        ssize_t rc =
            unpack(codecs[i], fd, n, 4096, &out, &olen, err, sizeof err);
        cr_assert_eq(rc, -QN_ECORRUPT, "%s: %zd (%zu bytes out)",
                     qn_decomp_name(codecs[i]), rc, olen);
        cr_assert(strstr(err, "damaged") || strstr(err, "cut short"), "%s: %s",
                  qn_decomp_name(codecs[i]), err);
        free(out);
        close(fd);
        free(z);
    }
    free(text);
}

Test(decomp, bytes_after_the_end_are_an_error)
{
    size_t len;
    char *text = lines(50, &len);
    for (size_t i = 0; i < NCODECS; i++) {
        size_t n;
        unsigned char *z = pack(codecs[i], text, len, &n);
        qn_buf b = {0};
        qn_buf_add(&b, z, n);
        qn_buf_add(&b, "garbage after the stream\n", 25);
        int fd = mem_file(b.data, b.len);
        char *out, err[512];
        size_t olen;
        ssize_t rc =
            unpack(codecs[i], fd, b.len, 4096, &out, &olen, err, sizeof err);
        cr_assert_eq(rc, -QN_ECORRUPT, "%s: %zd", qn_decomp_name(codecs[i]),
                     rc);
        cr_assert(strstr(err, "offset"), "%s", err);
        free(out);
        close(fd);
        qn_buf_release(&b);
        free(z);
    }
    free(text);
}

Test(decomp, a_file_that_grew_or_shrank_since_it_was_split_is_an_error)
{
    size_t len;
    char *text = lines(100, &len);
    size_t n;
    unsigned char *z = pack(QN_DECOMP_GZIP, text, len, &n);
    int fd = mem_file(z, n);
    char *out, err[512];
    size_t olen;
    /* Split when it was shorter: a byte lies past that size. */
    cr_assert_eq(
        unpack(QN_DECOMP_GZIP, fd, n - 3, 4096, &out, &olen, err, sizeof err),
        -QN_ECORRUPT);
    cr_assert(strstr(err, "grew"), "%s", err);
    free(out);
    /* Split when it was longer: the file ends early. */
    cr_assert_eq(
        unpack(QN_DECOMP_GZIP, fd, n + 10, 4096, &out, &olen, err, sizeof err),
        -QN_ECORRUPT);
    cr_assert(strstr(err, "shrank"), "%s", err);
    free(out);
    close(fd);
    free(z);
    free(text);
}

/* ---- through the record reader ---------------------------------------- */

typedef struct {
    qn_buf text;
    size_t n;
} got_t;

static int collect(void *ctx, uint64_t offset, const void *rec, size_t len)
{
    got_t *g = ctx;
    g->n++;
    qn_buf_printf(&g->text, "%llu:", (unsigned long long)offset);
    qn_buf_add(&g->text, rec, len);
    qn_buf_add(&g->text, "|", 1);
    return 0;
}

static int read_all(int fd, uint64_t size, int codec, qn_records_kind kind,
                    uint64_t rs, int keep_cr, got_t *g, char *err, size_t cap)
{
    qn_records_in in = {.fd = fd,
                        .name = "in.txt",
                        .kind = kind,
                        .offset = 0,
                        .length = size,
                        .file_size = size,
                        .record_size = rs,
                        .chunk = 7, /* lines across many reads */
                        .codec = codec,
                        .keep_cr = keep_cr};
    return qn_records_read(&in, collect, g, err, cap);
}

Test(decomp, a_compressed_file_reads_as_its_lines_fixed_records_or_whole)
{
    const char *text = "one\ntwo\r\n\r\nthree";
    for (size_t i = 0; i < NCODECS; i++) {
        size_t n;
        unsigned char *z = pack(codecs[i], text, strlen(text), &n);
        int fd = mem_file(z, n);
        char err[512];
        got_t g = {0};
        cr_assert_eq(read_all(fd, n, codecs[i], QN_RECORDS_LINES, 0, 0, &g, err,
                              sizeof err),
                     0, "%s", err);
        cr_assert_str_eq(g.text.data, "0:one|4:two|9:|11:three|");
        qn_buf_release(&g.text);
        got_t f = {0};
        cr_assert_eq(read_all(fd, n, codecs[i], QN_RECORDS_FIXED, 4, 0, &f, err,
                              sizeof err),
                     0, "%s", err);
        cr_assert_str_eq(f.text.data, "0:one\n|4:two\r|8:\n\r\nt|12:hree|");
        qn_buf_release(&f.text);
        got_t w = {0};
        cr_assert_eq(read_all(fd, n, codecs[i], QN_RECORDS_WHOLE, 0, 0, &w, err,
                              sizeof err),
                     0, "%s", err);
        cr_assert_eq(w.n, 1);
        cr_assert_eq(w.text.len, 2 + strlen(text) + 1);
        qn_buf_release(&w.text);
        /* 16 bytes are not a whole number of 5-byte records. */
        got_t p = {0};
        cr_assert_eq(read_all(fd, n, codecs[i], QN_RECORDS_FIXED, 5, 0, &p, err,
                              sizeof err),
                     -QN_ECORRUPT);
        cr_assert(strstr(err, "in.txt: its 16 decompressed bytes"), "%s", err);
        qn_buf_release(&p.text);
        close(fd);
        free(z);
    }
}

Test(decomp, a_damaged_compressed_file_fails_the_read_naming_it)
{
    size_t len;
    char *text = lines(3000, &len);
    size_t n;
    unsigned char *z = pack(QN_DECOMP_GZIP, text, len, &n);
    int fd = mem_file(z, n - 5); /* its trailer cut */
    char err[512];
    got_t g = {0};
    cr_assert_eq(read_all(fd, n - 5, QN_DECOMP_GZIP, QN_RECORDS_LINES, 0, 0, &g,
                          err, sizeof err),
                 -QN_ECORRUPT);
    cr_assert(strstr(err, "in.txt: its gzip data is cut short at offset"), "%s",
              err);
    qn_buf_release(&g.text);
    close(fd);
    /* A compressed file is read whole, never in pieces. */
    fd = mem_file(z, n);
    qn_records_in in = {.fd = fd,
                        .name = "in.txt",
                        .kind = QN_RECORDS_LINES,
                        .offset = 10,
                        .length = n - 10,
                        .file_size = n,
                        .codec = QN_DECOMP_GZIP};
    got_t h = {0};
    cr_assert_eq(qn_records_read(&in, collect, &h, err, sizeof err), -EINVAL);
    cr_assert(strstr(err, "not the whole file"), "%s", err);
    close(fd);
    free(z);
    free(text);
}

Test(decomp, a_carriage_return_before_a_newline_is_not_part_of_the_line)
{
    const char *text = "a\r\nb\rc\r\n\r\nlast\r";
    int fd = mem_file(text, strlen(text));
    char err[512];
    got_t g = {0};
    cr_assert_eq(read_all(fd, strlen(text), 0, QN_RECORDS_LINES, 0, 0, &g, err,
                          sizeof err),
                 0, "%s", err);
    /* A lone \r stays, and so does one ending the file without \n. */
    cr_assert_str_eq(g.text.data, "0:a|3:b\rc|8:|10:last\r|");
    qn_buf_release(&g.text);
    got_t k = {0};
    cr_assert_eq(read_all(fd, strlen(text), 0, QN_RECORDS_LINES, 0, 1, &k, err,
                          sizeof err),
                 0, "%s", err);
    cr_assert_str_eq(k.text.data, "0:a\r|3:b\rc\r|8:\r|10:last\r|");
    qn_buf_release(&k.text);
    close(fd);
}
