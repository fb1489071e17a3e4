/*
 * layout.h -- where a worker keeps things under its work dir, shared by the
 * worker daemon, its shuffle server and its task processes:
 *
 *   WORK/worker.id, worker.lock        who the worker is (identity.h)
 *   WORK/jobs/JOB/map-NNNNN-aK/        a map attempt's working directory,
 *                                      the files shipped with the job in it
 *   WORK/jobs/JOB/map-NNNNN-aK/tmp/    what the attempt writes: spills,
 *                                      merges, output.ifile (its output)
 *   WORK/jobs/JOB/map-NNNNN-aK.done    its SUCCEEDED update, once told
 *   WORK/jobs/JOB/reduce-NNNNN-aK/     a reduce attempt's, the same way
 *   WORK/logs/JOB/m-NNNNN-aK.stderr    an attempt's stderr (r- a reduce's)
 *   WORK/plugins/HASH.so               a job's plugin, by its SHA-256
 *   WORK/files/HASH                    a file shipped with a job (--file)
 *
 * A task may write only under its attempt's tmp/ (the sandbox, sandbox.h);
 * the .done file beside the folder is the worker's own. WORK/jobs/JOB is
 * removed when the master says the job is over; the
 * logs of the newest jobs are kept for quern logs.
 */
#ifndef QN_LAYOUT_H
#define QN_LAYOUT_H

#include "util.h"

#define QN_ATTEMPT_TMP "tmp"             /* the part of it a task writes */
#define QN_MAP_OUTPUT "tmp/output.ifile" /* a map's output, in it */

/* Path of an attempt's working directory (a map's when is_map, else a
 * reduce's), into b (replacing its contents). */
static inline void qn_attempt_dir(qn_buf *b, const char *work_dir,
                                  const char *job_id, int is_map, unsigned task,
                                  unsigned attempt)
{
    b->len = 0;
    qn_buf_printf(b, "%s/jobs/%s/%s-%05u-a%u", work_dir, job_id,
                  is_map ? "map" : "reduce", task, attempt);
}

/* Path of a map attempt's final output, into b (replacing its contents). */
static inline void qn_map_output_path(qn_buf *b, const char *work_dir,
                                      const char *job_id, unsigned map,
                                      unsigned attempt)
{
    qn_attempt_dir(b, work_dir, job_id, 1, map, attempt);
    qn_buf_printf(b, "/%s", QN_MAP_OUTPUT);
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

/* Path of the cached file shipped with a job, by its SHA-256 hash (hex),
 * into b (replacing its contents). */
static inline void qn_shipped_path(qn_buf *b, const char *work_dir,
                                   const char *hash)
{
    b->len = 0;
    qn_buf_printf(b, "%s/files/%s", work_dir, hash);
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
