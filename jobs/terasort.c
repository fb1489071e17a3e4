/*
 * terasort.c -- sort 100-byte records, TeraSort style.
 *
 * Input: records of 100 bytes, each ending in a newline (jobs/teragen.c
 * makes them), read as QUERN_FIXED. The whole record is the key and the
 * value is empty, so records are compared byte by byte as LC_ALL=C sort
 * compares lines; equal records all reach the reduce, which writes each
 * one back (QUERN_OUTPUT_RAW: no tab, no newline added).
 *
 * The partitioner samples the input so that every key of partition i is
 * below every key of partition i + 1: the part files, concatenated in
 * order, are the sorted input. Each task's setup reads the same evenly
 * spaced sample of record prefixes from the file (or folder of files)
 * named by `--arg sample=NAME` and picks R - 1 cut points; a record goes
 * to the partition its first PREFIX bytes fall in, so records with equal
 * prefixes share a partition. A task reads only its own input and the
 * files shipped with the job, so the sample is a piece of the input
 * shipped with --file, as Hadoop's TeraSort ships its partition file:
 *
 *   head -c 10000000 gen/part-00000 >tera-sample
 *   quern run --job build/jobs/terasort.so --input ./gen --output ./sorted \
 *       -R 4 --file tera-sample --arg sample=tera-sample
 */
#include <quern.h>

#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define RECORD 100     /* bytes per record */
#define PREFIX 10      /* bytes of a record that choose its partition */
#define SAMPLES 10000  /* records sampled to choose the cut points */
#define MAX_FILES 4096 /* input files sampled at most */

typedef struct {
    char path[4096];
    unsigned long long records;
} s_file;

static unsigned char *cuts; /* (reducers - 1) prefixes, ascending */
static unsigned ncuts;

static int s_prefix_cmp(const void *a, const void *b)
{
    return memcmp(a, b, PREFIX);
}

static int s_name_cmp(const void *a, const void *b)
{
    return strcmp(((const s_file *)a)->path, ((const s_file *)b)->path);
}

/* The input files (a file, or a folder's files not named . or _...). */
static int s_files(quern_task *t, const char *path, s_file *files, size_t *n)
{
    struct stat st;
    *n = 0;
    if (stat(path, &st) < 0)
        return quern_fail(t,
                          "terasort: sample=%s: cannot read it (a task "
                          "reads its own input and the files shipped with "
                          "the job: ship a sample with --file)",
                          path);
    if (S_ISREG(st.st_mode)) {
        snprintf(files[0].path, sizeof files[0].path, "%s", path);
        files[0].records = (unsigned long long)st.st_size / RECORD;
        *n = 1;
        return 0;
    }
    DIR *d = opendir(path);
    if (!d)
        return quern_fail(t, "terasort: sample=%s: cannot open it", path);
    struct dirent *e;
    while ((e = readdir(d)) != NULL && *n < MAX_FILES) {
        if (e->d_name[0] == '.' || e->d_name[0] == '_')
            continue;
        s_file *f = &files[*n];
        snprintf(f->path, sizeof f->path, "%s/%s", path, e->d_name);
        if (stat(f->path, &st) < 0 || !S_ISREG(st.st_mode))
            continue;
        f->records = (unsigned long long)st.st_size / RECORD;
        (*n)++;
    }
    closedir(d);
    qsort(files, *n, sizeof *files, s_name_cmp);
    return 0;
}

/* The first len bytes of path, mapped read-only, or NULL. */
static const unsigned char *s_map(const char *path, size_t len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return NULL;
    void *p = mmap(NULL, len, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    return p == MAP_FAILED ? NULL : p;
}

static int ts_setup(quern_task *t)
{
    unsigned r = quern_reducers(t);
    if (r < 2)
        return 0;
    const char *sample = quern_arg(t, "sample");
    if (!sample)
        return quern_fail(t, "terasort needs --arg sample=PATH (a sample of "
                             "its input shipped with --file, to choose the "
                             "partitions' boundaries)");
    s_file *files = calloc(MAX_FILES, sizeof *files);
    size_t nfiles;
    if (!files)
        return quern_fail(t, "terasort: out of memory");
    if (s_files(t, sample, files, &nfiles) != 0) {
        free(files);
        return -1;
    }
    unsigned long long total = 0;
    for (size_t i = 0; i < nfiles; i++)
        total += files[i].records;
    if (total == 0) {
        free(files);
        return quern_fail(t, "terasort: sample=%s holds no records", sample);
    }
    unsigned long long want = total < SAMPLES ? total : SAMPLES;
    unsigned char *keys = malloc(want * PREFIX);
    if (!keys) {
        free(files);
        return quern_fail(t, "terasort: out of memory");
    }
    /* Record k * total / want of the files taken end to end, read from
     * each file mapped whole: one page fault per few records, not a
     * system call per record (10,000 per task otherwise). */
    size_t f = 0, got = 0;
    unsigned long long base = 0;
    const unsigned char *map = NULL;
    size_t maplen = 0;
    for (unsigned long long k = 0; k < want; k++) {
        unsigned long long rec = k * total / want;
        while (rec >= base + files[f].records) {
            base += files[f++].records;
            if (map)
                munmap((void *)map, maplen);
            map = NULL;
        }
        if (!map) {
            maplen = (size_t)(files[f].records * RECORD);
            map = s_map(files[f].path, maplen);
            if (!map)
                continue;
        }
        memcpy(keys + got++ * PREFIX, map + (rec - base) * RECORD, PREFIX);
    }
    if (map)
        munmap((void *)map, maplen);
    free(files);
    qsort(keys, got, PREFIX, s_prefix_cmp);
    cuts = malloc((size_t)(r - 1) * PREFIX);
    if (!cuts || got == 0) {
        free(keys);
        return quern_fail(t, "terasort: could not sample %s", sample);
    }
    for (unsigned i = 1; i < r; i++)
        memcpy(cuts + (size_t)(i - 1) * PREFIX,
               keys + (size_t)((unsigned long long)i * got / r) * PREFIX,
               PREFIX);
    ncuts = r - 1;
    free(keys);
    return 0;
}

static void ts_teardown(quern_task *t)
{
    (void)t;
    free(cuts);
    cuts = NULL;
    ncuts = 0;
}

/* The first partition whose cut is above the key's prefix. */
static unsigned ts_partition(quern_task *t, const void *key, size_t klen,
                             unsigned nreduce)
{
    (void)t;
    unsigned char p[PREFIX] = {0};
    memcpy(p, key, klen < PREFIX ? klen : PREFIX);
    unsigned lo = 0, hi = ncuts < nreduce ? ncuts : nreduce - 1;
    while (lo < hi) {
        unsigned mid = (lo + hi) / 2;
        if (memcmp(p, cuts + (size_t)mid * PREFIX, PREFIX) < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    return lo;
}

static int ts_map(quern_task *t, const void *key, size_t klen, const void *val,
                  size_t vlen)
{
    (void)key;
    (void)klen;
    return quern_emit(t, val, vlen, "", 0) < 0 ? -1 : 0;
}

/* Each copy of a record, as it came. */
static int ts_reduce(quern_task *t, const void *key, size_t klen,
                     quern_values *vs)
{
    const void *val;
    size_t vlen;
    while (quern_next(vs, &val, &vlen))
        if (quern_emit(t, key, klen, "", 0) < 0)
            return -1;
    return 0;
}

QUERN_JOB(.name = "terasort", .input = QUERN_FIXED, .record_size = RECORD,
          .map = ts_map, .reduce = ts_reduce, .partition = ts_partition,
          .setup = ts_setup, .teardown = ts_teardown,
          .output = QUERN_OUTPUT_RAW);
