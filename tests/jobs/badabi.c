/* badabi.c -- a plugin built for a future plugin ABI (for tests). */
#include <quern.h>

static int m(quern_task *t, const void *k, size_t kl, const void *v, size_t vl)
{
    return quern_emit(t, k, kl, v, vl);
}

static int r(quern_task *t, const void *k, size_t kl, quern_values *vs)
{
    (void)t;
    (void)k;
    (void)kl;
    (void)vs;
    return 0;
}

const quern_job quern_job_v1 = {
    .abi = QUERN_ABI + 1, .name = "badabi", .map = m, .reduce = r};
