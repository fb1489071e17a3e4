/*
 * logs.h -- quern logs: an attempt's stderr, fetched from its worker for a
 * client
 */
#ifndef QN_MLOGS_H
#define QN_MLOGS_H

#include "mstate.h"

void qn_logs_answer(qn_master *m, const char *route, size_t routelen,
                    const Quern__LogsReply *r, const char *error);

void qn_logs_request(qn_master *m, const Quern__LogsRequest *rq, int64_t now);

void qn_logs_reply(qn_master *m, const Quern__LogsReply *r);

/* Answer the logs requests waiting for worker w, which is gone. */
void qn_logs_worker_gone(qn_master *m, int w);

/* Answer the logs requests whose worker did not answer in time. */
void qn_logs_check(qn_master *m, int64_t now);

int64_t qn_logs_due(qn_master *m);

#endif
