/*
 * datacmd.h -- the master's commands on the dataset shards this worker
 * keeps (store.h): seal a dataset, drop one, or commit a reduce's staged
 * output as a shard.
 */
#ifndef QN_DATACMD_H
#define QN_DATACMD_H

#include "wstate.h"

/*
 * Carry out command c on the worker's store. A COMMIT that fails is
 * reported to the master, so that its job fails saying why; a worker
 * without --data-dir only logs that it was sent one.
 */
void qn_datacmd_handle(qn_worker *w, const Quern__DataCommand *c);

#endif
