/*
 * statedb.h -- the master's durable state on disk: one SQLite database in
 * WAL mode, `state.db` in the state dir, holding records as protobuf blobs
 * the caller packs. The store knows nothing of what a record means; it
 * keeps them by kind and key, with the job each belongs to (so a job's
 * records go together when history is pruned), in the order written.
 *
 * Changes are grouped: every put and delete since the last commit goes to
 * disk in one transaction at qn_statedb_commit, synced (WAL with
 * synchronous=FULL), which the master calls once per loop turn -- and
 * before it acts on a change whose loss would lose work. A change not yet
 * committed is lost with the process, as if it had not been made.
 *
 * One master per state dir: opening takes an exclusive lock on
 * `master.pid` there and writes our pid into it; a second open fails,
 * naming the first one's pid. A file that is not Quern's state, is
 * damaged, or was written by a newer format is refused with a message
 * naming the file; nothing is changed in it. Each open starts a new epoch
 * (1, 2, ...), stored, so messages from an older run can be told apart.
 */
#ifndef QN_STATEDB_H
#define QN_STATEDB_H

#include <stddef.h>
#include <stdint.h>

/* The on-disk format this code writes and the newest it reads. */
#define QN_STATEDB_FORMAT 1

typedef struct qn_statedb qn_statedb;

/* What a record is; a key is unique within its kind. */
typedef enum {
    QN_REC_JOB,     /* key: job id; the job's spec, then its end */
    QN_REC_TASK,    /* key: job/kind/task; where a finished task's output is */
    QN_REC_DATASET, /* key: dataset name */
    QN_REC_WORKER,  /* key: worker id */
    QN_REC_PLUGIN,  /* key: its hash; a running job's plugin or file */
    QN_REC_KINDS
} qn_rec_kind;

/*
 * Open the state in dir (created if missing), lock it and start a new
 * epoch. Caller owns the result (qn_statedb_destroy). NULL with err set
 * on failure: the dir in use by another master (its pid named), a file
 * that is not Quern's, damaged, or of a newer format.
 */
qn_statedb *qn_statedb_open(const char *dir, char *err, size_t errlen);

/* Roll back what is not committed, close and unlock; accepts NULL. */
void qn_statedb_destroy(qn_statedb **db_p);

/* This run's epoch: one more than the last run's. */
uint64_t qn_statedb_epoch(const qn_statedb *db);

/* The database file's path (for messages). */
const char *qn_statedb_path(const qn_statedb *db);

/*
 * Set the record (kind, key) to blob, belonging to job (NULL: none).
 * ended marks a job record as finished history, which pruning may drop.
 * 0, or -1 with err set.
 */
int qn_statedb_put(qn_statedb *db, qn_rec_kind kind, const char *key,
                   const char *job, int ended, const void *blob, size_t len,
                   char *err, size_t errlen);

/* Delete the record (kind, key), if there is one. 0 or -1 with err. */
int qn_statedb_del(qn_statedb *db, qn_rec_kind kind, const char *key, char *err,
                   size_t errlen);

/* Delete every record of kind that belongs to job. 0 or -1 with err. */
int qn_statedb_del_job(qn_statedb *db, qn_rec_kind kind, const char *job,
                       char *err, size_t errlen);

/* Changes made since the last commit. */
size_t qn_statedb_pending(const qn_statedb *db);

/*
 * Write every change since the last commit in one transaction and sync
 * it. 0 (also when nothing is pending), or -1 with err set: then nothing
 * of those changes is on disk.
 */
int qn_statedb_commit(qn_statedb *db, char *err, size_t errlen);

/*
 * Drop the oldest ended jobs beyond keep, with every record that belongs
 * to them; running jobs are never dropped. Part of the next commit.
 * Returns how many jobs were dropped, or -1 with err set.
 */
long qn_statedb_prune(qn_statedb *db, size_t keep, char *err, size_t errlen);

/* Called for each record of a kind, oldest first; nonzero stops. */
typedef int (*qn_statedb_fn)(void *arg, const char *key, const char *job,
                             int ended, const void *blob, size_t len);

/*
 * Call fn for every record of kind, in the order first written (changes
 * not yet committed included).
 * Returns fn's nonzero value if it stopped, 0 when done, -1 with err set.
 */
int qn_statedb_each(qn_statedb *db, qn_rec_kind kind, qn_statedb_fn fn,
                    void *arg, char *err, size_t errlen);

#endif
