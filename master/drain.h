/*
 * drain.h -- taking a worker out of service, and putting it back.
 *
 * A draining worker gets no new attempts (its scheduler slots are 0) and
 * no new data (puts and copies go elsewhere). Its running attempts
 * finish there; those still running at its deadline are cancelled and
 * run elsewhere. Its dataset shards are copied to other workers and then
 * dropped from it (replicas.h, copyplan.h; with too few workers left for
 * every replica, it keeps a copy that K others have too), and the map
 * outputs a running job still needs stay served from it. When it runs nothing
 * and holds nothing anyone needs, it is drained: it may be stopped and nothing
 * is lost. A client waiting (quern drain --wait) is answered then; a worker
 * that asked to be drained (it was told to stop) is told it may stop.
 * Draining is kept in the state dir, so a restarted master goes on.
 */
#ifndef QN_MDRAIN_H
#define QN_MDRAIN_H

#include "mstate.h"
#include "quern.pb-c.h"

#define QN_DRAIN_DEADLINE_MS 600000 /* running attempts' time, by default */
#define QN_DRAIN_WAIT_MS 30000      /* a waiting client is answered by then */

/* Start draining worker w: its running attempts run elsewhere after
 * deadline_ms (0: QN_DRAIN_DEADLINE_MS); `by` says who asked. Draining
 * already, the earlier deadline stands. */
void qn_drain_start(qn_master *m, int w, uint32_t deadline_ms, const char *by,
                    int64_t now);

/* Put worker w back in service; clients waiting for it are told. */
void qn_drain_undrain(qn_master *m, int w, int64_t now);

/* quern drain / undrain: the client's request, from m->net.in. */
void qn_drain_request(qn_master *m, const Quern__DrainRequest *rq, int64_t now);

/* Worker w, told to stop, asks to be drained first. */
void qn_drain_worker_asks(qn_master *m, int w, uint32_t deadline_ms,
                          int64_t now);

/* Look at every draining worker: past its deadline, its attempts run
 * elsewhere; drained, it is said so; waiting clients are answered. Once
 * per loop turn while any worker drains or any client waits. */
void qn_drain_check(qn_master *m, int64_t now);

/* Free what it holds. */
void qn_drain_release(qn_master *m);

#endif
