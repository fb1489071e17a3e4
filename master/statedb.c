/*
 * statedb.c -- see statedb.h.
 *
 * One table holds every record, keyed by (kind, key), with a sequence
 * number fixed when the record is first written (the order to load in and
 * to prune by); meta holds the epoch. The file says what it is in
 * SQLite's own header fields: application_id (Quern's) and user_version
 * (the format).
 */
#include "statedb.h"

#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

/* "QURN": SQLite's application_id for a Quern state file. */
#define APP_ID 0x5155524e

enum { ST_PUT, ST_DEL, ST_DEL_JOB, ST_EACH, ST_PRUNE_COUNT, ST_PRUNE, ST_N };

static const char *const SQL[ST_N] = {
    [ST_PUT] = "INSERT INTO records(kind, key, job, ended, seq, body) "
               "VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT(kind, key) DO "
               "UPDATE SET job = excluded.job, ended = excluded.ended, "
               "body = excluded.body",
    [ST_DEL] = "DELETE FROM records WHERE kind = ?1 AND key = ?2",
    [ST_DEL_JOB] = "DELETE FROM records WHERE kind = ?1 AND job = ?2",
    [ST_EACH] = "SELECT key, job, ended, body FROM records WHERE kind = ?1 "
                "ORDER BY seq",
    [ST_PRUNE_COUNT] = "SELECT count(*) FROM (SELECT key FROM records WHERE "
                       "kind = 0 AND ended ORDER BY seq DESC LIMIT -1 "
                       "OFFSET ?1)",
    [ST_PRUNE] = "WITH old AS (SELECT key FROM records WHERE kind = 0 AND "
                 "ended ORDER BY seq DESC LIMIT -1 OFFSET ?1) "
                 "DELETE FROM records WHERE job IN old",
};

static const char SCHEMA[] =
    "CREATE TABLE IF NOT EXISTS meta(name TEXT PRIMARY KEY, "
    "value INTEGER NOT NULL);"
    "CREATE TABLE IF NOT EXISTS records(kind INTEGER NOT NULL, "
    "key TEXT NOT NULL, job TEXT, ended INTEGER NOT NULL, "
    "seq INTEGER NOT NULL, body BLOB NOT NULL, PRIMARY KEY(kind, key));"
    "CREATE INDEX IF NOT EXISTS records_job ON records(job);";

struct qn_statedb {
    sqlite3 *db;
    sqlite3_stmt *st[ST_N];
    int lock_fd;
    int in_txn;       /* a transaction is open: changes pending */
    size_t pending;   /* changes since the last commit */
    int64_t next_seq; /* for the next new record */
    uint64_t epoch;
    char path[4096];
};

static int s_fail(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int s_fail(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return -1;
}

/* err from the database's last error. -1. */
static int s_dberr(qn_statedb *s, const char *what, char *err, size_t errlen)
{
    return s_fail(err, errlen, "%s: %s: %s", s->path, what,
                  sqlite3_errmsg(s->db));
}

/* Run sql (no rows wanted). 0 or -1 with err. */
static int s_exec(qn_statedb *s, const char *sql, char *err, size_t errlen)
{
    if (sqlite3_exec(s->db, sql, NULL, NULL, NULL) != SQLITE_OK)
        return s_dberr(s, sql, err, errlen);
    return 0;
}

/* The integer the query's first row holds, in *v. 0 or -1 with err. */
static int s_int(qn_statedb *s, const char *sql, int64_t *v, char *err,
                 size_t errlen)
{
    sqlite3_stmt *q = NULL;
    int rc = sqlite3_prepare_v2(s->db, sql, -1, &q, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(q);
    if (rc == SQLITE_ROW)
        *v = sqlite3_column_int64(q, 0);
    else if (rc == SQLITE_DONE)
        *v = 0;
    else {
        sqlite3_finalize(q);
        return s_dberr(s, sql, err, errlen);
    }
    sqlite3_finalize(q);
    return 0;
}

/*
 * Take the dir's lock and write our pid into master.pid. The lock is the
 * file's flock, which the kernel drops when the process dies, so a master
 * killed with -9 leaves nothing to clean up. 0 or -1 with err.
 */
static int s_lock(qn_statedb *s, const char *dir, char *err, size_t errlen)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/master.pid", dir);
    s->lock_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (s->lock_fd < 0)
        return s_fail(err, errlen, "%s: %s", path, strerror(errno));
    if (flock(s->lock_fd, LOCK_EX | LOCK_NB) < 0) {
        if (errno != EWOULDBLOCK)
            return s_fail(err, errlen, "%s: lock: %s", path, strerror(errno));
        char pid[32] = "";
        ssize_t n = pread(s->lock_fd, pid, sizeof pid - 1, 0);
        pid[n > 0 ? n : 0] = '\0';
        pid[strcspn(pid, "\n")] = '\0';
        return s_fail(err, errlen,
                      "state dir %s is in use by quern-master pid %s "
                      "(%s): one master per state dir",
                      dir, *pid ? pid : "unknown", path);
    }
    char line[32];
    int len = snprintf(line, sizeof line, "%ld\n", (long)getpid());
    if (ftruncate(s->lock_fd, 0) < 0 || pwrite(s->lock_fd, line, len, 0) != len)
        return s_fail(err, errlen, "%s: %s", path, strerror(errno));
    return 0;
}

/*
 * Refuse a file that is not Quern's state, is damaged, or is of a newer
 * format; set up a new one. 0 or -1 with err, the file unchanged.
 */
static int s_check(qn_statedb *s, char *err, size_t errlen)
{
    int64_t app, format, tables;
    if (s_int(s, "PRAGMA application_id", &app, err, errlen) < 0 ||
        s_int(s, "PRAGMA user_version", &format, err, errlen) < 0 ||
        s_int(s, "SELECT count(*) FROM sqlite_schema", &tables, err, errlen) <
            0)
        return s_fail(err, errlen,
                      "%s is not a Quern state file or is damaged (%s): "
                      "move it aside to start with no state",
                      s->path, sqlite3_errmsg(s->db));
    if (app != APP_ID && (app != 0 || tables != 0))
        return s_fail(err, errlen,
                      "%s is not a Quern state file (application id %#" PRIx64
                      "): use another --state-dir",
                      s->path, (uint64_t)app);
    if (format > QN_STATEDB_FORMAT)
        return s_fail(err, errlen,
                      "%s was written by a newer Quern (state format %" PRId64
                      ", this release reads up to %d): run that release, "
                      "or move the dir aside to start with no state",
                      s->path, format, QN_STATEDB_FORMAT);
    char text[64] = "";
    sqlite3_stmt *q = NULL;
    if (sqlite3_prepare_v2(s->db, "PRAGMA quick_check(1)", -1, &q, NULL) ==
            SQLITE_OK &&
        sqlite3_step(q) == SQLITE_ROW && sqlite3_column_text(q, 0))
        snprintf(text, sizeof text, "%s", sqlite3_column_text(q, 0));
    sqlite3_finalize(q);
    if (strcmp(text, "ok") != 0)
        return s_fail(err, errlen,
                      "%s is damaged (%s): move it aside to start with no "
                      "state, or restore it from a copy",
                      s->path, *text ? text : sqlite3_errmsg(s->db));
    if (app == 0) {
        char sql[128];
        snprintf(sql, sizeof sql, "PRAGMA application_id = %d", APP_ID);
        if (s_exec(s, sql, err, errlen) < 0)
            return -1;
        snprintf(sql, sizeof sql, "PRAGMA user_version = %d",
                 QN_STATEDB_FORMAT);
        if (s_exec(s, sql, err, errlen) < 0)
            return -1;
    }
    return 0;
}

/* Open the database, check it, and start a new epoch. 0 or -1 with err. */
static int s_open_db(qn_statedb *s, char *err, size_t errlen)
{
    if (sqlite3_open_v2(s->path, &s->db,
                        SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
                            SQLITE_OPEN_NOMUTEX,
                        NULL) != SQLITE_OK)
        return s_dberr(s, "open", err, errlen);
    if (s_check(s, err, errlen) < 0)
        return -1;
    /* WAL: a commit appends to the log; synchronous=FULL syncs it there. */
    int64_t dummy;
    if (s_int(s, "PRAGMA journal_mode = WAL", &dummy, err, errlen) < 0 ||
        s_exec(s, "PRAGMA synchronous = FULL", err, errlen) < 0 ||
        s_exec(s, SCHEMA, err, errlen) < 0)
        return -1;
    int64_t epoch, seq;
    if (s_int(s, "SELECT value FROM meta WHERE name = 'epoch'", &epoch, err,
              errlen) < 0 ||
        s_int(s, "SELECT max(seq) FROM records", &seq, err, errlen) < 0)
        return -1;
    s->epoch = (uint64_t)epoch + 1;
    s->next_seq = seq + 1;
    char sql[128];
    snprintf(sql, sizeof sql,
             "INSERT INTO meta VALUES ('epoch', %" PRIu64
             ") ON CONFLICT(name) DO UPDATE SET value = excluded.value",
             s->epoch);
    if (s_exec(s, sql, err, errlen) < 0)
        return -1;
    for (int i = 0; i < ST_N; i++)
        if (sqlite3_prepare_v3(s->db, SQL[i], -1, SQLITE_PREPARE_PERSISTENT,
                               &s->st[i], NULL) != SQLITE_OK)
            return s_dberr(s, SQL[i], err, errlen);
    return 0;
}

qn_statedb *qn_statedb_open(const char *dir, char *err, size_t errlen)
{
    qn_statedb *s = calloc(1, sizeof *s);
    if (!s) {
        s_fail(err, errlen, "out of memory");
        return NULL;
    }
    s->lock_fd = -1;
    if (snprintf(s->path, sizeof s->path, "%s/state.db", dir) >=
        (int)sizeof s->path) {
        s_fail(err, errlen, "state dir path too long: %s", dir);
        goto fail;
    }
    if (qn_mkdirs(dir, 0700) < 0) {
        s_fail(err, errlen, "state dir %s: %s", dir, strerror(errno));
        goto fail;
    }
    if (s_lock(s, dir, err, errlen) < 0 || s_open_db(s, err, errlen) < 0)
        goto fail;
    return s;
fail:
    qn_statedb_destroy(&s);
    return NULL;
}

void qn_statedb_destroy(qn_statedb **db_p)
{
    qn_statedb *s = *db_p;
    if (!s)
        return;
    if (s->in_txn)
        sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
    for (int i = 0; i < ST_N; i++)
        sqlite3_finalize(s->st[i]);
    sqlite3_close(s->db);
    if (s->lock_fd >= 0)
        close(s->lock_fd);
    free(s);
    *db_p = NULL;
}

uint64_t qn_statedb_epoch(const qn_statedb *db)
{
    return db->epoch;
}

const char *qn_statedb_path(const qn_statedb *db)
{
    return db->path;
}

size_t qn_statedb_pending(const qn_statedb *db)
{
    return db->pending;
}

/* Open the turn's transaction if it is not. 0 or -1 with err. */
static int s_begin(qn_statedb *s, char *err, size_t errlen)
{
    if (s->in_txn)
        return 0;
    if (s_exec(s, "BEGIN IMMEDIATE", err, errlen) < 0)
        return -1;
    s->in_txn = 1;
    return 0;
}

/* Step a statement to its end and reset it. 0 or -1 with err. */
static int s_run(qn_statedb *s, sqlite3_stmt *q, const char *what, char *err,
                 size_t errlen)
{
    int rc = sqlite3_step(q);
    sqlite3_reset(q);
    sqlite3_clear_bindings(q);
    if (rc != SQLITE_DONE)
        return s_dberr(s, what, err, errlen);
    return 0;
}

int qn_statedb_put(qn_statedb *db, qn_rec_kind kind, const char *key,
                   const char *job, int ended, const void *blob, size_t len,
                   char *err, size_t errlen)
{
    if (kind == QN_REC_JOB)
        job = key; /* a job's record belongs to it, for pruning */
    if (s_begin(db, err, errlen) < 0)
        return -1;
    sqlite3_stmt *q = db->st[ST_PUT];
    sqlite3_bind_int(q, 1, (int)kind);
    sqlite3_bind_text(q, 2, key, -1, SQLITE_STATIC);
    if (job)
        sqlite3_bind_text(q, 3, job, -1, SQLITE_STATIC);
    sqlite3_bind_int(q, 4, ended != 0);
    sqlite3_bind_int64(q, 5, db->next_seq);
    sqlite3_bind_blob64(q, 6, len ? blob : "", len, SQLITE_STATIC);
    if (s_run(db, q, "write a record", err, errlen) < 0)
        return -1;
    db->next_seq++;
    db->pending++;
    return 0;
}

int qn_statedb_del(qn_statedb *db, qn_rec_kind kind, const char *key, char *err,
                   size_t errlen)
{
    if (s_begin(db, err, errlen) < 0)
        return -1;
    sqlite3_stmt *q = db->st[ST_DEL];
    sqlite3_bind_int(q, 1, (int)kind);
    sqlite3_bind_text(q, 2, key, -1, SQLITE_STATIC);
    if (s_run(db, q, "delete a record", err, errlen) < 0)
        return -1;
    db->pending++;
    return 0;
}

int qn_statedb_del_job(qn_statedb *db, qn_rec_kind kind, const char *job,
                       char *err, size_t errlen)
{
    if (s_begin(db, err, errlen) < 0)
        return -1;
    sqlite3_stmt *q = db->st[ST_DEL_JOB];
    sqlite3_bind_int(q, 1, (int)kind);
    sqlite3_bind_text(q, 2, job, -1, SQLITE_STATIC);
    if (s_run(db, q, "delete a job's records", err, errlen) < 0)
        return -1;
    db->pending++;
    return 0;
}

int qn_statedb_commit(qn_statedb *db, char *err, size_t errlen)
{
    if (!db->in_txn)
        return 0;
    if (s_exec(db, "COMMIT", err, errlen) < 0) {
        sqlite3_exec(db->db, "ROLLBACK", NULL, NULL, NULL);
        db->in_txn = 0;
        db->pending = 0;
        return -1;
    }
    db->in_txn = 0;
    db->pending = 0;
    return 0;
}

long qn_statedb_prune(qn_statedb *db, size_t keep, char *err, size_t errlen)
{
    sqlite3_stmt *q = db->st[ST_PRUNE_COUNT];
    sqlite3_bind_int64(q, 1, (sqlite3_int64)keep);
    int rc = sqlite3_step(q);
    long n = rc == SQLITE_ROW ? (long)sqlite3_column_int64(q, 0) : -1;
    sqlite3_reset(q);
    if (n < 0)
        return s_dberr(db, "count old jobs", err, errlen);
    if (n == 0)
        return 0;
    if (s_begin(db, err, errlen) < 0)
        return -1;
    q = db->st[ST_PRUNE];
    sqlite3_bind_int64(q, 1, (sqlite3_int64)keep);
    if (s_run(db, q, "drop old jobs", err, errlen) < 0)
        return -1;
    db->pending++;
    return n;
}

int qn_statedb_each(qn_statedb *db, qn_rec_kind kind, qn_statedb_fn fn,
                    void *arg, char *err, size_t errlen)
{
    sqlite3_stmt *q = db->st[ST_EACH];
    sqlite3_bind_int(q, 1, (int)kind);
    int rc, r = 0;
    while (r == 0 && (rc = sqlite3_step(q)) == SQLITE_ROW)
        r = fn(arg, (const char *)sqlite3_column_text(q, 0),
               (const char *)sqlite3_column_text(q, 1),
               sqlite3_column_int(q, 2), sqlite3_column_blob(q, 3),
               (size_t)sqlite3_column_bytes(q, 3));
    sqlite3_reset(q);
    if (r != 0)
        return r;
    if (rc != SQLITE_DONE)
        return s_dberr(db, "read records", err, errlen);
    return 0;
}
