/*
 * from_clients.h -- what clients ask: submit, status, cancel, workers,
 * logs, and the datasets' put, ls and rm. Every change a client's request
 * makes to the master's state is made here. Requests are rate-limited per
 * address (the dispatch in master.c asks qn_from_client_is_request).
 */
#ifndef QN_FROM_CLIENTS_H
#define QN_FROM_CLIENTS_H

#include "mstate.h"

#define QN_FROM_CLIENTS_MAX_MAPS                                               \
    100000                              /* map tasks per job (a reduce         \
                                           lists them all) */
#define QN_FROM_CLIENTS_MAX_RUNNING 256 /* jobs running at once */

/* Is a message of this kind a client's request, rather than a worker's? */
int qn_from_client_is_request(Quern__Envelope__BodyCase c);

/*
 * Handle env, the message being handled (from m->net.in), at now, if it is
 * a client's request; it is answered on the connection it came on.
 * Returns 1 if it was, 0 if it is not a client's request.
 */
int qn_from_client(qn_master *m, const Quern__Envelope *env, int64_t now);

#endif
