/*
 * test_statedb.c -- the master's state store: records kept across a
 * reopen in the order first written, changes lost unless committed (also
 * when the process dies), epochs counted, one master per dir, files that
 * are not Quern's state, damaged or newer refused unchanged, old history
 * pruned.
 */
#include "helpers.h"

#include "../master/statedb.h"
#include "util.h"

#include <sqlite3.h>
#include <sys/wait.h>

static char *dir;
static qn_statedb *db;
static char err[1024];

static void setup(void)
{
    dir = qn_test_tmpdir();
    err[0] = '\0';
}

static void teardown(void)
{
    qn_statedb_destroy(&db);
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    cr_assert_eq(system(cmd), 0);
    free(dir);
    qn_test_leak_check();
}

TestSuite(statedb, .init = setup, .fini = teardown);

static qn_statedb *s_open(void)
{
    qn_statedb *s = qn_statedb_open(dir, err, sizeof err);
    cr_assert_not_null(s, "%s", err);
    return s;
}

static void s_put(qn_rec_kind k, const char *key, const char *job, int ended,
                  const char *body)
{
    cr_assert_eq(qn_statedb_put(db, k, key, job, ended, body, strlen(body), err,
                                sizeof err),
                 0, "%s", err);
}

static void s_commit(void)
{
    cr_assert_eq(qn_statedb_commit(db, err, sizeof err), 0, "%s", err);
}

/* The records of a kind as "key=body" joined by spaces. */
typedef struct {
    char text[4096];
} listing;

static int s_add(void *arg, const char *key, const char *job, int ended,
                 const void *blob, size_t len)
{
    listing *l = arg;
    size_t n = strlen(l->text);
    snprintf(l->text + n, sizeof l->text - n, "%s%s=%.*s%s%s", n ? " " : "",
             key, (int)len, (const char *)blob, ended ? "!" : "",
             job ? "" : "~");
    return 0;
}

static const char *s_list(qn_rec_kind k)
{
    static listing l;
    l.text[0] = '\0';
    cr_assert_eq(qn_statedb_each(db, k, s_add, &l, err, sizeof err), 0, "%s",
                 err);
    return l.text;
}

Test(statedb, keeps_committed_records_in_the_order_first_written)
{
    db = s_open();
    cr_assert_eq(qn_statedb_epoch(db), 1);
    s_put(QN_REC_JOB, "j1", NULL, 0, "spec1");
    s_put(QN_REC_TASK, "j1/map/0", "j1", 0, "out0");
    s_put(QN_REC_JOB, "j2", NULL, 0, "spec2");
    s_put(QN_REC_WORKER, "w1", NULL, 0, "hello");
    cr_assert_eq(qn_statedb_pending(db), 4);
    s_commit();
    cr_assert_eq(qn_statedb_pending(db), 0);
    /* An update keeps the record's place; a delete removes it. */
    s_put(QN_REC_JOB, "j1", NULL, 1, "ended1");
    cr_assert_eq(qn_statedb_del(db, QN_REC_WORKER, "w1", err, sizeof err), 0);
    s_commit();
    qn_statedb_destroy(&db);

    db = s_open();
    cr_assert_eq(qn_statedb_epoch(db), 2, "a new epoch at each open");
    cr_assert_str_eq(s_list(QN_REC_JOB), "j1=ended1! j2=spec2");
    cr_assert_str_eq(s_list(QN_REC_TASK), "j1/map/0=out0");
    cr_assert_str_eq(s_list(QN_REC_WORKER), "");
    s_put(QN_REC_DATASET, "d", NULL, 0, "");
    cr_assert_str_eq(s_list(QN_REC_DATASET), "d=~", "an empty blob is kept");
}

Test(statedb, loses_what_was_not_committed_also_when_the_process_dies)
{
    db = s_open();
    s_put(QN_REC_JOB, "kept", NULL, 0, "a");
    s_commit();
    s_put(QN_REC_JOB, "rolled-back", NULL, 0, "b");
    qn_statedb_destroy(&db);
    db = s_open();
    cr_assert_str_eq(s_list(QN_REC_JOB), "kept=a");
    qn_statedb_destroy(&db);

    /* A master killed mid-turn: its last commit is there, its turn is not. */
    fflush(NULL);
    pid_t pid = fork();
    cr_assert_neq(pid, -1);
    if (pid == 0) {
        db = s_open();
        s_put(QN_REC_JOB, "child", NULL, 0, "c");
        s_commit();
        s_put(QN_REC_JOB, "half", NULL, 0, "d");
        _exit(0);
    }
    int st;
    cr_assert_eq(waitpid(pid, &st, 0), pid);
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    db = s_open();
    cr_assert_str_eq(s_list(QN_REC_JOB), "kept=a child=c");
    cr_assert_eq(qn_statedb_epoch(db), 4);
}

Test(statedb, refuses_a_second_master_naming_the_first_ones_pid)
{
    db = s_open();
    char want[64];
    snprintf(want, sizeof want, "in use by quern-master pid %ld",
             (long)getpid());
    cr_assert_null(qn_statedb_open(dir, err, sizeof err));
    cr_assert(strstr(err, want), "%s", err);
    cr_assert(strstr(err, dir), "%s", err);
    qn_statedb_destroy(&db);
    db = s_open(); /* free again once the first has gone */
}

/* The bytes of dir/state.db, in a buffer the caller frees. */
static char *s_file(size_t *len)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/state.db", dir);
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f);
    char *buf = malloc(1 << 20);
    *len = fread(buf, 1, 1 << 20, f);
    fclose(f);
    return buf;
}

static void s_write_file(const char *data, size_t len)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/state.db", dir);
    cr_assert_eq(qn_write_file_atomic(path, data, len), 0);
}

/* Open fails with a message holding want and the file's path; the file's
 * bytes are as they were. */
static void s_refused(const char *want)
{
    size_t n0, n1;
    char *before = s_file(&n0);
    cr_assert_null(qn_statedb_open(dir, err, sizeof err));
    cr_assert(strstr(err, want), "%s", err);
    cr_assert(strstr(err, "state.db"), "%s", err);
    char *after = s_file(&n1);
    cr_assert(n0 == n1 && memcmp(before, after, n0) == 0, "the file changed");
    free(before);
    free(after);
}

Test(statedb, refuses_a_file_that_is_not_a_database)
{
    const char text[] = "these are not the pages you are looking for\n";
    char big[8192];
    for (size_t i = 0; i < sizeof big; i++)
        big[i] = text[i % (sizeof text - 1)];
    s_write_file(big, sizeof big);
    s_refused("is not a Quern state file or is damaged");
}

Test(statedb, refuses_another_programs_database)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/state.db", dir);
    sqlite3 *o;
    cr_assert_eq(sqlite3_open(path, &o), SQLITE_OK);
    cr_assert_eq(sqlite3_exec(o, "CREATE TABLE t(x); INSERT INTO t VALUES (1);",
                              NULL, NULL, NULL),
                 SQLITE_OK);
    sqlite3_close(o);
    s_refused("is not a Quern state file (application id 0)");
}

Test(statedb, refuses_a_newer_format_naming_both)
{
    db = s_open();
    s_put(QN_REC_JOB, "j", NULL, 0, "x");
    s_commit();
    qn_statedb_destroy(&db);
    char path[4200];
    snprintf(path, sizeof path, "%s/state.db", dir);
    sqlite3 *o;
    cr_assert_eq(sqlite3_open(path, &o), SQLITE_OK);
    cr_assert_eq(sqlite3_exec(o, "PRAGMA user_version = 9", NULL, NULL, NULL),
                 SQLITE_OK);
    sqlite3_close(o);
    char want[128];
    snprintf(want, sizeof want,
             "newer Quern (state format 9, this release reads up to %d)",
             QN_STATEDB_FORMAT);
    s_refused(want);
}

Test(statedb, refuses_a_damaged_file)
{
    db = s_open();
    char body[600];
    memset(body, 'r', sizeof body - 1);
    body[sizeof body - 1] = '\0';
    for (int i = 0; i < 200; i++) {
        char key[32];
        snprintf(key, sizeof key, "job-%d", i);
        s_put(QN_REC_JOB, key, NULL, 1, body);
    }
    s_commit();
    qn_statedb_destroy(&db); /* the last close checkpoints into state.db */
    size_t n;
    char *data = s_file(&n);
    cr_assert_gt(n, 16384);
    /* Scribble over the b-tree of the third page on, past the header. */
    memset(data + 2 * 4096, 0xa5, 4096);
    s_write_file(data, n);
    free(data);
    s_refused("is damaged");
}

Test(statedb, prunes_the_oldest_ended_jobs_with_their_records)
{
    db = s_open();
    const char *jobs[] = {"a", "b", "c", "d", "e"};
    int ended[] = {1, 0, 1, 1, 1};
    for (int i = 0; i < 5; i++) {
        s_put(QN_REC_JOB, jobs[i], NULL, 0, "spec");
        char key[16];
        snprintf(key, sizeof key, "%s/map/0", jobs[i]);
        s_put(QN_REC_TASK, key, jobs[i], 0, "out");
    }
    for (int i = 0; i < 5; i++)
        if (ended[i])
            s_put(QN_REC_JOB, jobs[i], NULL, 1, "end");
    s_put(QN_REC_WORKER, "w", NULL, 0, "h");
    s_commit();
    /* Keep the two newest ended (d, e); b runs, so it stays. */
    cr_assert_eq(qn_statedb_prune(db, 2, err, sizeof err), 2, "%s", err);
    s_commit();
    cr_assert_str_eq(s_list(QN_REC_JOB), "b=spec d=end! e=end!");
    cr_assert_str_eq(s_list(QN_REC_TASK),
                     "b/map/0=out d/map/0=out e/map/0=out");
    cr_assert_str_eq(s_list(QN_REC_WORKER), "w=h~");
    cr_assert_eq(qn_statedb_prune(db, 2, err, sizeof err), 0);
    cr_assert_eq(qn_statedb_pending(db), 0, "nothing to prune, nothing done");
}

Test(statedb, deletes_one_kind_of_a_jobs_records)
{
    db = s_open();
    s_put(QN_REC_JOB, "a", NULL, 0, "spec");
    s_put(QN_REC_TASK, "a/m/0", "a", 0, "out");
    s_put(QN_REC_TASK, "a/m/1", "a", 0, "out");
    s_put(QN_REC_TASK, "b/m/0", "b", 0, "out");
    s_put(QN_REC_PLUGIN, "h", "a", 0, "so");
    s_commit();
    cr_assert_eq(qn_statedb_del_job(db, QN_REC_TASK, "a", err, sizeof err), 0,
                 "%s", err);
    s_commit();
    cr_assert_str_eq(s_list(QN_REC_TASK), "b/m/0=out");
    cr_assert_str_eq(s_list(QN_REC_PLUGIN), "h=so", "another kind went too");
    cr_assert_str_eq(s_list(QN_REC_JOB), "a=spec");
}
