/*
 * inline.h -- `quern run --inline`: a whole job in the calling process.
 *
 * The same map, combine and reduce code a worker's task processes run,
 * called one task after another in this process: no master, no workers,
 * no sockets, no child processes. For job authors who want to step
 * through their plugin in gdb, and for measuring what distribution costs.
 * Map outputs go to a temporary work dir; each reduce reads its partition
 * of them from there; part files and _SUCCESS are written as by a cluster.
 *
 * Unlike a cluster, every task runs once (a failure fails the job:
 * --max-attempts and --skip-bad-records do not apply), and the plugin is
 * loaded once, so its global variables keep their values from one task to
 * the next, where on a cluster each attempt starts in a fresh process.
 */
#ifndef QN_INLINE_H
#define QN_INLINE_H

#include "wire.h"

/*
 * Run the job js (its plugin, inputs, output and options as `quern run`
 * built them; inputs must be paths), with files[i] the bytes of the file
 * js->files[i] it ships (none: NULL). Its tasks run in a working folder of
 * their own, holding those files, as on a worker. Fills st (release it with
 * qn_inline_release) with the job's end state, counters, elapsed time and
 * peak memory, as the master would report them. Returns 0 when the job
 * succeeded, 1 when it failed (st->error says why), 2 when it could not
 * start (err says why).
 */
int qn_inline_run(const Quern__JobSpec *js, const ProtobufCBinaryData *files,
                  Quern__JobStatus *st, char *err, size_t errcap);

/* Free what qn_inline_run put in st. */
void qn_inline_release(Quern__JobStatus *st);

#endif
