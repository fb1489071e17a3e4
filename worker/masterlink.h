/*
 * masterlink.h -- the worker's session with the master: the DEALER
 * socket, joining (hello until welcomed, with backoff), heartbeats that
 * list the attempts running here, reports of the data dir's changes and
 * of attempts' progress and ends, and noticing a master gone silent.
 *
 * Messages from the master are read and dispatched by worker.c; this
 * module keeps the session's state (w->link) and sends.
 */
#ifndef QN_MASTERLINK_H
#define QN_MASTERLINK_H

#include "wstate.h"

#include <stddef.h>
#include <stdint.h>

/* Make the socket to the master (CURVE when configured) and connect it.
 * 0, or -1 with a message in err. */
int qn_masterlink_open(qn_worker *w, char *err, size_t errcap);

/* Close the socket and free the link's buffers. */
void qn_masterlink_close(qn_worker *w);

/* Send env to the master without blocking; a failure is logged. */
void qn_masterlink_send(qn_worker *w, Quern__Envelope *env);

/*
 * Send u (not changed: it may be the task's own message) as the TaskUpdate
 * of attempt r, from this worker and session.
 */
void qn_masterlink_update(qn_worker *w, const qn_attempt_ref *r,
                          const Quern__TaskUpdate *u);

/* Say hello (with every shard held), and when to say it again if no
 * welcome comes (doubling the wait up to a cap). */
void qn_masterlink_hello(qn_worker *w, int64_t now);

/* Send a heartbeat listing the attempts running and waiting here. */
void qn_masterlink_heartbeat(qn_worker *w, int64_t now);

/* Tell the master what changed in the data dir since the last report
 * (once welcomed; the changes wait until then). */
void qn_masterlink_data_report(qn_worker *w);

/*
 * The master speaks another protocol version (env: what it sent, may be
 * NULL; theirs: its version). Log it at once, then once a minute.
 */
void qn_masterlink_refused(qn_worker *w, const Quern__Envelope *env,
                           uint32_t theirs, int64_t now);

/* The master said something at now: it is there. */
void qn_masterlink_heard(qn_worker *w, int64_t now);

/* The master welcomed us (ww): keep the session and its heartbeat
 * period, and send the first heartbeat. */
void qn_masterlink_joined(qn_worker *w, const Quern__WorkerWelcome *ww,
                          int64_t now);

/* Attempt r succeeded with u, just sent: keep it until its job ends, to
 * tell a restarted master again. */
void qn_masterlink_told(qn_worker *w, const qn_attempt_ref *r,
                        const Quern__TaskUpdate *u);

/* Forget the successes kept of job_id (NULL: of every job). */
void qn_masterlink_forget(qn_worker *w, const char *job_id);

/* Forget the success kept of one attempt. */
void qn_masterlink_forget_one(qn_worker *w, const qn_attempt_ref *r);

/* Forget the successes kept of reduces, keeping those of maps (whose
 * outputs are offered in the next hello). */
void qn_masterlink_forget_reduces(qn_worker *w);

/* We were told to stop (SIGTERM): ask the master to drain us first (it
 * answers WorkerDrained). 1 if asked, 0 if it cannot be (no master, or one
 * before protocol minor 4). */
int qn_masterlink_drain_me(qn_worker *w);

/* We stop on purpose: tell the master, so what runs here runs elsewhere at
 * once, and wait (a little) for the word to leave. */
void qn_masterlink_leaving(qn_worker *w);

/* A master we were welcomed by says it runs another epoch: it restarted.
 * Say hello again (with our session and every shard held); its welcome
 * then has us tell our attempts and successes again. */
void qn_masterlink_restarted(qn_worker *w, const Quern__WorkerWelcome *ww,
                             int64_t now);

/* Has the master been away longer than --master-grace-ms? Then what we
 * kept for it is given up (the caller drops it); returns 1 once. */
int qn_masterlink_grace_over(qn_worker *w, int64_t now);

/* The master does not know us: drop the session and say hello again. */
void qn_masterlink_rejoin(qn_worker *w, int64_t now);

/* A welcomed master silent for several heartbeats is gone: connect again
 * on a fresh socket and say hello. */
void qn_masterlink_check(qn_worker *w, int64_t now);

#endif
