/*
 * test_curve.c -- CURVE key files, and the ZAP handler in front of a real
 * ROUTER on loopback, driven by the test's own bounded poll loop.
 */
#include "helpers.h"

#include "curve.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <zmq.h>

TestSuite(curve, .fini = qn_test_leak_check);

#define WAIT_MS 5000 /* longest a test waits for something to happen */

/* ---- files --------------------------------------------------------------- */

/* dir/name into buf (static storage, four in rotation). */
static const char *s_path(const char *dir, const char *name)
{
    static char bufs[4][4096];
    static int next;
    char *b = bufs[next++ % 4];
    int n = snprintf(b, 4096, "%s/%s", dir, name);
    cr_assert(n > 0 && n < 4096, "path too long");
    return b;
}

static void s_write(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f, "%s", path);
    fputs(text, f);
    fclose(f);
}

/* The whole of a small file, NUL-terminated; free the result. */
static char *s_slurp(const char *path)
{
    FILE *f = fopen(path, "r");
    cr_assert_not_null(f, "%s", path);
    char *buf = calloc(1, 65536);
    size_t n = fread(buf, 1, 65535, f);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

/* Make dir/name.key and dir/name.pub. */
static void s_keygen(const char *dir, const char *name)
{
    char err[512] = "";
    cr_assert_eq(qn_curve_keygen(s_path(dir, name), err, sizeof err), 0,
                 "keygen %s: %s", name, err);
}

/* The public key of the pair in dir/name.key. */
static void s_public_of(const char *dir, const char *name,
                        char out[QN_CURVE_Z85])
{
    char file[256], err[512] = "";
    snprintf(file, sizeof file, "%s.key", name);
    qn_curve c;
    cr_assert_eq(
        qn_curve_load(&c, s_path(dir, file), NULL, NULL, err, sizeof err), 0,
        "%s", err);
    memcpy(out, c.public_key, QN_CURVE_Z85);
    qn_curve_release(&c);
}

/* Load expecting failure; err must contain both file and what. */
static void s_load_fails(const char *secret, const char *trusted,
                         const char *master, const char *file, const char *what)
{
    char err[512] = "";
    qn_curve c;
    memset(&c, 0x55, sizeof c);
    cr_assert_eq(qn_curve_load(&c, secret, trusted, master, err, sizeof err),
                 -1, "load of %s did not fail", file);
    cr_assert_not_null(strstr(err, file), "error does not name %s: %s", file,
                       err);
    cr_assert_not_null(strstr(err, what), "error does not say '%s': %s", what,
                       err);
    /* A failed load leaves nothing to release. */
    cr_assert_null(c.trusted);
    cr_assert_eq(c.ntrusted, 0);
    cr_assert_eq(c.public_key[0], '\0');
    cr_assert_eq(c.secret_key[0], '\0');
    qn_curve_release(&c);
}

/* Capture what this process writes to stderr between begin and end. */
typedef struct s_capture {
    int saved;
    char path[4096];
} s_capture;

static void s_capture_begin(s_capture *cap, const char *dir)
{
    snprintf(cap->path, sizeof cap->path, "%s/stderr.txt", dir);
    int fd = open(cap->path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    cr_assert_geq(fd, 0);
    fflush(stderr);
    cap->saved = dup(2);
    dup2(fd, 2);
    close(fd);
}

/* Restore stderr and return what was written; free the result. */
static char *s_capture_end(s_capture *cap)
{
    fflush(stderr);
    dup2(cap->saved, 2);
    close(cap->saved);
    char *text = s_slurp(cap->path);
    fputs(text, stderr); /* still show it */
    return text;
}

static int s_count(const char *text, const char *what)
{
    int n = 0;
    for (const char *p = text; (p = strstr(p, what)) != NULL; p++)
        n++;
    return n;
}

/* ---- key files ----------------------------------------------------------- */

Test(curve, keygen_then_load_round_trips)
{
    char *dir = qn_test_tmpdir(), err[512] = "";
    s_keygen(dir, "node");

    struct stat st;
    cr_assert_eq(stat(s_path(dir, "node.key"), &st), 0);
    cr_assert_eq(st.st_mode & 0777, 0600, "mode %o", st.st_mode & 0777);
    char *key = s_slurp(s_path(dir, "node.key"));
    char *pub = s_slurp(s_path(dir, "node.pub"));
    cr_assert_eq(strncmp(key, "# quern CURVE key\npublic = ", 27), 0, "%s",
                 key);
    cr_assert_not_null(strstr(key, "\nsecret = "));
    cr_assert_eq(strncmp(pub, "# quern CURVE key\npublic = ", 27), 0, "%s",
                 pub);
    cr_assert_null(strstr(pub, "secret"), "the .pub file holds a secret");

    /* The .pub given as the master's key reads back the same public key. */
    qn_curve c;
    cr_assert_eq(qn_curve_load(&c, s_path(dir, "node.key"), NULL,
                               s_path(dir, "node.pub"), err, sizeof err),
                 0, "%s", err);
    cr_assert_eq(strlen(c.public_key), 40);
    cr_assert_eq(strlen(c.secret_key), 40);
    cr_assert_str_eq(c.master_key, c.public_key);
    cr_assert_neq(strcmp(c.public_key, c.secret_key), 0);
    cr_assert_not_null(strstr(key, c.public_key));
    cr_assert_not_null(strstr(key, c.secret_key));
    cr_assert_null(strstr(pub, c.secret_key));
    char derived[QN_CURVE_Z85];
    cr_assert_eq(zmq_curve_public(derived, c.secret_key), 0);
    cr_assert_str_eq(derived, c.public_key);
    cr_assert_eq(c.ntrusted, 0);
    cr_assert_eq(qn_curve_trusts(&c, c.public_key), 0);
    qn_curve_release(&c);
    cr_assert_eq(c.secret_key[0], '\0', "release did not wipe the key");

    /* Two key pairs differ. */
    s_keygen(dir, "other");
    char a[QN_CURVE_Z85], b[QN_CURVE_Z85];
    s_public_of(dir, "node", a);
    s_public_of(dir, "other", b);
    cr_assert_neq(strcmp(a, b), 0);

    free(key);
    free(pub);
    qn_rmtree(dir);
    free(dir);
}

Test(curve, keygen_refuses_to_overwrite)
{
    char *dir = qn_test_tmpdir(), err[512] = "";
    s_keygen(dir, "node");
    char *before = s_slurp(s_path(dir, "node.key"));

    cr_assert_eq(qn_curve_keygen(s_path(dir, "node"), err, sizeof err), -1);
    cr_assert_not_null(strstr(err, s_path(dir, "node.")), "%s", err);
    cr_assert_not_null(strstr(err, "exists"), "%s", err);
    char *after = s_slurp(s_path(dir, "node.key"));
    cr_assert_str_eq(after, before, "the key file changed");

    /* A lone .pub also stops it, and no .key is left behind. */
    s_write(s_path(dir, "lone.pub"), "anything\n");
    err[0] = '\0';
    cr_assert_eq(qn_curve_keygen(s_path(dir, "lone"), err, sizeof err), -1);
    cr_assert_not_null(strstr(err, s_path(dir, "lone.pub")), "%s", err);
    cr_assert_eq(access(s_path(dir, "lone.key"), F_OK), -1);

    /* And a directory that does not exist is named. */
    err[0] = '\0';
    cr_assert_eq(qn_curve_keygen(s_path(dir, "no/such/dir"), err, sizeof err),
                 -1);
    cr_assert_not_null(strstr(err, "no/such/dir"), "%s", err);

    free(before);
    free(after);
    qn_rmtree(dir);
    free(dir);
}

Test(curve, load_reads_trusted_dir_and_master_key)
{
    char *dir = qn_test_tmpdir(), err[512] = "";
    char tdir[4096];
    snprintf(tdir, sizeof tdir, "%s/trusted", dir);
    cr_assert_eq(mkdir(tdir, 0700), 0);
    s_keygen(dir, "me");
    s_keygen(tdir, "w1");
    s_keygen(tdir, "w2");
    s_keygen(tdir, "master");
    char me[QN_CURVE_Z85], w1[QN_CURVE_Z85], w2[QN_CURVE_Z85],
        master[QN_CURVE_Z85];
    s_public_of(dir, "me", me);
    s_public_of(tdir, "w1", w1);
    s_public_of(tdir, "w2", w2);
    s_public_of(tdir, "master", master);
    /* Only *.pub files count; the .key files beside them, a README and a
     * hidden file are ignored. */
    s_write(s_path(tdir, "README"), "not a key\n");
    s_write(s_path(tdir, ".hidden.pub"), "not a key\n");

    qn_curve c;
    cr_assert_eq(
        qn_curve_load(&c, s_path(dir, "me.key"), tdir, NULL, err, sizeof err),
        0, "%s", err);
    cr_assert_eq(c.ntrusted, 3);
    cr_assert(qn_curve_trusts(&c, w1));
    cr_assert(qn_curve_trusts(&c, w2));
    cr_assert(qn_curve_trusts(&c, master));
    cr_assert_not(qn_curve_trusts(&c, me));
    cr_assert_not(qn_curve_trusts(&c, NULL));
    cr_assert_not(qn_curve_trusts(&c, ""));
    cr_assert_str_eq(c.master_key, master, "master.pub not picked up");
    qn_curve_release(&c);

    /* An explicit master file wins over trusted/master.pub. */
    cr_assert_eq(qn_curve_load(&c, s_path(dir, "me.key"), tdir,
                               s_path(tdir, "w1.pub"), err, sizeof err),
                 0, "%s", err);
    cr_assert_str_eq(c.master_key, w1);
    qn_curve_release(&c);

    /* Without master.pub the master's key is unknown, which is no error. */
    cr_assert_eq(unlink(s_path(tdir, "master.pub")), 0);
    cr_assert_eq(
        qn_curve_load(&c, s_path(dir, "me.key"), tdir, NULL, err, sizeof err),
        0, "%s", err);
    cr_assert_str_eq(c.master_key, "");
    cr_assert_eq(c.ntrusted, 2);
    qn_curve_release(&c);

    /* Comments and blank lines are allowed after the first line. */
    char text[256];
    snprintf(text, sizeof text,
             "# quern CURVE key\n\n# copied from w1\n  public =  %s  \r\n", w1);
    s_write(s_path(tdir, "w1copy.pub"), text);
    cr_assert_eq(
        qn_curve_load(&c, s_path(dir, "me.key"), tdir, NULL, err, sizeof err),
        0, "%s", err);
    cr_assert_eq(c.ntrusted, 2, "a duplicate key was added twice");
    qn_curve_release(&c);

    qn_rmtree(dir);
    free(dir);
}

Test(curve, load_errors_name_the_file)
{
    char *dir = qn_test_tmpdir();
    s_keygen(dir, "good");
    char pub[QN_CURVE_Z85], other[QN_CURVE_Z85];
    s_public_of(dir, "good", pub);
    s_keygen(dir, "other");
    s_public_of(dir, "other", other);
    char *goodkey = s_slurp(s_path(dir, "good.key"));
    char good[4096];
    snprintf(good, sizeof good, "%s", s_path(dir, "good.key"));
    char text[512];

    s_load_fails(s_path(dir, "missing.key"), NULL, NULL, "missing.key",
                 "No such file");
    s_write(s_path(dir, "garbage.key"), "hello, world\n\x01\x02\n");
    s_load_fails(s_path(dir, "garbage.key"), NULL, NULL, "garbage.key",
                 "not a Quern key file");
    s_write(s_path(dir, "empty.key"), "");
    s_load_fails(s_path(dir, "empty.key"), NULL, NULL, "empty.key",
                 "not a Quern key file");
    s_write(s_path(dir, "short.key"),
            "# quern CURVE key\npublic = abc\nsecret = def\n");
    s_load_fails(s_path(dir, "short.key"), NULL, NULL, "short.key:2",
                 "bad Z85");
    /* 40 characters, but '~' and ' ' are not Z85. */
    s_write(s_path(dir, "badchar.key"),
            "# quern CURVE key\n"
            "public = ~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~\n");
    s_load_fails(s_path(dir, "badchar.key"), NULL, NULL, "badchar.key:2",
                 "bad Z85");
    snprintf(text, sizeof text, "# quern CURVE key\npublic = %s\n", pub);
    s_write(s_path(dir, "pubonly.key"), text);
    s_load_fails(s_path(dir, "pubonly.key"), NULL, NULL, "pubonly.key",
                 "no secret key");
    /* A secret key paired with someone else's public key. */
    const char *sec = strstr(goodkey, "secret = ");
    cr_assert_not_null(sec);
    snprintf(text, sizeof text, "# quern CURVE key\npublic = %s\n%s", other,
             sec);
    s_write(s_path(dir, "mixed.key"), text);
    s_load_fails(s_path(dir, "mixed.key"), NULL, NULL, "mixed.key",
                 "does not match");
    snprintf(text, sizeof text, "# quern CURVE key\npublic = %s\nkey = x\n",
             pub);
    s_write(s_path(dir, "unknown.key"), text);
    s_load_fails(s_path(dir, "unknown.key"), NULL, NULL, "unknown.key:3",
                 "unknown setting 'key'");

    /* Trouble in the trusted directory names the directory or the file. */
    s_load_fails(good, s_path(dir, "nodir"), NULL, "nodir", "No such file");
    char tdir[4096];
    snprintf(tdir, sizeof tdir, "%s/trusted", dir);
    cr_assert_eq(mkdir(tdir, 0700), 0);
    s_write(s_path(tdir, "bad.pub"), "# quern CURVE key\npublic = x\n");
    s_load_fails(good, tdir, NULL, "bad.pub:2", "bad Z85");
    cr_assert_eq(unlink(s_path(tdir, "bad.pub")), 0);
    /* A .pub holding a secret key is a leak waiting to happen. */
    s_write(s_path(tdir, "leak.pub"), goodkey);
    s_load_fails(good, tdir, NULL, "leak.pub", "holds a secret key");
    cr_assert_eq(unlink(s_path(tdir, "leak.pub")), 0);
    s_write(s_path(tdir, "master.pub"), "garbage\n");
    s_load_fails(good, tdir, NULL, "master.pub", "not a Quern key file");
    s_load_fails(good, NULL, s_path(dir, "nomaster.pub"), "nomaster.pub",
                 "No such file");

    free(goodkey);
    qn_rmtree(dir);
    free(dir);
}

Test(curve, world_readable_secret_file_is_only_a_warning)
{
    char *dir = qn_test_tmpdir(), err[512] = "";
    s_keygen(dir, "node");
    cr_assert_eq(chmod(s_path(dir, "node.key"), 0644), 0);
    s_capture cap;
    qn_curve c;
    s_capture_begin(&cap, dir);
    int rc =
        qn_curve_load(&c, s_path(dir, "node.key"), NULL, NULL, err, sizeof err);
    char *log = s_capture_end(&cap);
    cr_assert_eq(rc, 0, "%s", err);
    cr_assert_not_null(strstr(log, "node.key"), "%s", log);
    cr_assert_not_null(strstr(log, "world-readable"), "%s", log);
    qn_curve_release(&c);
    free(log);
    qn_rmtree(dir);
    free(dir);
}

/* ---- sockets ------------------------------------------------------------- */

/* A CURVE ROUTER with a ZAP handler and a monitor of its handshakes. */
typedef struct s_server {
    char *dir; /* keys: server.key, trusted/, and clients' keys */
    void *ctx;
    qn_curve keys; /* the server's */
    qn_zap *zap;
    void *router;
    void *mon; /* PAIR: the router's handshake events */
    char endpoint[256];
} s_server;

/* What the server saw while pumping. */
typedef struct s_seen {
    int got;       /* a message arrived */
    char body[64]; /* its last frame */
    char user[64]; /* its User-Id property */
    int events;    /* OR of the monitor events seen */
} s_seen;

static void s_set_int(void *sock, int opt, int v)
{
    cr_assert_eq(zmq_setsockopt(sock, opt, &v, sizeof v), 0);
}

/* How s_server_start sets up the router. */
enum {
    S_CURVE,        /* CURVE, with a ZAP handler: the real thing */
    S_CURVE_NO_ZAP, /* CURVE, and no handler in the context */
    S_NULL,         /* the NULL mechanism with a ZAP domain, and a handler */
};

/* Start a server whose trusted directory holds the keys named in trusted
 * (a NULL-terminated list, made here); untrusted names get keys outside
 * it. */
static void s_server_start(s_server *s, const char *const *trusted,
                           const char *const *untrusted, int mode)
{
    char err[512] = "", tdir[4096];
    memset(s, 0, sizeof *s);
    s->dir = qn_test_tmpdir();
    snprintf(tdir, sizeof tdir, "%s/trusted", s->dir);
    cr_assert_eq(mkdir(tdir, 0700), 0);
    s_keygen(s->dir, "server");
    for (int i = 0; trusted && trusted[i]; i++)
        s_keygen(tdir, trusted[i]);
    for (int i = 0; untrusted && untrusted[i]; i++)
        s_keygen(s->dir, untrusted[i]);
    cr_assert_eq(qn_curve_load(&s->keys, s_path(s->dir, "server.key"), tdir,
                               NULL, err, sizeof err),
                 0, "%s", err);

    s->ctx = zmq_ctx_new();
    cr_assert_not_null(s->ctx);
    /* The handler first: a CURVE server must never be reachable without
     * one. */
    if (mode != S_CURVE_NO_ZAP) {
        s->zap = qn_zap_new(s->ctx, &s->keys, "test", err, sizeof err);
        cr_assert_not_null(s->zap, "%s", err);
    }
    s->router = zmq_socket(s->ctx, ZMQ_ROUTER);
    s_set_int(s->router, ZMQ_LINGER, 0);
    if (mode == S_NULL)
        cr_assert_eq(zmq_setsockopt(s->router, ZMQ_ZAP_DOMAIN, "test", 4), 0);
    else
        cr_assert_eq(qn_curve_server(s->router, &s->keys), 0);
    cr_assert_eq(zmq_socket_monitor(s->router, "inproc://test-monitor",
                                    ZMQ_EVENT_HANDSHAKE_SUCCEEDED |
                                        ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL |
                                        ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL |
                                        ZMQ_EVENT_HANDSHAKE_FAILED_AUTH),
                 0);
    s->mon = zmq_socket(s->ctx, ZMQ_PAIR);
    s_set_int(s->mon, ZMQ_LINGER, 0);
    cr_assert_eq(zmq_connect(s->mon, "inproc://test-monitor"), 0);
    cr_assert_eq(zmq_bind(s->router, "tcp://127.0.0.1:*"), 0);
    size_t len = sizeof s->endpoint;
    cr_assert_eq(
        zmq_getsockopt(s->router, ZMQ_LAST_ENDPOINT, s->endpoint, &len), 0);
}

static void s_server_stop(s_server *s)
{
    zmq_close(s->mon);
    zmq_close(s->router);
    qn_zap_destroy(&s->zap);
    cr_assert_null(s->zap);
    cr_assert_eq(zmq_ctx_term(s->ctx), 0);
    qn_curve_release(&s->keys);
    qn_rmtree(s->dir);
    free(s->dir);
}

/*
 * A DEALER that connects to the server and sends body. With key set, it is
 * a CURVE client with the key pair in dir/key.key (dir/trusted/key.key for
 * a trusted one); without, it uses the NULL mechanism. It does not
 * reconnect, so one refusal is one refusal.
 */
static void *s_client(s_server *s, const char *key, int trusted,
                      const char *body)
{
    void *d = zmq_socket(s->ctx, ZMQ_DEALER);
    s_set_int(d, ZMQ_LINGER, 0);
    s_set_int(d, ZMQ_RECONNECT_IVL, -1);
    if (key) {
        char err[512] = "", file[256];
        qn_curve c;
        snprintf(file, sizeof file, "%s%s.key", trusted ? "trusted/" : "", key);
        cr_assert_eq(qn_curve_load(&c, s_path(s->dir, file), NULL, NULL, err,
                                   sizeof err),
                     0, "%s", err);
        cr_assert_eq(qn_curve_client(d, &c, s->keys.public_key), 0);
        qn_curve_release(&c);
    }
    cr_assert_eq(zmq_connect(d, s->endpoint), 0);
    cr_assert_eq(zmq_send(d, body, strlen(body), ZMQ_DONTWAIT),
                 (int)strlen(body));
    return d;
}

/* Read pending monitor events into seen->events. */
static void s_read_events(s_server *s, s_seen *seen)
{
    for (;;) {
        zmq_msg_t m;
        zmq_msg_init(&m);
        if (zmq_msg_recv(&m, s->mon, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close(&m);
            return;
        }
        if (zmq_msg_size(&m) == 6) {
            uint16_t ev;
            memcpy(&ev, zmq_msg_data(&m), 2);
            seen->events |= ev;
        }
        zmq_msg_close(&m);
    }
}

/* Read one message from the router: its body and User-Id. */
static void s_read_message(s_server *s, s_seen *seen)
{
    int more = 1;
    while (more) {
        zmq_msg_t m;
        zmq_msg_init(&m);
        cr_assert_geq(zmq_msg_recv(&m, s->router, ZMQ_DONTWAIT), 0);
        more = zmq_msg_more(&m);
        if (!more) {
            size_t n = zmq_msg_size(&m);
            if (n >= sizeof seen->body)
                n = sizeof seen->body - 1;
            memcpy(seen->body, zmq_msg_data(&m), n);
            seen->body[n] = '\0';
            const char *user = zmq_msg_gets(&m, "User-Id");
            snprintf(seen->user, sizeof seen->user, "%s", user ? user : "");
        }
        zmq_msg_close(&m);
    }
    seen->got++;
}

/*
 * The test's event loop: poll the ZAP handler, the router and the monitor
 * for at most ms milliseconds, stopping early once a message has arrived,
 * once the handler has refused want_refused requests (if not 0), or once
 * one of want_events has been seen (if not 0).
 */
static void s_pump(s_server *s, int ms, uint64_t want_refused, int want_events,
                   s_seen *seen)
{
    int64_t deadline = qn_now_ms() + ms;
    for (;;) {
        if (seen->got)
            return;
        if (want_refused && s->zap && qn_zap_refused(s->zap) >= want_refused)
            return;
        if (want_events && (seen->events & want_events))
            return;
        int64_t left = deadline - qn_now_ms();
        if (left <= 0)
            return;
        zmq_pollitem_t items[] = {
            {s->router, 0, ZMQ_POLLIN, 0},
            {s->mon, 0, ZMQ_POLLIN, 0},
            {s->zap ? qn_zap_socket(s->zap) : NULL, 0, ZMQ_POLLIN, 0},
        };
        int rc = zmq_poll(items, s->zap ? 3 : 2, (long)left);
        cr_assert(rc >= 0 || errno == EINTR, "zmq_poll: %s",
                  zmq_strerror(errno));
        if (rc <= 0)
            continue;
        if (s->zap && (items[2].revents & ZMQ_POLLIN))
            qn_zap_handle(s->zap);
        if (items[1].revents & ZMQ_POLLIN)
            s_read_events(s, seen);
        if (items[0].revents & ZMQ_POLLIN)
            s_read_message(s, seen);
    }
}

Test(curve, zap_accepts_a_trusted_client_and_names_its_key)
{
    static const char *const trusted[] = {"client", NULL};
    s_server s;
    s_server_start(&s, trusted, NULL, S_CURVE);
    char client_key[QN_CURVE_Z85];
    s_public_of(s_path(s.dir, "trusted"), "client", client_key);

    void *d = s_client(&s, "client", 1, "hello");
    s_seen seen = {0};
    s_pump(&s, WAIT_MS, 0, 0, &seen);
    cr_assert_eq(seen.got, 1, "no message within %d ms", WAIT_MS);
    cr_assert_str_eq(seen.body, "hello");
    cr_assert_str_eq(seen.user, client_key);
    cr_assert_eq(qn_zap_refused(s.zap), 0);

    zmq_close(d);
    s_server_stop(&s);
}

Test(curve, zap_refuses_an_untrusted_client_and_logs_it)
{
    static const char *const trusted[] = {"friend", NULL};
    static const char *const untrusted[] = {"stranger", NULL};
    s_server s;
    s_server_start(&s, trusted, untrusted, S_CURVE);
    char stranger[QN_CURVE_Z85];
    s_public_of(s.dir, "stranger", stranger);

    s_capture cap;
    s_capture_begin(&cap, s.dir);
    void *d = s_client(&s, "stranger", 0, "let me in");
    s_seen seen = {0};
    s_pump(&s, WAIT_MS, 1, 0, &seen);
    cr_assert_eq(qn_zap_refused(s.zap), 1, "no refusal within %d ms", WAIT_MS);
    /* The handshake fails for want of authentication, and a little longer
     * brings no message either. */
    s_pump(&s, WAIT_MS, 0, ZMQ_EVENT_HANDSHAKE_FAILED_AUTH, &seen);
    s_pump(&s, 200, 0, 0, &seen);
    char *log = s_capture_end(&cap);
    cr_assert(seen.events & ZMQ_EVENT_HANDSHAKE_FAILED_AUTH);
    cr_assert_not(seen.events & ZMQ_EVENT_HANDSHAKE_SUCCEEDED);
    cr_assert_eq(seen.got, 0, "an untrusted client got through");
    cr_assert_eq(qn_zap_refused(s.zap), 1);
    cr_assert_not_null(strstr(log, "127.0.0.1"), "%s", log);
    cr_assert_not_null(strstr(log, stranger), "%s", log);
    cr_assert_not_null(strstr(log, "not trusted"), "%s", log);

    zmq_close(d);
    free(log);
    s_server_stop(&s);
}

Test(curve, zap_refusals_are_logged_once_per_address)
{
    static const char *const untrusted[] = {"x1", "x2", "x3", NULL};
    s_server s;
    s_server_start(&s, NULL, untrusted, S_CURVE);

    s_capture cap;
    s_capture_begin(&cap, s.dir);
    void *d[3];
    for (int i = 0; i < 3; i++)
        d[i] = s_client(&s, untrusted[i], 0, "flood");
    s_seen seen = {0};
    s_pump(&s, WAIT_MS, 3, 0, &seen);
    char *log = s_capture_end(&cap);
    cr_assert_eq(qn_zap_refused(s.zap), 3);
    cr_assert_eq(seen.got, 0);
    cr_assert_eq(s_count(log, "test: refused"), 1, "%s", log);

    for (int i = 0; i < 3; i++)
        zmq_close(d[i]);
    free(log);
    s_server_stop(&s);
}

Test(curve, a_client_without_curve_cannot_talk)
{
    static const char *const trusted[] = {"client", NULL};
    s_server s;
    s_server_start(&s, trusted, NULL, S_CURVE);

    void *d = s_client(&s, NULL, 0, "plain");
    s_seen seen = {0};
    s_pump(&s, WAIT_MS, 0,
           ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL |
               ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL |
               ZMQ_EVENT_HANDSHAKE_FAILED_AUTH,
           &seen);
    cr_assert_neq(seen.events, 0, "no failed handshake within %d ms", WAIT_MS);
    s_pump(&s, 200, 0, 0, &seen);
    cr_assert_eq(seen.got, 0, "a NULL-mechanism client got through");
    cr_assert_not(seen.events & ZMQ_EVENT_HANDSHAKE_SUCCEEDED);

    zmq_close(d);
    s_server_stop(&s);
}

/* The handler refuses any other mechanism, should a socket in the same
 * context ask it about one. */
Test(curve, zap_refuses_other_mechanisms)
{
    s_server s;
    s_server_start(&s, NULL, NULL, S_NULL);

    s_capture cap;
    s_capture_begin(&cap, s.dir);
    void *d = s_client(&s, NULL, 0, "plain");
    s_seen seen = {0};
    s_pump(&s, WAIT_MS, 1, 0, &seen);
    s_pump(&s, WAIT_MS, 0, ZMQ_EVENT_HANDSHAKE_FAILED_AUTH, &seen);
    s_pump(&s, 200, 0, 0, &seen);
    char *log = s_capture_end(&cap);
    cr_assert_eq(qn_zap_refused(s.zap), 1);
    cr_assert(seen.events & ZMQ_EVENT_HANDSHAKE_FAILED_AUTH);
    cr_assert_eq(seen.got, 0, "a NULL-mechanism client got through");
    cr_assert_not_null(strstr(log, "refused a NULL client from 127.0.0.1"),
                       "%s", log);

    zmq_close(d);
    free(log);
    s_server_stop(&s);
}

/* Without a handler a CURVE server must not fall back to letting every
 * client in (libzmq's default). */
Test(curve, a_server_without_zap_handler_refuses_everyone)
{
    static const char *const trusted[] = {"client", NULL};
    s_server s;
    s_server_start(&s, trusted, NULL, S_CURVE_NO_ZAP);

    void *d = s_client(&s, "client", 1, "hello");
    s_seen seen = {0};
    s_pump(&s, WAIT_MS, 0,
           ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL |
               ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL |
               ZMQ_EVENT_HANDSHAKE_FAILED_AUTH,
           &seen);
    s_pump(&s, 200, 0, 0, &seen);
    cr_assert_eq(seen.got, 0, "a client got in with no ZAP handler");
    cr_assert_not(seen.events & ZMQ_EVENT_HANDSHAKE_SUCCEEDED);

    cr_assert_neq(seen.events, 0, "no failed handshake within %d ms", WAIT_MS);

    zmq_close(d);
    s_server_stop(&s);
}

Test(curve, one_zap_handler_per_context)
{
    char err[512] = "";
    qn_curve c;
    memset(&c, 0, sizeof c);
    void *ctx = zmq_ctx_new();
    qn_zap *a = qn_zap_new(ctx, &c, "a", err, sizeof err);
    cr_assert_not_null(a, "%s", err);
    qn_zap *b = qn_zap_new(ctx, &c, "b", err, sizeof err);
    cr_assert_null(b);
    cr_assert_not_null(strstr(err, "zeromq.zap.01"), "%s", err);
    /* Handling with nothing pending returns at once. */
    qn_zap_handle(a);
    cr_assert_eq(qn_zap_refused(a), 0);
    qn_zap_destroy(&a);
    cr_assert_null(a);
    qn_zap_destroy(&a);
    qn_zap_destroy(NULL);
    cr_assert_eq(zmq_ctx_term(ctx), 0);
}

Test(curve, client_needs_a_valid_server_key)
{
    char *dir = qn_test_tmpdir(), err[512] = "";
    s_keygen(dir, "node");
    qn_curve c;
    cr_assert_eq(
        qn_curve_load(&c, s_path(dir, "node.key"), NULL, NULL, err, sizeof err),
        0, "%s", err);
    void *ctx = zmq_ctx_new();
    void *d = zmq_socket(ctx, ZMQ_DEALER);
    /* No master key known, and a key that is not Z85. */
    cr_assert_eq(qn_curve_client(d, &c, NULL), -EINVAL);
    cr_assert_eq(qn_curve_client(d, &c, "not a key"), -EINVAL);
    cr_assert_eq(qn_curve_client(d, &c, c.public_key), 0);
    zmq_close(d);
    cr_assert_eq(zmq_ctx_term(ctx), 0);
    qn_curve_release(&c);
    qn_rmtree(dir);
    free(dir);
}
