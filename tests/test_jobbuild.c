/*
 * test_jobbuild.c -- the job quern run and quern submit build from their
 * options (master/client/jobbuild.c), and the checks of its plugin before
 * it is sent (master/client/jobplugin.c).
 *
 * The plugins are real ones, $BUILD/jobs/wordcount.so and terasort.so
 * (make all builds them); the bad ones are made here: a patched copy, a
 * text file, a system library without a quern_job_v1.
 */
#include "helpers.h"

#include "../master/client/jobbuild.h"
#include "../master/client/jobplugin.h"
#include "codec.h"
#include "jobspec.h"
#include "util.h"

#include <dlfcn.h>
#include <limits.h>
#include <stdarg.h>
#include <sys/stat.h>
#include <zlib.h>

#define MAX_ARGS 64

static char *dir; /* a private folder, the tests' cwd */
static char wordcount[PATH_MAX], terasort[PATH_MAX]; /* absolute */
static qn_cli_opts o;
static qn_jobbuild j;
static int built; /* j holds a job to release */
static char err[2048];
static char *args[MAX_ARGS + 1];
static int nargs;

/* path of the plugin name in $BUILD/jobs/, made absolute into out. */
static void plugin_path(char *out, const char *name)
{
    const char *build = getenv("BUILD");
    char rel[PATH_MAX];
    snprintf(rel, sizeof rel, "%s/jobs/%s", build && *build ? build : "build",
             name);
    cr_assert_not_null(realpath(rel, out), "no %s (make all builds it)", rel);
}

/* Write text to path in the tests' folder. */
static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f, "cannot create %s", path);
    fputs(text, f);
    fclose(f);
}

static void setup(void)
{
    plugin_path(wordcount, "wordcount.so");
    plugin_path(terasort, "terasort.so");
    dir = qn_test_tmpdir();
    cr_assert_eq(chdir(dir), 0);
    write_file("in", "a b\nc\n");
    unsetenv("QUERN_MASTER");
    memset(&o, 0, sizeof o);
    built = 0;
    err[0] = '\0';
    nargs = 0;
}

static void teardown(void)
{
    if (built)
        qn_jobbuild_release(&j);
    qn_cli_opts_release(&o);
    for (int i = 0; i < nargs; i++)
        free(args[i]);
    if (chdir("/") == 0)
        qn_rmtree(dir);
    free(dir);
    qn_test_leak_check();
}

TestSuite(jobbuild, .init = setup, .fini = teardown);
TestSuite(jobplugin, .init = setup, .fini = teardown);

/* ---- helpers ------------------------------------------------------------- */

/* Parse args[] as quern run does, then build the job: returns what
 * qn_jobbuild_init returns. */
static int build_args(void)
{
    args[nargs] = NULL;
    cr_assert_eq(
        qn_cli_parse(nargs, args, QN_CLI_OPTS_RUN, &o, err, sizeof err), 0,
        "the options were refused: %s", err);
    int rc = qn_jobbuild_init(&j, &o, err, sizeof err);
    built = rc == 0;
    return rc;
}

/* build_args with the NULL-ended arguments. */
__attribute__((sentinel)) static int build(const char *first, ...)
{
    va_list ap;
    va_start(ap, first);
    for (const char *a = first; a; a = va_arg(ap, const char *)) {
        cr_assert_lt(nargs, MAX_ARGS);
        args[nargs++] = qn_strdup(a);
    }
    va_end(ap);
    return build_args();
}

/* Refused with exit status 2 and exactly the message want. */
static void refused(int rc, const char *want)
{
    cr_assert_eq(rc, 2, "exit status %d, not 2 (%s)", rc, want);
    cr_assert_str_eq(err, want);
}

static void accepted(int rc)
{
    cr_assert_eq(rc, 0, "refused: %s", err);
}

/* The tests' folder joined with name, as quern makes a path absolute. */
static const char *here(const char *name)
{
    static char path[2 * PATH_MAX];
    char cwd[PATH_MAX];
    cr_assert_not_null(getcwd(cwd, sizeof cwd));
    snprintf(path, sizeof path, "%s/%s", cwd, name);
    return path;
}

/* A copy of wordcount.so named name, open for writing more (close it). */
static FILE *copy_of_wordcount(const char *name)
{
    FILE *in = fopen(wordcount, "rb"), *out = fopen(name, "wb");
    cr_assert(in && out, "cannot copy %s to %s", wordcount, name);
    char buf[65536];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, in)) > 0)
        fwrite(buf, 1, n, out);
    fclose(in);
    return out;
}

/* An --arg whose name (300 bytes) is longer than the master takes. */
static void long_named_arg(char arg[400])
{
    memset(arg, 'k', 300);
    strcpy(arg + 300, "=v");
}

/* ---- what the options must say ------------------------------------------- */

Test(jobbuild, the_job_is_required_first)
{
    refused(build("--input", "./nothere", "--output", "a b", NULL),
            "--job is required: the plugin (.so) to run");
}

Test(jobbuild, an_input_is_required)
{
    refused(build("--job", wordcount, "--output", "./o", NULL),
            "--input is required: one or more files or folders");
}

Test(jobbuild, an_output_is_required)
{
    refused(build("--job", wordcount, "--input", "./in", NULL),
            "--output is required: the folder for part files");
}

Test(jobbuild, paths_and_arguments_must_be_utf8)
{
    refused(
        build("--job", "./\xff.so", "--input", "./in", "--output", "./o", NULL),
        "'./?.so' is not valid UTF-8; Quern takes UTF-8 paths and "
        "arguments");
}

Test(jobbuild, an_argument_must_be_utf8)
{
    refused(build("--job", wordcount, "--input", "./in", "--output", "./o",
                  "--arg", "k=\xc3", NULL),
            "'k=?' is not valid UTF-8; Quern takes UTF-8 paths and "
            "arguments");
}

Test(jobbuild, the_plugin_is_given_as_a_path)
{
    refused(build("--job", "wc.so", "--input", "./in", "--output", "./o", NULL),
            "--job wc.so: give the plugin as a path, e.g. ./wc.so");
}

Test(jobbuild, a_bare_input_must_be_a_dataset_name)
{
    refused(
        build("--job", wordcount, "--input", "a b", "--output", "./o", NULL),
        "--input a b: not a dataset name, nor a path (paths contain a "
        "'/': ./a b)");
}

Test(jobbuild, an_input_path_must_exist)
{
    refused(build("--job", wordcount, "--input", "./in", "./nothere",
                  "--output", "./o", NULL),
            "--input ./nothere: No such file or directory");
}

Test(jobbuild, a_bare_output_must_be_a_dataset_name)
{
    refused(build("--job", wordcount, "--input", "./in", "--output", ".hidden",
                  NULL),
            "--output .hidden: not a dataset name, nor a path (paths contain "
            "a '/': ./.hidden)");
}

Test(jobbuild, what_the_master_would_refuse_is_refused_here)
{
    char arg[400];
    long_named_arg(arg);
    int rc = build("--job", wordcount, "--input", "./in", "--output", "./o",
                   "--arg", arg, NULL);
    cr_assert_eq(rc, 2);
    cr_assert_not_null(strstr(err, "a name longer than 256 bytes"), "%s", err);
}

Test(jobbuild, a_plugin_larger_than_a_message_is_refused)
{
    /* wordcount.so and 16 MiB more: still a plugin, too big to send. */
    FILE *out = copy_of_wordcount("big.so");
    cr_assert_eq(ftruncate(fileno(out), 16 << 20), 0);
    fclose(out);
    refused(
        build("--job", "./big.so", "--input", "./in", "--output", "./o", NULL),
        "--job ./big.so: cannot read it: larger than a message may be "
        "(15 MiB)");
}

/* ---- the job built ------------------------------------------------------- */

Test(jobbuild, a_job_carries_its_options)
{
    accepted(build("--job", wordcount, "--input", "./in", "--output", "./o",
                   "-R", "3", "--split-size", "2M", "--sort-mb", "8",
                   "--max-attempts", "2", "--compress-level", "5", "--codec",
                   "lz4", "--no-speculation", "--skip-bad-records", NULL));
    const Quern__JobSpec *s = &j.spec;
    cr_assert_str_eq(s->name, "wordcount");
    cr_assert_str_eq(s->plugin, wordcount);
    cr_assert_eq(s->input_kind, QUERN__INPUT_KIND__LINES);
    cr_assert_eq(s->nreduce, 3);
    cr_assert_eq(s->split_size, 2 << 20);
    cr_assert_eq(s->sort_mb, 8);
    cr_assert_eq(s->max_attempts, 2);
    cr_assert_eq(s->compress_level, 5);
    cr_assert_eq(s->codec, QN_CODEC_LZ4);
    cr_assert_eq(s->speculation, 0);
    cr_assert_eq(s->skip_bad_records, 1);
    cr_assert_eq(s->output_dataset, 0);
    cr_assert_eq(s->n_args, 0);
}

Test(jobbuild, paths_are_made_absolute_and_keep_what_was_given)
{
    cr_assert_eq(mkdir("sub", 0755), 0);
    write_file("sub/x", "x\n");
    accepted(build("--job", wordcount, "--input", "./in", "././sub/x", "sub/",
                   "--output", "out/", NULL));
    const Quern__JobSpec *s = &j.spec;
    cr_assert_eq(s->n_inputs, 3);
    cr_assert_str_eq(s->inputs[0]->given, "./in");
    cr_assert_str_eq(s->inputs[0]->path, here("in"));
    cr_assert_str_eq(s->inputs[1]->given, "././sub/x");
    cr_assert_str_eq(s->inputs[1]->path, here("sub/x"));
    cr_assert_str_eq(s->inputs[2]->path, here("sub"));
    cr_assert_str_eq(s->output, here("out"));
}

Test(jobbuild, datasets_stay_names)
{
    accepted(build("--job", wordcount, "--input", "words", "./in", "--output",
                   "counts", "--output-replicas", "3", NULL));
    const Quern__JobSpec *s = &j.spec;
    cr_assert_str_eq(s->inputs[0]->given, "words");
    cr_assert_str_eq(s->inputs[0]->path, "words");
    cr_assert_str_eq(s->inputs[1]->path, here("in"));
    cr_assert_str_eq(s->output, "counts");
    cr_assert_eq(s->output_dataset, 1);
    cr_assert_eq(s->output_replicas, 3);
}

Test(jobbuild, output_replicas_matter_only_for_a_dataset)
{
    accepted(build("--job", wordcount, "--input", "./in", "--output", "./o",
                   "--output-replicas", "3", NULL));
    cr_assert_eq(j.spec.output_replicas, 0);
}

Test(jobbuild, args_are_cut_at_their_first_equals_sign)
{
    accepted(build("--job", wordcount, "--input", "./in", "--output", "./o",
                   "--arg", "top=10", "--arg", "expr=a=b", "--arg",
                   "empty=", NULL));
    const Quern__JobSpec *s = &j.spec;
    cr_assert_eq(s->n_args, 3);
    cr_assert_str_eq(s->args[0]->name, "top");
    cr_assert_str_eq(s->args[0]->value, "10");
    cr_assert_str_eq(s->args[1]->name, "expr");
    cr_assert_str_eq(s->args[1]->value, "a=b");
    cr_assert_str_eq(s->args[2]->name, "empty");
    cr_assert_str_eq(s->args[2]->value, "");
}

Test(jobbuild, the_plugins_bytes_go_with_the_job)
{
    accepted(
        build("--job", wordcount, "--input", "./in", "--output", "./o", NULL));
    FILE *f = fopen(wordcount, "rb");
    cr_assert_not_null(f);
    char *bytes = qn_malloc(j.plugin.len + 1);
    size_t n = fread(bytes, 1, j.plugin.len + 1, f);
    fclose(f);
    cr_assert_eq(n, j.plugin.len, "%zu bytes read, %zu in the job", n,
                 j.plugin.len);
    cr_assert_eq(memcmp(bytes, j.plugin.data, n), 0);
    free(bytes);
}

Test(jobbuild, many_inputs_are_each_made_absolute)
{
    char name[32];
    const int n = 40;
    for (int i = 0; i < n; i++) {
        snprintf(name, sizeof name, "./f%02d", i);
        write_file(name, "x\n");
        args[nargs++] = qn_strdup(name);
    }
    memmove(args + 3, args, (size_t)n * sizeof *args);
    args[0] = qn_strdup("--job");
    args[1] = qn_strdup(wordcount);
    args[2] = qn_strdup("--input");
    nargs += 3;
    args[nargs++] = qn_strdup("--output");
    args[nargs++] = qn_strdup("./o");
    accepted(build_args());
    cr_assert_eq(j.spec.n_inputs, (size_t)n);
    for (int i = 0; i < n; i++) {
        snprintf(name, sizeof name, "f%02d", i);
        cr_assert_str_eq(j.spec.inputs[i]->path, here(name));
    }
}

Test(jobbuild, a_refused_job_is_left_empty)
{
    char arg[400];
    long_named_arg(arg);
    /* Refused last, by the master's checks: all was built by then. */
    cr_assert_eq(build("--job", wordcount, "--input", "./in", "--output", "./o",
                       "--arg", arg, NULL),
                 2);
    cr_assert_eq(j.nowned, 0);
    cr_assert_null(j.owned);
    cr_assert_null(j.plugin.data);
    cr_assert_null(j.inputs);
    cr_assert_null(j.args);
    cr_assert_eq(j.spec.n_inputs, 0);
}

/* ---- the plugin's checks ------------------------------------------------- */

Test(jobplugin, a_plugin_says_its_name_and_how_it_reads)
{
    Quern__JobSpec spec = QUERN__JOB_SPEC__INIT;
    cr_assert_eq(qn_jobplugin_check(terasort, &spec, err, sizeof err), 0, "%s",
                 err);
    cr_assert_str_eq(spec.name, "terasort");
    cr_assert_eq(spec.input_kind, QUERN__INPUT_KIND__FIXED);
    cr_assert_eq(spec.record_size, 100);
    free(spec.name);
}

Test(jobplugin, a_job_without_a_name_is_named_for_its_file)
{
    char *n = qn_jobplugin_name(NULL, "./lib/wc.so");
    cr_assert_str_eq(n, "wc.so");
    free(n);
    n = qn_jobplugin_name("", "wc.so");
    cr_assert_str_eq(n, "wc.so");
    free(n);
}

Test(jobplugin, a_name_is_made_printable)
{
    char *n = qn_jobplugin_name("tab\there \xc3\xa9 del\x7f~", "./p.so");
    cr_assert_str_eq(n, "tab?here ?? del?~");
    free(n);
}

Test(jobplugin, a_name_is_cut_to_the_limit)
{
    char longer[QN_JOBSPEC_NAME_MAX + 10];
    memset(longer, 'n', sizeof longer - 1);
    longer[sizeof longer - 1] = '\0';
    char *n = qn_jobplugin_name(longer, "./p.so");
    cr_assert_eq(strlen(n), QN_JOBSPEC_NAME_MAX);
    cr_assert_eq(strncmp(n, longer, QN_JOBSPEC_NAME_MAX), 0);
    free(n);
}

Test(jobplugin, a_missing_plugin_is_refused)
{
    Quern__JobSpec spec = QUERN__JOB_SPEC__INIT;
    refused(qn_jobplugin_check("./nothere.so", &spec, err, sizeof err),
            "--job ./nothere.so: No such file or directory");
}

Test(jobplugin, a_file_that_is_not_elf_is_refused_unloaded)
{
    Quern__JobSpec spec = QUERN__JOB_SPEC__INIT;
    write_file("text.so", "#!/bin/sh\necho not a plugin\n");
    refused(qn_jobplugin_check("./text.so", &spec, err, sizeof err),
            "--job ./text.so: cannot load it as a shared object: not an ELF "
            "file");
}

Test(jobplugin, an_object_for_another_machine_is_refused_unloaded)
{
    FILE *out = copy_of_wordcount("arm.so");
    fseek(out, 18, SEEK_SET); /* e_machine: 183, AArch64 (or, there, x86) */
    fputc(183, out);
    fputc(0, out);
    fclose(out);
    Quern__JobSpec spec = QUERN__JOB_SPEC__INIT;
    cr_assert_eq(qn_jobplugin_check("./arm.so", &spec, err, sizeof err), 2);
    cr_assert_not_null(strstr(err, "--job ./arm.so: not a shared object for "
                                   "this machine: built for ELF machine 183"),
                       "%s", err);
}

Test(jobplugin, a_library_without_quern_job_v1_is_refused)
{
    /* zlib: a shared object for this machine, but no plugin. */
    Dl_info info;
    cr_assert_neq(dladdr((void *)zlibVersion, &info), 0);
    cr_assert_not_null(info.dli_fname);
    char want[PATH_MAX + 200];
    snprintf(want, sizeof want,
             "--job %s: not a Quern plugin: it does not define quern_job_v1 "
             "(define the job with QUERN_JOB(...))",
             info.dli_fname);
    Quern__JobSpec spec = QUERN__JOB_SPEC__INIT;
    refused(qn_jobplugin_check(info.dli_fname, &spec, err, sizeof err), want);
}

static int s_map(quern_task *t, const void *k, size_t kl, const void *v,
                 size_t vl)
{
    (void)t, (void)k, (void)kl, (void)v, (void)vl;
    return 0;
}

static int s_reduce(quern_task *t, const void *k, size_t kl, quern_values *vs)
{
    (void)t, (void)k, (void)kl, (void)vs;
    return 0;
}

/* A quern_job_v1 this quern runs. */
static quern_job good_entry(void)
{
    quern_job e = {
        .abi = QUERN_ABI, .name = "t", .map = s_map, .reduce = s_reduce};
    return e;
}

Test(jobplugin, an_entry_with_map_and_reduce_is_taken)
{
    quern_job e = good_entry();
    cr_assert_eq(qn_jobplugin_check_entry("./p.so", &e, err, sizeof err), 0,
                 "%s", err);
    e.input = QUERN_FIXED;
    e.record_size = QN_JOBSPEC_RECORD_MAX;
    cr_assert_eq(qn_jobplugin_check_entry("./p.so", &e, err, sizeof err), 0,
                 "%s", err);
}

Test(jobplugin, an_entry_for_another_abi_is_refused)
{
    quern_job e = good_entry();
    e.abi = QUERN_ABI + 1;
    char want[200];
    snprintf(want, sizeof want,
             "--job ./p.so: built for plugin ABI %u, but this quern runs ABI "
             "%u; rebuild it against this quern.h",
             QUERN_ABI + 1, QUERN_ABI);
    refused(qn_jobplugin_check_entry("./p.so", &e, err, sizeof err), want);
}

Test(jobplugin, an_entry_without_map_or_reduce_is_refused)
{
    quern_job e = good_entry();
    e.map = NULL;
    refused(qn_jobplugin_check_entry("./p.so", &e, err, sizeof err),
            "--job ./p.so: the job has no map function");
    e = good_entry();
    e.reduce = NULL;
    refused(qn_jobplugin_check_entry("./p.so", &e, err, sizeof err),
            "--job ./p.so: the job has no reduce function");
}

Test(jobplugin, an_unknown_input_kind_is_refused)
{
    quern_job e = good_entry();
    e.input = (enum quern_input)7;
    refused(qn_jobplugin_check_entry("./p.so", &e, err, sizeof err),
            "--job ./p.so: unknown input kind 7");
}

Test(jobplugin, fixed_records_need_a_size_within_the_limit)
{
    quern_job e = good_entry();
    e.input = QUERN_FIXED;
    refused(qn_jobplugin_check_entry("./p.so", &e, err, sizeof err),
            "--job ./p.so: QUERN_FIXED input needs a record_size");
    e.record_size = QN_JOBSPEC_RECORD_MAX + 1;
    char want[200];
    snprintf(want, sizeof want,
             "--job ./p.so: QUERN_FIXED record_size %d is over the limit of "
             "%d bytes",
             QN_JOBSPEC_RECORD_MAX + 1, QN_JOBSPEC_RECORD_MAX);
    refused(qn_jobplugin_check_entry("./p.so", &e, err, sizeof err), want);
}
