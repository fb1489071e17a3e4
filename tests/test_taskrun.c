/*
 * test_taskrun.c -- the one dispatch of a task (lib/taskrun.c), as
 * quern-task and quern run --inline use it: what runs for each kind, in
 * which order things are checked, and what quern-task tells its worker.
 */
#include "helpers.h"

#include "codec.h"
#include "layout.h"
#include "sha256.h"
#include "shipped.h"
#include "taskrun.h"

#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/socket.h>
#include <sys/wait.h>

TestSuite(taskrun, .fini = qn_test_leak_check);

static qn_gasp gasp;

/* Run spec through the dispatch in this process; t->fail into why. */
static int run(Quern__TaskSpec *spec, char *why, size_t cap)
{
    quern_task t = {.ctl = -1, .out_fd = -1, .gasp = &gasp};
    qn_task_init(&t, spec);
    int rc = qn_taskrun_run(&t, NULL);
    snprintf(why, cap, "%s", t.fail);
    t.spec = NULL; /* the test's */
    qn_task_release(&t);
    return rc;
}

static Quern__TaskSpec spec_of(Quern__TaskKind kind)
{
    Quern__TaskSpec s = QUERN__TASK_SPEC__INIT;
    s.job_id = (char *)"job-1";
    s.kind = kind;
    s.task = 2;
    s.attempt = 1;
    s.nreduce = 1;
    s.codec = QN_CODEC_ZLIB;
    s.compress_level = 1;
    s.plugin = (char *)"/nonexistent/job.so";
    return s;
}

Test(taskrun, a_copy_runs_without_a_plugin_and_needs_its_destination)
{
    Quern__TaskSpec s = spec_of(QUERN__TASK_KIND__COPY);
    s.codec = 99; /* a copy neither loads a plugin nor compresses */
    char why[1024];
    cr_assert_eq(run(&s, why, sizeof why), -1);
    cr_assert_str_eq(why, "a copy needs one input and a destination");
}

Test(taskrun, a_bad_codec_fails_a_map_before_its_plugin_loads)
{
    Quern__TaskSpec s = spec_of(QUERN__TASK_KIND__MAP);
    s.codec = 99;
    char why[1024];
    cr_assert_eq(run(&s, why, sizeof why), -1);
    cr_assert_str_eq(why, "bad codec 99 or level 1");
}

Test(taskrun, a_plugin_that_does_not_load_fails_a_reduce)
{
    Quern__TaskSpec s = spec_of(QUERN__TASK_KIND__REDUCE);
    char why[1024];
    cr_assert_eq(run(&s, why, sizeof why), -1);
    cr_assert(strncmp(why, "cannot load plugin: /nonexistent/job.so", 39) == 0,
              "%s", why);
}

/*
 * quern-task's work (qn_taskrun_main) in a child process, given spec (or
 * no spec at all when NULL) and a last-gasp page; the parent holds the
 * worker's end of the channel. Returns the child's exit code; the
 * channel's first message, if any, into *env.
 */
static int run_main(Quern__TaskSpec *spec, Quern__Envelope **env)
{
    int sv[2];
    cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    int spec_fd = memfd_create("spec", 0);
    cr_assert_geq(spec_fd, 0);
    if (spec) {
        Quern__Envelope e = QUERN__ENVELOPE__INIT;
        e.body_case = QUERN__ENVELOPE__BODY_TASK_SPEC;
        e.task_spec = spec;
        cr_assert_eq(qn_wire_write_fd(spec_fd, &e), 0);
        cr_assert_eq(lseek(spec_fd, 0, SEEK_SET), 0);
    }
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        close(sv[1]);
        int g = memfd_create("gasp", 0);
        if (g < 0 || ftruncate(g, sizeof(qn_gasp)) < 0 ||
            dup2(g, QN_GASP_FD) < 0)
            _exit(9);
        _exit(qn_taskrun_main(sv[0], spec_fd));
    }
    close(sv[0]);
    close(spec_fd);
    int status;
    cr_assert_eq(waitpid(pid, &status, 0), pid);
    cr_assert(WIFEXITED(status));
    qn_stream st = {.fd = sv[1]};
    char err[256];
    *env = NULL;
    while (qn_stream_next(&st, env, err, sizeof err) == 0 && !st.eof &&
           qn_stream_read(&st) > 0)
        ;
    qn_buf_release(&st.in);
    close(sv[1]);
    return WEXITSTATUS(status);
}

Test(taskrun, quern_task_tells_its_worker_how_the_attempt_failed)
{
    Quern__TaskSpec s = spec_of(QUERN__TASK_KIND__MAP);
    char *dir = qn_test_tmpdir();
    s.work_dir = dir;
    Quern__Envelope *env;
    cr_assert_eq(run_main(&s, &env), 1);
    qn_rmtree(dir);
    free(dir);
    cr_assert_not_null(env, "no report");
    cr_assert_eq(env->body_case, QUERN__ENVELOPE__BODY_TASK_UPDATE);
    const Quern__TaskUpdate *u = env->task_update;
    cr_assert_eq(u->state, QUERN__TASK_STATE__FAILED);
    cr_assert(strstr(u->reason, "cannot load plugin"), "%s", u->reason);
    cr_assert_str_eq(u->attempt->job_id, "job-1");
    cr_assert_eq(u->attempt->task, 2);
    qn_wire_free(env);
}

Test(taskrun, quern_task_without_a_spec_exits_2_and_says_nothing)
{
    Quern__Envelope *env;
    cr_assert_eq(run_main(NULL, &env), 2);
    cr_assert_null(env);
}

/* ---- its working folder, and the files shipped with the job ----------------
 */

/* A map attempt shipping dict.txt (holding dict), in work dir dir. */
static Quern__TaskSpec shipping(char *dir, Quern__ShippedFile *f,
                                Quern__ShippedFile **fp, const char *dict,
                                char hex[QN_SHA256_HEX])
{
    uint8_t d[QN_SHA256_SIZE];
    qn_sha256(dict, strlen(dict), d);
    qn_sha256_hex(d, hex);
    quern__shipped_file__init(f);
    f->name = (char *)"dict.txt";
    f->hash = hex;
    f->size = strlen(dict);
    *fp = f;
    Quern__TaskSpec s = spec_of(QUERN__TASK_KIND__MAP);
    s.work_dir = dir;
    s.files = fp;
    s.n_files = 1;
    return s;
}

Test(taskrun, quern_task_places_the_shipped_files_in_its_folder)
{
    static const char dict[] = "alpha\n";
    char *dir = qn_test_tmpdir(), hex[QN_SHA256_HEX], err[256];
    Quern__ShippedFile f, *fp;
    Quern__TaskSpec s = shipping(dir, &f, &fp, dict, hex);
    cr_assert_eq(
        qn_shipped_cache(dir, hex, dict, strlen(dict), err, sizeof err), 0,
        "%s", err);
    Quern__Envelope *env;
    cr_assert_eq(run_main(&s, &env), 1);
    /* Placed, entered: it went on as far as its (missing) plugin. */
    cr_assert(strstr(env->task_update->reason, "cannot load plugin"), "%s",
              env->task_update->reason);
    qn_wire_free(env);
    qn_buf p = {0};
    qn_attempt_dir(&p, dir, "job-1", 1, 2, 1);
    qn_buf_printf(&p, "/dict.txt");
    struct stat st;
    cr_assert_eq(stat(p.data, &st), 0, "no %s", p.data);
    cr_assert_eq(st.st_mode & 07777, 0444);
    qn_buf_release(&p);
    qn_rmtree(dir);
    free(dir);
}

Test(taskrun, quern_task_fails_when_a_shipped_file_cannot_be_placed)
{
    char *dir = qn_test_tmpdir(), hex[QN_SHA256_HEX];
    Quern__ShippedFile f, *fp;
    Quern__TaskSpec s = shipping(dir, &f, &fp, "not cached", hex);
    Quern__Envelope *env;
    cr_assert_eq(run_main(&s, &env), 1);
    const char *why = env->task_update->reason;
    cr_assert(strstr(why, "working folder ") &&
                  strstr(why, "/jobs/job-1/map-00002-a1: cannot place "
                              "shipped file dict.txt"),
              "%s", why);
    qn_wire_free(env);
    /* Nor without an absolute work dir to put its folder in. */
    s.work_dir = (char *)"";
    s.n_files = 0;
    cr_assert_eq(run_main(&s, &env), 1);
    cr_assert(strstr(env->task_update->reason,
                     "its work dir '' is not an absolute path"),
              "%s", env->task_update->reason);
    qn_wire_free(env);
    qn_rmtree(dir);
    free(dir);
}
