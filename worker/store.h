/*
 * store.h -- the dataset shards a worker keeps in its --data-dir.
 *
 * Layout: DIR/NAME/part-NNNNN is shard NNNNN of dataset NAME, and
 * DIR/NAME/part-NNNNN.meta its description (a packed ShardInfo: size,
 * CRC-32, sealed). Shards arrive in DIR/.incoming (uploads, copies) or
 * DIR/.staging (reduce output) and are renamed into place only once their
 * size and CRC are checked, so a half-written shard is never installed or
 * announced. At start-up every installed shard is read and checked again;
 * one that does not match its description is deleted, not announced.
 *
 * The store records what it adds and removes; the worker drains those
 * changes (qn_store_take_changes) into reports to the master.
 */
#ifndef QN_STORE_H
#define QN_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "util.h"

typedef struct qn_shard {
    char dataset[72];
    uint32_t index;
    uint64_t size;
    uint32_t crc;
    int sealed;       /* the dataset is complete */
    uint32_t nshards; /* when sealed */
} qn_shard;

typedef struct qn_store qn_store;

/*
 * Open (creating) the data dir, clear unfinished uploads, and check every
 * shard in it. NULL with a message in err if the dir is unusable.
 */
qn_store *qn_store_open(const char *dir, char *err, size_t errcap);

/* Close it; accepts NULL, clears the pointer. */
void qn_store_destroy(qn_store **self_p);

/* The data dir (absolute). */
const char *qn_store_dir(const qn_store *s);

/* The shards held: count, and the i-th. */
size_t qn_store_count(const qn_store *s);
const qn_shard *qn_store_at(const qn_store *s, size_t i);

/* The shard, or NULL if not held. */
const qn_shard *qn_store_find(const qn_store *s, const char *dataset,
                              uint32_t index);

/* The path of a shard's file (held or not) into out. */
void qn_store_path(const qn_store *s, const char *dataset, uint32_t index,
                   qn_buf *out);

/* A fresh path for a file to be installed later (in DIR/.incoming). */
void qn_store_temp_path(qn_store *s, const char *what, qn_buf *out);

/*
 * Install the finished file at tmp (on the data dir's filesystem) as the
 * shard described by sh: its size is checked against sh->size, and its
 * CRC against sh->crc when check_crc is set (otherwise the caller
 * computed sh->crc from the bytes it wrote). Replaces an earlier copy.
 * Returns 0, or -1 with err; tmp is removed either way.
 */
int qn_store_install(qn_store *s, const char *tmp, const qn_shard *sh,
                     int check_crc, char *err, size_t errcap);

/* Mark every shard of a dataset sealed with nshards. Returns how many. */
size_t qn_store_seal(qn_store *s, const char *dataset, uint32_t nshards);

/* Delete every shard of a dataset. Returns how many. */
size_t qn_store_drop(qn_store *s, const char *dataset);

/* Delete shard index of a dataset. Returns 1 if it was held, else 0. */
int qn_store_drop_shard(qn_store *s, const char *dataset, uint32_t index);

/* Delete shard index of a dataset found damaged (why: how, logged), and
 * note it for qn_store_take_damaged as well as removed. Returns 1 if it
 * was held, else 0. */
int qn_store_drop_damaged(qn_store *s, const char *dataset, uint32_t index,
                          const char *why);

/* The shards dropped as damaged since the last call (the array is the
 * caller's to free). */
void qn_store_take_damaged(qn_store *s, qn_shard **damaged, size_t *n);

#define QN_STORE_UPLOADS_MAX 64 /* uploads open at once */

/*
 * Write len bytes at offset of the upload named token (a new upload when
 * offset is 0; refused while QN_STORE_UPLOADS_MAX are open). With last
 * set, the upload is complete: it must hold size bytes with CRC crc, and
 * is installed as shard index of dataset. Returns 0 or -1 with err (the
 * upload is then abandoned).
 */
int qn_store_upload(qn_store *s, const char *token, const char *dataset,
                    uint32_t index, uint64_t offset, const void *data,
                    size_t len, int last, uint64_t size, uint32_t crc,
                    int64_t now, char *err, size_t errcap);

/* Abandon uploads idle since before now - idle_ms. */
void qn_store_expire_uploads(qn_store *s, int64_t now, int64_t idle_ms);

/*
 * Changes since the last call: shards added (or changed, e.g. sealed) and
 * removed. The arrays are the caller's to free.
 */
void qn_store_take_changes(qn_store *s, qn_shard **added, size_t *nadded,
                           qn_shard **removed, size_t *nremoved);

#define QN_STORE_META_MAX 4096 /* a .meta file is shorter than this */

/*
 * Check the bytes of a shard's .meta file (a packed ShardInfo, fewer than
 * QN_STORE_META_MAX bytes): it must describe shard index of dataset. 0 and
 * sh filled from it (size and CRC as the description says: the caller
 * checks the file against them), or -1 with why. Any bytes are safe.
 */
int qn_store_meta_parse(const void *buf, size_t len, const char *dataset,
                        uint32_t index, qn_shard *sh, char *why, size_t cap);

/* CRC-32 and size of a file; 0 or a negative errno. */
int qn_file_crc(const char *path, uint64_t *size, uint32_t *crc);

#endif
