/*
 * split.c -- see split.h.
 */
#include "split.h"

#include "decomp.h"
#include "util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <unistd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

typedef struct {
    char *path, *name;
    uint64_t size;
    int codec; /* decomp.h: compressed, never cut */
} s_file;

typedef struct {
    s_file *v;
    size_t n, cap;
} s_files;

/*
 * Add a file, looking at its first bytes: a compressed one is read whole
 * and decompressed by its map. 0, or -1 with err naming the file when it
 * cannot be read (it would fail its map anyway, after the job began).
 */
static int s_files_add(s_files *fs, const char *path, const char *name,
                       uint64_t size, char *err, size_t errcap)
{
    qn_decomp_kind codec = QN_DECOMP_PLAIN;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    int rc = fd < 0 ? -errno : qn_decomp_sniff_fd(fd, &codec);
    if (fd >= 0)
        close(fd);
    if (rc < 0) {
        snprintf(err, errcap, "input %s: cannot read it: %s", name,
                 strerror(-rc));
        return -1;
    }
    QN_GROW(fs->v, fs->cap, fs->n + 1);
    fs->v[fs->n++] = (s_file){qn_strdup(path), qn_strdup(name), size, codec};
    return 0;
}

static int s_name_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Add the regular files of a folder, sorted by name. */
static int s_add_dir(s_files *fs, const char *given, const char *path,
                     char *err, size_t errcap)
{
    DIR *d = opendir(path);
    if (!d) {
        snprintf(err, errcap, "input %s: %s", given, strerror(errno));
        return -1;
    }
    char **names = NULL;
    size_t n = 0, cap = 0;
    struct dirent *e;
    int rc = 0;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.' || e->d_name[0] == '_')
            continue;
        if (!qn_utf8_valid(e->d_name)) {
            /* File names travel in messages, which carry UTF-8 only. */
            char shown[256];
            snprintf(shown, sizeof shown, "%s", e->d_name);
            qn_utf8_sanitize(shown);
            snprintf(err, errcap,
                     "input %s: file name '%s' is not valid UTF-8; rename it",
                     given, shown);
            rc = -1;
            break;
        }
        QN_GROW(names, cap, n + 1);
        names[n++] = qn_strdup(e->d_name);
    }
    closedir(d);
    if (n > 1)
        qsort(names, n, sizeof *names, s_name_cmp);
    for (size_t i = 0; i < n; i++) {
        qn_buf p = {0}, g = {0};
        qn_buf_printf(&p, "%s/%s", path, names[i]);
        size_t gl = strlen(given);
        qn_buf_printf(&g, "%s%s%s", given,
                      gl && given[gl - 1] == '/' ? "" : "/", names[i]);
        struct stat st;
        if (rc == 0 && stat(p.data, &st) < 0) {
            snprintf(err, errcap, "input %s: %s", g.data, strerror(errno));
            rc = -1;
        } else if (rc == 0 && S_ISREG(st.st_mode)) {
            rc = s_files_add(fs, p.data, g.data, (uint64_t)st.st_size, err,
                             errcap);
        }
        qn_buf_release(&p);
        qn_buf_release(&g);
        free(names[i]);
    }
    free(names);
    return rc;
}

qn_split *qn_splits_add(qn_splits *out)
{
    QN_GROW(out->splits, out->cap, out->n + 1);
    qn_split *sp = &out->splits[out->n++];
    memset(sp, 0, sizeof *sp);
    return sp;
}

static void s_add_piece(qn_split *sp, const s_file *f, uint64_t off,
                        uint64_t len)
{
    QN_GROW(sp->pieces, sp->cap, sp->n + 1);
    sp->pieces[sp->n++] = (qn_piece){.path = qn_strdup(f->path),
                                     .name = qn_strdup(f->name),
                                     .offset = off,
                                     .length = len,
                                     .file_size = f->size,
                                     .codec = f->codec};
    sp->bytes += len;
}

/*
 * List every input file (folders expanded, sorted), refuse a split count
 * over the limit before making them, then group small files into splits
 * up to the split size and cut large ones into ranges of it.
 */
int qn_split_inputs(const char *const *given, const char *const *paths,
                    size_t n, const qn_split_opts *o, qn_splits *out, char *err,
                    size_t errcap)
{
    memset(out, 0, sizeof *out);
    s_files fs = {0};
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        struct stat st;
        if (stat(paths[i], &st) < 0) {
            snprintf(err, errcap, "input %s: %s", given[i], strerror(errno));
            rc = -1;
        } else if (S_ISDIR(st.st_mode)) {
            rc = s_add_dir(&fs, given[i], paths[i], err, errcap);
        } else if (S_ISREG(st.st_mode)) {
            rc = s_files_add(&fs, paths[i], given[i], (uint64_t)st.st_size, err,
                             errcap);
        } else {
            snprintf(err, errcap, "input %s: not a file or a folder", given[i]);
            rc = -1;
        }
    }
    if (rc == 0 && fs.n == 0) {
        snprintf(err, errcap, "input %s: no files found",
                 n ? given[0] : "(none)");
        rc = -1;
    }
    uint64_t size = o->split_size ? o->split_size : 1;
    if (o->align > 1 && size % o->align)
        size += o->align - size % o->align;
    qn_split *group = NULL; /* the split small files are gathered into */
    for (size_t i = 0; i < fs.n && rc == 0; i++) {
        const s_file *f = &fs.v[i];
        /* A file makes at most size / split + 1 splits: refuse before
         * making them, so a tiny --split-size cannot exhaust memory. */
        uint64_t cuts = o->whole || f->codec ? 0 : f->size / size;
        if (o->max_splits &&
            (out->n >= o->max_splits || cuts >= o->max_splits - out->n)) {
            snprintf(err, errcap,
                     "the input makes more than %zu map tasks, the limit; "
                     "raise --split-size",
                     o->max_splits);
            rc = -1;
            break;
        }
        out->files++;
        out->bytes += f->size;
        /* A compressed file cannot be cut: a gzip, xz or lz4 stream has
         * no place to start but its first byte; bzip2 blocks and zstd
         * frames could be found, but not exactly (see the README). */
        if (f->size < size || o->whole || f->codec) {
            if (!group || group->bytes + f->size > size)
                group = qn_splits_add(out);
            s_add_piece(group, f, 0, f->size);
            continue;
        }
        /* Cut a large file; a last piece under a tenth of a split joins
         * the one before it rather than making a tiny map. */
        group = NULL;
        uint64_t off = 0;
        while (off < f->size) {
            uint64_t len = size;
            if (f->size - off < size + size / 10)
                len = f->size - off;
            s_add_piece(qn_splits_add(out), f, off, len);
            off += len;
        }
    }
    for (size_t i = 0; i < fs.n; i++) {
        free(fs.v[i].path);
        free(fs.v[i].name);
    }
    free(fs.v);
    if (rc < 0)
        qn_splits_release(out);
    return rc;
}

void qn_splits_release(qn_splits *s)
{
    for (size_t i = 0; i < s->n; i++) {
        for (size_t k = 0; k < s->splits[i].n; k++) {
            free(s->splits[i].pieces[k].path);
            free(s->splits[i].pieces[k].name);
            free(s->splits[i].pieces[k].dataset);
        }
        free(s->splits[i].pieces);
    }
    free(s->splits);
    memset(s, 0, sizeof *s);
}
