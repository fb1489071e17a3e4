/*
 * journal.h -- the seam where the master's durable state changes, and
 * the writer that keeps those changes in the state dir (--state-dir).
 *
 * Every change that a master restarted on the same state would need to
 * know of goes through qn_journal_note, at the place it is made: a job
 * submitted (its spec, inputs and plugin), a task's attempt started or
 * done (where its output is), a job ended (its output committed), a
 * dataset created, changed or removed, a worker known. The caller packs
 * the record (durable.h does, from the master's state); the journal
 * keeps it as one row of state.db (statedb.h).
 *
 * Changes are grouped: a note is written into the open transaction, and
 * qn_journal_turn commits them, synced, once per turn of the master's
 * loop (group commit). A change whose loss would lose work or give a
 * wrong answer must be on disk before the master acts on it: where one is
 * made, qn_journal_hold says so (and why), and every message the master
 * sends from then on in that turn waits for the turn's commit (send.h).
 * Without a state dir nothing is kept: a note is numbered, counted by
 * kind and logged at debug level.
 */
#ifndef QN_JOURNAL_H
#define QN_JOURNAL_H

#include <stddef.h>
#include <stdint.h>

typedef enum {
    QN_CHANGE_JOB_SUBMITTED,   /* job: its spec and inputs */
    QN_CHANGE_TASK_STARTED,    /* job, task: attempts started */
    QN_CHANGE_TASK_DONE,       /* job, task, attempt, worker: its output */
    QN_CHANGE_JOB_ENDED,       /* job: failed, cancelled, or succeeded
                                  with its output in place */
    QN_CHANGE_DATASET_CREATED, /* dataset */
    QN_CHANGE_DATASET_CHANGED, /* dataset: sealed */
    QN_CHANGE_DATASET_REMOVED, /* dataset */
    QN_CHANGE_WORKER_KNOWN,    /* worker: it joined */
    QN_CHANGE_PLUGIN_KEPT,     /* key: a running job's plugin or file (job) */
    QN_CHANGE_KINDS
} qn_change_kind;

/* One change; the fields its kind does not name are NULL or 0. */
typedef struct qn_change {
    qn_change_kind kind;
    const char *job;
    const char *dataset;
    const char *worker;
    const char *key; /* PLUGIN_KEPT: the blob's hash */
    int task_kind;   /* a qn_kind */
    unsigned task, attempt;
    const void *body; /* the record, packed (durable.h) */
    size_t len;
} qn_change;

struct qn_statedb;

typedef struct qn_journal {
    struct qn_statedb *db;           /* NULL: nothing is kept */
    size_t keep_jobs;                /* finished jobs kept (--keep-jobs) */
    unsigned ended;                  /* jobs ended since the last prune */
    uint64_t seq;                    /* changes noted */
    uint64_t count[QN_CHANGE_KINDS]; /* by kind */
    uint64_t commits, failures;      /* transactions written, and not */
    int holding;                     /* messages wait for this turn's commit */
} qn_journal;

/*
 * Keep changes in dir (made if missing): opens its state.db, locked to
 * this process, in a new epoch. 0, or -1 with err naming the file and
 * what to do (in use by another master, damaged, newer).
 */
int qn_journal_open(qn_journal *jl, const char *dir, size_t keep_jobs,
                    char *err, size_t errlen);

/* Commit what is pending and close; accepts a journal never opened. */
void qn_journal_close(qn_journal *jl);

/* This master run's epoch (1, 2, ...), or 0 without a state dir. */
uint64_t qn_journal_epoch(const qn_journal *jl);

/* Note a change of durable state. 0, or -1 when it could not be
 * written (logged, naming the state file). */
int qn_journal_note(qn_journal *jl, const qn_change *c);

/*
 * What was noted must be on disk before the master acts on it (before:
 * what it is about to do, for the debug log): messages sent from now on
 * in this turn wait for its commit. Nothing without a state dir.
 */
void qn_journal_hold(qn_journal *jl, const char *before);

/*
 * The end of a loop turn: commit what is pending, synced, pruning the
 * oldest finished jobs beyond keep_jobs; messages held may go. 0, or -1
 * when the state could not be written (logged, naming the file): the
 * held messages must not go.
 */
int qn_journal_turn(qn_journal *jl);

/* The name of a change's kind ("task_done"). */
const char *qn_journal_kind_name(qn_change_kind k);

#endif
