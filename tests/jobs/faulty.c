/*
 * faulty.c -- a word count that misbehaves on request, for fault tests.
 *
 * Job arguments (--arg NAME=VALUE). What to do:
 *   fail=segv|abort|exit|error|hang|binary|exit_or_hang
 *                   how to misbehave (default: not at all): SIGSEGV, abort(),
 *                   exit(7), quern_fail(), hang in pause(), quern_fail()
 *                   with a message holding bytes that are not UTF-8, or
 *                   (exit_or_hang) exit(7) or hang, by the pid's parity
 *   phase=map|reduce|setup            where (default map)
 *   teardown_fail=map|reduce  quern_fail() in the teardown of every attempt
 *                   of that kind (one that has seen a record, for map)
 *
 * When, in map (each attempt counts its records from 0). By default at
 * record `at`; prob and poison replace that trigger (either may fire):
 *   at=N            on the Nth map record of each attempt (default 0)
 *   prob=P          each attempt decides once, at setup, with a seed from
 *                   its pid and the clock, to misbehave with probability P
 *                   (0..1), at a random record among its first 50
 *   poison=STRING   on every record that contains STRING, in every attempt
 *                   (a deterministic bad record)
 * and only if every one of these that is given holds (they gate map only):
 *   bad_env=NAME    the variable NAME is set in the task's environment
 *                   (tasks inherit their worker's, so one worker is bad)
 *   fail_match=STRING  the task's shard name contains STRING
 *   fail_once=DIR   this is the first attempt of its task: at its first
 *                   record an attempt creates DIR/<hash of the shard name
 *                   and the record's offset> holding its pid; only the one
 *                   that creates it misbehaves (fail=hang: a hang, once)
 *
 * Slow tasks:
 *   sleep_ms=N      sleep this long before each map record (a slow job)
 *   reduce_sleep_ms=N  sleep this long for each value in reduce
 *   slow_once=DIR   with slow_ms=N: the first attempt of each map task, found
 *                   as for fail_once, sleeps slow_ms before every record (a
 *                   straggler); later attempts of the task run at full speed
 *   slow_match=STRING  only tasks whose shard name contains STRING are slow
 *
 * Writing to stderr (what quern logs shows):
 *   say=TEXT        at setup, write "faulty: TEXT (pid PID)" to stderr
 *
 * Telling the test what runs, without polling:
 *   fifo=PATH       on setup of an attempt of the failing phase (only with
 *                   fail=, not for phase=reduce), write "started PID" to
 *                   this FIFO (blocks until the test reads it)
 *   notify=PATH     at the first map or reduce call of every attempt (after
 *                   the claims above), append "map PID" or "reduce PID" to
 *                   PATH (a FIFO the test holds open, or a plain file);
 *                   never blocks: the line is lost when nobody reads
 */
#include <quern.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define PROB_RECORDS 50 /* prob= picks a record among this many */

static unsigned long long seen;    /* map records seen by this attempt */
static int prob_bad;               /* prob= chose this attempt to fail */
static unsigned long long prob_at; /* ... at this record */
static int mapped;                 /* map() ran since the last teardown */
static int decided;                /* the first map record was seen */
static int fail_ok = 1;            /* the gates on misbehaving hold */
static int slow;                   /* this attempt is a straggler */
static int notified_reduce;        /* "reduce PID" was written */

static long s_arg_num(quern_task *t, const char *name, long dflt)
{
    const char *v = quern_arg(t, name);
    return v ? atol(v) : dflt;
}

static int s_is_phase(quern_task *t, const char *phase)
{
    const char *p = quern_arg(t, "phase");
    return strcmp(p ? p : "map", phase) == 0;
}

static void s_sleep_ms(long ms)
{
    if (ms <= 0)
        return;
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

/* splitmix64, seeded per attempt. */
static unsigned long long s_rand(unsigned long long *state)
{
    unsigned long long z = (*state += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

/* Does the map record's key (the shard name) contain the argument's value?
 * True when the argument is not given. */
static int s_key_matches(quern_task *t, const char *arg, const void *key,
                         size_t klen)
{
    const char *m = quern_arg(t, arg);
    return !m || memmem(key, klen, m, strlen(m)) != NULL;
}

/*
 * Claim this map task in dir: create a file named for the shard name and
 * the offset of the task's first record, holding our pid. Returns 1 for the
 * attempt that created it (the task's first), 0 for later attempts or on
 * error.
 */
static int s_claim(const char *dir, const void *key, size_t klen,
                   unsigned long long offset)
{
    unsigned long long h = 1469598103934665603ULL; /* FNV-1a */
    const unsigned char *k = key;
    for (size_t i = 0; i < klen; i++)
        h = (h ^ k[i]) * 1099511628211ULL;
    for (int i = 0; i < 8; i++)
        h = (h ^ ((offset >> (8 * i)) & 0xff)) * 1099511628211ULL;
    char path[4096];
    snprintf(path, sizeof path, "%s/%016llx-%llu", dir, h, offset);
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0644);
    if (fd < 0)
        return 0;
    /* The claimant's pid, so a test can find (and stop) the odd attempt. */
    char line[32];
    int n = snprintf(line, sizeof line, "%d\n", (int)getpid());
    ssize_t w = write(fd, line, (size_t)n);
    (void)w;
    close(fd);
    return 1;
}

/* Append "PHASE PID" to the notify= file without ever blocking. */
static void s_notify(quern_task *t, const char *phase)
{
    const char *path = quern_arg(t, "notify");
    if (!path)
        return;
    int fd = open(path, O_WRONLY | O_NONBLOCK | O_APPEND | O_CLOEXEC);
    if (fd < 0)
        return; /* a FIFO nobody holds open */
    char line[64];
    int n = snprintf(line, sizeof line, "%s %d\n", phase, (int)getpid());
    /* One write under PIPE_BUF is atomic; a full pipe loses the line. */
    ssize_t w = write(fd, line, (size_t)n);
    (void)w; /* best effort: nothing to do when it fails */
    close(fd);
}

/* Misbehave as asked at record idx; returns only for fail=error|binary. */
static int s_misbehave(quern_task *t, unsigned long long idx)
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
    if (strcmp(f, "exit_or_hang") == 0 && (getpid() & 1))
        exit(7);
    if (strcmp(f, "hang") == 0 || strcmp(f, "exit_or_hang") == 0)
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
    const char *say = quern_arg(t, "say");
    if (say)
        fprintf(stderr, "faulty: %s (pid %d)\n", say, (int)getpid());
    const char *fifo = quern_arg(t, "fifo");
    if (fifo && quern_arg(t, "fail") && !s_is_phase(t, "reduce")) {
        FILE *f = fopen(fifo, "w");
        if (f) {
            fprintf(f, "started %d\n", (int)getpid());
            fclose(f);
        }
    }
    const char *p = quern_arg(t, "prob");
    if (p) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        unsigned long long st = (unsigned long long)getpid() << 32 ^
                                (unsigned long long)ts.tv_sec * 1000000007ULL ^
                                (unsigned long long)ts.tv_nsec;
        double u = (double)(s_rand(&st) >> 11) / 9007199254740992.0;
        prob_bad = u < atof(p);
        prob_at = s_rand(&st) % PROB_RECORDS;
    }
    return s_is_phase(t, "setup") ? s_misbehave(t, 0) : 0;
}

/* At the first map record: decide what this attempt does. */
static void s_decide(quern_task *t, const void *key, size_t klen)
{
    decided = 1;
    const char *name = quern_arg(t, "bad_env");
    if (name && !getenv(name))
        fail_ok = 0;
    if (!s_key_matches(t, "fail_match", key, klen))
        fail_ok = 0;
    const char *dir = quern_arg(t, "fail_once");
    if (fail_ok && dir && !s_claim(dir, key, klen, quern_offset(t)))
        fail_ok = 0;
    dir = quern_arg(t, "slow_once");
    if (dir && s_key_matches(t, "slow_match", key, klen))
        slow = s_claim(dir, key, klen, quern_offset(t));
    /* Last, so a test that reads the notice finds the claims made. */
    s_notify(t, "map");
}

/* Should map misbehave at record idx, whose value is val? */
static int s_map_fires(quern_task *t, unsigned long long idx, const void *val,
                       size_t vlen)
{
    if (!fail_ok || !s_is_phase(t, "map"))
        return 0;
    const char *poison = quern_arg(t, "poison");
    const char *prob = quern_arg(t, "prob");
    if (poison && *poison && memmem(val, vlen, poison, strlen(poison)))
        return 1;
    if (prob && prob_bad && idx == prob_at)
        return 1;
    return !poison && !prob && idx == (unsigned long long)s_arg_num(t, "at", 0);
}

static int f_map(quern_task *t, const void *key, size_t klen, const void *val,
                 size_t vlen)
{
    if (!decided)
        s_decide(t, key, klen);
    s_sleep_ms(s_arg_num(t, "sleep_ms", 0));
    if (slow)
        s_sleep_ms(s_arg_num(t, "slow_ms", 0));
    unsigned long long idx = seen++;
    mapped = 1;
    if (s_map_fires(t, idx, val, vlen) && s_misbehave(t, idx) != 0)
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

/*
 * A count emitted by map: vl decimal digits. Not a C string: what follows it
 * in memory may be the next value's digits, so strtoull() would misread it.
 */
static unsigned long long s_count_value(const void *v, size_t vl)
{
    const char *d = v;
    unsigned long long n = 0;
    for (size_t i = 0; i < vl && d[i] >= '0' && d[i] <= '9'; i++)
        n = n * 10 + (unsigned long long)(d[i] - '0');
    return n;
}

static int f_reduce(quern_task *t, const void *key, size_t klen,
                    quern_values *vs)
{
    if (!notified_reduce) {
        notified_reduce = 1;
        s_notify(t, "reduce");
    }
    if (s_is_phase(t, "reduce") && s_misbehave(t, 0) != 0)
        return -1;
    const void *v;
    size_t vl;
    unsigned long long n = 0;
    long ms = s_arg_num(t, "reduce_sleep_ms", 0);
    while (quern_next(vs, &v, &vl)) {
        n += s_count_value(v, vl);
        s_sleep_ms(ms);
    }
    char out[24];
    int len = snprintf(out, sizeof out, "%llu", n);
    return quern_emit(t, key, klen, out, (size_t)len);
}

static void f_teardown(quern_task *t)
{
    const char *k = quern_arg(t, "teardown_fail");
    int map = mapped;
    mapped = 0; /* quern run --inline may run the next task in this process */
    if (k && strcmp(k, map ? "map" : "reduce") == 0)
        quern_fail(t, "faulty: %s teardown failing on purpose", k);
}

QUERN_JOB(.name = "faulty", .map = f_map, .reduce = f_reduce, .setup = f_setup,
          .teardown = f_teardown);
