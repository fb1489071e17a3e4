/*
 * oldabi.c -- a word count built as against quern.h before quern_job had
 * its `output` field: quern_job_v1 is the shorter struct of that time.
 * The runner must read only what the plugin defines (the symbol's size)
 * and treat the rest as zero: output stays `key<TAB>value<LF>`.
 */
#include <quern.h>

#include <stdio.h>

/* quern_job as it was: everything up to teardown. */
struct old_job {
    unsigned abi;
    const char *name;
    enum quern_input input;
    size_t record_size;
    int (*map)(quern_task *, const void *, size_t, const void *, size_t);
    int (*reduce)(quern_task *, const void *, size_t, quern_values *);
    int (*combine)(quern_task *, const void *, size_t, quern_values *);
    unsigned (*partition)(quern_task *, const void *, size_t, unsigned);
    int (*compare)(const void *, size_t, const void *, size_t);
    int (*setup)(quern_task *);
    void (*teardown)(quern_task *);
};

static int old_map(quern_task *t, const void *key, size_t klen, const void *val,
                   size_t vlen)
{
    (void)key;
    (void)klen;
    const char *s = val;
    size_t i = 0;
    while (i < vlen) {
        while (i < vlen && s[i] == ' ')
            i++;
        size_t b = i;
        while (i < vlen && s[i] != ' ')
            i++;
        if (i > b && quern_emit(t, s + b, i - b, "1", 1) < 0)
            return -1;
    }
    return 0;
}

static int old_reduce(quern_task *t, const void *key, size_t klen,
                      quern_values *vs)
{
    const void *v;
    size_t vl;
    unsigned long long n = 0;
    while (quern_next(vs, &v, &vl))
        n++;
    char b[32];
    int len = snprintf(b, sizeof b, "%llu", n);
    return quern_emit(t, key, klen, b, (size_t)len) < 0 ? -1 : 0;
}

const struct old_job quern_job_v1 = {
    .abi = QUERN_ABI, .name = "oldabi", .map = old_map, .reduce = old_reduce};
