/*
 * hash.c -- qn_hash64 is XXH64 from Debian's libxxhash.
 *
 * xxhash.h is included in its inline mode (XXH_INLINE_ALL): XXH64 is
 * compiled into this file as a static function, so qn_hash64 reaches it by
 * a direct jump instead of through libxxhash.so's PLT, and nothing is taken
 * from the shared library at run time. qn_hash64 runs once per record a
 * map task emits (qn_task_partition), where that call costs about a tenth
 * of a short key's hash. XXH64's output is fixed by its specification,
 * whatever version of the header a build uses; tests/test_hash.c pins it.
 */
#include "hash.h"

#define XXH_INLINE_ALL
#include <xxhash.h>

uint64_t qn_hash64(const void *p, size_t len, uint64_t seed)
{
    return XXH64(p, len, seed);
}

unsigned qn_hash_partition(const void *key, size_t klen, unsigned nreduce)
{
    return (unsigned)(qn_hash64(key, klen, 0) % nreduce);
}
