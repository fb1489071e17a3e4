/*
 * send.h -- messages out of the master, and messages dropped on the way
 * in.
 *
 * Every message goes out as an envelope of one body; these helpers build
 * the envelope, so a handler only fills in the body.
 */
#ifndef QN_MSEND_H
#define QN_MSEND_H

#include "mstate.h"

/* Why a message was dropped: the reason label of /metrics. */
enum { DROP_MALFORMED, DROP_VERSION, DROP_INVALID, DROP_RATE, DROP_EPOCH };

/* The names of the DROP_* reasons, in order. */
extern const char *const qn_drop_reasons[5];

/*
 * Send body, a message of the kind body_case names (a Quern__ struct of
 * that type), to the connection with routing id route. A peer gone or
 * slow loses it (logged unless the peer is gone).
 */
void qn_send(qn_master *m, const char *route, size_t routelen,
             Quern__Envelope__BodyCase body_case, void *body);

/* Send body back where the message being handled came from. */
void qn_send_reply(qn_master *m, Quern__Envelope__BodyCase body_case,
                   void *body);

/* Send body to worker w (on its newest connection). */
void qn_send_worker(qn_master *m, int w, Quern__Envelope__BodyCase body_case,
                    void *body);

/* Send a whole envelope (a refusal) to the connection route. Every send
 * comes here: after a change that must be on disk first (journal.h,
 * qn_journal_hold), the message is held for the turn's commit. */
void qn_send_envelope(qn_master *m, const char *route, size_t routelen,
                      Quern__Envelope *env);

/* The turn's commit is done (ok) or failed: send the messages held for
 * it, in order, or drop them. */
void qn_send_flush(qn_master *m, int ok);

/* Count a message dropped from the peer m->net.in came from, and log it
 * (once per peer a minute). It changes nothing else. */
void qn_drop(qn_master *m, unsigned reason, const char *why);

#endif
