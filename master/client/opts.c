/*
 * opts.c -- see opts.h.
 */
#include "opts.h"

#include "client.h"
#include "codec.h"
#include "compress.h"
#include "usage.h"
#include "util.h"

#include <assert.h>
#include <stddef.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

/* ---- the options --------------------------------------------------------- */

/* How an option's value is read. */
typedef enum {
    S_ON,     /* a flag: sets its int to 1 */
    S_OFF,    /* a flag: sets its int to 0 */
    S_STRING, /* a string, pointing into argv */
    S_PATHS,  /* its value and the words after it, up to the next option */
    S_PAIR,   /* NAME=VALUE, added to its list each time it is given */
    S_LIST,   /* a string, added to its list each time it is given */
    S_UINT,   /* a decimal number from min to max */
    S_SIZE,   /* a size such as 64M, at least min */
    S_CODEC,  /* a codec's name, kept as its id */
    S_OUTPUT_CODEC, /* an output codec's name, kept as its kind */
} s_kind;

/* One option of the quern command. */
typedef struct {
    const char *name; /* as typed after its dashes */
    s_kind kind;
    size_t at;         /* the field it fills in qn_cli_opts */
    size_t count;      /* S_PATHS, S_PAIR, S_LIST: the list's count */
    uint64_t min, max; /* S_UINT; S_SIZE (min only) */
    const char *bad;   /* why a value is refused, after the option's name */
    int typed;         /* that name as typed ("--replicas=0"), not "--name" */
} s_option;

/* 1 when field f of qn_cli_opts is a T, else -1. */
#define S_IS(f, T) _Generic(((qn_cli_opts *)0)->f, T : 1, default : -1)

/* The offset of field f of qn_cli_opts, which must be a T: a row that
 * would fill a field of another type makes an array of -1 bytes, which
 * does not compile. */
#define S_FIELD(f, T) (offsetof(qn_cli_opts, f) + 0 * sizeof(char[S_IS(f, T)]))

/* Every option of every command (opts.h says which command takes which). */
static const s_option s_options[] = {
    {.name = "job", .kind = S_STRING, .at = S_FIELD(job, const char *)},
    {.name = "input",
     .kind = S_PATHS,
     .at = S_FIELD(inputs, const char **),
     .count = S_FIELD(ninputs, size_t)},
    {.name = "output", .kind = S_STRING, .at = S_FIELD(output, const char *)},
    {.name = "R",
     .kind = S_UINT,
     .at = S_FIELD(nreduce, unsigned),
     .min = 1,
     .max = 100000,
     .bad = "must be a number of reducers from 1 to 100000"},
    {.name = "arg",
     .kind = S_PAIR,
     .at = S_FIELD(args, const char **),
     .count = S_FIELD(nargs, size_t),
     .bad = "takes NAME=VALUE"},
    {.name = "file",
     .kind = S_LIST,
     .at = S_FIELD(files, const char **),
     .count = S_FIELD(nfiles, size_t)},
    {.name = "split-size",
     .kind = S_SIZE,
     .at = S_FIELD(split_size, uint64_t),
     .min = 1024,
     .bad = "must be a size of at least 1K, like 64M"},
    {.name = "sort-mb",
     .kind = S_UINT,
     .at = S_FIELD(sort_mb, unsigned),
     .min = 1,
     .max = 4095,
     .bad = "must be from 1 to 4095"},
    {.name = "max-attempts",
     .kind = S_UINT,
     .at = S_FIELD(max_attempts, unsigned),
     .min = 1,
     .max = 100,
     .bad = "must be from 1 to 100"},
    {.name = "no-speculation", .kind = S_OFF, .at = S_FIELD(speculation, int)},
    {.name = "skip-bad-records",
     .kind = S_ON,
     .at = S_FIELD(skip_bad_records, int)},
    {.name = "keep-cr", .kind = S_ON, .at = S_FIELD(keep_cr, int)},
    {.name = "compress-level",
     .kind = S_UINT,
     .at = S_FIELD(compress_level, unsigned),
     .min = 0,
     .max = 9,
     .bad = "must be from 0 to 9"},
    {.name = "codec", .kind = S_CODEC, .at = S_FIELD(codec, int)},
    {.name = "output-codec",
     .kind = S_OUTPUT_CODEC,
     .at = S_FIELD(output_codec, int)},
    {.name = "output-replicas",
     .kind = S_UINT,
     .at = S_FIELD(output_replicas, unsigned),
     .min = 1,
     .max = 16,
     .bad = "must be from 1 to 16",
     .typed = 1},
    {.name = "workers",
     .kind = S_UINT,
     .at = S_FIELD(workers, unsigned),
     .min = 1,
     .max = 64,
     .bad = "must be from 1 to 64"},
    {.name = "slots",
     .kind = S_UINT,
     .at = S_FIELD(slots, unsigned),
     .min = 1,
     .max = 64,
     .bad = "must be from 1 to 64"},
    {.name = "json", .kind = S_ON, .at = S_FIELD(json, int)},
    {.name = "task-mem-mb",
     .kind = S_UINT,
     .at = S_FIELD(task_mem_mb, unsigned),
     .min = 16,
     .max = 1 << 20,
     .bad = "must be 16 to 1048576"},
    {.name = "http", .kind = S_STRING, .at = S_FIELD(http, const char *)},
    {.name = "inline", .kind = S_ON, .at = S_FIELD(inline_run, int)},
    {.name = "master", .kind = S_STRING, .at = S_FIELD(master, const char *)},
    {.name = "wait", .kind = S_ON, .at = S_FIELD(wait, int)},
    {.name = "tasks", .kind = S_ON, .at = S_FIELD(tasks, int)},
    {.name = "attempt",
     .kind = S_UINT,
     .at = S_FIELD(attempt, unsigned),
     .min = 1,
     .max = 1000000,
     .bad = "must be an attempt number (1, 2, ...)"},
    {.name = "deadline-ms",
     .kind = S_UINT,
     .at = S_FIELD(deadline_ms, unsigned),
     .min = 1,
     .max = 1u << 31,
     .bad = "must be a time in ms, from 1"},
    {.name = "dataset", .kind = S_STRING, .at = S_FIELD(dataset, const char *)},
    {.name = "replicas",
     .kind = S_UINT,
     .at = S_FIELD(replicas, unsigned),
     .min = 1,
     .max = 16,
     .bad = "must be from 1 to 16",
     .typed = 1},
    {.name = "shard-size",
     .kind = S_SIZE,
     .at = S_FIELD(shard_size, uint64_t),
     .min = 1,
     .bad = "must be a size like 64M"},
    {.name = "record-size",
     .kind = S_SIZE,
     .at = S_FIELD(record_size, uint64_t),
     .min = 1,
     .bad = "must be a size in bytes"},
    {.name = "whole", .kind = S_ON, .at = S_FIELD(whole, int)},
    {.name = "curve-secret",
     .kind = S_STRING,
     .at = S_FIELD(curve_secret, const char *)},
    {.name = "curve-master",
     .kind = S_STRING,
     .at = S_FIELD(curve_master, const char *)},
};

/* Options every command takes, besides its own. */
#define S_EVERYWHERE "|curve-secret|curve-master|"

/* The option named n[0..len), or NULL. */
static const s_option *s_find(const char *n, size_t len)
{
    for (size_t i = 0; i < QN_ARRAY_LEN(s_options); i++)
        if (strlen(s_options[i].name) == len &&
            memcmp(s_options[i].name, n, len) == 0)
            return &s_options[i];
    return NULL;
}

/* ---- parsing ------------------------------------------------------------- */

/* One parse of a command line. */
typedef struct {
    int argc;
    char **argv;
    int i; /* the argument at hand */
    const char *allowed;
    qn_cli_opts *o;
    char *err; /* where a refusal goes (NULL: stderr) */
    size_t cap;
} s_parser;

/* The variable name's value, or NULL when it is unset or empty. */
static const char *s_env(const char *name)
{
    const char *v = getenv(name);
    return v && *v ? v : NULL;
}

/* What a command has when its command line does not say. */
static void s_defaults(qn_cli_opts *o)
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
    o->master = s_env("QUERN_MASTER");
    if (!o->master)
        o->master = QN_CLIENT_DEFAULT_MASTER;
    o->curve_secret = s_env("QUERN_CURVE_SECRET");
    o->curve_master = s_env("QUERN_CURVE_MASTER");
    o->replicas = 2;
    o->output_replicas = 2;
    o->shard_size = 64ull << 20;
}

/* Refuse val, given to opt (typed as a). */
static int s_bad(const s_parser *p, const s_option *opt, const char *a,
                 const char *val)
{
    char name[64];
    snprintf(name, sizeof name, "%s%s", opt->name[1] ? "--" : "-", opt->name);
    return qn_usage_error(p->err, p->cap, "%s %s, not '%s'",
                          opt->typed ? a : name, opt->bad, val);
}

/* Add val to opt's list. */
static void s_push(s_parser *p, const s_option *opt, const char *val)
{
    const char **list = *(const char ***)((char *)p->o + opt->at);
    size_t *n = (size_t *)((char *)p->o + opt->count);
    /* Each value is an argument of its own: argc of them at the most. */
    assert(*n < (size_t)p->argc);
    list[(*n)++] = val;
}

/* Give opt (typed as a) the value val (NULL for a flag). 0, or a refusal. */
static int s_set(s_parser *p, const s_option *opt, const char *a,
                 const char *val)
{
    void *field = (char *)p->o + opt->at;
    uint64_t v;
    switch (opt->kind) {
    case S_ON:
    case S_OFF: *(int *)field = opt->kind == S_ON; return 0;
    case S_STRING: *(const char **)field = val; return 0;
    case S_PAIR:
        if (!strchr(val, '=') || val[0] == '=')
            return s_bad(p, opt, a, val);
        s_push(p, opt, val);
        return 0;
    case S_LIST: s_push(p, opt, val); return 0;
    case S_PATHS:
        s_push(p, opt, val);
        /* --input takes several paths: up to the next option. */
        while (p->i + 1 < p->argc && p->argv[p->i + 1][0] != '-')
            s_push(p, opt, p->argv[++p->i]);
        return 0;
    case S_UINT:
        if (qn_parse_uint(val, opt->min, opt->max, &v) < 0)
            return s_bad(p, opt, a, val);
        *(unsigned *)field = (unsigned)v;
        return 0;
    case S_SIZE:
        if (qn_parse_size(val, field) < 0 || *(uint64_t *)field < opt->min)
            return s_bad(p, opt, a, val);
        return 0;
    case S_CODEC: {
        char why[200];
        int id = qn_codec_parse(val, why, sizeof why);
        if (id < 0)
            return qn_usage_error(p->err, p->cap, "--codec: %s", why);
        *(int *)field = id;
        return 0;
    }
    case S_OUTPUT_CODEC: {
        char why[200];
        int kind = qn_compress_parse(val, why, sizeof why);
        if (kind < 0)
            return qn_usage_error(p->err, p->cap, "--output-codec: %s", why);
        *(int *)field = kind;
        return 0;
    }
    }
    assert(!"an option of no known kind");
    return QN_EXIT_USAGE;
}

/*
 * Take the option a, argv[p->i], and its value: after its '=' (--name=value
 * only), else the next argument. 0, or a refusal.
 */
static int s_take(s_parser *p, const char *a)
{
    int dashes = a[1] == '-' ? 2 : 1;
    const char *n = a + dashes, *eq = strchr(a, '=');
    size_t len = eq && dashes == 2 ? (size_t)(eq - n) : strlen(n);
    char name[64]; /* "|name|", as the allowed sets spell it */
    if (len >= sizeof name - 2)
        return qn_usage_error(p->err, p->cap,
                              "unknown option '%s' (see quern --help)", a);
    snprintf(name, sizeof name, "|%.*s|", (int)len, n);
    if (!strstr(p->allowed, name) && !strstr(S_EVERYWHERE, name))
        return qn_usage_error(
            p->err, p->cap,
            "unknown option '%s' for this command (see quern --help)", a);
    const s_option *opt = s_find(n, len);
    const char *val = NULL;
    if (!opt || (opt->kind != S_ON && opt->kind != S_OFF)) {
        if (eq && dashes == 2)
            val = eq + 1;
        else if (p->i + 1 < p->argc)
            val = p->argv[++p->i];
        else
            return qn_usage_error(p->err, p->cap, "option %s needs a value", a);
    }
    /* A name that spans entries of the allowed set ("--json|wait") names
     * no option: quern has always taken its value and let it be. */
    return opt ? s_set(p, opt, a, val) : 0;
}

/* Parse p's command line into p->o. 0, or a refusal. */
static int s_parse(s_parser *p)
{
    qn_cli_opts *o = p->o;
    s_defaults(o);
    o->inputs = qn_calloc((size_t)p->argc, sizeof *o->inputs);
    o->args = qn_calloc((size_t)p->argc, sizeof *o->args);
    o->files = qn_calloc((size_t)p->argc, sizeof *o->files);
    o->positional = qn_calloc((size_t)p->argc, sizeof *o->positional);
    for (p->i = 0; p->i < p->argc; p->i++) {
        const char *a = p->argv[p->i];
        if (a[0] != '-' || strcmp(a, "-") == 0) {
            o->positional[o->npositional++] = a;
            continue;
        }
        int rc = s_take(p, a);
        if (rc != 0)
            return rc;
    }
    return 0;
}

int qn_cli_parse(int argc, char **argv, const char *allowed, qn_cli_opts *o,
                 char *err, size_t cap)
{
    if (err)
        err[0] = '\0';
    s_parser p = {.argc = argc,
                  .argv = argv,
                  .allowed = allowed,
                  .o = o,
                  .err = err,
                  .cap = cap};
    return s_parse(&p);
}

void qn_cli_opts_release(qn_cli_opts *o)
{
    qn_curve_release(&o->curve);
    free(o->inputs);
    free(o->args);
    free(o->files);
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

int qn_cli_open(qn_cli_opts *o, qn_client **c)
{
    int rc = qn_cli_curve(o, NULL, 0);
    return rc != 0 ? rc : qn_cli_connect(o, c);
}
