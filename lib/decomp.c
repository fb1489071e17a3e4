/*
 * decomp.c -- see decomp.h.
 *
 * Every codec runs the same loop: the compressed bytes come in through one
 * buffer filled with pread, each codec's step turns some of them into
 * output, and a step that ends a member (gzip, bzip2) or a frame (zstd,
 * lz4) lets the next one begin. The stream has ended when a member or
 * frame has just ended and no compressed byte is left; input that runs
 * out anywhere else was cut short.
 */
#include "decomp.h"

#include "util.h"

#include <bzlib.h>
#include <errno.h>
#include <lz4frame.h>
#include <lzma.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>
#include <zstd.h>

#define IN_CHUNK (256 * 1024) /* compressed bytes per pread */
#define XZ_MEMLIMIT (1 << 30) /* an xz stream needing more is refused */

typedef unsigned long long s_ull; /* for printf */

struct qn_decomp {
    qn_decomp_kind kind;
    int fd;
    uint64_t size; /* compressed bytes [0, size) */
    char *name;
    unsigned char *in;
    size_t in_len, in_pos; /* in holds file bytes [in_off, in_off + in_len) */
    uint64_t in_off;
    int in_eof;   /* every byte up to size is in; none is past it */
    int boundary; /* a member or frame has just ended (or none began) */
    int ended;    /* the stream ended at size */
    z_stream z;
    bz_stream bz;
    lzma_stream xz;
    ZSTD_DStream *zs;
    LZ4F_dctx *lz4;
    int live; /* z or bz holds an initialised state */
};

/* ---- what a file is -------------------------------------------------- */

qn_decomp_kind qn_decomp_sniff(const void *head, size_t n)
{
    const unsigned char *b = head;
    /* A skippable frame first (pzstd writes one): what follows it says. */
    if (n >= 8 && (b[0] & 0xf0) == 0x50 && b[1] == 0x2a && b[2] == 0x4d &&
        b[3] == 0x18) {
        uint64_t skip = 8 + ((uint64_t)b[4] | (uint64_t)b[5] << 8 |
                             (uint64_t)b[6] << 16 | (uint64_t)b[7] << 24);
        qn_decomp_kind k =
            skip < n ? qn_decomp_sniff(b + skip, n - skip) : QN_DECOMP_PLAIN;
        return k == QN_DECOMP_ZSTD || k == QN_DECOMP_LZ4 ? k : QN_DECOMP_PLAIN;
    }
    static const unsigned char xz[6] = {0xfd, '7', 'z', 'X', 'Z', 0};
    static const unsigned char zstd[4] = {0x28, 0xb5, 0x2f, 0xfd};
    static const unsigned char lz4[4] = {0x04, 0x22, 0x4d, 0x18};
    /* A bzip2 stream's first block (pi) or its end mark (sqrt(pi)). */
    static const unsigned char bz_block[6] = {0x31, 0x41, 0x59,
                                              0x26, 0x53, 0x59};
    static const unsigned char bz_end[6] = {0x17, 0x72, 0x45, 0x38, 0x50, 0x90};
    if (n >= 3 && b[0] == 0x1f && b[1] == 0x8b && b[2] == 8)
        return QN_DECOMP_GZIP;
    if (n >= 10 && memcmp(b, "BZh", 3) == 0 && b[3] >= '1' && b[3] <= '9' &&
        (memcmp(b + 4, bz_block, 6) == 0 || memcmp(b + 4, bz_end, 6) == 0))
        return QN_DECOMP_BZIP2;
    if (n >= 6 && memcmp(b, xz, 6) == 0)
        return QN_DECOMP_XZ;
    if (n >= 4 && memcmp(b, zstd, 4) == 0)
        return QN_DECOMP_ZSTD;
    if (n >= 4 && memcmp(b, lz4, 4) == 0)
        return QN_DECOMP_LZ4;
    return QN_DECOMP_PLAIN;
}

int qn_decomp_sniff_fd(int fd, qn_decomp_kind *kind)
{
    unsigned char head[QN_DECOMP_SNIFF];
    size_t got = 0;
    while (got < sizeof head) {
        ssize_t n = pread(fd, head + got, sizeof head - got, (off_t)got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -errno;
        if (n == 0)
            break;
        got += (size_t)n;
    }
    *kind = qn_decomp_sniff(head, got);
    return 0;
}

const char *qn_decomp_name(qn_decomp_kind kind)
{
    static const char *const names[QN_DECOMP_COUNT] = {"plain", "gzip", "bzip2",
                                                       "xz",    "zstd", "lz4"};
    return (unsigned)kind < QN_DECOMP_COUNT ? names[kind] : "unknown";
}

/* ---- the compressed bytes -------------------------------------------- */

__attribute__((format(printf, 5, 6))) static int s_fail(const qn_decomp *d,
                                                        int code, char *err,
                                                        size_t cap,
                                                        const char *fmt, ...)
{
    char what[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    snprintf(err, cap, "%s: %s", d->name, what);
    return code;
}

/* The offset of the next compressed byte to be used. */
uint64_t qn_decomp_offset(const qn_decomp *d)
{
    return d->in_off + d->in_pos;
}

/* Is there a byte at size? 0 (and in_eof) if not. */
static int s_probe_end(qn_decomp *d, char *err, size_t cap)
{
    char c;
    for (;;) {
        ssize_t n = pread(d->fd, &c, 1, (off_t)d->size);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return s_fail(d, -errno, err, cap, "reading at offset %llu: %s",
                          (s_ull)d->size, strerror(errno));
        if (n > 0)
            return s_fail(d, -QN_ECORRUPT, err, cap,
                          "there are bytes at offset %llu, past its size of "
                          "%llu bytes when it was split (it grew while being "
                          "read)",
                          (s_ull)d->size, (s_ull)d->size);
        d->in_eof = 1;
        return 0;
    }
}

/* The next compressed bytes, once every one in the buffer is used. */
static int s_fill(qn_decomp *d, char *err, size_t cap)
{
    d->in_off += d->in_len;
    d->in_len = d->in_pos = 0;
    uint64_t left = d->size - d->in_off;
    if (left == 0)
        return s_probe_end(d, err, cap);
    size_t want = left < IN_CHUNK ? (size_t)left : IN_CHUNK;
    for (;;) {
        ssize_t n = pread(d->fd, d->in, want, (off_t)d->in_off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return s_fail(d, -errno, err, cap, "reading at offset %llu: %s",
                          (s_ull)d->in_off, strerror(errno));
        if (n == 0)
            return s_fail(d, -QN_ECORRUPT, err, cap,
                          "the file ends at offset %llu, short of its size of "
                          "%llu bytes when it was split (it shrank while "
                          "being read)",
                          (s_ull)d->in_off, (s_ull)d->size);
        d->in_len = (size_t)n;
        return d->in_off + d->in_len == d->size ? s_probe_end(d, err, cap) : 0;
    }
}

/* ---- each codec's step ------------------------------------------------ */

/*
 * A step decompresses from d->in[in_pos..in_len) into out (cap bytes),
 * advancing in_pos and *made; it sets d->boundary when a member or frame
 * ends there, and clears it when it begins one. 0 or an error (said).
 */

static int s_gzip(qn_decomp *d, unsigned char *out, size_t cap, size_t *made,
                  char *err, size_t errcap)
{
    if (d->boundary) {
        /* Only another member may follow one. */
        if (d->in[d->in_pos] != 0x1f)
            return s_fail(d, -QN_ECORRUPT, err, errcap,
                          "bytes follow the end of its gzip data at offset "
                          "%llu",
                          (s_ull)qn_decomp_offset(d));
        if (d->live && inflateReset(&d->z) != Z_OK)
            return s_fail(d, -ENOMEM, err, errcap, "cannot reset zlib");
        d->boundary = 0;
    }
    d->z.next_in = d->in + d->in_pos;
    d->z.avail_in = (uInt)(d->in_len - d->in_pos);
    d->z.next_out = out;
    d->z.avail_out = (uInt)cap;
    int rc = inflate(&d->z, Z_NO_FLUSH);
    d->in_pos = d->in_len - d->z.avail_in;
    *made = cap - d->z.avail_out;
    if (rc == Z_STREAM_END)
        d->boundary = 1;
    else if (rc == Z_MEM_ERROR)
        return s_fail(d, -ENOMEM, err, errcap, "out of memory for gzip");
    else if (rc != Z_OK && rc != Z_BUF_ERROR)
        return s_fail(d, -QN_ECORRUPT, err, errcap,
                      "its gzip data is damaged at offset %llu (%s)",
                      (s_ull)qn_decomp_offset(d),
                      d->z.msg ? d->z.msg : "bad data");
    return 0;
}

static int s_bzip2(qn_decomp *d, unsigned char *out, size_t cap, size_t *made,
                   char *err, size_t errcap)
{
    if (d->boundary) {
        /* pbzip2 and `cat` make files of several streams. */
        if (d->live)
            BZ2_bzDecompressEnd(&d->bz);
        memset(&d->bz, 0, sizeof d->bz);
        d->live = BZ2_bzDecompressInit(&d->bz, 0, 0) == BZ_OK;
        if (!d->live)
            return s_fail(d, -ENOMEM, err, errcap, "cannot start bzip2");
        d->boundary = 0;
    }
    d->bz.next_in = (char *)d->in + d->in_pos;
    d->bz.avail_in = (unsigned)(d->in_len - d->in_pos);
    d->bz.next_out = (char *)out;
    d->bz.avail_out = (unsigned)cap;
    int rc = BZ2_bzDecompress(&d->bz);
    d->in_pos = d->in_len - d->bz.avail_in;
    *made = cap - d->bz.avail_out;
    if (rc == BZ_STREAM_END)
        d->boundary = 1;
    else if (rc == BZ_MEM_ERROR)
        return s_fail(d, -ENOMEM, err, errcap, "out of memory for bzip2");
    else if (rc == BZ_DATA_ERROR_MAGIC)
        return s_fail(d, -QN_ECORRUPT, err, errcap,
                      "bytes follow the end of its bzip2 data at offset %llu",
                      (s_ull)qn_decomp_offset(d));
    else if (rc != BZ_OK)
        return s_fail(d, -QN_ECORRUPT, err, errcap,
                      "its bzip2 data is damaged at offset %llu (error %d)",
                      (s_ull)qn_decomp_offset(d), rc);
    return 0;
}

static int s_xz(qn_decomp *d, unsigned char *out, size_t cap, size_t *made,
                char *err, size_t errcap)
{
    /* liblzma follows concatenated streams and their padding itself; it
     * knows the end only when told there is no more input. */
    d->boundary = 0;
    d->xz.next_in = d->in + d->in_pos;
    d->xz.avail_in = d->in_len - d->in_pos;
    d->xz.next_out = out;
    d->xz.avail_out = cap;
    int last = d->in_eof; /* the buffer holds the file's last bytes */
    lzma_ret rc = lzma_code(&d->xz, last ? LZMA_FINISH : LZMA_RUN);
    d->in_pos = d->in_len - d->xz.avail_in;
    *made = cap - d->xz.avail_out;
    if (rc == LZMA_STREAM_END) {
        d->boundary = 1;
        return 0;
    }
    if (rc == LZMA_OK || (rc == LZMA_BUF_ERROR && !last))
        return 0;
    if (rc == LZMA_MEM_ERROR)
        return s_fail(d, -ENOMEM, err, errcap, "out of memory for xz");
    if (rc == LZMA_MEMLIMIT_ERROR)
        return s_fail(d, -QN_ETOOBIG, err, errcap,
                      "its xz data at offset %llu needs more than %d MiB to "
                      "decompress",
                      (s_ull)qn_decomp_offset(d), XZ_MEMLIMIT >> 20);
    if (rc == LZMA_BUF_ERROR)
        return s_fail(d, -QN_ECORRUPT, err, errcap,
                      "its xz data is cut short at offset %llu (the file is "
                      "truncated)",
                      (s_ull)qn_decomp_offset(d));
    return s_fail(d, -QN_ECORRUPT, err, errcap,
                  "its xz data is damaged at offset %llu (error %d)",
                  (s_ull)qn_decomp_offset(d), (int)rc);
}

static int s_zstd(qn_decomp *d, unsigned char *out, size_t cap, size_t *made,
                  char *err, size_t errcap)
{
    ZSTD_inBuffer in = {d->in + d->in_pos, d->in_len - d->in_pos, 0};
    ZSTD_outBuffer o = {out, cap, 0};
    size_t rc = ZSTD_decompressStream(d->zs, &o, &in);
    d->in_pos += in.pos;
    *made = o.pos;
    if (ZSTD_isError(rc))
        return s_fail(d, -QN_ECORRUPT, err, errcap,
                      "its zstd data is damaged at or after offset %llu (%s)",
                      (s_ull)qn_decomp_offset(d), ZSTD_getErrorName(rc));
    /* 0: a frame is decoded and flushed; the next bytes begin another. */
    d->boundary = rc == 0;
    return 0;
}

static int s_lz4(qn_decomp *d, unsigned char *out, size_t cap, size_t *made,
                 char *err, size_t errcap)
{
    size_t src = d->in_len - d->in_pos, dst = cap;
    size_t rc =
        LZ4F_decompress(d->lz4, out, &dst, d->in + d->in_pos, &src, NULL);
    d->in_pos += src;
    *made = dst;
    if (LZ4F_isError(rc))
        return s_fail(d, -QN_ECORRUPT, err, errcap,
                      "its lz4 data is damaged at or after offset %llu (%s)",
                      (s_ull)qn_decomp_offset(d), LZ4F_getErrorName(rc));
    d->boundary = rc == 0;
    return 0;
}

/* ---- the reader ------------------------------------------------------- */

qn_decomp *qn_decomp_new(qn_decomp_kind kind, int fd, uint64_t size,
                         const char *name, char *err, size_t errcap)
{
    qn_decomp *d = calloc(1, sizeof *d);
    if (!d) {
        snprintf(err, errcap, "%s: out of memory", name);
        return NULL;
    }
    d->kind = kind;
    d->fd = fd;
    d->size = size;
    d->name = qn_strdup(name);
    d->in = qn_malloc(IN_CHUNK);
    d->boundary = 1; /* no member begun: an empty file is no stream */
    int ok = 0;
    lzma_stream xz = LZMA_STREAM_INIT;
    switch (kind) {
    case QN_DECOMP_GZIP:
        /* 16 + 15: gzip's header and trailer, the largest window. */
        ok = d->live = inflateInit2(&d->z, 16 + 15) == Z_OK;
        break;
    case QN_DECOMP_BZIP2: ok = 1; break; /* begun at each stream */
    case QN_DECOMP_XZ:
        d->xz = xz;
        ok = lzma_stream_decoder(&d->xz, XZ_MEMLIMIT, LZMA_CONCATENATED) ==
             LZMA_OK;
        d->live = ok;
        break;
    case QN_DECOMP_ZSTD: ok = (d->zs = ZSTD_createDStream()) != NULL; break;
    case QN_DECOMP_LZ4:
        ok = !LZ4F_isError(
            LZ4F_createDecompressionContext(&d->lz4, LZ4F_VERSION));
        break;
    default: break;
    }
    if (!ok) {
        snprintf(err, errcap, "%s: cannot start reading it as %s", name,
                 qn_decomp_name(kind));
        qn_decomp_destroy(&d);
    }
    return d;
}

ssize_t qn_decomp_read(qn_decomp *d, void *buf, size_t cap, char *err,
                       size_t errcap)
{
    if (cap == 0)
        return s_fail(d, -EINVAL, err, errcap, "no room to read into");
    if (d->ended)
        return 0;
    if (cap > (1u << 30))
        cap = 1u << 30; /* the codecs count in unsigned int */
    for (;;) {
        int rc;
        if (d->in_pos == d->in_len && !d->in_eof &&
            (rc = s_fill(d, err, errcap)) < 0)
            return rc;
        int drained = d->in_eof && d->in_pos == d->in_len;
        if (drained && d->boundary && d->kind != QN_DECOMP_XZ) {
            if (d->in_off + d->in_len == 0)
                return s_fail(d, -QN_ECORRUPT, err, errcap,
                              "it is empty, not %s data",
                              qn_decomp_name(d->kind));
            d->ended = 1;
            return 0;
        }
        size_t made = 0, pos = d->in_pos;
        switch (d->kind) {
        case QN_DECOMP_GZIP:
            rc = s_gzip(d, buf, cap, &made, err, errcap);
            break;
        case QN_DECOMP_BZIP2:
            rc = s_bzip2(d, buf, cap, &made, err, errcap);
            break;
        case QN_DECOMP_XZ: rc = s_xz(d, buf, cap, &made, err, errcap); break;
        case QN_DECOMP_ZSTD:
            rc = s_zstd(d, buf, cap, &made, err, errcap);
            break;
        default: rc = s_lz4(d, buf, cap, &made, err, errcap); break;
        }
        if (rc < 0)
            return rc;
        if (made > 0)
            return (ssize_t)made;
        if (d->kind == QN_DECOMP_XZ && d->boundary) {
            d->ended = 1;
            return 0;
        }
        /* Nothing made: the step wants more input, which must exist. */
        if (drained && !d->boundary)
            return s_fail(d, -QN_ECORRUPT, err, errcap,
                          "its %s data is cut short at offset %llu (the "
                          "file is truncated)",
                          qn_decomp_name(d->kind), (s_ull)d->size);
        if (d->in_pos == pos && d->in_pos < d->in_len && !d->boundary)
            return s_fail(d, -QN_ECORRUPT, err, errcap,
                          "its %s data makes no progress at offset %llu",
                          qn_decomp_name(d->kind), (s_ull)qn_decomp_offset(d));
    }
}

void qn_decomp_destroy(qn_decomp **self_p)
{
    qn_decomp *d = *self_p;
    if (!d)
        return;
    if (d->live && d->kind == QN_DECOMP_GZIP)
        inflateEnd(&d->z);
    if (d->live && d->kind == QN_DECOMP_BZIP2)
        BZ2_bzDecompressEnd(&d->bz);
    if (d->live && d->kind == QN_DECOMP_XZ)
        lzma_end(&d->xz);
    ZSTD_freeDStream(d->zs);
    if (d->lz4)
        LZ4F_freeDecompressionContext(d->lz4);
    free(d->in);
    free(d->name);
    free(d);
    *self_p = NULL;
}
