/*
 * journal.h -- the seam where the master's durable state changes.
 *
 * Every change that a master restarted on the same state would need to
 * know of goes through qn_journal_note, at the place it is made: a job
 * submitted, a task done (where its output is), a job ended, its output
 * committed, a dataset created, changed or removed, a worker known. Each
 * kind of input changes state in one place -- worker messages in
 * from_workers.c (and task_updates.c for their attempts), client requests
 * in from_clients.c, the scheduler's actions in actions.c, the clock in
 * timers.c, with commit.c and datasets.c doing the work they share -- so
 * these calls are where a journal record will be written, and synced
 * before the master acts on a change whose loss would lose work.
 *
 * Today nothing is kept on disk: a note is numbered, counted by kind and
 * logged at debug level.
 */
#ifndef QN_JOURNAL_H
#define QN_JOURNAL_H

#include <stdint.h>

typedef enum {
    QN_CHANGE_JOB_SUBMITTED,    /* job: its spec and plugin */
    QN_CHANGE_TASK_DONE,        /* job, task, attempt, worker: its output */
    QN_CHANGE_JOB_ENDED,        /* job: succeeded, failed or cancelled */
    QN_CHANGE_OUTPUT_COMMITTED, /* job: its output is in place */
    QN_CHANGE_DATASET_CREATED,  /* dataset */
    QN_CHANGE_DATASET_CHANGED,  /* dataset: a shard's copies, or sealed */
    QN_CHANGE_DATASET_REMOVED,  /* dataset */
    QN_CHANGE_WORKER_KNOWN,     /* worker: it joined */
    QN_CHANGE_KINDS
} qn_change_kind;

/* One change; the fields its kind does not name are NULL or 0. */
typedef struct qn_change {
    qn_change_kind kind;
    const char *job;
    const char *dataset;
    const char *worker;
    int task_kind; /* a qn_kind */
    unsigned task, attempt;
} qn_change;

typedef struct qn_journal {
    uint64_t seq;                    /* changes noted */
    uint64_t count[QN_CHANGE_KINDS]; /* by kind */
} qn_journal;

/* Note a change of durable state. */
void qn_journal_note(qn_journal *jl, const qn_change *c);

/* The name of a change's kind ("task_done"). */
const char *qn_journal_kind_name(qn_change_kind k);

#endif
