/*
 * hash.h -- the default partitioner's hash.
 *
 * Quern partitions keys with XXH64 (xxHash, 64-bit variant, seed 0) of the
 * key bytes, modulo the number of reducers; hash.c takes XXH64 from
 * libxxhash. XXH64 is specified independently of any machine (it reads
 * input as little-endian words), so a key lands in the same partition on
 * every machine and every version. Test vectors in tests/test_hash.c pin it.
 */
#ifndef QN_HASH_H
#define QN_HASH_H

#include <stddef.h>
#include <stdint.h>

/* XXH64 of len bytes at p with the given seed (p may be NULL if len is 0). */
uint64_t qn_hash64(const void *p, size_t len, uint64_t seed);

/* The default partition of a key: qn_hash64(key, klen, 0) % nreduce. */
unsigned qn_hash_partition(const void *key, size_t klen, unsigned nreduce);

#endif
