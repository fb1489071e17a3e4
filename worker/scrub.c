/*
 * scrub.c -- see scrub.h.
 */
#include "scrub.h"

#include "store.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#define IDLE_MS 10000 /* with nothing to read, look again this often */
#define SOON_MAX 64   /* shards waiting to be read ahead of the round */

typedef struct s_key {
    char dataset[72];
    uint32_t index;
} s_key;

struct qn_scrub {
    qn_store *store;
    uint64_t rate; /* bytes a second; 0: off */
    int64_t due;
    /* The shard being read: its key, what it should be, how far. */
    int open;
    s_key cur;
    int fd;
    uint64_t size, off;
    uint32_t crc_want;
    uLong crc;
    int urgent; /* asked for: read at once, not at the rate */
    s_key last; /* the round's place: the last shard it began */
    int begun;  /* last is set */
    s_key soon[SOON_MAX];
    size_t nsoon;
    char buf[QN_SCRUB_CHUNK];
    uint64_t bytes, damaged;
};

qn_scrub *qn_scrub_new(qn_store *store, uint64_t bytes_per_s)
{
    qn_scrub *s = qn_calloc(1, sizeof *s);
    s->store = store;
    s->rate = bytes_per_s;
    s->fd = -1;
    s->due = bytes_per_s ? 0 : INT64_MAX;
    return s;
}

static void s_close(qn_scrub *s)
{
    if (s->fd >= 0)
        close(s->fd);
    s->fd = -1;
    s->open = 0;
    s->urgent = 0;
}

void qn_scrub_destroy(qn_scrub **self_p)
{
    qn_scrub *s = *self_p;
    if (!s)
        return;
    s_close(s);
    free(s);
    *self_p = NULL;
}

int64_t qn_scrub_due(const qn_scrub *s)
{
    return s->due;
}

uint64_t qn_scrub_bytes(const qn_scrub *s)
{
    return s->bytes;
}

uint64_t qn_scrub_damaged(const qn_scrub *s)
{
    return s->damaged;
}

static int s_key_cmp(const char *dataset, uint32_t index, const s_key *k)
{
    int c = strcmp(dataset, k->dataset);
    if (c)
        return c;
    return index < k->index ? -1 : index > k->index;
}

/* Is shard a's key before b's? */
static int s_before(const qn_shard *a, const qn_shard *b)
{
    int c = strcmp(a->dataset, b->dataset);
    return c ? c < 0 : a->index < b->index;
}

/* The shard after the round's place (wrapping round to the first), or
 * NULL if the store holds none. */
static const qn_shard *s_next_in_round(qn_scrub *s)
{
    const qn_shard *next = NULL, *first = NULL;
    for (size_t i = 0; i < qn_store_count(s->store); i++) {
        const qn_shard *sh = qn_store_at(s->store, i);
        if (!first || s_before(sh, first))
            first = sh;
        if (s->begun && s_key_cmp(sh->dataset, sh->index, &s->last) <= 0)
            continue;
        if (!next || s_before(sh, next))
            next = sh;
    }
    return next ? next : first;
}

/* Begin reading sh. 0, or -1 if its file cannot be opened (it was
 * dropped meanwhile, say). */
static int s_begin(qn_scrub *s, const qn_shard *sh, int urgent)
{
    qn_buf path = {0};
    qn_store_path(s->store, sh->dataset, sh->index, &path);
    int fd = open(path.data, O_RDONLY | O_CLOEXEC);
    qn_buf_release(&path);
    if (fd < 0)
        return -1;
    posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
    snprintf(s->cur.dataset, sizeof s->cur.dataset, "%s", sh->dataset);
    s->cur.index = sh->index;
    s->fd = fd;
    s->size = sh->size;
    s->off = 0;
    s->crc_want = sh->crc;
    s->crc = crc32(0L, Z_NULL, 0);
    s->open = 1;
    s->urgent = urgent;
    return 0;
}

/* Pick the next shard to read: one asked for, else the round's next.
 * 0, or -1 when there is none. */
static int s_pick(qn_scrub *s)
{
    while (s->nsoon > 0) {
        s_key k = s->soon[0];
        memmove(s->soon, s->soon + 1, --s->nsoon * sizeof *s->soon);
        const qn_shard *sh = qn_store_find(s->store, k.dataset, k.index);
        if (sh && s_begin(s, sh, 1) == 0)
            return 0;
    }
    const qn_shard *sh = s_next_in_round(s);
    if (!sh)
        return -1;
    snprintf(s->last.dataset, sizeof s->last.dataset, "%s", sh->dataset);
    s->last.index = sh->index;
    s->begun = 1;
    return s_begin(s, sh, 0) == 0 ? 0 : -1;
}

/* The shard being read is read to its end (or could not be): is it the
 * copy its description says? 1 and dropped if not. */
static int s_finish(qn_scrub *s, int read_error, char *why, size_t cap)
{
    struct stat st;
    int bad = 0;
    if (read_error) {
        snprintf(why, cap, "reading it failed at offset %llu: %s",
                 (unsigned long long)s->off, strerror(read_error));
        bad = 1;
    } else if (fstat(s->fd, &st) == 0 && (uint64_t)st.st_size != s->size) {
        snprintf(why, cap, "it holds %llu bytes, not the %llu it should",
                 (unsigned long long)st.st_size, (unsigned long long)s->size);
        bad = 1;
    } else if ((uint32_t)s->crc != s->crc_want) {
        snprintf(why, cap, "its bytes have CRC %08x, not %08x",
                 (unsigned)s->crc, (unsigned)s->crc_want);
        bad = 1;
    }
    s_key k = s->cur;
    s_close(s);
    /* Only if it is still the copy that was read (not replaced meanwhile). */
    const qn_shard *sh = qn_store_find(s->store, k.dataset, k.index);
    if (!bad || !sh || sh->crc != s->crc_want || sh->size != s->size)
        return 0;
    qn_store_drop_damaged(s->store, k.dataset, k.index, why);
    s->damaged++;
    return 1;
}

int qn_scrub_step(qn_scrub *s, int64_t now, char *why, size_t cap)
{
    if (now < s->due)
        return 0;
    if (!s->open && s_pick(s) < 0) {
        s->due = s->rate ? now + IDLE_MS : INT64_MAX;
        return 0;
    }
    /* The shard may have been dropped or replaced since it was opened. */
    const qn_shard *sh = qn_store_find(s->store, s->cur.dataset, s->cur.index);
    if (!sh || sh->crc != s->crc_want || sh->size != s->size) {
        s_close(s);
        s->due = now;
        return 0;
    }
    size_t want = QN_SCRUB_CHUNK;
    if (s->size - s->off < want)
        want = (size_t)(s->size - s->off);
    ssize_t n = want ? pread(s->fd, s->buf, want, (off_t)s->off) : 0;
    int err = n < 0 ? errno : 0;
    if (n > 0) {
        s->crc = crc32(s->crc, (const Bytef *)s->buf, (uInt)n);
        s->off += (uint64_t)n;
        s->bytes += (uint64_t)n;
    }
    int urgent = s->urgent;
    int found = 0;
    if (n < 0 || s->off >= s->size || (n == 0 && want))
        found = s_finish(s, err, why, cap);
    /* The rate paces the round; a shard asked for is read at once. */
    if (urgent || s->nsoon)
        s->due = now;
    else if (!s->rate)
        s->due = INT64_MAX;
    else
        s->due = now + (int64_t)((uint64_t)(n > 0 ? n : 1) * 1000 / s->rate);
    return found;
}

void qn_scrub_soon(qn_scrub *s, const char *dataset, uint32_t index,
                   int64_t now)
{
    for (size_t i = 0; i < s->nsoon; i++)
        if (s_key_cmp(dataset, index, &s->soon[i]) == 0)
            return;
    if (s->open && s_key_cmp(dataset, index, &s->cur) == 0) {
        s->urgent = 1;
        s->due = now;
        return;
    }
    if (s->nsoon == SOON_MAX)
        return;
    snprintf(s->soon[s->nsoon].dataset, sizeof s->soon[s->nsoon].dataset, "%s",
             dataset);
    s->soon[s->nsoon++].index = index;
    /* The shard being read at the rate waits; the one asked for goes
     * first. */
    if (s->open && !s->urgent)
        s_close(s);
    s->due = now;
}
