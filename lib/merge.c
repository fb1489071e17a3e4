/*
 * merge.c -- see merge.h. A binary min-heap of sources keyed by their
 * current record; ties go to the lower source index.
 */
#include "merge.h"

#include "util.h"

#include <stdio.h>
#include <stdlib.h>

typedef struct {
    qn_blockreader *r;
    size_t index; /* position among the sources, breaks ties */
    const void *key, *val;
    size_t klen, vlen;
} s_source;

struct qn_merge {
    qn_cmp_fn cmp;
    s_source *heap; /* live sources, heap-ordered */
    size_t n;       /* live sources */
    int started;    /* every source has its first record */
    int popped;     /* the top was taken and must advance */
    long failed;    /* index of the source that failed, or -1 */
    int failed_rc;  /* what its reader returned; peek returns it again */
    char err[300];
};

qn_merge *qn_merge_new(qn_cmp_fn cmp, qn_blockreader **sources, size_t n)
{
    qn_merge *m = qn_calloc(1, sizeof *m);
    m->cmp = cmp ? cmp : qn_key_cmp;
    m->heap = qn_calloc(n ? n : 1, sizeof *m->heap);
    for (size_t i = 0; i < n; i++) {
        m->heap[i].r = sources[i];
        m->heap[i].index = i;
    }
    m->n = n;
    m->failed = -1;
    return m;
}

void qn_merge_destroy(qn_merge **self_p)
{
    qn_merge *m = *self_p;
    if (!m)
        return;
    free(m->heap);
    free(m);
    *self_p = NULL;
}

static int s_less(const qn_merge *m, const s_source *a, const s_source *b)
{
    int c = m->cmp(a->key, a->klen, b->key, b->klen);
    return c < 0 || (c == 0 && a->index < b->index);
}

static void s_down(qn_merge *m, size_t i)
{
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= m->n)
            return;
        if (c + 1 < m->n && s_less(m, &m->heap[c + 1], &m->heap[c]))
            c++;
        if (!s_less(m, &m->heap[c], &m->heap[i]))
            return;
        s_source t = m->heap[i];
        m->heap[i] = m->heap[c];
        m->heap[c] = t;
        i = c;
    }
}

/* Read source i's next record; 1, 0 when done, <0 on error. */
static int s_advance(qn_merge *m, s_source *s)
{
    int rc = qn_blockreader_next(s->r, &s->key, &s->klen, &s->val, &s->vlen);
    if (rc < 0) {
        snprintf(m->err, sizeof m->err, "%s", qn_blockreader_error(s->r));
        m->failed = (long)s->index;
        m->failed_rc = rc;
    }
    return rc;
}

/* Drop heap slot i (its source is done) and restore the heap. */
static void s_remove_top(qn_merge *m)
{
    m->heap[0] = m->heap[--m->n];
    s_down(m, 0);
}

int qn_merge_peek(qn_merge *m, const void **key, size_t *klen, const void **val,
                  size_t *vlen)
{
    /* Once a source fails the merge stays failed: its heap may be half
     * built, or topped by a source that cannot advance. */
    if (m->failed >= 0)
        return m->failed_rc;
    if (!m->started) {
        size_t live = 0;
        for (size_t i = 0; i < m->n; i++) {
            int rc = s_advance(m, &m->heap[i]);
            if (rc < 0)
                return rc;
            if (rc > 0)
                m->heap[live++] = m->heap[i];
        }
        m->n = live;
        for (size_t i = m->n / 2; i-- > 0;)
            s_down(m, i);
        m->started = 1;
    } else if (m->popped) {
        m->popped = 0;
        int rc = s_advance(m, &m->heap[0]);
        if (rc < 0)
            return rc;
        if (rc == 0)
            s_remove_top(m);
        else
            s_down(m, 0);
    }
    if (m->n == 0)
        return 0;
    *key = m->heap[0].key;
    *klen = m->heap[0].klen;
    *val = m->heap[0].val;
    *vlen = m->heap[0].vlen;
    return 1;
}

void qn_merge_pop(qn_merge *m)
{
    m->popped = 1;
}

const char *qn_merge_error(const qn_merge *m)
{
    return m->err;
}

long qn_merge_failed(const qn_merge *m)
{
    return m->failed;
}
