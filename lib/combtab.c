/*
 * combtab.c -- see combtab.h.
 */
#include "combtab.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define MIN_BYTES (64 * 1024)
#define MAX_BYTES ((size_t)4095 * 1024 * 1024)
#define FIRST_BLOCK 16 /* a new key's value block, at least */
/* Blocks this big are combined, not grown, when full. */
#define COMBINE_AT 128
#define FRAME 4              /* u32 length before each value */
#define REPS 4               /* u32 count after a repeated frame's length */
#define RUN_MAX 8            /* longest value an entry keeps a run of */
#define REPS_MAX 0x40000000u /* a run this long goes to the block */

/*
 * One entry, in the front of the arena: this header, the key's bytes
 * (padded to 8) and its first value block (isz bytes), so that a key seen
 * a few times costs one or two cache lines. A block that outgrows its
 * first place moves to the back of the arena. Offsets are arena offsets.
 * The latest values, while they are the same short value, are only
 * counted (reps copies of run): no block is touched for them, and a key
 * whose values all are short starts with no block at all.
 */
typedef struct {
    uint32_t part, klen;
    uint32_t voff, vcap, vused; /* the value block */
    uint32_t isz;               /* the first block's size (0: none) */
    uint64_t nvals;             /* values in the block */
    uint64_t run;               /* runlen bytes */
    uint32_t runlen;
    uint32_t reps; /* copies of run after the block's values (0: none) */
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
    /* Huge pages matter here: lookups land all over the index and the
     * arena (a TLB miss each with 4 KiB pages). */
    ct->bytes = bytes;
    ct->mem = qn_big_alloc(bytes);
    if (!ct->mem) {
        free(ct);
        return NULL;
    }
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
    qn_big_free(ct->mem, ct->bytes);
    qn_buf_release(&ct->scratch);
    free(ct);
    *self_p = NULL;
}

/*
 * Copy and compare the few bytes of a typical key or value without a
 * call to memcpy or memcmp: two overlapping loads cover 4 to 16 bytes.
 */
static inline void s_copy(void *dst, const void *src, size_t n)
{
    char *d = dst;
    const char *p = src;
    if (n >= 8 && n <= 16) {
        uint64_t a, b;
        memcpy(&a, p, 8);
        memcpy(&b, p + n - 8, 8);
        memcpy(d, &a, 8);
        memcpy(d + n - 8, &b, 8);
    } else if (n >= 4 && n < 8) {
        uint32_t a, b;
        memcpy(&a, p, 4);
        memcpy(&b, p + n - 4, 4);
        memcpy(d, &a, 4);
        memcpy(d + n - 4, &b, 4);
    } else if (n > 0 && n < 4) {
        char a = p[0], b = p[n / 2], c = p[n - 1];
        d[0] = a;
        d[n / 2] = b;
        d[n - 1] = c;
    } else if (n > 16) {
        memcpy(d, p, n);
    }
}

static inline int s_same(const void *x, const void *y, size_t n)
{
    const char *a = x, *b = y;
    if (n >= 8 && n <= 16) {
        uint64_t a0, a1, b0, b1;
        memcpy(&a0, a, 8);
        memcpy(&b0, b, 8);
        memcpy(&a1, a + n - 8, 8);
        memcpy(&b1, b + n - 8, 8);
        return ((a0 ^ b0) | (a1 ^ b1)) == 0;
    }
    if (n >= 4 && n < 8) {
        uint32_t a0, a1, b0, b1;
        memcpy(&a0, a, 4);
        memcpy(&b0, b, 4);
        memcpy(&a1, a + n - 4, 4);
        memcpy(&b1, b + n - 4, 4);
        return ((a0 ^ b0) | (a1 ^ b1)) == 0;
    }
    if (n < 4)
        return n == 0 ||
               (a[0] == b[0] && a[n / 2] == b[n / 2] && a[n - 1] == b[n - 1]);
    return memcmp(a, b, n) == 0;
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

/* The size of a frame of vlen bytes standing for reps copies. */
static size_t s_frame_size(size_t vlen, size_t reps)
{
    return FRAME + (reps > 1 ? REPS : 0) + vlen;
}

/* Write a frame of reps copies of val at p. */
static void s_put_frame(char *p, const void *val, size_t vlen, size_t reps)
{
    uint32_t l = (uint32_t)vlen | (reps > 1 ? QN_COMBTAB_REPEAT : 0);
    memcpy(p, &l, FRAME);
    p += FRAME;
    if (reps > 1) {
        uint32_t r = (uint32_t)reps;
        memcpy(p, &r, REPS);
        p += REPS;
    }
    s_copy(p, val, vlen);
}

int qn_combtab_frame(qn_buf *b, const void *val, size_t vlen)
{
    if (qn_buf_reserve(b, FRAME + vlen) < 0)
        return -ENOMEM;
    s_put_frame(b->data + b->len, val, vlen, 1);
    b->len += FRAME + vlen;
    return 0;
}

void qn_combtab_iter_init(qn_combtab_iter *it, const qn_combtab_vals *v)
{
    *it = (qn_combtab_iter){.v = *v};
}

int qn_combtab_iter_next(qn_combtab_iter *it, const void **val, size_t *vlen)
{
    if (it->left) {
        it->left--;
        *val = it->cur;
        *vlen = it->curlen;
        return 1;
    }
    size_t pos = it->pos, vbytes = it->v.vbytes;
    if (pos <= vbytes && vbytes - pos >= FRAME) {
        uint32_t l, r = 1;
        memcpy(&l, it->v.vals + pos, FRAME);
        pos += FRAME;
        if (l & QN_COMBTAB_REPEAT) {
            l &= ~QN_COMBTAB_REPEAT;
            if (vbytes - pos < REPS)
                goto block_end;
            memcpy(&r, it->v.vals + pos, REPS);
            pos += REPS;
            if (r == 0)
                goto block_end;
        }
        if (l > vbytes - pos)
            goto block_end;
        it->cur = it->v.vals + pos;
        it->curlen = l;
        it->left = r - 1;
        it->pos = pos + l;
        *val = it->cur;
        *vlen = l;
        return 1;
    }
block_end:
    /* A frame that overruns the block ends it. */
    it->pos = vbytes + 1;
    if (it->v.reps) {
        it->v.reps--;
        *val = it->v.run;
        *vlen = it->v.runlen;
        return 1;
    }
    return 0;
}

/* Values in a block of framed values. */
static size_t s_frames(const char *vals, size_t vbytes)
{
    qn_combtab_iter it;
    qn_combtab_iter_init(&it,
                         &(qn_combtab_vals){.vals = vals, .vbytes = vbytes});
    size_t n = 0, l;
    const void *v;
    while (qn_combtab_iter_next(&it, &v, &l)) {
        n += 1 + it.left; /* a repeated frame at once */
        it.left = 0;
    }
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
    /* The last 0 to 7 bytes, without a variable-length copy (the length
     * is in h already). */
    uint64_t w = 0;
    if (klen >= 4) {
        uint32_t a, b;
        memcpy(&a, p, 4);
        memcpy(&b, p + klen - 4, 4);
        w = (uint64_t)a << 32 | b;
    } else if (klen) {
        w = (uint64_t)p[0] << 16 | (uint64_t)p[klen / 2] << 8 | p[klen - 1];
    }
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

/* The first block of a new entry whose first value has vlen bytes: none
 * when the value is short enough to be kept as a run. */
static size_t s_insert_block(size_t vlen)
{
    if (vlen <= RUN_MAX)
        return 0;
    size_t block = s_align(FRAME + vlen);
    return block < FIRST_BLOCK ? FIRST_BLOCK : block;
}

/* A new entry for key with one value; SIZE_MAX when there is no room. */
static size_t s_insert(qn_combtab *ct, uint64_t hash, unsigned part,
                       const void *key, size_t klen, const void *val,
                       size_t vlen)
{
    size_t block = s_insert_block(vlen);
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
    e->isz = (uint32_t)block;
    if (block) {
        /* A value too long for a run: in the block. */
        e->vused = (uint32_t)(FRAME + vlen);
        e->nvals = 1;
        e->reps = 0;
        e->runlen = 0;
        s_put_frame(ct->arena + e->voff, val, vlen, 1);
    } else {
        e->vused = 0;
        e->nvals = 0;
        e->reps = 1;
        e->run = 0;
        s_copy(&e->run, val, vlen);
        e->runlen = (uint32_t)vlen;
    }
    if (klen)
        memcpy((char *)(e + 1), key, klen);
    s_index(ct, hash, off);
    ct->count++;
    return off;
}

/*
 * Add reps copies of a value (one frame) to a full block: combine the
 * block, or move it to a larger one. On failure the entry is as it was.
 */
static int s_append_full(qn_combtab *ct, s_ent *e, const void *val, size_t vlen,
                         size_t reps)
{
    size_t need = s_frame_size(vlen, reps);
    const char *src = ct->arena + e->voff;
    size_t srclen = e->vused, srcn = e->nvals;
    if (ct->fn && e->vcap >= COMBINE_AT && e->nvals >= 2) {
        ct->scratch.len = 0;
        qn_combtab_vals vs = {
            .vals = src, .vbytes = e->vused, .nvals = e->nvals};
        int rc = ct->fn(ct->ctx, e->part, s_key(e), e->klen, &vs, &ct->scratch);
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
            e->nvals = srcn;
            s_put_frame(ct->arena + e->voff + e->vused, val, vlen, reps);
            e->vused += (uint32_t)need;
            e->nvals += reps;
            return 0;
        }
    }
    size_t cap = e->vcap ? (size_t)e->vcap * 2 : FIRST_BLOCK;
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
    s_put_frame(dst + srclen, val, vlen, reps);
    e->voff = (uint32_t)off;
    e->vcap = (uint32_t)cap;
    e->vused = (uint32_t)(srclen + need);
    e->nvals = srcn + reps;
    return 0;
}

/* Add reps copies of a value (one frame) to e's block. */
static int s_append(qn_combtab *ct, s_ent *e, const void *val, size_t vlen,
                    size_t reps)
{
    size_t need = s_frame_size(vlen, reps);
    if (e->vused + need > e->vcap)
        return s_append_full(ct, e, val, vlen, reps);
    s_put_frame(ct->arena + e->voff + e->vused, val, vlen, reps);
    e->vused += (uint32_t)need;
    e->nvals += reps;
    return 0;
}

/* Add a value to e other than one more copy of its run: the run goes to
 * the block, and the value starts a new one (or goes there too). */
static int s_add_value(qn_combtab *ct, s_ent *e, const void *val, size_t vlen)
{
    if (e->reps) {
        int rc = s_append(ct, e, &e->run, e->runlen, e->reps);
        if (rc < 0)
            return rc;
        e->reps = 0;
    }
    if (vlen > RUN_MAX)
        return s_append(ct, e, val, vlen, 1);
    e->run = 0;
    s_copy(&e->run, val, vlen);
    e->runlen = (uint32_t)vlen;
    e->reps = 1;
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
                e->klen == klen && s_same(s_key(e), key, klen)) {
                if (e->reps && e->runlen == vlen && e->reps < REPS_MAX &&
                    s_same(&e->run, val, vlen)) {
                    e->reps++;
                    return 0;
                }
                return s_add_value(ct, e, val, vlen);
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
    size_t need = s_align(sizeof(s_ent) + klen) + s_insert_block(vlen);
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
    s_copy(q->bytes, key, klen);
    s_copy(q->bytes + klen, val, vlen);
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
                    const void **key, size_t *klen, qn_combtab_vals *vals)
{
    const uint32_t *order = (const uint32_t *)ct->slots;
    const s_ent *e = s_ent_at(ct, (size_t)order[i] * 8);
    *part = e->part;
    *key = s_key(e);
    *klen = e->klen;
    *vals = (qn_combtab_vals){.vals = ct->arena + e->voff,
                              .vbytes = e->vused,
                              .run = &e->run,
                              .runlen = e->runlen,
                              .reps = e->reps,
                              .nvals = (size_t)e->nvals + e->reps};
}

void qn_combtab_reset(qn_combtab *ct)
{
    memset(ct->slots, 0, ct->nslots * sizeof *ct->slots);
    ct->front = 0;
    ct->back = ct->cap;
    ct->count = 0;
}
