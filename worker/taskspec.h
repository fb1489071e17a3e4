/*
 * taskspec.h -- the spec a task process is given: the master's assignment
 * with what only this worker knows filled in: its work dir, the plugin's
 * place in its cache, its local copies of input shards, where output goes
 * (a dataset's staging folder, or the file a copy writes) and its key
 * files.
 *
 * The assignment is never changed: the task gets a copy of its own, which
 * owns every string it fills in and its own input pieces, and borrows the
 * rest from the assignment (which must outlive it).
 */
#ifndef QN_TASKSPEC_H
#define QN_TASKSPEC_H

#include "store.h"
#include "util.h"
#include "wire.h"

/* What this worker adds to the specs of the tasks it runs. */
typedef struct qn_taskspec_local {
    const char *work_dir;     /* its work dir (absolute) */
    qn_store *store;          /* its dataset shards; NULL: it keeps none */
    const char *curve_secret; /* its key file, or NULL */
    const char *curve_master; /* the master's public key file, or NULL */
} qn_taskspec_local;

/* A task's own spec. */
typedef struct qn_taskspec {
    Quern__TaskSpec spec;       /* what the task is given */
    Quern__InputPiece *pieces;  /* its input pieces, copied, */
    Quern__InputPiece **inputs; /* and the array spec.inputs points at */
    qn_buf *paths;              /* local shard copies' paths, by piece */
    qn_buf plugin;              /* the plugin's place in the cache */
    qn_buf output;              /* where output goes, when it is ours */
    int copy;                   /* a COPY: output is the file to install, */
    qn_shard copy_shard;        /* as this shard */
} qn_taskspec;

/*
 * Fill ts with the spec for the task the master assigned, filled in from
 * local. Returns 0, or -1 with why (static) when this worker cannot run it
 * (a copy, or a reduce writing a dataset, on a worker that keeps no
 * datasets). Release ts with qn_taskspec_release either way.
 */
int qn_taskspec_build(qn_taskspec *ts, const Quern__TaskSpec *assigned,
                      const qn_taskspec_local *local, const char **why);

/* Free what ts owns (not what it borrows from the assignment). */
void qn_taskspec_release(qn_taskspec *ts);

#endif
