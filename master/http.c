/*
 * http.c -- see http.h.
 */
#include "http.h"

#include "log.h"
#include "util.h"

#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#define MAX_CONNECTIONS 64    /* browsers and scrapers at once */
#define IDLE_TIMEOUT_S 15     /* a connection idle this long is closed */
#define PER_IP_CONNECTIONS 16 /* ... and from one address at most */

struct qn_http {
    struct MHD_Daemon *d;
    qn_http_handler fn;
    void *ctx;
    char url[128];
    int loopback; /* bound to a loopback address: check Host */
};

struct qn_http_req {
    struct MHD_Connection *c;
    const char *path;
};

const char *qn_http_path(const qn_http_req *req)
{
    return req->path;
}

const char *qn_http_query(const qn_http_req *req, const char *name)
{
    return MHD_lookup_connection_value(req->c, MHD_GET_ARGUMENT_KIND, name);
}

void qn_http_text(qn_http_reply *out, unsigned status, const char *type,
                  const char *text, size_t len)
{
    out->status = status;
    out->type = type;
    out->body = qn_malloc(len + 1);
    memcpy(out->body, text, len);
    out->body[len] = '\0';
    out->len = len;
}

static enum MHD_Result s_queue(struct MHD_Connection *c, unsigned status,
                               const char *type, char *body, size_t len)
{
    struct MHD_Response *r = MHD_create_response_from_buffer(
        len, body ? body : (char *)"",
        body ? MHD_RESPMEM_MUST_FREE : MHD_RESPMEM_PERSISTENT);
    if (!r) {
        free(body);
        return MHD_NO;
    }
    MHD_add_response_header(r, "Content-Type", type);
    MHD_add_response_header(r, "Cache-Control", "no-store");
    MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
    /* The page and its script come from here and talk only to here. */
    MHD_add_response_header(r, "Content-Security-Policy",
                            "default-src 'none'; script-src 'unsafe-inline'; "
                            "style-src 'unsafe-inline'; img-src data:; "
                            "connect-src 'self'; base-uri 'none'; "
                            "frame-ancestors 'none'");
    enum MHD_Result rc = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    return rc;
}

int qn_http_host_ok(const char *host)
{
    if (!host)
        return 1;
    static const char *const names[] = {"127.0.0.1", "localhost", "[::1]"};
    for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
        size_t n = strlen(names[i]);
        if (strncasecmp(host, names[i], n) == 0 &&
            (host[n] == '\0' || host[n] == ':'))
            return 1;
    }
    return 0;
}

static enum MHD_Result s_access(void *cls, struct MHD_Connection *c,
                                const char *url, const char *method,
                                const char *version, const char *upload,
                                size_t *upload_size, void **con_cls)
{
    (void)version;
    (void)upload;
    qn_http *h = cls;
    /* The first call is for the headers; a body, if any, follows. */
    if (!*con_cls) {
        *con_cls = h;
        return MHD_YES;
    }
    if (*upload_size) {
        *upload_size = 0; /* read and ignored: nothing here takes a body */
        return MHD_YES;
    }
    if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0) {
        static const char msg[] =
            "{\"error\": \"read-only: only GET and HEAD are served\"}\n";
        char *b = qn_strdup(msg);
        struct MHD_Response *r = MHD_create_response_from_buffer(
            strlen(b), b, MHD_RESPMEM_MUST_FREE);
        if (!r)
            return MHD_NO;
        MHD_add_response_header(r, "Allow", "GET, HEAD");
        MHD_add_response_header(r, "Content-Type", "application/json");
        enum MHD_Result rc =
            MHD_queue_response(c, MHD_HTTP_METHOD_NOT_ALLOWED, r);
        MHD_destroy_response(r);
        return rc;
    }
    if (h->loopback && !qn_http_host_ok(MHD_lookup_connection_value(
                           c, MHD_HEADER_KIND, MHD_HTTP_HEADER_HOST))) {
        /* A page elsewhere that got a browser here by DNS rebinding. */
        static const char msg[] =
            "{\"error\": \"this server answers only to loopback names "
            "(127.0.0.1, localhost, [::1])\"}\n";
        return s_queue(c, MHD_HTTP_FORBIDDEN, "application/json",
                       qn_strdup(msg), sizeof msg - 1);
    }
    qn_http_req req = {.c = c, .path = url};
    qn_http_reply out = {.status = 200, .type = "text/plain; charset=utf-8"};
    h->fn(h->ctx, &req, &out);
    return s_queue(c, out.status, out.type, out.body, out.len);
}

/* Split "HOST:PORT" into a socket address. */
static int s_parse(const char *addr, struct sockaddr_storage *ss,
                   socklen_t *sslen, char *err, size_t errcap)
{
    char host[256];
    const char *colon = strrchr(addr, ':');
    if (!colon || !colon[1]) {
        snprintf(err, errcap,
                 "--http %s: give HOST:PORT, e.g. 127.0.0.1:8080 (or off)",
                 addr);
        return -1;
    }
    size_t hl = (size_t)(colon - addr);
    if (hl >= sizeof host) {
        snprintf(err, errcap, "--http %s: host name too long", addr);
        return -1;
    }
    memcpy(host, addr, hl);
    host[hl] = '\0';
    if (hl >= 2 && host[0] == '[' && host[hl - 1] == ']') {
        memmove(host, host + 1, hl - 2);
        host[hl - 2] = '\0';
    }
    char *end;
    errno = 0;
    unsigned long port = strtoul(colon + 1, &end, 10);
    if (*end || errno || port > 65535) {
        snprintf(err, errcap, "--http %s: the port must be 0 to 65535", addr);
        return -1;
    }
    struct addrinfo hints = {.ai_family = AF_UNSPEC,
                             .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
    struct addrinfo *ai = NULL;
    char ps[8];
    snprintf(ps, sizeof ps, "%lu", port);
    int rc = getaddrinfo(host[0] && strcmp(host, "*") ? host : NULL, ps, &hints,
                         &ai);
    if (rc != 0 || !ai) {
        snprintf(err, errcap, "--http %s: cannot resolve %s: %s", addr, host,
                 gai_strerror(rc));
        return -1;
    }
    memcpy(ss, ai->ai_addr, ai->ai_addrlen);
    *sslen = ai->ai_addrlen;
    freeaddrinfo(ai);
    return 0;
}

qn_http *qn_http_start(const char *addr, qn_http_handler fn, void *ctx,
                       char *err, size_t errcap)
{
    struct sockaddr_storage ss;
    socklen_t sslen;
    if (s_parse(addr, &ss, &sslen, err, errcap) < 0)
        return NULL;
    qn_http *h = qn_calloc(1, sizeof *h);
    h->fn = fn;
    h->ctx = ctx;
    unsigned flags = MHD_USE_EPOLL | MHD_USE_TURBO;
    if (ss.ss_family == AF_INET6)
        flags |= MHD_USE_IPv6;
    h->d = MHD_start_daemon(
        flags, 0, NULL, NULL, s_access, h, MHD_OPTION_SOCK_ADDR,
        (struct sockaddr *)&ss, MHD_OPTION_CONNECTION_LIMIT,
        (unsigned)MAX_CONNECTIONS, MHD_OPTION_PER_IP_CONNECTION_LIMIT,
        (unsigned)PER_IP_CONNECTIONS, MHD_OPTION_CONNECTION_TIMEOUT,
        (unsigned)IDLE_TIMEOUT_S, MHD_OPTION_END);
    if (!h->d) {
        int e = errno;
        snprintf(err, errcap,
                 "cannot serve the status page on %s: %s (choose another "
                 "address with --http HOST:PORT, or --http off)",
                 addr, e ? strerror(e) : "libmicrohttpd refused");
        free(h);
        return NULL;
    }
    const union MHD_DaemonInfo *pi =
        MHD_get_daemon_info(h->d, MHD_DAEMON_INFO_BIND_PORT);
    unsigned port = pi ? pi->port : 0;
    char host[INET6_ADDRSTRLEN] = "";
    if (ss.ss_family == AF_INET6) {
        h->loopback =
            IN6_IS_ADDR_LOOPBACK(&((struct sockaddr_in6 *)&ss)->sin6_addr);
        inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&ss)->sin6_addr, host,
                  sizeof host);
        snprintf(h->url, sizeof h->url, "http://[%s]:%u/", host, port);
    } else {
        h->loopback =
            (ntohl(((struct sockaddr_in *)&ss)->sin_addr.s_addr) >> 24) == 127;
        inet_ntop(AF_INET, &((struct sockaddr_in *)&ss)->sin_addr, host,
                  sizeof host);
        snprintf(h->url, sizeof h->url, "http://%s:%u/", host, port);
    }
    return h;
}

void qn_http_stop(qn_http **self_p)
{
    qn_http *h = *self_p;
    if (!h)
        return;
    MHD_stop_daemon(h->d);
    free(h);
    *self_p = NULL;
}

int qn_http_fd(const qn_http *h)
{
    const union MHD_DaemonInfo *i =
        MHD_get_daemon_info(h->d, MHD_DAEMON_INFO_EPOLL_FD);
    return i ? i->epoll_fd : -1;
}

long qn_http_timeout(qn_http *h)
{
    MHD_UNSIGNED_LONG_LONG t;
    if (MHD_get_timeout(h->d, &t) != MHD_YES)
        return -1;
    return t > 3600000 ? 3600000 : (long)t;
}

void qn_http_run(qn_http *h)
{
    MHD_run(h->d);
}

const char *qn_http_url(const qn_http *h)
{
    return h->url;
}
