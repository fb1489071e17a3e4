/*
 * ifile.c -- block streams and intermediate files; see ifile.h for the
 * format.
 */

#include "ifile.h"

#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

/* A fuzzing build takes any CRC, so that the fuzzer reaches the parsing
 * the CRCs guard (make fuzz); never defined in a real build. */
#ifdef FUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION
#define CRC_OK(got, want) ((void)(got), (void)(want), 1)
#else
#define CRC_OK(got, want) ((got) == (want))
#endif

#define BLOCK_MAGIC 0x314B4251u  /* "QBK1" little-endian */
#define FOOTER_MAGIC 0x31464951u /* "QIF1" */
#define FOOTER_SIZE 32
#define INDEX_ENTRY 32
#define FORMAT_VERSION 1
#define MAX_PARTS (1u << 20)
#define OUT_CHUNK (1024 * 1024) /* bytes buffered before a write() */
#define READ_AHEAD (128 * 1024) /* bytes a reader asks the kernel for */

/* ---- little-endian integers and varints ---------------------------------- */

static void s_put32(unsigned char *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

static void s_put64(unsigned char *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

static uint32_t s_get32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
           (uint32_t)p[3] << 24;
}

static uint64_t s_get64(const unsigned char *p)
{
    return (uint64_t)s_get32(p) | (uint64_t)s_get32(p + 4) << 32;
}

size_t qn_varint_put(unsigned char *p, uint64_t v)
{
    size_t n = 0;
    while (v >= 0x80) {
        p[n++] = (unsigned char)(v | 0x80);
        v >>= 7;
    }
    p[n++] = (unsigned char)v;
    return n;
}

size_t qn_varint_get(const unsigned char *p, size_t n, uint64_t *v)
{
    uint64_t r = 0;
    for (size_t i = 0; i < n && i < 10; i++) {
        r |= (uint64_t)(p[i] & 0x7f) << (7 * i);
        if (!(p[i] & 0x80)) {
            *v = r;
            return i + 1;
        }
    }
    return 0;
}

int qn_key_cmp(const void *a, size_t alen, const void *b, size_t blen)
{
    size_t n = alen < blen ? alen : blen;
    int c = n ? memcmp(a, b, n) : 0;
    if (c)
        return c;
    return alen < blen ? -1 : alen > blen;
}

/* ---- block header -------------------------------------------------------- */

typedef struct {
    int codec;
    uint32_t raw_len, stored_len, records, crc;
} s_header;

/*
 * Parse and sanity-check a block header. Returns NULL or a static string
 * saying what is wrong.
 */
static const char *s_header_parse(const unsigned char *p, s_header *h)
{
    if (s_get32(p) != BLOCK_MAGIC)
        return "bad block magic";
    h->codec = p[4];
    if (p[5] || p[6] || p[7])
        return "bad block header";
    h->raw_len = s_get32(p + 8);
    h->stored_len = s_get32(p + 12);
    h->records = s_get32(p + 16);
    h->crc = s_get32(p + 20);
    if (h->codec >= QN_CODEC_COUNT)
        return "unknown block codec";
    if (h->raw_len == 0 || h->raw_len > QN_BLOCK_MAX ||
        h->stored_len > QN_BLOCK_MAX || h->records == 0 ||
        h->records > h->raw_len / 2)
        return "impossible block lengths";
    return NULL;
}

static uint32_t s_block_crc(const unsigned char *header, const void *payload,
                            size_t len)
{
    uLong crc = crc32(0L, header, 20);
    return (uint32_t)crc32(crc, payload, (uInt)len);
}

/* ---- block writer -------------------------------------------------------- */

struct qn_blockwriter {
    int fd;
    qn_codec *codec;
    unsigned char *raw; /* the block being filled */
    size_t raw_len, raw_cap;
    uint32_t raw_records;
    unsigned char *out; /* finished blocks not yet written */
    size_t out_len, out_cap;
    qn_range totals;
};

qn_blockwriter *qn_blockwriter_new(int fd, qn_codec *c)
{
    qn_blockwriter *w = qn_calloc(1, sizeof *w);
    w->fd = fd;
    w->codec = c;
    off_t pos = lseek(fd, 0, SEEK_CUR);
    w->totals.offset = pos > 0 ? (uint64_t)pos : 0;
    w->raw_cap = QN_BLOCK_TARGET + 64;
    w->raw = qn_malloc(w->raw_cap);
    return w;
}

static int s_write_out(qn_blockwriter *w)
{
    int rc = qn_write_all(w->fd, w->out, w->out_len);
    w->out_len = 0;
    return rc;
}

static int s_end_block(qn_blockwriter *w)
{
    if (w->raw_len == 0)
        return 0;
    size_t need = QN_BLOCK_HEADER + qn_codec_bound(w->codec, w->raw_len);
    if (w->out_cap - w->out_len < need) {
        if (w->out_len) {
            int rc = s_write_out(w);
            if (rc < 0)
                return rc;
        }
        if (w->out_cap < need) {
            w->out_cap = need > OUT_CHUNK ? need : OUT_CHUNK + need;
            free(w->out);
            w->out = qn_malloc(w->out_cap);
        }
    }
    unsigned char *h = w->out + w->out_len;
    long n =
        qn_codec_compress(w->codec, w->raw, w->raw_len, h + QN_BLOCK_HEADER,
                          w->out_cap - w->out_len - QN_BLOCK_HEADER);
    if (n < 0)
        return (int)n;
    int codec = qn_codec_id(w->codec);
    if ((size_t)n >= w->raw_len) {
        /* Incompressible: store it, which also keeps the block within
         * QN_BLOCK_MAX and makes it cheaper to read. */
        memcpy(h + QN_BLOCK_HEADER, w->raw, w->raw_len);
        n = (long)w->raw_len;
        codec = QN_CODEC_NONE;
    }
    s_put32(h, BLOCK_MAGIC);
    h[4] = (unsigned char)codec;
    h[5] = h[6] = h[7] = 0;
    s_put32(h + 8, (uint32_t)w->raw_len);
    s_put32(h + 12, (uint32_t)n);
    s_put32(h + 16, w->raw_records);
    s_put32(h + 20, s_block_crc(h, h + QN_BLOCK_HEADER, (size_t)n));
    w->out_len += QN_BLOCK_HEADER + (size_t)n;
    w->totals.length += QN_BLOCK_HEADER + (uint64_t)n;
    w->totals.raw += w->raw_len;
    w->totals.records += w->raw_records;
    w->raw_len = 0;
    w->raw_records = 0;
    if (w->out_len >= OUT_CHUNK)
        return s_write_out(w);
    return 0;
}

int qn_blockwriter_add(qn_blockwriter *w, const void *key, size_t klen,
                       const void *val, size_t vlen)
{
    if (klen > QN_RECORD_MAX || vlen > QN_RECORD_MAX - klen)
        return -QN_ETOOBIG;
    size_t need = 20 + klen + vlen;
    if (w->raw_len && w->raw_len + need > QN_BLOCK_TARGET) {
        int rc = s_end_block(w);
        if (rc < 0)
            return rc;
    }
    if (w->raw_cap - w->raw_len < need) {
        w->raw_cap = w->raw_len + need;
        w->raw = qn_realloc(w->raw, w->raw_cap);
    }
    unsigned char *p = w->raw + w->raw_len;
    p += qn_varint_put(p, klen);
    p += qn_varint_put(p, vlen);
    if (klen)
        memcpy(p, key, klen);
    p += klen;
    if (vlen)
        memcpy(p, val, vlen);
    p += vlen;
    w->raw_len = (size_t)(p - w->raw);
    w->raw_records++;
    if (w->raw_len >= QN_BLOCK_TARGET)
        return s_end_block(w);
    return 0;
}

int qn_blockwriter_end_block(qn_blockwriter *w)
{
    return s_end_block(w);
}

int qn_blockwriter_flush(qn_blockwriter *w)
{
    int rc = s_end_block(w);
    if (rc == 0 && w->out_len)
        rc = s_write_out(w);
    return rc;
}

qn_range qn_blockwriter_totals(const qn_blockwriter *w)
{
    return w->totals;
}

void qn_blockwriter_destroy(qn_blockwriter **self_p)
{
    qn_blockwriter *w = *self_p;
    if (!w)
        return;
    free(w->raw);
    free(w->out);
    free(w);
    *self_p = NULL;
}

/* ---- block reader -------------------------------------------------------- */

int qn_blockreader_init(qn_blockreader *r, int fd, const char *name,
                        uint64_t off, uint64_t len)
{
    memset(r, 0, sizeof *r);
    r->fd = fd;
    r->name = name;
    r->pos = off;
    r->end = off + len;
    r->io_pos = off;
    r->codec = qn_codec_new(QN_CODEC_ZLIB, 1);
    return r->codec ? 0 : -ENOMEM;
}

static int s_fail(qn_blockreader *r, uint64_t at, const char *what)
{
    snprintf(r->err, sizeof r->err, "%s: %s at byte %llu", r->name, what,
             (unsigned long long)at);
    r->failed = -QN_ECORRUPT;
    return r->failed;
}

/*
 * Make the read-ahead buffer hold file bytes [r->pos, r->pos + n); n never
 * reaches past r->end. Returns 0 or <0.
 */
static int s_fill(qn_blockreader *r, size_t n)
{
    if (r->pos >= r->io_pos && r->pos + n <= r->io_pos + r->io_len)
        return 0;
    /* Keep the bytes from pos on, move them to the front. */
    size_t keep = 0;
    if (r->pos >= r->io_pos && r->pos < r->io_pos + r->io_len) {
        keep = (size_t)(r->io_pos + r->io_len - r->pos);
        memmove(r->io, r->io + (r->pos - r->io_pos), keep);
    }
    r->io_pos = r->pos;
    r->io_len = keep;
    size_t want = n > READ_AHEAD ? n : READ_AHEAD;
    if (r->io_cap < want) {
        r->io = qn_realloc(r->io, want);
        r->io_cap = want;
    }
    uint64_t left = r->end - (r->io_pos + r->io_len);
    size_t room = r->io_cap - r->io_len;
    size_t ask = left < room ? (size_t)left : room;
    if (ask < n - keep)
        return s_fail(r, r->end, "block runs past the end of its range");
    int rc = qn_pread_all(r->fd, r->io + r->io_len, ask, r->io_pos + r->io_len);
    if (rc == -QN_ECORRUPT)
        return s_fail(r, r->io_pos + r->io_len, "file is truncated");
    if (rc < 0) {
        snprintf(r->err, sizeof r->err, "%s: read at byte %llu: %s", r->name,
                 (unsigned long long)(r->io_pos + r->io_len), strerror(-rc));
        r->failed = rc;
        return rc;
    }
    r->io_len += ask;
    return 0;
}

static int s_next_block(qn_blockreader *r)
{
    if (r->end - r->pos < QN_BLOCK_HEADER)
        return s_fail(r, r->pos, "truncated block header");
    int rc = s_fill(r, QN_BLOCK_HEADER);
    if (rc < 0)
        return rc;
    const unsigned char *h = (unsigned char *)r->io + (r->pos - r->io_pos);
    s_header hd;
    const char *why = s_header_parse(h, &hd);
    if (why)
        return s_fail(r, r->pos, why);
    if (r->end - r->pos - QN_BLOCK_HEADER < hd.stored_len)
        return s_fail(r, r->pos, "block runs past the end of its range");
    rc = s_fill(r, QN_BLOCK_HEADER + hd.stored_len);
    if (rc < 0)
        return rc;
    h = (unsigned char *)r->io + (r->pos - r->io_pos);
    if (!CRC_OK(s_block_crc(h, h + QN_BLOCK_HEADER, hd.stored_len), hd.crc))
        return s_fail(r, r->pos, "block CRC mismatch");
    if (r->raw_cap < hd.raw_len) {
        free(r->raw);
        r->raw = qn_malloc(hd.raw_len);
        r->raw_cap = hd.raw_len;
    }
    if (qn_codec_decompress(r->codec, hd.codec, h + QN_BLOCK_HEADER,
                            hd.stored_len, r->raw, hd.raw_len) < 0)
        return s_fail(r, r->pos, "block does not decompress");
    r->block_pos = r->pos;
    r->raw_len = hd.raw_len;
    r->raw_off = 0;
    r->block_left = hd.records;
    r->raw_bytes += hd.raw_len;
    r->stored_bytes += QN_BLOCK_HEADER + hd.stored_len;
    r->pos += QN_BLOCK_HEADER + hd.stored_len;
    return 0;
}

int qn_blockreader_next(qn_blockreader *r, const void **key, size_t *klen,
                        const void **val, size_t *vlen)
{
    if (r->block_left == 0) {
        if (r->raw_off != r->raw_len)
            return s_fail(r, r->block_pos, "block has trailing bytes");
        if (r->pos >= r->end)
            return 0;
        int rc = s_next_block(r);
        if (rc < 0)
            return rc;
    }
    const unsigned char *p = (unsigned char *)r->raw + r->raw_off;
    size_t left = r->raw_len - r->raw_off;
    uint64_t kl, vl;
    size_t a = qn_varint_get(p, left, &kl);
    size_t b = a ? qn_varint_get(p + a, left - a, &vl) : 0;
    if (!a || !b || kl > left - a - b || vl > left - a - b - kl)
        return s_fail(r, r->block_pos, "bad record in block");
    *key = p + a + b;
    *klen = (size_t)kl;
    *val = p + a + b + kl;
    *vlen = (size_t)vl;
    r->raw_off += a + b + (size_t)kl + (size_t)vl;
    r->block_left--;
    return 1;
}

const char *qn_blockreader_error(const qn_blockreader *r)
{
    return r->err;
}

void qn_blockreader_release(qn_blockreader *r)
{
    free(r->io);
    free(r->raw);
    qn_codec_destroy(&r->codec);
    r->io = r->raw = NULL;
}

long qn_block_scan(const void *buf, size_t len, uint64_t *raw_out, char *err,
                   size_t errcap)
{
    const unsigned char *p = buf;
    size_t off = 0;
    while (len - off >= QN_BLOCK_HEADER) {
        s_header hd;
        const char *why = s_header_parse(p + off, &hd);
        if (why) {
            snprintf(err, errcap, "%s at byte %zu", why, off);
            return -QN_ECORRUPT;
        }
        if (len - off - QN_BLOCK_HEADER < hd.stored_len)
            break;
        if (!CRC_OK(
                s_block_crc(p + off, p + off + QN_BLOCK_HEADER, hd.stored_len),
                hd.crc)) {
            snprintf(err, errcap, "block CRC mismatch at byte %zu", off);
            return -QN_ECORRUPT;
        }
        if (raw_out)
            *raw_out += hd.raw_len;
        off += QN_BLOCK_HEADER + hd.stored_len;
    }
    return (long)off;
}

/* ---- intermediate file writer -------------------------------------------- */

struct qn_ifile_writer {
    char *path;
    int fd;
    qn_blockwriter *bw;
    unsigned nparts;
    unsigned cur;     /* partition being written */
    qn_range *ranges; /* per partition */
    qn_range mark;    /* block writer totals when cur started */
};

qn_ifile_writer *qn_ifile_writer_new(const char *path, unsigned nparts,
                                     qn_codec *c, char *err, size_t errcap)
{
    if (nparts == 0 || nparts > MAX_PARTS) {
        snprintf(err, errcap, "%s: bad partition count %u", path, nparts);
        return NULL;
    }
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        snprintf(err, errcap, "%s: %s", path, strerror(errno));
        return NULL;
    }
    qn_ifile_writer *w = qn_calloc(1, sizeof *w);
    w->path = qn_strdup(path);
    w->fd = fd;
    w->bw = qn_blockwriter_new(fd, c);
    w->nparts = nparts;
    w->ranges = qn_calloc(nparts, sizeof *w->ranges);
    return w;
}

/* Close partition cur's range at the block writer's current totals. */
static int s_close_part(qn_ifile_writer *w)
{
    /* Partitions only need block boundaries, not a write() each. */
    int rc = qn_blockwriter_end_block(w->bw);
    if (rc < 0)
        return rc;
    qn_range t = qn_blockwriter_totals(w->bw);
    qn_range *r = &w->ranges[w->cur];
    r->offset = w->mark.length;
    r->length = t.length - w->mark.length;
    r->raw = t.raw - w->mark.raw;
    r->records = t.records - w->mark.records;
    w->mark = t;
    return 0;
}

int qn_ifile_writer_add(qn_ifile_writer *w, unsigned part, const void *key,
                        size_t klen, const void *val, size_t vlen)
{
    if (part >= w->nparts || part < w->cur)
        return -EINVAL;
    while (w->cur < part) {
        int rc = s_close_part(w);
        if (rc < 0)
            return rc;
        w->cur++;
    }
    return qn_blockwriter_add(w->bw, key, klen, val, vlen);
}

static void s_writer_free(qn_ifile_writer *w, int remove)
{
    if (w->fd >= 0)
        close(w->fd);
    if (remove)
        unlink(w->path);
    qn_blockwriter_destroy(&w->bw);
    free(w->ranges);
    free(w->path);
    free(w);
}

int qn_ifile_writer_close(qn_ifile_writer **self_p, qn_range *ranges, char *err,
                          size_t errcap)
{
    qn_ifile_writer *w = *self_p;
    *self_p = NULL;
    int rc = 0;
    for (;;) {
        rc = s_close_part(w);
        if (rc < 0 || w->cur + 1 >= w->nparts)
            break;
        w->cur++;
    }
    if (rc == 0)
        rc = qn_blockwriter_flush(w->bw);
    if (rc == 0) {
        size_t isz = (size_t)w->nparts * INDEX_ENTRY;
        unsigned char *idx = qn_malloc(isz + FOOTER_SIZE);
        for (unsigned p = 0; p < w->nparts; p++) {
            unsigned char *e = idx + (size_t)p * INDEX_ENTRY;
            s_put64(e, w->ranges[p].offset);
            s_put64(e + 8, w->ranges[p].length);
            s_put64(e + 16, w->ranges[p].raw);
            s_put64(e + 24, w->ranges[p].records);
        }
        unsigned char *f = idx + isz;
        memset(f, 0, FOOTER_SIZE);
        s_put32(f, FOOTER_MAGIC);
        s_put32(f + 4, FORMAT_VERSION);
        s_put32(f + 8, w->nparts);
        s_put64(f + 16, w->mark.length);
        s_put32(f + 24, (uint32_t)crc32(0L, idx, (uInt)(isz + 24)));
        rc = qn_write_all(w->fd, idx, isz + FOOTER_SIZE);
        free(idx);
    }
    if (rc == 0 && close(w->fd) < 0)
        rc = -errno;
    w->fd = -1;
    if (rc < 0)
        snprintf(err, errcap, "%s: write failed: %s", w->path, qn_strerror(rc));
    else if (ranges)
        memcpy(ranges, w->ranges, w->nparts * sizeof *ranges);
    s_writer_free(w, rc < 0);
    return rc;
}

void qn_ifile_writer_abort(qn_ifile_writer **self_p)
{
    if (*self_p)
        s_writer_free(*self_p, 1);
    *self_p = NULL;
}

/* ---- intermediate file reader -------------------------------------------- */

struct qn_ifile {
    char *path;
    int fd;
    unsigned nparts;
    qn_range *ranges;
};

/*
 * Open an intermediate file: read and check its footer (magic, CRC), then
 * its index, each partition's range within the file (ifile.h).
 */
qn_ifile *qn_ifile_open(const char *path, char *err, size_t errcap)
{
    unsigned char foot[FOOTER_SIZE];
    unsigned char *idx = NULL;
    qn_range *ranges = NULL;
    /* Never through a link: the file is in a task's folder, whose code
     * could have left one there for the worker to follow. */
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) {
        snprintf(err, errcap, "%s: %s", path, strerror(errno));
        return NULL;
    }
    struct stat st;
    if (fstat(fd, &st) < 0 || st.st_size < FOOTER_SIZE) {
        snprintf(err, errcap, "%s: too short for an intermediate file", path);
        goto fail;
    }
    uint64_t size = (uint64_t)st.st_size;
    if (qn_pread_all(fd, foot, FOOTER_SIZE, size - FOOTER_SIZE) < 0 ||
        s_get32(foot) != FOOTER_MAGIC || s_get32(foot + 4) != FORMAT_VERSION ||
        s_get32(foot + 12) != 0 || s_get32(foot + 28) != 0) {
        snprintf(err, errcap, "%s: no intermediate-file footer at byte %llu",
                 path, (unsigned long long)(size - FOOTER_SIZE));
        goto fail;
    }
    uint32_t nparts = s_get32(foot + 8);
    uint64_t ioff = s_get64(foot + 16);
    if (nparts == 0 || nparts > MAX_PARTS ||
        ioff + (uint64_t)nparts * INDEX_ENTRY + FOOTER_SIZE != size) {
        snprintf(err, errcap, "%s: footer gives an impossible index", path);
        goto fail;
    }
    size_t isz = (size_t)nparts * INDEX_ENTRY;
    idx = qn_malloc(isz + 24);
    if (qn_pread_all(fd, idx, isz, ioff) < 0) {
        snprintf(err, errcap, "%s: cannot read the index at byte %llu", path,
                 (unsigned long long)ioff);
        goto fail;
    }
    memcpy(idx + isz, foot, 24);
    if (!CRC_OK((uint32_t)crc32(0L, idx, (uInt)(isz + 24)),
                s_get32(foot + 24))) {
        snprintf(err, errcap, "%s: index CRC mismatch at byte %llu", path,
                 (unsigned long long)ioff);
        goto fail;
    }
    ranges = qn_calloc(nparts, sizeof *ranges);
    uint64_t expect = 0;
    for (uint32_t p = 0; p < nparts; p++) {
        const unsigned char *e = idx + (size_t)p * INDEX_ENTRY;
        qn_range *r = &ranges[p];
        r->offset = s_get64(e);
        r->length = s_get64(e + 8);
        r->raw = s_get64(e + 16);
        r->records = s_get64(e + 24);
        if (r->offset != expect || r->length > ioff - r->offset) {
            snprintf(err, errcap, "%s: index entry %u is out of range", path,
                     p);
            goto fail;
        }
        expect = r->offset + r->length;
    }
    if (expect != ioff) {
        snprintf(err, errcap, "%s: index does not cover the data", path);
        goto fail;
    }
    free(idx);
    qn_ifile *f = qn_calloc(1, sizeof *f);
    f->path = qn_strdup(path);
    f->fd = fd;
    f->nparts = nparts;
    f->ranges = ranges;
    return f;
fail:
    free(idx);
    free(ranges);
    close(fd);
    return NULL;
}

unsigned qn_ifile_nparts(const qn_ifile *f)
{
    return f->nparts;
}

qn_range qn_ifile_range(const qn_ifile *f, unsigned p)
{
    return f->ranges[p];
}

int qn_ifile_fd(const qn_ifile *f)
{
    return f->fd;
}

const char *qn_ifile_path(const qn_ifile *f)
{
    return f->path;
}

void qn_ifile_destroy(qn_ifile **self_p)
{
    qn_ifile *f = *self_p;
    if (!f)
        return;
    close(f->fd);
    free(f->ranges);
    free(f->path);
    free(f);
    *self_p = NULL;
}
