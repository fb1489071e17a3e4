/*
 * codec.c -- see codec.h.
 */
#include "codec.h"

#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

struct qn_codec {
    int id;        /* codec blocks are written with */
    int level;     /* compression level */
    int deflating; /* def is initialised */
    int inflating; /* inf is initialised */
    z_stream def;  /* reused across blocks: deflateReset, not re-init */
    z_stream inf;
};

int qn_codec_parse(const char *name, char *why, size_t cap)
{
    if (strcmp(name, "zlib") == 0)
        return QN_CODEC_ZLIB;
    if (strcmp(name, "none") == 0)
        return QN_CODEC_NONE;
    snprintf(why, cap, "unknown codec '%s': supported codecs are zlib, none",
             name);
    return -1;
}

const char *qn_codec_name(int id)
{
    switch (id) {
    case QN_CODEC_NONE: return "none";
    case QN_CODEC_ZLIB: return "zlib";
    default: return "unknown";
    }
}

qn_codec *qn_codec_new(int id, int level)
{
    if ((id != QN_CODEC_NONE && id != QN_CODEC_ZLIB) || level < 0 || level > 9)
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
    free(c);
    *self_p = NULL;
}

int qn_codec_id(const qn_codec *c)
{
    return c->id;
}

size_t qn_codec_bound(const qn_codec *c, size_t n)
{
    if (c->id == QN_CODEC_NONE)
        return n;
    return compressBound((uLong)n);
}

long qn_codec_compress(qn_codec *c, const void *src, size_t n, void *dst,
                       size_t cap)
{
    if (c->id == QN_CODEC_NONE) {
        if (cap < n)
            return -QN_EFULL;
        memcpy(dst, src, n);
        return (long)n;
    }
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

int qn_codec_decompress(qn_codec *c, int id, const void *src, size_t n,
                        void *dst, size_t raw)
{
    if (id == QN_CODEC_NONE) {
        if (n != raw)
            return -QN_ECORRUPT;
        memcpy(dst, src, n);
        return 0;
    }
    if (id != QN_CODEC_ZLIB)
        return -QN_ECORRUPT;
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
