/*
 * fuzz_master.c -- libFuzzer target: what peers say to the master, in turn.
 *
 * Each input is a run of messages for a master of its own (no status page,
 * an inproc socket nobody reads), fed through qn_master_feed as its socket
 * would feed them, so that the handlers behind the decoders see one
 * message after another: workers joining, heartbeats, task updates, jobs
 * submitted, uploads, status and log requests. Each message is
 *
 *   1 byte   bits 0-1: which of four peers sends it (two addresses);
 *            bits 2-4: how far the clock moves first (0, 10 ms, 100 ms,
 *            1 s, 5 s, 20 s, 1 min, 5 min), so workers go silent and
 *            attempts time out
 *   2 bytes  the envelope's length, little-endian
 *   N bytes  the envelope
 *
 * The fuzzing build makes the clock this target's (qn_fuzz_set_now) and
 * every worker's session 1, so that an input replays the same and the
 * fuzzer can speak for a worker it made join. A job's paths are moved into
 * this process's own folder before the master sees them: a master creates
 * its output folder, and the fuzzer must not make folders all over the
 * machine. What must hold: no crash, no sanitizer report, no leak.
 *
 * The seeds in tests/fuzz/corpus/master come from this file:
 * QN_FUZZ_MASTER_SEEDS=DIR build/fuzz/fuzz/fuzz_master -runs=0 writes them.
 * QN_FUZZ_LOG=info (or debug) shows what the master made of an input.
 */
#include "../../master/master.h"
#include "log.h"
#include "util.h"
#include "wire.h"

#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MESSAGES_MAX 256 /* messages taken from one input */

static char s_dir[64];       /* this process's folder */
static char s_inputs[2][96]; /* a file, and a folder of two files */
static const int64_t s_steps[8] = {0,    10,    100,   1000,
                                   5000, 20000, 60000, 300000};

static void s_rmdir(void)
{
    qn_rmtree(s_dir);
}

static void s_write(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    if (!f)
        abort();
    fputs(text, f);
    fclose(f);
}

static void s_replace(char **field, const char *with)
{
    /* protobuf-c's allocator is malloc's; an empty string is its static
     * default, not to be freed. */
    if (*field != protobuf_c_empty_string)
        free(*field);
    *field = strdup(with);
    if (!*field)
        abort();
}

/*
 * A job's input and output paths, moved into s_dir; dataset names stay.
 * Returns 1 when env was changed (and must be packed again).
 */
static int s_confine(Quern__Envelope *env, unsigned seq)
{
    if (env->body_case != QUERN__ENVELOPE__BODY_SUBMIT_JOB ||
        !env->submit_job->spec)
        return 0;
    Quern__JobSpec *s = env->submit_job->spec;
    for (size_t i = 0; i < s->n_inputs; i++) {
        Quern__InputPath *in = s->inputs[i];
        if (strchr(in->given, '/') || strchr(in->path, '/')) {
            s_replace(&in->given, s_inputs[i % 2]);
            s_replace(&in->path, s_inputs[i % 2]);
        }
    }
    if (strchr(s->output, '/')) {
        char out[128];
        snprintf(out, sizeof out, "%s/out/o%u", s_dir, seq);
        s_replace(&s->output, out);
    }
    return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    qn_master_config cfg = {.listen = "inproc://fuzz-master",
                            .heartbeat_ms = 1000,
                            .dead_ms = 10000,
                            .task_timeout_ms = 60000,
                            .ready_fd = -1,
                            .locality_wait_ms = 3000,
                            .shard_wait_ms = 10000,
                            .http = "off"};
    int64_t now = 1000000;
    qn_fuzz_set_now(now);
    char err[256];
    /* A master takes SIGINT and SIGTERM through a signalfd, blocking them:
     * give them back to libFuzzer after it. */
    sigset_t mask;
    sigprocmask(SIG_SETMASK, NULL, &mask);
    qn_master *m = qn_master_new(&cfg, err, sizeof err);
    if (!m) {
        /* Once in a 10-minute run (713,222 inputs in), a master could not
         * be made, whatever the input: say why, and try once more. */
        fprintf(stderr, "fuzz_master: no master: %s; again\n", err);
        m = qn_master_new(&cfg, err, sizeof err);
    }
    if (!m) {
        fprintf(stderr, "fuzz_master: no master: %s\n", err);
        abort();
    }
    static const char *peers[4] = {"127.0.0.1", "127.0.0.1", "127.0.0.2",
                                   "127.0.0.2"};
    qn_buf packed = {0};
    size_t off = 0;
    for (unsigned n = 0; n < MESSAGES_MAX && size - off >= 3; n++) {
        unsigned op = data[off];
        size_t len = (size_t)data[off + 1] | (size_t)data[off + 2] << 8;
        off += 3;
        if (len > size - off)
            len = size - off;
        const uint8_t *msg = data + off;
        off += len;
        now += s_steps[(op >> 2) & 7];
        qn_fuzz_set_now(now);
        Quern__Envelope *env = NULL;
        if (qn_wire_decode(msg, len, &env, NULL, err, sizeof err) == 0 &&
            s_confine(env, n)) {
            if (qn_wire_pack(env, &packed) != 0)
                abort();
            msg = (const uint8_t *)packed.data;
            len = packed.len;
        }
        qn_wire_free(env);
        char id[8];
        snprintf(id, sizeof id, "peer-%u", op & 3);
        qn_master_feed(m, peers[op & 3], id, strlen(id), msg, len, now);
    }
    qn_buf_release(&packed);
    qn_master_destroy(&m);
    sigprocmask(SIG_SETMASK, &mask, NULL);
    char out[96];
    snprintf(out, sizeof out, "%s/out", s_dir);
    qn_rmtree(out);
    return 0;
}

/* ---- seeds --------------------------------------------------------------- */

/* One message of a seed: op byte, length, the packed envelope. */
static void s_add(qn_buf *seed, unsigned op, Quern__Envelope *env)
{
    qn_buf b = {0};
    if (qn_wire_pack(env, &b) != 0 || b.len > 0xffff)
        abort();
    uint8_t head[3] = {(uint8_t)op, (uint8_t)(b.len & 0xff),
                       (uint8_t)(b.len >> 8)};
    qn_buf_add(seed, head, sizeof head);
    qn_buf_add(seed, b.data, b.len);
    qn_buf_release(&b);
}

#define OP(peer, step) ((unsigned)(peer) | (unsigned)(step) << 2)

static void s_hello(qn_buf *seed, unsigned peer, const char *id)
{
    Quern__Envelope e = QUERN__ENVELOPE__INIT;
    Quern__WorkerHello h = QUERN__WORKER_HELLO__INIT;
    Quern__ShardInfo sh = QUERN__SHARD_INFO__INIT;
    Quern__ShardInfo *shp = &sh;
    h.worker_id = (char *)id;
    h.slots = 2;
    h.shuffle_endpoint = (char *)"tcp://127.0.0.1:9";
    h.host = (char *)"fuzzhost";
    h.pid = 100 + peer;
    h.has_data = 1;
    sh.dataset = (char *)"words";
    sh.index = 0;
    sh.size = 14;
    sh.sealed = 1;
    sh.nshards = 1;
    h.n_shards = 1;
    h.shards = &shp;
    e.body_case = QUERN__ENVELOPE__BODY_WORKER_HELLO;
    e.worker_hello = &h;
    s_add(seed, OP(peer, 0), &e);
}

/* Worker id says hello as incarnation inc, offering map 0 attempt 1's
 * output of job-1000-1 if offer is set. */
static void s_hello_as(qn_buf *seed, unsigned peer, unsigned step,
                       const char *id, uint64_t inc, int offer)
{
    Quern__Envelope e = QUERN__ENVELOPE__INIT;
    Quern__WorkerHello h = QUERN__WORKER_HELLO__INIT;
    Quern__TaskUpdate u = QUERN__TASK_UPDATE__INIT;
    Quern__AttemptRef a = QUERN__ATTEMPT_REF__INIT;
    Quern__PartitionInfo p = QUERN__PARTITION_INFO__INIT;
    Quern__PartitionInfo *pp[2] = {&p, &p};
    Quern__TaskUpdate *up = &u;
    h.worker_id = (char *)id;
    h.slots = 2;
    h.shuffle_endpoint = (char *)"tcp://127.0.0.1:10";
    h.host = (char *)"fuzzhost";
    h.pid = 200 + peer;
    h.minor = QN_PROTOCOL_MINOR;
    h.incarnation = inc;
    a.job_id = (char *)"job-1000-1";
    a.kind = QUERN__TASK_KIND__MAP;
    a.attempt = 1;
    p.bytes = 20;
    p.raw_bytes = 30;
    p.records = 2;
    u.attempt = &a;
    u.state = QUERN__TASK_STATE__SUCCEEDED;
    u.n_partitions = 2;
    u.partitions = pp;
    h.n_finished = offer ? 1 : 0;
    h.finished = offer ? &up : NULL;
    e.body_case = QUERN__ENVELOPE__BODY_WORKER_HELLO;
    e.worker_hello = &h;
    s_add(seed, OP(peer, step), &e);
}

/* Worker id says it is leaving. */
static void s_leaving(qn_buf *seed, unsigned peer, const char *id, uint64_t inc)
{
    Quern__Envelope e = QUERN__ENVELOPE__INIT;
    Quern__WorkerLeaving l = QUERN__WORKER_LEAVING__INIT;
    l.worker_id = (char *)id;
    l.session = 1;
    l.incarnation = inc;
    e.body_case = QUERN__ENVELOPE__BODY_WORKER_LEAVING;
    e.worker_leaving = &l;
    s_add(seed, OP(peer, 0), &e);
}

static void s_heartbeat(qn_buf *seed, unsigned peer, unsigned step,
                        const char *id, Quern__AttemptRef *running)
{
    Quern__Envelope e = QUERN__ENVELOPE__INIT;
    Quern__Heartbeat h = QUERN__HEARTBEAT__INIT;
    static uint64_t seq;
    h.worker_id = (char *)id;
    h.seq = ++seq;
    h.session = 1;
    h.n_running = running ? 1 : 0;
    h.running = running ? &running : NULL;
    e.body_case = QUERN__ENVELOPE__BODY_HEARTBEAT;
    e.heartbeat = &h;
    s_add(seed, OP(peer, step), &e);
}

static void s_update(qn_buf *seed, unsigned peer, const char *id,
                     Quern__TaskKind kind, unsigned task,
                     Quern__TaskState state)
{
    Quern__Envelope e = QUERN__ENVELOPE__INIT;
    Quern__TaskUpdate u = QUERN__TASK_UPDATE__INIT;
    Quern__AttemptRef a = QUERN__ATTEMPT_REF__INIT;
    Quern__PartitionInfo p = QUERN__PARTITION_INFO__INIT;
    Quern__PartitionInfo *pp[2] = {&p, &p};
    a.job_id = (char *)"job-1000-1";
    a.kind = kind;
    a.task = task;
    a.attempt = 1;
    u.worker_id = (char *)id;
    u.attempt = &a;
    u.state = state;
    u.session = 1;
    u.progress = state == QUERN__TASK_STATE__RUNNING ? 0.5 : 1;
    if (state == QUERN__TASK_STATE__FAILED)
        u.reason = (char *)"failing on purpose";
    if (kind == QUERN__TASK_KIND__MAP &&
        state == QUERN__TASK_STATE__SUCCEEDED) {
        p.bytes = 20;
        p.raw_bytes = 30;
        p.records = 2;
        u.n_partitions = 2;
        u.partitions = pp;
    }
    e.body_case = QUERN__ENVELOPE__BODY_TASK_UPDATE;
    e.task_update = &u;
    s_add(seed, OP(peer, 1), &e);
}

/* A word count over a file, into a folder or a dataset. */
static void s_submit(qn_buf *seed, unsigned peer, const uint8_t *plugin,
                     size_t plen, int to_dataset)
{
    Quern__Envelope e = QUERN__ENVELOPE__INIT;
    Quern__SubmitJob sj = QUERN__SUBMIT_JOB__INIT;
    Quern__JobSpec s = QUERN__JOB_SPEC__INIT;
    Quern__InputPath in = QUERN__INPUT_PATH__INIT;
    Quern__InputPath *inp = &in;
    in.given = (char *)"./in";
    in.path = (char *)"/in";
    s.name = (char *)"wordcount";
    s.plugin = (char *)"/wordcount.so";
    s.n_inputs = 1;
    s.inputs = &inp;
    s.output = (char *)(to_dataset ? "counts" : "/out");
    s.output_dataset = to_dataset;
    s.output_replicas = 1;
    s.nreduce = 2;
    s.split_size = 1 << 20;
    s.sort_mb = 64;
    s.max_attempts = 2;
    s.speculation = 1;
    s.compress_level = 1;
    sj.spec = &s;
    sj.watch = 1;
    sj.plugin_data.data = (uint8_t *)plugin;
    sj.plugin_data.len = plen;
    e.body_case = QUERN__ENVELOPE__BODY_SUBMIT_JOB;
    e.submit_job = &sj;
    s_add(seed, OP(peer, 0), &e);
}

/* Client requests: status, workers, logs, datasets, an upload, a drop,
 * a cancel. */
static void s_client(qn_buf *seed, unsigned peer)
{
    Quern__Envelope e = QUERN__ENVELOPE__INIT;
    Quern__StatusRequest st = QUERN__STATUS_REQUEST__INIT;
    st.job_id = (char *)"job-1000-1";
    st.tasks = 1;
    e.body_case = QUERN__ENVELOPE__BODY_STATUS_REQUEST;
    e.status_request = &st;
    s_add(seed, OP(peer, 0), &e);

    Quern__WorkersRequest wr = QUERN__WORKERS_REQUEST__INIT;
    e.body_case = QUERN__ENVELOPE__BODY_WORKERS_REQUEST;
    e.workers_request = &wr;
    s_add(seed, OP(peer, 0), &e);

    Quern__LogsRequest lr = QUERN__LOGS_REQUEST__INIT;
    lr.job_id = (char *)"job-1000-1";
    lr.worker_id = (char *)"";
    lr.max_bytes = 4096;
    e.body_case = QUERN__ENVELOPE__BODY_LOGS_REQUEST;
    e.logs_request = &lr;
    s_add(seed, OP(peer, 0), &e);

    Quern__DatasetsRequest dr = QUERN__DATASETS_REQUEST__INIT;
    dr.dataset = (char *)"words";
    e.body_case = QUERN__ENVELOPE__BODY_DATASETS_REQUEST;
    e.datasets_request = &dr;
    s_add(seed, OP(peer, 0), &e);

    Quern__PutRequest pr = QUERN__PUT_REQUEST__INIT;
    pr.dataset = (char *)"upload";
    pr.replicas = 1;
    e.body_case = QUERN__ENVELOPE__BODY_PUT_REQUEST;
    e.put_request = &pr;
    pr.op = QUERN__PUT_REQUEST__OP__BEGIN;
    s_add(seed, OP(peer, 0), &e);
    pr.op = QUERN__PUT_REQUEST__OP__PLACE;
    s_add(seed, OP(peer, 1), &e);
    pr.op = QUERN__PUT_REQUEST__OP__COMMIT;
    pr.nshards = 1;
    s_add(seed, OP(peer, 1), &e);

    Quern__DropDataset dd = QUERN__DROP_DATASET__INIT;
    dd.dataset = (char *)"words";
    e.body_case = QUERN__ENVELOPE__BODY_DROP_DATASET;
    e.drop_dataset = &dd;
    s_add(seed, OP(peer, 0), &e);

    Quern__CancelJob cj = QUERN__CANCEL_JOB__INIT;
    cj.job_id = (char *)"job-1000-1";
    e.body_case = QUERN__ENVELOPE__BODY_CANCEL_JOB;
    e.cancel_job = &cj;
    s_add(seed, OP(peer, 0), &e);
}

/* A data report: a shard added and one removed, a COMMIT that failed. */
static void s_data(qn_buf *seed, unsigned peer, const char *id)
{
    Quern__Envelope e = QUERN__ENVELOPE__INIT;
    Quern__DataReport r = QUERN__DATA_REPORT__INIT;
    Quern__ShardInfo sh = QUERN__SHARD_INFO__INIT;
    Quern__ShardInfo *shp = &sh;
    Quern__CommitFailure cf = QUERN__COMMIT_FAILURE__INIT;
    Quern__CommitFailure *cfp = &cf;
    sh.dataset = (char *)"counts";
    sh.index = 1;
    sh.size = 100;
    cf.dataset = (char *)"counts";
    cf.index = 0;
    cf.job_id = (char *)"job-1000-1";
    cf.reason = (char *)"No space left on device";
    r.worker_id = (char *)id;
    r.session = 1;
    r.n_added = 1;
    r.added = &shp;
    r.n_removed = 1;
    r.removed = &shp;
    r.n_failed = 1;
    r.failed = &cfp;
    e.body_case = QUERN__ENVELOPE__BODY_DATA_REPORT;
    e.data_report = &r;
    s_add(seed, OP(peer, 0), &e);
}

static void s_save(const char *dir, const char *name, qn_buf *seed)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(seed->data, 1, seed->len, f) != seed->len)
        abort();
    fclose(f);
    seed->len = 0;
}

/* Write the seeds into dir; the plugin's bytes come from the jobspec
 * corpus (a small word count, behind that target's mode byte). */
static void s_seeds(const char *dir)
{
    qn_buf plugin = {0}, seed = {0};
    FILE *f = fopen("tests/fuzz/corpus/jobspec/plugin-wordcount", "rb");
    if (!f)
        abort();
    char chunk[4096];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
        qn_buf_add(&plugin, chunk, n);
    fclose(f);
    const uint8_t *so = (const uint8_t *)plugin.data + 1;
    size_t solen = plugin.len - 1;
    Quern__AttemptRef m0 = QUERN__ATTEMPT_REF__INIT;
    m0.job_id = (char *)"job-1000-1";
    m0.kind = QUERN__TASK_KIND__MAP;
    m0.attempt = 1;

    /* Two workers, a job run to its end. */
    s_hello(&seed, 0, "wa");
    s_hello(&seed, 2, "wb");
    s_submit(&seed, 1, so, solen, 0);
    s_heartbeat(&seed, 0, 3, "wa", &m0);
    s_heartbeat(&seed, 2, 0, "wb", &m0);
    for (unsigned w = 0; w < 2; w++) {
        const char *id = w ? "wb" : "wa";
        s_update(&seed, 2 * w, id, QUERN__TASK_KIND__MAP, 0,
                 QUERN__TASK_STATE__RUNNING);
        s_update(&seed, 2 * w, id, QUERN__TASK_KIND__MAP, 0,
                 QUERN__TASK_STATE__SUCCEEDED);
    }
    for (unsigned r = 0; r < 2; r++)
        for (unsigned w = 0; w < 2; w++)
            s_update(&seed, 2 * w, w ? "wb" : "wa", QUERN__TASK_KIND__REDUCE, r,
                     QUERN__TASK_STATE__SUCCEEDED);
    s_client(&seed, 1);
    s_save(dir, "job-to-a-folder", &seed);

    /* A job into a dataset whose COMMIT fails. */
    s_hello(&seed, 0, "wa");
    s_submit(&seed, 1, so, solen, 1);
    s_update(&seed, 0, "wa", QUERN__TASK_KIND__MAP, 0,
             QUERN__TASK_STATE__SUCCEEDED);
    s_update(&seed, 0, "wa", QUERN__TASK_KIND__REDUCE, 0,
             QUERN__TASK_STATE__SUCCEEDED);
    s_data(&seed, 0, "wa");
    /* wa goes silent while reduce 1 runs: the job has failed, and the
     * scheduler must not act for it (it once re-ran its map). */
    s_heartbeat(&seed, 1, 5, "nobody", NULL);
    s_save(dir, "job-to-a-dataset", &seed);

    /* Attempts that fail, a worker that goes silent. */
    s_hello(&seed, 0, "wa");
    s_hello(&seed, 3, "wb");
    s_submit(&seed, 1, so, solen, 0);
    s_update(&seed, 0, "wa", QUERN__TASK_KIND__MAP, 0,
             QUERN__TASK_STATE__FAILED);
    s_heartbeat(&seed, 3, 5, "wb", NULL);
    s_heartbeat(&seed, 3, 4, "wb", &m0);
    s_client(&seed, 1);
    s_save(dir, "failures-and-silence", &seed);

    /* Workers that restart: wa before --dead-ms, keeping map 0's output;
     * wb leaves, and comes back after it, offering it too. */
    s_hello_as(&seed, 0, 0, "wa", 1, 0);
    s_hello_as(&seed, 2, 0, "wb", 1, 0);
    s_submit(&seed, 1, so, solen, 0);
    s_update(&seed, 0, "wa", QUERN__TASK_KIND__MAP, 0,
             QUERN__TASK_STATE__SUCCEEDED);
    s_hello_as(&seed, 0, 2, "wa", 2, 1);
    s_leaving(&seed, 2, "wb", 1);
    s_hello_as(&seed, 2, 5, "wb", 2, 1);
    s_update(&seed, 0, "wa", QUERN__TASK_KIND__REDUCE, 0,
             QUERN__TASK_STATE__SUCCEEDED);
    s_save(dir, "workers-restart", &seed);

    /* Clients alone. */
    s_client(&seed, 1);
    s_save(dir, "clients", &seed);
    qn_buf_release(&plugin);
    qn_buf_release(&seed);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    /* Quiet, unless QN_FUZZ_LOG=info or debug: what did an input do? */
    const char *level = getenv("QN_FUZZ_LOG");
    int lv = level ? qn_log_parse_level(level) : -1;
    qn_log_init("fuzz_master", lv >= 0 ? (enum qn_log_level)lv : QN_LOG_ERROR);
    const char *seeds = getenv("QN_FUZZ_MASTER_SEEDS");
    if (seeds) {
        s_seeds(seeds);
        exit(0);
    }
    snprintf(s_dir, sizeof s_dir, "/tmp/quern-fuzz-master-XXXXXX");
    if (!mkdtemp(s_dir))
        abort();
    atexit(s_rmdir);
    char path[160];
    snprintf(s_inputs[0], sizeof s_inputs[0], "%s/in.txt", s_dir);
    s_write(s_inputs[0], "one two\nthree one\n");
    snprintf(s_inputs[1], sizeof s_inputs[1], "%s/in", s_dir);
    if (mkdir(s_inputs[1], 0755) != 0)
        abort();
    snprintf(path, sizeof path, "%s/a.txt", s_inputs[1]);
    s_write(path, "four five\n");
    snprintf(path, sizeof path, "%s/b.txt", s_inputs[1]);
    s_write(path, "six\nseven six\n");
    return 0;
}
