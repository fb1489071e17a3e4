/*
 * test_util.c -- sizes, numbers, ids, the byte buffer, and the file helpers.
 */
#include "helpers.h"

#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sys/stat.h>

TestSuite(util, .fini = qn_test_leak_check);

static int s_exists(const char *path)
{
    struct stat st;
    return lstat(path, &st) == 0;
}

static int s_is_dir(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

static void s_touch(const char *path, const char *text)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    cr_assert_geq(fd, 0, "open %s: %s", path, strerror(errno));
    cr_assert_eq(qn_write_all(fd, text, strlen(text)), 0);
    close(fd);
}

/* out = dir/name; the test fails if it does not fit. */
/* Reads a whole small file into buf (NUL-terminated); returns its size. */
static size_t s_slurp(const char *path, char *buf, size_t cap)
{
    int fd = open(path, O_RDONLY);
    cr_assert_geq(fd, 0, "open %s: %s", path, strerror(errno));
    ssize_t n = read(fd, buf, cap - 1);
    close(fd);
    cr_assert_geq(n, 0);
    buf[n] = '\0';
    return (size_t)n;
}

/* ---- qn_parse_size --------------------------------------------------------
 */

Test(util, parse_size_accepts_suffixes_in_powers_of_1024)
{
    static const struct {
        const char *text;
        uint64_t want;
    } cases[] = {
        {"4096", 4096},
        {"0", 0},
        {"512k", 512ULL << 10},
        {"512K", 512ULL << 10},
        {"64M", 64ULL << 20},
        {"64m", 64ULL << 20},
        {"1G", 1ULL << 30},
        {"2T", 2ULL << 40},
        {"64MB", 64ULL << 20},
        {"64MiB", 64ULL << 20},
        {"18446744073709551615", UINT64_MAX},
        {"16777215T", 16777215ULL << 40},
    };
    for (size_t i = 0; i < QN_ARRAY_LEN(cases); i++) {
        uint64_t got = 12345;
        cr_expect_eq(qn_parse_size(cases[i].text, &got), 0, "\"%s\"",
                     cases[i].text);
        cr_expect_eq(got, cases[i].want, "\"%s\" gave %llu", cases[i].text,
                     (unsigned long long)got);
    }
}

Test(util, parse_size_rejects_what_is_not_a_size)
{
    static const char *const bad[] = {
        "",
        "-1",
        "12X",
        "M",
        "k",
        "1.5G",
        "64 M",
        "64Mb",
        "64MiBs",
        "1KK",
        "18446744073709551616",
        "16777216T", /* 2^64: overflows once shifted */
    };
    for (size_t i = 0; i < QN_ARRAY_LEN(bad); i++) {
        uint64_t got = 777;
        cr_expect_eq(qn_parse_size(bad[i], &got), -1, "\"%s\" accepted as %llu",
                     bad[i], (unsigned long long)got);
        cr_expect_eq(got, 777, "\"%s\" changed the output", bad[i]);
    }
    uint64_t got;
    cr_expect_eq(qn_parse_size(NULL, &got), -1);
}

/* strtoull skips leading white space and then accepts a minus sign,
 * negating the value: " -1" must not become 2^64 - 1. */
Test(util, parse_size_rejects_negative_after_white_space)
{
    uint64_t got = 777;
    cr_expect_eq(qn_parse_size(" -1", &got), -1, "\" -1\" accepted as %llu",
                 (unsigned long long)got);
    cr_expect_eq(qn_parse_size("\t-64M", &got), -1,
                 "\"\\t-64M\" accepted as %llu", (unsigned long long)got);
}

/* ---- qn_parse_uint ------------------------------------------------------- */

Test(util, parse_uint_accepts_values_within_inclusive_bounds)
{
    uint64_t got = 0;
    cr_expect_eq(qn_parse_uint("1", 1, 10, &got), 0);
    cr_expect_eq(got, 1);
    cr_expect_eq(qn_parse_uint("10", 1, 10, &got), 0);
    cr_expect_eq(got, 10);
    cr_expect_eq(qn_parse_uint("7", 7, 7, &got), 0);
    cr_expect_eq(got, 7);
    cr_expect_eq(qn_parse_uint("0", 0, 0, &got), 0);
    cr_expect_eq(got, 0);
    cr_expect_eq(qn_parse_uint("18446744073709551615", 0, UINT64_MAX, &got), 0);
    cr_expect_eq(got, UINT64_MAX);
}

Test(util, parse_uint_rejects_out_of_bounds_and_non_numbers)
{
    static const char *const bad[] = {
        "", "0", "11", "-1", "+5", "5x", "x5", "1e3", "0x5", "5 ", "1000000",
    };
    for (size_t i = 0; i < QN_ARRAY_LEN(bad); i++) {
        uint64_t got = 777;
        cr_expect_eq(qn_parse_uint(bad[i], 1, 10, &got), -1,
                     "\"%s\" accepted as %llu", bad[i],
                     (unsigned long long)got);
        cr_expect_eq(got, 777);
    }
    uint64_t got = 777;
    cr_expect_eq(qn_parse_uint("18446744073709551616", 0, UINT64_MAX, &got), -1,
                 "2^64 accepted");
    cr_expect_eq(qn_parse_uint(NULL, 0, 10, &got), -1);
    cr_expect_eq(got, 777);
}

Test(util, parse_uint_rejects_negative_after_white_space)
{
    uint64_t got = 777;
    cr_expect_eq(qn_parse_uint(" -5", 0, UINT64_MAX, &got), -1,
                 "\" -5\" accepted as %llu", (unsigned long long)got);
}

/* ---- qn_id_ok ------------------------------------------------------------ */

Test(util, id_ok_accepts_safe_names)
{
    char longest[65];
    memset(longest, 'a', 64);
    longest[64] = '\0';
    static const char *const good[] = {
        "a", "job-1", "w_2.host", "A.B.C", "0", "x..y", "-leading-dash",
    };
    for (size_t i = 0; i < QN_ARRAY_LEN(good); i++)
        cr_expect(qn_id_ok(good[i]), "\"%s\" refused", good[i]);
    cr_expect(qn_id_ok(longest), "64 bytes refused");
}

Test(util, id_ok_refuses_unsafe_names)
{
    char too_long[66];
    memset(too_long, 'a', 65);
    too_long[65] = '\0';
    static const char *const bad[] = {
        "",    ".",    "..", ".hidden", "a/b", "../x",
        "a b", "a\nb", "ü",  "a:b",     "a*",  "tab\t",
    };
    for (size_t i = 0; i < QN_ARRAY_LEN(bad); i++)
        cr_expect_not(qn_id_ok(bad[i]), "\"%s\" accepted", bad[i]);
    cr_expect_not(qn_id_ok(too_long), "65 bytes accepted");
}

/* ---- qn_buf -------------------------------------------------------------- */

Test(util, buf_appends_and_stays_nul_terminated)
{
    qn_buf b = {0};
    cr_assert_eq(qn_buf_add(&b, "hello", 5), 0);
    cr_assert_eq(b.len, 5);
    cr_assert_str_eq(b.data, "hello");
    cr_assert_eq(qn_buf_add(&b, ", world", 7), 0);
    cr_assert_eq(b.len, 12);
    cr_assert_str_eq(b.data, "hello, world");
    cr_assert_eq(qn_buf_add(&b, NULL, 0), 0);
    cr_assert_eq(b.len, 12);
    cr_assert_eq(qn_buf_printf(&b, " %d-%s", 42, "x"), 0);
    cr_assert_str_eq(b.data, "hello, world 42-x");
    cr_assert_eq(b.len, strlen("hello, world 42-x"));
    cr_assert_geq(b.cap, b.len + 1);
    qn_buf_release(&b);
    cr_assert_null(b.data);
    cr_assert_eq(b.len, 0);
    cr_assert_eq(b.cap, 0);
}

Test(util, buf_grows_past_many_doublings)
{
    qn_buf b = {0};
    unsigned char chunk[1000];
    for (size_t i = 0; i < sizeof chunk; i++)
        chunk[i] = (unsigned char)i;
    for (int i = 0; i < 300; i++)
        cr_assert_eq(qn_buf_add(&b, chunk, sizeof chunk), 0);
    cr_assert_eq(b.len, 300 * sizeof chunk);
    for (int i = 0; i < 300; i++)
        cr_assert_arr_eq(b.data + (size_t)i * sizeof chunk, chunk, sizeof chunk,
                         "chunk %d", i);
    cr_assert_eq(b.data[b.len], '\0');
    qn_buf_release(&b);
}

Test(util, buf_reserve_makes_room_without_changing_contents)
{
    qn_buf b = {0};
    cr_assert_eq(qn_buf_add(&b, "abc", 3), 0);
    cr_assert_eq(qn_buf_reserve(&b, 100000), 0);
    cr_assert_geq(b.cap - b.len, 100000);
    cr_assert_eq(b.len, 3);
    cr_assert_arr_eq(b.data, "abc", 3);
    cr_assert_eq(qn_buf_reserve(&b, SIZE_MAX), -ENOMEM);
    cr_assert_eq(b.len, 3);
    cr_assert_arr_eq(b.data, "abc", 3);
    qn_buf_release(&b);
}

Test(util, buf_printf_formats_long_text)
{
    qn_buf b = {0};
    char big[5000];
    memset(big, 'z', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    cr_assert_eq(qn_buf_printf(&b, "<%s>", big), 0);
    cr_assert_eq(b.len, sizeof big + 1);
    cr_assert_eq(b.data[0], '<');
    cr_assert_eq(b.data[b.len - 1], '>');
    cr_assert_eq(b.data[b.len], '\0');
    qn_buf_release(&b);
}

/* ---- qn_fmt_bytes, qn_strerror ------------------------------------------- */

Test(util, fmt_bytes_uses_binary_units)
{
    char buf[32];
    cr_expect_str_eq(qn_fmt_bytes(0, buf, sizeof buf), "0 B");
    cr_expect_str_eq(qn_fmt_bytes(1023, buf, sizeof buf), "1023 B");
    cr_expect_str_eq(qn_fmt_bytes(1024, buf, sizeof buf), "1.0 KiB");
    cr_expect_str_eq(qn_fmt_bytes(3 << 19, buf, sizeof buf), "1.5 MiB");
    cr_expect_str_eq(qn_fmt_bytes(1ULL << 30, buf, sizeof buf), "1.0 GiB");
    cr_expect_str_eq(qn_fmt_bytes(2048ULL << 40, buf, sizeof buf),
                     "2048.0 TiB");
}

Test(util, strerror_names_quern_codes)
{
    cr_expect_str_eq(qn_strerror(-QN_ECORRUPT), "corrupt data");
    cr_expect_str_eq(qn_strerror(-QN_EFULL), "buffer full");
    cr_expect_str_eq(qn_strerror(-QN_ETOOBIG), "too large");
    cr_expect_str_eq(qn_strerror(-ENOENT), strerror(ENOENT));
    cr_expect_str_eq(qn_strerror(0), "success");
}

/* ---- qn_mkdirs, qn_rmtree ------------------------------------------------ */

Test(util, mkdirs_creates_every_missing_parent)
{
    char *tmp = qn_test_tmpdir();
    char path[4096], p2[4096];
    qn_test_join(path, sizeof path, tmp, "a/b/c/d");
    cr_assert_eq(qn_mkdirs(path, 0755), 0);
    cr_assert(s_is_dir(path));
    /* Again: existing directories are fine, as is a trailing slash. */
    cr_assert_eq(qn_mkdirs(path, 0755), 0);
    qn_test_join(p2, sizeof p2, tmp, "a/b/e/");
    cr_assert_eq(qn_mkdirs(p2, 0755), 0);
    qn_test_join(p2, sizeof p2, tmp, "a/b/e");
    cr_assert(s_is_dir(p2));
    cr_assert_eq(qn_rmtree(tmp), 0);
    cr_assert_not(s_exists(tmp));
    free(tmp);
}

Test(util, mkdirs_fails_when_a_file_is_in_the_way)
{
    char *tmp = qn_test_tmpdir();
    char file[4096], path[4096];
    qn_test_join(file, sizeof file, tmp, "file");
    s_touch(file, "x");
    cr_assert_eq(qn_mkdirs(file, 0755), -ENOTDIR);
    qn_test_join(path, sizeof path, tmp, "file/sub");
    cr_assert_eq(qn_mkdirs(path, 0755), -ENOTDIR);
    char *too_long = malloc(PATH_MAX + 10);
    memset(too_long, 'a', PATH_MAX + 9);
    too_long[PATH_MAX + 9] = '\0';
    cr_assert_eq(qn_mkdirs(too_long, 0755), -ENAMETOOLONG);
    free(too_long);
    cr_assert_eq(qn_rmtree(tmp), 0);
    free(tmp);
}

Test(util, rmtree_removes_nested_files_and_directories)
{
    char *tmp = qn_test_tmpdir();
    char root[4096], p[4096];
    qn_test_join(root, sizeof root, tmp, "root");
    qn_test_join(p, sizeof p, root, "x/y/z");
    cr_assert_eq(qn_mkdirs(p, 0755), 0);
    qn_test_join(p, sizeof p, root, "top.txt");
    s_touch(p, "top");
    qn_test_join(p, sizeof p, root, "x/mid.txt");
    s_touch(p, "mid");
    qn_test_join(p, sizeof p, root, "x/y/z/deep.txt");
    s_touch(p, "deep");
    qn_test_join(p, sizeof p, root, "x/empty");
    cr_assert_eq(qn_mkdirs(p, 0755), 0);

    cr_assert_eq(qn_rmtree(root), 0);
    cr_assert_not(s_exists(root));
    cr_assert(s_is_dir(tmp), "rmtree went above its argument");
    /* A missing path is already removed. */
    cr_assert_eq(qn_rmtree(root), 0);
    cr_assert_eq(qn_rmtree(tmp), 0);
    free(tmp);
}

Test(util, rmtree_removes_symlinks_without_following_them)
{
    char *tmp = qn_test_tmpdir();
    char keep[4096], keepfile[4096], root[4096], link[4096];
    qn_test_join(keep, sizeof keep, tmp, "keep");
    qn_test_join(keepfile, sizeof keepfile, tmp, "keep/precious");
    qn_test_join(root, sizeof root, tmp, "root");
    qn_test_join(link, sizeof link, tmp, "root/link");
    cr_assert_eq(qn_mkdirs(keep, 0755), 0);
    s_touch(keepfile, "do not delete");
    cr_assert_eq(qn_mkdirs(root, 0755), 0);
    cr_assert_eq(symlink(keep, link), 0);

    cr_assert_eq(qn_rmtree(root), 0);
    cr_assert_not(s_exists(root));
    cr_assert(s_exists(keepfile), "rmtree followed a symlink");
    cr_assert_eq(qn_rmtree(tmp), 0);
    free(tmp);
}

Test(util, rmtree_removes_a_single_file)
{
    char *tmp = qn_test_tmpdir();
    char file[4096];
    qn_test_join(file, sizeof file, tmp, "f");
    s_touch(file, "x");
    cr_assert_eq(qn_rmtree(file), 0);
    cr_assert_not(s_exists(file));
    cr_assert_eq(qn_rmtree(tmp), 0);
    free(tmp);
}

/* ---- qn_write_file_atomic, qn_write_all, qn_pread_all -------------------- */

Test(util, write_file_atomic_replaces_contents_and_leaves_no_temp)
{
    char *tmp = qn_test_tmpdir();
    char path[4096], buf[256];
    qn_test_join(path, sizeof path, tmp, "state.json");
    cr_assert_eq(qn_write_file_atomic(path, "first version", 13), 0);
    cr_assert_eq(s_slurp(path, buf, sizeof buf), 13);
    cr_assert_str_eq(buf, "first version");
    cr_assert_eq(qn_write_file_atomic(path, "v2", 2), 0);
    cr_assert_eq(s_slurp(path, buf, sizeof buf), 2);
    cr_assert_str_eq(buf, "v2");
    cr_assert_eq(qn_write_file_atomic(path, "", 0), 0);
    cr_assert_eq(s_slurp(path, buf, sizeof buf), 0);

    /* Only the file itself is left in the folder. */
    char other[4096];
    snprintf(other, sizeof other, "%s/state.json.tmp.%d", tmp, (int)getpid());
    cr_assert_not(s_exists(other), "temporary file left behind");
    cr_assert_eq(unlink(path), 0);
    cr_assert_eq(rmdir(tmp), 0, "something else was left in the folder");
    free(tmp);
}

Test(util, write_file_atomic_fails_in_a_missing_folder)
{
    char *tmp = qn_test_tmpdir();
    char path[4096];
    qn_test_join(path, sizeof path, tmp, "missing/state.json");
    cr_assert_eq(qn_write_file_atomic(path, "x", 1), -ENOENT);
    cr_assert_not(s_exists(path));
    cr_assert_eq(rmdir(tmp), 0);
    free(tmp);
}

Test(util, pread_all_reads_exactly_and_reports_eof_as_corrupt)
{
    char *tmp = qn_test_tmpdir();
    char path[4096];
    qn_test_join(path, sizeof path, tmp, "data");
    s_touch(path, "0123456789");
    int fd = open(path, O_RDONLY);
    cr_assert_geq(fd, 0);
    char buf[16] = {0};
    cr_assert_eq(qn_pread_all(fd, buf, 4, 3), 0);
    cr_assert_arr_eq(buf, "3456", 4);
    cr_assert_eq(qn_pread_all(fd, buf, 4, 8), -QN_ECORRUPT);
    cr_assert_eq(qn_pread_all(fd, buf, 0, 100), 0);
    close(fd);
    cr_assert_eq(qn_pread_all(-1, buf, 1, 0), -EBADF);
    cr_assert_eq(qn_rmtree(tmp), 0);
    free(tmp);
}

Test(util, exe_dir_names_the_folder_of_this_test)
{
    char dir[4096], self[4096];
    cr_assert_eq(qn_exe_dir(dir, sizeof dir), 0);
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    cr_assert_gt(n, 0);
    self[n] = '\0';
    *strrchr(self, '/') = '\0';
    cr_assert_str_eq(dir, self);
    char tiny[4];
    cr_assert_eq(qn_exe_dir(tiny, sizeof tiny), -ENAMETOOLONG);
}

Test(util, utf8_validation_and_sanitizing)
{
    cr_assert(qn_utf8_valid("plain ascii"));
    cr_assert(qn_utf8_valid("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80"));
    cr_assert_not(qn_utf8_valid("caf\xe9"));          /* Latin-1 */
    cr_assert_not(qn_utf8_valid("\xc0\xaf"));         /* overlong '/' */
    cr_assert_not(qn_utf8_valid("\xed\xa0\x80"));     /* a surrogate */
    cr_assert_not(qn_utf8_valid("\xf4\x90\x80\x80")); /* past U+10FFFF */
    cr_assert_not(qn_utf8_valid("\xe2\x82"));         /* cut short */
    char s[] = "ok \xc3\xa9 bad \xff\xfe end \xe2\x82";
    qn_utf8_sanitize(s);
    cr_assert_str_eq(s, "ok \xc3\xa9 bad ?? end ??");
    cr_assert(qn_utf8_valid(s));
}

/* Counters from plugins and peers saturate instead of overflowing. */
Test(util, saturating_add_holds_at_the_limits)
{
    cr_assert_eq(qn_sat_add(2, 3), 5);
    cr_assert_eq(qn_sat_add(-2, 3), 1);
    cr_assert_eq(qn_sat_add(LLONG_MAX, 1), LLONG_MAX);
    cr_assert_eq(qn_sat_add(LLONG_MAX, LLONG_MAX), LLONG_MAX);
    cr_assert_eq(qn_sat_add(LLONG_MIN, -1), LLONG_MIN);
    cr_assert_eq(qn_sat_add(LLONG_MIN, LLONG_MIN), LLONG_MIN);
    cr_assert_eq(qn_sat_add(LLONG_MAX, LLONG_MIN), -1);
}

Test(util, grow_keeps_elements_and_doubles_capacity)
{
    int *v = NULL;
    size_t cap = 0, n = 0;
    for (int i = 0; i < 1000; i++) {
        size_t before = cap;
        QN_GROW(v, cap, n + 1);
        cr_assert_geq(cap, n + 1);
        /* Growth is geometric: a push moves the array at most log2 times. */
        if (cap != before)
            cr_assert(before == 0 ? cap == 8 : cap == 2 * before,
                      "capacity %zu after %zu", cap, before);
        v[n++] = i;
    }
    for (int i = 0; i < 1000; i++)
        cr_assert_eq(v[i], i);
    cr_assert_eq(cap, 1024);
    size_t same = cap;
    QN_GROW(v, cap, 10); /* room enough: nothing changes */
    cr_assert_eq(cap, same);
    QN_GROW(v, cap, 5000); /* a jump past twice the capacity */
    cr_assert_geq(cap, 5000);
    cr_assert_eq(v[999], 999);
    free(v);
}

Test(util, strv_remove_frees_one_and_fills_its_place)
{
    char *v[3] = {qn_strdup("a"), qn_strdup("b"), qn_strdup("c")};
    size_t n = 3;
    cr_assert_eq(qn_strv_remove(v, &n, "x"), 0);
    cr_assert_eq(n, 3);
    cr_assert_eq(qn_strv_remove(v, &n, "a"), 1);
    cr_assert_eq(n, 2);
    cr_assert_str_eq(v[0], "c");
    cr_assert_str_eq(v[1], "b");
    cr_assert_eq(qn_strv_remove(v, &n, "b"), 1);
    cr_assert_eq(qn_strv_remove(v, &n, "c"), 1);
    cr_assert_eq(n, 0);
    cr_assert_eq(qn_strv_remove(v, &n, "c"), 0);
}
