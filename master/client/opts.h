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

#include "client.h"
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
    const char **files; /* --file: shipped with the job */
    size_t nfiles;
    uint64_t split_size;
    unsigned sort_mb, max_attempts, compress_level, workers, slots;
    int codec;
    int output_codec; /* compress.h: the part files' (0: none) */
    int speculation, skip_bad_records, keep_cr, wait, json;
    const char *master;
    const char *curve_secret, *curve_master;
    qn_curve curve;
    const char *dataset;
    unsigned replicas, output_replicas, task_mem_mb;
    uint64_t shard_size, record_size;
    int whole, tasks, inline_run;
    int local; /* quern run: bare names are files here, not datasets */
    const char *http;
    unsigned attempt;
    unsigned deadline_ms;
    const char **positional;
    size_t npositional;
} qn_cli_opts;

/*
 * Which commands take which options: each command's allowed set, as
 * qn_cli_parse takes it. Every command also takes --curve-secret and
 * --curve-master.
 */
#define QN_CLI_OPTS_JOB /* what run and submit share */                        \
    "|job|input|output|R|arg|file|split-size|sort-mb|max-attempts|"            \
    "no-speculation|skip-bad-records|keep-cr|compress-level|codec|"            \
    "output-codec|output-replicas|"
#define QN_CLI_OPTS_RUN                                                        \
    QN_CLI_OPTS_JOB "workers|slots|json|task-mem-mb|http|inline|"
#define QN_CLI_OPTS_SUBMIT QN_CLI_OPTS_JOB "master|wait|json|"
#define QN_CLI_OPTS_STATUS "|master|json|tasks|"
#define QN_CLI_OPTS_JOBS "|master|json|"
#define QN_CLI_OPTS_WORKERS "|master|json|"
#define QN_CLI_OPTS_CANCEL "|master|json|"
#define QN_CLI_OPTS_LOGS "|master|json|attempt|"
#define QN_CLI_OPTS_PUT "|master|dataset|replicas|shard-size|record-size|whole|"
#define QN_CLI_OPTS_LS "|master|json|"
#define QN_CLI_OPTS_CAT "|master|"
#define QN_CLI_OPTS_GET "|master|"
#define QN_CLI_OPTS_RM "|master|"
#define QN_CLI_OPTS_DRAIN "|master|wait|deadline-ms|json|"
#define QN_CLI_OPTS_UNDRAIN "|master|json|"

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

/*
 * Refuse positional arguments past the first n: 0, or the usage exit
 * status having said "unexpected argument 'X'" on stderr.
 */
int qn_cli_at_most(const qn_cli_opts *o, size_t n);

/*
 * A client for the master --master names, over CURVE with the keys
 * qn_cli_curve loaded: 0 with *c set (qn_client_destroy it), or the usage
 * exit status having said on stderr that the endpoint is bad.
 */
int qn_cli_connect(const qn_cli_opts *o, qn_client **c);

/* qn_cli_curve (saying what is wrong on stderr), then qn_cli_connect: 0
 * with *c set, or an exit status. */
int qn_cli_open(qn_cli_opts *o, qn_client **c);

#endif
