/*
 * shipped.c -- a job that reads a file shipped with it (--file), for
 * tests: the file named by `--arg file=NAME` is opened by that name,
 * relative to the task's working directory, where a map and a reduce
 * find the files their job ships.
 *
 * Each map emits every line of the file (value "1") and ignores its
 * input; each reduce writes a line and how many maps emitted it. Every
 * task, map or reduce, opens the file in its setup (failing the attempt,
 * saying why, when it cannot) and counts:
 *   file_opened               it could be opened for reading
 *   file_mode_writable        its mode lets someone write it (it should
 *                             be 0444)
 *   file_opened_for_writing   open(O_WRONLY) succeeded (as root it does
 *                             whatever the mode), else
 *   file_write_refused        ... it failed (the error is on stderr)
 */
#include <quern.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int emitted; /* this task's map emitted the file's lines */

/* Can the shipped file be written? Counted, and said on stderr. */
static void s_try_write(quern_task *t, const char *name)
{
    struct stat st;
    if (stat(name, &st) == 0 && (st.st_mode & 0222))
        quern_count(t, "file_mode_writable", 1);
    int fd = open(name, O_WRONLY | O_CLOEXEC);
    if (fd >= 0) {
        quern_count(t, "file_opened_for_writing", 1);
        close(fd);
        return;
    }
    fprintf(stderr, "shipped: %s cannot be opened for writing: %s\n", name,
            strerror(errno));
    quern_count(t, "file_write_refused", 1);
}

static int sh_setup(quern_task *t)
{
    const char *name = quern_arg(t, "file");
    if (!name)
        return quern_fail(t, "shipped needs --arg file=NAME");
    emitted = 0;
    FILE *f = fopen(name, "r");
    if (!f) {
        char cwd[4096];
        if (!getcwd(cwd, sizeof cwd))
            snprintf(cwd, sizeof cwd, "?");
        return quern_fail(t, "shipped: cannot open %s in %s: %s", name, cwd,
                          strerror(errno));
    }
    fclose(f);
    quern_count(t, "file_opened", 1);
    s_try_write(t, name);
    return 0;
}

/* The first record of a map: every line of the file, emitted. */
static int sh_map(quern_task *t, const void *key, size_t klen, const void *val,
                  size_t vlen)
{
    (void)key, (void)klen, (void)val, (void)vlen;
    if (emitted)
        return 0;
    emitted = 1;
    const char *name = quern_arg(t, "file");
    FILE *f = fopen(name, "r");
    if (!f)
        return quern_fail(t, "shipped: cannot open %s: %s", name,
                          strerror(errno));
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    int rc = 0;
    while (rc == 0 && (n = getline(&line, &cap, f)) >= 0) {
        if (n > 0 && line[n - 1] == '\n')
            n--;
        if (n > 0)
            rc = quern_emit(t, line, (size_t)n, "1", 1);
    }
    free(line);
    fclose(f);
    return rc;
}

static int sh_reduce(quern_task *t, const void *key, size_t klen,
                     quern_values *vs)
{
    const void *val;
    size_t vlen;
    unsigned long long sum = 0;
    while (quern_next(vs, &val, &vlen))
        sum += strtoull(val, NULL, 10);
    char out[24];
    int n = snprintf(out, sizeof out, "%llu", sum);
    return quern_emit(t, key, klen, out, (size_t)n);
}

QUERN_JOB(.name = "shipped", .map = sh_map, .reduce = sh_reduce,
          .setup = sh_setup);
