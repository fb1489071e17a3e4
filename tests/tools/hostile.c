/*
 * hostile.c -- a peer that sends a Quern daemon everything but what it
 * should, for the hostile-peer test.
 *
 *   hostile --endpoint tcp://HOST:PORT --seconds N [--seed N]
 *           [--worker ID --job JOB]
 *   hostile --endpoint tcp://HOST:PORT --flood N
 *   hostile submit EP PLUGIN INPUT OUTPUT [codec99|notelf|relative]
 *
 * For N seconds it sends, in a random mix: random bytes; valid envelopes
 * cut short; well-formed envelopes with absurd fields (unknown jobs and
 * workers, indexes and offsets near 2^32 or 2^64, messages the receiver
 * never takes); envelopes of other protocol versions; multipart messages
 * with extra frames; and now and then a frame over the size limit (the
 * receiver drops the connection; ZeroMQ makes a new one). With --worker
 * and --job it also speaks for a live worker without its session: hellos
 * that would take its connection, heartbeats that list none of its
 * attempts, task updates that fail them, reports that drop its shards
 * and ask for plugins. With --flood it sends N valid status requests as
 * fast as the socket takes them, then counts the answers until they stop
 * for two seconds, and prints both. Replies are
 * read and thrown away. At the end it prints how many of each it sent.
 * Exits 0, or 2 on bad arguments.
 */
#include "util.h"
#include "wire.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

enum { RANDOM, TRUNCATED, ABSURD, VERSION, MULTIPART, SPOOF, OVERSIZED, KINDS };
static const char *const NAMES[KINDS] = {"random",        "truncated", "absurd",
                                         "other-version", "multipart", "spoof",
                                         "oversized"};

static uint64_t s_state;

static uint64_t s_rand(void)
{
    return qn_splitmix64(&s_state);
}

/* A number a careless receiver would trip on. */
static uint64_t s_absurd(void)
{
    static const uint64_t v[] = {0,          1,          0x7fffffff,
                                 0x80000000, 0xffffffff, 0x100000000ULL,
                                 INT64_MAX,  UINT64_MAX};
    return v[s_rand() % QN_ARRAY_LEN(v)];
}

static void s_fill(char *b, size_t n)
{
    for (size_t i = 0; i < n; i++)
        b[i] = (char)s_rand();
}

/* One well-formed envelope with absurd fields, packed into out. */
static void s_absurd_envelope(qn_buf *out, uint32_t version)
{
    Quern__Envelope env = QUERN__ENVELOPE__INIT;
    Quern__AttemptRef ref = QUERN__ATTEMPT_REF__INIT;
    Quern__AttemptRef *refs[1] = {&ref};
    Quern__TaskUpdate tu = QUERN__TASK_UPDATE__INIT;
    Quern__Heartbeat hb = QUERN__HEARTBEAT__INIT;
    Quern__FetchRequest fr = QUERN__FETCH_REQUEST__INIT;
    Quern__ShardRead sr = QUERN__SHARD_READ__INIT;
    Quern__CancelTask ct = QUERN__CANCEL_TASK__INIT;
    Quern__StatusRequest st = QUERN__STATUS_REQUEST__INIT;
    Quern__FetchReply rep = QUERN__FETCH_REPLY__INIT;
    Quern__FetchFailure ff = QUERN__FETCH_FAILURE__INIT;
    Quern__FetchFailure *ffs[1] = {&ff};
    ref.job_id = (char *)(s_rand() % 2 ? "job-nope-1" : "job-zzzz-9");
    ref.kind = (Quern__TaskKind)(s_absurd() % 7);
    ref.task = (uint32_t)s_absurd();
    ref.attempt = (uint32_t)s_absurd();
    switch (s_rand() % 8) {
    case 0:
        tu.worker_id = (char *)"hostile-worker";
        tu.attempt = &ref;
        tu.state = (Quern__TaskState)(s_rand() % 9);
        tu.progress = (double)s_absurd();
        tu.fetch_failures = ffs;
        tu.n_fetch_failures = 1;
        ff.map = (uint32_t)s_absurd();
        ff.attempt = (uint32_t)s_absurd();
        ff.reason = (char *)"hostile";
        env.body_case = QUERN__ENVELOPE__BODY_TASK_UPDATE;
        env.task_update = &tu;
        break;
    case 1:
        hb.worker_id = (char *)"hostile-worker";
        hb.running = refs;
        hb.n_running = 1;
        hb.seq = s_absurd();
        hb.rss_peak = s_absurd();
        env.body_case = QUERN__ENVELOPE__BODY_HEARTBEAT;
        env.heartbeat = &hb;
        break;
    case 2:
        fr.job_id = ref.job_id;
        fr.map = (uint32_t)s_absurd();
        fr.attempt = (uint32_t)s_absurd();
        fr.partition = (uint32_t)s_absurd();
        fr.offset = s_absurd();
        fr.max_bytes = (uint32_t)s_absurd();
        fr.request_id = s_absurd();
        env.body_case = QUERN__ENVELOPE__BODY_FETCH_REQUEST;
        env.fetch_request = &fr;
        break;
    case 3:
        sr.dataset = (char *)"no-such-dataset";
        sr.index = (uint32_t)s_absurd();
        sr.offset = s_absurd();
        sr.max_bytes = (uint32_t)s_absurd();
        env.body_case = QUERN__ENVELOPE__BODY_SHARD_READ;
        env.shard_read = &sr;
        break;
    case 4:
        ct.attempt = &ref;
        env.body_case = QUERN__ENVELOPE__BODY_CANCEL_TASK;
        env.cancel_task = &ct; /* the master never takes one */
        break;
    case 5:
        st.job_id = ref.job_id;
        env.body_case = QUERN__ENVELOPE__BODY_STATUS_REQUEST;
        env.status_request = &st;
        break;
    case 6:
        rep.request_id = s_absurd();
        rep.offset = s_absurd();
        rep.total = s_absurd();
        env.body_case = QUERN__ENVELOPE__BODY_FETCH_REPLY;
        env.fetch_reply = &rep; /* nobody asked */
        break;
    default:
        env.body_case = QUERN__ENVELOPE__BODY__NOT_SET; /* no message */
        break;
    }
    env.version = version;
    size_t n = quern__envelope__get_packed_size(&env);
    out->len = 0;
    if (qn_buf_reserve(out, n + 1) == 0)
        out->len = quern__envelope__pack(&env, (uint8_t *)out->data);
}

/* One message that claims to come from worker `worker`, about job `job`,
 * with a session it guessed, packed into out. */
static void s_spoof_envelope(qn_buf *out, const char *worker, const char *job)
{
    Quern__Envelope env = QUERN__ENVELOPE__INIT;
    Quern__WorkerHello h = QUERN__WORKER_HELLO__INIT;
    Quern__Heartbeat hb = QUERN__HEARTBEAT__INIT;
    Quern__TaskUpdate tu = QUERN__TASK_UPDATE__INIT;
    Quern__AttemptRef ref = QUERN__ATTEMPT_REF__INIT;
    Quern__DataReport dr = QUERN__DATA_REPORT__INIT;
    Quern__ShardInfo si = QUERN__SHARD_INFO__INIT;
    Quern__ShardInfo *sip = &si;
    Quern__PluginRequest pr = QUERN__PLUGIN_REQUEST__INIT;
    uint64_t session = s_rand() % 2 ? 0 : s_rand();
    switch (s_rand() % 5) {
    case 0:
        h.worker_id = (char *)worker;
        h.slots = 1;
        h.shuffle_endpoint = (char *)"tcp://127.0.0.1:9";
        h.host = (char *)"hostile";
        h.session = session;
        env.body_case = QUERN__ENVELOPE__BODY_WORKER_HELLO;
        env.worker_hello = &h;
        break;
    case 1:
        hb.worker_id = (char *)worker;
        hb.session = session;
        hb.seq = UINT64_MAX / 2 + s_rand() % 1000;
        env.body_case = QUERN__ENVELOPE__BODY_HEARTBEAT;
        env.heartbeat = &hb;
        break;
    case 2:
        ref.job_id = (char *)job;
        ref.kind = (Quern__TaskKind)(s_rand() % 2);
        ref.task = (uint32_t)(s_rand() % 16);
        ref.attempt = (uint32_t)(s_rand() % 2);
        tu.worker_id = (char *)worker;
        tu.session = session;
        tu.attempt = &ref;
        tu.state = QUERN__TASK_STATE__FAILED;
        tu.reason = (char *)"hostile";
        env.body_case = QUERN__ENVELOPE__BODY_TASK_UPDATE;
        env.task_update = &tu;
        break;
    case 3:
        si.dataset = (char *)"hostile";
        dr.worker_id = (char *)worker;
        dr.session = session;
        dr.removed = &sip;
        dr.n_removed = 1;
        env.body_case = QUERN__ENVELOPE__BODY_DATA_REPORT;
        env.data_report = &dr;
        break;
    default:
        pr.worker_id = (char *)worker;
        pr.session = session;
        pr.hash = (char *)"0000";
        env.body_case = QUERN__ENVELOPE__BODY_PLUGIN_REQUEST;
        env.plugin_request = &pr;
        break;
    }
    env.version = QN_PROTOCOL_VERSION;
    size_t n = quern__envelope__get_packed_size(&env);
    out->len = 0;
    if (qn_buf_reserve(out, n + 1) == 0)
        out->len = quern__envelope__pack(&env, (uint8_t *)out->data);
}

/* ---- hostile submit: one crafted job ------------------------------------- */

/*
 * hostile submit EP PLUGIN INPUT OUTPUT [codec99|notelf|relative]: send
 * the master at EP one SubmitJob carrying PLUGIN's bytes, reading INPUT
 * and writing OUTPUT (absolute paths), made wrong as asked in a way the
 * quern command would refuse before sending, and print the master's
 * answer: "accepted JOB" (exit 0) or "refused: WHY" (exit 1). Exits 3
 * when no answer comes within 5 s, 2 on bad arguments.
 */
static int s_submit_main(int argc, char **argv)
{
    const char *what = argc == 6 ? argv[5] : "";
    if (argc < 5 || argc > 6 ||
        (what[0] && strcmp(what, "codec99") && strcmp(what, "notelf") &&
         strcmp(what, "relative"))) {
        fprintf(stderr, "usage: hostile submit EP PLUGIN INPUT OUTPUT "
                        "[codec99|notelf|relative]\n");
        return 2;
    }
    qn_buf so = {0}, b = {0};
    FILE *f = fopen(argv[2], "rb");
    if (!f) {
        fprintf(stderr, "hostile: %s: cannot open it\n", argv[2]);
        return 2;
    }
    char chunk[65536];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
        qn_buf_add(&so, chunk, n);
    fclose(f);
    if (strcmp(what, "notelf") == 0) {
        static const char text[] = "#!/bin/sh\necho not a plugin\n";
        so.len = 0;
        qn_buf_add(&so, text, sizeof text - 1);
    }
    Quern__JobSpec spec = QUERN__JOB_SPEC__INIT;
    Quern__InputPath in = QUERN__INPUT_PATH__INIT, *ins[1] = {&in};
    in.given = argv[3];
    in.path = strcmp(what, "relative") == 0 ? (char *)"relative/in" : argv[3];
    spec.name = (char *)"hostile";
    spec.plugin = argv[2];
    spec.inputs = ins;
    spec.n_inputs = 1;
    spec.output = argv[4];
    spec.nreduce = 1;
    spec.split_size = 64 << 20;
    spec.sort_mb = 16;
    spec.max_attempts = 1;
    spec.compress_level = 1;
    spec.codec = strcmp(what, "codec99") == 0 ? 99 : 1;
    Quern__SubmitJob sj = QUERN__SUBMIT_JOB__INIT;
    sj.spec = &spec;
    sj.plugin_data.data = (uint8_t *)so.data;
    sj.plugin_data.len = so.len;
    Quern__Envelope env = QUERN__ENVELOPE__INIT;
    env.body_case = QUERN__ENVELOPE__BODY_SUBMIT_JOB;
    env.submit_job = &sj;
    int rc = 3;
    void *ctx = zmq_ctx_new();
    void *sock = zmq_socket(ctx, ZMQ_DEALER);
    int zero = 0;
    zmq_setsockopt(sock, ZMQ_LINGER, &zero, sizeof zero);
    if (qn_wire_pack(&env, &b) != 0 || zmq_connect(sock, argv[1]) != 0 ||
        zmq_send(sock, b.data, b.len, 0) < 0) {
        fprintf(stderr, "hostile: cannot send to %s\n", argv[1]);
        rc = 2;
    } else {
        zmq_pollitem_t it = {.socket = sock, .events = ZMQ_POLLIN};
        qn_frames fr;
        memset(&fr, 0, sizeof fr);
        if (zmq_poll(&it, 1, 5000) > 0 && qn_wire_recv(sock, 0, &fr) == 1) {
            Quern__Envelope *r = NULL;
            char err[256];
            if (qn_wire_decode(fr.env.data, fr.env.len, &r, NULL, err,
                               sizeof err) == 0 &&
                r->body_case == QUERN__ENVELOPE__BODY_SUBMIT_REPLY) {
                rc = r->submit_reply->error[0] ? 1 : 0;
                if (rc)
                    printf("refused: %s\n", r->submit_reply->error);
                else
                    printf("accepted %s\n", r->submit_reply->job_id);
            }
            qn_wire_free(r);
        }
        qn_frames_release(&fr);
    }
    zmq_close(sock);
    zmq_ctx_term(ctx);
    qn_buf_release(&so);
    qn_buf_release(&b);
    return rc;
}

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "submit") == 0)
        return s_submit_main(argc - 1, argv + 1);
    const char *endpoint = NULL, *worker = NULL, *job = NULL;
    uint64_t seconds = 0, seed = 1, flood = 0;
    static const struct option opts[] = {
        {"endpoint", required_argument, NULL, 'e'},
        {"seconds", required_argument, NULL, 's'},
        {"seed", required_argument, NULL, 'r'},
        {"worker", required_argument, NULL, 'w'},
        {"job", required_argument, NULL, 'j'},
        {"flood", required_argument, NULL, 'f'},
        {NULL, 0, NULL, 0},
    };
    int c;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        int bad = 0;
        switch (c) {
        case 'e': endpoint = optarg; break;
        case 's': bad = qn_parse_uint(optarg, 1, 3600, &seconds); break;
        case 'r': bad = qn_parse_uint(optarg, 0, UINT64_MAX, &seed); break;
        case 'w': worker = optarg; break;
        case 'j': job = optarg; break;
        case 'f': bad = qn_parse_uint(optarg, 1, 10000000, &flood); break;
        default: bad = -1;
        }
        if (bad) {
            fprintf(stderr, "hostile: bad option\n");
            return 2;
        }
    }
    if (!endpoint || !seconds == !flood || !worker != !job) {
        fprintf(stderr, "usage: hostile --endpoint EP --seconds N [--seed N] "
                        "[--worker ID --job JOB] | --flood N\n");
        return 2;
    }
    s_state = seed;
    void *ctx = zmq_ctx_new();
    void *sock = zmq_socket(ctx, ZMQ_DEALER);
    int zero = 0, hwm = flood ? 0 : 1000; /* a flood queues it all */
    zmq_setsockopt(sock, ZMQ_LINGER, &zero, sizeof zero);
    zmq_setsockopt(sock, ZMQ_SNDHWM, &hwm, sizeof hwm);
    if (zmq_connect(sock, endpoint) != 0) {
        fprintf(stderr, "hostile: cannot connect to %s: %s\n", endpoint,
                zmq_strerror(errno));
        return 2;
    }
    if (flood) {
        Quern__Envelope env = QUERN__ENVELOPE__INIT;
        Quern__StatusRequest st = QUERN__STATUS_REQUEST__INIT;
        st.job_id = (char *)"";
        env.status_request = &st;
        env.body_case = QUERN__ENVELOPE__BODY_STATUS_REQUEST;
        env.version = QN_PROTOCOL_VERSION;
        uint8_t buf[64];
        size_t n = quern__envelope__pack(&env, buf);
        int wait_ms = 10000;
        zmq_setsockopt(sock, ZMQ_SNDTIMEO, &wait_ms, sizeof wait_ms);
        uint64_t done = 0;
        while (done < flood && zmq_send(sock, buf, n, 0) >= 0)
            done++;
        /* Stay connected while the receiver reads it all (it drops what
         * a peer that has gone sent), counting the answers, until none
         * has come for two seconds. */
        uint64_t answered = 0;
        int64_t quiet_until = qn_now_ms() + 2000, give_up = qn_now_ms() + 60000;
        while (qn_now_ms() < quiet_until && qn_now_ms() < give_up) {
            zmq_pollitem_t it = {.socket = sock, .events = ZMQ_POLLIN};
            if (zmq_poll(&it, 1, 200) <= 0)
                continue;
            zmq_msg_t m;
            zmq_msg_init(&m);
            while (zmq_msg_recv(&m, sock, ZMQ_DONTWAIT) >= 0)
                answered++;
            zmq_msg_close(&m);
            quiet_until = qn_now_ms() + 2000;
        }
        printf("flood %llu answered %llu\n", (unsigned long long)done,
               (unsigned long long)answered);
        zmq_close(sock);
        zmq_ctx_term(ctx);
        return done == flood ? 0 : 1;
    }
    uint64_t sent[KINDS] = {0};
    qn_buf b = {0};
    char *big = NULL;
    size_t bign = QN_MSG_MAX + 4096;
    int64_t end = qn_now_ms() + (int64_t)seconds * 1000, next_big = 0;
    while (qn_now_ms() < end) {
        int kind = (int)(s_rand() % (KINDS - 1));
        if (kind == SPOOF && !worker)
            kind = ABSURD;
        if (qn_now_ms() >= next_big) {
            kind = OVERSIZED; /* about once a second: costly for both */
            next_big = qn_now_ms() + 1000;
        }
        int rc = 0;
        switch (kind) {
        case RANDOM: {
            char r[2048];
            size_t n = s_rand() % sizeof r;
            s_fill(r, n);
            rc = zmq_send(sock, r, n, ZMQ_DONTWAIT);
            break;
        }
        case TRUNCATED:
            s_absurd_envelope(&b, QN_PROTOCOL_VERSION);
            rc = zmq_send(sock, b.data, b.len ? s_rand() % b.len : 0,
                          ZMQ_DONTWAIT);
            break;
        case ABSURD:
            s_absurd_envelope(&b, QN_PROTOCOL_VERSION);
            rc = zmq_send(sock, b.data, b.len, ZMQ_DONTWAIT);
            break;
        case VERSION:
            s_absurd_envelope(&b, s_rand() % 2 ? QN_PROTOCOL_VERSION + 1
                                               : 0xffffffffu);
            rc = zmq_send(sock, b.data, b.len, ZMQ_DONTWAIT);
            break;
        case MULTIPART: {
            s_absurd_envelope(&b, QN_PROTOCOL_VERSION);
            unsigned frames = 2 + (unsigned)(s_rand() % 4);
            for (unsigned i = 0; i < frames && rc >= 0; i++)
                rc =
                    zmq_send(sock, b.data, b.len,
                             ZMQ_DONTWAIT | (i + 1 < frames ? ZMQ_SNDMORE : 0));
            break;
        }
        case SPOOF:
            s_spoof_envelope(&b, worker, job);
            rc = zmq_send(sock, b.data, b.len, ZMQ_DONTWAIT);
            break;
        case OVERSIZED:
            if (!big) {
                big = qn_malloc(bign);
                s_fill(big, bign);
            }
            rc = zmq_send(sock, big, bign, ZMQ_DONTWAIT);
            break;
        }
        if (rc >= 0)
            sent[kind]++;
        /* Read what came back; this wait also paces the sending. */
        zmq_pollitem_t it = {.socket = sock, .events = ZMQ_POLLIN};
        if (zmq_poll(&it, 1, rc < 0 ? 10 : 1) > 0) {
            zmq_msg_t m;
            zmq_msg_init(&m);
            while (zmq_msg_recv(&m, sock, ZMQ_DONTWAIT) >= 0)
                ;
            zmq_msg_close(&m);
        }
    }
    uint64_t total = 0;
    for (int k = 0; k < KINDS; k++) {
        if (k == SPOOF && !worker)
            continue;
        printf("%s %llu\n", NAMES[k], (unsigned long long)sent[k]);
        total += sent[k];
    }
    printf("total %llu\n", (unsigned long long)total);
    free(big);
    qn_buf_release(&b);
    zmq_close(sock);
    zmq_ctx_term(ctx);
    return 0;
}
