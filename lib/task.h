/*
 * task.h -- one task attempt, run in its own process (quern-task).
 *
 * The worker starts quern-task with a socketpair on fd 3, sends it a
 * TaskSpec, and reads TaskUpdates back: progress while it runs, then one
 * final SUCCEEDED or FAILED. The task loads the job's plugin, runs the map
 * or the reduce, and exits. A plugin that crashes or hangs takes only this
 * process with it.
 *
 * This header also defines the structs behind quern.h's opaque types,
 * shared by the map and reduce sides.
 */
#ifndef QN_TASK_H
#define QN_TASK_H

struct qn_fetched; /* fetch.h */

#include <stddef.h>
#include <stdint.h>

#include "combtab.h"
#include "counters.h"
#include "gasp.h"
#include "ifile.h"
#include "layout.h"
#include "merge.h"
#include "quern.h"
#include "sortbuf.h"
#include "wire.h"

/* What quern_emit does, by phase. */
typedef enum {
    QN_EMIT_NONE = 0,    /* emitting is an error here */
    QN_EMIT_MAP,         /* into the sort buffer */
    QN_EMIT_COMBINE,     /* into an intermediate file, same key as the group */
    QN_EMIT_COMBINE_MEM, /* into the combining table's scratch block */
    QN_EMIT_REDUCE,      /* into the job's output */
} qn_emit_mode;

/* Built-in counter indices (names in task.c). */
enum {
    QN_C_MAP_IN_RECORDS,
    QN_C_MAP_IN_BYTES,
    QN_C_MAP_OUT_RECORDS,
    QN_C_MAP_OUT_BYTES,
    QN_C_COMBINE_IN,
    QN_C_COMBINE_OUT,
    QN_C_SPILLS,
    QN_C_SPILLED_RECORDS,
    QN_C_INTER_RAW,
    QN_C_INTER_STORED,
    QN_C_SHUFFLE_RAW,
    QN_C_SHUFFLE_STORED,
    QN_C_REDUCE_GROUPS,
    QN_C_REDUCE_IN_RECORDS,
    QN_C_REDUCE_OUT_RECORDS,
    QN_C_REDUCE_OUT_BYTES,
    QN_C_MAP_SKIPPED,
    QN_C_BUILTIN_COUNT
};

/* Run the job's setup (if it has one), the phase marked in the gasp
 * meanwhile. 0, or -1 with the failure set. */
int qn_task_setup(quern_task *t);

/* Run the job's teardown (if it has one) and end the emitting mode. 0, or
 * -1 if the task has failed, in teardown or before it. */
int qn_task_teardown(quern_task *t);

/* Something that hands out the values of one key. */
struct quern_values {
    int (*next)(quern_values *vs, const void **val, size_t *vlen);
    void *ctx;
    long long taken; /* values handed out */
};

struct quern_task {
    Quern__TaskSpec *spec; /* owned */
    const quern_job *job;  /* the plugin's definition (job_copy) */
    quern_job job_copy;    /* it, with fields it predates zeroed */
    void *dl;              /* dlopen handle */
    int ctl;               /* fd 3: the worker */
    qn_emit_mode mode;

    /* map */
    qn_sortbuf *sb;            /* jobs without a combiner, */
    qn_combtab *ct;            /* jobs with one */
    qn_buf *comb_out;          /* QN_EMIT_COMBINE_MEM: where values go */
    unsigned long long offset; /* current record's byte offset */
    int (*spill)(void *ctx);   /* empties a full sort buffer, */
    void *spill_ctx;           /* given this */
    qn_gasp *gasp;             /* shared with the worker; never NULL */
    uint64_t *skip;            /* offsets to skip in the current piece, */
    size_t nskip, skip_at;     /* sorted, and the next one to look for */
    size_t cap_skip;

    /* combine and merge output */
    qn_ifile_writer *iw;
    unsigned part;         /* partition being written */
    const void *group_key; /* combine: the key being combined */
    size_t group_klen;

    /* reduce output */
    int out_fd;
    const char *out_path;     /* the file out_fd writes, for errors */
    qn_buf out;               /* buffered output lines */
    uint64_t out_size;        /* bytes written, */
    uint32_t out_crc;         /* and their CRC-32 (a dataset shard's) */
    struct qn_compress *outc; /* --output-codec: out_fd's compressor */
    char warning[512];        /* map: said with its success (binary input) */
    void *zmq_ctx;            /* for reading shards from other workers */
    struct qn_curve *curve;

    /* counters: built-ins first (fixed), then user counters ("user.*") */
    qn_counters counters;

    /* reduce run inline (inline.c): the maps' output files and their
     * partitions' ranges, in map order, instead of fetching */
    char **local_maps;
    qn_range **local_parts;
    size_t nlocal;

    char fail[1024];     /* why the attempt failed */
    int64_t next_report; /* when progress is next sent */
    double progress;     /* the last progress sent */
    qn_codec *codec;     /* intermediate compression */

    /* where the attempt writes (its folder's tmp/, layout.h): a path, or
     * "tmp" once the task runs in the folder itself (sandbox.h) */
    const char *scratch;
    qn_buf scratch_buf;

    /* in a sandbox (taskrun.c): what was opened with the worker's rights */
    int plugin_fd; /* the plugin (-1: load it by its path) */
    int broker_fd; /* the broker (broker.h; -1: none, do it here) */
    /* ... and what it does for the task (NULL: the task does it) */
    int (*open_piece)(quern_task *t, size_t index, int *local);
    int (*fetch)(quern_task *t, char ***segs, char ***names,
                 struct qn_fetched **from, size_t *nsegs);
    void (*drop_output)(quern_task *t); /* a failed reduce's output */
    qn_buf out_name; /* reduce: its output file's path, once opened */
};

#define QN_PULL_STALL_MS 5000 /* a holder silent this long: try the next */

/*
 * Stream dataset shard pc from its holders into the file at path
 * (created). Returns 0, or -1 with the failure recorded; *got receives the
 * bytes read.
 */
int qn_task_pull(quern_task *t, const Quern__InputPiece *pc, const char *path,
                 uint64_t *got);

/* The task's ZeroMQ context (made on first use, CURVE keys loaded).
 * NULL with err on failure. */
void *qn_task_zmq(quern_task *t, char *err, size_t errcap);

/*
 * Set up t to run spec (not yet its plugin): counters, codec. ctl, gasp
 * and out_fd are the caller's.
 */
void qn_task_init(quern_task *t, Quern__TaskSpec *spec);

/* Load the job's plugin and check it. Returns 0 or -1 (t->fail says why). */
int qn_task_load(quern_task *t);

/*
 * Read the TaskSpec the worker left in the file on spec_fd (from its
 * start). Returns it (caller owns it: quern__task_spec__free_unpacked),
 * or NULL, logged, when the file holds no whole, well-formed one.
 */
Quern__TaskSpec *qn_task_read_spec(int spec_fd);

/*
 * Tell the worker how the attempt ended: SUCCEEDED when rc is 0 (with a
 * map's partition ranges, parts), FAILED with t->fail otherwise. Returns
 * 0, or -1 when the worker is gone.
 */
int qn_task_report_end(quern_task *t, int rc, const qn_range *parts);

/* Free what t holds, its spec included (when it was unpacked from the
 * worker's message; clear t->spec first otherwise). */
void qn_task_release(quern_task *t);

/* The name of built-in counter i. */
const char *qn_task_counter_name(int i);

/* Add to a built-in counter. */
static inline void qn_task_count(quern_task *t, int i, long long d)
{
    t->counters.v[i].value += d;
}

/* Record a failure message (printf format) unless one is set; returns -1. */
int qn_task_failf(quern_task *t, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/*
 * Send a RUNNING update with progress (0..1; negative: unchanged, just
 * alive) if a second has passed since the last one (or force is set). Long
 * loops call it every few thousand records so the master never mistakes
 * steady work for a hang. Returns 0 or -1 when the worker is gone.
 */
int qn_task_progress(quern_task *t, double progress, int force);

/*
 * Is a progress report due? A coarse clock read (a few nanoseconds, no
 * system call), cheap enough to ask once per record or value, so that a
 * task doing steady slow work keeps telling the master it is alive.
 */
int qn_task_report_due(const quern_task *t);

/*
 * Tell the master (through the worker) that the output of a map attempt
 * could not be fetched or checked, from the worker process of that
 * incarnation (0: unknown); lost: it is gone or corrupt for good.
 * Returns 0 or -1 when the worker is gone.
 */
int qn_task_fetch_failed(quern_task *t, unsigned map, unsigned attempt,
                         uint64_t incarnation, int lost, const char *reason);

/*
 * The partition of key (the job's partition function, or XXH64 modulo R).
 * QN_COMBTAB_PART_LATER, with the failure recorded, when the job's
 * function returns one out of range.
 */
unsigned qn_task_partition(quern_task *t, const void *key, size_t klen);

/* Compare keys with the job's order. */
int qn_task_cmp(const quern_task *t, const void *a, size_t alen, const void *b,
                size_t blen);

/* t's counters that are not zero, as messages: cs[i] each, ptrs[i] to
 * it (both with room for t->counters.n); how many. Names are borrowed. */
size_t qn_task_counters_wire(const quern_task *t, Quern__Counter **ptrs,
                             Quern__Counter *cs);

/* Flush reduce output buffered in t->out to t->out_fd; 0 or -errno. */
int qn_task_flush_output(quern_task *t);

/* Path of a file in the folder this attempt writes (t->scratch). */
void qn_task_path(const quern_task *t, qn_buf *b, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/*
 * Merge sorted block streams to a block stream or, with a reduce/combine
 * callback, group them by key. Shared by the map's final merge and the
 * reduce. See task.c.
 */
typedef int (*qn_group_fn)(quern_task *t, const void *key, size_t klen,
                           quern_values *vs);

/*
 * Merges n sorted files (paths, with names for messages, which may be NULL
 * or hold NULLs) into a new file; returns its path (caller frees) or NULL
 * with t->fail set.
 */
typedef char *(*qn_merge_step_fn)(quern_task *t, char **paths, char **names,
                                  size_t n, void *ctx);

/*
 * Merge consecutive files until at most QN_MERGE_FANIN remain, so a final
 * merge can read them all at once. The first pass merges just enough files
 * to reach QN_MERGE_FANIN when that is possible; otherwise passes merge
 * groups of QN_MERGE_FANIN, so each byte is rewritten about log32(n) times.
 * Merged inputs are removed and freed; paths/names (names may be NULL) and
 * *n are updated in place, also on failure. Returns 0 or -1.
 */
int qn_task_merge_plan(quern_task *t, char **paths, char **names, size_t *n,
                       qn_merge_step_fn step, void *ctx);

/* Takes one merged record; returns 0, or <0 to stop the merge. */
typedef int (*qn_merge_sink_fn)(void *ctx, const void *key, size_t klen,
                                const void *val, size_t vlen);

/*
 * Hand every record of merge m, in order, to sink, telling the worker
 * every 256 records that the task is alive (merging makes no other
 * progress it could report). Returns 0 once m is drained, or the first
 * negative code of the sink or of the merge (qn_merge_failed(m) says
 * which).
 */
int qn_task_merge_copy(quern_task *t, qn_merge *m, qn_merge_sink_fn sink,
                       void *ctx);

/*
 * Run fn once per distinct key of the merged sources (in order), handing it
 * the key's values. Returns 0, or -1 with t->fail set.
 */
int qn_task_group(quern_task *t, qn_blockreader **src, size_t n,
                  qn_group_fn fn);

#endif
