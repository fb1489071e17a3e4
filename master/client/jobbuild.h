/*
 * jobbuild.h -- the job that quern run and quern submit describe: a
 * JobSpec built from the command's options, checked as the master would
 * check it, with the plugin's bytes and the files it ships (--file) to
 * send along.
 */
#ifndef QN_JOBBUILD_H
#define QN_JOBBUILD_H

#include <stddef.h>

#include "opts.h"
#include "util.h"
#include "wire.h"

/* A job ready to submit. Its strings are its own or the options'. */
typedef struct qn_jobbuild {
    Quern__JobSpec spec;
    qn_buf plugin; /* the shared object's bytes */
    Quern__InputPath *inputs, **ip;
    Quern__Arg *args, **ap;
    Quern__ShippedFile *files, **fp; /* --file, as spec.files lists them */
    qn_buf *file_bytes;              /* ... and the bytes of each */
    ProtobufCBinaryData *file_data;  /* the same, as SubmitJob carries them */
    char **owned;                    /* strings to free with the job */
    size_t nowned, cap_owned;
} qn_jobbuild;

/*
 * Build j from o (--job, --input, --output, --arg and the job options),
 * checking what the master would refuse and loading the plugin to check
 * it. j points into o, which must outlive it. Returns 0 (release j with
 * qn_jobbuild_release), or the usage exit status with why in err (on
 * stderr when err is NULL), j then holding nothing.
 */
int qn_jobbuild_init(qn_jobbuild *j, const qn_cli_opts *o, char *err,
                     size_t cap);

/* Free what qn_jobbuild_init put in j, leaving it empty. */
void qn_jobbuild_release(qn_jobbuild *j);

#endif
