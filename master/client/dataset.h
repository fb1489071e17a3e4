/*
 * dataset.h -- the client's side of datasets: `quern put`, `ls`, `cat`,
 * `get` and `rm`. The master says where shards go and where they are;
 * the bytes travel between this client and the workers directly.
 */
#ifndef QN_DATASET_H
#define QN_DATASET_H

#include <stddef.h>
#include <stdint.h>

#include "client.h"

struct qn_curve;

/* How put cuts files into shards. */
typedef struct qn_put_opts {
    const char *dataset;
    unsigned replicas;    /* copies of each shard */
    uint64_t shard_size;  /* target bytes per shard */
    uint64_t record_size; /* fixed-size records (0: lines) */
    int whole;            /* one shard per file */
} qn_put_opts;

/*
 * Cut files into shards at record boundaries and stream each to the
 * workers the master picks, then have the master seal the dataset.
 * Prints a summary on stderr. Returns an exit status.
 */
int qn_dataset_put(qn_client *c, const struct qn_curve *curve,
                   const qn_put_opts *o, const char *const *files, size_t n);

/* List datasets (name NULL) or one dataset's shards. Returns an exit status. */
int qn_dataset_ls(qn_client *c, const char *name, int json);

/* Write a dataset's shards in order to stdout (dir NULL) or as files
 * DIR/part-NNNNN. Returns an exit status. */
int qn_dataset_read(qn_client *c, const struct qn_curve *curve,
                    const char *name, const char *dir);

/* Remove a dataset from every worker. Returns an exit status. */
int qn_dataset_rm(qn_client *c, const char *name);

#endif
