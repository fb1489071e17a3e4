/*
 * faulty.c -- a word count that misbehaves on request, for fault tests.
 *
 * Job arguments (--arg NAME=VALUE):
 *   fail=segv|abort|exit|error|hang   what to do (default: nothing)
 *   at=N            on the Nth map record of each attempt (default 0)
 *   phase=map|reduce|setup            where (default map)
 *   sleep_ms=N      sleep this long before each map record (a slow job)
 *   reduce_sleep_ms=N  sleep this long for each value in reduce
 *   fail=binary     fail with a message holding bytes that are not UTF-8
 *   fifo=PATH       on map setup, write "started PID" to this FIFO, so a
 *                   test learns without polling that an attempt runs
 */
#include <quern.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static unsigned long long seen;

static long arg_num(quern_task *t, const char *name, long dflt)
{
    const char *v = quern_arg(t, name);
    return v ? atol(v) : dflt;
}

static int is_phase(quern_task *t, const char *phase)
{
    const char *p = quern_arg(t, "phase");
    return strcmp(p ? p : "map", phase) == 0;
}

/* Misbehave as asked at record idx; returns only for fail=error. */
static int misbehave(quern_task *t, unsigned long long idx)
{
    const char *f = quern_arg(t, "fail");
    if (!f)
        return 0;
    if (strcmp(f, "segv") == 0)
        raise(SIGSEGV);
    if (strcmp(f, "abort") == 0)
        abort();
    if (strcmp(f, "exit") == 0)
        exit(7);
    if (strcmp(f, "hang") == 0)
        for (;;)
            pause();
    if (strcmp(f, "binary") == 0)
        return quern_fail(t, "bad byte \xff here");
    if (strcmp(f, "error") == 0)
        return quern_fail(t, "faulty: failing on purpose at record %llu", idx);
    return 0;
}

static int f_setup(quern_task *t)
{
    const char *fifo = quern_arg(t, "fifo");
    if (fifo && quern_arg(t, "fail") && !is_phase(t, "reduce")) {
        FILE *f = fopen(fifo, "w");
        if (f) {
            fprintf(f, "started %d\n", (int)getpid());
            fclose(f);
        }
    }
    return is_phase(t, "setup") ? misbehave(t, 0) : 0;
}

static int f_map(quern_task *t, const void *key, size_t klen, const void *val,
                 size_t vlen)
{
    (void)key;
    (void)klen;
    long ms = arg_num(t, "sleep_ms", 0);
    if (ms > 0) {
        struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
        nanosleep(&ts, NULL);
    }
    unsigned long long idx = seen++;
    if (is_phase(t, "map") && idx == (unsigned long long)arg_num(t, "at", 0))
        if (misbehave(t, idx) != 0)
            return -1;
    const char *line = val;
    size_t i = 0;
    while (i < vlen) {
        while (i < vlen && (line[i] == ' ' || line[i] == '\t'))
            i++;
        size_t s = i;
        while (i < vlen && line[i] != ' ' && line[i] != '\t')
            i++;
        if (i > s && quern_emit(t, line + s, i - s, "1", 1) < 0)
            return -1;
    }
    return 0;
}

static int f_reduce(quern_task *t, const void *key, size_t klen,
                    quern_values *vs)
{
    if (is_phase(t, "reduce") && misbehave(t, 0) != 0)
        return -1;
    const void *v;
    size_t vl;
    unsigned long long n = 0;
    long ms = arg_num(t, "reduce_sleep_ms", 0);
    while (quern_next(vs, &v, &vl)) {
        n += strtoull(v, NULL, 10);
        if (ms > 0) {
            struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
            nanosleep(&ts, NULL);
        }
    }
    char out[24];
    int len = snprintf(out, sizeof out, "%llu", n);
    return quern_emit(t, key, klen, out, (size_t)len);
}

QUERN_JOB(.name = "faulty", .map = f_map, .reduce = f_reduce, .setup = f_setup);
