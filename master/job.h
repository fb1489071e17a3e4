/*
 * job.h -- the master's record of one job: its spec and splits, where its
 * maps' outputs are, its counters, failures and skipped records, every
 * attempt started, and who watches it.
 *
 * Bookkeeping only: no messages, no clock of its own (times come as
 * arguments). The scheduler (sched.h) decides what runs; this record keeps
 * what users and reducers need to know about it. Jobs live in a qn_jobs
 * list whose index is the job's scheduler handle.
 */
#ifndef QN_MJOB_H
#define QN_MJOB_H

#include "counters.h"
#include "sched.h"
#include "split.h"
#include "wire.h"

#include <stddef.h>
#include <stdint.h>

#define QN_JOB_MAX_FAILURES 64  /* failure reports kept per job (newest) */
#define QN_JOB_MAX_COUNTERS 512 /* distinct counter names per job */
#define QN_JOB_MAX_SKIPPED 1000 /* skipped records listed per job */
#define QN_JOB_MAX_CRASHES 64   /* crash sites remembered per map */
#define QN_JOB_SKIP_AFTER 2     /* crashes on a record before it is skipped */

/* Partition p of a map's output. */
typedef struct qn_part {
    uint64_t bytes;     /* as stored and sent */
    uint64_t raw_bytes; /* before compression */
    uint64_t records;
} qn_part;

/* A record map() died in, and how many attempts it took down. */
typedef struct qn_crash {
    uint32_t piece; /* the input piece, of the map's split */
    uint64_t offset;
    unsigned crashes;
} qn_crash;

/* A map task's output in use, and what it knows of its failures. */
typedef struct qn_mapout {
    unsigned attempt; /* the attempt whose output counts (0: none) */
    int worker;       /* where it is */
    qn_part *parts;   /* [nreduce] */
    long long *cv;    /* what the attempt added to each job counter */
    size_t ncv, cap_cv;
    unsigned reports; /* fetch failures reported against this output */
    qn_crash *crashes;
    size_t ncrashes, cap_crashes;
} qn_mapout;

/* One attempt of a task, for the status page and quern logs. */
typedef struct qn_arec {
    unsigned attempt;
    int worker;
    int local;          /* maps: 1, 0 or QN_LOC_ANY */
    int blamed;         /* reduces: it reported a map output corrupt */
    int64_t start, end; /* monotonic ms; end 0 while it runs */
    int64_t start_wall; /* unix ms */
} qn_arec;

/* Every attempt a task started, oldest first. */
typedef struct qn_trec {
    qn_arec *a;
    size_t n, cap;
} qn_trec;

/* Why an attempt failed, as users see it. */
typedef struct qn_failure {
    qn_kind kind;
    unsigned task, attempt;
    char *worker;
    char *reason;
    char *tail;      /* the end of its stderr ("" if none) */
    uint64_t offset; /* the record it was in (0 if none) */
    char *shard;     /* that record's shard ("" if none) */
} qn_failure;

/* A record --skip-bad-records skipped. */
typedef struct qn_skipped {
    unsigned map;
    char *shard;
    uint64_t offset;
} qn_skipped;

/* A client's connection that follows a job. */
typedef struct qn_route {
    char route[256];
    size_t routelen;
} qn_route;

typedef struct qn_job {
    char id[32];
    Quern__JobSpec *spec; /* the job as submitted (owned) */
    char plugin_hash[65]; /* its plugin's SHA-256, hex */
    qn_splits splits;     /* the maps' inputs, until the job ends */
    unsigned nmaps, nreduce;
    int state;           /* Quern__JobState */
    char *error;         /* why it failed, or NULL */
    int64_t start, end;  /* monotonic ms; end 0 while it runs */
    int64_t submit_wall; /* unix ms */
    uint64_t task_rss_peak;

    /* Tasks, until the job ends (then NULL): */
    qn_mapout *outs;     /* [nmaps] */
    double *progress[2]; /* running attempts' progress, per task */
    qn_trec *trec[2];    /* [nmaps], [nreduce]: every attempt started */

    qn_counters counters; /* at most QN_JOB_MAX_COUNTERS */
    qn_failure *failures; /* the newest QN_JOB_MAX_FAILURES, oldest first */
    size_t nfailures, cap_failures;
    qn_skipped *skipped;
    size_t nskipped, cap_skipped;
    char *warning; /* the first map's warning (binary input), or NULL */

    /* Clients following it. */
    struct {
        qn_route *v;
        size_t n, cap;
        int dirty;         /* changed since the last push */
        int64_t last_push; /* when they were last told */
        int64_t push_at;   /* the push deadline set (INT64_MAX: none) */
    } watch;

    /* Output to a dataset: its shards copied before it is sealed. */
    struct {
        int dataset;       /* the output is a dataset (spec->output) */
        unsigned replicas; /* copies of each shard wanted */
        int committing;    /* reduces done; copying shards */
        int *copy;         /* [nreduce] worker copying it now, or -1 */
        unsigned *fails;   /* [nreduce] failed copies */
        unsigned seq;      /* copies started, numbering them */
    } out;
} qn_job;

/* The jobs the master knows, indexed by scheduler handle. */
typedef struct qn_jobs {
    qn_job *v;
    size_t n, cap;
} qn_jobs;

/*
 * Start j's record for job id from spec and splits (both taken: *spec and
 * the splits' arrays are j's now). Every task is pending; the built-in
 * counters are there, at 0. out_dataset says whether the output is a
 * dataset. now and wall are the clocks' readings.
 */
void qn_job_init(qn_job *j, const char *id, Quern__JobSpec **spec,
                 qn_splits *splits, int out_dataset, int64_t now, int64_t wall);

/* Free what j holds. */
void qn_job_release(qn_job *j);

/* The job ended: drop what only scheduling needed (its splits, map
 * outputs, progress), keeping the summary users read. */
void qn_job_trim(qn_job *j);

/* Add v to counter name, created if new; returns its index, or SIZE_MAX
 * when the job has QN_JOB_MAX_COUNTERS names already. */
size_t qn_job_count(qn_job *j, const char *name, long long v);

/* The value of counter name (0 if it has none). */
long long qn_job_counter(const qn_job *j, const char *name);

/* The name of input piece `piece` of map task `map`, or "". */
const char *qn_job_shard(const qn_job *j, unsigned map, uint32_t piece);

/*
 * An attempt failed: counted in failed_attempts, and kept (copied) with
 * the newest QN_JOB_MAX_FAILURES. tail and shard may be NULL.
 */
void qn_job_add_failure(qn_job *j, qn_kind kind, unsigned task,
                        unsigned attempt, const char *worker,
                        const char *reason, const char *tail, uint64_t offset,
                        const char *shard);

/* The reason of the newest failure kept of a task, or "". */
const char *qn_job_last_failure(const qn_job *j, qn_kind kind, unsigned task);

/* An attempt started on worker at now (wall: unix ms); returns its
 * record. */
qn_arec *qn_job_attempt_start(qn_job *j, qn_kind kind, unsigned task,
                              unsigned attempt, int worker, int local,
                              int64_t now, int64_t wall);

/* The record of an attempt of a task, or NULL. */
qn_arec *qn_job_arec_find(qn_job *j, qn_kind kind, unsigned task,
                          unsigned attempt);

/* The task's newest attempt, or NULL if none started. */
qn_arec *qn_job_arec_last(qn_job *j, qn_kind kind, unsigned task);

/* An attempt ended (any way): its duration stops growing. */
void qn_job_arec_end(qn_job *j, qn_kind kind, unsigned task, unsigned attempt,
                     int64_t now);

/*
 * Map task's attempt on worker succeeded with parts[nreduce] and the
 * counters names[i] += values[i]: its output is the one in use, and what
 * it counted is kept with it, so a map run again is not counted twice.
 */
void qn_job_map_done(qn_job *j, unsigned task, unsigned attempt, int worker,
                     const qn_part *parts, const char *const *names,
                     const long long *values, size_t ncounters);

/* The same, from the attempt's SUCCEEDED update u (a partition per
 * reduce, and its counters). */
void qn_job_map_done_update(qn_job *j, int worker, const Quern__TaskUpdate *u);

/* Map task's output is gone (it runs again): take back what it counted. */
void qn_job_map_lost(qn_job *j, unsigned task);

/* A map attempt died in the record at offset of input piece: remember it
 * for --skip-bad-records. */
void qn_job_note_crash(qn_job *j, unsigned task, uint32_t piece,
                       uint64_t offset);

/* A map attempt of task that skipped records succeeded: list the records
 * it skipped in the job (once each). */
void qn_job_note_skipped(qn_job *j, unsigned task);

/* Does job j need the blob with this SHA-256 (hex): its plugin, or a file
 * it ships? */
int qn_job_uses_blob(const qn_job *j, const char *hash);

/* "map" or "reduce". */
const char *qn_kind_name(qn_kind k);

/* Add a job to the list; returns it (its index is list->n - 1). The
 * pointer is good until the next add. */
qn_job *qn_jobs_add(qn_jobs *list);

/* The index of the job with this id, or -1. */
int qn_jobs_find(const qn_jobs *list, const char *id);

/* Jobs running now. */
int qn_jobs_running(const qn_jobs *list);

/* Jobs by state: [running, succeeded, failed, cancelled]. */
void qn_jobs_by_state(const qn_jobs *list, unsigned out[4]);

/* Free every job and the list. */
void qn_jobs_release(qn_jobs *list);

#endif
