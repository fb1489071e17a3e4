/*
 * test_opts.c -- the quern command's option parser (master/client/opts.c):
 * every kind of option, each command's set, the defaults, and the exact
 * message and exit status of each refusal (quern prints them as they are).
 */
#include "helpers.h"

#include "../master/client/opts.h"
#include "codec.h"
#include "util.h"

#include <stdarg.h>

#define MAX_ARGS 64

static qn_cli_opts o;
static char err[1024];
static char *args[MAX_ARGS + 1];
static int nargs;

static void setup(void)
{
    unsetenv("QUERN_MASTER");
    unsetenv("QUERN_CURVE_SECRET");
    unsetenv("QUERN_CURVE_MASTER");
    memset(&o, 0, sizeof o);
    err[0] = '\0';
    nargs = 0;
}

static void teardown(void)
{
    qn_cli_opts_release(&o);
    for (int i = 0; i < nargs; i++)
        free(args[i]);
    qn_test_leak_check();
}

TestSuite(opts, .init = setup, .fini = teardown);

/* ---- helpers ------------------------------------------------------------- */

/* Parse the NULL-ended arguments as a command taking allowed would:
 * returns what qn_cli_parse returns. The arguments stay in args[]. */
__attribute__((sentinel)) static int parse(const char *allowed, ...)
{
    va_list ap;
    va_start(ap, allowed);
    for (const char *a; (a = va_arg(ap, const char *));) {
        cr_assert_lt(nargs, MAX_ARGS);
        args[nargs++] = qn_strdup(a);
    }
    va_end(ap);
    args[nargs] = NULL;
    return qn_cli_parse(nargs, args, allowed, &o, err, sizeof err);
}

/* The parse was refused, with exit status 2 and exactly the message want. */
static void refused(int rc, const char *want)
{
    cr_assert_eq(rc, 2, "exit status %d, not 2 (%s)", rc, want);
    cr_assert_str_eq(err, want);
}

static void accepted(int rc)
{
    cr_assert_eq(rc, 0, "refused: %s", err);
    cr_assert_str_eq(err, "", "a message though accepted: %s", err);
}

/* Start again with fresh options and no arguments. */
static void again(void)
{
    teardown();
    setup();
}

/* ---- defaults ------------------------------------------------------------ */

Test(opts, defaults_when_nothing_is_given)
{
    accepted(parse(QN_CLI_OPTS_RUN, NULL));
    cr_assert_null(o.job);
    cr_assert_eq(o.ninputs, 0);
    cr_assert_null(o.output);
    cr_assert_eq(o.nreduce, 1);
    cr_assert_eq(o.nargs, 0);
    cr_assert_eq(o.split_size, 64ull << 20);
    cr_assert_eq(o.sort_mb, 64);
    cr_assert_eq(o.max_attempts, 4);
    cr_assert_eq(o.compress_level, 1);
    cr_assert_eq(o.codec, QN_CODEC_ZLIB);
    cr_assert_eq(o.slots, 1);
    cr_assert_eq(o.speculation, 1);
    cr_assert_eq(o.skip_bad_records + o.wait + o.json + o.whole + o.tasks +
                     o.inline_run,
                 0);
    cr_assert_str_eq(o.master, "tcp://127.0.0.1:7070");
    cr_assert_null(o.curve_secret);
    cr_assert_null(o.curve_master);
    cr_assert_null(o.dataset);
    cr_assert_eq(o.replicas, 2);
    cr_assert_eq(o.output_replicas, 2);
    cr_assert_eq(o.shard_size, 64ull << 20);
    cr_assert_eq(o.record_size, 0);
    cr_assert_eq(o.task_mem_mb, 0);
    cr_assert_null(o.http);
    cr_assert_eq(o.attempt, 0);
    cr_assert_eq(o.npositional, 0);
}

Test(opts, workers_default_to_one_per_core_up_to_64)
{
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    accepted(parse(QN_CLI_OPTS_RUN, NULL));
    cr_assert_eq(o.workers, cores < 1 ? 1 : cores > 64 ? 64 : cores);
}

Test(opts, master_comes_from_QUERN_MASTER_unless_it_is_empty)
{
    setenv("QUERN_MASTER", "tcp://example:1", 1);
    accepted(parse(QN_CLI_OPTS_JOBS, NULL));
    cr_assert_str_eq(o.master, "tcp://example:1");
    again();
    setenv("QUERN_MASTER", "", 1);
    accepted(parse(QN_CLI_OPTS_JOBS, NULL));
    cr_assert_str_eq(o.master, "tcp://127.0.0.1:7070");
}

Test(opts, master_option_beats_QUERN_MASTER)
{
    setenv("QUERN_MASTER", "tcp://example:1", 1);
    accepted(parse(QN_CLI_OPTS_JOBS, "--master", "tcp://other:2", NULL));
    cr_assert_str_eq(o.master, "tcp://other:2");
}

Test(opts, curve_keys_come_from_their_variables_unless_empty)
{
    setenv("QUERN_CURVE_SECRET", "me.key", 1);
    setenv("QUERN_CURVE_MASTER", "", 1);
    accepted(parse(QN_CLI_OPTS_JOBS, NULL));
    cr_assert_str_eq(o.curve_secret, "me.key");
    cr_assert_null(o.curve_master);
    again();
    setenv("QUERN_CURVE_SECRET", "", 1);
    setenv("QUERN_CURVE_MASTER", "master.pub", 1);
    accepted(parse(QN_CLI_OPTS_JOBS, NULL));
    cr_assert_null(o.curve_secret);
    cr_assert_str_eq(o.curve_master, "master.pub");
}

Test(opts, curve_options_beat_their_variables)
{
    setenv("QUERN_CURVE_SECRET", "me.key", 1);
    setenv("QUERN_CURVE_MASTER", "master.pub", 1);
    accepted(parse(QN_CLI_OPTS_JOBS, "--curve-secret", "other.key",
                   "--curve-master=other.pub", NULL));
    cr_assert_str_eq(o.curve_secret, "other.key");
    cr_assert_str_eq(o.curve_master, "other.pub");
}

/* ---- kinds of options ---------------------------------------------------- */

Test(opts, a_string_option_points_into_argv)
{
    accepted(parse(QN_CLI_OPTS_RUN, "--job", "./j.so", "--output", "./o",
                   "--http", "127.0.0.1:0", NULL));
    cr_assert_eq(o.job, args[1]);
    cr_assert_eq(o.output, args[3]);
    cr_assert_eq(o.http, args[5]);
}

Test(opts, a_value_may_follow_an_equals_sign)
{
    accepted(
        parse(QN_CLI_OPTS_RUN, "--job=./a=b.so", "--sort-mb=8", "--R=3", NULL));
    cr_assert_str_eq(o.job, "./a=b.so");
    cr_assert_eq(o.job, args[0] + strlen("--job="));
    cr_assert_eq(o.sort_mb, 8);
    cr_assert_eq(o.nreduce, 3);
}

Test(opts, one_dash_is_as_good_as_two)
{
    accepted(parse(QN_CLI_OPTS_RUN, "-job", "./j.so", "--R", "5", "-sort-mb",
                   "9", NULL));
    cr_assert_str_eq(o.job, "./j.so");
    cr_assert_eq(o.nreduce, 5);
    cr_assert_eq(o.sort_mb, 9);
}

Test(opts, flags_set_their_field)
{
    accepted(parse(QN_CLI_OPTS_RUN, "--json", "--skip-bad-records", "--inline",
                   NULL));
    cr_assert_eq(o.json, 1);
    cr_assert_eq(o.skip_bad_records, 1);
    cr_assert_eq(o.inline_run, 1);
    again();
    accepted(parse(QN_CLI_OPTS_SUBMIT, "--wait", NULL));
    cr_assert_eq(o.wait, 1);
    again();
    accepted(parse(QN_CLI_OPTS_STATUS, "--tasks", NULL));
    cr_assert_eq(o.tasks, 1);
    again();
    accepted(parse(QN_CLI_OPTS_PUT, "--whole", NULL));
    cr_assert_eq(o.whole, 1);
}

Test(opts, no_speculation_turns_speculation_off)
{
    accepted(parse(QN_CLI_OPTS_RUN, "--no-speculation", NULL));
    cr_assert_eq(o.speculation, 0);
}

Test(opts, a_flag_takes_no_value)
{
    /* Not the next argument, and what follows an '=' is let go. */
    accepted(parse(QN_CLI_OPTS_RUN, "--json", "x", "--inline=no", NULL));
    cr_assert_eq(o.json, 1);
    cr_assert_eq(o.inline_run, 1);
    cr_assert_eq(o.npositional, 1);
    cr_assert_str_eq(o.positional[0], "x");
}

/* An option taking a number, a value in its range and one on each side. */
typedef struct {
    const char *allowed, *name; /* as typed */
    const char *low, *high;     /* the range's ends, accepted */
    const char *below, *above;  /* refused */
    const char *says;           /* the refusal, before ", not '...'" */
    size_t at;                  /* its unsigned field in qn_cli_opts */
} number;

#define AT(f) offsetof(qn_cli_opts, f)

static const number numbers[] = {
    {QN_CLI_OPTS_RUN, "-R", "1", "100000", "0", "100001",
     "-R must be a number of reducers from 1 to 100000", AT(nreduce)},
    {QN_CLI_OPTS_RUN, "--sort-mb", "1", "4095", "0", "4096",
     "--sort-mb must be from 1 to 4095", AT(sort_mb)},
    {QN_CLI_OPTS_RUN, "--max-attempts", "1", "100", "0", "101",
     "--max-attempts must be from 1 to 100", AT(max_attempts)},
    {QN_CLI_OPTS_RUN, "--compress-level", "0", "9", "-1", "10",
     "--compress-level must be from 0 to 9", AT(compress_level)},
    {QN_CLI_OPTS_RUN, "--workers", "1", "64", "0", "65",
     "--workers must be from 1 to 64", AT(workers)},
    {QN_CLI_OPTS_RUN, "--slots", "1", "64", "0", "65",
     "--slots must be from 1 to 64", AT(slots)},
    {QN_CLI_OPTS_RUN, "--task-mem-mb", "16", "1048576", "15", "1048577",
     "--task-mem-mb must be 16 to 1048576", AT(task_mem_mb)},
    {QN_CLI_OPTS_RUN, "--output-replicas", "1", "16", "0", "17",
     "--output-replicas must be from 1 to 16", AT(output_replicas)},
    {QN_CLI_OPTS_PUT, "--replicas", "1", "16", "0", "17",
     "--replicas must be from 1 to 16", AT(replicas)},
    {QN_CLI_OPTS_LOGS, "--attempt", "1", "1000000", "0", "1000001",
     "--attempt must be an attempt number (1, 2, ...)", AT(attempt)},
};

static unsigned field(size_t at)
{
    unsigned v;
    memcpy(&v, (const char *)&o + at, sizeof v);
    return v;
}

Test(opts, numbers_are_taken_up_to_the_ends_of_their_range)
{
    for (size_t i = 0; i < QN_ARRAY_LEN(numbers); i++) {
        const number *n = &numbers[i];
        accepted(parse(n->allowed, n->name, n->low, NULL));
        cr_assert_eq(field(n->at), strtoul(n->low, NULL, 10), "%s %s", n->name,
                     n->low);
        again();
        accepted(parse(n->allowed, n->name, n->high, NULL));
        cr_assert_eq(field(n->at), strtoul(n->high, NULL, 10), "%s %s", n->name,
                     n->high);
        again();
    }
}

Test(opts, numbers_past_their_range_are_refused_saying_the_range)
{
    char want[256];
    for (size_t i = 0; i < QN_ARRAY_LEN(numbers); i++) {
        const number *n = &numbers[i];
        const char *bad[] = {n->below, n->above, "7x", ""};
        for (size_t k = 0; k < QN_ARRAY_LEN(bad); k++) {
            snprintf(want, sizeof want, "%s, not '%s'", n->says, bad[k]);
            refused(parse(n->allowed, n->name, bad[k], NULL), want);
            again();
        }
    }
}

Test(opts, replicas_refusals_name_the_option_as_typed)
{
    refused(parse(QN_CLI_OPTS_PUT, "--replicas=0", NULL),
            "--replicas=0 must be from 1 to 16, not '0'");
    again();
    refused(parse(QN_CLI_OPTS_RUN, "-output-replicas", "x", NULL),
            "-output-replicas must be from 1 to 16, not 'x'");
}

Test(opts, sizes_take_a_unit)
{
    accepted(parse(QN_CLI_OPTS_RUN, "--split-size", "1K", NULL));
    cr_assert_eq(o.split_size, 1024);
    again();
    accepted(parse(QN_CLI_OPTS_RUN, "--split-size", "128M", NULL));
    cr_assert_eq(o.split_size, 128ull << 20);
    again();
    accepted(parse(QN_CLI_OPTS_PUT, "--shard-size", "1", "--record-size", "100",
                   NULL));
    cr_assert_eq(o.shard_size, 1);
    cr_assert_eq(o.record_size, 100);
}

Test(opts, sizes_below_their_least_or_not_sizes_are_refused)
{
    refused(parse(QN_CLI_OPTS_RUN, "--split-size", "1023", NULL),
            "--split-size must be a size of at least 1K, like 64M, not "
            "'1023'");
    again();
    refused(parse(QN_CLI_OPTS_RUN, "--split-size", "big", NULL),
            "--split-size must be a size of at least 1K, like 64M, not "
            "'big'");
    again();
    refused(parse(QN_CLI_OPTS_PUT, "--shard-size", "0", NULL),
            "--shard-size must be a size like 64M, not '0'");
    again();
    refused(parse(QN_CLI_OPTS_PUT, "--record-size", "0", NULL),
            "--record-size must be a size in bytes, not '0'");
    again();
    refused(parse(QN_CLI_OPTS_PUT, "--record-size", "1Q", NULL),
            "--record-size must be a size in bytes, not '1Q'");
}

Test(opts, codec_takes_a_codec_name)
{
    accepted(parse(QN_CLI_OPTS_RUN, "--codec", "lz4", NULL));
    cr_assert_eq(o.codec, QN_CODEC_LZ4);
    again();
    accepted(parse(QN_CLI_OPTS_RUN, "--codec=none", NULL));
    cr_assert_eq(o.codec, QN_CODEC_NONE);
}

Test(opts, an_unknown_codec_is_refused_naming_the_known_ones)
{
    refused(parse(QN_CLI_OPTS_RUN, "--codec", "gzip", NULL),
            "--codec: unknown codec 'gzip': supported codecs are zlib, lz4, "
            "zstd, none");
}

Test(opts, input_takes_every_path_up_to_the_next_option)
{
    accepted(
        parse(QN_CLI_OPTS_RUN, "--input", "./a", "b", "", "--json", "c", NULL));
    cr_assert_eq(o.ninputs, 3);
    cr_assert_eq(o.inputs[0], args[1]);
    cr_assert_eq(o.inputs[1], args[2]);
    cr_assert_eq(o.inputs[2], args[3]);
    cr_assert_eq(o.npositional, 1);
    cr_assert_str_eq(o.positional[0], "c");
}

Test(opts, input_stops_at_a_lone_dash)
{
    accepted(parse(QN_CLI_OPTS_RUN, "--input", "./a", "-", NULL));
    cr_assert_eq(o.ninputs, 1);
    cr_assert_eq(o.npositional, 1);
    cr_assert_str_eq(o.positional[0], "-");
}

Test(opts, input_with_an_equals_sign_takes_the_next_paths_too)
{
    accepted(parse(QN_CLI_OPTS_RUN, "--input=./a", "./b", NULL));
    cr_assert_eq(o.ninputs, 2);
    cr_assert_str_eq(o.inputs[0], "./a");
    cr_assert_str_eq(o.inputs[1], "./b");
}

Test(opts, a_repeated_input_adds_to_the_inputs)
{
    accepted(parse(QN_CLI_OPTS_RUN, "--input", "./a", "--json", "--input",
                   "./b", "./c", NULL));
    cr_assert_eq(o.ninputs, 3);
    cr_assert_str_eq(o.inputs[0], "./a");
    cr_assert_str_eq(o.inputs[2], "./c");
}

Test(opts, arg_is_repeatable_and_keeps_its_order)
{
    accepted(parse(QN_CLI_OPTS_RUN, "--arg", "b=2", "--arg=a=1", "--arg",
                   "empty=", NULL));
    cr_assert_eq(o.nargs, 3);
    cr_assert_str_eq(o.args[0], "b=2");
    cr_assert_str_eq(o.args[1], "a=1");
    cr_assert_str_eq(o.args[2], "empty=");
}

Test(opts, arg_needs_a_name_and_an_equals_sign)
{
    refused(parse(QN_CLI_OPTS_RUN, "--arg", "oops", NULL),
            "--arg takes NAME=VALUE, not 'oops'");
    again();
    refused(parse(QN_CLI_OPTS_RUN, "--arg", "=v", NULL),
            "--arg takes NAME=VALUE, not '=v'");
}

Test(opts, file_is_repeatable_for_run_and_submit_only)
{
    accepted(parse(QN_CLI_OPTS_RUN, "--file", "./dict.txt", "--file=b/x.sh",
                   "in.txt", NULL));
    cr_assert_eq(o.nfiles, 2);
    cr_assert_eq(o.files[0], args[1]);
    cr_assert_str_eq(o.files[1], "b/x.sh");
    cr_assert_eq(o.npositional, 1, "--file takes one value, not a list");
    again();
    accepted(parse(QN_CLI_OPTS_SUBMIT, "--file", "./dict.txt", NULL));
    cr_assert_eq(o.nfiles, 1);
    again();
    refused(parse(QN_CLI_OPTS_STATUS, "--file", "./dict.txt", NULL),
            "unknown option '--file' for this command (see quern --help)");
}

Test(opts, words_that_are_not_options_are_positional)
{
    accepted(parse(QN_CLI_OPTS_STATUS, "job-1", "-", "", "--json", "x", NULL));
    cr_assert_eq(o.npositional, 4);
    cr_assert_eq(o.positional[0], args[0]);
    cr_assert_str_eq(o.positional[1], "-");
    cr_assert_str_eq(o.positional[2], "");
    cr_assert_str_eq(o.positional[3], "x");
}

Test(opts, a_repeated_option_keeps_its_last_value)
{
    accepted(parse(QN_CLI_OPTS_RUN, "--job", "./a.so", "-R", "2", "--job",
                   "./b.so", "-R", "3", "--codec", "zstd", "--codec", "none",
                   NULL));
    cr_assert_str_eq(o.job, "./b.so");
    cr_assert_eq(o.nreduce, 3);
    cr_assert_eq(o.codec, QN_CODEC_NONE);
}

/* ---- refusals ------------------------------------------------------------ */

Test(opts, an_unknown_option_is_refused)
{
    refused(parse(QN_CLI_OPTS_RUN, "--frob", NULL),
            "unknown option '--frob' for this command (see quern --help)");
    again();
    refused(parse(QN_CLI_OPTS_RUN, "--frob=1", NULL),
            "unknown option '--frob=1' for this command (see quern --help)");
}

Test(opts, an_option_of_another_command_is_refused)
{
    refused(parse(QN_CLI_OPTS_SUBMIT, "--workers", "2", NULL),
            "unknown option '--workers' for this command (see quern --help)");
}

Test(opts, an_overlong_option_name_is_refused_as_unknown)
{
    char name[80] = "--";
    memset(name + 2, 'a', 62);
    refused(
        parse(QN_CLI_OPTS_RUN, name, NULL),
        "unknown option "
        "'--aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa' "
        "(see quern --help)");
    again();
    name[2 + 61] = '\0'; /* one shorter: a name, just not one it takes */
    refused(parse(QN_CLI_OPTS_RUN, name, NULL),
            "unknown option "
            "'--aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa' "
            "for this command (see quern --help)");
}

Test(opts, a_missing_value_is_refused)
{
    refused(parse(QN_CLI_OPTS_RUN, "--job", NULL),
            "option --job needs a value");
    again();
    refused(parse(QN_CLI_OPTS_RUN, "--input", "./a", "-R", NULL),
            "option -R needs a value");
}

Test(opts, an_option_takes_the_next_argument_whatever_it_is)
{
    accepted(parse(QN_CLI_OPTS_RUN, "--job", "--json", NULL));
    cr_assert_str_eq(o.job, "--json");
    cr_assert_eq(o.json, 0);
}

Test(opts, one_dash_with_an_equals_sign_is_no_option)
{
    refused(parse(QN_CLI_OPTS_RUN, "-R=3", NULL),
            "unknown option '-R=3' for this command (see quern --help)");
}

Test(opts, two_dashes_alone_are_no_option)
{
    refused(parse(QN_CLI_OPTS_RUN, "--", NULL),
            "unknown option '--' for this command (see quern --help)");
}

Test(opts, a_name_across_entries_of_the_set_takes_a_value_and_is_let_be)
{
    /* "|json|task-mem-mb|" is in run's set, but names no option. */
    accepted(parse(QN_CLI_OPTS_RUN, "--json|task-mem-mb", "x", "y", NULL));
    cr_assert_eq(o.json, 0);
    cr_assert_eq(o.task_mem_mb, 0);
    cr_assert_eq(o.npositional, 1);
    cr_assert_str_eq(o.positional[0], "y");
}

Test(opts, the_first_refusal_is_the_one_said)
{
    refused(parse(QN_CLI_OPTS_RUN, "-R", "0", "--frob", NULL),
            "-R must be a number of reducers from 1 to 100000, not '0'");
}

Test(opts, a_refusal_is_cut_to_the_room_given)
{
    char *argv[] = {args[0] = qn_strdup("--frob"), NULL};
    nargs = 1;
    char small[8];
    cr_assert_eq(
        qn_cli_parse(1, argv, QN_CLI_OPTS_RUN, &o, small, sizeof small), 2);
    cr_assert_str_eq(small, "unknown");
}

Test(opts, without_a_buffer_the_refusal_goes_to_stderr)
{
    char *dir = qn_test_tmpdir(), path[4096];
    qn_test_join(path, sizeof path, dir, "stderr");
    char *argv[] = {args[0] = qn_strdup("--frob"), NULL};
    nargs = 1;
    int saved = qn_test_stderr_to(path);
    int rc = qn_cli_parse(1, argv, QN_CLI_OPTS_RUN, &o, NULL, 0);
    qn_test_stderr_back(saved);
    cr_assert_eq(rc, 2);
    char text[256] = "";
    FILE *f = fopen(path, "r");
    cr_assert_not_null(f);
    size_t n = fread(text, 1, sizeof text - 1, f);
    fclose(f);
    text[n] = '\0';
    cr_assert_str_eq(text, "quern: unknown option '--frob' for this command "
                           "(see quern --help)\n");
    qn_rmtree(dir);
    free(dir);
}

/* ---- which commands take which options ----------------------------------- */

/* Every option, with a value it takes. */
static const char *const every[][2] = {
    {"--job", "./j.so"},
    {"--input", "./in"},
    {"--output", "./out"},
    {"-R", "2"},
    {"--arg", "k=v"},
    {"--split-size", "1M"},
    {"--sort-mb", "8"},
    {"--max-attempts", "2"},
    {"--no-speculation", NULL},
    {"--skip-bad-records", NULL},
    {"--compress-level", "3"},
    {"--codec", "zstd"},
    {"--output-replicas", "3"},
    {"--workers", "2"},
    {"--slots", "2"},
    {"--json", NULL},
    {"--task-mem-mb", "64"},
    {"--http", "off"},
    {"--inline", NULL},
    {"--master", "tcp://h:1"},
    {"--wait", NULL},
    {"--tasks", NULL},
    {"--attempt", "2"},
    {"--dataset", "d"},
    {"--replicas", "3"},
    {"--shard-size", "1M"},
    {"--record-size", "8"},
    {"--whole", NULL},
    {"--curve-secret", "me.key"},
    {"--curve-master", "master.pub"},
};

/* allowed takes exactly the options named in takes (" -R --json ...")
 * and the CURVE options, and refuses every other. */
static void takes_exactly(const char *allowed, const char *takes)
{
    char word[64], want[256];
    for (size_t i = 0; i < QN_ARRAY_LEN(every); i++) {
        const char *name = every[i][0], *val = every[i][1];
        snprintf(word, sizeof word, " %s ", name);
        int wanted = strstr(takes, word) || strncmp(name, "--curve-", 8) == 0;
        int rc = parse(allowed, name, val, NULL);
        if (wanted) {
            cr_assert_eq(rc, 0, "%s refused: %s", name, err);
        } else {
            snprintf(want, sizeof want,
                     "unknown option '%s' for this command (see quern "
                     "--help)",
                     name);
            refused(rc, want);
        }
        again();
    }
}

#define JOB_TAKES                                                              \
    " --job --input --output -R --arg --split-size --sort-mb "                 \
    "--max-attempts --no-speculation --skip-bad-records --compress-level "     \
    "--codec --output-replicas "

Test(opts, run_takes_the_job_options_and_its_own)
{
    takes_exactly(QN_CLI_OPTS_RUN, JOB_TAKES "--workers --slots --json "
                                             "--task-mem-mb --http --inline ");
}

Test(opts, submit_takes_the_job_options_and_its_own)
{
    takes_exactly(QN_CLI_OPTS_SUBMIT, JOB_TAKES "--master --wait --json ");
}

Test(opts, status_takes_master_json_and_tasks)
{
    takes_exactly(QN_CLI_OPTS_STATUS, " --master --json --tasks ");
}

Test(opts, jobs_workers_cancel_and_ls_take_master_and_json)
{
    takes_exactly(QN_CLI_OPTS_JOBS, " --master --json ");
    takes_exactly(QN_CLI_OPTS_WORKERS, " --master --json ");
    takes_exactly(QN_CLI_OPTS_CANCEL, " --master --json ");
    takes_exactly(QN_CLI_OPTS_LS, " --master --json ");
}

Test(opts, logs_takes_master_json_and_attempt)
{
    takes_exactly(QN_CLI_OPTS_LOGS, " --master --json --attempt ");
}

Test(opts, put_takes_the_sharding_options)
{
    takes_exactly(QN_CLI_OPTS_PUT, " --master --dataset --replicas "
                                   "--shard-size --record-size --whole ");
}

Test(opts, cat_get_and_rm_take_only_master)
{
    takes_exactly(QN_CLI_OPTS_CAT, " --master ");
    takes_exactly(QN_CLI_OPTS_GET, " --master ");
    takes_exactly(QN_CLI_OPTS_RM, " --master ");
}

/* ---- after the parse ----------------------------------------------------- */

Test(opts, no_curve_options_load_no_keys)
{
    accepted(parse(QN_CLI_OPTS_JOBS, NULL));
    cr_assert_eq(qn_cli_curve(&o, err, sizeof err), 0);
    cr_assert_eq(o.curve.secret_key[0], '\0');
}

Test(opts, a_curve_master_key_needs_a_secret_key)
{
    accepted(parse(QN_CLI_OPTS_JOBS, "--curve-master", "m.pub", NULL));
    refused(qn_cli_curve(&o, err, sizeof err),
            "--curve-master needs --curve-secret (your own key, made by "
            "quern keygen)");
}

Test(opts, a_curve_secret_key_needs_the_masters_key)
{
    accepted(parse(QN_CLI_OPTS_JOBS, "--curve-secret", "me.key", NULL));
    refused(qn_cli_curve(&o, err, sizeof err),
            "--curve-secret needs --curve-master FILE: the master's public "
            "key");
}

Test(opts, curve_keys_are_loaded_from_their_files)
{
    char *dir = qn_test_tmpdir(), me[4096], master[4096], path[4096];
    qn_test_join(me, sizeof me, dir, "me");
    qn_test_join(master, sizeof master, dir, "master");
    cr_assert_eq(qn_curve_keygen(me, err, sizeof err), 0, "%s", err);
    cr_assert_eq(qn_curve_keygen(master, err, sizeof err), 0, "%s", err);
    strcat(me, ".key");
    strcat(master, ".pub");
    accepted(parse(QN_CLI_OPTS_JOBS, "--curve-secret", me, "--curve-master",
                   master, NULL));
    cr_assert_eq(qn_cli_curve(&o, err, sizeof err), 0, "%s", err);
    cr_assert_neq(o.curve.secret_key[0], '\0');
    cr_assert_neq(o.curve.master_key[0], '\0');
    qn_test_join(path, sizeof path, dir, "nothere.key");
    again();
    accepted(parse(QN_CLI_OPTS_JOBS, "--curve-secret", path, "--curve-master",
                   master, NULL));
    cr_assert_eq(qn_cli_curve(&o, err, sizeof err), 2);
    cr_assert_not_null(strstr(err, path), "%s does not name the file", err);
    qn_rmtree(dir);
    free(dir);
}

Test(opts, at_most_refuses_the_first_argument_past_n)
{
    char *dir = qn_test_tmpdir(), path[4096];
    qn_test_join(path, sizeof path, dir, "stderr");
    accepted(parse(QN_CLI_OPTS_STATUS, "a", "b", "c", NULL));
    cr_assert_eq(qn_cli_at_most(&o, 3), 0);
    int saved = qn_test_stderr_to(path);
    int rc = qn_cli_at_most(&o, 1);
    qn_test_stderr_back(saved);
    cr_assert_eq(rc, 2);
    char text[256] = "";
    FILE *f = fopen(path, "r");
    cr_assert_not_null(f);
    text[fread(text, 1, sizeof text - 1, f)] = '\0';
    fclose(f);
    cr_assert_str_eq(text, "quern: unexpected argument 'b'\n");
    qn_rmtree(dir);
    free(dir);
}

Test(opts, connect_refuses_a_bad_endpoint)
{
    char *dir = qn_test_tmpdir(), path[4096];
    qn_test_join(path, sizeof path, dir, "stderr");
    accepted(parse(QN_CLI_OPTS_JOBS, "--master", "nowhere", NULL));
    qn_client *c = NULL;
    int saved = qn_test_stderr_to(path);
    int rc = qn_cli_connect(&o, &c);
    qn_test_stderr_back(saved);
    cr_assert_eq(rc, 2);
    cr_assert_null(c);
    char text[256] = "";
    FILE *f = fopen(path, "r");
    cr_assert_not_null(f);
    text[fread(text, 1, sizeof text - 1, f)] = '\0';
    fclose(f);
    cr_assert_str_eq(text, "quern: bad --master endpoint 'nowhere' (like "
                           "tcp://host:7070)\n");
    again();
    accepted(parse(QN_CLI_OPTS_JOBS, "--master", "tcp://127.0.0.1:1", NULL));
    cr_assert_eq(qn_cli_connect(&o, &c), 0);
    cr_assert_not_null(c);
    qn_client_destroy(&c);
    qn_rmtree(dir);
    free(dir);
}
