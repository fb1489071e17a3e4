/*
 * test_shipped.c -- files shipped with a job (lib/shipped.c): their
 * names, the cache of their bytes under a work dir, and placing them
 * read-only in a task's folder, linked or copied.
 */
#include "helpers.h"

#include "layout.h"
#include "sha256.h"
#include "shipped.h"
#include "util.h"

#include <dirent.h>
#include <errno.h>
#include <sys/stat.h>

static char *dir; /* the test's folder: the work dir */
static int here;  /* a task's folder in it, open */
static Quern__ShippedFile f1, f2, *fs[2];
static Quern__TaskSpec spec;
static char h1[QN_SHA256_HEX], h2[QN_SHA256_HEX];
static char err[1024];

static const char dict[] = "alpha\nbeta\ngamma\n";
static const char script[] = "#!/bin/sh\necho hello\n";

static void hash_of(const char *s, char hex[QN_SHA256_HEX])
{
    uint8_t d[QN_SHA256_SIZE];
    qn_sha256(s, strlen(s), d);
    qn_sha256_hex(d, hex);
}

static void setup(void)
{
    dir = qn_test_tmpdir();
    char task[4096];
    snprintf(task, sizeof task, "%s/task", dir);
    cr_assert_eq(mkdir(task, 0755), 0);
    here = open(task, O_RDONLY | O_DIRECTORY);
    cr_assert_geq(here, 0);
    hash_of(dict, h1);
    hash_of(script, h2);
    quern__shipped_file__init(&f1);
    quern__shipped_file__init(&f2);
    f1 = (Quern__ShippedFile){.base = f1.base,
                              .name = (char *)"dict.txt",
                              .hash = h1,
                              .size = strlen(dict)};
    f2 = (Quern__ShippedFile){.base = f2.base,
                              .name = (char *)"run.sh",
                              .hash = h2,
                              .size = strlen(script)};
    fs[0] = &f1;
    fs[1] = &f2;
    quern__task_spec__init(&spec);
    spec.files = fs;
    spec.n_files = 2;
    err[0] = '\0';
}

static void teardown(void)
{
    close(here);
    qn_rmtree(dir);
    free(dir);
    qn_test_leak_check();
}

TestSuite(shipped, .init = setup, .fini = teardown);

/* Cache both files in dir, as a worker does when they arrive. */
static void cache_both(void)
{
    cr_assert_eq(qn_shipped_cache(dir, h1, dict, strlen(dict), err, sizeof err),
                 0, "%s", err);
    cr_assert_eq(
        qn_shipped_cache(dir, h2, script, strlen(script), err, sizeof err), 0,
        "%s", err);
}

/* The task folder's entry name: its mode, inode, and bytes (want). */
static struct stat placed(const char *name, const char *want)
{
    struct stat st;
    cr_assert_eq(fstatat(here, name, &st, AT_SYMLINK_NOFOLLOW), 0,
                 "%s not placed: %s", name, strerror(errno));
    cr_assert(S_ISREG(st.st_mode), "%s is not a plain file", name);
    cr_assert_eq(st.st_mode & 07777, 0444, "%s has mode %o, not 0444", name,
                 st.st_mode & 07777);
    int fd = openat(here, name, O_RDONLY);
    cr_assert_geq(fd, 0);
    char buf[256];
    ssize_t n = read(fd, buf, sizeof buf);
    close(fd);
    cr_assert_eq(n, (ssize_t)strlen(want));
    cr_assert_eq(memcmp(buf, want, strlen(want)), 0, "%s holds other bytes",
                 name);
    return st;
}

/* The cached copy of hash: its stat. */
static struct stat cached(const char *hash)
{
    qn_buf p = {0};
    qn_shipped_path(&p, dir, hash);
    struct stat st;
    cr_assert_eq(stat(p.data, &st), 0, "%s is not cached", p.data);
    qn_buf_release(&p);
    return st;
}

Test(shipped, names_a_task_can_open_by_and_hashes)
{
    cr_assert(qn_shipped_name_ok("dict.txt"));
    cr_assert(qn_shipped_name_ok("a b-c_d.tar.gz"));
    cr_assert(qn_shipped_name_ok("wörter"));
    cr_assert_not(qn_shipped_name_ok(""));
    cr_assert_not(qn_shipped_name_ok("."));
    cr_assert_not(qn_shipped_name_ok(".."));
    cr_assert_not(qn_shipped_name_ok(".hidden"));
    cr_assert_not(qn_shipped_name_ok("a/b"));
    cr_assert_not(qn_shipped_name_ok("../etc"));
    cr_assert_not(qn_shipped_name_ok("tab\there"));
    char *longest = qn_malloc(QN_SHIPPED_NAME_MAX + 2);
    memset(longest, 'x', QN_SHIPPED_NAME_MAX + 1);
    longest[QN_SHIPPED_NAME_MAX + 1] = '\0';
    cr_assert_not(qn_shipped_name_ok(longest));
    longest[QN_SHIPPED_NAME_MAX] = '\0';
    cr_assert(qn_shipped_name_ok(longest));
    free(longest);
    cr_assert(qn_shipped_hash_ok(h1));
    cr_assert_not(qn_shipped_hash_ok("abc"));
    char upper[QN_SHA256_HEX];
    memcpy(upper, h1, sizeof upper);
    upper[0] = 'G';
    cr_assert_not(qn_shipped_hash_ok(upper));
}

Test(shipped, the_cache_holds_checked_bytes_read_only)
{
    cr_assert_not(qn_shipped_cached(dir, h1));
    cache_both();
    cr_assert(qn_shipped_cached(dir, h1));
    cr_assert_eq(cached(h1).st_mode & 07777, 0444);
    /* Bytes that are not the ones named are not kept. */
    cr_assert_eq(
        qn_shipped_cache(dir, h1, script, strlen(script), err, sizeof err), -1);
    cr_assert_not_null(strstr(err, "arrived with SHA-256"), "%s", err);
    cr_assert_eq(cached(h1).st_size, (off_t)strlen(dict));
}

Test(shipped, places_each_file_as_a_read_only_link_to_the_cache)
{
    cache_both();
    cr_assert_eq(qn_shipped_place(&spec, dir, here, err, sizeof err), 0, "%s",
                 err);
    struct stat a = placed("dict.txt", dict);
    struct stat b = placed("run.sh", script);
    /* Linked, not copied: the cache's own inodes. */
    cr_assert_eq(a.st_ino, cached(h1).st_ino);
    cr_assert_eq(b.st_ino, cached(h2).st_ino);
}

Test(shipped, an_entry_of_the_same_name_is_replaced)
{
    cache_both();
    int fd = openat(here, "dict.txt", O_WRONLY | O_CREAT, 0644);
    cr_assert_geq(fd, 0);
    cr_assert_eq(write(fd, "stale", 5), 5);
    close(fd);
    cr_assert_eq(qn_shipped_place(&spec, dir, here, err, sizeof err), 0, "%s",
                 err);
    placed("dict.txt", dict);
    /* Placing again (the same folder) is no error. */
    cr_assert_eq(qn_shipped_place(&spec, dir, here, err, sizeof err), 0, "%s",
                 err);
    placed("dict.txt", dict);
}

Test(shipped, copies_when_the_folder_is_on_another_filesystem)
{
    cache_both();
    /* /dev/shm is a tmpfs: a link there from the test's folder is refused
     * with EXDEV, unless both are on the same filesystem. */
    struct stat shm, tmp;
    if (stat("/dev/shm", &shm) < 0 || stat(dir, &tmp) < 0 ||
        shm.st_dev == tmp.st_dev)
        cr_skip_test("no second filesystem (/dev/shm) to copy to");
    char other[] = "/dev/shm/quern-test-XXXXXX";
    cr_assert_not_null(mkdtemp(other));
    int fd = open(other, O_RDONLY | O_DIRECTORY);
    cr_assert_geq(fd, 0);
    int rc = qn_shipped_place(&spec, dir, fd, err, sizeof err);
    /* What was placed, read before the folder goes (an assertion failing
     * would leave it behind). */
    struct stat st = {0};
    char buf[256] = "";
    int got = fstatat(fd, "dict.txt", &st, AT_SYMLINK_NOFOLLOW);
    int in = openat(fd, "dict.txt", O_RDONLY);
    ssize_t n = in >= 0 ? read(in, buf, sizeof buf - 1) : -1;
    if (in >= 0)
        close(in);
    close(fd);
    qn_rmtree(other);
    cr_assert_eq(rc, 0, "%s", err);
    cr_assert_eq(got, 0, "dict.txt not placed");
    cr_assert_eq(st.st_mode & 07777, 0444, "mode %o", st.st_mode & 07777);
    cr_assert_neq(st.st_dev, cached(h1).st_dev, "not on the other filesystem");
    cr_assert_eq(n, (ssize_t)strlen(dict));
    cr_assert_str_eq(buf, dict);
}

Test(shipped, a_file_missing_from_the_cache_is_named)
{
    /* Only the first is cached. */
    cr_assert_eq(qn_shipped_cache(dir, h1, dict, strlen(dict), err, sizeof err),
                 0);
    cr_assert_eq(qn_shipped_place(&spec, dir, here, err, sizeof err), -1);
    cr_assert_not_null(strstr(err, "run.sh"), "%s", err);
    cr_assert_not_null(strstr(err, h2), "%s", err);
    cr_assert_not_null(strstr(err, "No such file"), "%s", err);
}

Test(shipped, a_cached_copy_of_another_size_is_refused)
{
    cache_both();
    f2.size = 3;
    cr_assert_eq(qn_shipped_place(&spec, dir, here, err, sizeof err), -1);
    cr_assert_not_null(strstr(err, "run.sh"), "%s", err);
    cr_assert_not_null(strstr(err, "not the 3 shipped"), "%s", err);
}

Test(shipped, names_that_would_leave_the_folder_are_refused)
{
    cache_both();
    f2.name = (char *)"../escape";
    cr_assert_eq(qn_shipped_place(&spec, dir, here, err, sizeof err), -1);
    cr_assert_not_null(strstr(err, "../escape"), "%s", err);
    struct stat st;
    cr_assert_neq(stat(dir, &st), -1);
    char esc[4096];
    snprintf(esc, sizeof esc, "%s/escape", dir);
    cr_assert_eq(access(esc, F_OK), -1, "a file was placed outside");
}

Test(shipped, a_spec_without_files_places_nothing)
{
    spec.n_files = 0;
    cr_assert_eq(qn_shipped_place(&spec, dir, here, err, sizeof err), 0);
    int fd = dup(here);
    DIR *d = fdopendir(fd);
    cr_assert_not_null(d);
    struct dirent *e;
    int n = 0;
    while ((e = readdir(d)))
        n += e->d_name[0] != '.';
    closedir(d);
    cr_assert_eq(n, 0);
}
