/*
 * test_shuffle.c -- the worker's shuffle server (worker/shuffle.c): it
 * serves exactly the byte ranges reducers ask for, never more than asked
 * (the flow control), and answers bad requests with an error or drops them.
 */
#include "helpers.h"

#include "layout.h"
#include "../worker/shuffle.h"
#include "ifile.h"
#include "util.h"
#include "wire.h"

#include <fcntl.h>
#include <zmq.h>

TestSuite(shuffle, .fini = qn_test_leak_check);

typedef struct {
    char *dir;
    void *ctx, *client;
    qn_shuffle *sh;
    qn_range parts[2];
    qn_codec *codec;
    qn_frames in;
} fixture;

/* A work dir holding job-1's map 0 attempt 1 output, and a server on it. */
static void setup(fixture *f)
{
    memset(f, 0, sizeof *f);
    f->dir = qn_test_tmpdir();
    qn_buf p = {0};
    qn_attempt_dir(&p, f->dir, "job-1", 1, 0, 1);
    qn_buf_printf(&p, "/%s", QN_ATTEMPT_TMP);
    cr_assert_eq(qn_mkdirs(p.data, 0755), 0);
    qn_map_output_path(&p, f->dir, "job-1", 0, 1);
    f->codec = qn_codec_new(QN_CODEC_ZLIB, 1);
    char err[256];
    qn_ifile_writer *w = qn_ifile_writer_new(p.data, 2, f->codec, err, 256);
    cr_assert_not_null(w, "%s", err);
    cr_assert_eq(qn_ifile_writer_add(w, 0, "a", 1, "1", 1), 0);
    /* Partition 1: about 1 MiB of poorly compressible records. */
    uint64_t x = 1;
    for (int i = 0; i < 20000; i++) {
        char k[16], v[64];
        int kn = snprintf(k, sizeof k, "k%08d", i);
        for (size_t j = 0; j < sizeof v; j++) {
            x = x * 6364136223846793005ULL + 1442695040888963407ULL;
            v[j] = (char)(x >> 56);
        }
        cr_assert_eq(qn_ifile_writer_add(w, 1, k, (size_t)kn, v, sizeof v), 0);
    }
    cr_assert_eq(qn_ifile_writer_close(&w, f->parts, err, sizeof err), 0);
    qn_buf_release(&p);

    f->ctx = zmq_ctx_new();
    f->sh = qn_shuffle_new(f->ctx, "tcp://127.0.0.1:*", f->dir, NULL, err, 256);
    cr_assert_not_null(f->sh, "%s", err);
    f->client = zmq_socket(f->ctx, ZMQ_DEALER);
    int zero = 0;
    zmq_setsockopt(f->client, ZMQ_LINGER, &zero, sizeof zero);
    cr_assert_eq(zmq_connect(f->client, qn_shuffle_endpoint(f->sh)), 0);
}

static void teardown_fx(fixture *f)
{
    zmq_close(f->client);
    qn_shuffle_destroy(&f->sh);
    zmq_ctx_term(f->ctx);
    qn_codec_destroy(&f->codec);
    qn_frames_release(&f->in);
    qn_rmtree(f->dir);
    free(f->dir);
}

static void ask(fixture *f, const char *job, unsigned map, unsigned attempt,
                unsigned part, uint64_t off, uint32_t max, uint64_t id)
{
    Quern__Envelope env = QUERN__ENVELOPE__INIT;
    Quern__FetchRequest rq = QUERN__FETCH_REQUEST__INIT;
    rq.job_id = (char *)job;
    rq.map = map;
    rq.attempt = attempt;
    rq.partition = part;
    rq.offset = off;
    rq.max_bytes = max;
    rq.request_id = id;
    env.body_case = QUERN__ENVELOPE__BODY_FETCH_REQUEST;
    env.fetch_request = &rq;
    cr_assert_eq(qn_wire_send(f->client, NULL, 0, &env, NULL, 0), 0);
}

/* Let the server handle what arrived (bounded wait for the request). */
static void serve(fixture *f)
{
    zmq_pollitem_t it = {.socket = qn_shuffle_socket(f->sh),
                         .events = ZMQ_POLLIN};
    cr_assert_eq(zmq_poll(&it, 1, 10000), 1, "no request reached the server");
    qn_shuffle_handle(f->sh);
}

/* The next reply, decoded; NULL if none comes within ms. */
static Quern__FetchReply *reply(fixture *f, int ms, Quern__Envelope **env)
{
    zmq_pollitem_t it = {.socket = f->client, .events = ZMQ_POLLIN};
    if (zmq_poll(&it, 1, ms) != 1)
        return NULL;
    cr_assert_eq(qn_wire_recv(f->client, 0, &f->in), 1);
    char err[256];
    cr_assert_eq(qn_wire_decode(f->in.env.data, f->in.env.len, env, NULL, err,
                                sizeof err),
                 0, "%s", err);
    cr_assert_eq((*env)->body_case, QUERN__ENVELOPE__BODY_FETCH_REPLY);
    return (*env)->fetch_reply;
}

Test(shuffle, sends_no_more_than_asked_for)
{
    fixture f;
    setup(&f);
    ask(&f, "job-1", 0, 1, 1, 0, 1000, 7);
    serve(&f);
    Quern__Envelope *env;
    Quern__FetchReply *r = reply(&f, 10000, &env);
    cr_assert_not_null(r);
    cr_assert_eq(r->request_id, 7);
    cr_assert_str_empty(r->error);
    cr_assert_eq(r->total, f.parts[1].length);
    cr_assert(f.in.has_data);
    cr_assert_eq(f.in.data.len, 1000);
    qn_wire_free(env);
    /* One request, one reply: nothing else is pushed. */
    cr_assert_null(reply(&f, 200, &env));
    /* A huge request still gets at most one 1 MiB chunk. */
    ask(&f, "job-1", 0, 1, 1, 0, 64u << 20, 8);
    serve(&f);
    r = reply(&f, 10000, &env);
    cr_assert_not_null(r);
    cr_assert_leq(f.in.data.len, 1u << 20);
    qn_wire_free(env);
    teardown_fx(&f);
}

Test(shuffle, chunks_reassemble_into_the_partition_bytes)
{
    fixture f;
    setup(&f);
    uint64_t len = f.parts[1].length;
    cr_assert_gt(len, 200000, "the partition should need several chunks");
    char *got = malloc(len);
    uint64_t off = 0, n = 0;
    while (off < len) {
        ask(&f, "job-1", 0, 1, 1, off, 65536, n++);
        serve(&f);
        Quern__Envelope *env;
        Quern__FetchReply *r = reply(&f, 10000, &env);
        cr_assert_not_null(r);
        cr_assert_eq(r->offset, off);
        cr_assert_gt(f.in.data.len, 0);
        cr_assert_leq(f.in.data.len, 65536);
        memcpy(got + off, f.in.data.data, f.in.data.len);
        off += f.in.data.len;
        qn_wire_free(env);
    }
    /* Exactly the file's bytes for that range: whole, valid blocks. */
    qn_buf p = {0};
    qn_map_output_path(&p, f.dir, "job-1", 0, 1);
    int fd = open(p.data, O_RDONLY);
    char *want = malloc(len);
    cr_assert_eq(qn_pread_all(fd, want, len, f.parts[1].offset), 0);
    close(fd);
    cr_assert_eq(memcmp(got, want, len), 0);
    char err[128];
    uint64_t raw = 0;
    cr_assert_eq(qn_block_scan(got, len, &raw, err, sizeof err), (long)len);
    cr_assert_eq(raw, f.parts[1].raw);
    free(got);
    free(want);
    qn_buf_release(&p);
    teardown_fx(&f);
}

Test(shuffle, unknown_output_or_partition_gets_an_error)
{
    fixture f;
    setup(&f);
    Quern__Envelope *env;
    ask(&f, "job-1", 3, 1, 0, 0, 100, 1);
    serve(&f);
    Quern__FetchReply *r = reply(&f, 10000, &env);
    cr_assert_not_null(r);
    cr_assert(strstr(r->error, "map-00003-a1/tmp/output.ifile") != NULL, "%s",
              r->error);
    qn_wire_free(env);
    ask(&f, "job-1", 0, 1, 5, 0, 100, 2);
    serve(&f);
    r = reply(&f, 10000, &env);
    cr_assert_not_null(r);
    cr_assert(strstr(r->error, "partition 5 out of range") != NULL, "%s",
              r->error);
    qn_wire_free(env);
    ask(&f, "job-1", 0, 1, 1, f.parts[1].length + 1, 100, 3);
    serve(&f);
    r = reply(&f, 10000, &env);
    cr_assert_not_null(r);
    cr_assert(strstr(r->error, "past the partition's end") != NULL);
    qn_wire_free(env);
    teardown_fx(&f);
}

Test(shuffle, garbage_is_dropped_and_counted)
{
    fixture f;
    setup(&f);
    cr_assert_eq(zmq_send(f.client, "\xff\x01garbage", 9, 0), 9);
    serve(&f);
    cr_assert_eq(qn_shuffle_get_stats(f.sh).dropped, 1);
    Quern__Envelope *env;
    cr_assert_null(reply(&f, 200, &env), "garbage must get no answer");
    /* A bad job id (a path) is refused without touching the disk. */
    ask(&f, "../../etc", 0, 1, 0, 0, 100, 1);
    serve(&f);
    cr_assert_eq(qn_shuffle_get_stats(f.sh).dropped, 2);
    /* And the server still works. */
    ask(&f, "job-1", 0, 1, 0, 0, 100, 9);
    serve(&f);
    Quern__FetchReply *r = reply(&f, 10000, &env);
    cr_assert_not_null(r);
    cr_assert_eq(r->request_id, 9);
    cr_assert_str_empty(r->error);
    qn_wire_free(env);
    teardown_fx(&f);
}

Test(shuffle, other_protocol_version_is_refused_naming_both)
{
    fixture f;
    setup(&f);
    Quern__Envelope env = QUERN__ENVELOPE__INIT;
    Quern__FetchRequest rq = QUERN__FETCH_REQUEST__INIT;
    rq.job_id = (char *)"job-1";
    env.body_case = QUERN__ENVELOPE__BODY_FETCH_REQUEST;
    env.fetch_request = &rq;
    env.version = QN_PROTOCOL_VERSION + 1;
    size_t n = quern__envelope__get_packed_size(&env);
    uint8_t *buf = malloc(n);
    quern__envelope__pack(&env, buf);
    cr_assert_eq(zmq_send(f.client, buf, n, 0), (int)n);
    free(buf);
    serve(&f);
    zmq_pollitem_t it = {.socket = f.client, .events = ZMQ_POLLIN};
    cr_assert_eq(zmq_poll(&it, 1, 10000), 1);
    cr_assert_eq(qn_wire_recv(f.client, 0, &f.in), 1);
    Quern__Envelope *got;
    char err[256];
    cr_assert_eq(qn_wire_decode(f.in.env.data, f.in.env.len, &got, NULL, err,
                                sizeof err),
                 0, "%s", err);
    cr_assert_eq(got->body_case, QUERN__ENVELOPE__BODY_REFUSAL);
    cr_assert_eq(got->refusal->your_version, QN_PROTOCOL_VERSION + 1);
    cr_assert_eq(got->refusal->my_version, QN_PROTOCOL_VERSION);
    qn_wire_free(got);
    teardown_fx(&f);
}
