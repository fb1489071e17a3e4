/*
 * reducetask.c -- a reduce attempt: fetch this partition of every map
 * output into local segment files, merge them (in passes of at most
 * QN_MERGE_FANIN), call reduce once per key, and write the output to
 * _temporary/JOB/part-NNNNN.aATTEMPT in the output folder. The master
 * renames it to part-NNNNN when it accepts the attempt's success, so a
 * partition is renamed into place once, whatever other attempts ran.
 *
 * A fetched segment passed its CRC checks, so a record that does not
 * decode when merged means the map's output itself is bad: the attempt
 * fails, and reports that output lost so that the master runs the map
 * again (another attempt of this reduce would only fail the same way).
 */
#include "reducetask.h"

#include "compress.h"
#include "fetch.h"
#include "merge.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

typedef struct {
    int fd;
    qn_blockreader r;
} s_seg;

/* The attempt's segments, merge passes and output. */
typedef struct {
    char **segs;  /* segment files, in map order */
    char **names; /* the map output each holds, for messages */
    size_t nsegs;
    unsigned seq;     /* merge pass outputs made so far */
    qn_fetched *from; /* the map output each fetched segment holds */
    size_t nfrom;
} s_reduce;

/*
 * The reader r of segment file path failed. If it found corrupt data in a
 * fetched segment, report that map output lost, and make the attempt's
 * failure say whose output it was and where (r's error names both).
 */
static void s_charge(quern_task *t, const s_reduce *rd, const char *path,
                     const qn_blockreader *r)
{
    const qn_fetched *f = r->failed == -QN_ECORRUPT
                              ? qn_fetched_find(rd->from, rd->nfrom, path)
                              : NULL;
    if (!f)
        return;
    const char *err = qn_blockreader_error(r);
    /* The master's log names the map output already: say just what is
     * wrong with it, as for a block found corrupt when fetched. */
    const char *what = err;
    size_t nl = strlen(r->name);
    if (strncmp(err, r->name, nl) == 0 && strncmp(err + nl, ": ", 2) == 0)
        what = err + nl + 2;
    char why[512];
    snprintf(why, sizeof why, "corrupt data: %s, found when merging", what);
    if (qn_task_fetch_failed(t, f->map, f->attempt, 0, 1, why) < 0)
        fprintf(stderr, "cannot report map %u lost: the worker is gone\n",
                f->map);
    snprintf(t->fail, sizeof t->fail,
             "%s; reported lost, so that map %u runs again", err, f->map);
}

/*
 * Open segment files as block readers, named for error messages by
 * names[i] (the map output a fetched segment holds) or else their path.
 * Returns 0 or -1 (t->fail).
 */
static int s_open_segs(quern_task *t, char **paths, char **names, size_t n,
                       s_seg *segs, qn_blockreader **src)
{
    for (size_t i = 0; i < n; i++)
        segs[i].fd = -1;
    for (size_t i = 0; i < n; i++) {
        segs[i].fd = open(paths[i], O_RDONLY | O_CLOEXEC);
        struct stat st;
        if (segs[i].fd < 0 || fstat(segs[i].fd, &st) < 0)
            return qn_task_failf(t, "cannot open %s: %s", paths[i],
                                 strerror(errno));
        qn_blockreader_init(&segs[i].r, segs[i].fd,
                            names && names[i] ? names[i] : paths[i], 0,
                            (uint64_t)st.st_size);
        src[i] = &segs[i].r;
    }
    return 0;
}

/*
 * Close segments opened by s_open_segs. Segments fetched from maps (those
 * with a name) add what they decoded to the shuffle's raw byte count.
 */
static void s_close_segs(quern_task *t, s_seg *segs, char **names, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (segs[i].fd < 0)
            continue;
        if (names && names[i])
            qn_task_count(t, QN_C_SHUFFLE_RAW, (long long)segs[i].r.raw_bytes);
        qn_blockreader_release(&segs[i].r);
        close(segs[i].fd);
        segs[i].fd = -1;
    }
}

/* qn_merge_sink_fn: one record into the block writer ctx. */
static int s_to_blocks(void *ctx, const void *key, size_t klen, const void *val,
                       size_t vlen)
{
    return qn_blockwriter_add(ctx, key, klen, val, vlen);
}

/* A merge pass (qn_merge_step_fn): n segments into one new block stream. */
static char *s_merge_step(quern_task *t, char **paths, char **names, size_t n,
                          void *ctx)
{
    s_reduce *rd = ctx;
    qn_buf out = {0};
    qn_task_path(t, &out, "merge-%u", rd->seq++);
    s_seg *segs = qn_calloc(n, sizeof *segs);
    qn_blockreader **src = qn_calloc(n, sizeof *src);
    int rc = s_open_segs(t, paths, names, n, segs, src);
    int fd = -1;
    if (rc == 0) {
        fd = open(out.data, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (fd < 0)
            rc = qn_task_failf(t, "cannot create %s: %s", out.data,
                               strerror(errno));
    }
    if (rc == 0) {
        qn_blockwriter *w = qn_blockwriter_new(fd, t->codec);
        qn_merge *m = qn_merge_new(t->job->compare, src, n);
        int r = qn_task_merge_copy(t, m, s_to_blocks, w);
        if (r == 0)
            r = qn_blockwriter_flush(w);
        long bad = qn_merge_failed(m);
        if (bad >= 0)
            s_charge(t, rd, paths[bad], src[bad]);
        if (r < 0)
            rc = qn_task_failf(t, "merging into %s: %s", out.data,
                               *qn_merge_error(m) ? qn_merge_error(m)
                                                  : qn_strerror(r));
        qn_merge_destroy(&m);
        qn_blockwriter_destroy(&w);
    }
    if (fd >= 0 && close(fd) < 0 && rc == 0)
        rc = qn_task_failf(t, "writing %s: %s", out.data, strerror(errno));
    s_close_segs(t, segs, names, n);
    free(segs);
    free(src);
    if (rc < 0) {
        unlink(out.data);
        qn_buf_release(&out);
        return NULL;
    }
    return out.data;
}

/*
 * Copy length bytes at offset of file in to the start of file out
 * (copy_file_range, or reads and writes where that is not supported).
 * Returns the bytes not copied (0: all), errno saying why (0: the file
 * is short).
 */
static uint64_t s_copy_range(int in, int out, uint64_t offset, uint64_t length)
{
    loff_t at = (loff_t)offset;
    uint64_t left = length;
    errno = 0;
    int plain = 0; /* copy_file_range unsupported here: read/write */
    char *buf = NULL;
    while (left > 0) {
        ssize_t k = -1;
        if (!plain) {
            k = copy_file_range(in, &at, out, NULL, left, 0);
            if (k < 0 && (errno == EXDEV || errno == ENOSYS ||
                          errno == EOPNOTSUPP || errno == EINVAL)) {
                plain = 1;
                buf = qn_malloc(1 << 20);
                errno = 0;
                continue;
            }
        } else {
            k = pread(in, buf, left < (1 << 20) ? left : (1 << 20), at);
            if (k > 0 && qn_write_all(out, buf, (size_t)k) < 0)
                k = -1;
            if (k > 0)
                at += k;
        }
        if (k <= 0)
            break;
        left -= (uint64_t)k;
    }
    free(buf);
    return left;
}

/* Copy range r of map output file map into the segment file path. 0 or
 * -1 (t->fail). */
static int s_copy_segment(quern_task *t, const char *map, qn_range r,
                          const char *path)
{
    int in = open(map, O_RDONLY | O_CLOEXEC);
    int fd = in < 0
                 ? -1
                 : open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    errno = 0;
    uint64_t left =
        fd >= 0 ? s_copy_range(in, fd, r.offset, r.length) : r.length;
    int rc = 0;
    if (in < 0 || fd < 0 || left > 0)
        rc = qn_task_failf(t, "copying %s of %s: %s", path, map,
                           errno ? strerror(errno) : "short file");
    if (fd >= 0 && close(fd) < 0 && rc == 0)
        rc = qn_task_failf(t, "writing %s: %s", path, strerror(errno));
    if (in >= 0)
        close(in);
    qn_task_count(t, QN_C_SHUFFLE_STORED, (long long)r.length);
    return rc;
}

/*
 * Run inline: copy this partition of each map's output file, which is in
 * this process's own work dir, into segment files as a fetch would.
 */
static int s_local_segments(quern_task *t, char ***out, char ***out_names,
                            size_t *nout)
{
    Quern__TaskSpec *sp = t->spec;
    qn_buf dir = {0};
    qn_buf_printf(&dir, "%s", t->scratch);
    int e = qn_mkdirs(dir.data, 0755);
    char **segs = qn_calloc(t->nlocal + 1, sizeof *segs);
    char **names = qn_calloc(t->nlocal + 1, sizeof *names);
    size_t n = 0;
    int rc =
        e < 0 ? qn_task_failf(t, "cannot create %s: %s", dir.data, strerror(-e))
              : 0;
    for (size_t i = 0; i < t->nlocal && rc == 0; i++) {
        qn_range r = t->local_parts[i][sp->task];
        if (r.length == 0)
            continue;
        qn_buf p = {0}, name = {0};
        qn_buf_printf(&p, "%s/seg-%05zu", dir.data, i);
        qn_buf_printf(&name, "map %zu's output (%s)", i, t->local_maps[i]);
        segs[n] = p.data;
        names[n++] = name.data;
        rc = s_copy_segment(t, t->local_maps[i], r, p.data);
    }
    qn_buf_release(&dir);
    *out = segs;
    *out_names = names;
    *nout = n;
    return rc;
}

/*
 * This partition of every map output in local segment files (fetched, or
 * copied when run inline), merged in passes until few enough are left to
 * merge at once. 0 or -1 (t->fail).
 */
static int s_gather(quern_task *t, s_reduce *rd)
{
    int got;
    if (t->local_maps)
        got = s_local_segments(t, &rd->segs, &rd->names, &rd->nsegs);
    else if (t->fetch) /* by the broker */
        got = t->fetch(t, &rd->segs, &rd->names, &rd->from, &rd->nsegs);
    else
        got =
            qn_fetch_segments(t, &rd->segs, &rd->names, &rd->from, &rd->nsegs);
    rd->nfrom = rd->from ? rd->nsegs : 0;
    if (got < 0)
        return -1;
    qn_task_progress(t, 1.0 / 3, 1);
    /* Merge consecutive segments so map order (value order) is kept. */
    return qn_task_merge_plan(t, rd->segs, rd->names, &rd->nsegs, s_merge_step,
                              rd);
}

void qn_reduce_output_path(const Quern__TaskSpec *sp, qn_buf *b)
{
    b->len = 0;
    qn_buf_printf(b, "%s/_temporary/%s/part-%05u.a%u", sp->output_dir,
                  sp->job_id, sp->task, sp->attempt);
}

int qn_reduce_open_output(quern_task *t)
{
    if (t->out_fd >= 0) /* opened before the sandbox */
        return 0;
    qn_reduce_output_path(t->spec, &t->out_name);
    char *slash = strrchr(t->out_name.data, '/');
    *slash = '\0';
    int e = qn_mkdirs(t->out_name.data, 0755);
    if (e < 0)
        qn_task_failf(t, "cannot create %s: %s", t->out_name.data,
                      strerror(-e));
    *slash = '/';
    if (e < 0)
        return -1;
    t->out_fd =
        open(t->out_name.data, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    t->out_path = t->out_name.data;
    if (t->out_fd < 0)
        return qn_task_failf(t, "cannot create %s: %s", t->out_name.data,
                             strerror(errno));
    return 0;
}

/* --output-codec: the part file's compressor, on the open output. */
static int s_output_codec(quern_task *t)
{
    char err[256];
    if (t->spec->output_codec &&
        !(t->outc = qn_compress_new((int)t->spec->output_codec, t->out_fd, err,
                                    sizeof err)))
        return qn_task_failf(t, "%s: %s", t->out_name.data, err);
    return 0;
}

/* The job's setup, reduce() once per key of the merged segments, its
 * teardown. A corrupt segment is charged to its map output. 0 or -1. */
static int s_reduce_all(quern_task *t, s_reduce *rd)
{
    t->mode = QN_EMIT_REDUCE;
    if (qn_task_setup(t) < 0)
        return -1;
    size_t n = rd->nsegs;
    s_seg *sg = qn_calloc(n ? n : 1, sizeof *sg);
    qn_blockreader **src = qn_calloc(n ? n : 1, sizeof *src);
    int r = s_open_segs(t, rd->segs, rd->names, n, sg, src);
    if (r == 0)
        r = qn_task_group(t, src, n, t->job->reduce);
    /* qn_task_group keeps its merge to itself; the reader that failed,
     * if one did, holds the error. */
    for (size_t i = 0; r < 0 && i < n; i++) {
        if (sg[i].fd >= 0 && sg[i].r.failed) {
            s_charge(t, rd, rd->segs[i], &sg[i].r);
            break;
        }
    }
    s_close_segs(t, sg, rd->names, n);
    free(sg);
    free(src);
    if (r < 0)
        return -1;
    return qn_task_teardown(t);
}

/* Write what is buffered and close the output, durably. 0 or -1. */
static int s_close_output(quern_task *t)
{
    int e = qn_task_flush_output(t);
    if (e == 0 && t->outc)
        e = qn_compress_finish(t->outc);
    qn_compress_destroy(&t->outc);
    if (e == 0 && fsync(t->out_fd) < 0)
        e = -errno;
    if (close(t->out_fd) < 0 && e == 0)
        e = -errno;
    t->out_fd = -1;
    if (e < 0)
        return qn_task_failf(t, "writing %s: %s", t->out_name.data,
                             qn_strerror(e));
    return 0;
}

/* Remove the segments and the attempt's folder; on failure (rc < 0) the
 * output too. */
static void s_cleanup(quern_task *t, s_reduce *rd, int rc)
{
    qn_compress_destroy(&t->outc);
    if (t->out_fd >= 0) {
        close(t->out_fd);
        t->out_fd = -1;
    }
    if (rc < 0 && t->out_name.data && unlink(t->out_name.data) < 0 &&
        t->drop_output)
        t->drop_output(t); /* the sandbox keeps it from the folder */
    t->out_path = NULL;
    for (size_t i = 0; i < rd->nsegs; i++) {
        unlink(rd->segs[i]);
        free(rd->segs[i]);
        free(rd->names[i]);
    }
    free(rd->segs);
    free(rd->names);
    qn_fetched_free(&rd->from, rd->nfrom);
    qn_rmtree(t->scratch); /* what is left of it: its folder stays */
    qn_buf_release(&t->out_name);
}

int qn_reduce_run(quern_task *t)
{
    s_reduce rd = {0};
    int rc = s_gather(t, &rd) < 0 || qn_reduce_open_output(t) < 0 ||
                     s_output_codec(t) < 0 || s_reduce_all(t, &rd) < 0 ||
                     s_close_output(t) < 0
                 ? -1
                 : 0;
    /* On success the master renames the output to part-NNNNN when it
     * accepts this attempt's: one attempt per partition, once, whatever
     * else ran. */
    s_cleanup(t, &rd, rc);
    return rc;
}
