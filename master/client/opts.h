/*
 * opts.h -- the quern command's options, parsed from argv on their own.
 *
 * They are parsed before anything touches a file or a socket, so the
 * parser can be driven by a fuzzer (tests/fuzz/fuzz_jobspec.c) and by
 * tests without running a command.
 */
#ifndef QN_OPTS_H
#define QN_OPTS_H

#include <stddef.h>
#include <stdint.h>

#include "curve.h"

/* Every option of every command; each command reads the ones it takes. */
typedef struct qn_cli_opts {
    const char *job;
    const char **inputs; /* point into argv, like every string here */
    size_t ninputs;
    const char *output;
    unsigned nreduce;
    const char **args; /* "NAME=VALUE" */
    size_t nargs;
    uint64_t split_size;
    unsigned sort_mb, max_attempts, compress_level, workers, slots;
    int codec;
    int speculation, skip_bad_records, wait, json;
    const char *master;
    const char *curve_secret, *curve_master;
    qn_curve curve;
    const char *dataset;
    unsigned replicas, output_replicas, task_mem_mb;
    uint64_t shard_size, record_size;
    int whole, tasks, inline_run;
    const char *http;
    unsigned attempt;
    const char **positional;
    size_t npositional;
} qn_cli_opts;

/*
 * Parse argv[0..argc) (a command's arguments, after its name) into o,
 * which must be zeroed. allowed lists the options the command takes, as
 * "|name|" entries ("|job|input|R|"). Returns 0, or the usage exit status
 * (2) with the message quern would print in err (or printed on stderr, as
 * quern prints it, when err is NULL). Release o with qn_cli_opts_release
 * either way.
 */
int qn_cli_parse(int argc, char **argv, const char *allowed, qn_cli_opts *o,
                 char *err, size_t cap);

/* Free what qn_cli_parse allocated in o (not the strings: argv's). */
void qn_cli_opts_release(qn_cli_opts *o);

/*
 * Load the CURVE keys --curve-secret and --curve-master name (or their
 * variables) into o->curve, if any. Returns 0, or the usage exit status
 * with why in err (on stderr when err is NULL).
 */
int qn_cli_curve(qn_cli_opts *o, char *err, size_t cap);

#endif
