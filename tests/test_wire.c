/*
 * test_wire.c -- the versioned envelope, validation, and transport over
 * stream descriptors and ZeroMQ.
 */
#include "helpers.h"

#include "util.h"
#include "wire.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/socket.h>

TestSuite(wire, .fini = qn_test_leak_check);

/* ---- helpers ------------------------------------------------------------- */

/* Pack env with qn_wire_pack and decode it; the decoded envelope. */
static Quern__Envelope *s_round_trip(Quern__Envelope *env)
{
    qn_buf b = {0};
    cr_assert_eq(qn_wire_pack(env, &b), 0);
    cr_assert_eq(b.len, quern__envelope__get_packed_size(env));
    Quern__Envelope *out = NULL;
    uint32_t theirs = 12345;
    char err[256] = "";
    int rc = qn_wire_decode(b.data, b.len, &out, &theirs, err, sizeof err);
    qn_buf_release(&b);
    cr_assert_eq(rc, 0, "decode: %d %s", rc, err);
    cr_assert_not_null(out);
    cr_assert_eq(out->version, QN_PROTOCOL_VERSION);
    cr_assert_eq(out->body_case, env->body_case);
    return out;
}

/* Pack env as is, keeping its version (qn_wire_pack would overwrite it). */
static size_t s_pack_raw(const Quern__Envelope *env, unsigned char *buf,
                         size_t cap)
{
    size_t n = quern__envelope__get_packed_size(env);
    cr_assert_leq(n, cap);
    quern__envelope__pack(env, buf);
    return n;
}

/* Decode buf and expect -QN_ECORRUPT with a message and no envelope. */
static void s_expect_corrupt(const void *buf, size_t len, const char *what)
{
    Quern__Envelope *out = NULL;
    char err[256] = "";
    int rc = qn_wire_decode(buf, len, &out, NULL, err, sizeof err);
    cr_expect_eq(rc, -QN_ECORRUPT, "%s: rc %d", what, rc);
    if (rc == 0)
        qn_wire_free(out);
    else
        cr_expect_null(out, "%s: envelope set on failure", what);
    cr_expect_neq(err[0], '\0', "%s: no message", what);
}

/* Expect a well-formed envelope to fail its checks, with why in err. */
static void s_expect_refused(Quern__Envelope *env, const char *why)
{
    qn_buf b = {0};
    cr_assert_eq(qn_wire_pack(env, &b), 0);
    Quern__Envelope *out = NULL;
    char err[256] = "";
    int rc = qn_wire_decode(b.data, b.len, &out, NULL, err, sizeof err);
    qn_buf_release(&b);
    cr_expect_eq(rc, -QN_ECORRUPT, "accepted, wanted \"%s\"", why);
    if (out)
        qn_wire_free(out);
    cr_expect(strstr(err, why), "error \"%s\" does not say \"%s\"", err, why);
}

static void s_heartbeat(Quern__Envelope *env, Quern__Heartbeat *hb,
                        const char *worker_id)
{
    quern__envelope__init(env);
    quern__heartbeat__init(hb);
    hb->worker_id = (char *)worker_id;
    env->body_case = QUERN__ENVELOPE__BODY_HEARTBEAT;
    env->heartbeat = hb;
}

/* ---- round trips --------------------------------------------------------- */

Test(wire, heartbeat_round_trips)
{
    Quern__AttemptRef a1 = QUERN__ATTEMPT_REF__INIT;
    Quern__AttemptRef a2 = QUERN__ATTEMPT_REF__INIT;
    a1.job_id = (char *)"job-1";
    a1.kind = QUERN__TASK_KIND__MAP;
    a1.task = 3;
    a1.attempt = 1;
    a2.job_id = (char *)"job-2";
    a2.kind = QUERN__TASK_KIND__REDUCE;
    a2.task = 0;
    a2.attempt = 7;
    Quern__AttemptRef *running[] = {&a1, &a2};
    Quern__Envelope env;
    Quern__Heartbeat hb;
    s_heartbeat(&env, &hb, "worker-a");
    hb.n_running = 2;
    hb.running = running;
    hb.rss_peak = 1ULL << 40;
    env.version = 77; /* pack sets the version */

    Quern__Envelope *out = s_round_trip(&env);
    cr_assert_str_eq(qn_wire_name(out), "heartbeat");
    const Quern__Heartbeat *h = out->heartbeat;
    cr_assert_str_eq(h->worker_id, "worker-a");
    cr_assert_eq(h->rss_peak, 1ULL << 40);
    cr_assert_eq(h->n_running, 2);
    cr_assert_str_eq(h->running[0]->job_id, "job-1");
    cr_assert_eq(h->running[0]->task, 3);
    cr_assert_eq(h->running[1]->kind, QUERN__TASK_KIND__REDUCE);
    cr_assert_eq(h->running[1]->attempt, 7);
    qn_wire_free(out);
    qn_wire_free(NULL);
}

Test(wire, worker_hello_round_trips)
{
    Quern__Envelope env = QUERN__ENVELOPE__INIT;
    Quern__WorkerHello wh = QUERN__WORKER_HELLO__INIT;
    wh.worker_id = (char *)"host1-1234";
    wh.slots = 8;
    wh.shuffle_endpoint = (char *)"tcp://10.0.0.1:7001";
    wh.host = (char *)"host1";
    wh.pid = 1234;
    env.body_case = QUERN__ENVELOPE__BODY_WORKER_HELLO;
    env.worker_hello = &wh;
    Quern__Envelope *out = s_round_trip(&env);
    cr_assert_str_eq(qn_wire_name(out), "worker_hello");
    cr_assert_str_eq(out->worker_hello->worker_id, "host1-1234");
    cr_assert_eq(out->worker_hello->slots, 8);
    cr_assert_str_eq(out->worker_hello->shuffle_endpoint,
                     "tcp://10.0.0.1:7001");
    cr_assert_str_eq(out->worker_hello->host, "host1");
    cr_assert_eq(out->worker_hello->pid, 1234);
    qn_wire_free(out);
}

Test(wire, task_update_round_trips)
{
    Quern__AttemptRef a = QUERN__ATTEMPT_REF__INIT;
    a.job_id = (char *)"j";
    a.task = 9;
    Quern__Counter c1 = QUERN__COUNTER__INIT, c2 = QUERN__COUNTER__INIT;
    c1.name = (char *)"records";
    c1.value = -5;
    c2.name = (char *)"mots clés ✓";
    c2.value = INT64_MAX;
    Quern__Counter *counters[] = {&c1, &c2};
    Quern__PartitionInfo p1 = QUERN__PARTITION_INFO__INIT;
    p1.bytes = 10;
    p1.raw_bytes = 20;
    p1.records = 3;
    Quern__PartitionInfo *parts[] = {&p1};
    Quern__TaskUpdate u = QUERN__TASK_UPDATE__INIT;
    u.worker_id = (char *)"w";
    u.attempt = &a;
    u.state = QUERN__TASK_STATE__FAILED;
    u.progress = 0.625;
    u.n_counters = 2;
    u.counters = counters;
    u.n_partitions = 1;
    u.partitions = parts;
    u.reason = (char *)"map callback returned -1";
    u.stderr_tail = (char *)"line 1\nline 2\n";
    u.exit_code = 3;
    u.signal = -1;
    Quern__Envelope env = QUERN__ENVELOPE__INIT;
    env.body_case = QUERN__ENVELOPE__BODY_TASK_UPDATE;
    env.task_update = &u;
    Quern__Envelope *out = s_round_trip(&env);
    const Quern__TaskUpdate *o = out->task_update;
    cr_assert_str_eq(qn_wire_name(out), "task_update");
    cr_assert_eq(o->attempt->task, 9);
    cr_assert_eq(o->state, QUERN__TASK_STATE__FAILED);
    cr_assert_float_eq(o->progress, 0.625, 0);
    cr_assert_eq(o->n_counters, 2);
    cr_assert_str_eq(o->counters[1]->name, "mots clés ✓");
    cr_assert_eq(o->counters[0]->value, -5);
    cr_assert_eq(o->counters[1]->value, INT64_MAX);
    cr_assert_eq(o->n_partitions, 1);
    cr_assert_eq(o->partitions[0]->raw_bytes, 20);
    cr_assert_str_eq(o->reason, "map callback returned -1");
    cr_assert_str_eq(o->stderr_tail, "line 1\nline 2\n");
    cr_assert_eq(o->exit_code, 3);
    cr_assert_eq(o->signal, -1);
    qn_wire_free(out);
}

Test(wire, assign_task_with_nested_spec_round_trips)
{
    Quern__Arg arg = QUERN__ARG__INIT;
    arg.name = (char *)"pattern";
    arg.value = (char *)"^a.*z$";
    Quern__Arg *args[] = {&arg};
    Quern__InputPiece in = QUERN__INPUT_PIECE__INIT;
    in.path = (char *)"/data/in.txt";
    in.name = (char *)"in.txt";
    in.offset = 1ULL << 33;
    in.length = 64 << 20;
    Quern__InputPiece *inputs[] = {&in};
    Quern__TaskSpec spec = QUERN__TASK_SPEC__INIT;
    spec.job_id = (char *)"job-42";
    spec.plugin = (char *)"/opt/jobs/grep.so";
    spec.n_args = 1;
    spec.args = args;
    spec.nreduce = 4;
    spec.n_inputs = 1;
    spec.inputs = inputs;
    Quern__AssignTask at = QUERN__ASSIGN_TASK__INIT;
    at.spec = &spec;
    Quern__Envelope env = QUERN__ENVELOPE__INIT;
    env.body_case = QUERN__ENVELOPE__BODY_ASSIGN_TASK;
    env.assign_task = &at;
    Quern__Envelope *out = s_round_trip(&env);
    const Quern__TaskSpec *s = out->assign_task->spec;
    cr_assert_str_eq(qn_wire_name(out), "assign_task");
    cr_assert_str_eq(s->job_id, "job-42");
    cr_assert_eq(s->nreduce, 4);
    cr_assert_eq(s->n_args, 1);
    cr_assert_str_eq(s->args[0]->value, "^a.*z$");
    cr_assert_eq(s->n_inputs, 1);
    cr_assert_eq(s->inputs[0]->offset, 1ULL << 33);
    cr_assert_str_eq(s->inputs[0]->path, "/data/in.txt");
    qn_wire_free(out);
}

Test(wire, fetch_messages_and_empty_bodies_round_trip)
{
    Quern__FetchRequest fr = QUERN__FETCH_REQUEST__INIT;
    fr.job_id = (char *)"j1";
    fr.partition = 2;
    fr.offset = 4096;
    fr.max_bytes = 1 << 20;
    fr.request_id = (5ULL << 40) | 9;
    Quern__Envelope env = QUERN__ENVELOPE__INIT;
    env.body_case = QUERN__ENVELOPE__BODY_FETCH_REQUEST;
    env.fetch_request = &fr;
    Quern__Envelope *out = s_round_trip(&env);
    cr_assert_str_eq(qn_wire_name(out), "fetch_request");
    cr_assert_eq(out->fetch_request->request_id, (5ULL << 40) | 9);
    cr_assert_eq(out->fetch_request->max_bytes, 1 << 20);
    qn_wire_free(out);

    Quern__FetchReply rep = QUERN__FETCH_REPLY__INIT;
    rep.request_id = 77;
    rep.total = 123456;
    rep.error = (char *)"";
    env.body_case = QUERN__ENVELOPE__BODY_FETCH_REPLY;
    env.fetch_reply = &rep;
    out = s_round_trip(&env);
    cr_assert_eq(out->fetch_reply->request_id, 77);
    cr_assert_eq(out->fetch_reply->total, 123456);
    cr_assert_str_eq(out->fetch_reply->error, "");
    qn_wire_free(out);

    /* A message with no fields at all. */
    Quern__WorkersRequest wr = QUERN__WORKERS_REQUEST__INIT;
    env.body_case = QUERN__ENVELOPE__BODY_WORKERS_REQUEST;
    env.workers_request = &wr;
    out = s_round_trip(&env);
    cr_assert_str_eq(qn_wire_name(out), "workers_request");
    cr_assert_not_null(out->workers_request);
    qn_wire_free(out);
}

Test(wire, wire_msg_packs_into_a_zeromq_message)
{
    Quern__Envelope env;
    Quern__Heartbeat hb;
    s_heartbeat(&env, &hb, "w9");
    zmq_msg_t msg;
    cr_assert_eq(qn_wire_msg(&env, &msg), 0);
    Quern__Envelope *out = NULL;
    char err[256] = "";
    cr_assert_eq(qn_wire_decode(zmq_msg_data(&msg), zmq_msg_size(&msg), &out,
                                NULL, err, sizeof err),
                 0, "%s", err);
    cr_assert_str_eq(out->heartbeat->worker_id, "w9");
    qn_wire_free(out);
    zmq_msg_close(&msg);
}

/* ---- versions ------------------------------------------------------------ */

Test(wire, other_version_is_refused_and_reported)
{
    Quern__Envelope env;
    Quern__Heartbeat hb;
    s_heartbeat(&env, &hb, "w1");
    static const uint32_t versions[] = {2, 0x7fffffff, UINT32_MAX};
    for (size_t i = 0; i < QN_ARRAY_LEN(versions); i++) {
        env.version = versions[i];
        unsigned char buf[256];
        size_t n = s_pack_raw(&env, buf, sizeof buf);
        Quern__Envelope *out = NULL;
        uint32_t theirs = 0;
        char err[256] = "";
        int rc = qn_wire_decode(buf, n, &out, &theirs, err, sizeof err);
        cr_assert_eq(rc, -QN_WIRE_EVERSION, "version %u: rc %d", versions[i],
                     rc);
        cr_assert_eq(theirs, versions[i]);
        cr_assert_null(out, "an envelope of another version was handed over");
        char v[16];
        snprintf(v, sizeof v, "%u", versions[i]);
        cr_assert(strstr(err, v), "error does not give their version: %s", err);
        /* their_version is optional. */
        rc = qn_wire_decode(buf, n, &out, NULL, err, sizeof err);
        cr_assert_eq(rc, -QN_WIRE_EVERSION);
    }
}

/*
 * A Refusal is understood whatever its version: it is handed over so the
 * caller can show the reason, and err says what happened, since callers
 * log err for every -QN_WIRE_EVERSION.
 */
Test(wire, refusal_of_other_version_is_handed_over_with_a_message)
{
    Quern__Envelope env;
    Quern__Refusal r;
    qn_wire_refusal(&env, &r, 1);
    r.my_version = 2;
    r.reason = (char *)"refused: version 2 here";
    env.version = 2;
    unsigned char buf[512];
    size_t n = s_pack_raw(&env, buf, sizeof buf);
    Quern__Envelope *out = NULL;
    uint32_t theirs = 0;
    char err[256];
    memset(err, 0, sizeof err);
    int rc = qn_wire_decode(buf, n, &out, &theirs, err, sizeof err);
    cr_assert_eq(rc, -QN_WIRE_EVERSION);
    cr_assert_eq(theirs, 2);
    cr_assert_not_null(out);
    cr_assert_eq(out->body_case, QUERN__ENVELOPE__BODY_REFUSAL);
    cr_assert_str_eq(out->refusal->reason, "refused: version 2 here");
    cr_assert_eq(out->refusal->my_version, 2);
    qn_wire_free(out);
    cr_expect_neq(err[0], '\0',
                  "err left unset for a refusal of another version");
}

Test(wire, refusal_reason_names_both_versions)
{
    Quern__Envelope env;
    Quern__Refusal r;
    qn_wire_refusal(&env, &r, 7);
    cr_assert_eq(env.body_case, QUERN__ENVELOPE__BODY_REFUSAL);
    cr_assert_eq(env.refusal, &r);
    cr_assert_eq(r.my_version, QN_PROTOCOL_VERSION);
    cr_assert_eq(r.your_version, 7);
    cr_assert(strstr(r.reason, "7"), "%s", r.reason);
    char mine[32];
    snprintf(mine, sizeof mine, "version %u", QN_PROTOCOL_VERSION);
    cr_assert(strstr(r.reason, mine), "%s", r.reason);
    cr_assert(strstr(r.reason, "version 7"), "%s", r.reason);

    /* It travels like any message. */
    Quern__Envelope *out = s_round_trip(&env);
    cr_assert_str_eq(qn_wire_name(out), "refusal");
    cr_assert_eq(out->refusal->your_version, 7);
    cr_assert_str_eq(out->refusal->reason, r.reason);
    qn_wire_free(out);

    /* A large version. */
    qn_wire_refusal(&env, &r, 4000000000u);
    cr_assert(strstr(r.reason, "4000000000"), "%s", r.reason);
    cr_assert(strstr(r.reason, mine), "%s", r.reason);
}

/* ---- hostile bytes ------------------------------------------------------- */

Test(wire, garbage_is_corrupt)
{
    static const struct {
        const char *bytes;
        size_t len;
    } junk[] = {
        {"hello world", 11},
        {"\0\0\0\0", 4},
        {"\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff", 11},
        {"\x08", 1},                     /* a key without its value */
        {"\x08\x01", 2},                 /* version 1 but no message */
        {"\x08\x01\x62\x7f\x0a", 5},     /* length past the end */
        {"\x08\x01\x62\x02\x0a\x05", 6}, /* nested length past the end */
        {"\x08\x01\x60\x01", 4},         /* heartbeat as a varint: wrong type */
        {"\x08\x01\xa8\x06\x01", 5},     /* only an unknown field */
        {"GET / HTTP/1.1\r\n\r\n", 18},
    };
    for (size_t i = 0; i < QN_ARRAY_LEN(junk); i++) {
        char what[32];
        snprintf(what, sizeof what, "junk %zu", i);
        s_expect_corrupt(junk[i].bytes, junk[i].len, what);
    }
}

/* Random bytes never crash the decoder, and never pass as a message. */
Test(wire, random_bytes_are_rejected)
{
    uint64_t st = 0x2545F4914F6CDD1DULL;
    unsigned char buf[300];
    for (int round = 0; round < 3000; round++) {
        size_t n = 1 + (size_t)(st % sizeof buf);
        for (size_t i = 0; i < n; i++) {
            st ^= st << 13;
            st ^= st >> 7;
            st ^= st << 17;
            buf[i] = (unsigned char)st;
        }
        if (round % 2)
            buf[0] = 0x08, buf[1] = 0x01; /* a good version, then junk */
        Quern__Envelope *out = NULL;
        char err[256] = "";
        int rc = qn_wire_decode(buf, n, &out, NULL, err, sizeof err);
        cr_assert_lt(rc, 0, "round %d: %zu random bytes decoded as %s", round,
                     n, out ? qn_wire_name(out) : "?");
        qn_wire_free(out);
    }
}

Test(wire, truncated_envelope_is_corrupt)
{
    Quern__AttemptRef a = QUERN__ATTEMPT_REF__INIT;
    a.job_id = (char *)"job-1";
    Quern__AttemptRef *running[] = {&a};
    Quern__Envelope env;
    Quern__Heartbeat hb;
    s_heartbeat(&env, &hb, "worker-1");
    hb.n_running = 1;
    hb.running = running;
    hb.rss_peak = 99999;
    qn_buf b = {0};
    cr_assert_eq(qn_wire_pack(&env, &b), 0);
    for (size_t cut = 1; cut < b.len; cut++) {
        /* A copy of exactly cut bytes, so ASan sees any overrun. */
        unsigned char *part = malloc(cut);
        memcpy(part, b.data, cut);
        char what[64];
        snprintf(what, sizeof what, "%zu of %zu bytes", cut, b.len);
        s_expect_corrupt(part, cut, what);
        free(part);
    }
    qn_buf_release(&b);
}

/*
 * Version 0 is what an envelope without field 1 decodes to: an empty
 * frame, or a protobuf message that is not a Quern envelope. No Quern
 * peer ever sends it (the version is set when packing), so it is corrupt
 * input, not a peer of another version to send a Refusal to.
 */
Test(wire, envelope_without_a_version_is_corrupt)
{
    s_expect_corrupt("", 0, "empty frame");
    s_expect_corrupt("\xa8\x06\x01", 3, "unknown field only");
    Quern__Envelope env;
    Quern__Heartbeat hb;
    s_heartbeat(&env, &hb, "w1");
    env.version = 0;
    unsigned char buf[64];
    size_t n = s_pack_raw(&env, buf, sizeof buf);
    s_expect_corrupt(buf, n, "heartbeat without a version");
}

Test(wire, oversized_message_is_corrupt)
{
    size_t n = QN_MSG_MAX + 1;
    char *big = calloc(1, n);
    s_expect_corrupt(big, n, "16 MiB + 1");
    free(big);
}

Test(wire, string_that_is_not_utf8_is_refused)
{
    static const char *const bad[] = {
        "\xff",                 /* never valid */
        "abc\x80",              /* a lone continuation byte */
        "\xc3",                 /* a sequence cut short */
        "\xe2\x82",             /* a sequence cut short */
        "\xc0\xaf",             /* overlong '/' */
        "\xe0\x80\xaf",         /* overlong '/' */
        "\xed\xa0\x80",         /* a UTF-16 surrogate */
        "\xf4\x90\x80\x80",     /* above U+10FFFF */
        "\xf8\x88\x80\x80\x80", /* 5-byte form */
    };
    for (size_t i = 0; i < QN_ARRAY_LEN(bad); i++) {
        /* At the top level of the message... */
        Quern__Envelope env = QUERN__ENVELOPE__INIT;
        Quern__WorkerHello wh = QUERN__WORKER_HELLO__INIT;
        wh.worker_id = (char *)"w1";
        wh.slots = 1;
        wh.host = (char *)bad[i];
        env.body_case = QUERN__ENVELOPE__BODY_WORKER_HELLO;
        env.worker_hello = &wh;
        s_expect_refused(&env, "UTF-8");

        /* ...and nested in a repeated message. */
        Quern__AttemptRef a = QUERN__ATTEMPT_REF__INIT;
        Quern__Counter c = QUERN__COUNTER__INIT;
        c.name = (char *)bad[i];
        Quern__Counter *counters[] = {&c};
        Quern__TaskUpdate u = QUERN__TASK_UPDATE__INIT;
        u.attempt = &a;
        u.n_counters = 1;
        u.counters = counters;
        env.body_case = QUERN__ENVELOPE__BODY_TASK_UPDATE;
        env.task_update = &u;
        s_expect_refused(&env, "UTF-8");
    }
}

/* A field numbered 0 spelled in two bytes (80 00): protobuf-c kept it as
 * an unknown field and wrote it back in a form it then refused, so a
 * forwarded message broke at the next hop. Found by make fuzz. */
Test(wire, a_field_numbered_0_is_refused)
{
    static const unsigned char msg[] = {
        0x08, 0x01, 0xf2, 0x01, 0x18, 0x0a, 0x0a, '1',  '5',  '0',
        '.',  '2',  '.',  '0',  '0',  '0',  '1',  0x10, 0x02, 0x18,
        0x01, 0xa0, 0x01, 0x30, 0x80, 0x00, 0x1d, 0x38, 0x4d};
    Quern__Envelope *out = NULL;
    char err[256] = "";
    cr_assert_eq(qn_wire_decode(msg, sizeof msg, &out, NULL, err, sizeof err),
                 -QN_ECORRUPT);
    cr_assert_null(out);
    cr_assert(strstr(err, "a field numbered 0"), "%s", err);
}

Test(wire, utf8_strings_are_accepted)
{
    static const char *const good[] = {
        "",
        "plain ascii",
        "caf\xc3\xa9",      /* é */
        "\xe2\x9c\x93",     /* ✓ */
        "\xf0\x9d\x84\x9e", /* U+1D11E */
        "\xf4\x8f\xbf\xbf", /* U+10FFFF */
        "\xef\xbf\xbd",     /* U+FFFD */
        "\xed\x9f\xbf",     /* U+D7FF, just below the surrogates */
    };
    for (size_t i = 0; i < QN_ARRAY_LEN(good); i++) {
        Quern__Envelope env = QUERN__ENVELOPE__INIT;
        Quern__SubmitReply r = QUERN__SUBMIT_REPLY__INIT;
        r.error = (char *)good[i];
        env.body_case = QUERN__ENVELOPE__BODY_SUBMIT_REPLY;
        env.submit_reply = &r;
        Quern__Envelope *out = s_round_trip(&env);
        cr_assert_str_eq(out->submit_reply->error, good[i]);
        qn_wire_free(out);
    }
}

/* ---- required parts ------------------------------------------------------ */

Test(wire, worker_hello_needs_a_good_worker_id_and_slots)
{
    static const char *const bad_ids[] = {"", ".hidden", "a/b", "../etc",
                                          "white space"};
    Quern__Envelope env = QUERN__ENVELOPE__INIT;
    Quern__WorkerHello wh = QUERN__WORKER_HELLO__INIT;
    env.body_case = QUERN__ENVELOPE__BODY_WORKER_HELLO;
    env.worker_hello = &wh;
    wh.slots = 4;
    for (size_t i = 0; i < QN_ARRAY_LEN(bad_ids); i++) {
        wh.worker_id = (char *)bad_ids[i];
        s_expect_refused(&env, "worker_id");
    }
    wh.worker_id = (char *)"good-id";
    wh.slots = 0;
    s_expect_refused(&env, "slots");
    wh.slots = 1025;
    s_expect_refused(&env, "slots");
    wh.slots = 1024;
    Quern__Envelope *out = s_round_trip(&env);
    cr_assert_eq(out->worker_hello->slots, 1024);
    qn_wire_free(out);
}

/* Shard places and heartbeats are bounded: a peer cannot make the master
 * grow a dataset's table to 4 billion shards, or answer a heartbeat with
 * millions of cancels. */
Test(wire, shard_indexes_counts_and_heartbeat_lists_are_bounded)
{
    Quern__Envelope env = QUERN__ENVELOPE__INIT;
    Quern__DataReport dr = QUERN__DATA_REPORT__INIT;
    Quern__ShardInfo si = QUERN__SHARD_INFO__INIT;
    Quern__ShardInfo *sip = &si;
    env.body_case = QUERN__ENVELOPE__BODY_DATA_REPORT;
    env.data_report = &dr;
    dr.worker_id = (char *)"w1";
    dr.added = &sip;
    dr.n_added = 1;
    si.dataset = (char *)"logs";
    si.index = QN_SHARDS_MAX;
    s_expect_refused(&env, "data_report: bad shard");
    si.index = 0xffffffffu;
    s_expect_refused(&env, "data_report: bad shard");
    si.index = 3;
    si.sealed = 1;
    si.nshards = 3; /* sealed with fewer shards than its own index */
    s_expect_refused(&env, "data_report: bad shard");
    si.nshards = QN_SHARDS_MAX + 1;
    s_expect_refused(&env, "data_report: bad shard");
    si.nshards = 0;
    s_expect_refused(&env, "data_report: bad shard");
    si.nshards = 4;
    Quern__Envelope *out = s_round_trip(&env);
    cr_assert_eq(out->data_report->added[0]->nshards, 4);
    qn_wire_free(out);
    si.index = QN_SHARDS_MAX - 1;
    si.sealed = 0;
    out = s_round_trip(&env);
    cr_assert_eq(out->data_report->added[0]->index, QN_SHARDS_MAX - 1);
    qn_wire_free(out);

    /* The same checks in a hello. */
    Quern__WorkerHello wh = QUERN__WORKER_HELLO__INIT;
    quern__envelope__init(&env);
    env.body_case = QUERN__ENVELOPE__BODY_WORKER_HELLO;
    env.worker_hello = &wh;
    wh.worker_id = (char *)"w1";
    wh.slots = 2;
    wh.shards = &sip;
    wh.n_shards = 1;
    si.index = 0xfffffffeu;
    s_expect_refused(&env, "worker_hello: bad shard");

    /* A shard upload to an index past the limit. */
    Quern__ShardWrite sw = QUERN__SHARD_WRITE__INIT;
    quern__envelope__init(&env);
    env.body_case = QUERN__ENVELOPE__BODY_SHARD_WRITE;
    env.shard_write = &sw;
    sw.dataset = (char *)"logs";
    sw.token = (char *)"t1";
    sw.index = 0xffffffffu;
    s_expect_refused(&env, "shard_write: shard index out of range");

    /* A heartbeat listing more attempts than a worker can run. */
    Quern__Heartbeat hb;
    s_heartbeat(&env, &hb, "w1");
    size_t n = QN_HEARTBEAT_ATTEMPTS_MAX + 1;
    Quern__AttemptRef a = QUERN__ATTEMPT_REF__INIT;
    a.job_id = (char *)"job-1";
    Quern__AttemptRef **refs = qn_calloc(n, sizeof *refs);
    for (size_t i = 0; i < n; i++)
        refs[i] = &a;
    hb.running = refs;
    hb.n_running = n;
    s_expect_refused(&env, "heartbeat: more attempts");
    hb.n_running = n - 1;
    out = s_round_trip(&env);
    cr_assert_eq(out->heartbeat->n_running, n - 1);
    qn_wire_free(out);
    free(refs);
}

Test(wire, messages_missing_required_parts_are_refused)
{
    Quern__Envelope env = QUERN__ENVELOPE__INIT;
    s_expect_refused(&env, "no message");

    Quern__Heartbeat hb;
    s_heartbeat(&env, &hb, "bad/id");
    s_expect_refused(&env, "worker_id");

    quern__envelope__init(&env);
    Quern__AssignTask at = QUERN__ASSIGN_TASK__INIT;
    env.body_case = QUERN__ENVELOPE__BODY_ASSIGN_TASK;
    env.assign_task = &at;
    s_expect_refused(&env, "no spec");
    Quern__TaskSpec spec = QUERN__TASK_SPEC__INIT;
    spec.job_id = (char *)"../../x";
    at.spec = &spec;
    s_expect_refused(&env, "job_id");

    quern__envelope__init(&env);
    env.body_case = QUERN__ENVELOPE__BODY_TASK_SPEC;
    env.task_spec = &spec;
    s_expect_refused(&env, "job_id");
    spec.job_id = (char *)"job1";
    spec.nreduce = 0;
    s_expect_refused(&env, "reducers");

    quern__envelope__init(&env);
    Quern__CancelTask ct = QUERN__CANCEL_TASK__INIT;
    env.body_case = QUERN__ENVELOPE__BODY_CANCEL_TASK;
    env.cancel_task = &ct;
    s_expect_refused(&env, "no attempt");

    quern__envelope__init(&env);
    Quern__TaskUpdate tu = QUERN__TASK_UPDATE__INIT;
    env.body_case = QUERN__ENVELOPE__BODY_TASK_UPDATE;
    env.task_update = &tu;
    s_expect_refused(&env, "no attempt");

    quern__envelope__init(&env);
    Quern__SubmitJob sj = QUERN__SUBMIT_JOB__INIT;
    env.body_case = QUERN__ENVELOPE__BODY_SUBMIT_JOB;
    env.submit_job = &sj;
    s_expect_refused(&env, "no spec");

    quern__envelope__init(&env);
    Quern__FetchRequest fr = QUERN__FETCH_REQUEST__INIT;
    env.body_case = QUERN__ENVELOPE__BODY_FETCH_REQUEST;
    env.fetch_request = &fr;
    fr.job_id = (char *)"";
    s_expect_refused(&env, "job_id");
}

/* ---- stream descriptors -------------------------------------------------- */

static void s_socketpair(int sv[2])
{
    cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    int fl = fcntl(sv[1], F_GETFL);
    cr_assert_eq(fcntl(sv[1], F_SETFL, fl | O_NONBLOCK), 0);
}

/* Read what is there and decode the next frame (1, 0 or <0). */
static int s_next(qn_stream *st, Quern__Envelope **out)
{
    char err[256] = "";
    cr_assert_geq(qn_stream_read(st), 0);
    int rc = qn_stream_next(st, out, err, sizeof err);
    cr_assert_geq(rc, 0, "stream: %s", err);
    return rc;
}

Test(wire, stream_carries_envelopes_over_a_socketpair)
{
    int sv[2];
    s_socketpair(sv);
    Quern__Envelope env;
    Quern__Heartbeat hb;
    char id[16];
    for (int i = 0; i < 5; i++) {
        snprintf(id, sizeof id, "w%d", i);
        s_heartbeat(&env, &hb, id);
        hb.rss_peak = (uint64_t)i;
        cr_assert_eq(qn_wire_write_fd(sv[0], &env), 0);
    }
    qn_stream st = {.fd = sv[1]};
    Quern__Envelope *out = NULL;
    char err[256] = "";
    cr_assert_gt(qn_stream_read(&st), 0, "the bytes written are read");
    for (int i = 0; i < 5; i++) {
        cr_assert_eq(qn_stream_next(&st, &out, err, sizeof err), 1, "%s", err);
        snprintf(id, sizeof id, "w%d", i);
        cr_assert_str_eq(out->heartbeat->worker_id, id);
        cr_assert_eq(out->heartbeat->rss_peak, (uint64_t)i);
        qn_wire_free(out);
    }
    cr_assert_eq(qn_stream_next(&st, &out, err, sizeof err), 0);
    /* Nothing to read is not an error on a non-blocking descriptor. */
    cr_assert_eq(qn_stream_read(&st), 0);
    cr_assert_eq(st.eof, 0);
    cr_assert_eq(qn_stream_next(&st, &out, err, sizeof err), 0);
    close(sv[0]);
    cr_assert_eq(qn_stream_read(&st), 0);
    cr_assert_eq(st.eof, 1);
    qn_buf_release(&st.in);
    close(sv[1]);
}

Test(wire, stream_reassembles_a_frame_split_across_reads)
{
    int sv[2];
    s_socketpair(sv);
    /* Two frames, as bytes. */
    Quern__Envelope env;
    Quern__Heartbeat hb;
    int pp[2];
    cr_assert_eq(pipe(pp), 0);
    s_heartbeat(&env, &hb, "first");
    cr_assert_eq(qn_wire_write_fd(pp[1], &env), 0);
    s_heartbeat(&env, &hb, "second-with-a-longer-id");
    cr_assert_eq(qn_wire_write_fd(pp[1], &env), 0);
    close(pp[1]);
    unsigned char bytes[256];
    ssize_t n = read(pp[0], bytes, sizeof bytes);
    close(pp[0]);
    cr_assert_gt(n, 8);
    uint32_t len1 = (uint32_t)bytes[0] | (uint32_t)bytes[1] << 8 |
                    (uint32_t)bytes[2] << 16 | (uint32_t)bytes[3] << 24;
    size_t first = 4 + len1;
    cr_assert_lt(first, (size_t)n);

    qn_stream st = {.fd = sv[1]};
    Quern__Envelope *out = NULL;
    /* Byte by byte: nothing until the first frame is whole. */
    for (size_t i = 0; i < first - 1; i++) {
        cr_assert_eq(write(sv[0], bytes + i, 1), 1);
        cr_assert_eq(s_next(&st, &out), 0, "a frame after %zu bytes", i + 1);
    }
    /* Its last byte together with half of the second frame's length. */
    cr_assert_eq(write(sv[0], bytes + first - 1, 3), 3);
    cr_assert_eq(s_next(&st, &out), 1);
    cr_assert_str_eq(out->heartbeat->worker_id, "first");
    qn_wire_free(out);
    char err[256];
    cr_assert_eq(qn_stream_next(&st, &out, err, sizeof err), 0);
    /* The rest but one byte, then the last byte. */
    size_t at = first + 2;
    cr_assert_eq(write(sv[0], bytes + at, (size_t)n - at - 1),
                 (ssize_t)((size_t)n - at - 1));
    cr_assert_eq(s_next(&st, &out), 0);
    cr_assert_eq(write(sv[0], bytes + n - 1, 1), 1);
    cr_assert_eq(s_next(&st, &out), 1);
    cr_assert_str_eq(out->heartbeat->worker_id, "second-with-a-longer-id");
    qn_wire_free(out);
    cr_assert_eq(qn_stream_next(&st, &out, err, sizeof err), 0);
    qn_buf_release(&st.in);
    close(sv[0]);
    close(sv[1]);
}

Test(wire, stream_rejects_bad_frames)
{
    int sv[2];
    s_socketpair(sv);
    qn_stream st = {.fd = sv[1]};
    Quern__Envelope *out = NULL;
    char err[256] = "";

    /* A frame of garbage is an error; the next good frame still reads. */
    static const unsigned char junk[] = {5, 0, 0, 0, 'h', 'e', 'l', 'l', 'o'};
    cr_assert_eq(qn_write_all(sv[0], junk, sizeof junk), 0);
    Quern__Envelope env;
    Quern__Heartbeat hb;
    s_heartbeat(&env, &hb, "after");
    cr_assert_eq(qn_wire_write_fd(sv[0], &env), 0);
    cr_assert_gt(qn_stream_read(&st), 0);
    cr_assert_eq(qn_stream_next(&st, &out, err, sizeof err), -QN_ECORRUPT);
    cr_assert_null(out);
    cr_assert_neq(err[0], '\0');
    cr_assert_eq(qn_stream_next(&st, &out, err, sizeof err), 1, "%s", err);
    cr_assert_str_eq(out->heartbeat->worker_id, "after");
    qn_wire_free(out);

    /* A length over the limit is refused before waiting for its bytes. */
    static const unsigned char huge[] = {0xff, 0xff, 0xff, 0x7f, 1, 2, 3};
    cr_assert_eq(qn_write_all(sv[0], huge, sizeof huge), 0);
    cr_assert_gt(qn_stream_read(&st), 0);
    err[0] = '\0';
    cr_assert_eq(qn_stream_next(&st, &out, err, sizeof err), -QN_ECORRUPT);
    cr_assert(strstr(err, "limit"), "%s", err);
    qn_buf_release(&st.in);
    close(sv[0]);
    close(sv[1]);
}

/* A frame holding a Refusal of another version: an error like any other,
 * with a message, and nothing for the caller to free. */
Test(wire, stream_refusal_of_other_version_is_an_error_without_envelope)
{
    int sv[2];
    s_socketpair(sv);
    Quern__Envelope env;
    Quern__Refusal r;
    qn_wire_refusal(&env, &r, 1);
    env.version = 2;
    unsigned char buf[512];
    size_t n = s_pack_raw(&env, buf + 4, sizeof buf - 4);
    for (int i = 0; i < 4; i++)
        buf[i] = (unsigned char)(n >> (8 * i));
    cr_assert_eq(qn_write_all(sv[0], buf, n + 4), 0);
    qn_stream st = {.fd = sv[1]};
    cr_assert_gt(qn_stream_read(&st), 0);
    Quern__Envelope *out = NULL;
    char err[256];
    memset(err, 0, sizeof err);
    int rc = qn_stream_next(&st, &out, err, sizeof err);
    cr_expect_lt(rc, 0);
    cr_expect_null(out, "envelope returned with an error: the caller leaks "
                        "it");
    cr_expect_neq(err[0], '\0', "no message for the error");
    if (rc < 0 && out)
        qn_wire_free(out);
    qn_buf_release(&st.in);
    close(sv[0]);
    close(sv[1]);
}

/* ---- ZeroMQ -------------------------------------------------------------- */

typedef struct {
    char *tmp;
    char endpoint[4200];
    void *ctx, *router, *dealer;
} s_zmq;

static void s_zmq_open(s_zmq *z)
{
    z->tmp = qn_test_tmpdir();
    snprintf(z->endpoint, sizeof z->endpoint, "ipc://%s/master.sock", z->tmp);
    z->ctx = zmq_ctx_new();
    cr_assert_not_null(z->ctx);
    z->router = zmq_socket(z->ctx, ZMQ_ROUTER);
    z->dealer = zmq_socket(z->ctx, ZMQ_DEALER);
    int zero = 0;
    zmq_setsockopt(z->router, ZMQ_LINGER, &zero, sizeof zero);
    zmq_setsockopt(z->dealer, ZMQ_LINGER, &zero, sizeof zero);
    cr_assert_eq(zmq_setsockopt(z->dealer, ZMQ_ROUTING_ID, "worker-1", 8), 0);
    cr_assert_eq(zmq_bind(z->router, z->endpoint), 0, "bind %s: %s",
                 z->endpoint, zmq_strerror(errno));
    cr_assert_eq(zmq_connect(z->dealer, z->endpoint), 0);
}

static void s_zmq_close(s_zmq *z)
{
    zmq_close(z->router);
    zmq_close(z->dealer);
    zmq_ctx_term(z->ctx);
    cr_assert_eq(qn_rmtree(z->tmp), 0);
    free(z->tmp);
}

/*
 * Wait for a message on sock. Messages between sockets of one process
 * arrive in microseconds; the long limit only turns a hang into a failure.
 */
static void s_wait(void *sock)
{
    zmq_pollitem_t it = {.socket = sock, .events = ZMQ_POLLIN};
    cr_assert_eq(zmq_poll(&it, 1, 60000), 1, "no message arrived");
}

Test(wire, zeromq_router_and_dealer_exchange_envelopes_and_data)
{
    s_zmq z;
    s_zmq_open(&z);
    qn_frames f = {0};
    /* Nothing waiting yet. */
    cr_assert_eq(qn_wire_recv(z.router, 1, &f), 0);

    /* Dealer -> router: the router sees the dealer's routing id. */
    Quern__Envelope env;
    Quern__Heartbeat hb;
    s_heartbeat(&env, &hb, "worker-1");
    cr_assert_eq(qn_wire_send(z.dealer, NULL, 0, &env, NULL, 0), 0);
    s_wait(z.router);
    cr_assert_eq(qn_wire_recv(z.router, 1, &f), 1);
    cr_assert_eq(f.idlen, 8);
    cr_assert_arr_eq(f.id, "worker-1", 8);
    cr_assert_eq(f.has_data, 0);
    Quern__Envelope *out = NULL;
    char err[256] = "";
    cr_assert_eq(
        qn_wire_decode(f.env.data, f.env.len, &out, NULL, err, sizeof err), 0,
        "%s", err);
    cr_assert_str_eq(out->heartbeat->worker_id, "worker-1");
    qn_wire_free(out);

    /* Router -> dealer, addressed by id, with a data frame. */
    char id[256];
    size_t idlen = f.idlen;
    memcpy(id, f.id, idlen);
    Quern__FetchReply rep = QUERN__FETCH_REPLY__INIT;
    rep.request_id = 42;
    rep.total = 70000;
    quern__envelope__init(&env);
    env.body_case = QUERN__ENVELOPE__BODY_FETCH_REPLY;
    env.fetch_reply = &rep;
    size_t dlen = 70000;
    unsigned char *data = malloc(dlen);
    for (size_t i = 0; i < dlen; i++)
        data[i] = (unsigned char)(i * 7);
    cr_assert_eq(qn_wire_send(z.router, id, idlen, &env, data, dlen), 0);
    s_wait(z.dealer);
    cr_assert_eq(qn_wire_recv(z.dealer, 0, &f), 1);
    cr_assert_eq(f.idlen, 0);
    cr_assert_eq(f.has_data, 1);
    cr_assert_eq(f.data.len, dlen);
    cr_assert_arr_eq(f.data.data, data, dlen);
    cr_assert_eq(
        qn_wire_decode(f.env.data, f.env.len, &out, NULL, err, sizeof err), 0,
        "%s", err);
    cr_assert_eq(out->fetch_reply->request_id, 42);
    qn_wire_free(out);

    /* An empty data frame is still a data frame. */
    cr_assert_eq(qn_wire_send(z.router, id, idlen, &env, "", 0), 0);
    s_wait(z.dealer);
    cr_assert_eq(qn_wire_recv(z.dealer, 0, &f), 1);
    cr_assert_eq(f.has_data, 1);
    cr_assert_eq(f.data.len, 0);

    /* Only one message was sent each time. */
    cr_assert_eq(qn_wire_recv(z.dealer, 0, &f), 0);
    cr_assert_eq(qn_wire_recv(z.router, 1, &f), 0);
    free(data);
    qn_frames_release(&f);
    s_zmq_close(&z);
}

/* Over TCP a router learns who sent a message: the address drops are
 * logged under. */
Test(wire, zeromq_recv_names_the_senders_address)
{
    void *ctx = zmq_ctx_new();
    void *router = qn_wire_socket(ctx, ZMQ_ROUTER);
    void *dealer = qn_wire_socket(ctx, ZMQ_DEALER);
    cr_assert_eq(zmq_bind(router, "tcp://127.0.0.1:*"), 0);
    char ep[256];
    size_t eplen = sizeof ep;
    cr_assert_eq(zmq_getsockopt(router, ZMQ_LAST_ENDPOINT, ep, &eplen), 0);
    cr_assert_eq(zmq_connect(dealer, ep), 0);
    Quern__Envelope env;
    Quern__Heartbeat hb;
    s_heartbeat(&env, &hb, "w1");
    cr_assert_eq(qn_wire_send(dealer, NULL, 0, &env, NULL, 0), 0);
    s_wait(router);
    qn_frames f = {0};
    cr_assert_eq(qn_wire_recv(router, 1, &f), 1);
    cr_assert_str_eq(f.peer, "127.0.0.1");
    qn_frames_release(&f);
    zmq_close(dealer);
    zmq_close(router);
    zmq_ctx_term(ctx);
}

Test(wire, zeromq_recv_drops_malformed_multipart_messages)
{
    s_zmq z;
    s_zmq_open(&z);
    qn_frames f = {0};
    /* Three frames: envelope, data, and one too many. */
    cr_assert_eq(zmq_send(z.dealer, "a", 1, ZMQ_SNDMORE), 1);
    cr_assert_eq(zmq_send(z.dealer, "b", 1, ZMQ_SNDMORE), 1);
    cr_assert_eq(zmq_send(z.dealer, "c", 1, 0), 1);
    /* Then a good one, which must still arrive whole. */
    Quern__Envelope env;
    Quern__Heartbeat hb;
    s_heartbeat(&env, &hb, "worker-1");
    cr_assert_eq(qn_wire_send(z.dealer, NULL, 0, &env, NULL, 0), 0);
    s_wait(z.router);
    cr_assert_eq(qn_wire_recv(z.router, 1, &f), -1);
    s_wait(z.router);
    cr_assert_eq(qn_wire_recv(z.router, 1, &f), 1);
    cr_assert_eq(f.has_data, 0);
    Quern__Envelope *out = NULL;
    char err[256] = "";
    cr_assert_eq(
        qn_wire_decode(f.env.data, f.env.len, &out, NULL, err, sizeof err), 0,
        "%s", err);
    qn_wire_free(out);
    qn_frames_release(&f);
    s_zmq_close(&z);
}
