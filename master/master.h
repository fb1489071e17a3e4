/*
 * master.h -- the master daemon: accepts workers and jobs, turns their
 * messages into scheduler events (sched.h) and the scheduler's actions
 * into messages, and commits each job's output.
 */
#ifndef QN_MASTER_H
#define QN_MASTER_H

#include <stddef.h>
#include <stdint.h>

#include "mconfig.h"

typedef struct qn_master qn_master;

/* Bind and set up. NULL with a message in err on failure. */
qn_master *qn_master_new(const qn_master_config *cfg, char *err, size_t errcap);

/* Serve until SIGTERM or SIGINT. Returns 0, or 1 on a fatal error. */
int qn_master_run(qn_master *m);

/*
 * Take one message (a packed envelope) as if it had come from peer (its
 * address, for logs and limits) on the connection with routing id id, at
 * time now on the monotonic clock, then do what falls due by then; replies
 * go to id. The fuzz target's way in: qn_master_run does the same for
 * each message its socket receives.
 */
void qn_master_feed(qn_master *m, const char *peer, const void *id,
                    size_t idlen, const void *msg, size_t len, int64_t now);

/* The clock alone moved to now: do what falls due, and end the turn (the
 * state written, held messages sent), as qn_master_run does. */
void qn_master_tick(qn_master *m, int64_t now);

/* Free everything; accepts NULL, clears the pointer. */
void qn_master_destroy(qn_master **self_p);

#endif
