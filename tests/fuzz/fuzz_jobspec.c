/*
 * fuzz_jobspec.c -- libFuzzer target: a job as a client describes it.
 *
 * The first byte says what the rest is:
 *
 *   0  a packed SubmitJob, checked as the master checks one before it
 *      accepts the job (qn_jobspec_check: fields, inputs, output, and the
 *      plugin's bytes, whose ELF tables are read, never loaded);
 *   1  quern's command line: NUL-separated arguments, parsed as quern run
 *      and quern submit parse theirs (qn_cli_parse), or, when the second
 *      byte is odd, with every option allowed;
 *   2  a plugin's bytes alone, sent with a good job (so the fuzzer works
 *      on the ELF reader without a protobuf length to keep right).
 *
 * What is accepted must hold up: a job qn_jobspec_check accepts has its
 * fields within the limits and a plugin whose bytes name quern_job_v1; a
 * parse that succeeds leaves options in their ranges and pointing into
 * argv; a refusal always says why, in one line of UTF-8 (the master
 * sends it back in a reply, which must be UTF-8).
 */
#include "../../master/client/cli.h"
#include "jobspec.h"
#include "codec.h"
#include "elfcheck.h"
#include "shipped.h"
#include "util.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_ARGS 256 /* arguments taken from one input */

/* Stop here, so the fuzzer keeps the input, when an invariant is broken. */
static void s_check(int ok)
{
    if (!ok)
        abort();
}

/* What must hold of a job qn_jobspec_check accepted. */
static void s_accepted(const Quern__JobSpec *s, const uint8_t *plugin,
                       size_t len)
{
    s_check(s->nreduce >= 1 && s->nreduce <= QN_JOBSPEC_REDUCERS_MAX);
    s_check(s->n_inputs >= 1 && s->n_inputs <= QN_JOBSPEC_INPUTS_MAX);
    for (size_t i = 0; i < s->n_inputs; i++) {
        const char *g = s->inputs[i]->given, *p = s->inputs[i]->path;
        s_check(g[0] != '\0');
        s_check(strchr(g, '/') ? p[0] == '/' : qn_id_ok(g));
    }
    s_check(s->output[0] == '/' || qn_id_ok(s->output));
    s_check(strlen(s->name) <= QN_JOBSPEC_NAME_MAX);
    s_check(s->n_args <= QN_JOBSPEC_ARGS_MAX);
    for (size_t i = 0; i < s->n_args; i++)
        s_check(s->args[i]->name[0] != '\0');
    s_check(s->split_size >= QN_JOBSPEC_SPLIT_MIN);
    s_check(s->sort_mb >= 1 && s->sort_mb <= QN_JOBSPEC_SORT_MB_MAX);
    s_check(s->max_attempts >= 1 && s->max_attempts <= QN_JOBSPEC_ATTEMPTS_MAX);
    s_check(s->compress_level <= QN_JOBSPEC_LEVEL_MAX);
    s_check(s->codec < QN_CODEC_COUNT);
    s_check(s->output_replicas <= QN_JOBSPEC_REPLICAS_MAX);
    s_check((unsigned)s->input_kind <= QUERN__INPUT_KIND__FIXED);
    if (s->input_kind == QUERN__INPUT_KIND__FIXED)
        s_check(s->record_size >= 1 && s->record_size <= QN_JOBSPEC_RECORD_MAX);
    /* Shipped files: names a folder holds, each once; cache names. */
    s_check(s->n_files <= QN_JOBSPEC_FILES_MAX);
    for (size_t i = 0; i < s->n_files; i++) {
        s_check(qn_shipped_name_ok(s->files[i]->name) &&
                qn_shipped_hash_ok(s->files[i]->hash));
        for (size_t k = 0; k < i; k++)
            s_check(strcmp(s->files[k]->name, s->files[i]->name) != 0);
    }
    /* The entry point's name is in the bytes, and the header is right. */
    s_check(len > 0 && memmem(plugin, len, "quern_job_v1", 13) != NULL);
    char why[300];
    s_check(qn_elfcheck_header(plugin, len, why, sizeof why) == 0);
}

static void s_job(const Quern__JobSpec *spec, const uint8_t *plugin, size_t len)
{
    char err[1024] = "";
    if (qn_jobspec_check(spec, plugin, len, err, sizeof err) == 0)
        s_accepted(spec, plugin, len);
    else
        s_check(err[0] != '\0' && strchr(err, '\n') == NULL &&
                qn_utf8_valid(err));
}

static void s_submit(const uint8_t *data, size_t size)
{
    Quern__SubmitJob *sj = quern__submit_job__unpack(NULL, size, data);
    if (!sj)
        return;
    if (sj->spec) { /* the wire refuses a SubmitJob without one */
        s_job(sj->spec, sj->plugin_data.data, sj->plugin_data.len);
        char err[1024] = "";
        if (qn_jobspec_check_files(sj->spec, sj->file_data, sj->n_file_data,
                                   err, sizeof err) < 0)
            s_check(err[0] != '\0' && strchr(err, '\n') == NULL &&
                    qn_utf8_valid(err));
    }
    quern__submit_job__free_unpacked(sj, NULL);
}

static void s_plugin(const uint8_t *data, size_t size)
{
    Quern__JobSpec spec = QUERN__JOB_SPEC__INIT;
    Quern__InputPath in = QUERN__INPUT_PATH__INIT, *ins[1] = {&in};
    in.given = (char *)"./in";
    in.path = (char *)"/data/in";
    spec.name = (char *)"fuzz";
    spec.plugin = (char *)"/jobs/fuzz.so";
    spec.inputs = ins;
    spec.n_inputs = 1;
    spec.output = (char *)"/data/out";
    spec.nreduce = 1;
    spec.split_size = 1 << 20;
    spec.sort_mb = 1;
    spec.max_attempts = 1;
    spec.codec = QN_CODEC_ZLIB;
    s_job(&spec, data, size);
    /* The reader alone, on a name found anywhere in the bytes. */
    qn_elfsym sym;
    char why[300];
    int rc =
        qn_elfcheck_symbol(data, size, "quern_emit", &sym, why, sizeof why);
    s_check(rc != 1 || memmem(data, size, "quern_emit", 11) != NULL);
}

/* The options quern run and quern submit take, and all of them. */
static const char *const ALLOWED[] = {
    "|job|input|output|R|arg|split-size|sort-mb|max-attempts|"
    "no-speculation|skip-bad-records|compress-level|codec|output-replicas|"
    "workers|slots|json|task-mem-mb|http|inline|",
    "|job|input|output|R|arg|split-size|sort-mb|max-attempts|"
    "no-speculation|skip-bad-records|compress-level|codec|output-replicas|"
    "workers|slots|json|task-mem-mb|http|inline|master|wait|dataset|"
    "replicas|shard-size|record-size|whole|tasks|attempt|",
};

/* Is p one of argv's strings, or inside one? */
static int s_in_argv(const char *p, char **argv, int argc)
{
    for (int i = 0; i < argc; i++)
        if (p >= argv[i] && p <= argv[i] + strlen(argv[i]))
            return 1;
    return 0;
}

static void s_argv(const uint8_t *data, size_t size)
{
    if (size < 1)
        return;
    const char *allowed = ALLOWED[data[0] & 1];
    data++;
    size--;
    /* A private copy, NUL-terminated: the arguments are cut at NULs. */
    char *buf = qn_malloc(size + 1);
    memcpy(buf, data, size);
    buf[size] = '\0';
    char *argv[MAX_ARGS + 1];
    int argc = 0;
    for (char *p = buf; p < buf + size && argc < MAX_ARGS; p += strlen(p) + 1)
        argv[argc++] = p;
    argv[argc] = NULL;
    qn_cli_opts o;
    memset(&o, 0, sizeof o);
    char err[1024];
    int rc = qn_cli_parse(argc, argv, allowed, &o, err, sizeof err);
    if (rc != 0) {
        s_check(err[0] != '\0');
    } else {
        s_check(o.nreduce >= 1 && o.nreduce <= QN_JOBSPEC_REDUCERS_MAX);
        s_check(o.sort_mb >= 1 && o.sort_mb <= QN_JOBSPEC_SORT_MB_MAX);
        s_check(o.max_attempts >= 1 &&
                o.max_attempts <= QN_JOBSPEC_ATTEMPTS_MAX);
        s_check(o.compress_level <= QN_JOBSPEC_LEVEL_MAX);
        s_check(o.codec >= 0 && o.codec < QN_CODEC_COUNT);
        s_check(o.split_size >= QN_JOBSPEC_SPLIT_MIN);
        s_check(o.workers >= 1 && o.workers <= 64);
        s_check(o.slots >= 1 && o.slots <= 64);
        s_check(o.replicas >= 1 && o.replicas <= QN_JOBSPEC_REPLICAS_MAX);
        s_check(o.output_replicas >= 1 &&
                o.output_replicas <= QN_JOBSPEC_REPLICAS_MAX);
        s_check(o.ninputs + o.nargs + o.npositional <= (size_t)argc);
        for (size_t i = 0; i < o.ninputs; i++)
            s_check(s_in_argv(o.inputs[i], argv, argc));
        for (size_t i = 0; i < o.nargs; i++)
            s_check(strchr(o.args[i], '=') && o.args[i][0] != '=');
        for (size_t i = 0; i < o.npositional; i++)
            s_check(s_in_argv(o.positional[i], argv, argc));
        s_check(!o.job || s_in_argv(o.job, argv, argc));
        s_check(!o.output || s_in_argv(o.output, argv, argc));
    }
    qn_cli_opts_release(&o);
    free(buf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    switch (data[0] % 3) {
    case 0: s_submit(data + 1, size - 1); break;
    case 1: s_argv(data + 1, size - 1); break;
    default: s_plugin(data + 1, size - 1); break;
    }
    return 0;
}
