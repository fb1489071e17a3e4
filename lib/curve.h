/*
 * curve.h -- CURVE keys and ZAP authentication for ZeroMQ sockets.
 *
 * Every process has a key pair. A server socket (the master's, a worker's
 * shuffle socket) uses CURVE with its secret key and accepts only clients
 * whose public key is in its trusted set; a client socket needs the
 * server's public key. The check is ZeroMQ's ZAP protocol (RFC 27): a
 * handler bound at inproc://zeromq.zap.01 in the same context, answered
 * here from the owner's own poll loop rather than a thread.
 *
 * Key files are text, one setting per line:
 *
 *     # quern CURVE key
 *     public = <40 characters of Z85>
 *     secret = <40 characters of Z85>
 *
 * The first line is exactly "# quern CURVE key". NAME.key files hold both
 * keys and are written with mode 0600; NAME.pub files hold the public key
 * only and may be copied anywhere. Blank lines and further lines starting
 * with '#' are ignored; any other line is an error.
 *
 * Order matters on a server: create the qn_zap handler before binding the
 * CURVE socket and keep it until the socket is closed. libzmq asks the
 * handler about every handshake; qn_curve_server also asks libzmq to refuse
 * clients when no handler answers, where libzmq supports that.
 */
#ifndef QN_CURVE_H
#define QN_CURVE_H

#include <stddef.h>
#include <stdint.h>

#define QN_CURVE_Z85 41 /* Z85 text of a 32-byte key, with its NUL */

/* A process's keys and whom it trusts. Fill with qn_curve_load. */
typedef struct qn_curve {
    char public_key[QN_CURVE_Z85]; /* ours */
    char secret_key[QN_CURVE_Z85];
    char master_key[QN_CURVE_Z85]; /* the master's public key, "" if unknown */
    char (*trusted)[QN_CURVE_Z85]; /* public keys allowed to connect to us */
    size_t ntrusted, cap_trusted;
} qn_curve;

/*
 * Make a new key pair and write PREFIX.key (public and secret, mode 0600)
 * and PREFIX.pub (public only). Refuses to overwrite either file. Returns
 * 0, or -1 with err naming the file and what went wrong.
 */
int qn_curve_keygen(const char *prefix, char *err, size_t errcap);

/*
 * Fill c: our key pair from secret_file (a .key file); every *.pub in
 * trusted_dir as a trusted key (trusted_dir may be NULL: a pure client,
 * which trusts nobody); the master's public key from master_file (a .pub or
 * .key file), or, when master_file is NULL and trusted_dir is given, from
 * trusted_dir/master.pub if that exists. A secret file readable by others
 * is only a warning (qn_warn). Returns 0, or -1 with err naming the file
 * and what is wrong, leaving c empty. Release c with qn_curve_release.
 */
int qn_curve_load(qn_curve *c, const char *secret_file, const char *trusted_dir,
                  const char *master_file, char *err, size_t errcap);

/*
 * Parse the text of a key file, buf[0..len) (any bytes), read from path
 * (named in messages only) into pub and sec, each 40 characters of
 * canonical Z85 or "" (sec is "" when the file has no secret key). Checks
 * the form only: not whether the keys make a pair. Returns 0, or -1 with
 * err naming the file and line.
 */
int qn_curve_parse(const char *path, const char *buf, size_t len,
                   char pub[QN_CURVE_Z85], char sec[QN_CURVE_Z85], char *err,
                   size_t errcap);

/* Free the trusted list and wipe the keys. c may be NULL. */
void qn_curve_release(qn_curve *c);

/* Is z85_public (40 characters of Z85) one of c's trusted keys? 1 or 0. */
int qn_curve_trusts(const qn_curve *c, const char *z85_public);

/*
 * Make sock a CURVE server with our secret key; call before bind, after
 * qn_zap_new on the socket's context. Returns 0 or -errno.
 */
int qn_curve_server(void *sock, const qn_curve *c);

/*
 * Make sock a CURVE client with our key pair, of the server whose public
 * key is server_public (Z85; NULL means c->master_key); call before
 * connect. Returns 0, -EINVAL when the server key is empty or not Z85, or
 * -errno.
 */
int qn_curve_client(void *sock, const qn_curve *c, const char *server_public);

/* ---- the ZAP handler ----------------------------------------------------- */

typedef struct qn_zap qn_zap;

/*
 * Bind a ZAP handler in zmq_ctx that accepts CURVE clients c trusts and
 * refuses everything else. c must outlive the handler; who names the
 * process in log lines ("master", "worker w1"). Accepted clients get their
 * Z85 public key as the ZAP user id, which the owner reads on each message
 * with zmq_msg_gets(msg, "User-Id"). Refusals are counted, and logged with
 * the peer's address and key at most once per address per minute (with a
 * count of those not logged). Returns the handler, or NULL with err set
 * (for instance when the context already has a handler).
 */
qn_zap *qn_zap_new(void *zmq_ctx, const qn_curve *c, const char *who, char *err,
                   size_t errcap);

/* The handler's socket, for the owner's zmq_poll (ZMQ_POLLIN). */
void *qn_zap_socket(qn_zap *z);

/* Answer every pending request without blocking. */
void qn_zap_handle(qn_zap *z);

/* How many requests the handler has refused so far. */
uint64_t qn_zap_refused(const qn_zap *z);

/* Close the handler's socket and free it; accepts NULL, clears *self_p. */
void qn_zap_destroy(qn_zap **self_p);

#endif
