/*
 * assign.h -- the master's assignments, and the plugins and shipped files
 * they need. A job's plugin (WORK/plugins/HASH.so) and the files shipped
 * with it (WORK/files/HASH, shipped.h) are cached under the work dir by
 * their SHA-256; an assignment missing any of them waits (w->wait) while
 * the master is asked for each, by hash, and starts when the last one has
 * arrived, checked.
 */
#ifndef QN_ASSIGN_H
#define QN_ASSIGN_H

#include "wstate.h"

#include <stdint.h>

/*
 * An assignment (env, an AssignTask): start it if its plugin and files
 * are in the cache, or keep it (the spec is taken from env) and ask the
 * master for those missing (once for all the assignments waiting).
 */
void qn_assign_handle(qn_worker *w, Quern__Envelope *env, int64_t now);

/*
 * A plugin or shipped file from the master: cache it (as what the waiting
 * assignments need it for) if its bytes have the hash asked for, and
 * start the assignments it completes; otherwise fail every assignment
 * that needs it, naming it and why.
 */
void qn_assign_on_plugin(qn_worker *w, const Quern__PluginReply *r);

/* Ask again for plugins and files whose answer did not come (every 5 s). */
void qn_assign_retry(qn_worker *w, int64_t now);

/* When qn_assign_retry has something to do next (INT64_MAX: never). */
int64_t qn_assign_next_retry(const qn_worker *w);

/*
 * The master cancels attempt r: if it is waiting for its plugin or files,
 * drop it and report it KILLED. Returns 1 if it was waiting, 0 otherwise.
 */
int qn_assign_cancel(qn_worker *w, const Quern__AttemptRef *r);

/* Drop (without a report) the waiting assignments of job_id, or all of
 * them when NULL. */
void qn_assign_drop_job(qn_worker *w, const char *job_id);

/* Drop every waiting assignment and free the list. */
void qn_assign_destroy(qn_worker *w);

#endif
