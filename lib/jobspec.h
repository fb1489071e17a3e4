/*
 * jobspec.h -- is a job, as a client submits it, one Quern can run?
 *
 * The checks that need nothing but the job itself: its options within
 * their limits, its inputs and output well formed, its plugin a shared
 * object for this machine that defines the job's entry point (read from
 * the bytes, never loaded), the files it ships named and within bounds. The
 * master runs them on every SubmitJob before it looks at the cluster (datasets,
 * files, other jobs); the client runs them too, so a job it would send and the
 * master would refuse is refused before it leaves.
 */
#ifndef QN_JOBSPEC_H
#define QN_JOBSPEC_H

#include <stddef.h>

#include "ifile.h"
#include "quern.h"
#include "quern.pb-c.h"

#define QN_JOBSPEC_REDUCERS_MAX 100000 /* -R at most */
#define QN_JOBSPEC_INPUTS_MAX 100000   /* --input paths and datasets */
#define QN_JOBSPEC_PATH_MAX 4095       /* bytes of a path (PATH_MAX - 1) */
#define QN_JOBSPEC_NAME_MAX 64         /* bytes of the job's name */
#define QN_JOBSPEC_ARGS_MAX 1024       /* --arg NAME=VALUE pairs */
#define QN_JOBSPEC_ARG_NAME_MAX 256    /* bytes of one argument's name */
#define QN_JOBSPEC_ARG_VALUE_MAX 65536 /* bytes of one argument's value */
/* Every name and value, summed: each task message carries them. */
#define QN_JOBSPEC_ARGS_BYTES 1048576
#define QN_JOBSPEC_SPLIT_MIN 1024           /* smallest --split-size */
#define QN_JOBSPEC_SORT_MB_MAX 4095         /* --sort-mb at most (at least 1) */
#define QN_JOBSPEC_ATTEMPTS_MAX 100         /* --max-attempts (at least 1) */
#define QN_JOBSPEC_LEVEL_MAX 9              /* --compress-level */
#define QN_JOBSPEC_REPLICAS_MAX 16          /* --output-replicas (0: default) */
#define QN_JOBSPEC_RECORD_MAX QN_RECORD_MAX /* QUERN_FIXED record_size */
#define QN_JOBSPEC_FILES_MAX 256            /* --file per job */
/* A job's plugin and shipped files, summed: they travel to the master in
 * one message (at most QN_MSG_MAX, 16 MiB, with the spec), and the master
 * keeps them in memory while the job runs. */
#define QN_JOBSPEC_SHIP_BYTES (15u << 20)

/* The entry point, and the least of it a plugin must define: a quern_job
 * as far as its reduce function (what the first ABI 1 release had, less
 * the optional callbacks). */
#define QN_JOBSPEC_ENTRY "quern_job_v1"
#define QN_JOBSPEC_ENTRY_MIN                                                   \
    (offsetof(quern_job, reduce) + sizeof(((quern_job *)0)->reduce))

/*
 * Check spec and its plugin's bytes (plugin_len of them) before the job is
 * accepted. Returns 0, or -1 with err (cap bytes) naming the bad field or
 * input and what it should be, as one line. Reads only spec and the
 * bytes: no files, no clock.
 */
int qn_jobspec_check(const Quern__JobSpec *spec, const void *plugin,
                     size_t plugin_len, char *err, size_t cap);

/*
 * Check the bytes of the files spec ships (data[0..n), in the order of
 * spec->files, as a SubmitJob carries them): one per file, each of its
 * size and SHA-256. Returns 0, or -1 with err naming the file.
 */
int qn_jobspec_check_files(const Quern__JobSpec *spec,
                           const ProtobufCBinaryData *data, size_t n, char *err,
                           size_t cap);

#endif
