/*
 * test_taskspec.c -- the spec a worker gives a task process
 * (worker/taskspec.c): the master's assignment, never changed, with the
 * worker's own facts filled in.
 */
#include "helpers.h"

#include "../worker/taskspec.h"

#include <zlib.h>

/* The test's work dir and data dir (store), removed by the fixture. */
static char *work;
static qn_store *store;

static void setup(void)
{
    work = qn_test_tmpdir();
}

static void teardown(void)
{
    qn_store_destroy(&store);
    qn_rmtree(work);
    free(work);
    qn_test_leak_check();
}

TestSuite(taskspec, .init = setup, .fini = teardown);

#define HASH "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

/* A store in WORK/data holding shard 3 of dataset "logs"; its CRC. */
static uint32_t open_store_with_shard(void)
{
    char dir[4096], err[512] = "";
    qn_test_join(dir, sizeof dir, work, "data");
    store = qn_store_open(dir, err, sizeof err);
    cr_assert_not_null(store, "%s", err);
    const char data[] = "one\ntwo\n";
    uint32_t crc = (uint32_t)crc32(crc32(0L, Z_NULL, 0), (const Bytef *)data,
                                   sizeof data - 1);
    cr_assert_eq(qn_store_upload(store, "t1", "logs", 3, 0, data,
                                 sizeof data - 1, 1, sizeof data - 1, crc, 1000,
                                 err, sizeof err),
                 0, "%s", err);
    return crc;
}

/* An assignment as the master sends it: two input pieces, the second a
 * piece of dataset shard logs/3. */
typedef struct {
    Quern__TaskSpec spec;
    Quern__InputPiece pieces[2];
    Quern__InputPiece *inputs[2];
} assignment;

static void assign(assignment *as, Quern__TaskKind kind, uint32_t crc)
{
    Quern__TaskSpec init = QUERN__TASK_SPEC__INIT;
    as->spec = init;
    as->spec.job_id = (char *)"job-1";
    as->spec.kind = kind;
    as->spec.task = 4;
    as->spec.attempt = 2;
    as->spec.plugin = (char *)"/master/side/job.so";
    as->spec.plugin_hash = (char *)HASH;
    for (int i = 0; i < 2; i++) {
        quern__input_piece__init(&as->pieces[i]);
        as->inputs[i] = &as->pieces[i];
    }
    as->pieces[0].path = (char *)"/data/in.txt";
    as->pieces[0].name = (char *)"in.txt";
    as->pieces[1].dataset = (char *)"logs";
    as->pieces[1].shard = 3;
    as->pieces[1].crc = crc;
    as->pieces[1].name = (char *)"logs/3";
    as->pieces[1].file_size = 8;
    as->spec.inputs = as->inputs;
    as->spec.n_inputs = 2;
}

static qn_taskspec_local local_of(void)
{
    return (qn_taskspec_local){.work_dir = work, .store = store};
}

Test(taskspec, leaves_the_assignment_as_it_was)
{
    uint32_t crc = open_store_with_shard();
    assignment as;
    assign(&as, QUERN__TASK_KIND__MAP, crc);
    assignment before;
    memcpy(&before, &as, sizeof as); /* padding too: memcmp below */
    qn_taskspec_local local = local_of();
    local.curve_secret = "/keys/worker.key";
    qn_taskspec ts;
    const char *why = NULL;
    cr_assert_eq(qn_taskspec_build(&ts, &as.spec, &local, &why), 0);
    cr_assert_neq(ts.spec.inputs, as.spec.inputs, "the inputs are copied");
    qn_taskspec_release(&ts);
    cr_assert_eq(memcmp(&as.spec, &before.spec, sizeof as.spec), 0);
    cr_assert_eq(memcmp(as.pieces, before.pieces, sizeof as.pieces), 0);
    cr_assert_str_eq(as.pieces[1].path, "");
    cr_assert_str_eq(as.spec.work_dir, "");
}

Test(taskspec, names_the_work_dir_and_the_cached_plugin)
{
    assignment as;
    assign(&as, QUERN__TASK_KIND__REDUCE, 0);
    qn_taskspec_local local = local_of();
    qn_taskspec ts;
    const char *why = NULL;
    cr_assert_eq(qn_taskspec_build(&ts, &as.spec, &local, &why), 0);
    char want[4096];
    snprintf(want, sizeof want, "%s/plugins/%s.so", work, HASH);
    cr_assert_str_eq(ts.spec.plugin, want);
    cr_assert_str_eq(ts.spec.work_dir, work);
    cr_assert_str_eq(ts.spec.job_id, "job-1");
    cr_assert_eq(ts.spec.task, 4);
    cr_assert_eq(ts.spec.attempt, 2);
    qn_taskspec_release(&ts);

    /* Without a hash, the plugin is where the master said. */
    as.spec.plugin_hash = (char *)"";
    cr_assert_eq(qn_taskspec_build(&ts, &as.spec, &local, &why), 0);
    cr_assert_str_eq(ts.spec.plugin, "/master/side/job.so");
    qn_taskspec_release(&ts);
}

Test(taskspec, a_map_reads_a_shard_held_here_from_its_copy)
{
    uint32_t crc = open_store_with_shard();
    assignment as;
    assign(&as, QUERN__TASK_KIND__MAP, crc);
    qn_taskspec_local local = local_of();
    qn_taskspec ts;
    const char *why = NULL;
    cr_assert_eq(qn_taskspec_build(&ts, &as.spec, &local, &why), 0);
    qn_buf want = {0};
    qn_store_path(store, "logs", 3, &want);
    cr_assert_str_eq(ts.spec.inputs[1]->path, want.data);
    cr_assert_str_eq(ts.spec.inputs[0]->path, "/data/in.txt");
    cr_assert_str_eq(ts.spec.inputs[1]->name, "logs/3");
    qn_buf_release(&want);
    qn_taskspec_release(&ts);
}

Test(taskspec, a_copy_here_with_another_crc_is_not_read)
{
    uint32_t crc = open_store_with_shard();
    assignment as;
    assign(&as, QUERN__TASK_KIND__MAP, crc ^ 1);
    qn_taskspec_local local = local_of();
    qn_taskspec ts;
    const char *why = NULL;
    cr_assert_eq(qn_taskspec_build(&ts, &as.spec, &local, &why), 0);
    cr_assert_str_eq(ts.spec.inputs[1]->path, "", "streamed from a holder");
    qn_taskspec_release(&ts);
}

Test(taskspec, a_copy_writes_a_fresh_file_to_install_as_its_shard)
{
    uint32_t crc = open_store_with_shard();
    assignment as;
    assign(&as, QUERN__TASK_KIND__COPY, crc);
    as.spec.inputs = &as.inputs[1];
    as.spec.n_inputs = 1;
    qn_taskspec_local local = local_of();
    qn_taskspec ts;
    const char *why = NULL;
    cr_assert_eq(qn_taskspec_build(&ts, &as.spec, &local, &why), 0);
    cr_assert(ts.copy);
    char incoming[4096];
    snprintf(incoming, sizeof incoming, "%s/.incoming/logs.",
             qn_store_dir(store));
    cr_assert_eq(strncmp(ts.spec.output_dir, incoming, strlen(incoming)), 0,
                 "%s", ts.spec.output_dir);
    cr_assert_str_eq(ts.copy_shard.dataset, "logs");
    cr_assert_eq(ts.copy_shard.index, 3);
    cr_assert_eq(ts.copy_shard.size, 8);
    cr_assert_eq(ts.copy_shard.crc, crc);
    /* A copy pulls from the holders, even of a shard held here. */
    cr_assert_str_eq(ts.spec.inputs[0]->path, "");
    qn_taskspec_release(&ts);
}

Test(taskspec, a_reduce_writes_a_dataset_to_its_jobs_staging_folder)
{
    open_store_with_shard();
    assignment as;
    assign(&as, QUERN__TASK_KIND__REDUCE, 0);
    as.spec.output_dataset = (char *)"counts";
    as.spec.output_dir = (char *)"/master/said";
    qn_taskspec_local local = local_of();
    qn_taskspec ts;
    const char *why = NULL;
    cr_assert_eq(qn_taskspec_build(&ts, &as.spec, &local, &why), 0);
    char want[4096];
    snprintf(want, sizeof want, "%s/.staging/job-1", qn_store_dir(store));
    cr_assert_str_eq(ts.spec.output_dir, want);
    cr_assert_not(ts.copy);
    qn_taskspec_release(&ts);
}

Test(taskspec, a_worker_without_datasets_refuses_tasks_that_need_them)
{
    assignment as;
    assign(&as, QUERN__TASK_KIND__COPY, 0);
    qn_taskspec_local local = local_of();
    qn_taskspec ts;
    const char *why = NULL;
    cr_assert_eq(qn_taskspec_build(&ts, &as.spec, &local, &why), -1);
    cr_assert_str_eq(why, "this worker keeps no datasets (it has no "
                          "--data-dir)");
    qn_taskspec_release(&ts);

    assign(&as, QUERN__TASK_KIND__REDUCE, 0);
    as.spec.output_dataset = (char *)"counts";
    why = NULL;
    cr_assert_eq(qn_taskspec_build(&ts, &as.spec, &local, &why), -1);
    cr_assert_not_null(why);
    qn_taskspec_release(&ts);

    /* A reduce to a folder needs none. */
    as.spec.output_dataset = (char *)"";
    cr_assert_eq(qn_taskspec_build(&ts, &as.spec, &local, &why), 0);
    qn_taskspec_release(&ts);
}

Test(taskspec, gives_the_key_files_when_curve_is_on)
{
    assignment as;
    assign(&as, QUERN__TASK_KIND__MAP, 0);
    as.spec.curve_secret = (char *)"/from/master";
    qn_taskspec_local local = local_of();
    qn_taskspec ts;
    const char *why = NULL;
    cr_assert_eq(qn_taskspec_build(&ts, &as.spec, &local, &why), 0);
    cr_assert_str_eq(ts.spec.curve_secret, "/from/master", "ours: none");
    cr_assert_str_eq(ts.spec.curve_master, "");
    qn_taskspec_release(&ts);
    local.curve_secret = "/keys/worker.key";
    local.curve_master = "/keys/master.pub";
    cr_assert_eq(qn_taskspec_build(&ts, &as.spec, &local, &why), 0);
    cr_assert_str_eq(ts.spec.curve_secret, "/keys/worker.key");
    cr_assert_str_eq(ts.spec.curve_master, "/keys/master.pub");
    qn_taskspec_release(&ts);
}
