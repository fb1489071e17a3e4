/*
 * wordcount.c -- count how often each word occurs.
 *
 * A word is a maximal run of bytes other than space and tab. The map emits
 * (word, "1") for each; the reduce adds the counts up. The same function
 * serves as the combiner: it runs on each map's sorted output before it is
 * written, so a word seen a million times in a split crosses the network
 * once, as "1000000".
 *
 *   quern run --job build/jobs/wordcount.so --input ./books --output ./out
 */
#include <quern.h>

#include <stdio.h>
#include <stdlib.h>

static int wc_map(quern_task *t, const void *key, size_t klen, const void *val,
                  size_t vlen)
{
    (void)key;
    (void)klen;
    const char *line = val;
    size_t i = 0;
    while (i < vlen) {
        while (i < vlen && (line[i] == ' ' || line[i] == '\t'))
            i++;
        size_t start = i;
        while (i < vlen && line[i] != ' ' && line[i] != '\t')
            i++;
        if (i > start && quern_emit(t, line + start, i - start, "1", 1) < 0)
            return -1;
    }
    return 0;
}

/* Sum the counts of one word; used as both combiner and reducer. */
static int wc_reduce(quern_task *t, const void *key, size_t klen,
                     quern_values *vs)
{
    const void *val;
    size_t vlen;
    unsigned long long sum = 0;
    while (quern_next(vs, &val, &vlen)) {
        unsigned long long n = 0;
        for (size_t i = 0; i < vlen; i++) {
            char c = ((const char *)val)[i];
            if (c < '0' || c > '9')
                return quern_fail(t, "count '%.*s' is not a number", (int)vlen,
                                  (const char *)val);
            n = n * 10 + (unsigned)(c - '0');
        }
        sum += n;
    }
    char out[24];
    int n = snprintf(out, sizeof out, "%llu", sum);
    return quern_emit(t, key, klen, out, (size_t)n);
}

QUERN_JOB(.name = "wordcount", .map = wc_map, .reduce = wc_reduce,
          .combine = wc_reduce);
