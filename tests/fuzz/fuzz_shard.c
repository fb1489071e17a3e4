/*
 * fuzz_shard.c -- libFuzzer target: any bytes as a map's input file (a
 * dataset shard or a plain file), and as a shard's .meta description.
 *
 * Input layout: 8 header bytes, then the file.
 *   0: kind (mod 3: lines, fixed, whole)   1: record size - 1 (mod 64)
 *   2-3: where to cut the file in two (big-endian, mod its size + 1)
 *   4: bytes per read (0: the default; 1-127: that; else (b - 127) * 256)
 *   5: longest line or record (0: the default, 64 MiB)
 *   6: which CRC bit to flip for the wrong CRC   7: stop at record n (0: no)
 *
 * The file goes into a memory file read with qn_records_read (lib/
 * records.c) as one piece covering it, with its right CRC and with a
 * wrong one, and as two pieces cut at the chosen offset. The oracle, which
 * abort()s when it fails: the two pieces' records (offsets and bytes), up
 * to and including the first piece that fails, are the whole piece's; the
 * whole piece fails exactly when one of the two does, with the same
 * message; a whole file with its right CRC reads cleanly; the wrong CRC is
 * always an error; every error has a message; a callback that stops the
 * read stops it at once, its code returned and no message. All the bytes
 * are also handed to the store's .meta check (qn_store_meta_parse).
 * Crashes, hangs, leaks and reads out of bounds are findings too.
 *
 * The CRC is checked in the fuzzing build as in production: this target
 * computes the right one itself.
 */
#include "../../worker/store.h"
#include "records.h"
#include "util.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include <zlib.h>

#define HEADER 8

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The records a read handed out, one after another: u64 offset, u64
 * length, bytes. */
typedef struct {
    qn_buf out;
    size_t n;
    size_t stop_at; /* return -42 at this record (1-based; 0: never) */
} s_got;

static int s_collect(void *ctx, uint64_t offset, const void *rec, size_t len)
{
    s_got *g = ctx;
    uint64_t hdr[2] = {offset, len};
    qn_buf_add(&g->out, hdr, sizeof hdr);
    qn_buf_add(&g->out, rec, len);
    return ++g->n == g->stop_at ? -42 : 0;
}

typedef struct {
    int rc;
    char err[512];
    s_got got;
} s_run;

static void s_read(const qn_records_in *base, uint64_t off, uint64_t len,
                   int check_crc, uint32_t crc, size_t stop_at, s_run *r)
{
    qn_records_in in = *base;
    in.offset = off;
    in.length = len;
    in.check_crc = check_crc;
    in.crc = crc;
    memset(r, 0, sizeof *r);
    r->got.stop_at = stop_at;
    r->rc = qn_records_read(&in, s_collect, &r->got, r->err, sizeof r->err);
    if (r->rc < 0 && !stop_at && !r->err[0])
        abort(); /* an error always says what and where */
    if (r->rc == 0 && r->err[0])
        abort();
}

static int s_same(const qn_buf *a, const void *b, size_t blen)
{
    return a->len == blen && (blen == 0 || memcmp(a->data, b, blen) == 0);
}

static void s_check_records(const qn_records_in *in, uint64_t size,
                            uint64_t cut, uint32_t crc, uint32_t flip,
                            size_t stop_at)
{
    s_run whole, wrong, p1, p2;
    s_read(in, 0, size, 1, crc, 0, &whole);
    if (in->kind == QN_RECORDS_WHOLE && whole.rc != 0)
        abort(); /* a whole file with its right CRC reads cleanly */

    /* The wrong CRC: the same records, then an error. */
    s_read(in, 0, size, 1, crc ^ flip, 0, &wrong);
    if (wrong.rc >= 0 ||
        !s_same(&whole.got.out, wrong.got.out.data, wrong.got.out.len))
        abort();

    /* Two pieces: the whole piece's records, the same failure. */
    if (!(in->kind == QN_RECORDS_WHOLE && size == 0)) {
        s_read(in, 0, cut, 0, 0, 0, &p1);
        s_read(in, cut, size - cut, 0, 0, 0, &p2);
        qn_buf both = {0};
        qn_buf_add(&both, p1.got.out.data, p1.got.out.len);
        if (p1.rc == 0)
            qn_buf_add(&both, p2.got.out.data, p2.got.out.len);
        const char *perr = p1.rc < 0 ? p1.err : p2.rc < 0 ? p2.err : NULL;
        if (!s_same(&whole.got.out, both.data, both.len))
            abort();
        if ((whole.rc < 0) != (perr != NULL))
            abort();
        if (perr && strcmp(perr, whole.err) != 0)
            abort();
        qn_buf_release(&both);
        qn_buf_release(&p1.got.out);
        qn_buf_release(&p2.got.out);
    }

    /* A callback that stops the read: at once, with its code. */
    if (stop_at && stop_at <= whole.got.n) {
        s_run st;
        s_read(in, 0, size, 1, crc, stop_at, &st);
        if (st.rc != -42 || st.err[0] || st.got.n != stop_at ||
            memcmp(st.got.out.data, whole.got.out.data, st.got.out.len) != 0)
            abort();
        qn_buf_release(&st.got.out);
    }
    qn_buf_release(&whole.got.out);
    qn_buf_release(&wrong.got.out);
}

static void s_check_meta(const uint8_t *data, size_t size)
{
    qn_shard sh;
    char why[256] = "";
    if (qn_store_meta_parse(data, size, "ds", 3, &sh, why, sizeof why) == 0) {
        if (strcmp(sh.dataset, "ds") != 0 || sh.index != 3)
            abort(); /* only the description of that shard is accepted */
    } else if (!why[0]) {
        abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    s_check_meta(data, size);
    if (size < HEADER)
        return 0;
    const uint8_t *file = data + HEADER;
    uint64_t n = size - HEADER;
    int fd = memfd_create("fuzz-shard", MFD_CLOEXEC);
    if (fd < 0)
        return 0;
    if (qn_write_all(fd, file, n) < 0) {
        close(fd);
        return 0;
    }
    char path[64];
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    static const qn_records_kind kinds[] = {QN_RECORDS_LINES, QN_RECORDS_FIXED,
                                            QN_RECORDS_WHOLE};
    size_t chunk = data[4] == 0    ? 0
                   : data[4] < 128 ? data[4]
                                   : (size_t)(data[4] - 127) * 256;
    qn_records_in in = {.fd = fd,
                        .name = path,
                        .kind = kinds[data[0] % 3],
                        .file_size = n,
                        .record_size = 1 + (data[1] & 63),
                        .max_record = data[5],
                        .chunk = chunk};
    uint64_t cut = (((uint64_t)data[2] << 8) | data[3]) % (n + 1);
    uint32_t crc = (uint32_t)crc32(crc32(0L, Z_NULL, 0), file, (uInt)n);
    s_check_records(&in, n, cut, crc, 1u << (data[6] & 31), data[7]);
    close(fd);
    return 0;
}
