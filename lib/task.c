/*
 * task.c -- the task runtime's core: the plugin API of quern.h, spec and
 * plugin loading, counters, progress and the final report, and key
 * grouping. The map and reduce sides (maptask.c, reducetask.c) build on
 * it; taskrun.c chooses between them.
 */
#include "task.h"

#include "compress.h"
#include "curve.h"
#include "hash.h"
#include "layout.h"
#include "log.h"
#include "merge.h"
#include "shardio.h"
#include "util.h"

#include <dlfcn.h>
#include <link.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>
#include <zmq.h>

#define OUT_FLUSH (1024 * 1024) /* reduce output buffered before a write */
#define REPORT_MS 1000          /* progress reports at most this often */

static const char *const s_counter_names[QN_C_BUILTIN_COUNT] = {
    [QN_C_MAP_IN_RECORDS] = "map_input_records",
    [QN_C_MAP_IN_BYTES] = "map_input_bytes",
    [QN_C_MAP_OUT_RECORDS] = "map_output_records",
    [QN_C_MAP_OUT_BYTES] = "map_output_bytes",
    [QN_C_COMBINE_IN] = "combine_input_records",
    [QN_C_COMBINE_OUT] = "combine_output_records",
    [QN_C_SPILLS] = "spills",
    [QN_C_SPILLED_RECORDS] = "spilled_records",
    [QN_C_INTER_RAW] = "intermediate_bytes_raw",
    [QN_C_INTER_STORED] = "intermediate_bytes_compressed",
    [QN_C_SHUFFLE_RAW] = "shuffle_bytes_raw",
    [QN_C_SHUFFLE_STORED] = "shuffle_bytes_compressed",
    [QN_C_REDUCE_GROUPS] = "reduce_input_groups",
    [QN_C_REDUCE_IN_RECORDS] = "reduce_input_records",
    [QN_C_REDUCE_OUT_RECORDS] = "reduce_output_records",
    [QN_C_REDUCE_OUT_BYTES] = "reduce_output_bytes",
    [QN_C_MAP_SKIPPED] = "skipped_records",
};

const char *qn_task_counter_name(int i)
{
    return s_counter_names[i];
}

int qn_task_failf(quern_task *t, const char *fmt, ...)
{
    if (t->fail[0])
        return -1;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(t->fail, sizeof t->fail, fmt, ap);
    va_end(ap);
    return -1;
}

int qn_task_cmp(const quern_task *t, const void *a, size_t alen, const void *b,
                size_t blen)
{
    if (t->job->compare)
        return t->job->compare(a, alen, b, blen);
    return qn_key_cmp(a, alen, b, blen);
}

void qn_task_path(const quern_task *t, qn_buf *b, const char *fmt, ...)
{
    b->len = 0;
    qn_buf_printf(b, "%s/", t->scratch);
    va_list ap;
    va_start(ap, fmt);
    char tail[256];
    vsnprintf(tail, sizeof tail, fmt, ap);
    va_end(ap);
    qn_buf_printf(b, "%s", tail);
}

/* ---- the plugin API (quern.h) -------------------------------------------- */

unsigned qn_task_partition(quern_task *t, const void *key, size_t klen)
{
    unsigned nr = t->spec->nreduce;
    if (t->job->partition) {
        unsigned p = t->job->partition(t, key, klen, nr);
        if (p < nr)
            return p;
        qn_task_failf(t, "partition() returned %u but the job has %u reducers",
                      p, nr);
        return QN_COMBTAB_PART_LATER;
    }
    uint64_t h = qn_hash64(key, klen, 0); /* qn_hash_partition's number; */
    /* a mask where it can be (a division costs as much as the rest of a
     * small record) */
    return (unsigned)((nr & (nr - 1)) == 0 ? h & (nr - 1) : h % nr);
}

/* Map output with a combiner: gathered by key and combined in memory
 * (combtab.h); the partition is worked out once per distinct key. 0, 1
 * when the record does not fit, or -1 (t->fail). */
static int s_emit_to_table(quern_task *t, const void *key, size_t klen,
                           const void *val, size_t vlen)
{
    uint64_t h = qn_combtab_hash(key, klen);
    int rc =
        qn_combtab_push(t->ct, QN_COMBTAB_PART_LATER, h, key, klen, val, vlen);
    if (rc == -QN_EFULL) {
        if (t->spill(t->spill_ctx) < 0)
            return -1;
        rc = qn_combtab_push(t->ct, QN_COMBTAB_PART_LATER, h, key, klen, val,
                             vlen);
    }
    if (rc == -QN_ETOOBIG)
        return 1;
    if (rc < 0)
        return t->fail[0] ? -1
                          : qn_task_failf(t, "combining map output: %s",
                                          qn_strerror(rc));
    qn_task_count(t, QN_C_COMBINE_IN, 1);
    return 0;
}

/* Map output without a combiner: into the sort buffer, in its partition.
 * 0, 1 when the record does not fit, or -1 (t->fail). */
static int s_emit_to_buffer(quern_task *t, const void *key, size_t klen,
                            const void *val, size_t vlen)
{
    unsigned p = qn_task_partition(t, key, klen);
    if (p == QN_COMBTAB_PART_LATER)
        return -1;
    int rc = qn_sortbuf_add(t->sb, p, key, klen, val, vlen);
    if (rc == -QN_EFULL) {
        if (t->spill(t->spill_ctx) < 0)
            return -1;
        rc = qn_sortbuf_add(t->sb, p, key, klen, val, vlen);
    }
    return rc < 0 ? 1 : 0;
}

/* Map output: into memory, counted. */
static int s_emit_map(quern_task *t, const void *key, size_t klen,
                      const void *val, size_t vlen)
{
    int rc = t->ct ? s_emit_to_table(t, key, klen, val, vlen)
                   : s_emit_to_buffer(t, key, klen, val, vlen);
    if (rc < 0)
        return -1;
    if (rc > 0)
        return qn_task_failf(t,
                             "a record of %zu bytes does not fit in the "
                             "sort buffer (--sort-mb %u)",
                             klen + vlen, t->spec->sort_mb);
    qn_task_count(t, QN_C_MAP_OUT_RECORDS, 1);
    qn_task_count(t, QN_C_MAP_OUT_BYTES, (long long)(klen + vlen));
    return 0;
}

/* Combine output, to the map's intermediate file (mem: to the combining
 * table's block): only for the key being combined. */
static int s_emit_combine(quern_task *t, int mem, const void *key, size_t klen,
                          const void *val, size_t vlen)
{
    if (qn_task_cmp(t, key, klen, t->group_key, t->group_klen) != 0)
        return qn_task_failf(t, "combine emitted a key other than the "
                                "one it was given");
    if (mem) {
        if (qn_combtab_frame(t->comb_out, val, vlen) < 0)
            return qn_task_failf(t, "out of memory combining map output");
        return 0;
    }
    int rc = qn_ifile_writer_add(t->iw, t->part, key, klen, val, vlen);
    if (rc < 0)
        return qn_task_failf(t, "writing map output: %s", qn_strerror(rc));
    qn_task_count(t, QN_C_COMBINE_OUT, 1);
    return 0;
}

/* Reduce output: key<TAB>value<LF> (or the bare bytes with
 * QUERN_OUTPUT_RAW), buffered and written a megabyte at a time. */
static int s_emit_reduce(quern_task *t, const void *key, size_t klen,
                         const void *val, size_t vlen)
{
    int raw = t->job->output == QUERN_OUTPUT_RAW;
    size_t len = klen + vlen + (raw ? 0 : 2);
    if (qn_buf_reserve(&t->out, len) < 0)
        return qn_task_failf(t, "out of memory");
    if (klen)
        memcpy(t->out.data + t->out.len, key, klen);
    t->out.len += klen;
    if (!raw)
        t->out.data[t->out.len++] = '\t';
    if (vlen)
        memcpy(t->out.data + t->out.len, val, vlen);
    t->out.len += vlen;
    if (!raw)
        t->out.data[t->out.len++] = '\n';
    qn_task_count(t, QN_C_REDUCE_OUT_RECORDS, 1);
    qn_task_count(t, QN_C_REDUCE_OUT_BYTES, (long long)len);
    if (t->out.len >= OUT_FLUSH) {
        int rc = qn_task_flush_output(t);
        if (rc < 0)
            return qn_task_failf(t, "writing %s: %s", t->out_path,
                                 qn_strerror(rc));
    }
    return 0;
}

int quern_emit(quern_task *t, const void *key, size_t klen, const void *val,
               size_t vlen)
{
    switch (t->mode) {
    case QN_EMIT_MAP: return s_emit_map(t, key, klen, val, vlen);
    case QN_EMIT_COMBINE: return s_emit_combine(t, 0, key, klen, val, vlen);
    case QN_EMIT_COMBINE_MEM: return s_emit_combine(t, 1, key, klen, val, vlen);
    case QN_EMIT_REDUCE: return s_emit_reduce(t, key, klen, val, vlen);
    default:
        return qn_task_failf(t, "quern_emit called outside map, combine, "
                                "reduce or teardown");
    }
}

int quern_next(quern_values *vs, const void **val, size_t *vlen)
{
    return vs->next(vs, val, vlen);
}

void quern_count(quern_task *t, const char *counter, long long delta)
{
    qn_counters_add(&t->counters, "user.", counter, delta);
}

const char *quern_arg(quern_task *t, const char *name)
{
    for (size_t i = 0; i < t->spec->n_args; i++)
        if (strcmp(t->spec->args[i]->name, name) == 0)
            return t->spec->args[i]->value;
    return NULL;
}

unsigned quern_reducers(quern_task *t)
{
    return t->spec->nreduce;
}

unsigned long long quern_offset(quern_task *t)
{
    return t->offset;
}

int quern_fail(quern_task *t, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(t->fail, sizeof t->fail, fmt, ap);
    va_end(ap);
    return -1;
}

/* ---- output and reports -------------------------------------------------- */

int qn_task_flush_output(quern_task *t)
{
    int rc = t->outc ? qn_compress_write(t->outc, t->out.data, t->out.len)
                     : qn_write_all(t->out_fd, t->out.data, t->out.len);
    t->out_crc = (uint32_t)crc32(t->out_crc, (const Bytef *)t->out.data,
                                 (uInt)t->out.len);
    t->out_size += t->out.len;
    t->out.len = 0;
    return rc;
}

size_t qn_task_counters_wire(const quern_task *t, Quern__Counter **ptrs,
                             Quern__Counter *cs)
{
    size_t n = 0;
    for (size_t i = 0; i < t->counters.n; i++) {
        const qn_counter *c = &t->counters.v[i];
        if (c->value == 0)
            continue;
        quern__counter__init(&cs[n]);
        cs[n].name = (char *)c->name;
        cs[n].value = c->value;
        ptrs[n] = &cs[n];
        n++;
    }
    return n;
}

static void s_fill_counters(quern_task *t, Quern__TaskUpdate *u,
                            Quern__Counter **ptrs, Quern__Counter *cs)
{
    u->counters = ptrs;
    u->n_counters = qn_task_counters_wire(t, ptrs, cs);
}

static void s_attempt_ref(quern_task *t, Quern__AttemptRef *ref)
{
    quern__attempt_ref__init(ref);
    ref->job_id = t->spec->job_id;
    ref->kind = t->spec->kind;
    ref->task = t->spec->task;
    ref->attempt = t->spec->attempt;
}

/* Send a TaskUpdate; parts and ff may be NULL. Returns 0 or -errno. */
static int s_send_update(quern_task *t, Quern__TaskState state, double progress,
                         const qn_range *parts, Quern__FetchFailure *ff)
{
    if (t->ctl < 0)
        return 0; /* run inline: no worker to tell */
    Quern__Envelope env = QUERN__ENVELOPE__INIT;
    Quern__TaskUpdate u = QUERN__TASK_UPDATE__INIT;
    Quern__AttemptRef ref;
    s_attempt_ref(t, &ref);
    u.attempt = &ref;
    u.state = state;
    u.progress = progress;
    int map = t->spec->kind == QUERN__TASK_KIND__MAP;
    const qn_counter *c = t->counters.v;
    u.records =
        (uint64_t)c[map ? QN_C_MAP_IN_RECORDS : QN_C_REDUCE_IN_RECORDS].value;
    u.bytes = (uint64_t)c[map ? QN_C_MAP_IN_BYTES : QN_C_SHUFFLE_STORED].value;
    if (ff) {
        u.fetch_failures = &ff;
        u.n_fetch_failures = 1;
    }
    Quern__Counter **cptr = qn_calloc(t->counters.n, sizeof *cptr);
    Quern__Counter *cs = qn_calloc(t->counters.n, sizeof *cs);
    s_fill_counters(t, &u, cptr, cs);
    unsigned nr = t->spec->nreduce;
    Quern__PartitionInfo *pi = NULL, **pptr = NULL;
    if (parts) {
        pi = qn_calloc(nr, sizeof *pi);
        pptr = qn_calloc(nr, sizeof *pptr);
        for (unsigned p = 0; p < nr; p++) {
            quern__partition_info__init(&pi[p]);
            pi[p].bytes = parts[p].length;
            pi[p].raw_bytes = parts[p].raw;
            pi[p].records = parts[p].records;
            pptr[p] = &pi[p];
        }
        u.partitions = pptr;
        u.n_partitions = nr;
    }
    if (state == QUERN__TASK_STATE__SUCCEEDED) {
        u.output_size = t->out_size;
        u.output_crc = t->out_crc;
        qn_utf8_sanitize(
            t->warning); /* it names a file; the wire wants UTF-8 */
        u.warning = t->warning;
    }
    if (state == QUERN__TASK_STATE__FAILED) {
        /* A plugin's message may quote input bytes; the wire wants UTF-8. */
        qn_utf8_sanitize(t->fail);
        u.reason = t->fail;
        u.record_offset = t->offset;
        u.in_record = t->gasp->in_record != 0;
        u.input_piece = t->gasp->piece;
    }
    env.body_case = QUERN__ENVELOPE__BODY_TASK_UPDATE;
    env.task_update = &u;
    int rc = qn_wire_write_fd(t->ctl, &env);
    free(cptr);
    free(cs);
    free(pi);
    free(pptr);
    return rc;
}

static int64_t s_coarse_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int qn_task_report_due(const quern_task *t)
{
    return s_coarse_ms() >= t->next_report;
}

int qn_task_progress(quern_task *t, double progress, int force)
{
    int64_t now = s_coarse_ms();
    if (!force && now < t->next_report)
        return 0;
    t->next_report = now + REPORT_MS;
    if (progress < 0)
        progress = t->progress;
    if (progress > 1)
        progress = 1;
    t->progress = progress;
    return s_send_update(t, QUERN__TASK_STATE__RUNNING, progress, NULL, NULL) <
                   0
               ? -1
               : 0;
}

int qn_task_fetch_failed(quern_task *t, unsigned map, unsigned attempt,
                         uint64_t incarnation, int lost, const char *reason)
{
    Quern__FetchFailure ff = QUERN__FETCH_FAILURE__INIT;
    ff.map = map;
    ff.attempt = attempt;
    ff.incarnation = incarnation;
    ff.lost = lost;
    char why[512];
    snprintf(why, sizeof why, "%s", reason);
    qn_utf8_sanitize(why);
    ff.reason = why;
    return s_send_update(t, QUERN__TASK_STATE__RUNNING, t->progress, NULL,
                         &ff) < 0
               ? -1
               : 0;
}

/* ---- grouping by key ----------------------------------------------------- */

typedef struct {
    quern_task *t;
    qn_merge *m;
    const void *key; /* the group's key (a private copy) */
    size_t klen;
    int done; /* the group has no more values */
} s_group;

static int s_group_next(quern_values *vs, const void **val, size_t *vlen)
{
    s_group *g = vs->ctx;
    if (g->done)
        return 0;
    const void *k;
    size_t kl;
    int rc = qn_merge_peek(g->m, &k, &kl, val, vlen);
    if (rc < 0)
        qn_task_failf(g->t, "%s", qn_merge_error(g->m));
    if (rc <= 0 || qn_task_cmp(g->t, k, kl, g->key, g->klen) != 0) {
        g->done = 1;
        return 0;
    }
    qn_merge_pop(g->m);
    vs->taken++;
    if (qn_task_report_due(g->t))
        qn_task_progress(g->t, -1, 0); /* one key may have many values */
    return 1;
}

/*
 * Merge the sources and call fn once per key with a quern_values over
 * its values (those fn leaves unread are skipped), counting groups and
 * records as reduce or combine input, and reporting a reduce's progress
 * by the bytes read.
 */
int qn_task_group(quern_task *t, qn_blockreader **src, size_t n, qn_group_fn fn)
{
    qn_merge *m = qn_merge_new(t->job->compare, src, n);
    qn_buf key = {0};
    s_group g = {.t = t, .m = m};
    quern_values vs = {.next = s_group_next, .ctx = &g};
    uint64_t total = 0;
    for (size_t i = 0; i < n; i++)
        total += src[i]->end - src[i]->pos;
    int is_reduce = t->mode == QN_EMIT_REDUCE;
    long long groups = 0, records = 0;
    int rc = 0;
    for (;;) {
        const void *k, *v;
        size_t kl, vl;
        int r = qn_merge_peek(m, &k, &kl, &v, &vl);
        if (r < 0) {
            rc = qn_task_failf(t, "%s", qn_merge_error(m));
            break;
        }
        if (r == 0)
            break;
        key.len = 0;
        qn_buf_add(&key, k, kl);
        g.key = key.data;
        g.klen = kl;
        g.done = 0;
        vs.taken = 0;
        t->group_key = key.data;
        t->group_klen = kl;
        r = fn(t, key.data, kl, &vs);
        if (r != 0 && !t->fail[0])
            qn_task_failf(t, "%s returned %d", is_reduce ? "reduce" : "combine",
                          r);
        if (t->fail[0]) {
            rc = -1;
            break;
        }
        /* Values the callback did not read are skipped. */
        const void *skip;
        size_t skiplen;
        while (s_group_next(&vs, &skip, &skiplen))
            ;
        if (t->fail[0]) {
            rc = -1;
            break;
        }
        groups++;
        records += vs.taken;
        if (is_reduce && total && qn_task_report_due(t)) {
            uint64_t read = 0;
            for (size_t i = 0; i < n; i++)
                read += src[i]->stored_bytes;
            qn_task_progress(
                t, 1.0 / 3 + (2.0 / 3) * (double)read / (double)total, 0);
        }
    }
    if (is_reduce) {
        qn_task_count(t, QN_C_REDUCE_GROUPS, groups);
        qn_task_count(t, QN_C_REDUCE_IN_RECORDS, records);
    } else {
        qn_task_count(t, QN_C_COMBINE_IN, records);
    }
    qn_buf_release(&key);
    qn_merge_destroy(&m);
    return rc;
}

int qn_task_merge_copy(quern_task *t, qn_merge *m, qn_merge_sink_fn sink,
                       void *ctx)
{
    const void *k, *v;
    size_t kl, vl;
    int r;
    long long count = 0;
    while ((r = qn_merge_peek(m, &k, &kl, &v, &vl)) > 0) {
        r = sink(ctx, k, kl, v, vl);
        if (r < 0)
            return r;
        qn_merge_pop(m);
        if ((++count & 255) == 0)
            qn_task_progress(t, -1, 0); /* alive, not further */
    }
    return r;
}

int qn_task_merge_plan(quern_task *t, char **paths, char **names, size_t *n,
                       qn_merge_step_fn step, void *ctx)
{
    while (*n > QN_MERGE_FANIN) {
        /* Merging the first k files into one leaves exactly FANIN. */
        size_t k = *n - QN_MERGE_FANIN + 1;
        size_t out = 0, i = 0;
        while (i < *n) {
            size_t g;
            if (k <= QN_MERGE_FANIN)
                g = i == 0 ? k : 1;
            else
                g = *n - i < QN_MERGE_FANIN ? *n - i : QN_MERGE_FANIN;
            if (g == 1) {
                paths[out] = paths[i];
                if (names)
                    names[out] = names[i];
                out++;
                i++;
                continue;
            }
            char *merged = step(t, paths + i, names ? names + i : NULL, g, ctx);
            for (size_t j = i; j < i + g; j++) {
                unlink(paths[j]);
                free(paths[j]);
                if (names)
                    free(names[j]);
            }
            i += g;
            if (!merged) {
                /* Keep the arrays whole for the caller's cleanup. */
                for (; i < *n; i++, out++) {
                    paths[out] = paths[i];
                    if (names)
                        names[out] = names[i];
                }
                *n = out;
                return -1;
            }
            paths[out] = merged;
            if (names)
                names[out] = NULL;
            out++;
        }
        *n = out;
    }
    return 0;
}

/* ---- the attempt --------------------------------------------------------- */

int qn_task_setup(quern_task *t)
{
    if (!t->job->setup)
        return 0;
    t->gasp->phase = QN_PHASE_SETUP;
    int r = t->job->setup(t);
    t->gasp->phase = QN_PHASE_NONE;
    return r != 0 ? qn_task_failf(t, "setup failed") : 0;
}

int qn_task_teardown(quern_task *t)
{
    if (t->job->teardown)
        t->job->teardown(t);
    if (t->fail[0])
        return -1;
    t->mode = QN_EMIT_NONE;
    return 0;
}

int qn_task_load(quern_task *t)
{
    const char *path = t->spec->plugin;
    char byfd[64];
    if (t->plugin_fd >= 0) { /* opened before the sandbox */
        snprintf(byfd, sizeof byfd, "/proc/self/fd/%d", t->plugin_fd);
        path = byfd;
    }
    /* Its constructors run now: a crash in them is said to be here. */
    t->gasp->phase = QN_PHASE_LOADING;
    t->dl = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    t->gasp->phase = QN_PHASE_NONE;
    if (!t->dl)
        return qn_task_failf(t, "cannot load plugin: %s", dlerror());
    const quern_job *job = NULL;
    const ElfW(Sym) *sym = NULL;
    void *addr = dlsym(t->dl, "quern_job_v1");
    Dl_info info;
    /* A plugin built against an older quern.h has a shorter quern_job:
     * copy what it has (the symbol's size says how much), zero the rest. */
    if (addr && dladdr1(addr, &info, (void **)&sym, RTLD_DL_SYMENT) != 0 &&
        sym) {
        size_t n = sym->st_size < sizeof t->job_copy ? sym->st_size
                                                     : sizeof t->job_copy;
        memset(&t->job_copy, 0, sizeof t->job_copy);
        memcpy(&t->job_copy, addr, n);
        job = &t->job_copy;
    } else if (addr) {
        return qn_task_failf(t,
                             "plugin %s: cannot tell the size of "
                             "quern_job_v1",
                             path);
    }
    if (!job)
        return qn_task_failf(t,
                             "plugin %s does not define quern_job_v1 "
                             "(use the QUERN_JOB macro)",
                             path);
    if (job->abi != QUERN_ABI)
        return qn_task_failf(t,
                             "plugin %s was built for plugin ABI %u; "
                             "this Quern runs ABI %u: rebuild it against "
                             "this quern.h",
                             path, job->abi, QUERN_ABI);
    if (!job->map || !job->reduce)
        return qn_task_failf(t, "plugin %s has no %s function", path,
                             job->map ? "reduce" : "map");
    t->job = job;
    return 0;
}

void qn_task_release(quern_task *t)
{
    qn_sortbuf_destroy(&t->sb);
    qn_combtab_destroy(&t->ct);
    qn_ifile_writer_abort(&t->iw);
    qn_codec_destroy(&t->codec);
    qn_buf_release(&t->out);
    qn_buf_release(&t->scratch_buf);
    qn_buf_release(&t->out_name);
    if (t->plugin_fd >= 0)
        close(t->plugin_fd);
    if (t->broker_fd >= 0)
        close(t->broker_fd);
    qn_counters_release(&t->counters);
    free(t->skip);
    if (t->spec)
        quern__task_spec__free_unpacked(t->spec, NULL);
    if (t->curve) {
        qn_curve_release(t->curve);
        free(t->curve);
    }
    if (t->zmq_ctx)
        zmq_ctx_term(t->zmq_ctx);
    /* The plugin stays loaded: it may have registered atexit handlers. */
}

void *qn_task_zmq(quern_task *t, char *err, size_t errcap)
{
    if (t->zmq_ctx)
        return t->zmq_ctx;
    if (t->spec->curve_secret[0]) {
        t->curve = qn_calloc(1, sizeof *t->curve);
        if (qn_curve_load(t->curve, t->spec->curve_secret, NULL,
                          t->spec->curve_master[0] ? t->spec->curve_master
                                                   : NULL,
                          err, errcap) < 0) {
            free(t->curve);
            t->curve = NULL;
            return NULL;
        }
    }
    t->zmq_ctx = zmq_ctx_new();
    if (!t->zmq_ctx)
        snprintf(err, errcap, "cannot make a ZeroMQ context");
    return t->zmq_ctx;
}

int qn_task_pull(quern_task *t, const Quern__InputPiece *pc, const char *path,
                 uint64_t *got)
{
    char err[2048];
    void *ctx = qn_task_zmq(t, err, sizeof err);
    if (!ctx)
        return qn_task_failf(t, "%s", err);
    /* A new file of our own, never one found there (nor a link): the
     * folder may be a task's. */
    unlink(path);
    int fd =
        open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
    if (fd < 0)
        return qn_task_failf(t, "cannot create %s: %s", path, strerror(errno));
    qn_source *src = qn_calloc(pc->n_sources + 1, sizeof *src);
    for (size_t i = 0; i < pc->n_sources; i++) {
        src[i].endpoint = pc->sources[i]->endpoint;
        src[i].worker_id = pc->sources[i]->worker_id;
        src[i].curve_public = pc->sources[i]->curve_public;
    }
    qn_shard_want want = {.dataset = pc->dataset,
                          .index = pc->shard,
                          .size = pc->file_size,
                          .crc = pc->crc};
    int rc = qn_shard_pull(ctx, t->curve, src, pc->n_sources, &want, fd,
                           QN_PULL_STALL_MS, got, err, sizeof err);
    free(src);
    if (rc == 0 && fsync(fd) < 0)
        rc = qn_task_failf(t, "writing %s: %s", path, strerror(errno));
    else if (rc < 0)
        qn_task_failf(t, "%s", err);
    close(fd);
    if (rc < 0)
        unlink(path);
    return rc;
}

Quern__TaskSpec *qn_task_read_spec(int spec_fd)
{
    qn_stream st = {.fd = spec_fd};
    Quern__Envelope *env = NULL;
    char err[256];
    for (;;) {
        int rc = qn_stream_next(&st, &env, err, sizeof err);
        if (rc < 0) {
            qn_error("bad task spec from the worker: %s", err);
            break;
        }
        if (rc > 0)
            break;
        if (st.eof) {
            qn_error("the task spec on fd %d is incomplete", spec_fd);
            break;
        }
        if (qn_stream_read(&st) < 0)
            break;
    }
    qn_buf_release(&st.in);
    if (!env)
        return NULL;
    Quern__TaskSpec *spec = NULL;
    if (env->body_case == QUERN__ENVELOPE__BODY_TASK_SPEC) {
        spec = env->task_spec;
        env->task_spec = NULL;
        env->body_case = QUERN__ENVELOPE__BODY__NOT_SET;
    }
    qn_wire_free(env);
    return spec;
}

void qn_task_init(quern_task *t, Quern__TaskSpec *spec)
{
    t->spec = spec;
    qn_counters_init(&t->counters, s_counter_names, QN_C_BUILTIN_COUNT);
    t->codec = qn_codec_new((int)spec->codec, (int)spec->compress_level);
    t->out_crc = (uint32_t)crc32(0L, Z_NULL, 0);
    qn_attempt_dir(&t->scratch_buf, spec->work_dir, spec->job_id,
                   spec->kind == QUERN__TASK_KIND__MAP, spec->task,
                   spec->attempt);
    qn_buf_printf(&t->scratch_buf, "/%s", QN_ATTEMPT_TMP);
    t->scratch = t->scratch_buf.data;
    t->plugin_fd = -1;
    t->broker_fd = -1;
}

int qn_task_report_end(quern_task *t, int rc, const qn_range *parts)
{
    int sent;
    if (rc == 0)
        sent = s_send_update(
            t, QUERN__TASK_STATE__SUCCEEDED, 1.0,
            t->spec->kind == QUERN__TASK_KIND__MAP ? parts : NULL, NULL);
    else
        sent = s_send_update(t, QUERN__TASK_STATE__FAILED, 0, NULL, NULL);
    return sent < 0 ? -1 : 0;
}
