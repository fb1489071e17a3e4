/* nomap.c -- a plugin that forgot its map function (for tests). */
#include <quern.h>

static int r(quern_task *t, const void *k, size_t kl, quern_values *vs)
{
    (void)t;
    (void)k;
    (void)kl;
    (void)vs;
    return 0;
}

QUERN_JOB(.name = "nomap", .reduce = r);
