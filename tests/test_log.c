/*
 * test_log.c -- log lines (lib/log.c).
 */
#include "helpers.h"

#include "log.h"

#include <fcntl.h>
#include <sys/stat.h>

TestSuite(log, .fini = qn_test_leak_check);

Test(log, parses_levels)
{
    cr_assert_eq(qn_log_parse_level("error"), QN_LOG_ERROR);
    cr_assert_eq(qn_log_parse_level("warn"), QN_LOG_WARN);
    cr_assert_eq(qn_log_parse_level("info"), QN_LOG_INFO);
    cr_assert_eq(qn_log_parse_level("debug"), QN_LOG_DEBUG);
    cr_assert_eq(qn_log_parse_level("loud"), -1);
}

Test(log, writes_one_line_with_level_and_program_and_filters)
{
    char *dir = qn_test_tmpdir();
    char path[4200];
    snprintf(path, sizeof path, "%s/log.txt", dir);
    int saved = qn_test_stderr_to(path);
    qn_log_init("tester", QN_LOG_INFO);
    qn_info("job %s started", "job-1");
    qn_debug("not shown");
    qn_warn("second");
    qn_test_stderr_back(saved);
    cr_assert(qn_log_enabled(QN_LOG_WARN));
    cr_assert(!qn_log_enabled(QN_LOG_DEBUG));
    FILE *f = fopen(path, "r");
    char a[512] = {0}, b[512] = {0}, c[512] = {0};
    cr_assert_not_null(fgets(a, sizeof a, f));
    cr_assert_not_null(fgets(b, sizeof b, f));
    cr_assert_null(fgets(c, sizeof c, f), "debug line leaked: %s", c);
    fclose(f);
    cr_assert(strstr(a, " info  tester[") &&
                  strstr(a, "]: job job-1 started\n"),
              "line: %s", a);
    cr_assert(strstr(b, " warn  tester[") && strstr(b, "]: second\n"), "%s", b);
    unlink(path);
    rmdir(dir);
    free(dir);
}

/* Under systemd (JOURNAL_STREAM names stderr) lines carry their priority. */
Test(log, journal_lines_start_with_the_priority)
{
    char *dir = qn_test_tmpdir();
    char path[4200];
    snprintf(path, sizeof path, "%s/journal.txt", dir);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    cr_assert_geq(fd, 0);
    struct stat st;
    cr_assert_eq(fstat(fd, &st), 0);
    char js[64];
    snprintf(js, sizeof js, "%llu:%llu", (unsigned long long)st.st_dev,
             (unsigned long long)st.st_ino);
    int saved = dup(2);
    dup2(fd, 2);
    setenv("JOURNAL_STREAM", js, 1);
    qn_log_init("tester", QN_LOG_INFO);
    qn_error("bad %d", 1);
    qn_info("fine");
    /* Another stream: no prefix. */
    setenv("JOURNAL_STREAM", "1:1", 1);
    qn_log_init("tester", QN_LOG_INFO);
    qn_warn("plain");
    unsetenv("JOURNAL_STREAM");
    dup2(saved, 2);
    close(saved);
    close(fd);
    FILE *f = fopen(path, "r");
    char a[512] = {0}, b[512] = {0}, c[512] = {0};
    cr_assert_not_null(fgets(a, sizeof a, f));
    cr_assert_not_null(fgets(b, sizeof b, f));
    cr_assert_not_null(fgets(c, sizeof c, f));
    fclose(f);
    cr_assert(strncmp(a, "<3>", 3) == 0 && strstr(a, " error tester["), "%s",
              a);
    cr_assert(strncmp(b, "<6>", 3) == 0 && strstr(b, "]: fine\n"), "%s", b);
    cr_assert(c[0] != '<' && strstr(c, " warn  tester["), "%s", c);
    unlink(path);
    rmdir(dir);
    free(dir);
}
