/*
 * logs.h -- quern logs: a client asks the master for an attempt's stderr,
 * the master asks the worker that ran it, and passes its answer back (or
 * says why there is none: the worker is gone, or did not answer within
 * QN_LOGS_WAIT_MS).
 */
#ifndef QN_MLOGS_H
#define QN_MLOGS_H

#include "mstate.h"

#define QN_LOGS_MAX 1048576 /* bytes of an attempt's stderr sent at most */
#define QN_LOGS_WAIT_MS                                                        \
    4000                     /* a worker must answer by then (before the       \
                                client gives up: 5 s) */
#define QN_LOGS_MAX_WAITS 64 /* logs requests in flight */

/* A client's request, the message being handled at now: forwarded to the
 * worker, or answered with why not. */
void qn_logs_request(qn_master *m, const Quern__LogsRequest *rq, int64_t now);

/* A worker's answer, the message being handled: passed to the client that
 * asked (or dropped when another peer sends it). */
void qn_logs_reply(qn_master *m, const Quern__LogsReply *r);

/* Worker w is gone: answer the requests waiting for it. */
void qn_logs_worker_gone(qn_master *m, int w);

/* Answer the requests whose worker did not answer by now. */
void qn_logs_check(qn_master *m, int64_t now);

#endif
