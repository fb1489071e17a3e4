/*
 * maptask.c -- a map attempt: read the split record by record, call map,
 * gather emitted pairs in memory of a fixed size (the combining table when
 * the job has a combiner, the sort buffer otherwise), spill sorted runs
 * when it fills, and merge the runs into one intermediate file with a
 * partition index.
 *
 * Which records belong to a split, and how they are read (every byte
 * hostile, a dataset shard's CRC checked), is lib/records.c's business;
 * this file hands each record to map().
 */
#include "maptask.h"

#include "merge.h"
#include "records.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* A lines input whose first bytes hold a NUL looks binary (said once). */
#define BINARY_SNIFF (64 * 1024)

typedef struct {
    quern_task *t;
    char **runs; /* spill files, in the order written */
    size_t nruns, cap_runs;
    uint64_t split_bytes;        /* bytes of input in the split */
    uint64_t done_bytes;         /* input bytes consumed */
    const Quern__InputPiece *pc; /* the piece being read */
    size_t name_len;             /* length of its shard name */
    size_t sep_len;              /* bytes after each record (a newline) */
} s_map;

/* ---- writing sorted data ------------------------------------------------- */

/* Write the sorted buffer's records to t->iw. (A job with a combiner
 * gathers its output in the table instead.) */
static int s_write_sorted(quern_task *t, const char *path)
{
    size_t n = qn_sortbuf_count(t->sb);
    for (size_t i = 0; i < n; i++) {
        unsigned part;
        const void *k, *v;
        size_t kl, vl;
        qn_sortbuf_get(t->sb, i, &part, &k, &kl, &v, &vl);
        int rc = qn_ifile_writer_add(t->iw, part, k, kl, v, vl);
        if (rc < 0)
            return qn_task_failf(t, "writing %s: %s", path, qn_strerror(rc));
    }
    return 0;
}

/* ---- the combining table ------------------------------------------------ */

static int s_block_next(quern_values *vs, const void **val, size_t *vlen)
{
    if (!qn_combtab_iter_next(vs->ctx, val, vlen))
        return 0;
    vs->taken++;
    return 1;
}

/* Run the job's combiner on one key's values, with emit going to out
 * (mode QN_EMIT_COMBINE_MEM) or to the intermediate file (QN_EMIT_COMBINE). */
static int s_combine_block(quern_task *t, qn_emit_mode mode, unsigned part,
                           const void *key, size_t klen,
                           const qn_combtab_vals *vals, qn_buf *out)
{
    qn_combtab_iter it;
    qn_combtab_iter_init(&it, vals);
    quern_values vs = {.next = s_block_next, .ctx = &it};
    qn_emit_mode saved = t->mode;
    t->mode = mode;
    t->comb_out = out;
    t->part = part;
    t->group_key = key;
    t->group_klen = klen;
    int r = t->job->combine(t, key, klen, &vs);
    t->mode = saved;
    t->comb_out = NULL;
    if (r != 0 || t->fail[0])
        return qn_task_failf(t, "combine returned %d", r);
    return 0;
}

/* qn_combtab_part_fn: a new key's partition. */
static unsigned s_table_part(void *ctx, const void *key, size_t klen)
{
    return qn_task_partition(ctx, key, klen);
}

/* qn_combtab_fn: a key's block is full. */
static int s_table_combine(void *ctx, unsigned part, const void *key,
                           size_t klen, const qn_combtab_vals *vals,
                           qn_buf *out)
{
    return s_combine_block(ctx, QN_EMIT_COMBINE_MEM, part, key, klen, vals,
                           out);
}

/* Write the sorted table's entries to t->iw, each key's values combined a
 * last time. */
static int s_write_table(quern_task *t)
{
    size_t n = qn_combtab_count(t->ct);
    for (size_t i = 0; i < n; i++) {
        unsigned part;
        const void *k;
        size_t kl;
        qn_combtab_vals vals;
        qn_combtab_get(t->ct, i, &part, &k, &kl, &vals);
        if (vals.nvals == 0)
            continue; /* the combiner kept nothing */
        if (s_combine_block(t, QN_EMIT_COMBINE, part, k, kl, &vals, NULL) < 0)
            return -1;
        if (qn_task_report_due(t))
            qn_task_progress(t, -1, 0);
    }
    return 0;
}

/*
 * Sort what the map has gathered in memory (the table or the buffer) and
 * write it to path as an intermediate file; parts (if not NULL) receives
 * the partitions' ranges.
 */
static int s_write_held(quern_task *t, const char *path, qn_range *parts)
{
    char err[512];
    if (t->ct)
        qn_combtab_sort(t->ct);
    else
        qn_sortbuf_sort(t->sb);
    qn_task_progress(t, -1, 0);
    t->iw =
        qn_ifile_writer_new(path, t->spec->nreduce, t->codec, err, sizeof err);
    if (!t->iw)
        return qn_task_failf(t, "%s", err);
    if ((t->ct ? s_write_table(t) : s_write_sorted(t, path)) < 0) {
        qn_ifile_writer_abort(&t->iw);
        return -1;
    }
    if (qn_ifile_writer_close(&t->iw, parts, err, sizeof err) < 0)
        return qn_task_failf(t, "%s", err);
    return 0;
}

static size_t s_held(const quern_task *t)
{
    return t->ct ? qn_combtab_count(t->ct) : qn_sortbuf_count(t->sb);
}

/* The sort buffer or table is full: write it as a new run and empty it.
 * (Also quern_emit's spill callback, given m.) */
static int s_spill(void *ctx)
{
    s_map *m = ctx;
    quern_task *t = m->t;
    qn_buf path = {0};
    qn_task_path(t, &path, "spill%zu", m->nruns);
    qn_task_count(t, QN_C_SPILLS, 1);
    qn_task_count(t, QN_C_SPILLED_RECORDS, (long long)s_held(t));
    int rc = s_write_held(t, path.data, NULL);
    if (t->ct)
        qn_combtab_reset(t->ct);
    else
        qn_sortbuf_reset(t->sb);
    QN_GROW(m->runs, m->cap_runs, m->nruns + 1);
    m->runs[m->nruns++] = path.data; /* remove it even if rc < 0 */
    return rc;
}

/* Where merged records of one partition go: t->iw's partition part. */
typedef struct {
    quern_task *t;
    unsigned part;
} s_part_sink;

/* qn_merge_sink_fn: one record into s_part_sink's partition. */
static int s_to_part(void *ctx, const void *key, size_t klen, const void *val,
                     size_t vlen)
{
    s_part_sink *s = ctx;
    return qn_ifile_writer_add(s->t->iw, s->part, key, klen, val, vlen);
}

/*
 * Merge runs (all partitions) into one intermediate file at path, running
 * the combiner when there is one.
 */
static int s_merge_runs(quern_task *t, char **runs, size_t n, const char *path,
                        qn_range *parts)
{
    char err[512];
    int rc = 0;
    qn_ifile **files = qn_calloc(n, sizeof *files);
    qn_blockreader *rd = qn_calloc(n, sizeof *rd);
    qn_blockreader **src = qn_calloc(n, sizeof *src);
    for (size_t i = 0; i < n && rc == 0; i++) {
        files[i] = qn_ifile_open(runs[i], err, sizeof err);
        if (!files[i])
            rc = qn_task_failf(t, "%s", err);
        else if (qn_ifile_nparts(files[i]) != t->spec->nreduce)
            rc = qn_task_failf(t, "%s: wrong partition count", runs[i]);
    }
    if (rc == 0) {
        t->iw = qn_ifile_writer_new(path, t->spec->nreduce, t->codec, err,
                                    sizeof err);
        if (!t->iw)
            rc = qn_task_failf(t, "%s", err);
    }
    for (unsigned p = 0; p < t->spec->nreduce && rc == 0; p++) {
        for (size_t i = 0; i < n; i++) {
            qn_range r = qn_ifile_range(files[i], p);
            qn_blockreader_init(&rd[i], qn_ifile_fd(files[i]),
                                qn_ifile_path(files[i]), r.offset, r.length);
            src[i] = &rd[i];
        }
        if (t->job->combine) {
            t->mode = QN_EMIT_COMBINE;
            t->part = p;
            rc = qn_task_group(t, src, n, t->job->combine);
            t->mode = QN_EMIT_NONE;
        } else {
            qn_merge *m = qn_merge_new(t->job->compare, src, n);
            s_part_sink sink = {t, p};
            int r = qn_task_merge_copy(t, m, s_to_part, &sink);
            if (r < 0 && qn_merge_failed(m) >= 0)
                rc = qn_task_failf(t, "%s", qn_merge_error(m));
            else if (r < 0)
                rc = qn_task_failf(t, "writing %s: %s", path, qn_strerror(r));
            qn_merge_destroy(&m);
        }
        for (size_t i = 0; i < n; i++)
            qn_blockreader_release(&rd[i]);
        qn_task_progress(t, 0.9, 0);
    }
    if (rc == 0 && qn_ifile_writer_close(&t->iw, parts, err, sizeof err) < 0)
        rc = qn_task_failf(t, "%s", err);
    qn_ifile_writer_abort(&t->iw);
    for (size_t i = 0; i < n; i++)
        qn_ifile_destroy(&files[i]);
    free(files);
    free(rd);
    free(src);
    return rc;
}

/* A merge pass (qn_merge_step_fn): n runs into one new run. */
static char *s_merge_step(quern_task *t, char **paths, char **names, size_t n,
                          void *ctx)
{
    (void)names;
    unsigned *seq = ctx;
    qn_buf out = {0};
    qn_task_path(t, &out, "merge%u", (*seq)++);
    if (s_merge_runs(t, paths, n, out.data, NULL) < 0) {
        unlink(out.data);
        qn_buf_release(&out);
        return NULL;
    }
    return out.data;
}

/* ---- reading input ------------------------------------------------------- */

/* Hand the record at offset of the piece being read to map(), unless it
 * is one to skip. 0 or -1 (t->fail). */
static int s_call_map(s_map *m, uint64_t offset, const void *val, size_t vlen)
{
    quern_task *t = m->t;
    const Quern__InputPiece *pc = m->pc;
    t->offset = offset;
    qn_task_count(t, QN_C_MAP_IN_RECORDS, 1);
    if (t->nskip) {
        /* A record that crashed earlier attempts (--skip-bad-records). */
        while (t->skip_at < t->nskip && t->skip[t->skip_at] < offset)
            t->skip_at++;
        if (t->skip_at < t->nskip && t->skip[t->skip_at] == offset) {
            qn_task_count(t, QN_C_MAP_SKIPPED, 1);
            fprintf(stderr, "skipping the record at offset %llu of %s\n",
                    (unsigned long long)offset, pc->name);
            return 0;
        }
    }
    /* Left in place if map() crashes or fails: the worker reads it. */
    t->gasp->offset = offset;
    t->gasp->in_record = 1;
    int r = t->job->map(t, pc->name, m->name_len, val, vlen);
    if (r != 0 || t->fail[0])
        return qn_task_failf(t, "map returned %d at offset %llu of %s", r,
                             (unsigned long long)offset, pc->name);
    t->gasp->in_record = 0;
    return 0;
}

static int s_cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* The records of piece i to skip, sorted. */
static void s_skips_for(quern_task *t, size_t i)
{
    t->nskip = t->skip_at = 0;
    for (size_t k = 0; k < t->spec->n_skip; k++) {
        if (t->spec->skip[k]->piece != i)
            continue;
        QN_GROW(t->skip, t->cap_skip, t->nskip + 1);
        t->skip[t->nskip++] = t->spec->skip[k]->offset;
    }
    if (t->nskip > 1)
        qsort(t->skip, t->nskip, sizeof *t->skip, s_cmp_u64);
}

/* qn_record_fn: one input record, to map(). */
/*
 * A lines job reading what looks binary: a NUL byte in a file's first
 * 64 KiB. Said once, with the map's success (the job goes on: it may be
 * meant).
 */
static void s_binary_check(s_map *m, uint64_t offset, const void *val,
                           size_t vlen)
{
    quern_task *t = m->t;
    size_t n = vlen < BINARY_SNIFF - offset ? vlen : BINARY_SNIFF - offset;
    const char *nul = memchr(val, 0, n);
    if (nul)
        snprintf(
            t->warning, sizeof t->warning,
            "input %s looks binary: a NUL byte at offset %llu, in its "
            "first 64 KiB, where lines of text were expected",
            m->pc->name,
            (unsigned long long)(offset + (uint64_t)(nul - (const char *)val)));
}

static int s_on_record(void *ctx, uint64_t offset, const void *val, size_t vlen)
{
    s_map *m = ctx;
    quern_task *t = m->t;
    if (offset < BINARY_SNIFF && m->sep_len && !t->warning[0])
        s_binary_check(m, offset, val, vlen);
    if (s_call_map(m, offset, val, vlen) < 0)
        return -1;
    qn_task_count(t, QN_C_MAP_IN_BYTES, (long long)(vlen + m->sep_len));
    if (qn_task_report_due(t))
        qn_task_progress(
            t,
            0.8 * (double)(m->done_bytes + offset + vlen - m->pc->offset) /
                (double)(m->split_bytes ? m->split_bytes : 1),
            0);
    return 0;
}

int qn_map_open_piece(quern_task *t, size_t index, int *local)
{
    const Quern__InputPiece *pc = t->spec->inputs[index];
    qn_buf pulled = {0};
    const char *path = pc->path;
    if (pc->dataset[0] && !path[0]) {
        qn_task_path(t, &pulled, "input-%zu", index);
        uint64_t got = 0;
        int prc = qn_task_pull(t, pc, pulled.data, &got);
        quern_count(t, "map_remote_bytes", (long long)got);
        if (prc < 0) {
            qn_buf_release(&pulled);
            return -1;
        }
        path = pulled.data;
    }
    int fd = open(path, O_RDONLY | O_CLOEXEC | (pulled.data ? O_NOFOLLOW : 0));
    int open_errno = errno;
    *local = !pulled.data;
    if (pulled.data)
        unlink(pulled.data);
    qn_buf_release(&pulled);
    if (fd < 0)
        return qn_task_failf(t, "cannot open input %s: %s", pc->name,
                             strerror(open_errno));
    return fd;
}

/* Read input piece index record by record, each to map(). 0 or -1. */
static int s_read_piece(s_map *m, size_t index)
{
    quern_task *t = m->t;
    const Quern__InputPiece *pc = t->spec->inputs[index];
    t->gasp->piece = (uint32_t)index;
    s_skips_for(t, index);
    int local = 1;
    int fd = t->open_piece ? t->open_piece(t, index, &local)
                           : qn_map_open_piece(t, index, &local);
    if (fd < 0)
        return -1;
    qn_records_in in = {.fd = fd,
                        .name = pc->name,
                        .offset = pc->offset,
                        .length = pc->length,
                        .file_size = pc->file_size,
                        .record_size = t->spec->record_size,
                        .codec = (int)pc->codec,
                        .keep_cr = t->spec->keep_cr};
    switch (t->spec->input_kind) {
    case QUERN__INPUT_KIND__FIXED: in.kind = QN_RECORDS_FIXED; break;
    case QUERN__INPUT_KIND__WHOLE: in.kind = QN_RECORDS_WHOLE; break;
    default: in.kind = QN_RECORDS_LINES; break;
    }
    qn_buf name = {0};
    if (pc->dataset[0] && pc->offset == 0 && pc->length == pc->file_size) {
        /* A dataset shard, read whole: its bytes must be the ones the
         * master knows (a copy damaged on this worker's disk would
         * otherwise give a wrong answer). */
        in.check_crc = 1;
        in.crc = pc->crc;
        if (local) {
            qn_buf_printf(&name, "%s (the copy at %s)", pc->name, pc->path);
            in.name = name.data;
        }
    }
    m->pc = pc;
    m->name_len = strlen(pc->name); /* once per piece, not per record */
    m->sep_len = in.kind == QN_RECORDS_LINES; /* a line's newline */
    char err[1024];
    int rc = qn_records_read(&in, s_on_record, m, err, sizeof err);
    if (rc < 0 && err[0])
        qn_task_failf(t, "%s", err);
    qn_buf_release(&name);
    close(fd);
    m->done_bytes += pc->length;
    return rc < 0 ? -1 : 0;
}

/* ---- the map attempt ----------------------------------------------------- */

/*
 * The attempt's folder, and the memory map output is gathered in: the
 * combining table for a job with a combiner, the sort buffer otherwise,
 * --sort-mb large, with m as the spill callback's context. 0 or -1.
 */
static int s_prepare(s_map *m)
{
    quern_task *t = m->t;
    qn_buf dir = {0};
    qn_buf_printf(&dir, "%s", t->scratch);
    int e = qn_mkdirs(dir.data, 0755);
    if (e < 0)
        qn_task_failf(t, "cannot create %s: %s", dir.data, strerror(-e));
    qn_buf_release(&dir);
    if (e < 0)
        return -1;
    size_t bytes = (size_t)t->spec->sort_mb << 20;
    if (t->job->combine)
        t->ct = qn_combtab_new(bytes, t->job->compare, s_table_combine, t);
    if (t->ct)
        qn_combtab_set_partitioner(t->ct, s_table_part);
    else
        t->sb = qn_sortbuf_new(bytes, t->job->compare);
    if (!t->sb && !t->ct)
        return qn_task_failf(t, "bad --sort-mb %u", t->spec->sort_mb);
    t->spill = s_spill;
    t->spill_ctx = m;
    return 0;
}

/* The job's setup, map() on every record of every piece, its teardown.
 * 0 or -1 (t->fail). */
static int s_map_all(s_map *m)
{
    quern_task *t = m->t;
    t->mode = QN_EMIT_MAP;
    if (qn_task_setup(t) < 0)
        return -1;
    for (size_t i = 0; i < t->spec->n_inputs; i++)
        if (s_read_piece(m, i) < 0)
            return -1;
    return qn_task_teardown(t);
}

/*
 * Write what the map gathered to path as one intermediate file, parts
 * receiving its partitions' ranges: sorted straight from memory when
 * nothing was spilled, otherwise spilled too and merged with the other
 * runs (in passes when there are many). 0 or -1 (t->fail).
 */
static int s_write_output(s_map *m, const char *path, qn_range *parts)
{
    quern_task *t = m->t;
    if (t->ct) {
        /* Records still queued for the table go in first. */
        int d;
        while ((d = qn_combtab_drain(t->ct)) == -QN_EFULL)
            if (s_spill(m) < 0)
                return -1;
        if (d < 0)
            return qn_task_failf(t, "combining map output: %s", qn_strerror(d));
    }
    if (m->nruns == 0) /* everything fit in memory: no merge */
        return s_write_held(t, path, parts);
    if (s_held(t) > 0 && s_spill(m) < 0)
        return -1;
    /* The buffer is not needed to merge: give its memory back. */
    qn_sortbuf_destroy(&t->sb);
    qn_combtab_destroy(&t->ct);
    /* Too many runs to read at once: merge consecutive runs first, so
     * input order is kept. */
    unsigned seq = 0;
    if (qn_task_merge_plan(t, m->runs, NULL, &m->nruns, s_merge_step, &seq) < 0)
        return -1;
    return s_merge_runs(t, m->runs, m->nruns, path, parts);
}

int qn_map_run(quern_task *t, qn_range *parts)
{
    s_map m = {.t = t};
    qn_buf out = {0}, tmp = {0};
    for (size_t i = 0; i < t->spec->n_inputs; i++)
        m.split_bytes += t->spec->inputs[i]->length;
    qn_task_path(t, &out, "%s", "output.ifile");
    qn_buf_printf(&tmp, "%s.tmp", out.data);
    int rc = s_prepare(&m) < 0 || s_map_all(&m) < 0 ||
                     s_write_output(&m, tmp.data, parts) < 0
                 ? -1
                 : 0;
    if (rc == 0) {
        for (unsigned p = 0; p < t->spec->nreduce; p++) {
            qn_task_count(t, QN_C_INTER_RAW, (long long)parts[p].raw);
            qn_task_count(t, QN_C_INTER_STORED, (long long)parts[p].length);
        }
        if (rename(tmp.data, out.data) < 0)
            rc = qn_task_failf(t, "cannot rename %s: %s", tmp.data,
                               strerror(errno));
    }
    if (rc < 0)
        unlink(tmp.data);
    for (size_t i = 0; i < m.nruns; i++) {
        unlink(m.runs[i]);
        free(m.runs[i]);
    }
    free(m.runs);
    qn_buf_release(&out);
    qn_buf_release(&tmp);
    t->spill_ctx = NULL;
    return rc;
}
