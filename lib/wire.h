/*
 * wire.h -- messages on the wire: the versioned envelope, validation, and
 * sending and receiving over ZeroMQ sockets and plain descriptors.
 *
 * Generated protobuf-c types (Quern__*) come from lib/quern.proto. Every
 * message is checked here after unpacking -- size, version, UTF-8 strings,
 * required parts -- so the daemons only ever see well-formed messages.
 */
#ifndef QN_WIRE_H
#define QN_WIRE_H

#include <stddef.h>
#include <stdint.h>

#include <zmq.h>

#include "quern.pb-c.h"
#include "split.h"
#include "util.h"

/* The protocol version every envelope carries. The tests build a second
 * copy of the programs with another (-DQN_PROTOCOL_VERSION=2), to see two
 * releases meet. */
#ifndef QN_PROTOCOL_VERSION
#define QN_PROTOCOL_VERSION 1
#endif
/*
 * Within a version, peers of two releases work together: each release
 * adds to the protocol only fields an older peer does without, numbered
 * by a minor version. A worker says its minor in its hello; the master
 * answers with the lower of the two in its welcome, and both use no more
 * than that with each other. Minor 1 adds master epochs (--state-dir):
 * a worker told a new epoch says hello again and tells its successes
 * again. Minor 2 adds worker incarnations: a worker started again on its
 * work dir keeps its id, offers the map outputs it finds there in its
 * hello (WorkerHello.finished) and keeps them when told to rejoin, since
 * the master answers a job it does not run with JobEnd and outputs no job
 * needs with DropOutputs; a worker leaving on SIGTERM says so
 * (WorkerLeaving). Minor 3 adds datasets that heal: the master drops a
 * surplus copy of one shard (DataCommand DROP_SHARD), which it sends
 * only to workers of minor 3 or later. Minor 4 adds drains: a worker told
 * to stop asks to be drained first (WorkerDrain) and stops when told it
 * is (WorkerDrained); a worker of an older minor leaves at once. A peer
 * that says no minor speaks 0.
 */
#ifndef QN_PROTOCOL_MINOR
#define QN_PROTOCOL_MINOR 4
#endif
#define QN_VERSION "0.6.0" /* this release, as the status page shows it */

/* PROG's --version on stdout: "PROG 0.6.0 (protocol 1.4)". Returns 0. */
int qn_version_print(const char *prog);

/* Largest message (or frame) any Quern socket accepts. */
#define QN_MSG_MAX (16 * 1024 * 1024)

/* Attempts one heartbeat may list: 1024 slots (the most a worker may
 * have), each running up to two attempts. */
#define QN_HEARTBEAT_ATTEMPTS_MAX 2048

/* Returned by qn_wire_decode for a well-formed envelope of another version. */
#define QN_WIRE_EVERSION 2001

/*
 * Unpack and check an envelope. Returns 0 and sets *out (free it with
 * qn_wire_free), -QN_WIRE_EVERSION and sets *their_version when the peer
 * speaks another protocol version, or -QN_ECORRUPT with a message in err.
 */
int qn_wire_decode(const void *buf, size_t len, Quern__Envelope **out,
                   uint32_t *their_version, char *err, size_t errcap);

/*
 * Fill in what every task of job js shares (plugin, args, reducers,
 * buffer, codec, input kind, output folder, shipped files), pointing into
 * js; the task's kind, index, attempt and own parts are the caller's.
 */
void qn_task_spec_from_job(Quern__TaskSpec *ts, const Quern__JobSpec *js);

/*
 * Fill pieces[sp->n], and ptrs[sp->n] pointing at them, with the pieces of
 * map split sp: path, name and byte range, and a dataset shard's dataset,
 * index and CRC; strings point into sp. Where a shard is read from (its
 * sources) is the caller's to add.
 */
void qn_task_spec_pieces(const qn_split *sp, Quern__InputPiece *pieces,
                         Quern__InputPiece **ptrs);

/* Free an envelope from qn_wire_decode; accepts NULL. */
void qn_wire_free(Quern__Envelope *env);

/* The name of an envelope's body, for logs ("heartbeat"). */
const char *qn_wire_name(const Quern__Envelope *env);

/* Pack env (its version is set here) into b, replacing b's contents. */
int qn_wire_pack(Quern__Envelope *env, qn_buf *b);

/*
 * Fill a Refusal envelope for a peer that sent their_version. The strings
 * point into static storage.
 */
void qn_wire_refusal(Quern__Envelope *env, Quern__Refusal *r,
                     uint32_t their_version);

/*
 * A ZeroMQ socket of type for Quern traffic: no linger on close, and
 * frames over QN_MSG_MAX refused by the transport. Every socket Quern
 * opens comes from here, so limits (and, later, security) live in one
 * place. NULL on failure.
 */
void *qn_wire_socket(void *ctx, int type);

/* Pack env (version set here) into a new ZeroMQ message; 0 or -errno. */
int qn_wire_msg(Quern__Envelope *env, zmq_msg_t *msg);

/*
 * Send env on a ZeroMQ socket without blocking, preceded by a routing id
 * frame when id is not NULL (ROUTER sockets) and followed by a data frame
 * when data is not NULL. Returns 0 or -errno (EAGAIN when the peer's queue
 * is full: the message is dropped).
 */
int qn_wire_send(void *sock, const void *id, size_t idlen, Quern__Envelope *env,
                 const void *data, size_t dlen);

/* A received ZeroMQ message: routing id, envelope and optional data. */
typedef struct qn_frames {
    char id[256]; /* routing id (ROUTER sockets) */
    size_t idlen;
    qn_buf env;  /* envelope bytes */
    qn_buf data; /* data frame, if any */
    int has_data;
    char peer[64]; /* the sender's address ("" if unknown) */
} qn_frames;

/*
 * Receive one whole message without blocking. router says whether the first
 * frame is a routing id. Extra frames are dropped. Returns 1 when a message
 * was read, 0 when none is waiting, -1 on a malformed multipart message
 * (already discarded).
 */
int qn_wire_recv(void *sock, int router, qn_frames *f);

/* Free a qn_frames's buffers. */
void qn_frames_release(qn_frames *f);

/*
 * Length-prefixed envelopes over a stream descriptor (the worker and its
 * task processes share a socketpair). Each frame: u32 little-endian length,
 * then the packed envelope.
 */
int qn_wire_write_fd(int fd, Quern__Envelope *env);

/* Append one such frame to b (for writing later, without blocking). */
int qn_wire_append(qn_buf *b, Quern__Envelope *env);

/*
 * Reassembles frames from a non-blocking stream descriptor. Call
 * qn_stream_read when fd is readable, then qn_stream_next until it returns
 * 0.
 */
typedef struct qn_stream {
    int fd;
    qn_buf in;  /* bytes read, not yet consumed */
    size_t off; /* consumed prefix of in */
    int eof;    /* the peer closed its end */
} qn_stream;

/*
 * One read() of what is available. Returns the bytes read (0 at EOF or
 * when none are waiting), or -errno on an error.
 */
int qn_stream_read(qn_stream *s);

/*
 * Decode the next complete frame: 1 and *out set, 0 when none is complete,
 * <0 when the stream is corrupt (err says how).
 */
int qn_stream_next(qn_stream *s, Quern__Envelope **out, char *err,
                   size_t errcap);

#endif
