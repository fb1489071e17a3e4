/*
 * noreduce.c -- a plugin whose job has a map and no reduce: quern refuses
 * it before anything starts.
 */
#include <quern.h>

static int nr_map(quern_task *t, const void *key, size_t klen, const void *val,
                  size_t vlen)
{
    (void)key;
    (void)klen;
    return quern_emit(t, val, vlen, "1", 1);
}

QUERN_JOB(.name = "noreduce", .map = nr_map);
