/*
 * fuzz_config.c -- libFuzzer target: the text the daemons and the client
 * read that is not a protobuf message, and the JSON the master writes.
 *
 * The first byte says what the rest is:
 *
 *   0  a CURVE key file (qn_curve_parse), as --curve-secret, --curve-master
 *      and the trusted folder's *.pub files are read;
 *   1  a task's name as a user gives it (qn_task_parse: "m3", "reduce-0"),
 *      from quern logs and the status API;
 *   2  an HTTP Host header, which the status page checks against
 *      loopback names (qn_http_host_ok);
 *   3  an envelope from the wire (qn_wire_decode): the jobs of a
 *      StatusReply and the workers of a WorkersReply are written as the
 *      status API and --json write them (lib/statusjson.c), and the text
 *      must read back as the same JSON.
 *
 * The query strings of the status API (since, limit, state) are parsed
 * inside the master's request handler with strtoull and strcmp; they are
 * not reachable from here.
 */
#include "../../master/http.h"
#include "curve.h"
#include "statusjson.h"
#include "util.h"
#include "wire.h"

#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Stop here, so the fuzzer keeps the input, when an invariant is broken. */
static void s_check(int ok)
{
    if (!ok)
        abort();
}

/* data as a C string (cut at its first NUL); free it. */
static char *s_string(const uint8_t *data, size_t size)
{
    char *s = qn_malloc(size + 1);
    memcpy(s, data, size);
    s[size] = '\0';
    return s;
}

static int s_z85_key(const char *k)
{
    static const char z85[] =
        "0123456789abcdefghijklmnopqrstuvwxyz"
        "ABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?&<>()[]{}@%$#";
    if (strlen(k) != QN_CURVE_Z85 - 1)
        return 0;
    return strspn(k, z85) == QN_CURVE_Z85 - 1;
}

static void s_keyfile(const uint8_t *data, size_t size)
{
    char pub[QN_CURVE_Z85], sec[QN_CURVE_Z85], err[600] = "";
    if (qn_curve_parse("fuzz.key", (const char *)data, size, pub, sec, err,
                       sizeof err) == 0) {
        s_check(s_z85_key(pub));
        s_check(sec[0] == '\0' || s_z85_key(sec));
        s_check(size >= strlen("# quern CURVE key"));
    } else {
        s_check(strncmp(err, "fuzz.key", 8) == 0);
    }
}

static void s_task(const uint8_t *data, size_t size)
{
    char *s = s_string(data, size);
    int kind = -1;
    unsigned index = 0;
    if (qn_task_parse(s, &kind, &index) == 0) {
        s_check(kind == QUERN__TASK_KIND__MAP ||
                kind == QUERN__TASK_KIND__REDUCE);
        /* The name users are shown reads back as the same task. */
        char tn[24];
        qn_task_name(tn, sizeof tn, kind, index);
        int k2 = -1;
        unsigned i2 = 0;
        s_check(qn_task_parse(tn, &k2, &i2) == 0);
        s_check(k2 == kind && i2 == index);
    }
    free(s);
}

static void s_host(const uint8_t *data, size_t size)
{
    char *h = s_string(data, size);
    if (qn_http_host_ok(h)) {
        /* A loopback name, then nothing or a port. */
        static const char *const names[] = {"127.0.0.1", "localhost", "[::1]"};
        int ok = 0;
        for (size_t i = 0; i < 3; i++) {
            size_t n = strlen(names[i]);
            ok |= strncasecmp(h, names[i], n) == 0 &&
                  (h[n] == '\0' || h[n] == ':');
        }
        s_check(ok);
    }
    s_check(qn_http_host_ok(NULL) == 1);
    free(h);
}

/* v written as the status API and --json write it reads back the same. */
static void s_round_trip(json_t *v)
{
    s_check(v != NULL);
    static const size_t flags[] = {JSON_INDENT(1) | JSON_ENSURE_ASCII,
                                   JSON_INDENT(2), JSON_COMPACT};
    for (size_t i = 0; i < 3; i++) {
        char *text = json_dumps(v, flags[i]);
        s_check(text != NULL);
        json_error_t e;
        json_t *back = json_loads(text, 0, &e);
        s_check(back != NULL);
        s_check(json_equal(v, back));
        json_decref(back);
        free(text);
    }
    json_decref(v);
}

/*
 * The master fills a JobStatus from its own state: progress from 0 to 1
 * (it drops a worker's progress outside that), times from its clock. Keep
 * the fuzzed ones there, as the master writes them: qn_job_eta_ms turns
 * elapsed_ms * (1 - p) / p into a long long, which is undefined for a NaN
 * progress or a huge elapsed_ms (found by this target; a client reading a
 * StatusReply from something that is not a sane master would still get
 * there -- see corpus/config/found-eta-of-nan-progress).
 */
static void s_as_the_master_writes(Quern__JobStatus *st)
{
    double *p[] = {&st->map_progress, &st->reduce_progress};
    for (size_t i = 0; i < 2; i++)
        if (!(*p[i] >= 0 && *p[i] <= 1))
            *p[i] = 0;
    st->elapsed_ms &= (1ull << 40) - 1; /* 34 years */
}

static void s_json(const uint8_t *data, size_t size)
{
    Quern__Envelope *env = NULL;
    char err[256];
    /* A refusal of another version comes back too: free it as well. */
    if (qn_wire_decode(data, size, &env, NULL, err, sizeof err) != 0) {
        qn_wire_free(env);
        return;
    }
    if (env->body_case == QUERN__ENVELOPE__BODY_STATUS_REPLY) {
        Quern__StatusReply *r = env->status_reply;
        for (size_t i = 0; i < r->n_jobs; i++) {
            s_as_the_master_writes(r->jobs[i]);
            s_round_trip(qn_json_job(r->jobs[i]));
        }
    } else if (env->body_case == QUERN__ENVELOPE__BODY_WORKERS_REPLY) {
        Quern__WorkersReply *r = env->workers_reply;
        for (size_t i = 0; i < r->n_workers; i++)
            s_round_trip(qn_json_worker(r->workers[i]));
    }
    qn_wire_free(env);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    switch (data[0] % 4) {
    case 0: s_keyfile(data + 1, size - 1); break;
    case 1: s_task(data + 1, size - 1); break;
    case 2: s_host(data + 1, size - 1); break;
    default: s_json(data + 1, size - 1); break;
    }
    return 0;
}
