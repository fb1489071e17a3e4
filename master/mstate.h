/*
 * mstate.h -- the master daemon's state, shared by its modules (master.h
 * is the daemon's public face; this header is for master/ alone).
 *
 * One struct, qn_master, that every handler takes as its context. Only
 * the master's own modules include this header.
 */
#ifndef QN_MSTATE_H
#define QN_MSTATE_H

#include "catalog.h"
#include "curve.h"
#include "droplog.h"
#include "http.h"
#include "master.h"
#include "ratelimit.h"
#include "sched.h"
#include "sha256.h"
#include "split.h"
#include "wire.h"

#include <stddef.h>
#include <stdint.h>

#define MAX_MAPS 100000     /* map tasks per job (a reduce lists them all) */
#define MAX_WATCHERS 64     /* clients following one job */
#define PUSH_MIN_MS 250     /* status pushes at most this often */
#define PUSH_MAX_MS 1000    /* ... and at least this often */
#define MAX_FAILURES 64     /* failure reports kept per job */
#define MAX_COUNTERS 512    /* distinct counter names per job */
#define MAX_SKIPPED 1000    /* skipped records listed per job */
#define FETCH_REPORTS 3     /* fetch failures before a map runs again */
#define SKIP_AFTER 2        /* crashes on a record before it is skipped */
#define SPEC_MIN_MS 1000    /* no backup for an attempt younger than this */
#define MAX_REPLICAS 16     /* copies of a dataset shard at most */
#define COPY_TRIES 3        /* failed copies of an output shard accepted */
#define PUT_COMMIT_MS 30000 /* a put's shards must all be announced by then */
#define PLUGINS_KEPT 16     /* plugins kept when no running job uses them */
#define EVENTS_KEPT 1000    /* recent events kept for the status page */
#define LOGS_MAX 1048576    /* bytes of an attempt's stderr sent at most */
#define LOGS_WAIT_MS                                                           \
    4000                 /* a worker must answer a logs request by then        \
                            (before the client gives up: 5 s) */
#define MAX_LOG_WAITS 64 /* logs requests in flight */

/* What one client or peer may take of the master. */
#define MAX_RUNNING_JOBS 256  /* jobs running at once */
#define MAX_LIVE_WORKERS 4096 /* workers alive at once */
#define CLIENT_RATE 2000      /* client requests a second from one address */
#define CLIENT_BURST 4000     /* ... and at once, after a quiet spell */

/* The page, compiled in from master/status.html (Makefile). */
extern const unsigned char qn_status_page[];
extern const size_t qn_status_page_len;

typedef struct {
    char id[72];
    char host[128];
    unsigned pid, slots;
    char *endpoint;  /* shuffle server */
    char route[256]; /* ZeroMQ routing id of its connection */
    size_t routelen;
    uint64_t rss_peak;
    uint64_t shuffle_dropped; /* its shuffle server's drops, as it said */
    int64_t seen;
    unsigned failures;
    uint64_t hb_seq; /* the newest heartbeat's sequence number */
    int64_t hb_last; /* when the newest heartbeat came */
    char curve_public[QN_CURVE_Z85];
    int has_data;     /* it keeps datasets */
    unsigned placed;  /* shards of puts placed on it (for spreading) */
    uint64_t session; /* the secret its welcome carried: its messages
                       * carry it back, so no other peer speaks for it */
} qn_mworker;

/* A plugin sent by a client, kept by content hash for workers to fetch. */
typedef struct {
    char hash[QN_SHA256_HEX];
    uint8_t *data;
    size_t len;
    int64_t used;
} qn_plugin;

/* A put waiting for its shards to be announced before it is sealed. */
typedef struct {
    char dataset[72];
    char route[256];
    size_t routelen;
    uint32_t nshards;
    int64_t deadline;
} qn_put_wait;

/* A record map() died in, and how many attempts it took down. */
typedef struct {
    uint32_t piece;
    uint64_t offset;
    unsigned crashes;
} qn_crash;

typedef struct {
    unsigned attempt;
    int worker;
    Quern__PartitionInfo *parts; /* [nreduce]; bytes/raw/records */
    long long *cv; /* what the attempt added to each job counter */
    size_t ncv;
    unsigned reports; /* fetch failures reported against this output */
    qn_crash *crashes;
    size_t ncrashes;
} qn_mapout;

typedef struct {
    char *name;
    long long value;
} qn_jcounter;

/* One attempt of a task, for the status page and quern logs. */
typedef struct {
    unsigned attempt;
    int worker;
    int local;          /* maps: 1, 0 or QN_LOC_ANY */
    int blamed;         /* reduces: it reported a map output corrupt */
    int64_t start, end; /* monotonic ms; end 0 while it runs */
    int64_t start_wall; /* unix ms */
} qn_arec;

typedef struct {
    qn_arec *a;
    unsigned n;
} qn_trec;

/* Something an operator wants to see in the log of recent events. */
typedef struct {
    uint64_t seq;
    int64_t wall; /* unix ms */
    int level;    /* enum qn_log_level */
    const char *kind;
    char job[32];
    char task[24];
    unsigned attempt;
    char worker[72];
    char *msg;
} qn_evrec;

/* A client waiting for an attempt's stderr from a worker. */
typedef struct {
    uint64_t id;
    char route[256];
    size_t routelen;
    int worker;
    int64_t deadline;
} qn_logs_wait;

typedef struct {
    char route[256];
    size_t routelen;
} qn_route;

typedef struct {
    char id[32];
    Quern__JobSpec *spec; /* private copy */
    qn_splits splits;
    unsigned nmaps, nreduce;
    qn_mapout *outs;     /* [nmaps] */
    double *progress[2]; /* running attempts' progress, per task */
    qn_jcounter *counters;
    size_t ncounters;
    Quern__AttemptFailure *failures;
    size_t nfailures;
    Quern__SkippedRecord *skipped;
    size_t nskipped;
    int state; /* Quern__JobState */
    char *error;
    int64_t start, end; /* monotonic ms */
    uint64_t task_rss_peak;
    qn_route *watchers;
    size_t nwatchers;
    int dirty;
    int64_t last_push;
    char plugin_hash[QN_SHA256_HEX];
    int out_dataset;       /* output is a dataset (spec->output its name) */
    unsigned out_replicas; /* copies of each output shard wanted */
    int committing;        /* reduces done; copying output shards */
    int *part_copy;        /* [nreduce] worker copying it now, or -1 */
    unsigned *part_copy_fails;
    unsigned copy_seq;
    qn_trec *trec[2];    /* [nmaps], [nreduce]: every attempt started */
    int64_t submit_wall; /* unix ms */
} qn_job;

struct qn_master {
    qn_master_config cfg;
    void *ctx, *sock;
    char endpoint[256];
    int sigfd;
    int stop;
    qn_sched *sched;
    qn_mworker *workers; /* indexed by scheduler handle */
    int nworkers;
    qn_job *jobs; /* indexed by scheduler handle */
    int njobs;
    char tag[8]; /* this master run's part of job ids */
    qn_frames in;
    qn_droplog drops;  /* messages dropped, by reason (DROP_*) */
    qn_ratelimit rate; /* client requests, per address */
    qn_catalog cat;
    char **dropped_ds; /* datasets removed: copies that turn up are dropped */
    size_t ndropped_ds;
    qn_plugin *plugins;
    size_t nplugins;
    qn_put_wait *puts;
    size_t nputs;
    qn_curve curve;
    qn_zap *zap;
    qn_http *http;
    int64_t start, start_wall;
    qn_evrec *events; /* a ring of EVENTS_KEPT */
    size_t nevents, event_head;
    uint64_t event_seq;
    uint64_t heartbeats_missed;
    uint64_t attempts_failed[2], attempts_lost[2];
    qn_logs_wait *logs;
    size_t nlogs;
    uint64_t logs_seq;
};

#endif
