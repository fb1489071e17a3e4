/*
 * invindex.c -- an inverted index: for each word, the sorted list of
 * shards (files) it occurs in, without repeats.
 *
 * Output lines are `WORD<TAB>SHARD,SHARD,...`. The combiner drops repeats
 * within one map's output, so a word that appears on every line of a file
 * is shuffled once per file; the reducer sorts and de-duplicates what is
 * left.
 */
#include <quern.h>

#include <stdlib.h>
#include <string.h>

/* A shard name stored in a task's value buffer: offset and length. */
typedef struct {
    size_t off, n;
} span;

/* The buffer spans point into, for qsort's comparator (one task per
 * process, so a static is safe). */
static const char *base;

static int span_cmp(const void *a, const void *b)
{
    const span *x = a, *y = b;
    size_t n = x->n < y->n ? x->n : y->n;
    int c = memcmp(base + x->off, base + y->off, n);
    return c ? c : (x->n > y->n) - (x->n < y->n);
}

static int ii_map(quern_task *t, const void *key, size_t klen, const void *val,
                  size_t vlen)
{
    const char *line = val;
    size_t i = 0;
    while (i < vlen) {
        while (i < vlen && (line[i] == ' ' || line[i] == '\t'))
            i++;
        size_t start = i;
        while (i < vlen && line[i] != ' ' && line[i] != '\t')
            i++;
        if (i > start && quern_emit(t, line + start, i - start, key, klen) < 0)
            return -1;
    }
    return 0;
}

/*
 * Collect the distinct shards of one word, sorted, into *buf and *out. The
 * values are copied because quern_next's pointers last only until the next
 * call.
 */
static int collect(quern_task *t, quern_values *vs, char **buf, span **out,
                   size_t *count)
{
    size_t cap = 0, used = 0, n = 0, ncap = 0;
    const void *val;
    size_t vlen;
    *buf = NULL;
    *out = NULL;
    *count = 0;
    while (quern_next(vs, &val, &vlen)) {
        if (used + vlen > cap) {
            cap = (used + vlen) * 2 + 64;
            char *nb = realloc(*buf, cap);
            if (!nb)
                return quern_fail(t, "out of memory");
            *buf = nb;
        }
        if (n == ncap) {
            ncap = ncap * 2 + 8;
            span *ns = realloc(*out, ncap * sizeof *ns);
            if (!ns)
                return quern_fail(t, "out of memory");
            *out = ns;
        }
        memcpy(*buf + used, val, vlen);
        (*out)[n++] = (span){used, vlen};
        used += vlen;
    }
    base = *buf;
    if (n > 1)
        qsort(*out, n, sizeof **out, span_cmp);
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (k == 0 || span_cmp(&(*out)[k - 1], &(*out)[i]) != 0)
            (*out)[k++] = (*out)[i];
    *count = k;
    return 0;
}

static int ii_combine(quern_task *t, const void *key, size_t klen,
                      quern_values *vs)
{
    char *buf;
    span *s;
    size_t n;
    int rc = collect(t, vs, &buf, &s, &n);
    for (size_t i = 0; rc == 0 && i < n; i++)
        rc = quern_emit(t, key, klen, buf + s[i].off, s[i].n);
    free(buf);
    free(s);
    return rc;
}

static int ii_reduce(quern_task *t, const void *key, size_t klen,
                     quern_values *vs)
{
    char *buf, *list = NULL;
    span *s;
    size_t n, len = 0;
    int rc = collect(t, vs, &buf, &s, &n);
    if (rc == 0) {
        size_t total = 0;
        for (size_t i = 0; i < n; i++)
            total += s[i].n + 1;
        list = malloc(total + 1);
        if (!list)
            rc = quern_fail(t, "out of memory");
        for (size_t i = 0; rc == 0 && i < n; i++) {
            if (i)
                list[len++] = ',';
            memcpy(list + len, buf + s[i].off, s[i].n);
            len += s[i].n;
        }
    }
    if (rc == 0)
        rc = quern_emit(t, key, klen, list, len);
    free(list);
    free(buf);
    free(s);
    return rc;
}

QUERN_JOB(.name = "invindex", .map = ii_map, .reduce = ii_reduce,
          .combine = ii_combine);
