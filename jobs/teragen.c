/*
 * teragen.c -- make TeraSort input: 100-byte records, deterministically.
 *
 * Each input line is "FIRST COUNT" (trailing spaces allowed: a line padded
 * to the split size gets a map of its own): the map makes rows FIRST to
 * FIRST + COUNT - 1. Row r's record depends on r alone: a 10-byte key of
 * printable characters drawn from a hash of r, a space, r in 16 hex
 * digits, a space, filler letters, and a newline: 100 bytes that
 * LC_ALL=C sort sees as one line. `--arg rows=N` (the total) spreads the
 * rows evenly over the reducers in order, so part-00000, part-00001...
 * hold rows 0 to N - 1, one after the other (QUERN_OUTPUT_RAW).
 *
 *   printf '%-1023s\n' '0 5000000' '5000000 5000000' >ranges
 *   quern run --job build/jobs/teragen.so --input ./ranges --output ./gen \
 *       -R 2 --arg rows=10000000 --split-size 1K
 */
#include <quern.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RECORD 100
#define KEY 10

static unsigned long long rows; /* --arg rows */

static uint64_t s_mix(uint64_t z)
{
    z += 0x9E3779B97F4A7C15ULL;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

static void s_record(unsigned long long r, char *out)
{
    uint64_t h = s_mix(r), h2 = s_mix(r ^ 0x5bd1e995ULL);
    for (int i = 0; i < KEY; i++) {
        if (i == 5)
            h = h2;
        out[i] = (char)(' ' + h % 95); /* ' ' to '~' */
        h /= 95;
    }
    int n = snprintf(out + KEY, RECORD - KEY, " %016llx ", r);
    for (int i = KEY + n; i < RECORD - 1; i++)
        out[i] = (char)('A' + (r + (unsigned)i) % 26);
    out[RECORD - 1] = '\n';
}

static int tg_setup(quern_task *t)
{
    const char *v = quern_arg(t, "rows");
    char *end;
    rows = v ? strtoull(v, &end, 10) : 0;
    if (!v || *end || rows == 0)
        return quern_fail(t, "teragen needs --arg rows=N, the number of "
                             "rows in all (N > 0)");
    return 0;
}

static int tg_map(quern_task *t, const void *key, size_t klen, const void *val,
                  size_t vlen)
{
    (void)key;
    (void)klen;
    char line[64];
    unsigned long long first, count;
    if (vlen == 0)
        return 0;
    /* Lines may be padded with spaces (to the split size: a map each). */
    size_t n = vlen < sizeof line - 1 ? vlen : sizeof line - 1;
    memcpy(line, val, n);
    line[n] = '\0';
    if (sscanf(line, "%llu %llu", &first, &count) != 2 || first >= rows ||
        count > rows - first)
        return quern_fail(t,
                          "teragen: '%s' is not 'FIRST COUNT' within "
                          "rows=%llu",
                          line, rows);
    char rec[RECORD];
    for (unsigned long long r = first; r < first + count; r++) {
        unsigned char k[8];
        for (int i = 0; i < 8; i++)
            k[i] = (unsigned char)(r >> (56 - 8 * i)); /* sorts as r */
        s_record(r, rec);
        if (quern_emit(t, k, sizeof k, rec, RECORD) < 0)
            return -1;
    }
    quern_count(t, "rows", (long long)count);
    return 0;
}

/* Rows in order, spread evenly over the reducers. */
static unsigned tg_partition(quern_task *t, const void *key, size_t klen,
                             unsigned nreduce)
{
    (void)t;
    unsigned long long r = 0;
    const unsigned char *k = key;
    for (size_t i = 0; i < klen && i < 8; i++)
        r = r << 8 | k[i];
    return (unsigned)((unsigned __int128)r * nreduce / rows);
}

/* The record itself: RAW output writes the key's bytes, then nothing. */
static int tg_reduce(quern_task *t, const void *key, size_t klen,
                     quern_values *vs)
{
    (void)key;
    (void)klen;
    const void *val;
    size_t vlen;
    while (quern_next(vs, &val, &vlen))
        if (quern_emit(t, val, vlen, "", 0) < 0)
            return -1;
    return 0;
}

QUERN_JOB(.name = "teragen", .map = tg_map, .reduce = tg_reduce,
          .partition = tg_partition, .setup = tg_setup,
          .output = QUERN_OUTPUT_RAW);
