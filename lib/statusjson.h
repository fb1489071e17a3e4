/*
 * statusjson.h -- jobs, tasks and workers as JSON, one shape for all.
 *
 * The client's --json output and the master's /api/v1 answers are built
 * here from the same protobuf messages, so their field names are the same
 * and stay stable (README, "The JSON API").
 */
#ifndef QN_STATUSJSON_H
#define QN_STATUSJSON_H

#include "quern.pb-c.h"

#include <jansson.h>
#include <stddef.h>

/* "running", "succeeded", "failed", "cancelled" (or "unknown"). */
const char *qn_job_state_name(int state);

/* "pending", "running", "done" for TaskInfo.state 0, 1, 2 ("unknown"). */
const char *qn_task_state_name(unsigned state);

/* "active", "draining", "drained", "dead" for a WorkerState. */
const char *qn_worker_state_name(Quern__WorkerState s);

/* "m3" or "r0": how users name a task (quern logs JOB TASK). */
void qn_task_name(char *out, size_t cap, int kind, unsigned index);

/* Parse "m3", "map3", "map-3", "r0", "reduce-0"...; 0 or -1. */
int qn_task_parse(const char *s, int *kind, unsigned *index);

/* Both phases' progress together, 0..1. */
double qn_job_progress(const Quern__JobStatus *st);

/* Expected milliseconds to the end, or -1 when not known. */
long long qn_job_eta_ms(const Quern__JobStatus *st);

/* New references (the caller owns them). tasks are added when present. */
json_t *qn_json_job(const Quern__JobStatus *st);
json_t *qn_json_worker(const Quern__WorkerInfo *w);
json_t *qn_json_task(const Quern__TaskInfo *t);

#endif
