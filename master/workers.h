/*
 * workers.h -- the registry of workers the master knows: who they are,
 * where to reach them, what they last said of themselves.
 *
 * A worker's index in the registry is its scheduler handle (sched.h):
 * qn_workers_join is the only caller of qn_sched_worker_join, so the two
 * cannot get out of step. Whether a worker is alive is the scheduler's
 * word; the registry asks it. A worker that joins again after it was
 * given up for dead gets a new entry; the old one stays, dead, so
 * handles held elsewhere (a job's attempt records) keep their meaning.
 */
#ifndef QN_MWORKERS_H
#define QN_MWORKERS_H

#include "curve.h"
#include "sched.h"
#include "wire.h"

#include <stddef.h>
#include <stdint.h>

typedef struct qn_mworker {
    char id[72];
    char host[128];
    unsigned pid, slots;
    char *endpoint;  /* shuffle server (owned) */
    char route[256]; /* ZeroMQ routing id of its connection */
    size_t routelen;
    uint64_t rss_peak;
    uint64_t shuffle_dropped; /* its shuffle server's drops, as it said */
    int64_t seen;             /* when it was last heard from */
    unsigned failures;        /* attempts that failed there */
    uint64_t hb_seq;          /* the newest heartbeat's sequence number */
    int64_t hb_last;          /* when the newest heartbeat came */
    char curve_public[QN_CURVE_Z85];
    int has_data;         /* it keeps datasets */
    unsigned placed;      /* shards of puts placed on it (for spreading) */
    uint64_t session;     /* the secret its welcome carried: its messages
                           * carry it back, so no other peer speaks for it */
    int unheard;          /* restored from the state dir, not heard from since:
                           * it gets no work (0 slots) until it is */
    unsigned minor;       /* the protocol minor version used with it */
    uint64_t incarnation; /* of its process last heard from (0: unsaid) */
    int left;             /* it said it was stopping (not found dead) */
    char peer[64];        /* the address its hello came from ("" unknown) */
    int64_t gone;         /* when it was found dead or left (0: alive) */
    int draining;         /* being taken out of service: no new work */
    int64_t drain_deadline; /* draining: its running attempts then run
                             * elsewhere (0: done so) */
    int drained;            /* draining, and holds nothing anyone needs */
    int drain_asked;        /* its process asked to be drained (SIGTERM):
                             * it is told when it is, and stops */
    int drain_client;       /* a client asked for the drain: it stays over
                             * a restart of the worker (else it ends) */
    unsigned sb_layers, sb_missing; /* its tasks' sandbox (sandbox.h) */
    char sb_mode[12];               /* its --sandbox ("": it did not say) */
    char task_user[64];             /* the user its tasks run as */
} qn_mworker;

/* What hello says the worker offers, into wk: whether it keeps datasets,
 * and its tasks' sandbox. */
void qn_workers_abilities(qn_mworker *wk, const Quern__WorkerHello *h);

typedef struct qn_workers {
    qn_mworker *v; /* indexed by scheduler handle */
    int n;
    size_t cap;
    qn_sched *sched; /* whose handles these are (not owned) */
} qn_workers;

/* An empty registry for the workers of sched. */
void qn_workers_init(qn_workers *r, qn_sched *sched);

/* Free every entry. */
void qn_workers_release(qn_workers *r);

/*
 * A worker joins: a copy of *w (its endpoint string duplicated) becomes
 * the newest entry, and the scheduler learns of it with w->slots slots
 * (none if it is draining).
 * Returns its handle, which is its index.
 */
int qn_workers_join(qn_workers *r, int64_t now, const qn_mworker *w);

/* The newest entry with this id (a worker that joined again has a new
 * one), or -1. */
int qn_workers_find(const qn_workers *r, const char *id);

/* The handle of the live worker with this id, or -1. */
int qn_workers_alive_id(const qn_workers *r, const char *id);

/* Is worker w alive? */
int qn_workers_alive(const qn_workers *r, int w);

/* Live workers, and live workers that keep datasets and may take more
 * (not draining). */
unsigned qn_workers_live(const qn_workers *r);
unsigned qn_workers_takers(const qn_workers *r);

/* May worker w take new data (a put's shard, a copy)? */
int qn_workers_takes_data(const qn_workers *r, int w);

/* The slots the scheduler may use on w: none while it is draining or
 * not heard from since a restart. */
unsigned qn_workers_usable_slots(const qn_workers *r, int w);

/* Workers alive and dead, and the usable slots of the live ones, busy or
 * not. */
void qn_workers_counts(const qn_workers *r, unsigned *alive, unsigned *dead,
                       unsigned *slots, unsigned *busy);

#endif
