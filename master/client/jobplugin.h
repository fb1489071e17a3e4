/*
 * jobplugin.h -- what the quern command checks of a job's plugin before
 * it sends it anywhere: that it is a shared object for this machine, that
 * it defines a quern_job_v1 this quern can run, and what that says (the
 * job's name, how it reads input).
 *
 * A wrong file gets a refusal naming it and what to do, rather than the
 * loader's message or a job that fails on every worker.
 */
#ifndef QN_JOBPLUGIN_H
#define QN_JOBPLUGIN_H

#include <stddef.h>

#include "quern.h"
#include "wire.h"

/*
 * Check the plugin at path (its ELF header before it is loaded, then its
 * quern_job_v1, loaded here and unloaded again) and fill spec's name
 * (caller frees it), input_kind and record_size. Returns 0, or the usage
 * exit status with why in err (on stderr when err is NULL).
 */
int qn_jobplugin_check(const char *path, Quern__JobSpec *spec, char *err,
                       size_t cap);

/*
 * Is job, the quern_job_v1 of the plugin at path, one this quern can run
 * (its ABI, map and reduce, input kind and record size)? Returns 0, or the
 * usage exit status with why in err (on stderr when err is NULL).
 */
int qn_jobplugin_check_entry(const char *path, const quern_job *job, char *err,
                             size_t cap);

/*
 * The job's name for logs and the wire: name (the plugin's quern_job_v1
 * name), or the file name of path when it has none, each byte that is not
 * printable ASCII made '?', cut to QN_JOBSPEC_NAME_MAX bytes. Caller frees
 * the result.
 */
char *qn_jobplugin_name(const char *name, const char *path);

#endif
