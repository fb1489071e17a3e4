/*
 * curve.c -- CURVE key files and a ZAP handler; see curve.h.
 */
#include "curve.h"

#include "droplog.h"
#include "log.h"
#include "util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zmq.h>

#define KEY_HEADER "# quern CURVE key"
#define KEYFILE_MAX 4096 /* bytes; a key file is about 120 */
#define Z85_LEN 40       /* characters of Z85 in a 32-byte key */

#define ZAP_ENDPOINT "inproc://zeromq.zap.01"
#define ZAP_DOMAIN "quern" /* the ZAP domain of our servers */
#define ZAP_MAX_FRAMES 8   /* frames of a request we look at */

/*
 * libzmq's ZMQ_ZAP_ENFORCE_DOMAIN is a draft option, so zmq.h hides it,
 * but 4.3 accepts it: it makes a CURVE server refuse every client when no
 * ZAP handler is bound, instead of accepting all of them.
 */
#ifndef ZMQ_ZAP_ENFORCE_DOMAIN
#define ZMQ_ZAP_ENFORCE_DOMAIN 93
#endif

/* ---- Z85 keys ------------------------------------------------------------ */

static const char s_z85_chars[] = "0123456789"
                                  "abcdefghijklmnopqrstuvwxyz"
                                  "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                  ".-:+=^!/*?&<>()[]{}@%$#";

/*
 * Check that text[0..len) is the Z85 form of a 32-byte key and write its
 * canonical form (it decodes and encodes back to itself) to out. Returns 0
 * or -1.
 */
static int s_z85_canon(const char *text, size_t len, char out[QN_CURVE_Z85])
{
    char in[QN_CURVE_Z85];
    uint8_t raw[32];
    int rc = -1;
    if (len != Z85_LEN)
        return -1;
    for (size_t i = 0; i < len; i++)
        if (text[i] == '\0' || !strchr(s_z85_chars, text[i]))
            return -1;
    memcpy(in, text, len);
    in[len] = '\0';
    if (zmq_z85_decode(raw, in) && zmq_z85_encode(out, raw, sizeof raw) &&
        memcmp(out, in, Z85_LEN) == 0)
        rc = 0;
    explicit_bzero(raw, sizeof raw);
    explicit_bzero(in, sizeof in);
    return rc;
}

/* Is s (NUL-terminated) a canonical Z85 key? */
static int s_z85_ok(const char *s)
{
    char tmp[QN_CURVE_Z85];
    return s && s_z85_canon(s, strlen(s), tmp) == 0;
}

/* ---- key files ----------------------------------------------------------- */

/* What a key file must say about a secret key. */
enum {
    S_SECRET_REQUIRED,  /* a .key file of our own */
    S_SECRET_FORBIDDEN, /* a .pub file */
    S_SECRET_IGNORED,   /* either: we only want the public key */
};

/* Strip spaces, tabs and a carriage return from both ends of [*b, *e). */
static void s_trim(const char **b, const char **e)
{
    while (*b < *e && (**b == ' ' || **b == '\t'))
        (*b)++;
    while (*e > *b && ((*e)[-1] == ' ' || (*e)[-1] == '\t' || (*e)[-1] == '\r'))
        (*e)--;
}

/*
 * Read a key file line by line: the header line first, then "public = "
 * and "secret = " lines, at most one each, each 40 characters of canonical
 * Z85; comments and blank lines skipped (curve.h).
 */
int qn_curve_parse(const char *path, const char *buf, size_t len,
                   char pub[QN_CURVE_Z85], char sec[QN_CURVE_Z85], char *err,
                   size_t errcap)
{
    const char *p = buf, *end = buf + len;
    int lineno = 0;
    pub[0] = sec[0] = '\0';
    if (len == 0) {
        snprintf(err, errcap, "%s: empty file, not a Quern key file", path);
        return -1;
    }
    if (memchr(buf, '\0', len)) {
        snprintf(err, errcap, "%s: binary data, not a Quern key file", path);
        return -1;
    }
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *b = p, *e = nl ? nl : end;
        p = nl ? nl + 1 : end;
        lineno++;
        s_trim(&b, &e);
        if (lineno == 1) {
            if ((size_t)(e - b) != strlen(KEY_HEADER) ||
                memcmp(b, KEY_HEADER, strlen(KEY_HEADER)) != 0) {
                snprintf(err, errcap,
                         "%s: not a Quern key file (the first line is not "
                         "'" KEY_HEADER "')",
                         path);
                return -1;
            }
            continue;
        }
        if (b == e || *b == '#')
            continue;

        const char *eq = memchr(b, '=', (size_t)(e - b));
        if (!eq) {
            snprintf(err, errcap,
                     "%s:%d: not a Quern key file (expected 'public = ...' "
                     "or 'secret = ...')",
                     path, lineno);
            return -1;
        }
        const char *nb = b, *ne = eq, *vb = eq + 1, *ve = e;
        s_trim(&nb, &ne);
        s_trim(&vb, &ve);
        char *dst;
        const char *what;
        if ((size_t)(ne - nb) == 6 && memcmp(nb, "public", 6) == 0) {
            dst = pub;
            what = "public";
        } else if ((size_t)(ne - nb) == 6 && memcmp(nb, "secret", 6) == 0) {
            dst = sec;
            what = "secret";
        } else {
            snprintf(err, errcap, "%s:%d: unknown setting '%.*s'", path, lineno,
                     (int)(ne - nb > 32 ? 32 : ne - nb), nb);
            return -1;
        }
        if (dst[0]) {
            snprintf(err, errcap, "%s:%d: a second %s key", path, lineno, what);
            return -1;
        }
        if (s_z85_canon(vb, (size_t)(ve - vb), dst) != 0) {
            snprintf(err, errcap,
                     "%s:%d: bad Z85 in the %s key (want 40 characters of "
                     "Z85)",
                     path, lineno, what);
            return -1;
        }
    }
    if (!pub[0]) {
        snprintf(err, errcap, "%s: no public key in this key file", path);
        return -1;
    }
    return 0;
}

/*
 * Read the key file at path into pub (and sec, under rule) and its status
 * into *st. Returns 0 or -1 with err naming the file.
 */
static int s_read_keyfile(const char *path, int rule, char pub[QN_CURVE_Z85],
                          char sec[QN_CURVE_Z85], struct stat *st, char *err,
                          size_t errcap)
{
    char buf[KEYFILE_MAX + 2];
    size_t len = 0;
    int rc = -1;
    pub[0] = sec[0] = '\0';
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) {
        snprintf(err, errcap, "%s: %s", path, strerror(errno));
        return -1;
    }
    if (fstat(fd, st) != 0) {
        snprintf(err, errcap, "%s: %s", path, strerror(errno));
        goto done;
    }
    if (!S_ISREG(st->st_mode)) {
        snprintf(err, errcap, "%s: not a regular file", path);
        goto done;
    }
    while (len < KEYFILE_MAX + 1) {
        ssize_t n = read(fd, buf + len, KEYFILE_MAX + 1 - len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            snprintf(err, errcap, "%s: %s", path, strerror(errno));
            goto done;
        }
        if (n == 0)
            break;
        len += (size_t)n;
    }
    if (len > KEYFILE_MAX) {
        snprintf(err, errcap, "%s: not a Quern key file (larger than %d bytes)",
                 path, KEYFILE_MAX);
        goto done;
    }
    if (qn_curve_parse(path, buf, len, pub, sec, err, errcap) != 0)
        goto done;

    if (rule == S_SECRET_REQUIRED && !sec[0]) {
        snprintf(err, errcap,
                 "%s: no secret key in this key file (a .pub file?)", path);
        goto done;
    }
    if (rule == S_SECRET_FORBIDDEN && sec[0]) {
        snprintf(err, errcap,
                 "%s: holds a secret key; a .pub file must hold only the "
                 "public key",
                 path);
        goto done;
    }
    if (sec[0]) {
        char derived[QN_CURVE_Z85];
        if (zmq_curve_public(derived, sec) != 0 || strcmp(derived, pub) != 0) {
            snprintf(err, errcap,
                     "%s: the public key does not match the secret key", path);
            goto done;
        }
    }
    if (rule != S_SECRET_REQUIRED)
        explicit_bzero(sec, QN_CURVE_Z85);
    rc = 0;
done:
    if (rc != 0) {
        explicit_bzero(pub, QN_CURVE_Z85);
        explicit_bzero(sec, QN_CURVE_Z85);
    }
    explicit_bzero(buf, sizeof buf);
    close(fd);
    return rc;
}

/*
 * Create path (which must not exist) with mode and write text to it.
 * Returns 0 or -1 with err; a partly written file is removed.
 */
static int s_write_new(const char *path, mode_t mode, const char *text,
                       char *err, size_t errcap)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
    if (fd < 0) {
        if (errno == EEXIST)
            snprintf(err, errcap, "%s: already exists; not overwriting it",
                     path);
        else
            snprintf(err, errcap, "%s: %s", path, strerror(errno));
        return -1;
    }
    int rc = qn_write_all(fd, text, strlen(text));
    if (rc == 0 && fsync(fd) != 0)
        rc = -errno;
    if (close(fd) != 0 && rc == 0)
        rc = -errno;
    if (rc != 0) {
        snprintf(err, errcap, "%s: %s", path, qn_strerror(rc));
        unlink(path);
        return -1;
    }
    return 0;
}

int qn_curve_keygen(const char *prefix, char *err, size_t errcap)
{
    char pub[QN_CURVE_Z85], sec[QN_CURVE_Z85];
    char key_path[PATH_MAX], pub_path[PATH_MAX];
    char text[256];
    int rc = -1;

    if ((size_t)snprintf(key_path, sizeof key_path, "%s.key", prefix) >=
            sizeof key_path ||
        (size_t)snprintf(pub_path, sizeof pub_path, "%s.pub", prefix) >=
            sizeof pub_path) {
        snprintf(err, errcap, "%s: path too long", prefix);
        return -1;
    }
    if (zmq_curve_keypair(pub, sec) != 0) {
        snprintf(err, errcap, "%s: cannot make a CURVE key pair: %s", key_path,
                 zmq_strerror(errno));
        return -1;
    }

    /* Refuse early if the .pub exists, so we do not leave a lone .key. */
    struct stat st;
    if (lstat(pub_path, &st) == 0) {
        snprintf(err, errcap, "%s: already exists; not overwriting it",
                 pub_path);
        goto done;
    }

    snprintf(text, sizeof text, KEY_HEADER "\npublic = %s\nsecret = %s\n", pub,
             sec);
    if (s_write_new(key_path, 0600, text, err, errcap) != 0)
        goto done;
    snprintf(text, sizeof text, KEY_HEADER "\npublic = %s\n", pub);
    if (s_write_new(pub_path, 0644, text, err, errcap) != 0) {
        unlink(key_path);
        goto done;
    }
    rc = 0;
done:
    explicit_bzero(sec, sizeof sec);
    explicit_bzero(text, sizeof text);
    return rc;
}

/* ---- loading ------------------------------------------------------------- */

/* Add key to c's trusted set unless it is there already. */
static void s_trust(qn_curve *c, const char *key)
{
    if (qn_curve_trusts(c, key))
        return;
    QN_GROW(c->trusted, c->cap_trusted, c->ntrusted + 1);
    memcpy(c->trusted[c->ntrusted++], key, QN_CURVE_Z85);
}

/* Is name "something.pub" (not hidden)? */
static int s_is_pub_name(const char *name)
{
    size_t n = strlen(name);
    return name[0] != '.' && n > 4 && strcmp(name + n - 4, ".pub") == 0;
}

/* Trust every *.pub in dir. Returns 0 or -1 with err. */
static int s_load_trusted(qn_curve *c, const char *dir, char *err,
                          size_t errcap)
{
    DIR *d = opendir(dir);
    if (!d) {
        snprintf(err, errcap, "%s: %s", dir, strerror(errno));
        return -1;
    }
    int rc = 0;
    struct dirent *de;
    for (;;) {
        errno = 0;
        de = readdir(d);
        if (!de) {
            if (errno != 0) {
                snprintf(err, errcap, "%s: %s", dir, strerror(errno));
                rc = -1;
            }
            break;
        }
        if (!s_is_pub_name(de->d_name))
            continue;
        char path[PATH_MAX], pub[QN_CURVE_Z85], sec[QN_CURVE_Z85];
        struct stat st;
        if ((size_t)snprintf(path, sizeof path, "%s/%s", dir, de->d_name) >=
            sizeof path) {
            snprintf(err, errcap, "%s/%s: path too long", dir, de->d_name);
            rc = -1;
            break;
        }
        if (s_read_keyfile(path, S_SECRET_FORBIDDEN, pub, sec, &st, err,
                           errcap) != 0) {
            rc = -1;
            break;
        }
        s_trust(c, pub);
    }
    closedir(d);
    return rc;
}

int qn_curve_load(qn_curve *c, const char *secret_file, const char *trusted_dir,
                  const char *master_file, char *err, size_t errcap)
{
    char sec[QN_CURVE_Z85];
    struct stat st;
    memset(c, 0, sizeof *c);

    if (!secret_file || !*secret_file) {
        snprintf(err, errcap, "no secret key file given");
        return -1;
    }
    if (s_read_keyfile(secret_file, S_SECRET_REQUIRED, c->public_key,
                       c->secret_key, &st, err, errcap) != 0)
        goto fail;
    if (st.st_mode & S_IROTH)
        qn_warn("%s: the secret key file is world-readable (mode %03o); "
                "chmod 600 it",
                secret_file, (unsigned)(st.st_mode & 0777));

    if (trusted_dir && s_load_trusted(c, trusted_dir, err, errcap) != 0)
        goto fail;

    if (master_file) {
        if (s_read_keyfile(master_file, S_SECRET_IGNORED, c->master_key, sec,
                           &st, err, errcap) != 0)
            goto fail;
    } else if (trusted_dir) {
        char path[PATH_MAX];
        if ((size_t)snprintf(path, sizeof path, "%s/master.pub", trusted_dir) >=
            sizeof path) {
            snprintf(err, errcap, "%s/master.pub: path too long", trusted_dir);
            goto fail;
        }
        /* Absent is fine (the master itself, or a worker told the key
         * another way); anything else wrong with it is an error. */
        if (lstat(path, &st) == 0 || errno != ENOENT) {
            if (s_read_keyfile(path, S_SECRET_FORBIDDEN, c->master_key, sec,
                               &st, err, errcap) != 0)
                goto fail;
        }
    }
    return 0;
fail:
    qn_curve_release(c);
    return -1;
}

void qn_curve_release(qn_curve *c)
{
    if (!c)
        return;
    free(c->trusted);
    explicit_bzero(c, sizeof *c);
}

int qn_curve_trusts(const qn_curve *c, const char *z85_public)
{
    if (!c || !z85_public)
        return 0;
    for (size_t i = 0; i < c->ntrusted; i++)
        if (strcmp(c->trusted[i], z85_public) == 0)
            return 1;
    return 0;
}

/* ---- sockets ------------------------------------------------------------- */

int qn_curve_server(void *sock, const qn_curve *c)
{
    int one = 1;
    if (!s_z85_ok(c->secret_key))
        return -EINVAL;
    if (zmq_setsockopt(sock, ZMQ_CURVE_SERVER, &one, sizeof one) != 0 ||
        zmq_setsockopt(sock, ZMQ_CURVE_SECRETKEY, c->secret_key, Z85_LEN) != 0)
        return -errno;
    /* With a ZAP domain set, libzmq asks the handler about every client;
     * with the domain enforced, it refuses them all when no handler is
     * bound, where it would otherwise let them all in. A libzmq without
     * the (draft) enforce option still asks a handler that is there. */
    static const char domain[] = ZAP_DOMAIN;
    if (zmq_setsockopt(sock, ZMQ_ZAP_DOMAIN, domain, sizeof domain - 1) != 0)
        return -errno;
    if (zmq_setsockopt(sock, ZMQ_ZAP_ENFORCE_DOMAIN, &one, sizeof one) != 0 &&
        errno != EINVAL)
        return -errno;
    return 0;
}

int qn_curve_client(void *sock, const qn_curve *c, const char *server_public)
{
    if (!server_public)
        server_public = c->master_key;
    if (!s_z85_ok(server_public) || !s_z85_ok(c->public_key) ||
        !s_z85_ok(c->secret_key))
        return -EINVAL;
    if (zmq_setsockopt(sock, ZMQ_CURVE_SERVERKEY, server_public, Z85_LEN) !=
            0 ||
        zmq_setsockopt(sock, ZMQ_CURVE_PUBLICKEY, c->public_key, Z85_LEN) !=
            0 ||
        zmq_setsockopt(sock, ZMQ_CURVE_SECRETKEY, c->secret_key, Z85_LEN) != 0)
        return -errno;
    return 0;
}

/* ---- the ZAP handler ----------------------------------------------------- */

struct qn_zap {
    void *sock;        /* REP, bound at ZAP_ENDPOINT */
    const qn_curve *c; /* whom we trust; owned by the caller */
    char who[64];      /* the process, for log lines */
    qn_droplog refusals;
};

qn_zap *qn_zap_new(void *zmq_ctx, const qn_curve *c, const char *who, char *err,
                   size_t errcap)
{
    qn_zap *z = qn_calloc(1, sizeof *z);
    int zero = 0;
    z->c = c;
    snprintf(z->who, sizeof z->who, "%s", who && *who ? who : "quern");
    qn_droplog_init(&z->refusals, z->who, "refused");
    z->sock = zmq_socket(zmq_ctx, ZMQ_REP);
    if (!z->sock) {
        snprintf(err, errcap, "cannot make the ZAP socket: %s",
                 zmq_strerror(errno));
        goto fail;
    }
    zmq_setsockopt(z->sock, ZMQ_LINGER, &zero, sizeof zero);
    if (zmq_bind(z->sock, ZAP_ENDPOINT) != 0) {
        if (errno == EADDRINUSE)
            snprintf(err, errcap,
                     "%s: this ZeroMQ context already has a ZAP handler",
                     ZAP_ENDPOINT);
        else
            snprintf(err, errcap, "%s: %s", ZAP_ENDPOINT, zmq_strerror(errno));
        goto fail;
    }
    return z;
fail:
    qn_zap_destroy(&z);
    return NULL;
}

void *qn_zap_socket(qn_zap *z)
{
    return z->sock;
}

uint64_t qn_zap_refused(const qn_zap *z)
{
    return z->refusals.total;
}

void qn_zap_destroy(qn_zap **self_p)
{
    if (!self_p || !*self_p)
        return;
    qn_zap *z = *self_p;
    if (z->sock)
        zmq_close(z->sock);
    free(z);
    *self_p = NULL;
}

/* Copy frame f into out (cap bytes) as printable text. */
static void s_frame_text(zmq_msg_t *f, char *out, size_t cap)
{
    size_t n = zmq_msg_size(f);
    const unsigned char *p = zmq_msg_data(f);
    if (n > cap - 1)
        n = cap - 1;
    for (size_t i = 0; i < n; i++)
        out[i] = p[i] >= 0x20 && p[i] < 0x7f ? (char)p[i] : '?';
    out[n] = '\0';
}

/* Does frame f hold exactly the string s? */
static int s_frame_is(zmq_msg_t *f, const char *s)
{
    size_t n = strlen(s);
    return zmq_msg_size(f) == n && memcmp(zmq_msg_data(f), s, n) == 0;
}

static void s_refuse_log(qn_zap *z, const char *addr, const char *what,
                         const char *why)
{
    qn_droplog_add(&z->refusals, 0, addr, what, why);
}

/* Send one reply frame; more says whether others follow. */
static int s_send(void *sock, const void *data, size_t n, int more)
{
    int flags = ZMQ_DONTWAIT | (more ? ZMQ_SNDMORE : 0);
    return zmq_send(sock, data, n, flags) < 0 ? -1 : 0;
}

/* Answer the request in f[0..n) (nall frames in all). */
static void s_answer(qn_zap *z, zmq_msg_t *f, int n, int nall)
{
    const char *status = "400", *text = "malformed ZAP request";
    char user[QN_CURVE_Z85] = "";
    char addr[64] = "?", mech[24] = "?", what[96];

    if (n >= 6) {
        s_frame_text(&f[3], addr, sizeof addr);
        s_frame_text(&f[5], mech, sizeof mech);
    }
    if (n < 6 || nall > ZAP_MAX_FRAMES || !s_frame_is(&f[0], "1.0")) {
        snprintf(what, sizeof what, "a malformed ZAP request");
        s_refuse_log(z, addr, what, text);
    } else if (!s_frame_is(&f[5], "CURVE")) {
        text = "CURVE required";
        snprintf(what, sizeof what, "a %s client", mech);
        s_refuse_log(z, addr, what, text);
    } else if (n != 7 || zmq_msg_size(&f[6]) != 32 ||
               !zmq_z85_encode(user, zmq_msg_data(&f[6]), 32)) {
        user[0] = '\0';
        snprintf(what, sizeof what, "a CURVE client");
        s_refuse_log(z, addr, what, text);
    } else if (!qn_curve_trusts(z->c, user)) {
        text = "key not trusted";
        snprintf(what, sizeof what, "CURVE key %s", user);
        user[0] = '\0';
        s_refuse_log(z, addr, what, text);
    } else {
        status = "200";
        text = "OK";
        qn_debug("%s: accepted CURVE key %s from %s", z->who, user, addr);
    }

    /* A REP socket must answer before it can read the next request, so
     * even a malformed one gets a reply. */
    const void *id = n >= 2 ? zmq_msg_data(&f[1]) : "";
    size_t idlen = n >= 2 ? zmq_msg_size(&f[1]) : 0;
    if (s_send(z->sock, "1.0", 3, 1) != 0 ||
        s_send(z->sock, id, idlen, 1) != 0 ||
        s_send(z->sock, status, 3, 1) != 0 ||
        s_send(z->sock, text, strlen(text), 1) != 0 ||
        s_send(z->sock, user, strlen(user), 1) != 0 ||
        s_send(z->sock, "", 0, 0) != 0)
        qn_warn("%s: cannot answer a ZAP request: %s", z->who,
                zmq_strerror(errno));
}

void qn_zap_handle(qn_zap *z)
{
    for (;;) {
        zmq_msg_t f[ZAP_MAX_FRAMES];
        int n = 0, nall = 0, more = 1;

        /* A request arrives whole, so once its first frame is here the
         * rest are too. Frames past ZAP_MAX_FRAMES are read and dropped. */
        while (more) {
            zmq_msg_t spare, *m = n < ZAP_MAX_FRAMES ? &f[n] : &spare;
            zmq_msg_init(m);
            if (zmq_msg_recv(m, z->sock, ZMQ_DONTWAIT) < 0) {
                zmq_msg_close(m);
                break;
            }
            nall++;
            more = zmq_msg_more(m);
            if (m == &spare)
                zmq_msg_close(m);
            else
                n++;
        }
        if (nall > 0)
            s_answer(z, f, n, nall);
        for (int i = 0; i < n; i++)
            zmq_msg_close(&f[i]);
        if (more)
            return; /* nothing (more) to read */
    }
}
