/*
 * layout.h -- where a worker keeps things under its work dir, shared by the
 * worker daemon, its shuffle server and its task processes:
 *
 *   WORK/worker.id, worker.lock        who the worker is (identity.h)
 *   WORK/jobs/JOB/map-NNNNN-aK.ifile   a map attempt's output
 *   WORK/jobs/JOB/map-NNNNN-aK.done    its SUCCEEDED update, once told
 *   WORK/jobs/JOB/...                  spills and reduce segments
 *   WORK/logs/JOB/m-NNNNN-aK.stderr    an attempt's stderr (r- a reduce's)
 *   WORK/plugins/HASH.so               a job's plugin, by its SHA-256
 *
 * WORK/jobs/JOB is removed when the master says the job is over; the
 * logs of the newest jobs are kept for quern logs.
 */
#ifndef QN_LAYOUT_H
#define QN_LAYOUT_H

#include "util.h"

/* Path of a map attempt's final output, into b (replacing its contents). */
static inline void qn_map_output_path(qn_buf *b, const char *work_dir,
                                      const char *job_id, unsigned map,
                                      unsigned attempt)
{
    b->len = 0;
    qn_buf_printf(b, "%s/jobs/%s/map-%05u-a%u.ifile", work_dir, job_id, map,
                  attempt);
}

/* Path of a finished map attempt's SUCCEEDED update, kept beside its
 * output so a worker started again can offer the output (recovery.h). */
static inline void qn_map_done_path(qn_buf *b, const char *work_dir,
                                    const char *job_id, unsigned map,
                                    unsigned attempt)
{
    b->len = 0;
    qn_buf_printf(b, "%s/jobs/%s/map-%05u-a%u.done", work_dir, job_id, map,
                  attempt);
}

/* Path of the cached plugin with SHA-256 hash (hex), into b (replacing
 * its contents). */
static inline void qn_plugin_path(qn_buf *b, const char *work_dir,
                                  const char *hash)
{
    b->len = 0;
    qn_buf_printf(b, "%s/plugins/%s.so", work_dir, hash);
}

#endif
