/*
 * test_datacmd.c -- the master's commands on a worker's dataset shards
 * (worker/datacmd.c): seal, drop, and commit a reduce's staged output,
 * with a failed commit reported.
 */
#include "wfixture.h"

#include "../worker/datacmd.h"

#include <zlib.h>

TestSuite(datacmd, .fini = qn_test_leak_check);

static uint32_t crc_of(const char *s)
{
    return (uint32_t)crc32(crc32(0L, Z_NULL, 0), (const Bytef *)s,
                           (uInt)strlen(s));
}

static void command(wfix *f, Quern__DataCommand__Op op, const char *dataset,
                    uint32_t index, uint32_t nshards, const char *data)
{
    Quern__DataCommand c = QUERN__DATA_COMMAND__INIT;
    c.op = op;
    c.dataset = (char *)dataset;
    c.index = index;
    c.nshards = nshards;
    c.job_id = (char *)"job-7";
    c.attempt = 2;
    c.size = data ? strlen(data) : 0;
    c.crc = data ? crc_of(data) : 0;
    qn_datacmd_handle(f->w, &c);
}

Test(datacmd, seal_marks_a_datasets_shards_complete)
{
    wfix f;
    wfix_start(&f, &(wfix_opts){.data = 1});
    wfix_put_shard(&f, "logs", 0, "a\n");
    wfix_put_shard(&f, "logs", 1, "b\n");
    wfix_put_shard(&f, "other", 0, "c\n");
    command(&f, QUERN__DATA_COMMAND__OP__SEAL, "logs", 0, 2, NULL);
    const qn_shard *sh = qn_store_find(f.w->store, "logs", 1);
    cr_assert(sh->sealed);
    cr_assert_eq(sh->nshards, 2);
    cr_assert_not(qn_store_find(f.w->store, "other", 0)->sealed);
    wfix_stop(&f);
}

Test(datacmd, drop_deletes_a_datasets_shards)
{
    wfix f;
    wfix_start(&f, &(wfix_opts){.data = 1});
    wfix_put_shard(&f, "logs", 0, "a\n");
    wfix_put_shard(&f, "other", 0, "c\n");
    command(&f, QUERN__DATA_COMMAND__OP__DROP, "logs", 0, 0, NULL);
    cr_assert_null(qn_store_find(f.w->store, "logs", 0));
    cr_assert_not_null(qn_store_find(f.w->store, "other", 0));
    wfix_stop(&f);
}

Test(datacmd, commit_installs_a_reduces_staged_output_as_a_shard)
{
    wfix f;
    wfix_start(&f, &(wfix_opts){.data = 1});
    const char *out = "word\t3\n";
    qn_buf p = {0};
    qn_buf_printf(&p, "%s/.staging/job-7/_temporary/job-7",
                  qn_store_dir(f.w->store));
    cr_assert_eq(qn_mkdirs(p.data, 0755), 0);
    qn_buf_printf(&p, "/part-00004.a2");
    cr_assert_eq(qn_write_file_atomic(p.data, out, strlen(out)), 0);
    qn_buf_release(&p);
    command(&f, QUERN__DATA_COMMAND__OP__COMMIT, "counts", 4, 0, out);
    const qn_shard *sh = qn_store_find(f.w->store, "counts", 4);
    cr_assert_not_null(sh);
    cr_assert_eq(sh->size, strlen(out));
    cr_assert_null(wfix_next(&f, QUERN__ENVELOPE__BODY_DATA_REPORT, 200));
    wfix_stop(&f);
}

Test(datacmd, a_commit_that_fails_is_reported_to_the_master)
{
    wfix f;
    wfix_start(&f, &(wfix_opts){.data = 1});
    command(&f, QUERN__DATA_COMMAND__OP__COMMIT, "counts", 4, 0, "gone\n");
    cr_assert_null(qn_store_find(f.w->store, "counts", 4));
    Quern__Envelope *env =
        wfix_next(&f, QUERN__ENVELOPE__BODY_DATA_REPORT, 10000);
    cr_assert_not_null(env);
    const Quern__DataReport *dr = env->data_report;
    cr_assert_str_eq(dr->worker_id, f.w->id);
    cr_assert_eq(dr->n_failed, 1);
    cr_assert_str_eq(dr->failed[0]->dataset, "counts");
    cr_assert_eq(dr->failed[0]->index, 4);
    cr_assert_str_eq(dr->failed[0]->job_id, "job-7");
    cr_assert(strstr(dr->failed[0]->reason, "part-00004.a2"), "%s",
              dr->failed[0]->reason);
    qn_wire_free(env);
    wfix_stop(&f);
}

Test(datacmd, a_worker_without_a_data_dir_ignores_them)
{
    wfix f;
    wfix_start(&f, &(wfix_opts){0});
    command(&f, QUERN__DATA_COMMAND__OP__COMMIT, "counts", 4, 0, "x\n");
    cr_assert_null(wfix_next(&f, QUERN__ENVELOPE__BODY_DATA_REPORT, 200));
    wfix_stop(&f);
}
