/*
 * identity.h -- who a worker is across restarts. A worker given a work
 * dir keeps its id there (WORK/worker.id, a WorkerIdentity) and takes it
 * again when started on the same dir, with the next incarnation number,
 * so the master tells a restart from a stranger and the new process from
 * the dead one. A lock (WORK/worker.lock, holding the pid) keeps a second
 * worker off a work dir in use.
 */
#ifndef QN_IDENTITY_H
#define QN_IDENTITY_H

#include <stddef.h>
#include <stdint.h>

typedef struct qn_identity {
    char id[72];
    uint64_t incarnation; /* 1 for a worker new to its work dir */
    int lock_fd;          /* holds the work dir's lock (-1: none) */
} qn_identity;

/*
 * Take work_dir for this process: lock it (failing, with the holder's pid
 * in err, if another worker has it), then reuse the id kept there with
 * the next incarnation, or make a new id (w-HOST-PID-RANDOM) when none is
 * kept, and keep the result. 0, or -1 with err said.
 */
int qn_identity_take(const char *work_dir, const char *host, qn_identity *out,
                     char *err, size_t errcap);

/* A new id not kept anywhere (a worker with a private work dir). */
void qn_identity_fresh(const char *host, qn_identity *out);

/* Let the work dir go; accepts one never taken. */
void qn_identity_release(qn_identity *id);

#endif
