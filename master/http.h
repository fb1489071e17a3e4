/*
 * http.h -- a read-only HTTP server that runs inside its owner's poll loop.
 *
 * libmicrohttpd without a thread of its own: it keeps its sockets in one
 * epoll descriptor, which the owner puts in its zmq_poll() beside its
 * ZeroMQ sockets, and calls qn_http_run() when that descriptor is ready or
 * qn_http_timeout() has passed. Requests are answered from inside
 * qn_http_run(), by the owner's handler, so the handler may read the
 * owner's state without a lock.
 */
#ifndef QN_HTTP_H
#define QN_HTTP_H

#include <stddef.h>
#include <stdint.h>

/* What a handler answers: status, content type and a body it allocated
 * with malloc (the server frees it), or NULL for an empty body. */
typedef struct qn_http_reply {
    unsigned status;
    const char *type;
    char *body;
    size_t len;
} qn_http_reply;

/* Answer a GET (or HEAD) of path; query is the raw query string's value
 * lookup: qn_http_query(req, "since"). */
typedef struct qn_http_req qn_http_req;
typedef void (*qn_http_handler)(void *ctx, const qn_http_req *req,
                                qn_http_reply *out);

/* The request's path, without the query string. */
const char *qn_http_path(const qn_http_req *req);

/* A query argument's value, or NULL. */
const char *qn_http_query(const qn_http_req *req, const char *name);

typedef struct qn_http qn_http;

/*
 * Listen on addr ("HOST:PORT", "[V6]:PORT" or ":PORT" for every address;
 * PORT 0 picks a free one). NULL with a message in err on failure.
 */
qn_http *qn_http_start(const char *addr, qn_http_handler fn, void *ctx,
                       char *err, size_t errcap);

/* Stop serving and free; accepts NULL, clears the pointer. */
void qn_http_stop(qn_http **self_p);

/* The descriptor to poll for input. */
int qn_http_fd(const qn_http *h);

/* Milliseconds until qn_http_run() is due even without input; -1: none. */
long qn_http_timeout(qn_http *h);

/* Accept, read and answer what is ready; never blocks. */
void qn_http_run(qn_http *h);

/* The URL it serves, e.g. "http://127.0.0.1:8080/". */
const char *qn_http_url(const qn_http *h);

/*
 * Is host, a request's Host header, a loopback name ("127.0.0.1",
 * "localhost" or "[::1]", any case, with or without ":PORT"), or NULL (no
 * header, as in HTTP/1.0)? 1 or 0. A server on loopback answers only
 * these, so a page elsewhere cannot reach it by DNS rebinding.
 */
int qn_http_host_ok(const char *host);

/* Fill out with a copy of text (status 200 unless set later). */
void qn_http_text(qn_http_reply *out, unsigned status, const char *type,
                  const char *text, size_t len);

#endif
