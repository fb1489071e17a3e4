/*
 * compress.c -- see compress.h.
 *
 * Every codec writes through one output buffer: a step compresses some
 * input into it, and a full buffer goes to the file. lz4's frame API
 * wants room for a whole step's worst case, so its input goes in pieces
 * of LZ4_PIECE bytes.
 */
#include "compress.h"

#include "util.h"

#include <bzlib.h>
#include <errno.h>
#include <lz4frame.h>
#include <lzma.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>
#include <zstd.h>

#define OUT_CAP (256 * 1024) /* compressed bytes per write */
#define LZ4_PIECE (64 * 1024)

struct qn_compress {
    int kind;
    int fd;
    unsigned char *out;
    size_t out_cap, out_len;
    z_stream z;
    bz_stream bz;
    lzma_stream xz;
    ZSTD_CCtx *zs;
    LZ4F_cctx *lz4;
    LZ4F_preferences_t lz4_prefs;
    int live; /* z, bz or xz holds an initialised state */
};

static const struct {
    const char *name, *ext;
} s_kinds[QN_DECOMP_COUNT] = {
    [QN_DECOMP_PLAIN] = {"none", ""},      [QN_DECOMP_GZIP] = {"gzip", ".gz"},
    [QN_DECOMP_BZIP2] = {"bzip2", ".bz2"}, [QN_DECOMP_XZ] = {"xz", ".xz"},
    [QN_DECOMP_ZSTD] = {"zstd", ".zst"},   [QN_DECOMP_LZ4] = {"lz4", ".lz4"},
};

int qn_compress_parse(const char *name, char *why, size_t cap)
{
    for (int k = 0; k < QN_DECOMP_COUNT; k++)
        if (strcmp(name, s_kinds[k].name) == 0)
            return k;
    snprintf(why, cap, "'%s' is not gzip, zstd, bzip2, xz, lz4 or none", name);
    return -1;
}

const char *qn_compress_ext(int kind)
{
    return kind > 0 && kind < QN_DECOMP_COUNT ? s_kinds[kind].ext : "";
}

/* The output buffer to the file, emptied. 0 or -errno. */
static int s_drain(qn_compress *c)
{
    int rc = qn_write_all(c->fd, c->out, c->out_len);
    c->out_len = 0;
    return rc;
}

/*
 * One codec's work on len bytes (none, and end set, to finish): its
 * output into the buffer, drained whenever full. 0 or a negative error.
 */
static int s_zlib(qn_compress *c, const void *data, size_t len, int end)
{
    c->z.next_in = (Bytef *)data;
    c->z.avail_in = (uInt)len;
    for (;;) {
        c->z.next_out = c->out + c->out_len;
        c->z.avail_out = (uInt)(c->out_cap - c->out_len);
        int rc = deflate(&c->z, end ? Z_FINISH : Z_NO_FLUSH);
        c->out_len = c->out_cap - c->z.avail_out;
        if (rc == Z_STREAM_ERROR)
            return -EINVAL;
        if (end && rc == Z_STREAM_END)
            return 0;
        if (!end && c->z.avail_in == 0 && c->z.avail_out > 0)
            return 0;
        if (c->z.avail_out == 0 && (rc = s_drain(c)) < 0)
            return rc;
    }
}

static int s_bzip2(qn_compress *c, const void *data, size_t len, int end)
{
    c->bz.next_in = (char *)data;
    c->bz.avail_in = (unsigned)len;
    for (;;) {
        c->bz.next_out = (char *)c->out + c->out_len;
        c->bz.avail_out = (unsigned)(c->out_cap - c->out_len);
        int rc = BZ2_bzCompress(&c->bz, end ? BZ_FINISH : BZ_RUN);
        c->out_len = c->out_cap - c->bz.avail_out;
        if (rc < 0)
            return rc == BZ_MEM_ERROR ? -ENOMEM : -EINVAL;
        if (end && rc == BZ_STREAM_END)
            return 0;
        if (c->bz.avail_out == 0 && (rc = s_drain(c)) < 0)
            return rc;
        /* Never BZ_RUN with nothing to take: libbz2 calls that an error
         * (BZ_PARAM_ERROR), as when a block just filled the buffer. */
        if (!end && c->bz.avail_in == 0)
            return 0;
    }
}

static int s_xz(qn_compress *c, const void *data, size_t len, int end)
{
    c->xz.next_in = data;
    c->xz.avail_in = len;
    for (;;) {
        c->xz.next_out = c->out + c->out_len;
        c->xz.avail_out = c->out_cap - c->out_len;
        lzma_ret rc = lzma_code(&c->xz, end ? LZMA_FINISH : LZMA_RUN);
        c->out_len = c->out_cap - c->xz.avail_out;
        if (rc != LZMA_OK && rc != LZMA_STREAM_END)
            return rc == LZMA_MEM_ERROR ? -ENOMEM : -EINVAL;
        if (end && rc == LZMA_STREAM_END)
            return 0;
        if (!end && c->xz.avail_in == 0 && c->xz.avail_out > 0)
            return 0;
        int e;
        if (c->xz.avail_out == 0 && (e = s_drain(c)) < 0)
            return e;
    }
}

static int s_zstd(qn_compress *c, const void *data, size_t len, int end)
{
    ZSTD_inBuffer in = {data, len, 0};
    for (;;) {
        ZSTD_outBuffer o = {c->out, c->out_cap, c->out_len};
        size_t left = ZSTD_compressStream2(c->zs, &o, &in,
                                           end ? ZSTD_e_end : ZSTD_e_continue);
        c->out_len = o.pos;
        if (ZSTD_isError(left))
            return -EINVAL;
        if (end ? left == 0 : in.pos == in.size && o.pos < o.size)
            return 0;
        int e;
        if (o.pos == o.size && (e = s_drain(c)) < 0)
            return e;
    }
}

static int s_lz4(qn_compress *c, const void *data, size_t len, int end)
{
    const char *p = data;
    int e;
    while (len > 0 || end) {
        size_t n = len < LZ4_PIECE ? len : LZ4_PIECE;
        size_t need = LZ4F_compressBound(n, &c->lz4_prefs);
        if (c->out_cap - c->out_len < need && (e = s_drain(c)) < 0)
            return e;
        size_t made =
            end && len == 0
                ? LZ4F_compressEnd(c->lz4, c->out + c->out_len,
                                   c->out_cap - c->out_len, NULL)
                : LZ4F_compressUpdate(c->lz4, c->out + c->out_len,
                                      c->out_cap - c->out_len, p, n, NULL);
        if (LZ4F_isError(made))
            return -EINVAL;
        c->out_len += made;
        if (end && len == 0)
            return 0;
        p += n;
        len -= n;
    }
    return 0;
}

static int s_step(qn_compress *c, const void *data, size_t len, int end)
{
    switch (c->kind) {
    case QN_DECOMP_GZIP: return s_zlib(c, data, len, end);
    case QN_DECOMP_BZIP2: return s_bzip2(c, data, len, end);
    case QN_DECOMP_XZ: return s_xz(c, data, len, end);
    case QN_DECOMP_ZSTD: return s_zstd(c, data, len, end);
    default: return s_lz4(c, data, len, end);
    }
}

qn_compress *qn_compress_new(int kind, int fd, char *err, size_t errcap)
{
    if (kind <= QN_DECOMP_PLAIN || kind >= QN_DECOMP_COUNT) {
        snprintf(err, errcap, "no output codec %d", kind);
        return NULL;
    }
    qn_compress *c = qn_calloc(1, sizeof *c);
    c->kind = kind;
    c->fd = fd;
    c->out_cap = OUT_CAP;
    int ok = 0;
    switch (kind) {
    case QN_DECOMP_GZIP:
        ok = c->live = deflateInit2(&c->z, 6, Z_DEFLATED, 16 + 15, 8,
                                    Z_DEFAULT_STRATEGY) == Z_OK;
        break;
    case QN_DECOMP_BZIP2:
        ok = c->live = BZ2_bzCompressInit(&c->bz, 9, 0, 0) == BZ_OK;
        break;
    case QN_DECOMP_XZ:
        c->xz = (lzma_stream)LZMA_STREAM_INIT;
        ok = c->live =
            lzma_easy_encoder(&c->xz, 6, LZMA_CHECK_CRC64) == LZMA_OK;
        break;
    case QN_DECOMP_ZSTD:
        /* With the checksum, as the zstd tool writes it. */
        ok = (c->zs = ZSTD_createCCtx()) != NULL &&
             !ZSTD_isError(
                 ZSTD_CCtx_setParameter(c->zs, ZSTD_c_compressionLevel, 1)) &&
             !ZSTD_isError(
                 ZSTD_CCtx_setParameter(c->zs, ZSTD_c_checksumFlag, 1));
        break;
    default:
        c->lz4_prefs.frameInfo.contentChecksumFlag =
            LZ4F_contentChecksumEnabled;
        c->out_cap = LZ4F_compressBound(LZ4_PIECE, &c->lz4_prefs) + OUT_CAP;
        ok =
            !LZ4F_isError(LZ4F_createCompressionContext(&c->lz4, LZ4F_VERSION));
        break;
    }
    c->out = qn_malloc(c->out_cap);
    if (ok && kind == QN_DECOMP_LZ4) {
        size_t h =
            LZ4F_compressBegin(c->lz4, c->out, c->out_cap, &c->lz4_prefs);
        ok = !LZ4F_isError(h);
        c->out_len = ok ? h : 0;
    }
    if (!ok) {
        snprintf(err, errcap, "cannot start a %s stream (out of memory?)",
                 s_kinds[kind].name);
        qn_compress_destroy(&c);
    }
    return c;
}

int qn_compress_write(qn_compress *c, const void *data, size_t len)
{
    /* zlib and bzip2 count in unsigned int. */
    const char *p = data;
    while (len > 0) {
        size_t n = len < (1u << 30) ? len : (1u << 30);
        int rc = s_step(c, p, n, 0);
        if (rc < 0)
            return rc;
        p += n;
        len -= n;
    }
    return 0;
}

int qn_compress_finish(qn_compress *c)
{
    int rc = s_step(c, NULL, 0, 1);
    return rc < 0 ? rc : s_drain(c);
}

void qn_compress_destroy(qn_compress **self_p)
{
    qn_compress *c = *self_p;
    if (!c)
        return;
    if (c->live && c->kind == QN_DECOMP_GZIP)
        deflateEnd(&c->z);
    if (c->live && c->kind == QN_DECOMP_BZIP2)
        BZ2_bzCompressEnd(&c->bz);
    if (c->live && c->kind == QN_DECOMP_XZ)
        lzma_end(&c->xz);
    ZSTD_freeCCtx(c->zs);
    if (c->lz4)
        LZ4F_freeCompressionContext(c->lz4);
    free(c->out);
    free(c);
    *self_p = NULL;
}
