/*
 * layout.h -- where a worker keeps things under its work dir, shared by the
 * worker daemon, its shuffle server and its task processes:
 *
 *   WORK/jobs/JOB/map-NNNNN-aK.ifile   a map attempt's output
 *   WORK/jobs/JOB/logs/m-NNNNN-aK.stderr   an attempt's stderr
 *   WORK/jobs/JOB/...                  spills and reduce segments
 *
 * WORK/jobs/JOB is removed when the master says the job is over.
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

#endif
