/*
 * catalog.h -- the master's view of datasets: which shards exist, their
 * size and CRC, and which workers hold a copy. It is rebuilt from what
 * workers report (at hello and on every change), so a restarted master
 * finds every dataset again. Pure bookkeeping: no I/O, no clock.
 *
 * Workers are named by id; whether a holder is alive is the caller's
 * business. A copy whose size or CRC differs from the shard's first
 * known copy is not taken (qn_catalog_hold says so).
 */
#ifndef QN_CATALOG_H
#define QN_CATALOG_H

#include <stddef.h>
#include <stdint.h>

typedef struct qn_cshard {
    int known; /* some worker reported it */
    uint64_t size;
    uint32_t crc;
    char **holders; /* worker ids */
    size_t nholders, cap_holders;
} qn_cshard;

typedef struct qn_dataset {
    char *name;
    int sealed;        /* complete: nshards shards */
    uint32_t nshards;  /* sealed: the count; else 0 */
    qn_cshard *shards; /* [nslots] by index */
    uint32_t nslots;
    size_t cap_slots;
    unsigned replicas; /* copies wanted of each shard */
    char *writer;      /* job id or "put" while being written, else NULL */
    int sealing;       /* its put is written and waits for its copies */
} qn_dataset;

typedef struct qn_catalog {
    qn_dataset *ds;
    size_t n, cap;
} qn_catalog;

/* Free everything in it. */
void qn_catalog_release(qn_catalog *c);

/* The dataset, or NULL. */
qn_dataset *qn_catalog_get(qn_catalog *c, const char *name);

/* A new, empty dataset being written by writer (NULL: none, a dataset
 * a restarted master knew); NULL if the name is taken. */
qn_dataset *qn_catalog_create(qn_catalog *c, const char *name,
                              const char *writer, unsigned replicas);

/* Forget a dataset. */
void qn_catalog_remove(qn_catalog *c, const char *name);

/*
 * worker holds shard index of dataset (size, crc; sealed with nshards
 * when set). Unknown datasets are added. Returns 0, or -1 if the copy
 * does not match the shard's known size and CRC (not taken).
 */
int qn_catalog_hold(qn_catalog *c, const char *worker, const char *dataset,
                    uint32_t index, uint64_t size, uint32_t crc, int sealed,
                    uint32_t nshards);

/* worker no longer holds shard index of dataset. */
void qn_catalog_unhold(qn_catalog *c, const char *worker, const char *dataset,
                       uint32_t index);

/* worker holds nothing (it will list what it has again). */
void qn_catalog_forget_worker(qn_catalog *c, const char *worker);

/* Does worker hold shard index of d? */
int qn_catalog_holds(const qn_dataset *d, uint32_t index, const char *worker);

/* Shards worker holds a copy of, and their bytes. */
void qn_catalog_held(const qn_catalog *c, const char *worker, uint32_t *n,
                     uint64_t *bytes);

/* The shard, or NULL if index is out of range or never reported. */
const qn_cshard *qn_catalog_shard(const qn_dataset *d, uint32_t index);

/* Total bytes of d's known shards. */
uint64_t qn_catalog_bytes(const qn_dataset *d);

#endif
