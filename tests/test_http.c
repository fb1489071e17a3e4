/*
 * test_http.c -- the status page's HTTP server (master/http.c), driven the
 * way the master drives it: its descriptor polled, qn_http_run() called.
 */
#include "helpers.h"

#include "../master/http.h"
#include "util.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>

TestSuite(http, .fini = qn_test_leak_check);

static int handled;

/* Answers "PATH q=VALUE" for every GET. */
static void s_echo(void *ctx, const qn_http_req *req, qn_http_reply *out)
{
    (void)ctx;
    handled++;
    char body[512];
    const char *q = qn_http_query(req, "q");
    int n = snprintf(body, sizeof body, "%s q=%s", qn_http_path(req),
                     q ? q : "(none)");
    qn_http_text(out, 200, "text/plain", body, (size_t)n);
}

static unsigned s_port(const qn_http *h)
{
    const char *colon = strrchr(qn_http_url(h), ':');
    cr_assert_not_null(colon);
    return (unsigned)atoi(colon + 1);
}

/*
 * Send raw to the server and return everything it answers before closing
 * (the caller frees it). Serves the server meanwhile, 5 s at most.
 */
static char *s_request(qn_http *h, const char *raw)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    cr_assert_geq(fd, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET,
                             .sin_port = htons((uint16_t)s_port(h))};
    inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    cr_assert_eq(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    cr_assert_eq(write(fd, raw, strlen(raw)), (ssize_t)strlen(raw));
    qn_buf got = {0};
    int64_t deadline = qn_now_ms() + 5000;
    for (;;) {
        int64_t left = deadline - qn_now_ms();
        cr_assert_gt(left, 0, "no complete answer in 5 s: %s",
                     got.data ? got.data : "");
        long t = qn_http_timeout(h);
        struct pollfd p[2] = {{.fd = fd, .events = POLLIN},
                              {.fd = qn_http_fd(h), .events = POLLIN}};
        poll(p, 2, (int)(t >= 0 && t < left ? t : left));
        qn_http_run(h);
        if (p[0].revents & (POLLIN | POLLHUP)) {
            char b[4096];
            ssize_t n = read(fd, b, sizeof b);
            if (n <= 0)
                break;
            qn_buf_add(&got, b, (size_t)n);
        }
    }
    close(fd);
    qn_buf_add(&got, "", 1);
    return got.data;
}

Test(http, serves_gets_with_the_query_and_names_its_url)
{
    char err[256];
    qn_http *h = qn_http_start("127.0.0.1:0", s_echo, NULL, err, sizeof err);
    cr_assert_not_null(h, "%s", err);
    cr_assert(strncmp(qn_http_url(h), "http://127.0.0.1:", 17) == 0, "%s",
              qn_http_url(h));
    cr_assert_gt(s_port(h), 0);
    handled = 0;
    char *r = s_request(h, "GET /api/v1/x?q=hello HTTP/1.1\r\nHost: "
                           "127.0.0.1\r\nConnection: close\r\n\r\n");
    cr_assert(strncmp(r, "HTTP/1.1 200", 12) == 0, "%s", r);
    cr_assert(strstr(r, "\r\n\r\n/api/v1/x q=hello"), "%s", r);
    cr_assert(strstr(r, "Cache-Control: no-store"), "%s", r);
    cr_assert(strstr(r, "Content-Security-Policy: default-src 'none'"), "%s",
              r);
    cr_assert_eq(handled, 1);
    free(r);
    qn_http_stop(&h);
    cr_assert_null(h);
    qn_http_stop(&h); /* NULL is fine */
}

Test(http, refuses_other_methods_and_foreign_hosts)
{
    char err[256];
    qn_http *h = qn_http_start("127.0.0.1:0", s_echo, NULL, err, sizeof err);
    cr_assert_not_null(h, "%s", err);
    handled = 0;
    char *r = s_request(h, "POST /api/v1/jobs HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                           "Content-Length: 2\r\nConnection: close\r\n\r\nhi");
    cr_assert(strncmp(r, "HTTP/1.1 405", 12) == 0, "%s", r);
    cr_assert(strstr(r, "Allow: GET, HEAD"), "%s", r);
    free(r);
    /* Bound to loopback: a Host that is not a loopback name is refused. */
    r = s_request(h, "GET / HTTP/1.1\r\nHost: evil.example\r\n"
                     "Connection: close\r\n\r\n");
    cr_assert(strncmp(r, "HTTP/1.1 403", 12) == 0, "%s", r);
    free(r);
    r = s_request(h, "GET / HTTP/1.1\r\nHost: localhost:8080\r\n"
                     "Connection: close\r\n\r\n");
    cr_assert(strncmp(r, "HTTP/1.1 200", 12) == 0, "%s", r);
    free(r);
    cr_assert_eq(handled, 1, "the handler ran for a refused request");
    qn_http_stop(&h);
}

Test(http, bad_or_busy_addresses_are_errors_that_name_them)
{
    char err[256];
    cr_assert_null(qn_http_start("nonsense", s_echo, NULL, err, sizeof err));
    cr_assert(strstr(err, "--http nonsense") && strstr(err, "HOST:PORT"), "%s",
              err);
    cr_assert_null(
        qn_http_start("127.0.0.1:99999", s_echo, NULL, err, sizeof err));
    cr_assert(strstr(err, "0 to 65535"), "%s", err);
    qn_http *h = qn_http_start("127.0.0.1:0", s_echo, NULL, err, sizeof err);
    cr_assert_not_null(h, "%s", err);
    char busy[64];
    snprintf(busy, sizeof busy, "127.0.0.1:%u", s_port(h));
    cr_assert_null(qn_http_start(busy, s_echo, NULL, err, sizeof err));
    cr_assert(strstr(err, busy) && strstr(err, "--http"), "%s", err);
    qn_http_stop(&h);
}
