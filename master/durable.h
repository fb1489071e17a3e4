/*
 * durable.h -- the master's state as records in its state dir, and the
 * master as it was, loaded from them at start.
 *
 * Each function here packs one kind of record (quern.proto's JobRecord,
 * TaskRecord, PluginRecord, WorkerRecord, DatasetRecord) from the
 * master's state and notes it in the journal (journal.h), which keeps it
 * when the master runs with --state-dir. qn_durable_load does the
 * reverse at start: finished jobs come back as history, running jobs
 * with the tasks they had done and the attempts they had started,
 * workers as they were (each has until --dead-ms to come back), datasets
 * without their holders (who say again what they hold), and the
 * scheduler holds new work for the recovery grace (--recovery-ms) so
 * that workers can first say what they run (qn_task_adopt).
 */
#ifndef QN_DURABLE_H
#define QN_DURABLE_H

#include "mstate.h"

/*
 * Open the state dir (m->cfg.state_dir) and load it. 0 (also without a
 * state dir), or -1 with err naming what is wrong and what to do.
 */
int qn_durable_load(qn_master *m, int64_t now, char *err, size_t errlen);

/*
 * Job jx was submitted with plugin (len bytes) and the bytes of the files
 * it ships (files[i] for its spec's files[i]): keep its record, plugin
 * and files, on disk before the client is told its id. 0, or -1 when
 * they could not be written (the job must be refused).
 */
int qn_durable_job_submitted(qn_master *m, int jx, const void *plugin,
                             size_t len, const ProtobufCBinaryData *files);

/* A task of job jx started an attempt (its number is in the scheduler),
 * or was done with update u (NULL: not done). */
void qn_durable_task(qn_master *m, int jx, qn_kind kind, unsigned task,
                     const Quern__TaskUpdate *u);

/* Job jx ended (a success once its output is in place): keep its
 * summary as history. */
void qn_durable_job_ended(qn_master *m, int jx, int64_t now);

/* Dataset name was created, changed or removed (kind). */
void qn_durable_dataset(qn_master *m, qn_change_kind kind, const char *name);

/* Worker w joined. */
void qn_durable_worker(qn_master *m, int w);

#endif
