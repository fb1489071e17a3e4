/*
 * job.h -- a job's record: counters, failures, attempts, map outputs
 */
#ifndef QN_MJOB_H
#define QN_MJOB_H

#include "mstate.h"

/* Add v to a job counter; returns the counter's index. */
size_t qn_job_count(qn_job *j, const char *name, long long v);

/* The name of input piece `piece` of map task `map`, or "". */
const char *qn_job_shard(const qn_job *j, unsigned map, uint32_t piece);

void qn_job_add_failure(qn_job *j, qn_kind kind, unsigned task,
                        unsigned attempt, const char *worker,
                        const char *reason, const char *tail, uint64_t offset,
                        const char *shard);

/* The record of attempt of a task, or NULL. */
qn_arec *qn_job_arec_find(qn_job *j, qn_kind kind, unsigned task,
                          unsigned attempt);

/* An attempt ended (any way): its duration stops growing. */
void qn_job_arec_end(qn_job *j, qn_kind kind, unsigned task, unsigned attempt,
                     int64_t now);

void qn_job_outs_free(qn_job *j);

void qn_job_release(qn_job *j);

/* Remember the record a map attempt died in, for --skip-bad-records. */
void qn_job_note_crash(qn_job *j, unsigned task, const Quern__TaskUpdate *u);

/* A map attempt that skipped records succeeded: list them in the job. */
void qn_job_note_skipped(qn_job *j, unsigned task);

const char *qn_kind_name(qn_kind k);

#endif
