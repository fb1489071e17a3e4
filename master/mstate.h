/*
 * mstate.h -- the master daemon's state, shared by its modules (master.h
 * is the daemon's public face; this header is for master/ alone).
 *
 * One struct, qn_master, that every module takes as its context, in
 * groups: the sockets, the scheduler and the records it indexes (workers,
 * jobs), datasets, plugins, recent events, logs requests in flight, the
 * deadlines the loop waits for, and figures for /metrics. The modules
 * that only keep records (job.h, workers.h, evring.h, plugins.h,
 * catalog.h, sched.h) do not include it.
 */
#ifndef QN_MSTATE_H
#define QN_MSTATE_H

#include "catalog.h"
#include "curve.h"
#include "deadline.h"
#include "droplog.h"
#include "evring.h"
#include "http.h"
#include "job.h"
#include "journal.h"
#include "mconfig.h"
#include "plugins.h"
#include "ratelimit.h"
#include "sched.h"
#include "wire.h"
#include "workers.h"

#include <stddef.h>
#include <stdint.h>

typedef struct qn_master qn_master;

/* What the master's deadlines (m->due) are for. */
enum {
    QN_DUE_PUT,   /* key: a put waiting for its shards (qn_put_wait.id) */
    QN_DUE_LOGS,  /* key: a logs request waiting for a worker */
    QN_DUE_PUSH,  /* key: a job whose watchers are due a status push */
    QN_DUE_HEAL,  /* a look at shards short of copies (replicas.h) */
    QN_DUE_DRAIN, /* key: worker: a drain deadline, or a waiting client */
};

/* A copy of a dataset shard between workers that keeps it at its copies
 * (replicas.h), under way or failed recently. */
typedef struct qn_heal_copy {
    char dataset[72];
    uint32_t index;
    uint64_t size;
    int target, source; /* worker handles */
    uint32_t attempt;   /* the COPY task's attempt number */
    int64_t at;         /* started; failed: when it may be tried again */
    int done;           /* it succeeded; its target's report is awaited */
} qn_heal_copy;

/* A put waiting for its shards to be announced before it is sealed. */
typedef struct qn_put_wait {
    uint64_t id;
    char dataset[72];
    char route[256]; /* the client's connection */
    size_t routelen;
    uint32_t nshards;
    int64_t deadline;
} qn_put_wait;

/* A client waiting for an attempt's stderr from a worker. */
typedef struct qn_logs_wait {
    uint64_t id;
    char route[256];
    size_t routelen;
    int worker;
    int64_t deadline;
} qn_logs_wait;

/* A client waiting for a worker to be drained (quern drain --wait). */
typedef struct qn_drain_wait {
    char route[256];
    size_t routelen;
    int worker;
    int64_t reply_by; /* answered then, drained or not */
} qn_drain_wait;

struct qn_master {
    qn_master_config cfg;
    int stop; /* SIGTERM or SIGINT came */

    /* Sockets, and the message being handled. */
    struct {
        void *ctx, *sock;
        char endpoint[256]; /* where sock listens */
        int sigfd;
        qn_curve curve;
        qn_zap *zap;
        qn_http *http;
        qn_frames in;      /* the message being handled, and its sender */
        qn_droplog drops;  /* messages dropped, by reason (DROP_*) */
        qn_ratelimit rate; /* client requests, per address */
    } net;

    qn_sched *sched;
    qn_workers workers; /* indexed by scheduler handle */
    qn_jobs jobs;       /* indexed by scheduler handle */
    char tag[8];        /* this master run's part of job ids */

    /* Datasets. */
    struct {
        qn_catalog cat;
        char **dropped; /* removed: copies that turn up are dropped */
        size_t ndropped, cap_dropped;
        qn_put_wait *puts;
        size_t nputs, cap_puts;
        uint64_t put_seq;
        uint64_t place_seq; /* shards placed (qn_datasets_place) */
    } data;

    /* Shards kept at their copies (replicas.h). */
    struct {
        qn_heal_copy *busy, *failed, *dropping;
        size_t nbusy, cap_busy, nfailed, cap_failed, ndropping, cap_dropping;
        uint32_t seq;   /* the copies' attempt numbers */
        int64_t due;    /* when a look is set for (0: none) */
        uint64_t bytes; /* copied so far */
        uint64_t copies, failures, drops;
        uint64_t damaged;     /* copies workers found damaged */
        unsigned under, lost; /* shards short of copies, and without any */
    } heal;

    /* Workers being taken out of service (drain.h). */
    struct {
        qn_drain_wait *waits;
        size_t nwaits, cap;
        int any; /* some live worker drains */
    } drain;

    qn_plugins plugins;
    qn_evring events;

    /* quern logs requests waiting for workers. */
    struct {
        qn_logs_wait *v;
        size_t n, cap;
        uint64_t seq;
    } logs;

    qn_deadline due;    /* puts, logs requests and pushes (QN_DUE_*) */
    qn_journal journal; /* the seam for durable changes */
    qn_buf held;        /* messages waiting for the turn's commit */

    /* Figures for the status page and /metrics. */
    struct {
        int64_t start, start_wall; /* when the master started */
        uint64_t heartbeats_missed;
        uint64_t attempts_failed[2], attempts_lost[2]; /* by qn_kind */
    } stats;

    int64_t now; /* the monotonic clock, read once per loop turn */
};

/* Wall-clock ms (for display) at monotonic time now, from the clock read
 * once at start: the master reads no other clock. */
static inline int64_t qn_master_wall(const qn_master *m, int64_t now)
{
    return m->stats.start_wall + (now - m->stats.start);
}

#endif
