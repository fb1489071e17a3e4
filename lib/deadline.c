/*
 * deadline.c -- see deadline.h.
 */
#include "deadline.h"

#include "util.h"

#include <stdlib.h>

/* Is a due before b? Ties keep no particular order. */
static int s_before(const qn_due *a, const qn_due *b)
{
    return a->at < b->at;
}

static void s_swap(qn_due *h, size_t i, size_t j)
{
    qn_due t = h[i];
    h[i] = h[j];
    h[j] = t;
}

void qn_deadline_release(qn_deadline *d)
{
    free(d->heap);
    *d = (qn_deadline){0};
}

void qn_deadline_add(qn_deadline *d, int64_t at, int kind, uint64_t key)
{
    QN_GROW(d->heap, d->cap, d->n + 1);
    size_t i = d->n++;
    d->heap[i] = (qn_due){at, kind, key};
    while (i > 0 && s_before(&d->heap[i], &d->heap[(i - 1) / 2])) {
        s_swap(d->heap, i, (i - 1) / 2);
        i = (i - 1) / 2;
    }
}

int64_t qn_deadline_next(const qn_deadline *d)
{
    return d->n ? d->heap[0].at : INT64_MAX;
}

int qn_deadline_pop(qn_deadline *d, int64_t now, qn_due *out)
{
    if (!d->n || d->heap[0].at > now)
        return 0;
    *out = d->heap[0];
    d->heap[0] = d->heap[--d->n];
    for (size_t i = 0;;) {
        size_t l = 2 * i + 1, r = l + 1, min = i;
        if (l < d->n && s_before(&d->heap[l], &d->heap[min]))
            min = l;
        if (r < d->n && s_before(&d->heap[r], &d->heap[min]))
            min = r;
        if (min == i)
            break;
        s_swap(d->heap, i, min);
        i = min;
    }
    return 1;
}
