/*
 * send.h -- messages out of the master, and messages dropped
 */
#ifndef QN_MSEND_H
#define QN_MSEND_H

#include "mstate.h"

/* Why a message was dropped: the reason label of /metrics. */
enum { DROP_MALFORMED, DROP_VERSION, DROP_INVALID, DROP_RATE };

void qn_send(qn_master *m, const char *route, size_t routelen,
             Quern__Envelope *env);

/* Count a message dropped from the peer m->in came from, and log it (once
 * per peer a minute). It changes nothing else. */
void qn_drop(qn_master *m, unsigned reason, const char *why);

void qn_send_welcome(qn_master *m, const char *route, size_t routelen,
                     const char *id, int rejoin, int reset, uint64_t session);

/* Replies to worker w go where its current message came from. */
void qn_route_here(qn_master *m, int w);

void qn_send_data_cmd(qn_master *m, int w, Quern__DataCommand *c);

/* The names of the DROP_* reasons, in order. */
extern const char *const qn_drop_reasons[4];

#endif
