/*
 * test_fetch.c -- the reducer's side of the shuffle (lib/fetch.c): a
 * reduce task fetching its partition of map outputs from a real shuffle
 * server (worker/shuffle.c, run in a child process), with the worker's
 * channel a socketpair the test holds.
 */
#include "helpers.h"

#include "../worker/shuffle.h"
#include "fetch.h"
#include "layout.h"

#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <zmq.h>

TestSuite(fetch, .fini = qn_test_leak_check);

#define NMAPS 3

typedef struct {
    char *dir;                /* maps' work dir; the reduce's is DIR/red */
    char *red;                /* the reduce's work dir */
    char endpoint[600];       /* the shuffle server's */
    pid_t server;             /* its process */
    qn_range parts[NMAPS][2]; /* each map output's partitions */
    Quern__TaskSpec spec;
    Quern__MapOutput mo[NMAPS];
    Quern__MapOutput *mop[NMAPS];
    int ctl[2]; /* [0] the task's end, [1] the worker's */
    qn_gasp gasp;
    quern_task t;
    char **segs, **names;
    qn_fetched *from;
    size_t nsegs;
} fixture;

static fixture fx;

/* Map m's output (attempt 1): partition 0 empty for map 1, partition 1
 * some hundred records. */
static void write_map(unsigned m)
{
    qn_buf p = {0}, dir = {0};
    qn_attempt_dir(&dir, fx.dir, "job-1", 1, m, 1);
    qn_buf_printf(&dir, "/%s", QN_ATTEMPT_TMP);
    cr_assert_eq(qn_mkdirs(dir.data, 0755), 0);
    qn_map_output_path(&p, fx.dir, "job-1", m, 1);
    qn_codec *c = qn_codec_new(QN_CODEC_ZLIB, 1);
    char err[256];
    qn_ifile_writer *w = qn_ifile_writer_new(p.data, 2, c, err, sizeof err);
    cr_assert_not_null(w, "%s", err);
    if (m != 1)
        cr_assert_eq(qn_ifile_writer_add(w, 0, "a", 1, "1", 1), 0);
    for (int i = 0; i < 300; i++) {
        char k[32];
        int n = snprintf(k, sizeof k, "m%u-key-%05d", m, i);
        cr_assert_eq(qn_ifile_writer_add(w, 1, k, (size_t)n, "v", 1), 0);
    }
    cr_assert_eq(qn_ifile_writer_close(&w, fx.parts[m], err, sizeof err), 0);
    qn_codec_destroy(&c);
    qn_buf_release(&p);
    qn_buf_release(&dir);
}

/* A shuffle server on the maps' work dir, in a child process. */
static void start_server(void)
{
    int ready[2];
    cr_assert_eq(pipe(ready), 0);
    fx.server = fork();
    cr_assert_geq(fx.server, 0);
    if (fx.server == 0) {
        close(ready[0]);
        void *ctx = zmq_ctx_new();
        char err[256];
        qn_shuffle *sh =
            qn_shuffle_new(ctx, fx.endpoint, fx.dir, NULL, err, sizeof err);
        if (!sh)
            _exit(1);
        cr_assert_eq(write(ready[1], "r", 1), 1);
        for (;;) {
            zmq_pollitem_t it = {.socket = qn_shuffle_socket(sh),
                                 .events = ZMQ_POLLIN};
            if (zmq_poll(&it, 1, -1) == 1)
                qn_shuffle_handle(sh);
        }
    }
    close(ready[1]);
    char c;
    cr_assert_eq(read(ready[0], &c, 1), 1, "the shuffle server did not start");
    close(ready[0]);
}

static void setup(void)
{
    memset(&fx, 0, sizeof fx);
    signal(SIGPIPE, SIG_IGN); /* a report after the worker is gone */
    fx.dir = qn_test_tmpdir();
    qn_buf b = {0};
    qn_buf_printf(&b, "%s/red", fx.dir);
    fx.red = b.data;
    snprintf(fx.endpoint, sizeof fx.endpoint, "ipc://%s/shuffle", fx.dir);
    for (unsigned m = 0; m < NMAPS; m++)
        write_map(m);
    start_server();
    Quern__TaskSpec init = QUERN__TASK_SPEC__INIT;
    fx.spec = init;
    fx.spec.job_id = (char *)"job-1";
    fx.spec.kind = QUERN__TASK_KIND__REDUCE;
    fx.spec.task = 1; /* the partition */
    fx.spec.attempt = 1;
    fx.spec.nreduce = 2;
    fx.spec.work_dir = fx.red;
    for (unsigned m = 0; m < NMAPS; m++) {
        quern__map_output__init(&fx.mo[m]);
        fx.mo[m].map = m;
        fx.mo[m].attempt = 1;
        fx.mo[m].endpoint = fx.endpoint;
        fx.mo[m].worker_id = (char *)"w-test";
        fx.mo[m].bytes = fx.parts[m][1].length;
        fx.mo[m].raw_bytes = fx.parts[m][1].raw;
        fx.mop[m] = &fx.mo[m];
    }
    fx.spec.map_outputs = fx.mop;
    fx.spec.n_map_outputs = NMAPS;
    cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fx.ctl), 0);
    fx.t = (quern_task){.ctl = fx.ctl[0], .out_fd = -1, .gasp = &fx.gasp};
    qn_task_init(&fx.t, &fx.spec);
}

static void teardown(void)
{
    kill(fx.server, SIGKILL);
    waitpid(fx.server, NULL, 0);
    for (size_t i = 0; i < fx.nsegs; i++) {
        free(fx.segs[i]);
        free(fx.names[i]);
    }
    free(fx.segs);
    free(fx.names);
    qn_fetched_free(&fx.from, fx.nsegs);
    fx.t.spec = NULL; /* ours, not unpacked */
    qn_task_release(&fx.t);
    close(fx.ctl[0]);
    if (fx.ctl[1] >= 0)
        close(fx.ctl[1]);
    qn_rmtree(fx.dir);
    free(fx.dir);
    free(fx.red);
    qn_test_leak_check();
}

static int fetch(void)
{
    return qn_fetch_segments(&fx.t, &fx.segs, &fx.names, &fx.from, &fx.nsegs);
}

/* Does the file at path hold bytes [off, off + len) of map m's output? */
static void assert_same_bytes(const char *path, unsigned m, uint64_t off,
                              uint64_t len)
{
    qn_buf p = {0};
    qn_map_output_path(&p, fx.dir, "job-1", m, 1);
    FILE *a = fopen(p.data, "rb"), *b = fopen(path, "rb");
    cr_assert(a && b);
    char *x = malloc(len + 1), *y = malloc(len + 1);
    cr_assert_eq(fseek(a, (long)off, SEEK_SET), 0);
    cr_assert_eq(fread(x, 1, len, a), len);
    cr_assert_eq(fread(y, 1, len + 1, b), len, "%s: wrong size", path);
    cr_assert_eq(memcmp(x, y, len), 0, "%s: other bytes", path);
    free(x);
    free(y);
    fclose(a);
    fclose(b);
    qn_buf_release(&p);
}

Test(fetch, fetches_each_maps_partition_into_a_segment, .init = setup,
     .fini = teardown)
{
    cr_assert_eq(fetch(), 0, "%s", fx.t.fail);
    cr_assert_eq(fx.nsegs, NMAPS);
    uint64_t total = 0;
    for (unsigned m = 0; m < NMAPS; m++) {
        assert_same_bytes(fx.segs[m], m, fx.parts[m][1].offset,
                          fx.parts[m][1].length);
        char want[128];
        snprintf(want, sizeof want,
                 "map %u attempt 1 output from worker w-test", m);
        cr_assert_str_eq(fx.names[m], want);
        cr_assert_eq(fx.from[m].map, m);
        cr_assert_eq(fx.from[m].attempt, 1);
        cr_assert_str_eq(fx.from[m].path, fx.segs[m]);
        cr_assert_eq(qn_fetched_find(fx.from, fx.nsegs, fx.segs[m]),
                     &fx.from[m]);
        total += fx.parts[m][1].length;
    }
    cr_assert_eq(fx.t.counters.v[QN_C_SHUFFLE_STORED].value, (long long)total);
    cr_assert_null(qn_fetched_find(fx.from, fx.nsegs, "/elsewhere"));
}

Test(fetch, a_map_with_nothing_for_the_partition_is_skipped, .init = setup,
     .fini = teardown)
{
    fx.spec.task = 0;
    for (unsigned m = 0; m < NMAPS; m++) {
        fx.mo[m].bytes = fx.parts[m][0].length;
        fx.mo[m].raw_bytes = fx.parts[m][0].raw;
    }
    fx.mo[1].bytes = 0;
    cr_assert_eq(fetch(), 0, "%s", fx.t.fail);
    cr_assert_eq(fx.nsegs, 2);
    cr_assert_eq(fx.from[0].map, 0);
    cr_assert_eq(fx.from[1].map, 2);
    assert_same_bytes(fx.segs[1], 2, fx.parts[2][0].offset,
                      fx.parts[2][0].length);
}

/* The worker passes on where map's attempt 1 is, with bytes (raw) for
 * this partition, on w-other. */
static void send_place(unsigned map, uint64_t bytes, uint64_t raw)
{
    Quern__Envelope env = QUERN__ENVELOPE__INIT;
    Quern__MapLocations ml = QUERN__MAP_LOCATIONS__INIT;
    Quern__AttemptRef r = QUERN__ATTEMPT_REF__INIT;
    Quern__MapOutput mo = QUERN__MAP_OUTPUT__INIT, *mop = &mo;
    mo.map = map;
    mo.attempt = 1;
    mo.endpoint = fx.endpoint;
    mo.worker_id = (char *)"w-other";
    mo.bytes = bytes;
    mo.raw_bytes = raw;
    r.job_id = (char *)"job-1";
    ml.reduce = &r;
    ml.outputs = &mop;
    ml.n_outputs = 1;
    env.body_case = QUERN__ENVELOPE__BODY_MAP_LOCATIONS;
    env.map_locations = &ml;
    cr_assert_eq(qn_wire_write_fd(fx.ctl[1], &env), 0);
}

Test(fetch, a_map_not_done_yet_is_fetched_once_its_place_comes, .init = setup,
     .fini = teardown)
{
    /* Map 2 was not done when the reduce started... */
    fx.mo[2].attempt = 0;
    fx.mo[2].bytes = 0;
    fx.mo[2].endpoint = (char *)"";
    /* ... and the worker passes its place on. */
    send_place(2, fx.parts[2][1].length, fx.parts[2][1].raw);
    cr_assert_eq(fetch(), 0, "%s", fx.t.fail);
    cr_assert_eq(fx.nsegs, NMAPS);
    cr_assert_eq(fx.from[2].attempt, 1);
    cr_assert_str_eq(fx.names[2], "map 2 attempt 1 output from worker w-other");
    assert_same_bytes(fx.segs[2], 2, fx.parts[2][1].offset,
                      fx.parts[2][1].length);
}

Test(fetch, a_late_map_with_nothing_for_the_partition_is_left_out,
     .init = setup, .fini = teardown)
{
    /* Map 2 was not done when the reduce started, and then wrote nothing
     * for its partition: no segment file is made, and none is listed. */
    fx.mo[2].attempt = 0;
    fx.mo[2].bytes = 0;
    fx.mo[2].endpoint = (char *)"";
    send_place(2, 0, 0);
    cr_assert_eq(fetch(), 0, "%s", fx.t.fail);
    cr_assert_eq(fx.nsegs, NMAPS - 1);
    for (size_t i = 0; i < fx.nsegs; i++) {
        cr_assert_neq(fx.from[i].map, 2);
        cr_assert_eq(access(fx.segs[i], F_OK), 0, "%s is listed but missing",
                     fx.segs[i]);
    }
}

/*
 * Read the worker's end of the channel in a child process until a fetch
 * failure comes; the child writes "MAP ATTEMPT LOST REASON" to path and
 * exits, closing the channel: the worker is then gone.
 */
static pid_t watch_for_failure(const char *path)
{
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid > 0) {
        close(fx.ctl[1]);
        fx.ctl[1] = -1;
        return pid;
    }
    close(fx.ctl[0]);
    qn_stream st = {.fd = fx.ctl[1]};
    for (;;) {
        Quern__Envelope *env = NULL;
        char err[256];
        int r = qn_stream_next(&st, &env, err, sizeof err);
        if (r < 0)
            _exit(2);
        if (r == 0) {
            if (st.eof || qn_stream_read(&st) < 0)
                _exit(3);
            continue;
        }
        const Quern__TaskUpdate *u = env->task_update;
        if (env->body_case == QUERN__ENVELOPE__BODY_TASK_UPDATE &&
            u->n_fetch_failures == 1) {
            const Quern__FetchFailure *ff = u->fetch_failures[0];
            FILE *f = fopen(path, "w");
            fprintf(f, "%u %u %d %s", ff->map, ff->attempt, (int)ff->lost,
                    ff->reason);
            fclose(f);
            _exit(0);
        }
        qn_wire_free(env);
    }
}

Test(fetch, a_segment_that_fails_its_checks_is_reported_lost, .init = setup,
     .fini = teardown)
{
    /* Map 1's output holds fewer record bytes than the map reported. */
    fx.mo[1].raw_bytes += 1;
    char *path = malloc(4096);
    qn_test_join(path, 4096, fx.dir, "failure");
    pid_t watcher = watch_for_failure(path);
    cr_assert_eq(fetch(), -1);
    cr_assert_str_eq(fx.t.fail, "the worker is gone");
    int status;
    cr_assert_eq(waitpid(watcher, &status, 0), watcher);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    FILE *f = fopen(path, "r");
    cr_assert_not_null(f);
    char got[1024] = "";
    cr_assert_not_null(fgets(got, sizeof got, f));
    fclose(f);
    free(path);
    cr_assert(strncmp(got, "1 1 1 corrupt data: its blocks hold", 35) == 0,
              "%s", got);
    /* The segments are still named, for the caller's cleanup. */
    cr_assert_eq(fx.nsegs, NMAPS);
}

Test(fetch, a_bad_server_endpoint_fails_the_fetch, .init = setup,
     .fini = teardown)
{
    fx.mo[0].endpoint = (char *)"nonsense";
    cr_assert_eq(fetch(), -1);
    cr_assert_str_eq(fx.t.fail, "bad shuffle endpoint 'nonsense'");
    cr_assert_eq(fx.nsegs, NMAPS);
}

/* ---- a map output's worker restarts while the reduce fetches ------------ */

#define FAKE_LIFE_MS 3000 /* a fake server's life; then it exits */

/* Answer request rq (from the peer fr names) from the maps' outputs. */
static void fake_answer(void *sock, const qn_frames *fr,
                        const Quern__FetchRequest *rq)
{
    Quern__Envelope env = QUERN__ENVELOPE__INIT;
    Quern__FetchReply rep = QUERN__FETCH_REPLY__INIT;
    rep.request_id = rq->request_id;
    rep.offset = rq->offset;
    env.body_case = QUERN__ENVELOPE__BODY_FETCH_REPLY;
    env.fetch_reply = &rep;
    if (rq->map >= NMAPS || rq->partition >= 2 || rq->attempt != 1) {
        rep.error = (char *)"no such output";
        qn_wire_send(sock, fr->id, fr->idlen, &env, NULL, 0);
        return;
    }
    const qn_range *r = &fx.parts[rq->map][rq->partition];
    uint64_t n = rq->offset < r->length ? r->length - rq->offset : 0;
    if (n > rq->max_bytes)
        n = rq->max_bytes;
    char *buf = malloc(n + 1);
    qn_buf p = {0};
    qn_map_output_path(&p, fx.dir, rq->job_id, rq->map, rq->attempt);
    int fd = open(p.data, O_RDONLY);
    qn_buf_release(&p);
    if (fd < 0 || qn_pread_all(fd, buf, n, r->offset + rq->offset) < 0)
        _exit(4);
    close(fd);
    rep.total = r->length;
    qn_wire_send(sock, fr->id, fr->idlen, &env, buf, n);
    free(buf);
}

/*
 * A fake shuffle server in a child process, bound to endpoint for
 * FAKE_LIFE_MS: every request it gets is noted in log ("MAP OFFSET" a
 * line) before it is answered from the maps' outputs, or, silent, never
 * (the process that held them is gone). A silent one given loc writes it
 * to the worker's end of the channel on its first request, as the worker
 * would pass the master's word on; it is then the channel's only holder.
 */
static pid_t fake_server(const char *endpoint, const char *log, int silent,
                         Quern__MapLocations *loc)
{
    int ready[2];
    cr_assert_eq(pipe(ready), 0);
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid > 0) {
        close(ready[1]);
        char c;
        cr_assert_eq(read(ready[0], &c, 1), 1, "%s did not start", endpoint);
        close(ready[0]);
        return pid;
    }
    close(ready[0]);
    close(fx.ctl[0]);
    if (!loc)
        close(fx.ctl[1]);
    void *ctx = zmq_ctx_new();
    void *sock = qn_wire_socket(ctx, ZMQ_ROUTER);
    if (!sock || zmq_bind(sock, endpoint) < 0)
        _exit(1);
    if (write(ready[1], "r", 1) != 1)
        _exit(1);
    close(ready[1]);
    int64_t end = qn_now_ms() + FAKE_LIFE_MS;
    int told = 0;
    qn_frames fr = {0};
    while (qn_now_ms() < end) {
        zmq_pollitem_t it = {.socket = sock, .events = ZMQ_POLLIN};
        if (zmq_poll(&it, 1, 100) != 1)
            continue;
        while (qn_wire_recv(sock, 1, &fr) == 1) {
            Quern__Envelope *env = NULL;
            char err[256];
            uint32_t v;
            if (qn_wire_decode(fr.env.data, fr.env.len, &env, &v, err,
                               sizeof err) < 0 ||
                env->body_case != QUERN__ENVELOPE__BODY_FETCH_REQUEST) {
                qn_wire_free(env);
                continue;
            }
            const Quern__FetchRequest *rq = env->fetch_request;
            FILE *f = fopen(log, "a");
            if (!f)
                _exit(3);
            fprintf(f, "%u %llu\n", rq->map, (unsigned long long)rq->offset);
            fclose(f);
            if (!silent) {
                fake_answer(sock, &fr, rq);
            } else if (loc && !told) {
                Quern__Envelope le = QUERN__ENVELOPE__INIT;
                le.body_case = QUERN__ENVELOPE__BODY_MAP_LOCATIONS;
                le.map_locations = loc;
                if (qn_wire_write_fd(fx.ctl[1], &le) < 0)
                    _exit(5);
                told = 1;
            }
            qn_wire_free(env);
        }
    }
    _exit(0);
}

/* Requests for map's output that log notes (no log: none came). */
static unsigned fake_requests(const char *log, unsigned map)
{
    unsigned n = 0, m;
    unsigned long long off;
    FILE *f = fopen(log, "r");
    if (!f)
        return 0;
    while (fscanf(f, "%u %llu", &m, &off) == 2)
        n += m == map;
    fclose(f);
    return n;
}

static void fake_stop(pid_t pid)
{
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
}

Test(fetch, a_map_output_whose_worker_restarted_is_fetched_at_its_new_place,
     .init = setup, .fini = teardown)
{
    char ep[3][600], log[3][600];
    for (int i = 0; i < 3; i++) {
        snprintf(ep[i], sizeof ep[i], "ipc://%s/fake-%d", fx.dir, i);
        snprintf(log[i], sizeof log[i], "%s/fake-%d.log", fx.dir, i);
    }
    /* Two map outputs: map 0's worker answers (fake 0); map 1's worker
     * (fake 1) restarted, and its old process answers nothing. */
    fx.spec.n_map_outputs = 2;
    for (unsigned m = 0; m < 2; m++) {
        fx.mo[m].endpoint = ep[m];
        fx.mo[m].incarnation = 1;
    }
    fx.mo[1].worker_id = (char *)"w-restarts";
    /* Its new process (incarnation 2) serves the same attempt at another
     * place (fake 2); the master's word of it comes once the reduce has
     * asked the old one. */
    Quern__MapLocations ml = QUERN__MAP_LOCATIONS__INIT;
    Quern__AttemptRef r = QUERN__ATTEMPT_REF__INIT;
    Quern__MapOutput mo = QUERN__MAP_OUTPUT__INIT, *mop = &mo;
    mo.map = 1;
    mo.attempt = 1;
    mo.endpoint = ep[2];
    mo.worker_id = (char *)"w-restarts";
    mo.incarnation = 2;
    mo.bytes = fx.parts[1][1].length;
    mo.raw_bytes = fx.parts[1][1].raw;
    r.job_id = (char *)"job-1";
    r.kind = QUERN__TASK_KIND__REDUCE;
    r.task = 1;
    r.attempt = 1;
    ml.reduce = &r;
    ml.outputs = &mop;
    ml.n_outputs = 1;
    pid_t fakes[3];
    fakes[0] = fake_server(ep[0], log[0], 0, NULL);
    fakes[2] = fake_server(ep[2], log[2], 0, NULL);
    fakes[1] = fake_server(ep[1], log[1], 1, &ml);
    /* Fake 1 holds the worker's end now: when it exits, the worker is
     * gone, so a fetch that never moves on ends in FAKE_LIFE_MS. */
    close(fx.ctl[1]);
    fx.ctl[1] = -1;
    int rc = fetch();
    for (int i = 0; i < 3; i++)
        fake_stop(fakes[i]);
    cr_assert_eq(rc, 0, "%s", fx.t.fail);
    cr_assert_eq(fx.nsegs, 2);
    for (unsigned m = 0; m < 2; m++) {
        cr_assert_eq(fx.from[m].map, m);
        cr_assert_eq(fx.from[m].attempt, 1);
        assert_same_bytes(fx.segs[m], m, fx.parts[m][1].offset,
                          fx.parts[m][1].length);
    }
    cr_assert_str_eq(fx.names[1],
                     "map 1 attempt 1 output from worker w-restarts");
    /* Map 0 was asked of fake 0 once, of no other; map 1 of the old
     * process, then once of the new. Each segment is counted once. */
    cr_assert_eq(fake_requests(log[0], 0), 1, "map 0 fetched again");
    cr_assert_eq(fake_requests(log[0], 1), 0);
    cr_assert_geq(fake_requests(log[1], 1), 1, "fake 1 was never asked");
    cr_assert_eq(fake_requests(log[1], 0), 0);
    cr_assert_eq(fake_requests(log[2], 1), 1);
    cr_assert_eq(fake_requests(log[2], 0), 0, "map 0 fetched again");
    cr_assert_eq(fx.t.counters.v[QN_C_SHUFFLE_STORED].value,
                 (long long)(fx.parts[0][1].length + fx.parts[1][1].length));
}
