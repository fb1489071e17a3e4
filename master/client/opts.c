/*
 * opts.c -- see opts.h.
 */
#include "opts.h"

#include "client.h"
#include "codec.h"
#include "usage.h"
#include "util.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/*
 * Parse options. allowed lists what this command takes, as a string of
 * "|name|" entries. Returns 0 or an exit status, having said why in err
 * (on stderr when err is NULL).
 */
static int s_parse(int argc, char **argv, const char *allowed, qn_cli_opts *o,
                   char *err, size_t cap)
{
    o->nreduce = 1;
    o->split_size = 64ull << 20;
    o->sort_mb = 64;
    o->max_attempts = 4;
    o->compress_level = 1;
    o->codec = QN_CODEC_ZLIB;
    /* One task process per core: what a job on one machine can use. */
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    o->workers = cores < 1 ? 1 : cores > 64 ? 64 : (unsigned)cores;
    o->slots = 1;
    o->speculation = 1;
    o->master = getenv("QUERN_MASTER");
    if (!o->master || !*o->master)
        o->master = QN_CLIENT_DEFAULT_MASTER;
    o->curve_secret = getenv("QUERN_CURVE_SECRET");
    if (o->curve_secret && !*o->curve_secret)
        o->curve_secret = NULL;
    o->curve_master = getenv("QUERN_CURVE_MASTER");
    if (o->curve_master && !*o->curve_master)
        o->curve_master = NULL;
    o->replicas = 2;
    o->output_replicas = 2;
    o->shard_size = 64ull << 20;
    o->inputs = qn_calloc((size_t)argc, sizeof *o->inputs);
    o->args = qn_calloc((size_t)argc, sizeof *o->args);
    o->positional = qn_calloc((size_t)argc, sizeof *o->positional);
    for (int i = 0; i < argc; i++) {
        char *a = argv[i];
        if (a[0] != '-' || strcmp(a, "-") == 0) {
            o->positional[o->npositional++] = a;
            continue;
        }
        char name[64];
        const char *val = NULL;
        const char *eq = strchr(a, '=');
        const char *n = a[1] == '-' ? a + 2 : a + 1;
        size_t nl = eq && a[1] == '-' ? (size_t)(eq - n) : strlen(n);
        if (nl >= sizeof name - 2)
            return qn_usage_error(err, cap,
                                  "unknown option '%s' (see quern --help)", a);
        snprintf(name, sizeof name, "|%.*s|", (int)nl, n);
        if (!strstr(allowed, name) &&
            !strstr("|curve-secret|curve-master|", name))
            return qn_usage_error(
                err, cap,
                "unknown option '%s' for this command (see quern "
                "--help)",
                a);
        static const char *const flags[] = {
            "|no-speculation|", "|wait|",  "|json|", "|skip-bad-records|",
            "|inline|",         "|whole|", "|tasks|"};
        int is_flag = 0;
        for (size_t k = 0; k < QN_ARRAY_LEN(flags); k++)
            if (strcmp(name, flags[k]) == 0)
                is_flag = 1;
        if (!is_flag) {
            if (eq && a[1] == '-')
                val = eq + 1;
            else if (i + 1 < argc)
                val = argv[++i];
            else
                return qn_usage_error(err, cap, "option %s needs a value", a);
        }
        uint64_t v;
        if (strcmp(name, "|job|") == 0) {
            o->job = val;
        } else if (strcmp(name, "|input|") == 0) {
            o->inputs[o->ninputs++] = val;
            /* --input takes several paths: up to the next option. */
            while (i + 1 < argc && argv[i + 1][0] != '-')
                o->inputs[o->ninputs++] = argv[++i];
        } else if (strcmp(name, "|output|") == 0) {
            o->output = val;
        } else if (strcmp(name, "|R|") == 0) {
            if (qn_parse_uint(val, 1, 100000, &v) < 0)
                return qn_usage_error(
                    err, cap,
                    "-R must be a number of reducers from 1 to "
                    "100000, not '%s'",
                    val);
            o->nreduce = (unsigned)v;
        } else if (strcmp(name, "|arg|") == 0) {
            if (!strchr(val, '=') || val[0] == '=')
                return qn_usage_error(err, cap,
                                      "--arg takes NAME=VALUE, not '%s'", val);
            o->args[o->nargs++] = val;
        } else if (strcmp(name, "|split-size|") == 0) {
            if (qn_parse_size(val, &o->split_size) < 0 || o->split_size < 1024)
                return qn_usage_error(
                    err, cap,
                    "--split-size must be a size of at least 1K, "
                    "like 64M, not '%s'",
                    val);
        } else if (strcmp(name, "|sort-mb|") == 0) {
            if (qn_parse_uint(val, 1, 4095, &v) < 0)
                return qn_usage_error(
                    err, cap, "--sort-mb must be from 1 to 4095, not '%s'",
                    val);
            o->sort_mb = (unsigned)v;
        } else if (strcmp(name, "|max-attempts|") == 0) {
            if (qn_parse_uint(val, 1, 100, &v) < 0)
                return qn_usage_error(
                    err, cap,
                    "--max-attempts must be from 1 to 100, not "
                    "'%s'",
                    val);
            o->max_attempts = (unsigned)v;
        } else if (strcmp(name, "|compress-level|") == 0) {
            if (qn_parse_uint(val, 0, 9, &v) < 0)
                return qn_usage_error(
                    err, cap,
                    "--compress-level must be from 0 to 9, not "
                    "'%s'",
                    val);
            o->compress_level = (unsigned)v;
        } else if (strcmp(name, "|codec|") == 0) {
            char why[200];
            o->codec = qn_codec_parse(val, why, sizeof why);
            if (o->codec < 0)
                return qn_usage_error(err, cap, "--codec: %s", why);
        } else if (strcmp(name, "|workers|") == 0) {
            if (qn_parse_uint(val, 1, 64, &v) < 0)
                return qn_usage_error(
                    err, cap, "--workers must be from 1 to 64, not '%s'", val);
            o->workers = (unsigned)v;
        } else if (strcmp(name, "|slots|") == 0) {
            if (qn_parse_uint(val, 1, 64, &v) < 0)
                return qn_usage_error(
                    err, cap, "--slots must be from 1 to 64, not '%s'", val);
            o->slots = (unsigned)v;
        } else if (strcmp(name, "|master|") == 0) {
            o->master = val;
        } else if (strcmp(name, "|no-speculation|") == 0) {
            o->speculation = 0;
        } else if (strcmp(name, "|wait|") == 0) {
            o->wait = 1;
        } else if (strcmp(name, "|json|") == 0) {
            o->json = 1;
        } else if (strcmp(name, "|skip-bad-records|") == 0) {
            o->skip_bad_records = 1;
        } else if (strcmp(name, "|curve-secret|") == 0) {
            o->curve_secret = val;
        } else if (strcmp(name, "|curve-master|") == 0) {
            o->curve_master = val;
        } else if (strcmp(name, "|dataset|") == 0) {
            o->dataset = val;
        } else if (strcmp(name, "|replicas|") == 0 ||
                   strcmp(name, "|output-replicas|") == 0) {
            if (qn_parse_uint(val, 1, 16, &v) < 0)
                return qn_usage_error(
                    err, cap, "%s must be from 1 to 16, not '%s'", a, val);
            if (name[1] == 'r')
                o->replicas = (unsigned)v;
            else
                o->output_replicas = (unsigned)v;
        } else if (strcmp(name, "|shard-size|") == 0) {
            if (qn_parse_size(val, &o->shard_size) < 0 || o->shard_size < 1)
                return qn_usage_error(
                    err, cap,
                    "--shard-size must be a size like 64M, not "
                    "'%s'",
                    val);
        } else if (strcmp(name, "|record-size|") == 0) {
            if (qn_parse_size(val, &o->record_size) < 0 || o->record_size < 1)
                return qn_usage_error(
                    err, cap,
                    "--record-size must be a size in bytes, not "
                    "'%s'",
                    val);
        } else if (strcmp(name, "|whole|") == 0) {
            o->whole = 1;
        } else if (strcmp(name, "|task-mem-mb|") == 0) {
            if (qn_parse_uint(val, 16, 1 << 20, &v) < 0)
                return qn_usage_error(
                    err, cap, "--task-mem-mb must be 16 to 1048576, not '%s'",
                    val);
            o->task_mem_mb = (unsigned)v;
        } else if (strcmp(name, "|http|") == 0) {
            o->http = val;
        } else if (strcmp(name, "|tasks|") == 0) {
            o->tasks = 1;
        } else if (strcmp(name, "|attempt|") == 0) {
            if (qn_parse_uint(val, 1, 1000000, &v) < 0)
                return qn_usage_error(
                    err, cap,
                    "--attempt must be an attempt number (1, 2, "
                    "...), not '%s'",
                    val);
            o->attempt = (unsigned)v;
        } else if (strcmp(name, "|inline|") == 0) {
            o->inline_run = 1;
        }
    }
    return 0;
}

int qn_cli_parse(int argc, char **argv, const char *allowed, qn_cli_opts *o,
                 char *err, size_t cap)
{
    if (err)
        err[0] = '\0';
    return s_parse(argc, argv, allowed, o, err, cap);
}

void qn_cli_opts_release(qn_cli_opts *o)
{
    qn_curve_release(&o->curve);
    free(o->inputs);
    free(o->args);
    free(o->positional);
}

/*
 * Load the CURVE keys named by the options, if any. 0 or an exit status,
 * said in err (on stderr when err is NULL).
 */
int qn_cli_curve(qn_cli_opts *o, char *err, size_t cap)
{
    if (!o->curve_secret) {
        if (o->curve_master)
            return qn_usage_error(err, cap,
                                  "--curve-master needs --curve-secret (your "
                                  "own key, made by quern keygen)");
        return 0;
    }
    if (!o->curve_master)
        return qn_usage_error(err, cap,
                              "--curve-secret needs --curve-master FILE: the "
                              "master's public key");
    char why[600];
    if (qn_curve_load(&o->curve, o->curve_secret, NULL, o->curve_master, why,
                      sizeof why) < 0)
        return qn_usage_error(err, cap, "%s", why);
    return 0;
}

int qn_cli_at_most(const qn_cli_opts *o, size_t n)
{
    if (o->npositional > n)
        return qn_usage_fail("unexpected argument '%s'", o->positional[n]);
    return 0;
}

int qn_cli_connect(const qn_cli_opts *o, qn_client **c)
{
    *c = qn_client_new(o->master, &o->curve);
    if (!*c)
        return qn_usage_fail(
            "bad --master endpoint '%s' (like tcp://host:7070)", o->master);
    return 0;
}
