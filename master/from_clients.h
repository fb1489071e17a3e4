/*
 * from_clients.h -- what clients ask: jobs, status, workers, datasets
 */
#ifndef QN_MFROM_CLIENTS_H
#define QN_MFROM_CLIENTS_H

#include "mstate.h"

void qn_from_client_submit_reply(qn_master *m, const char *id,
                                 const char *error);

void qn_from_client_submit(qn_master *m, const Quern__SubmitJob *sj,
                           int64_t now);

void qn_from_client_status(qn_master *m, const Quern__StatusRequest *rq);

void qn_from_client_cancel(qn_master *m, const Quern__CancelJob *c,
                           int64_t now);

void qn_from_client_workers(qn_master *m, int64_t now);

void qn_from_client_put(qn_master *m, const Quern__PutRequest *rq, int64_t now);

void qn_from_client_datasets(qn_master *m, const Quern__DatasetsRequest *rq);

void qn_from_client_drop(qn_master *m, const Quern__DropDataset *rq);

/* Is a message of this kind a client's request (rate-limited per
 * address), rather than a worker's? */
int qn_from_client_is_request(Quern__Envelope__BodyCase c);

#endif
