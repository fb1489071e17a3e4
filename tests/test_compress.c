/*
 * test_compress.c -- output compression (lib/compress.c): each codec's
 * stream, written in pieces of any size, is one complete stream of its
 * format, which the decompressing reader (lib/decomp.c) and the format's
 * own tool read back byte for byte; names and file endings.
 */
#include "helpers.h"

#include "compress.h"
#include "decomp.h"
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>

TestSuite(compress, .fini = qn_test_leak_check);

static const int kinds[] = {QN_DECOMP_GZIP, QN_DECOMP_BZIP2, QN_DECOMP_XZ,
                            QN_DECOMP_ZSTD, QN_DECOMP_LZ4};
#define NKINDS (sizeof kinds / sizeof *kinds)

/* len bytes of text: words of a small vocabulary in a random order, which
 * every codec compresses, but not to nothing. */
static char *text(size_t len)
{
    static const char *const words[] = {"alpha ", "beta ", "gamma ", "delta ",
                                        "eps ",   "zeta ", "eta\n",  "theta "};
    char *t = qn_malloc(len);
    uint64_t x = 88172645463325252ull;
    size_t at = 0;
    while (at < len) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        const char *w = words[x % 8];
        size_t n = strlen(w) < len - at ? strlen(w) : len - at;
        memcpy(t + at, w, n);
        at += n;
    }
    return t;
}

/* Everything fd's size bytes decompress to as kind; free it. */
static char *read_back(int kind, int fd, size_t *n)
{
    struct stat st;
    cr_assert_eq(fstat(fd, &st), 0);
    char err[512];
    qn_decomp *d = qn_decomp_new((qn_decomp_kind)kind, fd, (uint64_t)st.st_size,
                                 "out", err, sizeof err);
    cr_assert_not_null(d, "%s", err);
    qn_buf b = {0};
    char buf[65536];
    ssize_t got;
    while ((got = qn_decomp_read(d, buf, sizeof buf, err, sizeof err)) > 0)
        qn_buf_add(&b, buf, (size_t)got);
    cr_assert_eq(got, 0, "%s: %s", qn_decomp_name((qn_decomp_kind)kind), err);
    qn_decomp_destroy(&d);
    *n = b.len;
    return b.data;
}

Test(compress, each_codec_writes_one_stream_that_reads_back)
{
    size_t len = 3 * 1024 * 1024 + 17; /* past every internal buffer */
    char *t = text(len);
    for (size_t i = 0; i < NKINDS; i++) {
        int fd = memfd_create("test-compress", MFD_CLOEXEC);
        cr_assert_geq(fd, 0);
        char err[256];
        qn_compress *c = qn_compress_new(kinds[i], fd, err, sizeof err);
        cr_assert_not_null(c, "%s", err);
        /* Pieces of odd sizes, one empty. */
        size_t at = 0, step = 1;
        while (at < len) {
            size_t n = step < len - at ? step : len - at;
            cr_assert_eq(qn_compress_write(c, t + at, n), 0);
            at += n;
            step = step * 7 + 3;
        }
        cr_assert_eq(qn_compress_write(c, t, 0), 0);
        cr_assert_eq(qn_compress_finish(c), 0);
        qn_compress_destroy(&c);
        cr_assert_null(c);
        struct stat st;
        cr_assert_eq(fstat(fd, &st), 0);
        cr_assert_lt((size_t)st.st_size, len / 2, "%s did not compress",
                     qn_decomp_name((qn_decomp_kind)kinds[i]));
        unsigned char head[QN_DECOMP_SNIFF];
        cr_assert_eq(pread(fd, head, sizeof head, 0), (ssize_t)sizeof head);
        cr_assert_eq(qn_decomp_sniff(head, sizeof head), kinds[i]);
        size_t n;
        char *back = read_back(kinds[i], fd, &n);
        cr_assert_eq(n, len, "%s", qn_decomp_name((qn_decomp_kind)kinds[i]));
        cr_assert(memcmp(back, t, len) == 0);
        free(back);
        close(fd);
    }
    free(t);
}

Test(compress, an_empty_output_is_still_a_whole_stream)
{
    for (size_t i = 0; i < NKINDS; i++) {
        int fd = memfd_create("test-compress", MFD_CLOEXEC);
        char err[256];
        qn_compress *c = qn_compress_new(kinds[i], fd, err, sizeof err);
        cr_assert_not_null(c, "%s", err);
        cr_assert_eq(qn_compress_finish(c), 0);
        qn_compress_destroy(&c);
        size_t n;
        char *back = read_back(kinds[i], fd, &n);
        cr_assert_eq(n, 0);
        free(back);
        close(fd);
    }
}

Test(compress, the_format_tools_read_what_it_writes)
{
    static const char *const tools[] = {"gzip -dc", "bzip2 -dc", "xz -dc",
                                        "zstd -qdc", "lz4 -qdc"};
    size_t len = 200000;
    char *t = text(len);
    char dir[] = "/tmp/quern-test-compress-XXXXXX";
    cr_assert_not_null(mkdtemp(dir));
    for (size_t i = 0; i < NKINDS; i++) {
        char path[128], cmd[512], want[128];
        snprintf(path, sizeof path, "%s/part%s", dir,
                 qn_compress_ext(kinds[i]));
        snprintf(want, sizeof want, "%s/want", dir);
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        cr_assert_geq(fd, 0);
        char err[256];
        qn_compress *c = qn_compress_new(kinds[i], fd, err, sizeof err);
        cr_assert_not_null(c, "%s", err);
        cr_assert_eq(qn_compress_write(c, t, len), 0);
        cr_assert_eq(qn_compress_finish(c), 0);
        qn_compress_destroy(&c);
        close(fd);
        cr_assert_eq(qn_write_file_atomic(want, t, len), 0);
        snprintf(cmd, sizeof cmd, "%s '%s' | cmp -s - '%s'", tools[i], path,
                 want);
        cr_assert_eq(system(cmd), 0, "%s does not read back %s", tools[i],
                     path);
        unlink(path);
        unlink(want);
    }
    rmdir(dir);
    free(t);
}

Test(compress, names_and_endings)
{
    char why[128];
    cr_assert_eq(qn_compress_parse("gzip", why, sizeof why), QN_DECOMP_GZIP);
    cr_assert_eq(qn_compress_parse("zstd", why, sizeof why), QN_DECOMP_ZSTD);
    cr_assert_eq(qn_compress_parse("none", why, sizeof why), QN_DECOMP_PLAIN);
    cr_assert_eq(qn_compress_parse("zip", why, sizeof why), -1);
    cr_assert(strstr(why, "'zip' is not gzip"), "%s", why);
    cr_assert_str_eq(qn_compress_ext(QN_DECOMP_GZIP), ".gz");
    cr_assert_str_eq(qn_compress_ext(QN_DECOMP_BZIP2), ".bz2");
    cr_assert_str_eq(qn_compress_ext(QN_DECOMP_XZ), ".xz");
    cr_assert_str_eq(qn_compress_ext(QN_DECOMP_ZSTD), ".zst");
    cr_assert_str_eq(qn_compress_ext(QN_DECOMP_LZ4), ".lz4");
    cr_assert_str_eq(qn_compress_ext(QN_DECOMP_PLAIN), "");
    char err[128];
    cr_assert_null(qn_compress_new(QN_DECOMP_PLAIN, 1, err, sizeof err));
}
