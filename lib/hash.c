/*
 * hash.c -- XXH64, written from the published xxHash specification
 * (doc/xxhash_spec.md in the xxHash project).
 */
#include "hash.h"

#include <string.h>

#define P1 0x9E3779B185EBCA87ULL
#define P2 0xC2B2AE3D27D4EB4FULL
#define P3 0x165667B19E3779F9ULL
#define P4 0x85EBCA77C2B2AE63ULL
#define P5 0x27D4EB2F165667C5ULL

static inline uint64_t s_rotl(uint64_t x, unsigned r)
{
    return (x << r) | (x >> (64 - r));
}

/* Little-endian loads, so the hash is the same on every machine. */
static inline uint64_t s_read64(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

static inline uint32_t s_read32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
           (uint32_t)p[3] << 24;
}

static inline uint64_t s_round(uint64_t acc, uint64_t input)
{
    acc += input * P2;
    acc = s_rotl(acc, 31);
    return acc * P1;
}

static inline uint64_t s_merge(uint64_t acc, uint64_t v)
{
    acc ^= s_round(0, v);
    return acc * P1 + P4;
}

uint64_t qn_hash64(const void *data, size_t len, uint64_t seed)
{
    const unsigned char *p = data;
    const unsigned char *end = p + len;
    uint64_t h;

    if (len >= 32) {
        uint64_t v1 = seed + P1 + P2, v2 = seed + P2, v3 = seed, v4 = seed - P1;
        const unsigned char *limit = end - 32;
        do {
            v1 = s_round(v1, s_read64(p));
            v2 = s_round(v2, s_read64(p + 8));
            v3 = s_round(v3, s_read64(p + 16));
            v4 = s_round(v4, s_read64(p + 24));
            p += 32;
        } while (p <= limit);
        h = s_rotl(v1, 1) + s_rotl(v2, 7) + s_rotl(v3, 12) + s_rotl(v4, 18);
        h = s_merge(h, v1);
        h = s_merge(h, v2);
        h = s_merge(h, v3);
        h = s_merge(h, v4);
    } else {
        h = seed + P5;
    }
    h += (uint64_t)len;

    while (end - p >= 8) {
        h ^= s_round(0, s_read64(p));
        h = s_rotl(h, 27) * P1 + P4;
        p += 8;
    }
    if (end - p >= 4) {
        h ^= (uint64_t)s_read32(p) * P1;
        h = s_rotl(h, 23) * P2 + P3;
        p += 4;
    }
    while (p < end) {
        h ^= (uint64_t)(*p) * P5;
        h = s_rotl(h, 11) * P1;
        p++;
    }

    h ^= h >> 33;
    h *= P2;
    h ^= h >> 29;
    h *= P3;
    h ^= h >> 32;
    return h;
}

unsigned qn_hash_partition(const void *key, size_t klen, unsigned nreduce)
{
    return (unsigned)(qn_hash64(key, klen, 0) % nreduce);
}
