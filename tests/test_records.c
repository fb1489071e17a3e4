/*
 * test_records.c -- a map's input records (lib/records.c): which records a
 * piece of a file holds, for lines, fixed-size records and whole files;
 * hostile bytes (over-long lines, partial records, files that change while
 * read, damaged shards) as errors naming the file and the offset; and the
 * store's check of a shard's .meta bytes (worker/store.c).
 */
#include "helpers.h"

#include "../worker/store.h"
#include "quern.pb-c.h"
#include "records.h"
#include "util.h"

#include <errno.h>
#include <stdint.h>
#include <sys/mman.h>
#include <zlib.h>

TestSuite(records, .fini = qn_test_leak_check);

/* ---- helpers ------------------------------------------------------------- */

/* A memory file holding len bytes of data. */
static int mem_file(const void *data, size_t len)
{
    int fd = memfd_create("test-records", MFD_CLOEXEC);
    cr_assert_geq(fd, 0);
    cr_assert_eq(qn_write_all(fd, data, len), 0);
    return fd;
}

static uint32_t crc_of(const void *p, size_t n)
{
    return (uint32_t)crc32(crc32(0L, Z_NULL, 0), p, (uInt)n);
}

/* What a read handed out: "offset:bytes|" per record, and a count. */
typedef struct {
    qn_buf text;
    size_t n;
    int stop_at; /* return -7 from this record (1-based; 0: never) */
    int fd;      /* with grow/shrink: the file to change at the first record */
    int grow, shrink;
} got_t;

static int collect(void *ctx, uint64_t offset, const void *rec, size_t len)
{
    got_t *g = ctx;
    g->n++;
    qn_buf_printf(&g->text, "%llu:", (unsigned long long)offset);
    qn_buf_add(&g->text, rec, len);
    qn_buf_add(&g->text, "|", 1);
    if (g->n == 1 && g->grow)
        cr_assert_eq(pwrite(g->fd, "more\n", 5, lseek(g->fd, 0, SEEK_END)), 5);
    if (g->n == 1 && g->shrink)
        cr_assert_eq(ftruncate(g->fd, 4), 0);
    return g->stop_at && (int)g->n == g->stop_at ? -7 : 0;
}

/* Read one piece of fd (size bytes) as kind; the records go to g.
 * Returns what qn_records_read returned, its message in err. */
static int read_piece(int fd, uint64_t size, qn_records_kind kind, uint64_t rs,
                      uint64_t off, uint64_t len, size_t chunk, got_t *g,
                      char *err, size_t errcap)
{
    qn_records_in in = {.fd = fd,
                        .name = "in.txt",
                        .kind = kind,
                        .offset = off,
                        .length = len,
                        .file_size = size,
                        .record_size = rs,
                        .chunk = chunk};
    return qn_records_read(&in, collect, g, err, errcap);
}

/* The text of every record of [off, off + len), which must read cleanly;
 * free it. */
static char *records_of(int fd, uint64_t size, qn_records_kind kind,
                        uint64_t rs, uint64_t off, uint64_t len, size_t chunk)
{
    got_t g = {0};
    char err[512];
    int rc =
        read_piece(fd, size, kind, rs, off, len, chunk, &g, err, sizeof err);
    cr_assert_eq(rc, 0, "piece [%llu, +%llu): %s", (unsigned long long)off,
                 (unsigned long long)len, err);
    qn_buf_add(&g.text, "", 1);
    return g.text.data;
}

/* Lines with every awkward shape: empty lines, CRLF (whose \r is not the
 * line's), a long one, and a last line without its newline. */
static const char TEXT[] = "alpha\n\nbeta gamma\r\n\n\ndelta\r\n"
                           "a somewhat longer line to cross chunk edges\n"
                           "x\nlast";

/* The records TEXT holds, as collect() writes them, found independently. */
static char *expected_lines(const char *s, size_t n)
{
    qn_buf b = {0};
    size_t start = 0;
    for (size_t i = 0; i <= n; i++) {
        if (i == n && start == n)
            break; /* no line after a final newline */
        if (i == n || s[i] == '\n') {
            /* A \r before the newline is not the line's. */
            size_t end = i < n && i > start && s[i - 1] == '\r' ? i - 1 : i;
            qn_buf_printf(&b, "%zu:", start);
            qn_buf_add(&b, s + start, end - start);
            qn_buf_add(&b, "|", 1);
            start = i + 1;
        }
    }
    qn_buf_add(&b, "", 1);
    return b.data;
}

/* ---- lines --------------------------------------------------------------- */

Test(records, line_splits_at_every_offset_give_every_line_once)
{
    size_t n = strlen(TEXT);
    int fd = mem_file(TEXT, n);
    char *want = expected_lines(TEXT, n);
    size_t chunks[] = {0, 1, 3, 16};
    for (size_t c = 0; c < QN_ARRAY_LEN(chunks); c++) {
        char *whole = records_of(fd, n, QN_RECORDS_LINES, 0, 0, n, chunks[c]);
        cr_assert_str_eq(whole, want, "chunk %zu", chunks[c]);
        free(whole);
        /* Two cuts, a and b: three pieces. */
        for (size_t a = 0; a <= n; a++) {
            for (size_t b = a; b <= n; b += chunks[c] ? 5 : 1) {
                char *p1 =
                    records_of(fd, n, QN_RECORDS_LINES, 0, 0, a, chunks[c]);
                char *p2 =
                    records_of(fd, n, QN_RECORDS_LINES, 0, a, b - a, chunks[c]);
                char *p3 =
                    records_of(fd, n, QN_RECORDS_LINES, 0, b, n - b, chunks[c]);
                qn_buf all = {0};
                qn_buf_printf(&all, "%s%s%s", p1, p2, p3);
                cr_assert_str_eq(all.data, want, "cuts at %zu and %zu", a, b);
                qn_buf_release(&all);
                free(p1);
                free(p2);
                free(p3);
            }
        }
    }
    free(want);
    close(fd);
}

Test(records, empty_file_has_no_lines)
{
    int fd = mem_file("", 0);
    char *got = records_of(fd, 0, QN_RECORDS_LINES, 0, 0, 0, 0);
    cr_assert_str_eq(got, "");
    free(got);
    close(fd);
}

Test(records, over_long_line_is_an_error_naming_file_and_offset)
{
    /* Lines of 4, 8 and 9 bytes with a limit of 8: the third is too long,
     * whether the file ends with a newline or not. */
    const char *texts[] = {"four\neight888\nnine99999\nok\n",
                           "four\neight888\nnine99999"};
    for (size_t i = 0; i < 2; i++) {
        size_t n = strlen(texts[i]);
        int fd = mem_file(texts[i], n);
        size_t chunks[] = {0, 1, 2, 5};
        for (size_t c = 0; c < QN_ARRAY_LEN(chunks); c++) {
            got_t g = {0};
            char err[512];
            qn_records_in in = {.fd = fd,
                                .name = "in.txt",
                                .kind = QN_RECORDS_LINES,
                                .length = n,
                                .file_size = n,
                                .max_record = 8,
                                .chunk = chunks[c]};
            int rc = qn_records_read(&in, collect, &g, err, sizeof err);
            cr_assert_eq(rc, -QN_ETOOBIG, "text %zu chunk %zu: %d %s", i,
                         chunks[c], rc, err);
            cr_assert(strstr(err, "in.txt") && strstr(err, "offset 14") &&
                          strstr(err, "longer than 8 bytes"),
                      "%s", err);
            /* The lines before it were handed out, and only those. */
            cr_assert_eq(g.n, 2);
            qn_buf_release(&g.text);
        }
        close(fd);
    }
}

Test(records, piece_inside_an_over_long_line_does_not_scan_to_its_end)
{
    /* The piece at 10 starts inside a 100-byte line: that line is the
     * first piece's (which fails on it); this one gives up once it has
     * scanned more than the limit for the line's end. */
    char t[110];
    memset(t, 'x', 100);
    memcpy(t + 100, "\nok\n", 4);
    int fd = mem_file(t, 104);
    got_t g = {0};
    char err[512];
    qn_records_in in = {.fd = fd,
                        .name = "in.txt",
                        .kind = QN_RECORDS_LINES,
                        .offset = 10,
                        .length = 94,
                        .file_size = 104,
                        .max_record = 8,
                        .chunk = 4};
    int rc = qn_records_read(&in, collect, &g, err, sizeof err);
    cr_assert_eq(rc, -QN_ETOOBIG, "%s", err);
    cr_assert(strstr(err, "in.txt: the line running through offset 9 is "
                          "longer than 8 bytes"),
              "%s", err);
    cr_assert_eq(g.n, 0);
    close(fd);
}

Test(records, line_of_exactly_the_limit_is_read)
{
    const char *t = "12345678\n1234\n12345678";
    size_t n = strlen(t);
    int fd = mem_file(t, n);
    got_t g = {0};
    char err[512];
    qn_records_in in = {.fd = fd,
                        .name = "in.txt",
                        .kind = QN_RECORDS_LINES,
                        .length = n,
                        .file_size = n,
                        .max_record = 8,
                        .chunk = 3};
    cr_assert_eq(qn_records_read(&in, collect, &g, err, sizeof err), 0, "%s",
                 err);
    qn_buf_add(&g.text, "", 1);
    cr_assert_str_eq(g.text.data, "0:12345678|9:1234|14:12345678|");
    qn_buf_release(&g.text);
    close(fd);
}

Test(records, line_over_the_default_limit_is_an_error_not_a_huge_buffer)
{
    /* A file of 64 MiB + 2 zero bytes (sparse) and no newline at all. */
    int fd = memfd_create("test-records", MFD_CLOEXEC);
    cr_assert_geq(fd, 0);
    uint64_t n = (uint64_t)QN_RECORDS_MAX + 2;
    cr_assert_eq(ftruncate(fd, (off_t)n), 0);
    got_t g = {0};
    char err[512];
    int rc =
        read_piece(fd, n, QN_RECORDS_LINES, 0, 0, n, 0, &g, err, sizeof err);
    cr_assert_eq(rc, -QN_ETOOBIG, "%s", err);
    cr_assert(strstr(err, "in.txt: the line at offset 0 is longer than"), "%s",
              err);
    cr_assert_eq(g.n, 0);
    close(fd);
}

/* ---- fixed-size records ---------------------------------------------------
 */

Test(records, fixed_records_are_read_by_the_piece_they_start_in)
{
    char data[70];
    for (size_t i = 0; i < sizeof data; i++)
        data[i] = (char)('a' + i / 7); /* record k is 7 times 'a' + k */
    int fd = mem_file(data, sizeof data);
    char *want = records_of(fd, 70, QN_RECORDS_FIXED, 7, 0, 70, 0);
    size_t bars = 0;
    for (const char *c = want; *c; c++)
        bars += *c == '|';
    cr_assert_eq(bars, 10, "%s", want);
    cr_assert(strstr(want, "0:aaaaaaa|7:bbbbbbb|") == want);
    cr_assert(strstr(want, "|63:jjjjjjj|"));
    for (size_t a = 0; a <= 70; a++) {
        for (size_t chunk = 0; chunk < 9; chunk += 4) {
            char *p1 = records_of(fd, 70, QN_RECORDS_FIXED, 7, 0, a, chunk);
            char *p2 =
                records_of(fd, 70, QN_RECORDS_FIXED, 7, a, 70 - a, chunk);
            qn_buf all = {0};
            qn_buf_printf(&all, "%s%s", p1, p2);
            cr_assert_str_eq(all.data, want, "cut at %zu", a);
            qn_buf_release(&all);
            free(p1);
            free(p2);
        }
    }
    free(want);
    close(fd);
}

Test(records, partial_fixed_record_is_an_error_naming_file_and_offset)
{
    int fd = mem_file("0123456789abc", 13); /* two 5-byte records and 3 */
    got_t g = {0};
    char err[512];
    int rc =
        read_piece(fd, 13, QN_RECORDS_FIXED, 5, 0, 13, 0, &g, err, sizeof err);
    cr_assert_eq(rc, -QN_ECORRUPT);
    cr_assert(strstr(err, "in.txt: 13 bytes is not a whole number of 5-byte "
                          "records (3 bytes are left at offset 10)"),
              "%s", err);
    cr_assert_eq(g.n, 2);
    qn_buf_release(&g.text);
    /* A piece before the tail does not see it. */
    g = (got_t){0};
    cr_assert_eq(
        read_piece(fd, 13, QN_RECORDS_FIXED, 5, 0, 10, 0, &g, err, sizeof err),
        0, "%s", err);
    cr_assert_eq(g.n, 2);
    qn_buf_release(&g.text);
    close(fd);
}

Test(records, fixed_record_size_over_the_limit_or_zero_is_an_error)
{
    int fd = mem_file("0123456789", 10);
    got_t g = {0};
    char err[512];
    qn_records_in in = {.fd = fd,
                        .name = "in.txt",
                        .kind = QN_RECORDS_FIXED,
                        .length = 10,
                        .file_size = 10,
                        .record_size = (uint64_t)QN_RECORDS_MAX + 1};
    cr_assert_eq(qn_records_read(&in, collect, &g, err, sizeof err),
                 -QN_ETOOBIG);
    cr_assert(strstr(err, "in.txt") && strstr(err, "offset 0"), "%s", err);
    in.record_size = 6;
    in.max_record = 5;
    cr_assert_eq(qn_records_read(&in, collect, &g, err, sizeof err),
                 -QN_ETOOBIG);
    in.record_size = 0;
    cr_assert_eq(qn_records_read(&in, collect, &g, err, sizeof err), -EINVAL);
    cr_assert(strstr(err, "in.txt") && strstr(err, "offset 0"), "%s", err);
    cr_assert_eq(g.n, 0);
    close(fd);
}

/* ---- whole files --------------------------------------------------------- */

Test(records, whole_file_is_one_record_read_by_the_piece_holding_byte_0)
{
    int fd = mem_file("line one\nline two\n", 18);
    for (size_t chunk = 0; chunk < 8; chunk += 3) {
        char *a = records_of(fd, 18, QN_RECORDS_WHOLE, 0, 0, 10, chunk);
        char *b = records_of(fd, 18, QN_RECORDS_WHOLE, 0, 10, 8, chunk);
        cr_assert_str_eq(a, "0:line one\nline two\n|");
        cr_assert_str_eq(b, "");
        free(a);
        free(b);
    }
    close(fd);
    fd = mem_file("", 0);
    char *e = records_of(fd, 0, QN_RECORDS_WHOLE, 0, 0, 0, 0);
    cr_assert_str_eq(e, "0:|", "an empty file is one empty record");
    free(e);
    close(fd);
}

/* ---- files that change --------------------------------------------------- */

Test(records, file_not_the_size_it_was_split_at_is_an_error)
{
    const char *t = "one\ntwo\nthree\n";
    int fd = mem_file(t, 14);
    qn_records_kind kinds[] = {QN_RECORDS_LINES, QN_RECORDS_FIXED,
                               QN_RECORDS_WHOLE};
    for (size_t k = 0; k < 3; k++) {
        got_t g = {0};
        char err[512];
        /* Split when it held 20 bytes: it shrank. */
        int rc = read_piece(fd, 20, kinds[k], 2, 0, 20, 0, &g, err, sizeof err);
        cr_assert_eq(rc, -QN_ECORRUPT, "kind %zu: %s", k, err);
        cr_assert(strstr(err, "in.txt: the file ends at offset 14, short of "
                              "its size of 20 bytes"),
                  "%s", err);
        qn_buf_release(&g.text);
        /* Split when it held 12 bytes: it grew. */
        g = (got_t){0};
        rc = read_piece(fd, 12, kinds[k], 2, 0, 12, 0, &g, err, sizeof err);
        cr_assert_eq(rc, -QN_ECORRUPT, "kind %zu: %s", k, err);
        cr_assert(strstr(err, "in.txt: there are bytes at offset 12, past "
                              "its size of 12 bytes"),
                  "%s", err);
        qn_buf_release(&g.text);
    }
    close(fd);
}

Test(records, file_that_grows_or_shrinks_while_read_is_an_error)
{
    const char *t = "one\ntwo\nthree\nfour\n";
    size_t n = strlen(t);
    for (int shrink = 0; shrink < 2; shrink++) {
        int fd = mem_file(t, n);
        got_t g = {.fd = fd, .grow = !shrink, .shrink = shrink};
        char err[512];
        int rc = read_piece(fd, n, QN_RECORDS_LINES, 0, 0, n, 4, &g, err,
                            sizeof err);
        cr_assert_eq(rc, -QN_ECORRUPT, "%s", err);
        cr_assert(strstr(err, shrink ? "in.txt: the file ends at offset 4,"
                                     : "in.txt: there are bytes at offset 19"),
                  "%s", err);
        qn_buf_release(&g.text);
        close(fd);
    }
}

Test(records, piece_outside_the_file_is_an_error)
{
    int fd = mem_file("abc\n", 4);
    got_t g = {0};
    char err[512];
    cr_assert_eq(
        read_piece(fd, 4, QN_RECORDS_LINES, 0, 3, 2, 0, &g, err, sizeof err),
        -EINVAL);
    cr_assert(strstr(err, "in.txt") && strstr(err, "offset 3"), "%s", err);
    cr_assert_eq(read_piece(fd, 4, QN_RECORDS_LINES, 0, UINT64_MAX - 1, 4, 0,
                            &g, err, sizeof err),
                 -EINVAL);
    cr_assert_eq(g.n, 0);
    close(fd);
}

/* ---- CRC ----------------------------------------------------------------- */

Test(records, crc_mismatch_on_a_whole_shard_is_an_error_and_a_match_is_not)
{
    const char *t = "0123456789\nabcdefghij\n";
    size_t n = strlen(t);
    int fd = mem_file(t, n);
    uint32_t crc = crc_of(t, n);
    qn_records_kind kinds[] = {QN_RECORDS_LINES, QN_RECORDS_FIXED,
                               QN_RECORDS_WHOLE};
    for (size_t k = 0; k < 3; k++) {
        for (size_t chunk = 0; chunk < 30; chunk += 7) {
            got_t g = {0};
            char err[512];
            qn_records_in in = {.fd = fd,
                                .name = "ds/part-00001",
                                .kind = kinds[k],
                                .length = n,
                                .file_size = n,
                                .record_size = 11,
                                .chunk = chunk,
                                .check_crc = 1,
                                .crc = crc};
            cr_assert_eq(qn_records_read(&in, collect, &g, err, sizeof err), 0,
                         "kind %zu chunk %zu: %s", k, chunk, err);
            size_t records = g.n;
            in.crc = crc ^ 0x100;
            int rc = qn_records_read(&in, collect, &g, err, sizeof err);
            cr_assert_eq(rc, -QN_ECORRUPT, "kind %zu", k);
            char want[200];
            snprintf(want, sizeof want,
                     "ds/part-00001: its 22 bytes (offsets 0 to 22) have CRC "
                     "%08x, not %08x",
                     crc, crc ^ 0x100);
            cr_assert(strstr(err, want), "%s", err);
            cr_assert_eq(g.n, 2 * records, "the records came, then the error");
            qn_buf_release(&g.text);
        }
    }
    /* The CRC is of the file: a piece of it cannot be checked. */
    got_t g = {0};
    char err[512];
    qn_records_in in = {.fd = fd,
                        .name = "ds/part-00001",
                        .offset = 11,
                        .length = n - 11,
                        .file_size = n,
                        .check_crc = 1,
                        .crc = crc};
    cr_assert_eq(qn_records_read(&in, collect, &g, err, sizeof err), -EINVAL);
    cr_assert_eq(g.n, 0);
    close(fd);
}

Test(records, crc_of_an_empty_shard_is_checked)
{
    int fd = mem_file("", 0);
    got_t g = {0};
    char err[512];
    qn_records_in in = {.fd = fd, .name = "e", .check_crc = 1, .crc = 0};
    cr_assert_eq(qn_records_read(&in, collect, &g, err, sizeof err), 0, "%s",
                 err);
    in.crc = 1;
    cr_assert_eq(qn_records_read(&in, collect, &g, err, sizeof err),
                 -QN_ECORRUPT);
    close(fd);
}

/* ---- the callback -------------------------------------------------------- */

Test(records, callback_failure_stops_the_read_with_its_code)
{
    const char *t = "a\nb\nc\n";
    int fd = mem_file(t, 6);
    got_t g = {.stop_at = 2};
    char err[512];
    int rc =
        read_piece(fd, 6, QN_RECORDS_LINES, 0, 0, 6, 0, &g, err, sizeof err);
    cr_assert_eq(rc, -7);
    cr_assert_str_eq(err, "", "the callback has said why");
    cr_assert_eq(g.n, 2);
    qn_buf_release(&g.text);
    close(fd);
}

/* ---- the store's .meta check --------------------------------------------- */

/* A packed ShardInfo; free the result. */
static uint8_t *pack_meta(const char *dataset, uint32_t index, size_t *len)
{
    Quern__ShardInfo m = QUERN__SHARD_INFO__INIT;
    m.dataset = (char *)dataset;
    m.index = index;
    m.size = 1234;
    m.crc = 0xdeadbeef;
    m.sealed = 1;
    m.nshards = 9;
    *len = quern__shard_info__get_packed_size(&m);
    uint8_t *buf = malloc(*len + 1);
    quern__shard_info__pack(&m, buf);
    return buf;
}

Test(records, meta_parse_reads_a_good_description)
{
    size_t len;
    uint8_t *buf = pack_meta("logs", 3, &len);
    qn_shard sh;
    char why[200];
    cr_assert_eq(qn_store_meta_parse(buf, len, "logs", 3, &sh, why, sizeof why),
                 0, "%s", why);
    cr_assert_str_eq(sh.dataset, "logs");
    cr_assert_eq(sh.index, 3);
    cr_assert_eq(sh.size, 1234);
    cr_assert_eq(sh.crc, 0xdeadbeef);
    cr_assert_eq(sh.sealed, 1);
    cr_assert_eq(sh.nshards, 9);
    free(buf);
}

Test(records, meta_parse_refuses_garbage_and_another_shard)
{
    size_t len;
    uint8_t *buf = pack_meta("logs", 3, &len);
    qn_shard sh;
    char why[200];
    cr_assert_eq(qn_store_meta_parse(buf, len, "logs", 4, &sh, why, sizeof why),
                 -1);
    cr_assert(strstr(why, "another shard"), "%s", why);
    cr_assert_eq(qn_store_meta_parse(buf, len, "logz", 3, &sh, why, sizeof why),
                 -1);
    cr_assert_eq(qn_store_meta_parse(buf, 0, "logs", 3, &sh, why, sizeof why),
                 -1);
    /* Cut short inside the dataset's name or before the index: refused
     * (and, under ASan, never read past its end). */
    for (size_t i = 1; i < 8; i++)
        cr_assert_eq(
            qn_store_meta_parse(buf, i, "logs", 3, &sh, why, sizeof why), -1,
            "cut at %zu", i);
    free(buf);
    const char junk[] = "\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff";
    cr_assert_eq(qn_store_meta_parse(junk, sizeof junk - 1, "logs", 3, &sh, why,
                                     sizeof why),
                 -1);
    cr_assert(strstr(why, "not a shard's description"), "%s", why);
    uint8_t *big = calloc(1, QN_STORE_META_MAX);
    cr_assert_eq(qn_store_meta_parse(big, QN_STORE_META_MAX, "logs", 3, &sh,
                                     why, sizeof why),
                 -1, "too long to be a description");
    free(big);
}
