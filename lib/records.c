/*
 * records.c -- see records.h.
 *
 * One buffer holds file bytes [base, base + len), of which [pos, len) are
 * not yet handed out. Reads never go past the size the file was split at:
 * a read that ends early means the file shrank, and a byte found at that
 * size means it grew. The buffer grows only to hold one line or record
 * (bounded by max_record) or a whole file (its size).
 */
#include "records.h"

#include "decomp.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

typedef unsigned long long s_ull; /* for printf */

typedef struct {
    const qn_records_in *in;
    char *buf;
    size_t cap, len, pos; /* buf holds file bytes [base, base + len) */
    uint64_t base;
    uint64_t max; /* longest line or record */
    size_t chunk; /* bytes per read */
    int eof;      /* every byte up to file_size is in; none is past it */
    int crc_on;   /* crc sums bytes [0, base + len) */
    uLong crc;
    qn_decomp *dec; /* a compressed file's reader: bytes come from it */
    char *err;
    size_t errcap;
} s_reader;

__attribute__((format(printf, 3, 4))) static int s_fail(s_reader *r, int code,
                                                        const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->err, r->errcap, fmt, ap);
    va_end(ap);
    return code;
}

/* At the size the file was split at: is there a byte past it? 0 (and eof
 * is set) if not. */
static int s_probe_end(s_reader *r)
{
    const qn_records_in *in = r->in;
    char c;
    for (;;) {
        ssize_t n = pread(in->fd, &c, 1, (off_t)in->file_size);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            int e = errno;
            return s_fail(r, -e, "reading %s at offset %llu: %s", in->name,
                          (s_ull)in->file_size, strerror(e));
        }
        if (n > 0)
            return s_fail(r, -QN_ECORRUPT,
                          "%s: there are bytes at offset %llu, past its size "
                          "of %llu bytes when it was split (it grew while "
                          "being read)",
                          in->name, (s_ull)in->file_size, (s_ull)in->file_size);
        r->eof = 1;
        return 0;
    }
}

/*
 * A full buffer made larger, for left more bytes of the file at most: never
 * more than those, nor (but for a whole file) than one record over the
 * limit, enough to see that a line is too long. 0 or an error.
 */
static int s_grow(s_reader *r, uint64_t left)
{
    const qn_records_in *in = r->in;
    uint64_t cap = (uint64_t)r->cap * 2;
    if (left < UINT64_MAX - r->len && cap > r->len + left)
        cap = r->len + left;
    if (in->kind != QN_RECORDS_WHOLE && cap > r->max + 1)
        cap = r->max + 1;
    /* A compressed file's size does not bound its bytes: its whole-file
     * record stops at a limit of its own. */
    if (r->dec && in->kind == QN_RECORDS_WHOLE &&
        cap > QN_RECORDS_WHOLE_DECOMP_MAX) {
        if (r->cap >= QN_RECORDS_WHOLE_DECOMP_MAX)
            return s_fail(r, -QN_ETOOBIG,
                          "%s: its decompressed bytes are more than %llu, the "
                          "most a compressed file read whole may hold",
                          in->name, (s_ull)QN_RECORDS_WHOLE_DECOMP_MAX);
        cap = QN_RECORDS_WHOLE_DECOMP_MAX;
    }
    if (cap <= r->cap || cap > SIZE_MAX)
        return s_fail(r, -QN_ETOOBIG,
                      "%s: cannot hold the record at offset %llu", in->name,
                      (s_ull)r->base);
    r->cap = (size_t)cap;
    r->buf = qn_realloc(r->buf, r->cap);
    return 0;
}

/*
 * Read more of the file after the unconsumed bytes, first moving them to
 * the front, and growing the buffer when they fill it. Callers bound the
 * growth: a line or record is checked against max before the buffer is
 * grown to hold more of it. At the file's end this checks that nothing
 * follows and sets eof. 0 or an error.
 */
static int s_refill(s_reader *r)
{
    const qn_records_in *in = r->in;
    int rc;
    if (r->pos > 0) {
        memmove(r->buf, r->buf + r->pos, r->len - r->pos);
        r->base += r->pos;
        r->len -= r->pos;
        r->pos = 0;
    }
    if (r->dec) {
        if (r->len == r->cap && (rc = s_grow(r, UINT64_MAX)) < 0)
            return rc;
        ssize_t n = qn_decomp_read(r->dec, r->buf + r->len, r->cap - r->len,
                                   r->err, r->errcap);
        if (n < 0)
            return (int)n;
        r->eof = n == 0;
        r->len += (size_t)n;
        return 0;
    }
    uint64_t at = r->base + r->len;
    if (at >= in->file_size)
        return s_probe_end(r);
    uint64_t left = in->file_size - at;
    if (r->len == r->cap && (rc = s_grow(r, left)) < 0)
        return rc;
    size_t want = r->cap - r->len;
    if (want > left)
        want = (size_t)left;
    for (;;) {
        ssize_t n = pread(in->fd, r->buf + r->len, want, (off_t)at);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            int e = errno;
            return s_fail(r, -e, "reading %s at offset %llu: %s", in->name,
                          (s_ull)at, strerror(e));
        }
        if (n == 0)
            return s_fail(r, -QN_ECORRUPT,
                          "%s: the file ends at offset %llu, short of its "
                          "size of %llu bytes when it was split (it shrank "
                          "while being read)",
                          in->name, (s_ull)at, (s_ull)in->file_size);
        if (r->crc_on)
            r->crc = crc32(r->crc, (const Bytef *)r->buf + r->len, (uInt)n);
        r->len += (size_t)n;
        return 0;
    }
}

static int s_read_lines(s_reader *r, qn_record_fn fn, void *ctx)
{
    const qn_records_in *in = r->in;
    uint64_t end = r->dec ? UINT64_MAX : in->offset + in->length;
    int rc;
    if (in->offset > 0) {
        /*
         * Skip the line that started before the range: it is the piece
         * before's. Scanning more than max + 1 bytes for its newline means
         * that line is too long, which that piece says too.
         */
        r->base = in->offset - 1;
        for (;;) {
            if (r->pos == r->len) {
                if (r->eof)
                    return 0;
                if (r->base + r->len - (in->offset - 1) > r->max + 1)
                    return s_fail(r, -QN_ETOOBIG,
                                  "%s: the line running through offset "
                                  "%llu is longer than %llu bytes",
                                  in->name, (s_ull)(in->offset - 1),
                                  (s_ull)r->max);
                if ((rc = s_refill(r)) < 0)
                    return rc;
                continue;
            }
            char *nl = memchr(r->buf + r->pos, '\n', r->len - r->pos);
            if (nl) {
                r->pos = (size_t)(nl - r->buf) + 1;
                break;
            }
            r->pos = r->len;
        }
    }
    for (;;) {
        uint64_t start = r->base + r->pos;
        if (start >= end || (r->eof && r->pos == r->len))
            return 0;
        char *line = r->buf + r->pos;
        size_t avail = r->len - r->pos;
        char *nl = memchr(line, '\n', avail);
        if (!nl && !r->eof) {
            if (avail > r->max)
                break;
            if ((rc = s_refill(r)) < 0)
                return rc;
            continue;
        }
        size_t len = nl ? (size_t)(nl - line) : avail;
        if (len > r->max)
            break;
        r->pos += len + (nl ? 1 : 0);
        if (nl && len > 0 && line[len - 1] == '\r' && !in->keep_cr)
            len--;
        if ((rc = fn(ctx, start, line, len)) < 0)
            return rc;
    }
    return s_fail(r, -QN_ETOOBIG,
                  "%s: the line at offset %llu is longer than %llu bytes",
                  in->name, (s_ull)(r->base + r->pos), (s_ull)r->max);
}

/* Fixed-size records of a compressed file, whose decompressed size is
 * known only at its end. */
static int s_read_fixed_decomp(s_reader *r, qn_record_fn fn, void *ctx)
{
    uint64_t rs = r->in->record_size;
    for (uint64_t at = 0;; at += rs) {
        int rc;
        while (r->len - r->pos < rs && !r->eof)
            if ((rc = s_refill(r)) < 0)
                return rc;
        size_t have = r->len - r->pos;
        if (have == 0)
            return 0;
        if (have < rs)
            return s_fail(r, -QN_ECORRUPT,
                          "%s: its %llu decompressed bytes are not a whole "
                          "number of %llu-byte records (%zu bytes are left at "
                          "offset %llu)",
                          r->in->name, (s_ull)(at + have), (s_ull)rs, have,
                          (s_ull)at);
        if ((rc = fn(ctx, at, r->buf + r->pos, (size_t)rs)) < 0)
            return rc;
        r->pos += (size_t)rs;
    }
}

static int s_read_fixed(s_reader *r, qn_record_fn fn, void *ctx)
{
    const qn_records_in *in = r->in;
    uint64_t rs = in->record_size;
    if (rs == 0 || rs > r->max)
        return s_fail(r, rs ? -QN_ETOOBIG : -EINVAL,
                      "%s: records of %llu bytes (from offset %llu) are not "
                      "between 1 and %llu bytes",
                      in->name, (s_ull)rs, (s_ull)in->offset, (s_ull)r->max);
    if (r->dec)
        return s_read_fixed_decomp(r, fn, ctx);
    uint64_t end = in->offset + in->length;
    uint64_t first = in->offset / rs * rs;
    if (first < in->offset)
        first += rs; /* the first record starting in the range */
    r->base = first;
    int rc;
    for (uint64_t at = first; at < end && at < in->file_size; at += rs) {
        if (in->file_size - at < rs)
            return s_fail(r, -QN_ECORRUPT,
                          "%s: %llu bytes is not a whole number of %llu-byte "
                          "records (%llu bytes are left at offset %llu)",
                          in->name, (s_ull)in->file_size, (s_ull)rs,
                          (s_ull)(in->file_size - at), (s_ull)at);
        while (r->len - r->pos < rs) {
            if (r->eof)
                return s_fail(r, -QN_ECORRUPT,
                              "%s: the file ends inside the record at "
                              "offset %llu",
                              in->name, (s_ull)at);
            if ((rc = s_refill(r)) < 0)
                return rc;
        }
        if ((rc = fn(ctx, at, r->buf + r->pos, (size_t)rs)) < 0)
            return rc;
        r->pos += (size_t)rs;
    }
    return 0;
}

static int s_read_whole(s_reader *r, qn_record_fn fn, void *ctx)
{
    const qn_records_in *in = r->in;
    /* The piece holding byte 0 reads the file (an empty file's one piece
     * holds no byte but reads it too). */
    if (in->offset > 0 || (in->length == 0 && in->file_size > 0))
        return 0;
    while (!r->eof) {
        int rc = s_refill(r);
        if (rc < 0)
            return rc;
    }
    return fn(ctx, 0, r->buf, r->len);
}

int qn_records_read(const qn_records_in *in, qn_record_fn fn, void *ctx,
                    char *err, size_t errcap)
{
    s_reader r = {.in = in,
                  .max = in->max_record ? in->max_record : QN_RECORDS_MAX,
                  .chunk = in->chunk ? in->chunk : QN_RECORDS_CHUNK,
                  .err = err,
                  .errcap = errcap};
    if (errcap)
        err[0] = '\0';
    if (r.max > SIZE_MAX / 4)
        r.max = SIZE_MAX / 4; /* so max + 1 and buffer sizes never wrap */
    if (in->file_size > INT64_MAX || in->offset > in->file_size ||
        in->length > in->file_size - in->offset)
        return s_fail(&r, -EINVAL,
                      "%s: the piece of %llu bytes at offset %llu is not "
                      "inside its %llu bytes",
                      in->name, (s_ull)in->length, (s_ull)in->offset,
                      (s_ull)in->file_size);
    if (in->check_crc && (in->offset != 0 || in->length != in->file_size))
        return s_fail(&r, -EINVAL,
                      "%s: the piece at offset %llu is not the whole file, "
                      "whose CRC is known",
                      in->name, (s_ull)in->offset);
    if (in->codec &&
        (in->offset != 0 || in->length != in->file_size || in->check_crc))
        return s_fail(&r, -EINVAL,
                      "%s: the piece at offset %llu is not the whole file, "
                      "which is compressed",
                      in->name, (s_ull)in->offset);
    if (in->codec) {
        r.dec = qn_decomp_new((qn_decomp_kind)in->codec, in->fd, in->file_size,
                              in->name, err, errcap);
        if (!r.dec)
            return -ENOMEM;
    }
    /* No piece needs more than the file: small files get small buffers
     * (a compressed one's bytes are more than its size). */
    r.cap = r.chunk;
    if (!r.dec && r.cap > in->file_size)
        r.cap = (size_t)in->file_size + 1;
    r.buf = qn_malloc(r.cap);
    r.crc_on = in->check_crc;
    r.crc = crc32(0L, Z_NULL, 0);
    posix_fadvise(in->fd, 0, 0, POSIX_FADV_SEQUENTIAL);
    int rc;
    switch (in->kind) {
    case QN_RECORDS_LINES: rc = s_read_lines(&r, fn, ctx); break;
    case QN_RECORDS_FIXED: rc = s_read_fixed(&r, fn, ctx); break;
    case QN_RECORDS_WHOLE: rc = s_read_whole(&r, fn, ctx); break;
    default:
        rc = s_fail(&r, -EINVAL, "%s: unknown record kind %d (at offset %llu)",
                    in->name, (int)in->kind, (s_ull)in->offset);
        break;
    }
    /* A piece at the end of the file checks that nothing follows it; a
     * checked file is read to its end for its CRC. */
    if (rc == 0 && r.crc_on) {
        while (rc == 0 && !r.eof) {
            r.pos = r.len;
            rc = s_refill(&r);
        }
    } else if (rc == 0 && r.dec) {
        /* Every reader above stops at the end; the stream is whole. */
        while (rc == 0 && !r.eof) {
            r.pos = r.len;
            rc = s_refill(&r);
        }
    } else if (rc == 0 && !r.eof && in->offset + in->length >= in->file_size) {
        rc = s_probe_end(&r);
    }
    if (rc == 0 && r.crc_on && (uint32_t)r.crc != in->crc)
        rc = s_fail(&r, -QN_ECORRUPT,
                    "%s: its %llu bytes (offsets 0 to %llu) have CRC %08x, "
                    "not %08x: this copy of it is damaged",
                    in->name, (s_ull)in->file_size, (s_ull)in->file_size,
                    (unsigned)r.crc, (unsigned)in->crc);
    qn_decomp_destroy(&r.dec);
    free(r.buf);
    return rc;
}
