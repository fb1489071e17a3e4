/*
 * assign.h -- the master's assignments, and the plugins they need. A job's
 * plugin is cached under the work dir by its SHA-256; an assignment whose
 * plugin is not there yet waits (w->wait) while the master is asked for
 * it, and starts when it arrives, checked.
 */
#ifndef QN_ASSIGN_H
#define QN_ASSIGN_H

#include "wstate.h"

#include <stdint.h>

/*
 * An assignment (env, an AssignTask): start it if its plugin is in the
 * cache, or keep it (the spec is taken from env) and ask the master for
 * the plugin.
 */
void qn_assign_handle(qn_worker *w, Quern__Envelope *env, int64_t now);

/*
 * A plugin from the master: cache it if its bytes have the hash asked
 * for, and start the assignments waiting for it; otherwise fail them,
 * saying why.
 */
void qn_assign_on_plugin(qn_worker *w, const Quern__PluginReply *r);

/* Ask again for plugins whose answer did not come (every 5 s). */
void qn_assign_retry(qn_worker *w, int64_t now);

/* When qn_assign_retry has something to do next (INT64_MAX: never). */
int64_t qn_assign_next_retry(const qn_worker *w);

/*
 * The master cancels attempt r: if it is waiting for its plugin, drop it
 * and report it KILLED. Returns 1 if it was waiting, 0 otherwise.
 */
int qn_assign_cancel(qn_worker *w, const Quern__AttemptRef *r);

/* Drop (without a report) the waiting assignments of job_id, or all of
 * them when NULL. */
void qn_assign_drop_job(qn_worker *w, const char *job_id);

/* Drop every waiting assignment and free the list. */
void qn_assign_destroy(qn_worker *w);

#endif
