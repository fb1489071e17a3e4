/*
 * combtab.c -- see combtab.h.
 */
#include "combtab.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#define MIN_BYTES (64 * 1024)
#define MAX_BYTES ((size_t)4095 * 1024 * 1024)
#define FIRST_BLOCK 16 /* a new key's value block, at least */
/* Blocks this big are combined, not grown, when full. */
#define COMBINE_AT 128
#define FRAME 4 /* u32 length before each value */

/*
 * One entry, in the front of the arena: this header, the key's bytes
 * (padded to 8) and its first value block (isz bytes), so that a key seen
 * a few times costs one or two cache lines. A block that outgrows its
 * first place moves to the back of the arena. Offsets are arena offsets.
 */
typedef struct {
    uint32_t part, klen;
    uint32_t voff, vcap, vused, nvals; /* the value block */
    uint32_t isz;                      /* the first block's size */
    uint32_t pad;
} s_ent;

/*
 * Records queued by qn_combtab_push. A lookup in a table larger than the
 * cache costs two dependent misses (the slot, then the entry); queueing a
 * record before adding it lets the slot's line be fetched while earlier
 * records are added, and the entry's when the record is halfway through
 * the queue.
 */
#define QUEUE 16        /* records, a power of two */
#define QUEUE_BYTES 120 /* key and value bytes a queued record holds */
typedef struct {
    uint64_t hash;
    uint32_t part, klen, vlen;
    char bytes[QUEUE_BYTES];
} s_queued;

struct qn_combtab {
    char *mem;
    size_t bytes;
    uint64_t *slots; /* hash tag << 32 | (entry offset / 8 + 1); 0: empty */
    size_t nslots;   /* in use: a power of two, */
    size_t maxslots; /* up to this many */
    char *arena;
    size_t cap;   /* arena bytes */
    size_t front; /* entries: arena bytes [0, front) */
    size_t back;  /* moved blocks: [back, cap) */
    size_t count; /* entries */
    qn_cmp_fn cmp;
    qn_combtab_fn fn;
    qn_combtab_part_fn part_fn; /* for QN_COMBTAB_PART_LATER */
    void *ctx;
    qn_buf scratch; /* a block's combined values */
    s_queued queue[QUEUE];
    size_t qhead, qlen; /* the oldest queued record; how many */
};

#define FIRST_SLOTS 4096

static size_t s_align(size_t n)
{
    return (n + 7) & ~(size_t)7;
}

qn_combtab *qn_combtab_new(size_t bytes, qn_cmp_fn cmp, qn_combtab_fn fn,
                           void *ctx)
{
    if (bytes < MIN_BYTES || bytes > MAX_BYTES)
        return NULL;
    qn_combtab *ct = qn_calloc(1, sizeof *ct);
    /* An eighth for the index, at 8 bytes a slot. It starts small and
     * doubles (a new key is refused when half the slots are used), so a
     * job with few distinct keys keeps a small index in the cache. */
    ct->maxslots = 1;
    while (ct->maxslots * 2 * sizeof(uint64_t) <= bytes / 8)
        ct->maxslots *= 2;
    ct->nslots = ct->maxslots < FIRST_SLOTS ? ct->maxslots : FIRST_SLOTS;
    /* Fresh anonymous pages: zeroed by the kernel and resident only as
     * they are used; huge pages where the kernel has them, since lookups
     * land all over the index and the arena (a TLB miss each with 4 KiB
     * pages). */
    ct->bytes = bytes;
    ct->mem = mmap(NULL, bytes, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (ct->mem == MAP_FAILED) {
        free(ct);
        return NULL;
    }
    madvise(ct->mem, bytes, MADV_HUGEPAGE);
    ct->slots = (uint64_t *)ct->mem;
    ct->arena = ct->mem + ct->maxslots * sizeof(uint64_t);
    ct->cap = (bytes - ct->maxslots * sizeof(uint64_t)) & ~(size_t)7;
    ct->back = ct->cap;
    ct->cmp = cmp;
    ct->fn = fn;
    ct->ctx = ctx;
    return ct;
}

void qn_combtab_destroy(qn_combtab **self_p)
{
    qn_combtab *ct = *self_p;
    if (!ct)
        return;
    munmap(ct->mem, ct->bytes);
    qn_buf_release(&ct->scratch);
    free(ct);
    *self_p = NULL;
}

static s_ent *s_ent_at(const qn_combtab *ct, size_t off)
{
    return (s_ent *)(ct->arena + off);
}

static const char *s_key(const s_ent *e)
{
    return (const char *)(e + 1);
}

/* A moved value block of n bytes at the back; SIZE_MAX if there is no
 * room. */
static size_t s_alloc_back(qn_combtab *ct, size_t n)
{
    n = s_align(n);
    if (n > ct->back - ct->front)
        return SIZE_MAX;
    ct->back -= n;
    return ct->back;
}

static void s_put_frame(char *p, const void *val, size_t vlen)
{
    uint32_t l = (uint32_t)vlen;
    memcpy(p, &l, FRAME);
    if (vlen)
        memcpy(p + FRAME, val, vlen);
}

int qn_combtab_frame(qn_buf *b, const void *val, size_t vlen)
{
    if (qn_buf_reserve(b, FRAME + vlen) < 0)
        return -ENOMEM;
    s_put_frame(b->data + b->len, val, vlen);
    b->len += FRAME + vlen;
    return 0;
}

int qn_combtab_next(const char *vals, size_t vbytes, size_t *pos,
                    const void **val, size_t *vlen)
{
    if (vbytes - *pos < FRAME || *pos > vbytes)
        return 0;
    uint32_t l;
    memcpy(&l, vals + *pos, FRAME);
    if (l > vbytes - *pos - FRAME)
        return 0;
    *val = vals + *pos + FRAME;
    *vlen = l;
    *pos += FRAME + l;
    return 1;
}

static size_t s_frames(const char *vals, size_t vbytes)
{
    size_t n = 0, pos = 0, l;
    const void *v;
    while (qn_combtab_next(vals, vbytes, &pos, &v, &l))
        n++;
    return n;
}

uint64_t qn_combtab_hash(const void *key, size_t klen)
{
    const unsigned char *p = key;
    uint64_t h = 0x9E3779B97F4A7C15ULL ^ klen;
    for (; klen >= 8; p += 8, klen -= 8) {
        uint64_t w;
        memcpy(&w, p, 8);
        h = (h ^ w) * 0xbf58476d1ce4e5b9ULL;
        h ^= h >> 29;
    }
    uint64_t w = 0;
    if (klen)
        memcpy(&w, p, klen);
    h ^= w;
    /* MurmurHash3's finaliser: every output bit depends on every input
     * bit, for the index (low bits) and the tag (high bits) alike. */
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ULL;
    h ^= h >> 33;
    return h;
}

void qn_combtab_set_partitioner(qn_combtab *ct, qn_combtab_part_fn fn)
{
    ct->part_fn = fn;
}

static size_t s_ent_size(const s_ent *e)
{
    return s_align(sizeof(s_ent) + e->klen) + e->isz;
}

/* Put the entry at offset off into the index. */
static void s_index(qn_combtab *ct, uint64_t hash, size_t off)
{
    size_t mask = ct->nslots - 1, i = (size_t)hash & mask;
    while (ct->slots[i])
        i = (i + 1) & mask;
    ct->slots[i] = (hash >> 32) << 32 | (uint64_t)(off / 8 + 1);
}

/* Double the index: the entries, in the front of the arena, are hashed
 * again into the larger one. */
static void s_grow_index(qn_combtab *ct)
{
    ct->nslots *= 2;
    memset(ct->slots, 0, ct->nslots * sizeof *ct->slots);
    for (size_t off = 0; off < ct->front;) {
        s_ent *e = s_ent_at(ct, off);
        s_index(ct, qn_combtab_hash(s_key(e), e->klen), off);
        off += s_ent_size(e);
    }
}

/* A new entry for key with one value; SIZE_MAX when there is no room. */
static size_t s_insert(qn_combtab *ct, uint64_t hash, unsigned part,
                       const void *key, size_t klen, const void *val,
                       size_t vlen)
{
    size_t block = s_align(FRAME + vlen);
    if (block < FIRST_BLOCK)
        block = FIRST_BLOCK;
    size_t head = s_align(sizeof(s_ent) + klen);
    if (head + block > ct->back - ct->front)
        return SIZE_MAX;
    if (part == QN_COMBTAB_PART_LATER) {
        /* Once per distinct key, not once per record. */
        part = ct->part_fn(ct->ctx, key, klen);
        if (part == QN_COMBTAB_PART_LATER)
            return SIZE_MAX - 1;
    }
    if (ct->count + 1 > ct->nslots / 2) {
        if (ct->nslots == ct->maxslots)
            return SIZE_MAX;
        s_grow_index(ct);
    }
    size_t off = ct->front;
    ct->front += head + block;
    s_ent *e = s_ent_at(ct, off);
    e->part = part;
    e->klen = (uint32_t)klen;
    e->voff = (uint32_t)(off + head);
    e->vcap = (uint32_t)block;
    e->vused = (uint32_t)(FRAME + vlen);
    e->nvals = 1;
    e->isz = (uint32_t)block;
    e->pad = 0;
    if (klen)
        memcpy((char *)(e + 1), key, klen);
    s_put_frame(ct->arena + e->voff, val, vlen);
    s_index(ct, hash, off);
    ct->count++;
    return off;
}

/* Add a value to a full block: combine it, or move it to a larger one. */
static int s_append_full(qn_combtab *ct, s_ent *e, const void *val, size_t vlen)
{
    size_t need = FRAME + vlen;
    const char *src = ct->arena + e->voff;
    size_t srclen = e->vused, srcn = e->nvals;
    if (ct->fn && e->vcap >= COMBINE_AT && e->nvals >= 2) {
        ct->scratch.len = 0;
        int rc = ct->fn(ct->ctx, e->part, s_key(e), e->klen, src, e->vused,
                        e->nvals, &ct->scratch);
        if (rc < 0)
            return rc;
        src = ct->scratch.data;
        srclen = ct->scratch.len;
        srcn = s_frames(src, srclen);
        /* Combining that frees at least half the block keeps it; less,
         * and the block grows, so no value is combined over and over. */
        if (srclen <= e->vcap / 2 && srclen + need <= e->vcap) {
            if (srclen)
                memcpy(ct->arena + e->voff, src, srclen);
            e->vused = (uint32_t)srclen;
            e->nvals = (uint32_t)srcn;
            s_put_frame(ct->arena + e->voff + e->vused, val, vlen);
            e->vused += (uint32_t)need;
            e->nvals++;
            return 0;
        }
    }
    size_t cap = (size_t)e->vcap * 2;
    while (cap < srclen + need)
        cap *= 2;
    if (cap > UINT32_MAX)
        return -QN_ETOOBIG;
    /* The old block stays behind as garbage until the table is reset; a
     * block only ever doubles, so that is less than the live blocks. */
    size_t off = s_alloc_back(ct, cap);
    if (off == SIZE_MAX)
        return -QN_EFULL; /* the entry is as it was */
    char *dst = ct->arena + off;
    if (srclen)
        memcpy(dst, src, srclen);
    s_put_frame(dst + srclen, val, vlen);
    e->voff = (uint32_t)off;
    e->vcap = (uint32_t)cap;
    e->vused = (uint32_t)(srclen + need);
    e->nvals = (uint32_t)(srcn + 1);
    return 0;
}

int qn_combtab_add(qn_combtab *ct, unsigned part, uint64_t hash,
                   const void *key, size_t klen, const void *val, size_t vlen)
{
    if (klen > QN_RECORD_MAX || vlen > QN_RECORD_MAX - klen)
        return -QN_ETOOBIG;
    size_t mask = ct->nslots - 1, i = (size_t)hash & mask;
    uint64_t tag = hash >> 32;
    for (;;) {
        uint64_t s = ct->slots[i];
        if (!s)
            break;
        if (s >> 32 == tag) {
            s_ent *e = s_ent_at(ct, ((s & 0xffffffffu) - 1) * 8);
            if ((e->part == part || part == QN_COMBTAB_PART_LATER) &&
                e->klen == klen &&
                (klen == 0 || memcmp(s_key(e), key, klen) == 0)) {
                if (e->vused + FRAME + vlen <= e->vcap) {
                    s_put_frame(ct->arena + e->voff + e->vused, val, vlen);
                    e->vused += (uint32_t)(FRAME + vlen);
                    e->nvals++;
                    return 0;
                }
                return s_append_full(ct, e, val, vlen);
            }
        }
        i = (i + 1) & mask;
    }
    size_t got = s_insert(ct, hash, part, key, klen, val, vlen);
    if (got == SIZE_MAX - 1)
        return -EINVAL; /* the partitioner failed */
    if (got != SIZE_MAX)
        return 0;
    /* Would it fit in an empty table? (s_insert's sizes.) */
    size_t block = s_align(FRAME + vlen);
    size_t need = s_align(sizeof(s_ent) + klen) +
                  (block < FIRST_BLOCK ? FIRST_BLOCK : block);
    return need > ct->cap ? -QN_ETOOBIG : -QN_EFULL;
}

/* Add the oldest queued record; it stays queued if that fails. */
static int s_add_oldest(qn_combtab *ct)
{
    s_queued *q = &ct->queue[ct->qhead];
    int rc = qn_combtab_add(ct, q->part, q->hash, q->bytes, q->klen,
                            q->bytes + q->klen, q->vlen);
    if (rc == 0) {
        ct->qhead = (ct->qhead + 1) & (QUEUE - 1);
        ct->qlen--;
    }
    return rc;
}

int qn_combtab_drain(qn_combtab *ct)
{
    while (ct->qlen > 0) {
        int rc = s_add_oldest(ct);
        if (rc < 0)
            return rc;
    }
    return 0;
}

int qn_combtab_push(qn_combtab *ct, unsigned part, uint64_t hash,
                    const void *key, size_t klen, const void *val, size_t vlen)
{
    if (klen + vlen > QUEUE_BYTES) {
        /* Too big to queue: in order, after what is queued. */
        int rc = qn_combtab_drain(ct);
        return rc < 0 ? rc
                      : qn_combtab_add(ct, part, hash, key, klen, val, vlen);
    }
    if (ct->qlen == QUEUE) {
        int rc = s_add_oldest(ct);
        if (rc < 0)
            return rc; /* this record is not queued */
    }
    size_t mask = ct->nslots - 1;
    /* The record halfway through the queue: its slot has arrived by now,
     * so fetch the entry it points to. */
    if (ct->qlen >= QUEUE / 2) {
        const s_queued *mid =
            &ct->queue[(ct->qhead + ct->qlen - QUEUE / 2) & (QUEUE - 1)];
        uint64_t sl = ct->slots[mid->hash & mask];
        if (sl)
            __builtin_prefetch(ct->arena + ((sl & 0xffffffffu) - 1) * 8, 1);
    }
    s_queued *q = &ct->queue[(ct->qhead + ct->qlen) & (QUEUE - 1)];
    q->hash = hash;
    q->part = part;
    q->klen = (uint32_t)klen;
    q->vlen = (uint32_t)vlen;
    if (klen)
        memcpy(q->bytes, key, klen);
    if (vlen)
        memcpy(q->bytes + klen, val, vlen);
    ct->qlen++;
    __builtin_prefetch(&ct->slots[hash & mask], 0);
    return 0;
}

size_t qn_combtab_count(const qn_combtab *ct)
{
    return ct->count;
}

static int s_order(const void *a, const void *b, void *arg)
{
    const qn_combtab *ct = arg;
    const s_ent *x = s_ent_at(ct, (size_t) * (const uint32_t *)a * 8);
    const s_ent *y = s_ent_at(ct, (size_t) * (const uint32_t *)b * 8);
    if (x->part != y->part)
        return x->part < y->part ? -1 : 1;
    if (ct->cmp)
        return ct->cmp(s_key(x), x->klen, s_key(y), y->klen);
    return qn_key_cmp(s_key(x), x->klen, s_key(y), y->klen);
}

void qn_combtab_sort(qn_combtab *ct)
{
    /* The index is not needed any more: its memory holds the entries'
     * offsets (4 bytes each, written behind the 8-byte slots read). */
    uint32_t *order = (uint32_t *)ct->slots;
    size_t n = 0;
    for (size_t i = 0; i < ct->nslots; i++) {
        uint64_t s = ct->slots[i];
        if (s)
            order[n++] = (uint32_t)((s & 0xffffffffu) - 1);
    }
    qsort_r(order, n, sizeof *order, s_order, ct);
}

void qn_combtab_get(const qn_combtab *ct, size_t i, unsigned *part,
                    const void **key, size_t *klen, const char **vals,
                    size_t *vbytes, size_t *nvals)
{
    const uint32_t *order = (const uint32_t *)ct->slots;
    const s_ent *e = s_ent_at(ct, (size_t)order[i] * 8);
    *part = e->part;
    *key = s_key(e);
    *klen = e->klen;
    *vals = ct->arena + e->voff;
    *vbytes = e->vused;
    *nvals = e->nvals;
}

void qn_combtab_reset(qn_combtab *ct)
{
    memset(ct->slots, 0, ct->nslots * sizeof *ct->slots);
    ct->front = 0;
    ct->back = ct->cap;
    ct->count = 0;
}
