/*
 * test_master.c -- a whole master fed messages (qn_master_feed) with a
 * clock the test moves: what each handler changes in its state, what it
 * sends back, and the journal's notes. Replies reach DEALER sockets the
 * test connects to the master's socket with the routing ids it feeds
 * from, so they can be read and checked.
 */
#include "helpers.h"

#include "../master/master.h"
#include "../master/datasets.h"
#include "../master/mstate.h"
#include "../master/send.h"
#include "../master/status.h"
#include "../master/timers.h"
#include "sha256.h"
#include "util.h"
#include "wire.h"

#include <sys/stat.h>

static qn_master *m;
static char *dir;             /* the test's own folder */
static int64_t now;           /* the test's clock */
static uint64_t session;      /* w1's, from its welcome */
static unsigned char *plugin; /* wordcount.so */
static size_t plugin_len;

#define W1 0
#define C1 1
#define W2 2  /* worker "w2" */
#define W1B 3 /* w1's connection after its process started again */
#define NPEERS 4
static const char *const IDS[NPEERS] = {"w1", "c1", "w2", "w1b"};
static void *ws[NPEERS]; /* DEALERs, each with its routing id from IDS */

static uint64_t epoch; /* the epoch w1's messages carry */

/* The files C1's submissions ship (--file), and the bytes they carry. */
static Quern__ShippedFile **ship;
static size_t nship;
static ProtobufCBinaryData *ship_data;
static size_t nship_data;

/* A master (with its state in state_dir, if set) and the test's sockets
 * to it. */
static void s_open(const char *state_dir)
{
    char ep[64];
    snprintf(ep, sizeof ep, "inproc://master-%d", (int)getpid());
    qn_master_config cfg = {.listen = ep,
                            .heartbeat_ms = 1000,
                            .dead_ms = 10000,
                            .task_timeout_ms = 60000,
                            .ready_fd = -1,
                            .locality_wait_ms = 1000,
                            .shard_wait_ms = 60000,
                            .http = "off",
                            .state_dir = state_dir,
                            .keep_jobs = 1000,
                            .recovery_ms = state_dir ? 3000 : 0};
    char err[512];
    m = qn_master_new(&cfg, err, sizeof err);
    cr_assert_not_null(m, "no master: %s", err);
    now = m->stats.start;
    for (int i = 0; i < NPEERS; i++) {
        ws[i] = zmq_socket(m->net.ctx, ZMQ_DEALER);
        zmq_setsockopt(ws[i], ZMQ_ROUTING_ID, IDS[i], strlen(IDS[i]));
        int linger = 0;
        zmq_setsockopt(ws[i], ZMQ_LINGER, &linger, sizeof linger);
        cr_assert_eq(zmq_connect(ws[i], ep), 0);
    }
}

/* The test's sockets and the master gone (a restart's first half). */
static void s_close(void)
{
    for (int i = 0; i < NPEERS; i++)
        zmq_close(ws[i]);
    qn_master_destroy(&m);
}

static void setup(void)
{
    dir = qn_test_tmpdir();
    epoch = 0;
    nship = nship_data = 0;
    s_open(NULL);
    plugin = qn_test_build_file("jobs/wordcount.so", &plugin_len);
}

static void teardown(void)
{
    s_close();
    free(plugin);
    qn_rmtree(dir);
    free(dir);
    qn_test_leak_check();
}

TestSuite(master, .init = setup, .fini = teardown);

/* ---- talking to it ------------------------------------------------------- */

/* Feed env as if peer (W1 or C1) sent it, at the test's clock. */
static void s_feed(int peer, Quern__Envelope *env)
{
    qn_buf b = {0};
    cr_assert_eq(qn_wire_pack(env, &b), 0);
    qn_master_feed(m, "127.0.0.1", IDS[peer], strlen(IDS[peer]), b.data, b.len,
                   now);
    qn_buf_release(&b);
}

/* The next message the master sent peer (free it), or NULL if none. */
static Quern__Envelope *s_next(int peer)
{
    qn_frames f = {0};
    Quern__Envelope *env = NULL;
    /* inproc delivers at once; poll briefly so a pipe not yet attached
     * does not turn into a false "nothing". */
    zmq_pollitem_t it = {.socket = ws[peer], .events = ZMQ_POLLIN};
    if (zmq_poll(&it, 1, 200) == 1 && qn_wire_recv(ws[peer], 0, &f) == 1) {
        char err[128];
        uint32_t v;
        cr_assert_eq(
            qn_wire_decode(f.env.data, f.env.len, &env, &v, err, sizeof err), 0,
            "%s", err);
    }
    qn_frames_release(&f);
    return env;
}

/* The next message to peer of kind body_case, skipping others (free it);
 * fails the test if none comes. */
static Quern__Envelope *s_expect(int peer, Quern__Envelope__BodyCase c)
{
    for (;;) {
        Quern__Envelope *env = s_next(peer);
        cr_assert_not_null(env, "no message of kind %d reached %s", (int)c,
                           IDS[peer]);
        if (env->body_case == c)
            return env;
        qn_wire_free(env);
    }
}

/* Read and free whatever reached peer so far; returns how many. */
static int s_drain(int peer)
{
    int n = 0;
    Quern__Envelope *env;
    while ((env = s_next(peer))) {
        qn_wire_free(env);
        n++;
    }
    return n;
}

static void s_hello(const char *id, uint64_t with_session)
{
    Quern__Envelope e = QUERN__ENVELOPE__INIT;
    Quern__WorkerHello h = QUERN__WORKER_HELLO__INIT;
    h.worker_id = (char *)id;
    h.slots = 1; /* so a job's reduce waits for its map */
    h.shuffle_endpoint = (char *)"tcp://127.0.0.1:9";
    h.host = (char *)"testhost";
    h.pid = 4242;
    h.has_data = 1;
    h.session = with_session;
    e.body_case = QUERN__ENVELOPE__BODY_WORKER_HELLO;
    e.worker_hello = &h;
    s_feed(W1, &e);
}

/* w1 joins; its session is kept for its later messages. */
static void s_join(void)
{
    s_hello("w1", 0);
    Quern__Envelope *env = s_expect(W1, QUERN__ENVELOPE__BODY_WORKER_WELCOME);
    session = env->worker_welcome->session;
    cr_assert_neq(session, 0);
    qn_wire_free(env);
}

/* w1 heartbeats (number seq) with its session, or with another. */
static void s_heartbeat(uint64_t seq, uint64_t with_session)
{
    Quern__Envelope e = QUERN__ENVELOPE__INIT;
    Quern__Heartbeat hb = QUERN__HEARTBEAT__INIT;
    hb.worker_id = (char *)"w1";
    hb.session = with_session;
    hb.seq = seq;
    hb.epoch = epoch;
    e.body_case = QUERN__ENVELOPE__BODY_HEARTBEAT;
    e.heartbeat = &hb;
    s_feed(W1, &e);
}

/* w1 reports it holds shard 0 of dataset (size bytes). */
static void s_holds(const char *dataset, uint64_t size)
{
    Quern__Envelope e = QUERN__ENVELOPE__INIT;
    Quern__DataReport dr = QUERN__DATA_REPORT__INIT;
    Quern__ShardInfo si = QUERN__SHARD_INFO__INIT;
    Quern__ShardInfo *sip = &si;
    si.dataset = (char *)dataset;
    si.size = size;
    dr.worker_id = (char *)"w1";
    dr.session = session;
    dr.added = &sip;
    dr.n_added = 1;
    e.body_case = QUERN__ENVELOPE__BODY_DATA_REPORT;
    e.data_report = &dr;
    s_feed(W1, &e);
}

/* C1 sends put step op of dataset name (1 replica, nshards shards). */
static void s_put_send(Quern__PutRequest__Op op, const char *name,
                       uint32_t nshards)
{
    Quern__Envelope e = QUERN__ENVELOPE__INIT;
    Quern__PutRequest pr = QUERN__PUT_REQUEST__INIT;
    pr.dataset = (char *)name;
    pr.replicas = 1;
    pr.op = op;
    pr.nshards = nshards;
    e.body_case = QUERN__ENVELOPE__BODY_PUT_REQUEST;
    e.put_request = &pr;
    s_feed(C1, &e);
}

/* A file of text in the test's folder; returns its path (static). */
static const char *s_input(const char *name, const char *text)
{
    static char path[600];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    fputs(text, f);
    fclose(f);
    return path;
}

/* C1 submits a word count of input (a path or dataset) into output, with
 * nreduce reduces and splits of split_size bytes. */
static void s_submit_sized(const char *input, const char *output, int watch,
                           unsigned nreduce, uint64_t split_size)
{
    Quern__Envelope e = QUERN__ENVELOPE__INIT;
    Quern__SubmitJob sj = QUERN__SUBMIT_JOB__INIT;
    Quern__JobSpec s = QUERN__JOB_SPEC__INIT;
    Quern__InputPath in = QUERN__INPUT_PATH__INIT;
    Quern__InputPath *inp = &in;
    in.given = (char *)input;
    in.path = (char *)input;
    s.name = (char *)"wordcount";
    s.plugin = (char *)"/wordcount.so";
    s.n_inputs = 1;
    s.inputs = &inp;
    s.output = (char *)output;
    s.nreduce = nreduce;
    s.split_size = split_size;
    s.sort_mb = 64;
    s.max_attempts = 2;
    s.compress_level = 1;
    s.files = ship;
    s.n_files = nship;
    sj.file_data = ship_data;
    sj.n_file_data = nship_data;
    sj.spec = &s;
    sj.watch = watch;
    sj.plugin_data.data = plugin;
    sj.plugin_data.len = plugin_len;
    e.body_case = QUERN__ENVELOPE__BODY_SUBMIT_JOB;
    e.submit_job = &sj;
    s_feed(C1, &e);
}

/* C1 submits a word count of input into output: one reduce, one map for
 * each MiB. */
static void s_submit(const char *input, const char *output, int watch)
{
    s_submit_sized(input, output, watch, 1, 1 << 20);
}

/* The answer to C1's submit: the job id, or its error, into out. */
static int s_submit_reply(char *out, size_t cap)
{
    Quern__Envelope *env = s_expect(C1, QUERN__ENVELOPE__BODY_SUBMIT_REPLY);
    const Quern__SubmitReply *r = env->submit_reply;
    int ok = r->error[0] == 0;
    snprintf(out, cap, "%s", ok ? r->job_id : r->error);
    qn_wire_free(env);
    return ok;
}

/* w1 reports attempt of task in state; a map's success says where its
 * one partition is. */
static void s_update(const char *job, Quern__TaskKind kind, unsigned task,
                     unsigned attempt, Quern__TaskState state,
                     unsigned npartitions)
{
    Quern__Envelope e = QUERN__ENVELOPE__INIT;
    Quern__TaskUpdate u = QUERN__TASK_UPDATE__INIT;
    Quern__AttemptRef a = QUERN__ATTEMPT_REF__INIT;
    Quern__PartitionInfo p = QUERN__PARTITION_INFO__INIT;
    Quern__PartitionInfo *pp[2] = {&p, &p};
    Quern__Counter c = QUERN__COUNTER__INIT;
    Quern__Counter *cp = &c;
    a.job_id = (char *)job;
    a.kind = kind;
    a.task = task;
    a.attempt = attempt;
    u.worker_id = (char *)"w1";
    u.session = session;
    u.epoch = epoch;
    u.attempt = &a;
    u.state = state;
    u.progress = state == QUERN__TASK_STATE__RUNNING ? 0.5 : 1;
    u.reason = (char *)"failing on purpose";
    u.stderr_tail = (char *)"last words";
    c.name = (char *)"lines";
    c.value = 3;
    u.counters = &cp;
    u.n_counters = 1;
    p.bytes = 20;
    p.raw_bytes = 30;
    p.records = 2;
    u.n_partitions = npartitions;
    u.partitions = npartitions ? pp : NULL;
    e.body_case = QUERN__ENVELOPE__BODY_TASK_UPDATE;
    e.task_update = &u;
    s_feed(W1, &e);
}

/* The AssignTask w1 gets next: its kind, task and attempt. */
static void s_expect_assign(Quern__TaskKind kind, unsigned task,
                            unsigned attempt)
{
    Quern__Envelope *env = s_expect(W1, QUERN__ENVELOPE__BODY_ASSIGN_TASK);
    const Quern__TaskSpec *ts = env->assign_task->spec;
    cr_assert(ts->kind == kind && ts->task == task && ts->attempt == attempt,
              "assigned kind %d task %u attempt %u, not %d %u %u", ts->kind,
              ts->task, ts->attempt, kind, task, attempt);
    qn_wire_free(env);
}

/* A running job on w1: one map (attempt 1 assigned), one reduce. */
static int s_running_job(char *id, size_t cap, int watch)
{
    s_join();
    char out[600];
    snprintf(out, sizeof out, "%s/out", dir);
    s_submit(s_input("in.txt", "a b a\n"), out, watch);
    cr_assert(s_submit_reply(id, cap), "submit refused: %s", id);
    s_expect_assign(QUERN__TASK_KIND__MAP, 0, 1);
    return qn_jobs_find(&m->jobs, id);
}

/* ---- workers ------------------------------------------------------------- */

Test(master, hello_joins_a_worker_and_the_journal_notes_it)
{
    s_join();
    cr_assert_eq(m->workers.n, 1);
    cr_assert_str_eq(m->workers.v[0].id, "w1");
    cr_assert_str_eq(m->workers.v[0].host, "testhost");
    cr_assert_eq(m->workers.v[0].session, session);
    cr_assert_eq(m->journal.count[QN_CHANGE_WORKER_KNOWN], 1);
    cr_assert_eq(m->events.n, 1);
    cr_assert_str_eq(qn_evring_at(&m->events, 0)->kind, "worker_joined");
}

Test(master, a_hello_again_with_its_session_keeps_the_worker)
{
    s_join();
    s_hello("w1", session);
    qn_wire_free(s_expect(W1, QUERN__ENVELOPE__BODY_WORKER_WELCOME));
    cr_assert_eq(m->workers.n, 1, "not a second entry");
    cr_assert_eq(m->journal.count[QN_CHANGE_WORKER_KNOWN], 1);
}

Test(master, a_message_without_the_worker_s_session_is_dropped)
{
    s_join();
    s_heartbeat(1, session + 1);
    cr_assert_eq(m->net.drops.by_reason[DROP_INVALID], 1);
    cr_assert_eq(m->workers.v[0].hb_seq, 0, "its heartbeat was not taken");
    s_heartbeat(1, session);
    cr_assert_eq(m->workers.v[0].hb_seq, 1);
}

Test(master, an_unknown_worker_is_asked_to_join)
{
    s_heartbeat(0, 0);
    Quern__Envelope *env = s_expect(W1, QUERN__ENVELOPE__BODY_WORKER_WELCOME);
    cr_assert(env->worker_welcome->rejoin);
    qn_wire_free(env);
    cr_assert_eq(m->workers.n, 0);
}

/* ---- submitting ---------------------------------------------------------- */

Test(master, submit_refuses_input_that_holds_no_data)
{
    s_join();
    char out[600], why[300];
    snprintf(out, sizeof out, "%s/out", dir);
    /* A dataset, complete, of no shards. */
    qn_dataset *d = qn_catalog_create(&m->data.cat, "none", "put", 1);
    d->sealed = 1;
    s_submit("none", out, 0);
    cr_assert(!s_submit_reply(why, sizeof why));
    cr_assert_str_eq(why, "the input holds no data");
    cr_assert_eq(m->jobs.n, 0);
    cr_assert_eq(m->journal.count[QN_CHANGE_JOB_SUBMITTED], 0);
}

Test(master, submit_refuses_a_dataset_that_exists)
{
    s_join();
    qn_catalog_create(&m->data.cat, "counts", "put", 1);
    char why[300];
    s_submit(s_input("in.txt", "a\n"), "counts", 0);
    cr_assert(!s_submit_reply(why, sizeof why));
    cr_assert_str_eq(why, "dataset counts exists; quern rm counts first or "
                          "choose another name");
}

Test(master, submit_refuses_a_folder_a_running_job_writes)
{
    char id[64], why[300], out[600];
    s_running_job(id, sizeof id, 0);
    snprintf(out, sizeof out, "%s/out", dir);
    s_submit(s_input("in2.txt", "b\n"), out, 0);
    cr_assert(!s_submit_reply(why, sizeof why));
    cr_assert(strstr(why, "is being written by") && strstr(why, id), "%s", why);
    cr_assert_eq(m->jobs.n, 1);
}

Test(master, submit_adds_a_job_and_assigns_its_map)
{
    char id[64];
    int jx = s_running_job(id, sizeof id, 0);
    cr_assert_eq(jx, 0);
    const qn_job *j = &m->jobs.v[jx];
    cr_assert_eq(j->nmaps, 1);
    cr_assert_eq(j->nreduce, 1);
    cr_assert_eq(m->journal.count[QN_CHANGE_JOB_SUBMITTED], 1);
    cr_assert_eq(qn_job_counter(j, "map_attempts"), 1);
    const qn_arec *r = qn_job_arec_find(&m->jobs.v[jx], QN_MAP, 0, 1);
    cr_assert(r && r->worker == 0 && r->start == now);
    cr_assert_eq(m->plugins.n, 1);
    cr_assert_str_eq(m->plugins.v[0].hash, j->plugin_hash);
}

/* ---- task updates -------------------------------------------------------- */

Test(master, a_job_runs_to_its_committed_output)
{
    char id[64], path[800];
    int jx = s_running_job(id, sizeof id, 0);
    s_update(id, QUERN__TASK_KIND__MAP, 0, 1, QUERN__TASK_STATE__SUCCEEDED, 1);
    const qn_job *j = &m->jobs.v[jx];
    cr_assert_eq(j->outs[0].attempt, 1);
    cr_assert_eq(j->outs[0].parts[0].raw_bytes, 30);
    cr_assert_eq(qn_job_counter(j, "lines"), 3);
    cr_assert_eq(m->journal.count[QN_CHANGE_TASK_DONE], 1);
    s_expect_assign(QUERN__TASK_KIND__REDUCE, 0, 1);
    /* The reduce's output, where a worker would have written it. */
    snprintf(path, sizeof path, "%s/out/_temporary/%s", dir, id);
    cr_assert_eq(qn_mkdirs(path, 0755), 0);
    snprintf(path, sizeof path, "%s/out/_temporary/%s/part-00000.a1", dir, id);
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    fputs("a\t2\nb\t1\n", f);
    fclose(f);
    s_update(id, QUERN__TASK_KIND__REDUCE, 0, 1, QUERN__TASK_STATE__SUCCEEDED,
             0);
    j = &m->jobs.v[jx];
    cr_assert_eq(j->state, QUERN__JOB_STATE__JOB_SUCCEEDED, "error: %s",
                 j->error ? j->error : "");
    cr_assert_eq(m->journal.count[QN_CHANGE_JOB_ENDED], 1);
    /* Each attempt's number was noted before it was sent. */
    cr_assert_eq(m->journal.count[QN_CHANGE_TASK_STARTED], 2);
    struct stat st;
    snprintf(path, sizeof path, "%s/out/_SUCCESS", dir);
    cr_assert_eq(stat(path, &st), 0, "no _SUCCESS");
    snprintf(path, sizeof path, "%s/out/part-00000", dir);
    cr_assert_eq(stat(path, &st), 0, "no part file");
    cr_assert_null(j->outs, "the job's task records are trimmed");
    qn_wire_free(s_expect(W1, QUERN__ENVELOPE__BODY_JOB_END));
}

Test(master, a_failed_attempt_is_kept_and_runs_again)
{
    char id[64];
    int jx = s_running_job(id, sizeof id, 0);
    s_update(id, QUERN__TASK_KIND__MAP, 0, 1, QUERN__TASK_STATE__FAILED, 0);
    const qn_job *j = &m->jobs.v[jx];
    cr_assert_eq(j->nfailures, 1);
    cr_assert_str_eq(j->failures[0].reason, "failing on purpose");
    cr_assert_str_eq(j->failures[0].tail, "last words");
    cr_assert_str_eq(j->failures[0].worker, "w1");
    cr_assert_eq(m->workers.v[0].failures, 1);
    cr_assert_eq(m->stats.attempts_failed[QN_MAP], 1);
    cr_assert_neq(qn_job_arec_find(&m->jobs.v[jx], QN_MAP, 0, 1)->end, 0);
    /* The only worker: it runs there again. */
    s_expect_assign(QUERN__TASK_KIND__MAP, 0, 2);
    cr_assert_eq(qn_job_counter(j, "map_attempts"), 2);
}

Test(master, a_map_reporting_the_wrong_partitions_fails)
{
    char id[64];
    int jx = s_running_job(id, sizeof id, 0);
    s_update(id, QUERN__TASK_KIND__MAP, 0, 1, QUERN__TASK_STATE__SUCCEEDED, 2);
    const qn_job *j = &m->jobs.v[jx];
    cr_assert_eq(j->outs[0].attempt, 0, "its output is not taken");
    cr_assert_str_eq(qn_job_last_failure(j, QN_MAP, 0),
                     "map reported the wrong number of partitions");
    cr_assert_eq(m->journal.count[QN_CHANGE_TASK_DONE], 0);
}

Test(master, an_update_of_an_attempt_not_current_changes_nothing)
{
    char id[64];
    int jx = s_running_job(id, sizeof id, 0);
    s_update(id, QUERN__TASK_KIND__MAP, 0, 7, QUERN__TASK_STATE__SUCCEEDED, 1);
    s_update(id, QUERN__TASK_KIND__MAP, 0, 7, QUERN__TASK_STATE__FAILED, 0);
    const qn_job *j = &m->jobs.v[jx];
    cr_assert_eq(j->outs[0].attempt, 0);
    cr_assert_eq(j->nfailures, 0);
    cr_assert_eq(m->journal.count[QN_CHANGE_TASK_DONE], 0);
    cr_assert_eq(qn_sched_task(m->sched, jx, QN_MAP, 0).state, QN_TASK_RUNNING);
}

Test(master, progress_is_kept_and_only_grows)
{
    char id[64];
    int jx = s_running_job(id, sizeof id, 0);
    s_update(id, QUERN__TASK_KIND__MAP, 0, 1, QUERN__TASK_STATE__RUNNING, 0);
    cr_assert_float_eq(m->jobs.v[jx].progress[QN_MAP][0], 0.5, 1e-9);
    Quern__TaskInfo ti;
    qn_status_task(m, jx, QN_MAP, 0, now + 250, &ti);
    cr_assert_eq(ti.state, 1);
    cr_assert_str_eq(ti.worker_id, "w1");
    cr_assert_eq(ti.attempt, 1);
    cr_assert_eq(ti.duration_ms, 250);
    cr_assert_float_eq(ti.progress, 0.5, 1e-9);
}

Test(master, an_attempt_its_worker_does_not_list_is_lost)
{
    char id[64];
    int jx = s_running_job(id, sizeof id, 0);
    now += 3000; /* past the grace a just-started attempt gets */
    s_heartbeat(1, session);
    cr_assert_eq(m->stats.attempts_lost[QN_MAP], 1);
    cr_assert(strstr(qn_job_last_failure(&m->jobs.v[jx], QN_MAP, 0),
                     "does not run it"));
    s_expect_assign(QUERN__TASK_KIND__MAP, 0, 2);
}

/* ---- clients ------------------------------------------------------------- */

Test(master, status_views_show_the_job_and_its_worker)
{
    char id[64];
    int jx = s_running_job(id, sizeof id, 0);
    Quern__JobStatus st;
    qn_status_mem mem = {0};
    qn_status_job(m, jx, now + 40, &st, &mem);
    cr_assert_str_eq(st.job_id, id);
    cr_assert_str_eq(st.name, "wordcount");
    cr_assert_eq(st.maps, 1);
    cr_assert_eq(st.maps_running, 1);
    cr_assert_eq(st.elapsed_ms, 40);
    cr_assert_eq(st.n_counters, 9);
    qn_status_tasks(m, jx, &st, &mem, now);
    cr_assert_eq(st.n_tasks, 2);
    cr_assert_str_eq(st.tasks[1]->shard, "", "a reduce has no shard");
    cr_assert(strstr(st.tasks[0]->shard, "in.txt"));
    qn_status_release(&mem);
    qn_workers_view v = {0};
    qn_status_workers(m, now + 5, &v);
    cr_assert_eq(v.n, 1);
    cr_assert_eq(v.wi[0].busy, 1);
    cr_assert_eq(v.wi[0].n_running, 1);
    cr_assert_str_eq(v.wi[0].running[0]->job_id, id);
    cr_assert_eq(v.wi[0].heartbeat_age_ms, 5);
    qn_status_workers_release(&v);
}

Test(master, a_watcher_gets_a_push_soon_after_a_change)
{
    char id[64];
    int jx = s_running_job(id, sizeof id, 1);
    s_drain(C1);
    const qn_job *j = &m->jobs.v[jx];
    cr_assert_eq(j->watch.n, 1);
    /* The assignment changed it: a push QN_STATUS_PUSH_MIN_MS after. */
    cr_assert_eq(j->watch.push_at, j->watch.last_push + QN_STATUS_PUSH_MIN_MS);
    cr_assert_eq(qn_timers_next(m) <= j->watch.push_at, 1);
    qn_timers_run(m, j->watch.push_at - 1);
    cr_assert_eq(s_drain(C1), 0, "not yet");
    now = j->watch.push_at;
    qn_timers_run(m, now);
    Quern__Envelope *env = s_expect(C1, QUERN__ENVELOPE__BODY_STATUS_REPLY);
    cr_assert_str_eq(env->status_reply->jobs[0]->job_id, id);
    qn_wire_free(env);
    /* Unchanged, the next is QN_STATUS_PUSH_MAX_MS later. */
    cr_assert_eq(j->watch.push_at, now + QN_STATUS_PUSH_MAX_MS);
}

Test(master, cancel_kills_the_attempts_and_ends_the_job)
{
    char id[64];
    int jx = s_running_job(id, sizeof id, 0);
    Quern__Envelope e = QUERN__ENVELOPE__INIT;
    Quern__CancelJob c = QUERN__CANCEL_JOB__INIT;
    c.job_id = id;
    e.body_case = QUERN__ENVELOPE__BODY_CANCEL_JOB;
    e.cancel_job = &c;
    s_feed(C1, &e);
    Quern__Envelope *env = s_expect(C1, QUERN__ENVELOPE__BODY_CANCEL_REPLY);
    cr_assert_str_eq(env->cancel_reply->error, "");
    qn_wire_free(env);
    qn_wire_free(s_expect(W1, QUERN__ENVELOPE__BODY_CANCEL_TASK));
    cr_assert_eq(m->jobs.v[jx].state, QUERN__JOB_STATE__JOB_CANCELLED);
    cr_assert_eq(m->journal.count[QN_CHANGE_JOB_ENDED], 1);
    s_feed(C1, &e);
    env = s_expect(C1, QUERN__ENVELOPE__BODY_CANCEL_REPLY);
    cr_assert(strstr(env->cancel_reply->error, "has already ended"));
    qn_wire_free(env);
}

Test(master, logs_of_a_task_that_does_not_exist_say_what_does)
{
    char id[64];
    s_running_job(id, sizeof id, 0);
    Quern__Envelope e = QUERN__ENVELOPE__INIT;
    Quern__LogsRequest lr = QUERN__LOGS_REQUEST__INIT;
    lr.job_id = id;
    lr.kind = QUERN__TASK_KIND__REDUCE;
    lr.task = 3;
    lr.worker_id = (char *)"";
    e.body_case = QUERN__ENVELOPE__BODY_LOGS_REQUEST;
    e.logs_request = &lr;
    s_feed(C1, &e);
    Quern__Envelope *env = s_expect(C1, QUERN__ENVELOPE__BODY_LOGS_REPLY);
    char want[200];
    snprintf(want, sizeof want,
             "job %s has 1 reduce tasks (r0 to r0); there is no r3", id);
    cr_assert_str_eq(env->logs_reply->error, want);
    qn_wire_free(env);
    /* The map's attempt runs on w1: the request goes there, and waits. */
    lr.kind = QUERN__TASK_KIND__MAP;
    lr.task = 0;
    s_feed(C1, &e);
    env = s_expect(W1, QUERN__ENVELOPE__BODY_LOGS_REQUEST);
    cr_assert_eq(env->logs_request->attempt, 1);
    qn_wire_free(env);
    cr_assert_eq(m->logs.n, 1);
    /* w1 never answers: the client is told when the wait is over. */
    now += 4000;
    qn_timers_run(m, now);
    env = s_expect(C1, QUERN__ENVELOPE__BODY_LOGS_REPLY);
    cr_assert(strstr(env->logs_reply->error, "did not send the log"));
    qn_wire_free(env);
    cr_assert_eq(m->logs.n, 0);
}

/* C1 asks for put step op of dataset name; returns the reply. */
static Quern__Envelope *s_put(Quern__PutRequest__Op op, const char *name,
                              uint32_t nshards)
{
    s_put_send(op, name, nshards);
    return s_expect(C1, QUERN__ENVELOPE__BODY_PUT_REPLY);
}

Test(master, a_put_places_shards_and_is_sealed_when_they_are_held)
{
    s_join();
    Quern__Envelope *env = s_put(QUERN__PUT_REQUEST__OP__BEGIN, "up", 0);
    cr_assert_str_eq(env->put_reply->error, "");
    qn_wire_free(env);
    cr_assert_eq(m->journal.count[QN_CHANGE_DATASET_CREATED], 1);
    env = s_put(QUERN__PUT_REQUEST__OP__PLACE, "up", 0);
    cr_assert_eq(env->put_reply->n_targets, 1);
    cr_assert_str_eq(env->put_reply->targets[0]->worker_id, "w1");
    qn_wire_free(env);
    cr_assert_eq(m->workers.v[0].placed, 1);
    /* Committed before w1 announced its shard: the put waits. */
    s_put_send(QUERN__PUT_REQUEST__OP__COMMIT, "up", 1);
    cr_assert_eq(m->data.nputs, 1);
    cr_assert_eq(s_drain(C1), 0);
    /* w1 says it holds it: the put is sealed and answered. */
    s_holds("up", 10);
    env = s_expect(C1, QUERN__ENVELOPE__BODY_PUT_REPLY);
    cr_assert_str_eq(env->put_reply->error, "");
    qn_wire_free(env);
    cr_assert_eq(m->data.nputs, 0);
    const qn_dataset *ds = qn_catalog_get(&m->data.cat, "up");
    cr_assert(ds && ds->sealed && ds->nshards == 1);
}

Test(master, a_put_whose_shards_never_come_fails_when_its_time_is_up)
{
    s_join();
    qn_wire_free(s_put(QUERN__PUT_REQUEST__OP__BEGIN, "up", 0));
    s_put_send(QUERN__PUT_REQUEST__OP__COMMIT, "up", 1);
    now += 29999;
    qn_timers_run(m, now);
    cr_assert_eq(s_drain(C1), 0);
    now += 1;
    qn_timers_run(m, now);
    Quern__Envelope *env = s_expect(C1, QUERN__ENVELOPE__BODY_PUT_REPLY);
    cr_assert_str_eq(env->put_reply->error,
                     "dataset up cannot be completed: shard 0 has 0 of 1 "
                     "copies");
    qn_wire_free(env);
}

Test(master, rm_forgets_a_dataset_and_drops_copies_that_turn_up)
{
    s_join();
    qn_wire_free(s_put(QUERN__PUT_REQUEST__OP__BEGIN, "up", 0));
    Quern__Envelope e = QUERN__ENVELOPE__INIT;
    Quern__DropDataset dd = QUERN__DROP_DATASET__INIT;
    dd.dataset = (char *)"up";
    e.body_case = QUERN__ENVELOPE__BODY_DROP_DATASET;
    e.drop_dataset = &dd;
    s_feed(C1, &e);
    Quern__Envelope *env = s_expect(C1, QUERN__ENVELOPE__BODY_DROP_REPLY);
    cr_assert_str_eq(env->drop_reply->error, "");
    qn_wire_free(env);
    cr_assert_null(qn_catalog_get(&m->data.cat, "up"));
    cr_assert_eq(m->journal.count[QN_CHANGE_DATASET_REMOVED], 1);
    s_drain(W1);
    /* A copy announced later is dropped on its worker, not taken. */
    s_holds("up", 0);
    env = s_expect(W1, QUERN__ENVELOPE__BODY_DATA_COMMAND);
    cr_assert_eq(env->data_command->op, QUERN__DATA_COMMAND__OP__DROP);
    qn_wire_free(env);
    cr_assert_null(qn_catalog_get(&m->data.cat, "up"));
}

/* ---- a restart on the same state dir ------------------------------------- */

/* w1 heartbeats listing one running attempt. */
static void s_heartbeat_running(uint64_t seq, const char *job,
                                Quern__TaskKind kind, unsigned task,
                                unsigned attempt)
{
    Quern__Envelope e = QUERN__ENVELOPE__INIT;
    Quern__Heartbeat hb = QUERN__HEARTBEAT__INIT;
    Quern__AttemptRef a = QUERN__ATTEMPT_REF__INIT;
    Quern__AttemptRef *ap = &a;
    a.job_id = (char *)job;
    a.kind = kind;
    a.task = task;
    a.attempt = attempt;
    hb.worker_id = (char *)"w1";
    hb.session = session;
    hb.seq = seq;
    hb.epoch = epoch;
    hb.running = &ap;
    hb.n_running = 1;
    e.body_case = QUERN__ENVELOPE__BODY_HEARTBEAT;
    e.heartbeat = &hb;
    s_feed(W1, &e);
}

/* Assignments that reached w1 so far (the rest is read and dropped). */
static int s_assigns(void)
{
    int n = 0;
    Quern__Envelope *env;
    while ((env = s_next(W1))) {
        n += env->body_case == QUERN__ENVELOPE__BODY_ASSIGN_TASK;
        qn_wire_free(env);
    }
    return n;
}

/* The master killed and started again on the state in dir/state. */
static void s_restart(void)
{
    char sd[700];
    snprintf(sd, sizeof sd, "%s/state", dir);
    s_close();
    s_open(sd);
}

/* Reduce attempt 1 of job id wrote its part file; it says so. */
static void s_reduce_done(const char *id)
{
    char path[800];
    snprintf(path, sizeof path, "%s/out/_temporary/%s", dir, id);
    cr_assert_eq(qn_mkdirs(path, 0755), 0);
    snprintf(path, sizeof path, "%s/out/_temporary/%s/part-00000.a1", dir, id);
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    fputs("a\t2\nb\t1\n", f);
    fclose(f);
    s_update(id, QUERN__TASK_KIND__REDUCE, 0, 1, QUERN__TASK_STATE__SUCCEEDED,
             0);
}

Test(master, a_restart_keeps_done_maps_and_adopts_running_attempts)
{
    char id[64];
    s_restart(); /* from here on, with a state dir */
    epoch = 1;
    int jx = s_running_job(id, sizeof id, 0);
    s_update(id, QUERN__TASK_KIND__MAP, 0, 1, QUERN__TASK_STATE__SUCCEEDED, 1);
    s_expect_assign(QUERN__TASK_KIND__REDUCE, 0, 1);
    s_restart();
    jx = qn_jobs_find(&m->jobs, id);
    cr_assert_geq(jx, 0, "the job is gone");
    const qn_job *j = &m->jobs.v[jx];
    cr_assert_eq(j->state, QUERN__JOB_STATE__JOB_RUNNING);
    cr_assert_eq(qn_sched_task(m->sched, jx, QN_MAP, 0).state, QN_TASK_DONE,
                 "the done map is not kept");
    cr_assert_eq(j->outs[0].parts[0].raw_bytes, 30);
    cr_assert_eq(qn_job_counter(j, "lines"), 3);
    cr_assert_eq(qn_sched_task(m->sched, jx, QN_REDUCE, 0).attempts, 1);
    /* Of the old epoch: refused, and answered with the new one. */
    s_heartbeat_running(7, id, QUERN__TASK_KIND__REDUCE, 0, 1);
    Quern__Envelope *env = s_expect(W1, QUERN__ENVELOPE__BODY_WORKER_WELCOME);
    cr_assert_eq(env->worker_welcome->epoch, 2);
    qn_wire_free(env);
    cr_assert_eq(qn_sched_attempt_worker(m->sched, jx, QN_REDUCE, 0, 1), -1,
                 "taken from a message of the old epoch");
    cr_assert_eq(m->net.drops.by_reason[DROP_EPOCH], 1);
    /* Of the new one: the running reduce is adopted, not run again. */
    epoch = 2;
    s_heartbeat_running(8, id, QUERN__TASK_KIND__REDUCE, 0, 1);
    cr_assert_eq(qn_sched_attempt_worker(m->sched, jx, QN_REDUCE, 0, 1), 0,
                 "the running reduce was not adopted");
    now += 3000;
    qn_master_tick(m, now);
    cr_assert_eq(s_assigns(), 0, "something started anew");
    s_reduce_done(id);
    j = &m->jobs.v[jx];
    cr_assert_eq(j->state, QUERN__JOB_STATE__JOB_SUCCEEDED, "error: %s",
                 j->error ? j->error : "");
}

/* w1 asks for the blob with this hash: the master's answer (free it). */
static Quern__Envelope *s_fetch(const char *hash)
{
    Quern__Envelope e = QUERN__ENVELOPE__INIT;
    Quern__PluginRequest pr = QUERN__PLUGIN_REQUEST__INIT;
    pr.worker_id = (char *)"w1";
    pr.hash = (char *)hash;
    pr.session = session;
    e.body_case = QUERN__ENVELOPE__BODY_PLUGIN_REQUEST;
    e.plugin_request = &pr;
    s_feed(W1, &e);
    return s_expect(W1, QUERN__ENVELOPE__BODY_PLUGIN_REPLY);
}

/* The master hands w1 the blob hash, holding want. */
static void s_fetch_gives(const char *hash, const char *want)
{
    Quern__Envelope *env = s_fetch(hash);
    const Quern__PluginReply *r = env->plugin_reply;
    cr_assert_str_eq(r->error, "");
    cr_assert_eq(r->data.len, strlen(want));
    cr_assert_eq(memcmp(r->data.data, want, strlen(want)), 0);
    qn_wire_free(env);
}

/* The next AssignTask to w1 ships one file: name, with hash. */
static void s_expect_assign_ships(const char *name, const char *hash)
{
    Quern__Envelope *env = s_expect(W1, QUERN__ENVELOPE__BODY_ASSIGN_TASK);
    const Quern__TaskSpec *ts = env->assign_task->spec;
    cr_assert_eq(ts->n_files, 1, "a %s ships %zu files",
                 ts->kind ? "reduce" : "map", ts->n_files);
    cr_assert_str_eq(ts->files[0]->name, name);
    cr_assert_str_eq(ts->files[0]->hash, hash);
    qn_wire_free(env);
}

Test(master, shipped_files_go_to_every_task_and_outlive_a_restart)
{
    static const char dict[] = "alpha\nbeta\n";
    char id[64], hex[65], out[600];
    uint8_t d[32];
    qn_sha256(dict, strlen(dict), d);
    qn_sha256_hex(d, hex);
    Quern__ShippedFile f = QUERN__SHIPPED_FILE__INIT, *fp = &f;
    f.name = (char *)"dict.txt";
    f.hash = hex;
    f.size = strlen(dict);
    ProtobufCBinaryData data = {strlen(dict), (uint8_t *)dict};
    ship = &fp;
    nship = 1;
    ship_data = &data;
    nship_data = 1;
    s_restart(); /* with a state dir */
    epoch = 1;
    s_join();
    snprintf(out, sizeof out, "%s/out", dir);
    s_submit(s_input("in.txt", "a b a\n"), out, 0);
    cr_assert(s_submit_reply(id, sizeof id), "submit refused: %s", id);
    s_expect_assign_ships("dict.txt", hex);
    cr_assert_eq(m->plugins.n, 2, "the plugin and the file, by hash");
    s_fetch_gives(hex, dict);
    s_update(id, QUERN__TASK_KIND__MAP, 0, 1, QUERN__TASK_STATE__SUCCEEDED, 1);
    s_expect_assign_ships("dict.txt", hex);
    /* Started again on its state: the file is there for what runs next. */
    s_restart();
    epoch = 2;
    s_heartbeat_running(9, id, QUERN__TASK_KIND__REDUCE, 0, 1);
    s_fetch_gives(hex, dict);
    /* Once the job is over, no worker is handed it any more after a
     * restart: it went with the job. */
    s_reduce_done(id);
    cr_assert_eq(m->jobs.v[0].state, QUERN__JOB_STATE__JOB_SUCCEEDED);
    s_restart();
    epoch = 3;
    s_heartbeat(10, session);
    Quern__Envelope *env = s_fetch(hex);
    cr_assert_neq(env->plugin_reply->error[0], 0, "still handed out");
    qn_wire_free(env);
}

Test(master, submit_refuses_shipped_bytes_that_are_not_the_ones_named)
{
    char why[300], out[600];
    Quern__ShippedFile f = QUERN__SHIPPED_FILE__INIT, *fp = &f;
    f.name = (char *)"dict.txt";
    f.hash = (char *)"5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e84"
                     "6f6be03";
    f.size = 5;
    ProtobufCBinaryData data = {5, (uint8_t *)"other"};
    ship = &fp;
    nship = 1;
    ship_data = &data;
    nship_data = 1;
    s_join();
    snprintf(out, sizeof out, "%s/out", dir);
    s_submit(s_input("in.txt", "a\n"), out, 0);
    cr_assert(!s_submit_reply(why, sizeof why));
    cr_assert(strstr(why, "--file dict.txt: its bytes are not the ones named"),
              "%s", why);
    cr_assert_eq(m->jobs.n, 0);
    nship_data = 0;
    s_submit(s_input("in.txt", "a\n"), out, 0);
    cr_assert(!s_submit_reply(why, sizeof why));
    cr_assert(strstr(why, "names 1 shipped files"), "%s", why);
}

Test(master, a_restart_runs_again_what_no_worker_reports)
{
    char id[64];
    s_restart();
    epoch = 1;
    s_running_job(id, sizeof id, 0);
    s_restart();
    epoch = 2;
    int jx = qn_jobs_find(&m->jobs, id);
    cr_assert_geq(jx, 0);
    s_heartbeat(9, session); /* nothing runs here */
    now += 2999;
    qn_master_tick(m, now);
    cr_assert_eq(s_assigns(), 0, "started before the grace ended");
    now += 1;
    qn_master_tick(m, now);
    /* Attempt 1 was given out before the restart: the new one is 2. */
    s_expect_assign(QUERN__TASK_KIND__MAP, 0, 2);
}

Test(master, a_finished_job_is_history_after_a_restart)
{
    char id[64];
    s_restart();
    epoch = 1;
    int jx = s_running_job(id, sizeof id, 0);
    s_update(id, QUERN__TASK_KIND__MAP, 0, 1, QUERN__TASK_STATE__SUCCEEDED, 1);
    s_expect_assign(QUERN__TASK_KIND__REDUCE, 0, 1);
    s_reduce_done(id);
    long long lines = qn_job_counter(&m->jobs.v[jx], "lines");
    cr_assert_eq(m->jobs.v[jx].state, QUERN__JOB_STATE__JOB_SUCCEEDED);
    s_restart();
    s_restart(); /* twice: history stays history */
    jx = qn_jobs_find(&m->jobs, id);
    cr_assert_geq(jx, 0, "the finished job is gone");
    const qn_job *j = &m->jobs.v[jx];
    cr_assert_eq(j->state, QUERN__JOB_STATE__JOB_SUCCEEDED);
    cr_assert_eq(qn_job_counter(j, "lines"), lines);
    cr_assert_eq(j->nmaps, 1);
    cr_assert_eq(qn_sched_job(m->sched, jx).state, QN_JOB_DONE);
    now += 5000;
    qn_master_tick(m, now);
    cr_assert_eq(s_assigns(), 0, "a finished job ran again");
}

Test(master, a_restored_worker_gets_no_work_until_it_is_heard_from)
{
    char id[64];
    s_restart();
    epoch = 1;
    s_running_job(id, sizeof id, 0);
    s_restart();
    epoch = 2;
    now += 5000; /* the grace is over; w1 has said nothing yet */
    qn_master_tick(m, now);
    cr_assert_eq(s_assigns(), 0, "work went to a worker not heard from");
    s_hello("w1", session);
    s_expect_assign(QUERN__TASK_KIND__MAP, 0, 2);
}

Test(master, a_restored_worker_welcomed_elsewhere_since_joins_as_new)
{
    char id[64];
    s_restart();
    epoch = 1;
    s_running_job(id, sizeof id, 0);
    s_restart();
    /* Another master gave w1 another session meanwhile. */
    s_hello("w1", session + 1);
    Quern__Envelope *env = s_expect(W1, QUERN__ENVELOPE__BODY_WORKER_WELCOME);
    cr_assert(env->worker_welcome->reset, "it must drop what it holds");
    cr_assert_neq(env->worker_welcome->session, session);
    qn_wire_free(env);
    cr_assert_eq(m->workers.n, 2, "a new membership, the old one dead");
    cr_assert_eq(qn_workers_alive_id(&m->workers, "w1"), 1);
}

Test(master, a_restored_worker_heartbeating_another_session_is_told_to_rejoin)
{
    char id[64];
    s_restart();
    epoch = 1;
    s_running_job(id, sizeof id, 0);
    s_restart();
    epoch = 0; /* welcomed by a master without a state dir */
    s_heartbeat(3, session + 1);
    Quern__Envelope *env = s_expect(W1, QUERN__ENVELOPE__BODY_WORKER_WELCOME);
    cr_assert(env->worker_welcome->rejoin, "not told to join again");
    qn_wire_free(env);
    epoch = 1; /* of this master's last run */
    s_heartbeat(4, session + 1);
    env = s_expect(W1, QUERN__ENVELOPE__BODY_WORKER_WELCOME);
    cr_assert(env->worker_welcome->rejoin, "not told to join again");
    qn_wire_free(env);
}

Test(master, what_follows_a_change_to_keep_waits_for_its_commit)
{
    s_restart();
    s_join();
    Quern__WorkerWelcome wl = QUERN__WORKER_WELCOME__INIT;
    wl.worker_id = (char *)"w1";
    qn_journal_hold(&m->journal, "a test");
    qn_send_worker(m, 0, QUERN__ENVELOPE__BODY_WORKER_WELCOME, &wl);
    cr_assert_null(s_next(W1), "sent before the commit");
    cr_assert_eq(qn_journal_turn(&m->journal), 0);
    qn_send_flush(m, 1);
    Quern__Envelope *env = s_expect(W1, QUERN__ENVELOPE__BODY_WORKER_WELCOME);
    qn_wire_free(env);
    /* A commit that failed: what waited for it is dropped. */
    qn_journal_hold(&m->journal, "a test");
    qn_send_worker(m, 0, QUERN__ENVELOPE__BODY_WORKER_WELCOME, &wl);
    qn_send_flush(m, 0);
    cr_assert_null(s_next(W1), "sent although the state was not written");
    cr_assert_eq(m->held.len, 0);
}

/* ---- workers that restart, come back or leave ---------------------------- */

/* A fake worker: its id, the connection it speaks on (W1, W2 or W1B), its
 * process's incarnation and shuffle endpoint, and its session. */
typedef struct {
    const char *id;
    int peer;
    uint64_t incarnation;
    const char *endpoint;
    uint64_t session;
} s_fake;

/* A map attempt's SUCCEEDED update, as a worker sends it and keeps it to
 * offer again in a later hello. */
typedef struct {
    Quern__TaskUpdate u;
    Quern__AttemptRef a;
    Quern__PartitionInfo p;
    Quern__PartitionInfo *pp[2];
    Quern__Counter c;
    Quern__Counter *cp;
} s_done;

/* d: worker wk's success of attempt of map task of job, with nparts (at
 * most 2) partitions, counting 3 lines. */
static void s_done_make(s_done *d, const s_fake *wk, const char *job,
                        unsigned task, unsigned attempt, unsigned nparts)
{
    cr_assert_leq(nparts, 2);
    quern__task_update__init(&d->u);
    quern__attempt_ref__init(&d->a);
    quern__partition_info__init(&d->p);
    quern__counter__init(&d->c);
    d->a.job_id = (char *)job;
    d->a.kind = QUERN__TASK_KIND__MAP;
    d->a.task = task;
    d->a.attempt = attempt;
    d->p.bytes = 20;
    d->p.raw_bytes = 30;
    d->p.records = 2;
    d->pp[0] = d->pp[1] = &d->p;
    d->c.name = (char *)"lines";
    d->c.value = 3;
    d->cp = &d->c;
    d->u.worker_id = (char *)wk->id;
    d->u.session = wk->session;
    d->u.attempt = &d->a;
    d->u.state = QUERN__TASK_STATE__SUCCEEDED;
    d->u.progress = 1;
    d->u.counters = &d->cp;
    d->u.n_counters = 1;
    d->u.partitions = d->pp;
    d->u.n_partitions = nparts;
}

/* peer sends task update u. */
static void s_feed_update(int peer, Quern__TaskUpdate *u)
{
    Quern__Envelope e = QUERN__ENVELOPE__INIT;
    e.body_case = QUERN__ENVELOPE__BODY_TASK_UPDATE;
    e.task_update = u;
    s_feed(peer, &e);
}

/* Worker wk says hello with a session (0: a new process has none), its
 * slots, and the n map outputs it offers. */
static void s_fake_hello(const s_fake *wk, uint64_t with_session,
                         unsigned slots, s_done **offers, size_t n)
{
    Quern__Envelope e = QUERN__ENVELOPE__INIT;
    Quern__WorkerHello h = QUERN__WORKER_HELLO__INIT;
    Quern__TaskUpdate *fin[8];
    cr_assert_leq(n, 8);
    for (size_t i = 0; i < n; i++)
        fin[i] = &offers[i]->u;
    h.worker_id = (char *)wk->id;
    h.slots = slots;
    h.shuffle_endpoint = (char *)wk->endpoint;
    h.host = (char *)"testhost";
    h.pid = 4242;
    h.has_data = 1;
    h.session = with_session;
    h.minor = QN_PROTOCOL_MINOR;
    h.incarnation = wk->incarnation;
    h.finished = n ? fin : NULL;
    h.n_finished = n;
    e.body_case = QUERN__ENVELOPE__BODY_WORKER_HELLO;
    e.worker_hello = &h;
    s_feed(wk->peer, &e);
}

/* wk's welcome, on its connection: its session is kept. Returns whether
 * it was told to drop what it holds (reset). */
static int s_fake_welcomed(s_fake *wk)
{
    Quern__Envelope *env =
        s_expect(wk->peer, QUERN__ENVELOPE__BODY_WORKER_WELCOME);
    cr_assert(!env->worker_welcome->rejoin, "%s told to join again", wk->id);
    int reset = env->worker_welcome->reset;
    wk->session = env->worker_welcome->session;
    qn_wire_free(env);
    cr_assert_neq(wk->session, 0);
    return reset;
}

/* wk, a new process (incarnation 1), joins with slots. */
static void s_fake_join(s_fake *wk, const char *id, int peer,
                        const char *endpoint, unsigned slots)
{
    *wk = (s_fake){
        .id = id, .peer = peer, .incarnation = 1, .endpoint = endpoint};
    s_fake_hello(wk, 0, slots, NULL, 0);
    cr_assert(!s_fake_welcomed(wk));
}

/* wk reports attempt of task of job in state (not a map's success: see
 * s_done), with a fetch failure if ff is set. */
static void s_fake_update(const s_fake *wk, const char *job,
                          Quern__TaskKind kind, unsigned task, unsigned attempt,
                          Quern__TaskState state, Quern__FetchFailure *ff)
{
    Quern__TaskUpdate u = QUERN__TASK_UPDATE__INIT;
    Quern__AttemptRef a = QUERN__ATTEMPT_REF__INIT;
    a.job_id = (char *)job;
    a.kind = kind;
    a.task = task;
    a.attempt = attempt;
    u.worker_id = (char *)wk->id;
    u.session = wk->session;
    u.attempt = &a;
    u.state = state;
    u.progress = state == QUERN__TASK_STATE__RUNNING ? 0.1 : 1;
    u.reason = (char *)"";
    u.stderr_tail = (char *)"";
    u.fetch_failures = ff ? &ff : NULL;
    u.n_fetch_failures = ff ? 1 : 0;
    s_feed_update(wk->peer, &u);
}

/* wk heartbeats (number seq), running nothing. */
static void s_fake_heartbeat(const s_fake *wk, uint64_t seq)
{
    Quern__Envelope e = QUERN__ENVELOPE__INIT;
    Quern__Heartbeat hb = QUERN__HEARTBEAT__INIT;
    hb.worker_id = (char *)wk->id;
    hb.session = wk->session;
    hb.seq = seq;
    e.body_case = QUERN__ENVELOPE__BODY_HEARTBEAT;
    e.heartbeat = &hb;
    s_feed(wk->peer, &e);
}

/* wk says it is stopping (of incarnation, its own or not). */
static void s_fake_leaving(const s_fake *wk, uint64_t incarnation)
{
    Quern__Envelope e = QUERN__ENVELOPE__INIT;
    Quern__WorkerLeaving wl = QUERN__WORKER_LEAVING__INIT;
    wl.worker_id = (char *)wk->id;
    wl.session = wk->session;
    wl.incarnation = incarnation;
    e.body_case = QUERN__ENVELOPE__BODY_WORKER_LEAVING;
    e.worker_leaving = &wl;
    s_feed(wk->peer, &e);
}

/* wk's next assignment is attempt of task of kind. */
static void s_fake_assigned(const s_fake *wk, Quern__TaskKind kind,
                            unsigned task, unsigned attempt)
{
    Quern__Envelope *env =
        s_expect(wk->peer, QUERN__ENVELOPE__BODY_ASSIGN_TASK);
    const Quern__TaskSpec *ts = env->assign_task->spec;
    cr_assert(ts->kind == kind && ts->task == task && ts->attempt == attempt,
              "%s assigned kind %d task %u attempt %u, not %d %u %u", wk->id,
              ts->kind, ts->task, ts->attempt, kind, task, attempt);
    qn_wire_free(env);
}

/* What reached a peer, kept to be looked through. */
#define S_INBOX_MAX 64
typedef struct {
    Quern__Envelope *v[S_INBOX_MAX];
    size_t n;
} s_inbox;

/* Everything that reached peer so far, added to b. */
static void s_inbox_read(s_inbox *b, int peer)
{
    Quern__Envelope *env;
    while ((env = s_next(peer))) {
        cr_assert_lt(b->n, S_INBOX_MAX, "too many messages to %s", IDS[peer]);
        b->v[b->n++] = env;
    }
}

static void s_inbox_free(s_inbox *b)
{
    for (size_t i = 0; i < b->n; i++)
        qn_wire_free(b->v[i]);
    b->n = 0;
}

/* Messages of kind c in b. */
static unsigned s_inbox_count(const s_inbox *b, Quern__Envelope__BodyCase c)
{
    unsigned n = 0;
    for (size_t i = 0; i < b->n; i++)
        n += b->v[i]->body_case == c;
    return n;
}

/* Assignments of kind in b (of task too, unless task < 0). */
static unsigned s_inbox_assigns(const s_inbox *b, Quern__TaskKind kind,
                                int task)
{
    unsigned n = 0;
    for (size_t i = 0; i < b->n; i++) {
        if (b->v[i]->body_case != QUERN__ENVELOPE__BODY_ASSIGN_TASK)
            continue;
        const Quern__TaskSpec *ts = b->v[i]->assign_task->spec;
        n += ts->kind == kind && (task < 0 || ts->task == (unsigned)task);
    }
    return n;
}

/* The first assignment of kind in b (of task too, unless task < 0), or
 * NULL. */
static const Quern__TaskSpec *s_inbox_assign(const s_inbox *b,
                                             Quern__TaskKind kind, int task)
{
    for (size_t i = 0; i < b->n; i++) {
        if (b->v[i]->body_case != QUERN__ENVELOPE__BODY_ASSIGN_TASK)
            continue;
        const Quern__TaskSpec *ts = b->v[i]->assign_task->spec;
        if (ts->kind == kind && (task < 0 || ts->task == (unsigned)task))
            return ts;
    }
    return NULL;
}

/* Places in b's MapLocations for attempt of reduce task that give map's
 * output as attempt matt on endpoint, of worker incarnation inc. */
static unsigned s_inbox_located(const s_inbox *b, unsigned reduce,
                                unsigned attempt, unsigned map, unsigned matt,
                                const char *endpoint, uint64_t inc)
{
    unsigned n = 0;
    for (size_t i = 0; i < b->n; i++) {
        if (b->v[i]->body_case != QUERN__ENVELOPE__BODY_MAP_LOCATIONS)
            continue;
        const Quern__MapLocations *ml = b->v[i]->map_locations;
        if (ml->reduce->kind != QUERN__TASK_KIND__REDUCE ||
            ml->reduce->task != reduce || ml->reduce->attempt != attempt)
            continue;
        for (size_t k = 0; k < ml->n_outputs; k++) {
            const Quern__MapOutput *mo = ml->outputs[k];
            n += mo->map == map && mo->attempt == matt &&
                 strcmp(mo->endpoint, endpoint) == 0 && mo->incarnation == inc;
        }
    }
    return n;
}

/* Places in b's MapLocations of map's output (any attempt, anywhere). */
static unsigned s_inbox_located_any(const s_inbox *b, unsigned map)
{
    unsigned n = 0;
    for (size_t i = 0; i < b->n; i++) {
        if (b->v[i]->body_case != QUERN__ENVELOPE__BODY_MAP_LOCATIONS)
            continue;
        const Quern__MapLocations *ml = b->v[i]->map_locations;
        for (size_t k = 0; k < ml->n_outputs; k++)
            n += ml->outputs[k]->map == map;
    }
    return n;
}

/* Does assignment ts give every map of the job as attempt matt on
 * endpoint, of worker incarnation inc? */
static void s_assert_inputs(const Quern__TaskSpec *ts, unsigned nmaps,
                            unsigned matt, const char *endpoint, uint64_t inc)
{
    cr_assert_eq(ts->n_map_outputs, nmaps);
    for (size_t i = 0; i < ts->n_map_outputs; i++) {
        const Quern__MapOutput *mo = ts->map_outputs[i];
        cr_assert(mo->attempt == matt && strcmp(mo->endpoint, endpoint) == 0 &&
                      mo->incarnation == inc,
                  "map %u given as attempt %u on %s of incarnation %llu",
                  mo->map, mo->attempt, mo->endpoint,
                  (unsigned long long)mo->incarnation);
    }
}

/* CancelTasks in b of attempt of task of kind. */
static unsigned s_inbox_cancelled(const s_inbox *b, Quern__TaskKind kind,
                                  unsigned task, unsigned attempt)
{
    unsigned n = 0;
    for (size_t i = 0; i < b->n; i++) {
        if (b->v[i]->body_case != QUERN__ENVELOPE__BODY_CANCEL_TASK)
            continue;
        const Quern__AttemptRef *r = b->v[i]->cancel_task->attempt;
        n += r->kind == kind && r->task == task && r->attempt == attempt;
    }
    return n;
}

/*
 * Every map attempt b assigns is cancelled in b too, and b cancels at
 * least `least` map attempts: a map's output taken back, its re-makes
 * stop.
 */
static void s_assert_map_attempts_cancelled(const s_inbox *b, unsigned least)
{
    unsigned cancels = 0;
    for (size_t i = 0; i < b->n; i++) {
        if (b->v[i]->body_case != QUERN__ENVELOPE__BODY_CANCEL_TASK)
            continue;
        const Quern__AttemptRef *r = b->v[i]->cancel_task->attempt;
        cr_assert_eq(r->kind, QUERN__TASK_KIND__MAP);
        cancels++;
    }
    cr_assert_geq(cancels, least);
    for (size_t i = 0; i < b->n; i++) {
        if (b->v[i]->body_case != QUERN__ENVELOPE__BODY_ASSIGN_TASK ||
            b->v[i]->assign_task->spec->kind != QUERN__TASK_KIND__MAP)
            continue;
        const Quern__TaskSpec *ts = b->v[i]->assign_task->spec;
        unsigned found = 0;
        for (size_t k = i + 1; k < b->n; k++) {
            if (b->v[k]->body_case != QUERN__ENVELOPE__BODY_CANCEL_TASK)
                continue;
            const Quern__AttemptRef *r = b->v[k]->cancel_task->attempt;
            found += r->task == ts->task && r->attempt == ts->attempt;
        }
        cr_assert_eq(found, 1, "map %u attempt %u runs on", ts->task,
                     ts->attempt);
    }
}

/* Events of kind so far (of task, "m1" say, unless NULL). */
static unsigned s_events(const char *kind, const char *task)
{
    unsigned n = 0;
    for (size_t i = 0; i < m->events.n; i++) {
        const qn_evrec *e = qn_evring_at(&m->events, i);
        n +=
            strcmp(e->kind, kind) == 0 && (!task || strcmp(e->task, task) == 0);
    }
    return n;
}

/* Reduce task of job id wrote its part file in attempt. */
static void s_part_file(const char *id, unsigned task, unsigned attempt)
{
    char path[800];
    snprintf(path, sizeof path, "%s/out/_temporary/%s", dir, id);
    cr_assert_eq(qn_mkdirs(path, 0755), 0);
    snprintf(path, sizeof path, "%s/out/_temporary/%s/part-%05u.a%u", dir, id,
             task, attempt);
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    fputs("a\t2\nb\t1\n", f);
    fclose(f);
}

#define A_OLD_EP "tcp://127.0.0.1:9"
#define A_NEW_EP "tcp://127.0.0.1:10"
#define B_EP "tcp://127.0.0.1:8"

static s_fake A, B;  /* workers w1 and w2 */
static s_done dn[2]; /* A's successes of the job's two maps */

/*
 * A job of two maps and nreduce (1 or 2) reduces: both maps done on A (w1,
 * one slot), its reduce 0 running on A and, with two, reduce 1 on B (w2,
 * one slot, joined after the maps). Returns the job's index.
 */
static int s_maps_done_on_a(char *id, size_t cap, unsigned nreduce)
{
    s_fake_join(&A, "w1", W1, A_OLD_EP, 1);
    char out[600], text[2100] = "";
    snprintf(out, sizeof out, "%s/out", dir);
    for (int i = 0; i < 341; i++)
        strcat(text, "a b a\n"); /* 2046 bytes: two splits of 1 KiB */
    s_submit_sized(s_input("in.txt", text), out, 0, nreduce, 1024);
    cr_assert(s_submit_reply(id, cap), "submit refused: %s", id);
    int jx = qn_jobs_find(&m->jobs, id);
    cr_assert_geq(jx, 0);
    cr_assert_eq(m->jobs.v[jx].nmaps, 2);
    for (unsigned t = 0; t < 2; t++) {
        s_fake_assigned(&A, QUERN__TASK_KIND__MAP, t, 1);
        s_done_make(&dn[t], &A, id, t, 1, nreduce);
        s_feed_update(A.peer, &dn[t].u);
    }
    s_fake_assigned(&A, QUERN__TASK_KIND__REDUCE, 0, 1);
    s_fake_join(&B, "w2", W2, B_EP, 1);
    if (nreduce > 1)
        s_fake_assigned(&B, QUERN__TASK_KIND__REDUCE, 1, 1);
    for (unsigned t = 0; t < 2; t++) {
        qn_task_info ti = qn_sched_task(m->sched, jx, QN_MAP, t);
        cr_assert(ti.state == QN_TASK_DONE && ti.attempt == 1 &&
                  ti.worker == 0);
    }
    return jx;
}

/* A's process starts again on its work dir: a new connection, the next
 * incarnation, another shuffle endpoint, no session; it offers n of the
 * successes it sent before. */
static void s_a_restarts(s_done **offers, size_t n)
{
    A.peer = W1B;
    A.incarnation++;
    A.endpoint = A_NEW_EP;
    s_fake_hello(&A, 0, 1, offers, n);
}

Test(master, a_worker_restarted_before_dead_ms_keeps_its_done_maps)
{
    char id[64];
    int jx = s_maps_done_on_a(id, sizeof id, 2);
    uint64_t old_session = A.session;
    s_done *offers[2] = {&dn[0], &dn[1]};
    s_a_restarts(offers, 2);
    cr_assert(!s_fake_welcomed(&A), "told to drop the outputs it keeps");
    cr_assert_neq(A.session, old_session, "the same session as before");
    cr_assert_eq(m->workers.n, 2, "a new entry for the same worker");
    cr_assert_eq(m->workers.v[0].incarnation, 2);
    cr_assert_eq(s_events("worker_restarted", NULL), 1);
    /* What it ran is lost, as lost with a restart. */
    const qn_job *j = &m->jobs.v[jx];
    cr_assert_eq(m->stats.attempts_lost[QN_REDUCE], 1);
    cr_assert_eq(m->stats.attempts_lost[QN_MAP], 0);
    cr_assert(
        strstr(qn_job_last_failure(j, QN_REDUCE, 0), "restarted while it ran"),
        "%s", qn_job_last_failure(j, QN_REDUCE, 0));
    /* Its done maps stay done: none runs again. */
    for (unsigned t = 0; t < 2; t++) {
        qn_task_info ti = qn_sched_task(m->sched, jx, QN_MAP, t);
        cr_assert(ti.state == QN_TASK_DONE && ti.attempt == 1 && ti.worker == 0,
                  "map %u is not done with attempt 1 on w1", t);
    }
    cr_assert_eq(qn_job_counter(j, "maps_rerun"), 0);
    cr_assert_eq(s_events("map_rerun", NULL), 0);
    /* Its reduce runs again, on it (B's one slot is busy), reading the
     * outputs where they are now. */
    s_inbox a = {0}, b = {0};
    s_inbox_read(&a, W1B);
    s_inbox_read(&b, W2);
    cr_assert_eq(s_drain(W1), 0, "the old connection still gets messages");
    cr_assert_eq(s_inbox_assigns(&a, QUERN__TASK_KIND__MAP, -1), 0);
    cr_assert_eq(s_inbox_assigns(&b, QUERN__TASK_KIND__MAP, -1), 0);
    const Quern__TaskSpec *ts = s_inbox_assign(&a, QUERN__TASK_KIND__REDUCE, 0);
    cr_assert_not_null(ts, "reduce 0 is not run again");
    cr_assert_eq(ts->attempt, 2);
    s_assert_inputs(ts, 2, 1, A_NEW_EP, 2);
    /* B's running reduce is told where A's outputs are now. */
    for (unsigned t = 0; t < 2; t++)
        cr_assert_geq(s_inbox_located(&b, 1, 1, t, 1, A_NEW_EP, 2), 1,
                      "reduce 1 is not told map %u's new place", t);
    s_inbox_free(&a);
    s_inbox_free(&b);
}

Test(master, a_worker_restarted_without_an_output_runs_that_map_again)
{
    char id[64];
    int jx = s_maps_done_on_a(id, sizeof id, 2);
    s_done *offers[1] = {&dn[0]}; /* map 1's output is gone */
    s_a_restarts(offers, 1);
    s_fake_welcomed(&A);
    const qn_job *j = &m->jobs.v[jx];
    qn_task_info t0 = qn_sched_task(m->sched, jx, QN_MAP, 0);
    cr_assert(t0.state == QN_TASK_DONE && t0.attempt == 1 && t0.worker == 0);
    cr_assert_neq(qn_sched_task(m->sched, jx, QN_MAP, 1).state, QN_TASK_DONE);
    cr_assert_eq(qn_job_counter(j, "maps_rerun"), 1);
    cr_assert_eq(s_events("map_rerun", NULL), 1);
    cr_assert_eq(s_events("map_rerun", "m1"), 1);
    cr_assert_eq(qn_job_counter(j, "lines"), 3, "map 1's counts are kept");
    /* Map 1, and only it, runs again: on A, where a slot is free. */
    s_inbox a = {0}, b = {0};
    s_inbox_read(&a, W1B);
    s_inbox_read(&b, W2);
    cr_assert_eq(s_inbox_assigns(&a, QUERN__TASK_KIND__MAP, 0), 0);
    cr_assert_eq(s_inbox_assigns(&b, QUERN__TASK_KIND__MAP, -1), 0);
    /* Once: not first in the old process's slot and lost with it. */
    cr_assert_eq(s_inbox_assigns(&a, QUERN__TASK_KIND__MAP, 1), 1,
                 "map 1 does not run again exactly once");
    qn_task_info t1 = qn_sched_task(m->sched, jx, QN_MAP, 1);
    cr_assert(t1.state == QN_TASK_RUNNING && t1.running == 1 && t1.worker == 0);
    unsigned att = t1.attempt;
    cr_assert_eq(att, 2);
    cr_assert_eq(t1.losses, 0, "map 1's new attempt was lost");
    /* B's reduce hears of map 0's new place, not of map 1's old one. */
    cr_assert_geq(s_inbox_located(&b, 1, 1, 0, 1, A_NEW_EP, 2), 1);
    cr_assert_eq(s_inbox_located_any(&b, 1), 0);
    s_inbox_free(&a);
    s_inbox_free(&b);
    /* The new attempt is done: B's reduce is told where it is. */
    s_done d;
    s_done_make(&d, &A, id, 1, att, 2);
    s_feed_update(A.peer, &d.u);
    t1 = qn_sched_task(m->sched, jx, QN_MAP, 1);
    cr_assert(t1.state == QN_TASK_DONE && t1.attempt == att);
    s_inbox_read(&b, W2);
    cr_assert_eq(s_inbox_located(&b, 1, 1, 1, att, A_NEW_EP, 2), 1);
    s_inbox_free(&b);
    cr_assert_eq(qn_job_counter(j, "lines"), 6);
}

Test(master, a_worker_back_after_dead_ms_has_its_outputs_taken_back)
{
    char id[64], path[800];
    int jx = s_maps_done_on_a(id, sizeof id, 1);
    s_drain(W2);
    /* A falls silent; B does not. */
    now += 9000;
    s_fake_heartbeat(&B, 1);
    now += 2000;
    qn_master_tick(m, now);
    cr_assert(!qn_workers_alive(&m->workers, 0), "A is not dead");
    cr_assert_eq(s_events("worker_lost", NULL), 1);
    const qn_job *j = &m->jobs.v[jx];
    cr_assert_eq(qn_job_counter(j, "maps_rerun"), 2);
    /* B, with one slot, makes one of the maps again. */
    s_inbox b = {0};
    s_inbox_read(&b, W2);
    cr_assert_eq(s_inbox_assigns(&b, QUERN__TASK_KIND__MAP, -1), 1);
    const Quern__TaskSpec *ts = s_inbox_assign(&b, QUERN__TASK_KIND__MAP, -1);
    unsigned remade = ts->task;
    cr_assert_eq(ts->attempt, 2);
    s_inbox_free(&b);
    /* A's process starts again, on a new connection: it joins as new and
     * offers its outputs. */
    s_done *offers[2] = {&dn[0], &dn[1]};
    s_a_restarts(offers, 2);
    cr_assert(s_fake_welcomed(&A), "not told to reset");
    cr_assert_eq(m->workers.n, 3);
    cr_assert_eq(qn_workers_alive_id(&m->workers, "w1"), 2);
    /* Both outputs are taken back: neither map runs again, and B's
     * re-make is cancelled. */
    cr_assert_eq(s_events("map_taken_back", NULL), 2);
    for (unsigned t = 0; t < 2; t++) {
        qn_task_info ti = qn_sched_task(m->sched, jx, QN_MAP, t);
        cr_assert(ti.state == QN_TASK_DONE && ti.attempt == 1 && ti.worker == 2,
                  "map %u is not done with attempt 1 on the new w1", t);
    }
    for (unsigned t = 0; t < 2; t++)
        cr_assert_eq(qn_sched_task(m->sched, jx, QN_MAP, t).running, 0,
                     "map %u still runs", t);
    s_inbox a = {0};
    s_inbox_read(&a, W1B);
    s_inbox_read(&b, W2);
    cr_assert_eq(s_inbox_cancelled(&b, QUERN__TASK_KIND__MAP, remade, 2), 1,
                 "B's re-make of map %u is not cancelled", remade);
    /* A, joining, is not handed a map whose output it offers: its
     * outputs are looked at before it gets work. */
    s_assert_map_attempts_cancelled(&b, 1);
    s_assert_map_attempts_cancelled(&a, 0);
    cr_assert_eq(s_inbox_assigns(&a, QUERN__TASK_KIND__MAP, -1), 0,
                 "A was handed a map it holds the output of");
    /* The reduce runs again, reading A's outputs where they are now. */
    const s_fake *rw = &A;
    ts = s_inbox_assign(&a, QUERN__TASK_KIND__REDUCE, 0);
    if (!ts) {
        ts = s_inbox_assign(&b, QUERN__TASK_KIND__REDUCE, 0);
        rw = &B;
    }
    cr_assert_not_null(ts, "the reduce does not run again");
    cr_assert_eq(ts->attempt, 2);
    s_assert_inputs(ts, 2, 1, A_NEW_EP, 2);
    s_inbox_free(&a);
    s_inbox_free(&b);
    /* ... and the job completes, counting each map once. */
    s_part_file(id, 0, 2);
    s_fake_update(rw, id, QUERN__TASK_KIND__REDUCE, 0, 2,
                  QUERN__TASK_STATE__SUCCEEDED, NULL);
    j = &m->jobs.v[jx];
    cr_assert_eq(j->state, QUERN__JOB_STATE__JOB_SUCCEEDED, "error: %s",
                 j->error ? j->error : "");
    cr_assert_eq(qn_job_counter(j, "lines"), 6);
    struct stat st;
    snprintf(path, sizeof path, "%s/out/part-00000", dir);
    cr_assert_eq(stat(path, &st), 0, "no part file");
    s_inbox_read(&a, W1B);
    s_inbox_read(&b, W2);
    cr_assert_eq(s_inbox_assigns(&a, QUERN__TASK_KIND__MAP, -1) +
                     s_inbox_assigns(&b, QUERN__TASK_KIND__MAP, -1),
                 0);
    s_inbox_free(&a);
    s_inbox_free(&b);
}

Test(master, offered_outputs_of_a_job_not_running_get_its_end_once)
{
    s_fake wk = {
        .id = "w1", .peer = W1, .incarnation = 3, .endpoint = A_OLD_EP};
    s_done d[3];
    s_done_make(&d[0], &wk, "job-gone", 0, 1, 1);
    s_done_make(&d[1], &wk, "job-other", 0, 2, 1);
    s_done_make(&d[2], &wk, "job-gone", 1, 1, 1);
    s_done *offers[3] = {&d[0], &d[1], &d[2]};
    s_fake_hello(&wk, 0, 1, offers, 3);
    s_fake_welcomed(&wk);
    s_inbox in = {0};
    s_inbox_read(&in, W1);
    cr_assert_eq(s_inbox_count(&in, QUERN__ENVELOPE__BODY_JOB_END), 2);
    unsigned gone = 0, other = 0;
    for (size_t i = 0; i < in.n; i++) {
        if (in.v[i]->body_case != QUERN__ENVELOPE__BODY_JOB_END)
            continue;
        gone += strcmp(in.v[i]->job_end->job_id, "job-gone") == 0;
        other += strcmp(in.v[i]->job_end->job_id, "job-other") == 0;
    }
    cr_assert(gone == 1 && other == 1,
              "job ends: %u of job-gone, %u of "
              "job-other",
              gone, other);
    s_inbox_free(&in);
}

Test(master, a_leaving_worker_s_attempts_run_elsewhere_at_once)
{
    char id[64], out[600];
    s_fake_join(&A, "w1", W1, A_OLD_EP, 1);
    snprintf(out, sizeof out, "%s/out", dir);
    s_submit(s_input("in.txt", "a b a\n"), out, 0);
    cr_assert(s_submit_reply(id, sizeof id), "submit refused: %s", id);
    int jx = qn_jobs_find(&m->jobs, id);
    s_fake_assigned(&A, QUERN__TASK_KIND__MAP, 0, 1);
    s_fake_join(&B, "w2", W2, B_EP, 2);
    s_inbox b = {0};
    s_inbox_read(&b, W2);
    cr_assert_eq(s_inbox_assigns(&b, QUERN__TASK_KIND__MAP, -1), 0);
    s_inbox_free(&b);
    /* A goodbye of another incarnation is not A's. */
    s_fake_leaving(&A, A.incarnation + 1);
    cr_assert(qn_workers_alive(&m->workers, 0));
    cr_assert_eq(m->net.drops.by_reason[DROP_INVALID], 1);
    /* A's own: its map runs on B now, the clock not moved. */
    s_fake_leaving(&A, A.incarnation);
    cr_assert(!qn_workers_alive(&m->workers, 0), "A still counts alive");
    cr_assert_eq(s_events("worker_left", NULL), 1);
    cr_assert_eq(s_events("worker_lost", NULL), 0);
    cr_assert_eq(m->stats.attempts_lost[QN_MAP], 1);
    cr_assert(strstr(qn_job_last_failure(&m->jobs.v[jx], QN_MAP, 0),
                     "worker w1 was lost"));
    s_inbox_read(&b, W2);
    const Quern__TaskSpec *ts = s_inbox_assign(&b, QUERN__TASK_KIND__MAP, 0);
    cr_assert_not_null(ts, "the map does not run on B");
    cr_assert_eq(ts->attempt, 2);
    s_inbox_free(&b);
    cr_assert_eq(qn_sched_attempt_worker(m->sched, jx, QN_MAP, 0, 2), 1);
}

/* B's reduce 1 (attempt 1) could not fetch attempt 1 of map from A's
 * process of incarnation inc. */
static void s_b_cannot_fetch(const char *id, unsigned map, uint64_t inc)
{
    Quern__FetchFailure ff = QUERN__FETCH_FAILURE__INIT;
    ff.map = map;
    ff.attempt = 1;
    ff.incarnation = inc;
    ff.reason = (char *)"connection refused";
    s_fake_update(&B, id, QUERN__TASK_KIND__REDUCE, 1, 1,
                  QUERN__TASK_STATE__RUNNING, &ff);
}

Test(master, a_fetch_failure_from_before_a_restart_gets_the_new_place)
{
    char id[64];
    int jx = s_maps_done_on_a(id, sizeof id, 2);
    s_done *offers[2] = {&dn[0], &dn[1]};
    s_a_restarts(offers, 2);
    s_fake_welcomed(&A);
    s_drain(W2);
    /* Said of A's old process: told again where the output is now, and
     * not held against it (one report would do: half of 2 reduces). */
    for (int i = 0; i < 3; i++) {
        s_b_cannot_fetch(id, 0, 1);
        s_inbox b = {0};
        s_inbox_read(&b, W2);
        cr_assert_eq(s_inbox_located(&b, 1, 1, 0, 1, A_NEW_EP, 2), 1,
                     "not told the new place");
        s_inbox_free(&b);
    }
    const qn_job *j = &m->jobs.v[jx];
    cr_assert_eq(j->outs[0].reports, 0);
    cr_assert_eq(qn_sched_task(m->sched, jx, QN_MAP, 0).state, QN_TASK_DONE);
    cr_assert_eq(qn_job_counter(j, "maps_rerun"), 0);
    /* Said of its new one: it counts, and the map runs again. */
    s_b_cannot_fetch(id, 0, 2);
    cr_assert_eq(qn_job_counter(j, "maps_rerun"), 1);
    cr_assert_neq(qn_sched_task(m->sched, jx, QN_MAP, 0).state, QN_TASK_DONE);
}

/* An output a returning worker offers whose map was made again meanwhile is
 * not taken back: the worker is told to delete it (DropOutputs), and the
 * map keeps the new output. */
Test(master, an_offered_output_made_again_meanwhile_is_dropped)
{
    char id[64];
    int jx = s_maps_done_on_a(id, sizeof id, 1);
    s_drain(W2);
    now += 9000;
    s_fake_heartbeat(&B, 1);
    now += 2000;
    qn_master_tick(m, now);
    cr_assert(!qn_workers_alive(&m->workers, 0), "A is not dead");
    /* B makes one of the maps again, and finishes it. */
    s_inbox b = {0};
    s_inbox_read(&b, W2);
    const Quern__TaskSpec *ts = s_inbox_assign(&b, QUERN__TASK_KIND__MAP, -1);
    cr_assert_not_null(ts, "B was given no map to make again");
    unsigned remade = ts->task;
    cr_assert_eq(ts->attempt, 2);
    s_inbox_free(&b);
    s_done d;
    s_done_make(&d, &B, id, remade, 2, 1);
    s_feed_update(B.peer, &d.u);
    qn_task_info ti = qn_sched_task(m->sched, jx, QN_MAP, remade);
    cr_assert(ti.state == QN_TASK_DONE && ti.attempt == 2 && ti.worker == 1);
    /* A comes back offering both of its outputs. */
    s_done *offers[2] = {&dn[0], &dn[1]};
    s_a_restarts(offers, 2);
    cr_assert(s_fake_welcomed(&A), "not welcomed");
    ti = qn_sched_task(m->sched, jx, QN_MAP, remade);
    cr_assert(ti.state == QN_TASK_DONE && ti.attempt == 2 && ti.worker == 1,
              "the map made again lost its new output");
    cr_assert_eq(s_events("map_taken_back", NULL), 1);
    s_inbox a = {0};
    s_inbox_read(&a, W1B);
    cr_assert_eq(s_inbox_count(&a, QUERN__ENVELOPE__BODY_DROP_OUTPUTS), 1,
                 "A is not told to drop the output no job needs");
    for (size_t i = 0; i < a.n; i++) {
        if (a.v[i]->body_case != QUERN__ENVELOPE__BODY_DROP_OUTPUTS)
            continue;
        const Quern__DropOutputs *dr = a.v[i]->drop_outputs;
        cr_assert_eq(dr->n_outputs, 1);
        cr_assert_str_eq(dr->outputs[0]->job_id, id);
        cr_assert_eq(dr->outputs[0]->task, remade);
        cr_assert_eq(dr->outputs[0]->attempt, 1);
    }
    s_inbox_free(&a);
}

Test(master, a_puts_copies_of_one_workers_shards_spread_over_the_others)
{
    /* Four data workers, 16 shards of 2 copies: each worker holds 8, and
     * their other copies are on all three others (not on one partner,
     * which would be the only source to copy from once it is lost). */
    for (int i = 0; i < 4; i++) {
        qn_mworker wk = {0};
        snprintf(wk.id, sizeof wk.id, "p%d", i);
        wk.slots = 1;
        wk.has_data = 1;
        wk.endpoint = (char *)"tcp://127.0.0.1:1";
        qn_workers_join(&m->workers, now, &wk);
    }
    qn_dataset d = {.replicas = 2};
    unsigned held[4] = {0}, with[4][4] = {{0}};
    for (int s = 0; s < 16; s++) {
        int chosen[QN_DATASETS_MAX_REPLICAS];
        cr_assert_eq(qn_datasets_place(m, &d, NULL, 0, chosen), 2);
        cr_assert_neq(chosen[0], chosen[1]);
        held[chosen[0]]++;
        held[chosen[1]]++;
        with[chosen[0]][chosen[1]]++;
        with[chosen[1]][chosen[0]]++;
    }
    for (int a = 0; a < 4; a++) {
        cr_assert_eq(held[a], 8, "worker %d holds %u", a, held[a]);
        for (int b = 0; b < 4; b++)
            cr_assert(a == b || with[a][b] >= 1,
                      "workers %d and %d share no shard", a, b);
    }
}
