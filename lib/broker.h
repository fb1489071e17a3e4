/*
 * broker.h -- the part of a task attempt that keeps the worker's rights.
 *
 * Before quern-task enters its sandbox (sandbox.h) it forks a broker: a
 * child that runs Quern's code only, never the job's. The task asks it,
 * over a socketpair, for what needs rights the sandbox takes away: a map
 * for each input piece in turn (the broker opens the file, or pulls a
 * remote shard into the attempt's tmp/, and passes the descriptor back), a
 * reduce for its partition of every map output (the broker fetches them
 * into segment files in tmp/). Only the broker loads the worker's CURVE
 * key and opens connections; it serves nothing but the pieces and map
 * outputs of the task's own spec, by index. It ends when the task closes
 * its end, and dies with the task.
 *
 * Messages: a 4-byte little-endian length, then a BrokerRequest (task to
 * broker) or a Prefetched (broker to task, a descriptor attached to the
 * length when a piece was opened).
 */
#ifndef QN_BROKER_H
#define QN_BROKER_H

#include <stddef.h>
#include <sys/types.h>

#include "fetch.h"
#include "task.h"

/* Fork t's broker: t->broker_fd is the task's end. Its pid, or -1 with
 * t->fail set. */
pid_t qn_broker_start(quern_task *t);

/* Input piece index, opened by the broker: as qn_map_open_piece. */
int qn_broker_open(quern_task *t, size_t index, int *local);

/* Every map output's partition, fetched by the broker: as
 * qn_fetch_segments. */
int qn_broker_fetch(quern_task *t, char ***segs, char ***names,
                    qn_fetched **from, size_t *nsegs);

/* Delete a failed reduce's output file (the broker does). */
void qn_broker_drop_output(quern_task *t);

#endif
