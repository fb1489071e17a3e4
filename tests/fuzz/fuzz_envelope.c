/*
 * fuzz_envelope.c -- libFuzzer target: any bytes as a message from a peer.
 *
 * The input is one ZeroMQ frame: qn_wire_decode unpacks and checks it as
 * every daemon does (the envelope, then each message's decoder and
 * checks, since the envelope holds them all), and a decoded message is
 * packed again and must decode the same. The same bytes are also fed as a
 * stream between a worker and its task processes, cut at every 7th byte,
 * through qn_stream_next.
 */
#include "wire.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void s_decode(const uint8_t *data, size_t size)
{
    Quern__Envelope *env = NULL;
    uint32_t theirs = 0;
    char err[256];
    int rc = qn_wire_decode(data, size, &env, &theirs, err, sizeof err);
    if (rc == 0) {
        /* What was accepted packs again, and means the same. */
        qn_buf b = {0};
        if (qn_wire_pack(env, &b) != 0)
            abort();
        Quern__Envelope *again = NULL;
        if (qn_wire_decode(b.data, b.len, &again, NULL, err, sizeof err) != 0)
            abort();
        if (again->body_case != env->body_case)
            abort();
        (void)qn_wire_name(again);
        qn_wire_free(again);
        qn_buf_release(&b);
    } else if (rc != -QN_WIRE_EVERSION && rc != -QN_ECORRUPT) {
        abort();
    } else if (err[0] == '\0' && rc == -QN_ECORRUPT) {
        abort(); /* a refusal always says why */
    }
    qn_wire_free(env);
}

static void s_stream(const uint8_t *data, size_t size)
{
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0)
        return;
    qn_stream st = {.fd = sv[0]};
    for (size_t off = 0; off < size;) {
        size_t n = size - off < 7 ? size - off : 7;
        if (write(sv[1], data + off, n) != (ssize_t)n)
            break;
        off += n;
        if (qn_stream_read(&st) < 0)
            break;
        for (;;) {
            Quern__Envelope *env = NULL;
            char err[256];
            int r = qn_stream_next(&st, &env, err, sizeof err);
            if (r <= 0) {
                off = r < 0 ? size : off; /* corrupt: the stream ends */
                break;
            }
            qn_wire_free(env);
        }
    }
    qn_buf_release(&st.in);
    close(sv[0]);
    close(sv[1]);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    s_decode(data, size);
    if (size <= 64 * 1024)
        s_stream(data, size);
    return 0;
}
