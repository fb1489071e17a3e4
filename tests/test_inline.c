/*
 * test_inline.c -- `quern run --inline` (master/client/inline.c): every
 * task of a job run in this process through the task runner's one
 * dispatch, their counters added up as the master would report them. The
 * plugin is a real one, $BUILD/jobs/wordcount.so (make all builds it).
 */
#include "helpers.h"

#include "../master/client/inline.h"
#include "codec.h"
#include "sha256.h"
#include "util.h"

#include <dlfcn.h>
#include <limits.h>

TestSuite(inline, .fini = qn_test_leak_check);

typedef struct {
    char *dir;
    char plugin[PATH_MAX], input[PATH_MAX], output[PATH_MAX];
    Quern__JobSpec js;
    Quern__InputPath in, *inp;
    Quern__JobStatus st;
    char err[1024];
} fixture;

static fixture fx;

static void setup(void)
{
    memset(&fx, 0, sizeof fx);
    fx.dir = qn_test_tmpdir();
    const char *build = getenv("BUILD");
    char rel[PATH_MAX];
    snprintf(rel, sizeof rel, "%s/jobs/wordcount.so",
             build && *build ? build : "build");
    cr_assert_not_null(realpath(rel, fx.plugin), "no %s (make all)", rel);
    qn_test_join(fx.input, sizeof fx.input, fx.dir, "words.txt");
    qn_test_join(fx.output, sizeof fx.output, fx.dir, "out");
    const char *text = "a b c\nb c\nc\n";
    cr_assert_eq(qn_write_file_atomic(fx.input, text, strlen(text)), 0);
    quern__job_spec__init(&fx.js);
    quern__input_path__init(&fx.in);
    fx.in.given = fx.input;
    fx.in.path = fx.input;
    fx.inp = &fx.in;
    fx.js.name = (char *)"wordcount";
    fx.js.plugin = fx.plugin;
    fx.js.inputs = &fx.inp;
    fx.js.n_inputs = 1;
    fx.js.output = fx.output;
    fx.js.nreduce = 2;
    fx.js.split_size = 4; /* a map per line */
    fx.js.sort_mb = 16;
    fx.js.codec = QN_CODEC_ZLIB;
    fx.js.compress_level = 1;
}

static void teardown(void)
{
    qn_inline_release(&fx.st);
    qn_rmtree(fx.dir);
    free(fx.dir);
    qn_test_leak_check();
}

/*
 * Can a plugin loaded by this program find the plugin API (quern_emit,
 * ...)? Only when the program exports it, as quern and quern-task do
 * (linked with -rdynamic).
 */
static int s_exports_plugin_api(void)
{
    void *self = dlopen(NULL, RTLD_NOW);
    int ok = self && dlsym(self, "quern_emit");
    if (self)
        dlclose(self);
    return ok;
}

static long long counter(const char *name)
{
    for (size_t i = 0; i < fx.st.n_counters; i++)
        if (strcmp(fx.st.counters[i]->name, name) == 0)
            return fx.st.counters[i]->value;
    cr_assert_fail("no counter %s", name);
    return -1;
}

Test(inline, runs_every_task_and_adds_up_their_counters, .init = setup,
     .fini = teardown)
{
    cr_assert(s_exports_plugin_api(),
              "this test program does not export the plugin API (not linked "
              "with -rdynamic): wordcount.so cannot load");
    cr_assert_eq(qn_inline_run(&fx.js, NULL, &fx.st, fx.err, sizeof fx.err), 0,
                 "%s / %s", fx.err, fx.st.error);
    cr_assert_eq(fx.st.state, QUERN__JOB_STATE__JOB_SUCCEEDED);
    cr_assert_str_empty(fx.st.error);
    cr_assert_eq(fx.st.maps, 3);
    cr_assert_eq(fx.st.maps_done, 3);
    cr_assert_eq(fx.st.reduces_done, 2);
    cr_assert_eq(counter("map_attempts"), 3);
    cr_assert_eq(counter("reduce_attempts"), 2);
    cr_assert_eq(counter("map_input_records"), 3, "one line per map");
    cr_assert_eq(counter("map_output_records"), 6, "six words");
    cr_assert_eq(counter("reduce_output_records"), 3, "three distinct");
    /* The attempts' counts come last, as the master lists them. */
    cr_assert_str_eq(fx.st.counters[fx.st.n_counters - 1]->name,
                     "reduce_attempts");
    char success[PATH_MAX];
    qn_test_join(success, sizeof success, fx.output, "_SUCCESS");
    cr_assert_eq(access(success, F_OK), 0);
}

Test(inline, a_task_that_fails_fails_the_job_and_leaves_no_output,
     .init = setup, .fini = teardown)
{
    fx.js.codec = 99; /* no such codec: every task refuses to run */
    cr_assert_eq(qn_inline_run(&fx.js, NULL, &fx.st, fx.err, sizeof fx.err), 1);
    cr_assert_eq(fx.st.state, QUERN__JOB_STATE__JOB_FAILED);
    char want[PATH_MAX + 100];
    snprintf(want, sizeof want,
             "map 0 (%s at 0) failed: bad codec 99 or "
             "level 1",
             fx.input);
    cr_assert_str_eq(fx.st.error, want);
    cr_assert_eq(counter("map_attempts"), 1, "the job stops at the first");
    cr_assert_eq(counter("reduce_attempts"), 0);
    cr_assert_eq(fx.st.maps_done, 0);
    cr_assert_neq(access(fx.output, F_OK), 0, "no output folder left");
}

Test(inline, a_plugin_that_does_not_load_fails_the_first_map, .init = setup,
     .fini = teardown)
{
    snprintf(fx.plugin, sizeof fx.plugin, "%s/none.so", fx.dir);
    cr_assert_eq(qn_inline_run(&fx.js, NULL, &fx.st, fx.err, sizeof fx.err), 1);
    cr_assert(strstr(fx.st.error, "failed: cannot load plugin"), "%s",
              fx.st.error);
}

Test(inline, datasets_are_refused_before_anything_runs, .init = setup,
     .fini = teardown)
{
    fx.js.output_dataset = 1;
    cr_assert_eq(qn_inline_run(&fx.js, NULL, &fx.st, fx.err, sizeof fx.err), 2);
    cr_assert(strstr(fx.err, "--inline writes to a folder"), "%s", fx.err);
    qn_inline_release(&fx.st);
    fx.js.output_dataset = 0;
    fx.in.given = (char *)"logs";
    cr_assert_eq(qn_inline_run(&fx.js, NULL, &fx.st, fx.err, sizeof fx.err), 2);
    cr_assert_str_eq(fx.err, "--inline reads files, not dataset logs: give "
                             "--input a path");
    cr_assert_neq(access(fx.output, F_OK), 0);
}

Test(inline, an_input_without_files_is_refused, .init = setup, .fini = teardown)
{
    qn_test_join(fx.input, sizeof fx.input, fx.dir, "nothing");
    cr_assert_eq(qn_mkdirs(fx.input, 0755), 0);
    cr_assert_eq(qn_inline_run(&fx.js, NULL, &fx.st, fx.err, sizeof fx.err), 2);
    cr_assert(strstr(fx.err, "nothing: no files found"), "%s", fx.err);
    cr_assert_neq(access(fx.output, F_OK), 0);
}

/* fx's job with the test plugin faulty.so and one argument. */
static void s_use_faulty(Quern__Arg *arg, Quern__Arg **argp, const char *name,
                         const char *value)
{
    const char *build = getenv("BUILD");
    char rel[PATH_MAX];
    snprintf(rel, sizeof rel, "%s/tests/jobs/faulty.so",
             build && *build ? build : "build");
    cr_assert_not_null(realpath(rel, fx.plugin), "no %s (make check)", rel);
    quern__arg__init(arg);
    arg->name = (char *)name;
    arg->value = (char *)value;
    *argp = arg;
    fx.js.args = argp;
    fx.js.n_args = 1;
}

Test(inline, a_map_whose_teardown_fails_fails_the_job, .init = setup,
     .fini = teardown)
{
    cr_assert(s_exports_plugin_api(), "not linked with -rdynamic");
    Quern__Arg arg, *argp;
    s_use_faulty(&arg, &argp, "teardown_fail", "map");
    cr_assert_eq(qn_inline_run(&fx.js, NULL, &fx.st, fx.err, sizeof fx.err), 1);
    cr_assert(
        strstr(fx.st.error, "failed: faulty: map teardown failing on purpose"),
        "%s", fx.st.error);
    cr_assert_eq(fx.st.maps_done, 0);
    cr_assert_eq(counter("reduce_attempts"), 0);
}

Test(inline, a_reduce_whose_teardown_fails_fails_the_job, .init = setup,
     .fini = teardown)
{
    cr_assert(s_exports_plugin_api(), "not linked with -rdynamic");
    Quern__Arg arg, *argp;
    s_use_faulty(&arg, &argp, "teardown_fail", "reduce");
    cr_assert_eq(qn_inline_run(&fx.js, NULL, &fx.st, fx.err, sizeof fx.err), 1);
    cr_assert(strstr(fx.st.error,
                     "failed: faulty: reduce teardown failing on purpose"),
              "%s", fx.st.error);
    cr_assert_eq(fx.st.maps_done, 3, "the maps' teardowns pass");
    cr_assert_eq(fx.st.reduces_done, 0);
    cr_assert_neq(access(fx.output, F_OK), 0, "no output folder left");
}

Test(inline, shipped_files_are_in_the_tasks_working_folder, .init = setup,
     .fini = teardown)
{
    cr_assert(s_exports_plugin_api(), "not linked with -rdynamic");
    Quern__Arg arg, *argp;
    s_use_faulty(&arg, &argp, "file", "dict.txt");
    const char *build = getenv("BUILD");
    char rel[PATH_MAX];
    snprintf(rel, sizeof rel, "%s/tests/jobs/shipped.so",
             build && *build ? build : "build");
    cr_assert_not_null(realpath(rel, fx.plugin), "no %s (make check)", rel);
    static const char dict[] = "alpha\nbeta\n";
    uint8_t d[QN_SHA256_SIZE];
    char hex[QN_SHA256_HEX];
    qn_sha256(dict, strlen(dict), d);
    qn_sha256_hex(d, hex);
    Quern__ShippedFile f = QUERN__SHIPPED_FILE__INIT, *fp = &f;
    f.name = (char *)"dict.txt";
    f.hash = hex;
    f.size = strlen(dict);
    fx.js.files = &fp;
    fx.js.n_files = 1;
    ProtobufCBinaryData data = {strlen(dict), (uint8_t *)dict};
    char before[PATH_MAX], after[PATH_MAX];
    cr_assert_not_null(getcwd(before, sizeof before));
    cr_assert_eq(qn_inline_run(&fx.js, &data, &fx.st, fx.err, sizeof fx.err), 0,
                 "%s / %s", fx.err, fx.st.error);
    /* Every task, map and reduce, opened it, and could not write it. */
    cr_assert_eq(counter("user.file_opened"), 5);
    cr_assert_eq(counter("reduce_output_records"), 2);
    for (size_t i = 0; i < fx.st.n_counters; i++)
        cr_assert_str_neq(fx.st.counters[i]->name, "user.file_mode_writable");
    /* Back where it started. */
    cr_assert_not_null(getcwd(after, sizeof after));
    cr_assert_str_eq(before, after);
}
