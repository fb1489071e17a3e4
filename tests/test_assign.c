/*
 * test_assign.c -- assignments and the plugins they need
 * (worker/assign.c): started at once when the plugin is cached, waiting
 * (and asking the master, once) otherwise, started or failed when it
 * arrives, cancelled or dropped while waiting.
 */
#include "wfixture.h"

#include "../worker/assign.h"
#include "../worker/masterlink.h"
#include "layout.h"
#include "sha256.h"
#include "shipped.h"

TestSuite(assign, .fini = qn_test_leak_check);

static const char plugin[] = "not really an ELF file, but bytes to cache";

/* The SHA-256 of plugin, in hex. */
static void plugin_hash(char hex[65])
{
    uint8_t d[32];
    qn_sha256(plugin, sizeof plugin, d);
    qn_sha256_hex(d, hex);
}

/* Assign job's map task (attempt 1) with the plugin of hash. */
static void assign(wfix *f, const char *job, unsigned task, const char *hash)
{
    Quern__Envelope *env =
        wfix_assignment(job, QUERN__TASK_KIND__MAP, task, 1, hash);
    qn_assign_handle(f->w, env, 1000);
    qn_wire_free(env);
}

/* The master's answer to a plugin request. */
static void reply(wfix *f, const char *hash, const void *data, size_t len,
                  const char *error)
{
    Quern__PluginReply r = QUERN__PLUGIN_REPLY__INIT;
    r.hash = (char *)hash;
    r.data.data = (uint8_t *)data;
    r.data.len = len;
    if (error)
        r.error = (char *)error;
    qn_assign_on_plugin(f->w, &r);
}

/* The next plugin request, which must be for hash. */
static void expect_request(wfix *f, const char *hash)
{
    Quern__Envelope *env =
        wfix_next(f, QUERN__ENVELOPE__BODY_PLUGIN_REQUEST, 10000);
    cr_assert_not_null(env, "no plugin request");
    cr_assert_str_eq(env->plugin_request->hash, hash);
    cr_assert_str_eq(env->plugin_request->worker_id, f->w->id);
    qn_wire_free(env);
}

/* Is the plugin of hash in the worker's cache? */
static int cached(wfix *f, const char *hash)
{
    qn_buf p = {0};
    qn_plugin_path(&p, f->w->work_dir, hash);
    int ok = access(p.data, R_OK) == 0;
    qn_buf_release(&p);
    return ok;
}

static void sleeping(wfix_opts *o)
{
    *o = (wfix_opts){.task = "exec sleep 30"};
}

Test(assign, a_cached_plugin_starts_the_task_at_once)
{
    wfix f;
    wfix_opts o;
    sleeping(&o);
    wfix_start(&f, &o);
    char hex[65];
    plugin_hash(hex);
    qn_buf p = {0};
    qn_plugin_path(&p, f.w->work_dir, hex);
    cr_assert_eq(qn_write_file_atomic(p.data, plugin, sizeof plugin), 0);
    qn_buf_release(&p);
    assign(&f, "job-1", 0, hex);
    cr_assert_eq(f.w->att.n, 1);
    cr_assert_eq(f.w->wait.n, 0);
    cr_assert_null(wfix_next(&f, QUERN__ENVELOPE__BODY_PLUGIN_REQUEST, 200));
    /* A task without a plugin to fetch starts too. */
    assign(&f, "job-1", 1, "");
    cr_assert_eq(f.w->att.n, 2);
    wfix_stop(&f);
}

Test(assign, tasks_wait_for_a_missing_plugin_which_is_asked_for_once)
{
    wfix f;
    wfix_opts o;
    sleeping(&o);
    wfix_start(&f, &o);
    char hex[65];
    plugin_hash(hex);
    assign(&f, "job-1", 0, hex);
    assign(&f, "job-1", 1, hex);
    assign(&f, "job-1", 1, hex); /* a duplicate */
    cr_assert_eq(f.w->att.n, 0);
    cr_assert_eq(f.w->wait.n, 2);
    expect_request(&f, hex);
    cr_assert_null(wfix_next(&f, QUERN__ENVELOPE__BODY_PLUGIN_REQUEST, 200),
                   "asked once for both");
    /* The master counts them as running meanwhile. */
    qn_masterlink_heartbeat(f.w, 1000);
    Quern__Envelope *hb = wfix_next(&f, QUERN__ENVELOPE__BODY_HEARTBEAT, 10000);
    cr_assert_not_null(hb);
    cr_assert_eq(hb->heartbeat->n_running, 2);
    cr_assert_eq(hb->heartbeat->n_work, 0);
    qn_wire_free(hb);
    wfix_stop(&f);
}

Test(assign, the_plugin_arriving_is_cached_and_starts_what_waited)
{
    wfix f;
    wfix_opts o;
    sleeping(&o);
    wfix_start(&f, &o);
    char hex[65];
    plugin_hash(hex);
    assign(&f, "job-1", 0, hex);
    assign(&f, "job-1", 1, hex);
    assign(&f, "job-2", 0, "feed");
    reply(&f, hex, plugin, sizeof plugin, NULL);
    cr_assert_eq(f.w->att.n, 2);
    cr_assert_eq(f.w->wait.n, 1, "job-2 waits for another plugin");
    cr_assert_str_eq(f.w->wait.v[0].spec->job_id, "job-2");
    cr_assert(cached(&f, hex));
    wfix_stop(&f);
}

Test(assign, a_plugin_with_other_bytes_fails_what_waited)
{
    wfix f;
    wfix_start(&f, &(wfix_opts){0});
    char hex[65];
    plugin_hash(hex);
    assign(&f, "job-1", 0, hex);
    reply(&f, hex, "tampered", 8, NULL);
    cr_assert_eq(f.w->wait.n, 0);
    cr_assert_eq(f.w->att.n, 0);
    Quern__Envelope *env = wfix_update(&f, "job-1", 0, 1);
    cr_assert_eq(env->task_update->state, QUERN__TASK_STATE__FAILED);
    cr_assert(strstr(env->task_update->reason, "arrived with SHA-256"), "%s",
              env->task_update->reason);
    qn_wire_free(env);
    cr_assert_not(cached(&f, hex));
    wfix_stop(&f);
}

Test(assign, a_plugin_the_master_cannot_supply_fails_what_waited)
{
    wfix f;
    wfix_start(&f, &(wfix_opts){0});
    assign(&f, "job-1", 0, "abc");
    reply(&f, "abc", NULL, 0, "no such plugin");
    Quern__Envelope *env = wfix_update(&f, "job-1", 0, 1);
    cr_assert_str_eq(env->task_update->reason,
                     "the master cannot supply plugin abc: no such plugin");
    qn_wire_free(env);
    cr_assert_eq(f.w->wait.n, 0);
    wfix_stop(&f);
}

Test(assign, an_unanswered_request_is_made_again_after_five_seconds)
{
    wfix f;
    wfix_start(&f, &(wfix_opts){0});
    assign(&f, "job-1", 0, "abc"); /* asked at 1000 */
    expect_request(&f, "abc");
    cr_assert_eq(qn_assign_next_retry(f.w), 6000);
    qn_assign_retry(f.w, 5999);
    cr_assert_null(wfix_next(&f, QUERN__ENVELOPE__BODY_PLUGIN_REQUEST, 200));
    qn_assign_retry(f.w, 6000);
    expect_request(&f, "abc");
    cr_assert_eq(qn_assign_next_retry(f.w), 11000);
    wfix_stop(&f);
}

Test(assign, a_cancelled_waiting_task_is_reported_killed)
{
    wfix f;
    wfix_start(&f, &(wfix_opts){0});
    assign(&f, "job-1", 0, "abc");
    Quern__AttemptRef r = wfix_ref("job-1", QUERN__TASK_KIND__MAP, 1, 1);
    cr_assert_eq(qn_assign_cancel(f.w, &r), 0, "task 1 is not waiting");
    r.task = 0;
    cr_assert_eq(qn_assign_cancel(f.w, &r), 1);
    cr_assert_eq(f.w->wait.n, 0);
    Quern__Envelope *env = wfix_update(&f, "job-1", 0, 1);
    cr_assert_eq(env->task_update->state, QUERN__TASK_STATE__KILLED);
    qn_wire_free(env);
    cr_assert_eq(qn_assign_next_retry(f.w), INT64_MAX);
    wfix_stop(&f);
}

Test(assign, dropping_a_job_drops_only_its_waiting_tasks)
{
    wfix f;
    wfix_start(&f, &(wfix_opts){0});
    assign(&f, "job-1", 0, "abc");
    assign(&f, "job-2", 0, "abc");
    assign(&f, "job-1", 1, "abc");
    qn_assign_drop_job(f.w, "job-1");
    cr_assert_eq(f.w->wait.n, 1);
    cr_assert_str_eq(f.w->wait.v[0].spec->job_id, "job-2");
    cr_assert_null(wfix_next(&f, QUERN__ENVELOPE__BODY_TASK_UPDATE, 200),
                   "dropped without a report");
    qn_assign_drop_job(f.w, NULL);
    cr_assert_eq(f.w->wait.n, 0);
    wfix_stop(&f);
}

/* ---- files shipped with the job (--file) ----------------------------------
 */

static const char dict[] = "alpha\nbeta\n";
static const char words[] = "gamma\n";

/* A shipped file named name holding s: its description, hash in hex. */
static Quern__ShippedFile shipped(const char *name, const char *s, char hex[65])
{
    uint8_t d[32];
    qn_sha256(s, strlen(s), d);
    qn_sha256_hex(d, hex);
    Quern__ShippedFile f = QUERN__SHIPPED_FILE__INIT;
    f.name = (char *)name;
    f.hash = hex;
    f.size = strlen(s);
    return f;
}

/* Assign job's map task, with the plugin cached, shipping files. */
static void assign_files(wfix *f, const char *job, unsigned task,
                         Quern__ShippedFile **files, size_t n)
{
    char hex[65];
    plugin_hash(hex);
    if (!cached(f, hex)) {
        qn_buf p = {0};
        qn_plugin_path(&p, f->w->work_dir, hex);
        cr_assert_eq(qn_write_file_atomic(p.data, plugin, sizeof plugin), 0);
        qn_buf_release(&p);
    }
    Quern__Envelope *env = wfix_assignment_files(job, QUERN__TASK_KIND__MAP,
                                                 task, 1, hex, files, n);
    qn_assign_handle(f->w, env, 1000);
    qn_wire_free(env);
}

/* The cached file of hash: its mode, or -1 when it is not there. */
static int file_mode(wfix *f, const char *hash)
{
    qn_buf p = {0};
    qn_shipped_path(&p, f->w->work_dir, hash);
    struct stat st;
    int mode = stat(p.data, &st) == 0 ? (int)(st.st_mode & 07777) : -1;
    qn_buf_release(&p);
    return mode;
}

Test(assign, a_task_waits_for_each_file_it_ships_until_the_last_arrives)
{
    wfix f;
    wfix_opts o;
    sleeping(&o);
    wfix_start(&f, &o);
    char h1[65], h2[65];
    Quern__ShippedFile a = shipped("dict.txt", dict, h1);
    Quern__ShippedFile b = shipped("words", words, h2);
    Quern__ShippedFile *fs[] = {&a, &b};
    assign_files(&f, "job-1", 0, fs, 2);
    assign_files(&f, "job-1", 1, fs, 2);
    cr_assert_eq(f.w->att.n, 0);
    cr_assert_eq(f.w->wait.n, 2);
    /* Each missing file asked for once, by hash; the cached plugin not. */
    expect_request(&f, h1);
    expect_request(&f, h2);
    cr_assert_null(wfix_next(&f, QUERN__ENVELOPE__BODY_PLUGIN_REQUEST, 200));
    reply(&f, h2, words, strlen(words), NULL);
    cr_assert_eq(f.w->att.n, 0, "started without dict.txt");
    cr_assert_eq(f.w->wait.n, 2);
    reply(&f, h1, dict, strlen(dict), NULL);
    cr_assert_eq(f.w->att.n, 2);
    cr_assert_eq(f.w->wait.n, 0);
    cr_assert_eq(file_mode(&f, h1), 0444);
    cr_assert_eq(file_mode(&f, h2), 0444);
    /* Cached now: the next task starts at once, asking for nothing. */
    assign_files(&f, "job-1", 2, fs, 2);
    cr_assert_eq(f.w->att.n, 3);
    cr_assert_null(wfix_next(&f, QUERN__ENVELOPE__BODY_PLUGIN_REQUEST, 200));
    wfix_stop(&f);
}

Test(assign, a_file_the_master_cannot_supply_fails_the_tasks_naming_it)
{
    wfix f;
    wfix_start(&f, &(wfix_opts){0});
    char h1[65], h2[65];
    Quern__ShippedFile a = shipped("dict.txt", dict, h1);
    Quern__ShippedFile b = shipped("words", words, h2);
    Quern__ShippedFile *fs[] = {&a, &b}, *only_b[] = {&b};
    assign_files(&f, "job-1", 0, fs, 2);
    assign_files(&f, "job-2", 0, only_b, 1);
    reply(&f, h1, NULL, 0, "no running job has it");
    Quern__Envelope *env = wfix_update(&f, "job-1", 0, 1);
    cr_assert_eq(env->task_update->state, QUERN__TASK_STATE__FAILED);
    cr_assert(strstr(env->task_update->reason,
                     "the master cannot supply file dict.txt"),
              "%s", env->task_update->reason);
    cr_assert(strstr(env->task_update->reason, "no running job has it"), "%s",
              env->task_update->reason);
    qn_wire_free(env);
    cr_assert_eq(f.w->wait.n, 1, "job-2 does not need dict.txt");
    cr_assert_str_eq(f.w->wait.v[0].spec->job_id, "job-2");
    wfix_stop(&f);
}

Test(assign, a_file_with_other_bytes_is_not_cached_and_fails_the_task)
{
    wfix f;
    wfix_start(&f, &(wfix_opts){0});
    char h1[65];
    Quern__ShippedFile a = shipped("dict.txt", dict, h1);
    Quern__ShippedFile *fs[] = {&a};
    assign_files(&f, "job-1", 0, fs, 1);
    reply(&f, h1, words, strlen(words), NULL);
    Quern__Envelope *env = wfix_update(&f, "job-1", 0, 1);
    cr_assert(strstr(env->task_update->reason, "file dict.txt"), "%s",
              env->task_update->reason);
    cr_assert(strstr(env->task_update->reason, "arrived with SHA-256"), "%s",
              env->task_update->reason);
    qn_wire_free(env);
    cr_assert_eq(file_mode(&f, h1), -1);
    wfix_stop(&f);
}

Test(assign, a_plugin_also_shipped_as_a_file_is_cached_as_both)
{
    wfix f;
    wfix_opts o;
    sleeping(&o);
    wfix_start(&f, &o);
    char hex[65];
    plugin_hash(hex);
    Quern__ShippedFile a = QUERN__SHIPPED_FILE__INIT;
    a.name = (char *)"job.so";
    a.hash = hex;
    a.size = sizeof plugin;
    Quern__ShippedFile *fs[] = {&a};
    Quern__Envelope *env =
        wfix_assignment_files("job-1", QUERN__TASK_KIND__MAP, 0, 1, hex, fs, 1);
    qn_assign_handle(f.w, env, 1000);
    qn_wire_free(env);
    expect_request(&f, hex);
    cr_assert_null(wfix_next(&f, QUERN__ENVELOPE__BODY_PLUGIN_REQUEST, 200),
                   "asked once for the one blob");
    reply(&f, hex, plugin, sizeof plugin, NULL);
    cr_assert_eq(f.w->att.n, 1);
    cr_assert(cached(&f, hex));
    cr_assert_eq(file_mode(&f, hex), 0444);
    wfix_stop(&f);
}
