/*
 * codec.c -- see codec.h.
 *
 * Every codec's state is made on first use and kept for the codec's life, so
 * a stream of blocks pays for its allocations once. Decompression is strict:
 * a block must decode to exactly the raw size its header claims and use all
 * of its bytes, or it is corrupt. The block's CRC32 is not computed here:
 * ifile.c checks it over the header and the stored bytes before decoding.
 */
#include "codec.h"

#include "util.h"

#include <errno.h>
#include <limits.h>
#include <lz4.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>
#include <zstd.h>
#include <zstd_errors.h>

struct qn_codec {
    int id;        /* codec blocks are written with */
    int level;     /* compression level */
    int deflating; /* def is initialised */
    int inflating; /* inf is initialised */
    z_stream def;  /* reused across blocks: deflateReset, not re-init */
    z_stream inf;
    void *lz4;     /* LZ4_compress_fast_extState's hash table, or NULL */
    ZSTD_CCtx *zc; /* zstd compression context, or NULL */
    ZSTD_DCtx *zd; /* zstd decompression context, or NULL */
};

/* The names users give, indexed by id. */
static const char *const s_names[QN_CODEC_COUNT] = {
    [QN_CODEC_NONE] = "none",
    [QN_CODEC_ZLIB] = "zlib",
    [QN_CODEC_LZ4] = "lz4",
    [QN_CODEC_ZSTD] = "zstd",
};

int qn_codec_parse(const char *name, char *why, size_t cap)
{
    for (int id = 0; id < QN_CODEC_COUNT; id++)
        if (strcmp(name, s_names[id]) == 0)
            return id;
    snprintf(why, cap,
             "unknown codec '%s': supported codecs are zlib, lz4, zstd, none",
             name);
    return -1;
}

const char *qn_codec_name(int id)
{
    if (id < 0 || id >= QN_CODEC_COUNT)
        return "unknown";
    return s_names[id];
}

qn_codec *qn_codec_new(int id, int level)
{
    if (id < 0 || id >= QN_CODEC_COUNT || level < 0 || level > 9)
        return NULL;
    qn_codec *c = qn_calloc(1, sizeof *c);
    c->id = level == 0 ? QN_CODEC_NONE : id;
    c->level = level;
    return c;
}

void qn_codec_destroy(qn_codec **self_p)
{
    qn_codec *c = *self_p;
    if (!c)
        return;
    if (c->deflating)
        deflateEnd(&c->def);
    if (c->inflating)
        inflateEnd(&c->inf);
    free(c->lz4);
    ZSTD_freeCCtx(c->zc);
    ZSTD_freeDCtx(c->zd);
    free(c);
    *self_p = NULL;
}

int qn_codec_id(const qn_codec *c)
{
    return c->id;
}

size_t qn_codec_bound(const qn_codec *c, size_t n)
{
    switch (c->id) {
    case QN_CODEC_ZLIB: return compressBound((uLong)n);
    /* LZ4_compressBound() says 0 past LZ4_MAX_INPUT_SIZE; the formula
     * still holds there, and compressing such a block fails anyway. */
    case QN_CODEC_LZ4: return n + n / 255 + 16;
    case QN_CODEC_ZSTD: return ZSTD_compressBound(n);
    default: return n;
    }
}

/* ---- compression --------------------------------------------------------- */

static long s_deflate(qn_codec *c, const void *src, size_t n, void *dst,
                      size_t cap)
{
    if (!c->deflating) {
        /* Raw deflate (negative window bits): the block header carries
         * its own CRC32, so zlib's adler32 trailer would be redundant. */
        if (deflateInit2(&c->def, c->level, Z_DEFLATED, -15, 8,
                         Z_DEFAULT_STRATEGY) != Z_OK)
            return -QN_ECORRUPT;
        c->deflating = 1;
    } else if (deflateReset(&c->def) != Z_OK) {
        return -QN_ECORRUPT;
    }
    c->def.next_in = (Bytef *)src;
    c->def.avail_in = (uInt)n;
    c->def.next_out = dst;
    c->def.avail_out = (uInt)cap;
    int rc = deflate(&c->def, Z_FINISH);
    if (rc != Z_STREAM_END)
        return -QN_EFULL;
    return (long)(cap - c->def.avail_out);
}

/*
 * LZ4's fast mode has one knob, acceleration, and it only trades ratio for
 * speed: 1 (the library default) already gives the best ratio fast mode can.
 * So every level from 1 to 9 uses acceleration 1; a higher level cannot buy
 * a smaller block here (that would take LZ4 HC, which is far slower).
 */
static long s_lz4(qn_codec *c, const void *src, size_t n, void *dst, size_t cap)
{
    if (n > LZ4_MAX_INPUT_SIZE)
        return -QN_ETOOBIG;
    if (!c->lz4)
        c->lz4 = qn_malloc((size_t)LZ4_sizeofState());
    int room = cap > INT_MAX ? INT_MAX : (int)cap;
    int m = LZ4_compress_fast_extState(c->lz4, src, dst, (int)n, room, 1);
    return m > 0 ? (long)m : -QN_EFULL;
}

static long s_zstd(qn_codec *c, const void *src, size_t n, void *dst,
                   size_t cap)
{
    if (!c->zc && !(c->zc = ZSTD_createCCtx()))
        return -ENOMEM;
    size_t m = ZSTD_compressCCtx(c->zc, dst, cap, src, n, c->level);
    if (!ZSTD_isError(m))
        return (long)m;
    switch (ZSTD_getErrorCode(m)) {
    case ZSTD_error_dstSize_tooSmall: return -QN_EFULL;
    case ZSTD_error_memory_allocation: return -ENOMEM;
    default: return -QN_ETOOBIG; /* the input is more than zstd takes */
    }
}

long qn_codec_compress(qn_codec *c, const void *src, size_t n, void *dst,
                       size_t cap)
{
    switch (c->id) {
    case QN_CODEC_ZLIB: return s_deflate(c, src, n, dst, cap);
    case QN_CODEC_LZ4: return s_lz4(c, src, n, dst, cap);
    case QN_CODEC_ZSTD: return s_zstd(c, src, n, dst, cap);
    default:
        if (cap < n)
            return -QN_EFULL;
        memcpy(dst, src, n);
        return (long)n;
    }
}

/* ---- decompression ------------------------------------------------------- */

static int s_inflate(qn_codec *c, const void *src, size_t n, void *dst,
                     size_t raw)
{
    if (!c->inflating) {
        if (inflateInit2(&c->inf, -15) != Z_OK)
            return -QN_ECORRUPT;
        c->inflating = 1;
    } else if (inflateReset(&c->inf) != Z_OK) {
        return -QN_ECORRUPT;
    }
    c->inf.next_in = (Bytef *)src;
    c->inf.avail_in = (uInt)n;
    c->inf.next_out = dst;
    c->inf.avail_out = (uInt)raw;
    int rc = inflate(&c->inf, Z_FINISH);
    if (rc != Z_STREAM_END || c->inf.avail_out != 0 || c->inf.avail_in != 0)
        return -QN_ECORRUPT;
    return 0;
}

/*
 * LZ4_decompress_safe never reads past n bytes nor writes past raw, and it
 * fails unless the last sequence ends exactly at the end of the input.
 */
static int s_unlz4(const void *src, size_t n, void *dst, size_t raw)
{
    if (n > INT_MAX || raw > INT_MAX)
        return -QN_ECORRUPT;
    int m = LZ4_decompress_safe(src, dst, (int)n, (int)raw);
    return m >= 0 && (size_t)m == raw ? 0 : -QN_ECORRUPT;
}

/*
 * A zstd block is one frame and nothing else: skippable frames and trailing
 * bytes are refused before decoding. Decoding into a flat buffer uses dst as
 * the window, so a hostile window size in the frame header allocates nothing.
 */
static int s_unzstd(qn_codec *c, const void *src, size_t n, void *dst,
                    size_t raw)
{
    if (ZSTD_findFrameCompressedSize(src, n) != n)
        return -QN_ECORRUPT;
    unsigned long long want = ZSTD_getFrameContentSize(src, n);
    if (want != ZSTD_CONTENTSIZE_UNKNOWN && want != raw)
        return -QN_ECORRUPT;
    if (!c->zd && !(c->zd = ZSTD_createDCtx()))
        return -ENOMEM;
    size_t m = ZSTD_decompressDCtx(c->zd, dst, raw, src, n);
    return !ZSTD_isError(m) && m == raw ? 0 : -QN_ECORRUPT;
}

int qn_codec_decompress(qn_codec *c, int id, const void *src, size_t n,
                        void *dst, size_t raw)
{
    switch (id) {
    case QN_CODEC_NONE:
        if (n != raw)
            return -QN_ECORRUPT;
        memcpy(dst, src, n);
        return 0;
    case QN_CODEC_ZLIB: return s_inflate(c, src, n, dst, raw);
    case QN_CODEC_LZ4: return s_unlz4(src, n, dst, raw);
    case QN_CODEC_ZSTD: return s_unzstd(c, src, n, dst, raw);
    default: return -QN_ECORRUPT;
    }
}
