/*
 * test_droplog.c -- counting and rate-limited logging of dropped messages
 * (lib/droplog.c).
 */
#include "helpers.h"

#include "droplog.h"
#include "log.h"
#include "util.h"

#include <fcntl.h>
#include <unistd.h>

TestSuite(droplog, .fini = qn_test_leak_check);

/* Run adds(d) with stderr going to a file; return what was logged (free
 * it) and set *lines to its number of lines. */
static char *s_logged(qn_droplog *d, void (*adds)(qn_droplog *), int *lines)
{
    char *dir = qn_test_tmpdir();
    char path[4200];
    snprintf(path, sizeof path, "%s/log.txt", dir);
    int saved = qn_test_stderr_to(path);
    qn_log_init("tester", QN_LOG_INFO);
    adds(d);
    qn_test_stderr_back(saved);
    qn_buf b = {0};
    char chunk[4096];
    ssize_t n;
    int fd = open(path, O_RDONLY);
    cr_assert_geq(fd, 0);
    while ((n = read(fd, chunk, sizeof chunk)) > 0)
        cr_assert_eq(qn_buf_add(&b, chunk, (size_t)n), 0);
    cr_assert_eq(qn_buf_add(&b, "", 1), 0);
    close(fd);
    unlink(path);
    rmdir(dir);
    free(dir);
    *lines = 0;
    for (const char *p = b.data; *p; p++)
        *lines += *p == '\n';
    return b.data;
}

static void s_one_peer_flood(qn_droplog *d)
{
    for (int i = 0; i < 10000; i++)
        qn_droplog_add(d, (unsigned)(i % 3), "tcp://10.0.0.1:5000", "a message",
                       "not a Quern message (7 bytes)");
}

/* A flood from one address is counted in full but logged once. */
Test(droplog, a_flood_from_one_peer_is_counted_and_logged_once)
{
    qn_droplog d;
    qn_droplog_init(&d, "master", "dropped");
    int lines;
    char *log = s_logged(&d, s_one_peer_flood, &lines);
    cr_assert_eq(lines, 1, "log: %s", log);
    cr_assert(strstr(log, "master: dropped a message from tcp://10.0.0.1:5000: "
                          "not a Quern message (7 bytes); 1 dropped in all"),
              "log: %s", log);
    cr_assert_eq(d.total, 10000);
    cr_assert_eq(d.by_reason[0], 3334);
    cr_assert_eq(d.by_reason[1], 3333);
    cr_assert_eq(d.by_reason[2], 3333);
    free(log);
}

static void s_many_peers(qn_droplog *d)
{
    char addr[64];
    for (int round = 0; round < 3; round++)
        for (int i = 0; i < 100; i++) {
            snprintf(addr, sizeof addr, "tcp://10.0.1.%d:7000", i);
            qn_droplog_add(d, 99, addr, "a request", "bad");
        }
    qn_droplog_add(d, 1, "", "a request", "no address");
}

/* Each new address gets a line until the period's lines are used up;
 * the rest are counted, an out-of-range reason counts as reason 0, and
 * an unknown address is named as such. */
Test(droplog, lines_per_period_are_capped_and_reasons_bounded)
{
    qn_droplog d;
    qn_droplog_init(&d, "shuffle", "dropped");
    int lines;
    char *log = s_logged(&d, s_many_peers, &lines);
    cr_assert_eq(lines, QN_DROPLOG_LINES, "log: %s", log);
    cr_assert(strstr(log, "from tcp://10.0.1.0:7000: bad; 1 dropped in all"),
              "log: %s", log);
    cr_assert_null(strstr(log, "10.0.1.20:"), "line %d logged: %s",
                   QN_DROPLOG_LINES + 1, log);
    cr_assert_null(strstr(log, "no address"), "%s", log);
    cr_assert_eq(d.total, 301);
    cr_assert_eq(d.by_reason[0], 300);
    cr_assert_eq(d.by_reason[1], 1);
    free(log);
}

static void s_after_the_period(qn_droplog *d)
{
    qn_droplog_add(d, 0, "tcp://10.0.0.9:1", "a message", "first");
    for (int i = 0; i < 5; i++)
        qn_droplog_add(d, 0, "tcp://10.0.0.9:1", "a message", "quiet");
    /* As if a period went by since that line. */
    for (int i = 0; i < QN_DROPLOG_SLOTS; i++)
        d->peers[i].last_ms -= QN_DROPLOG_PERIOD_MS;
    d->period_ms -= QN_DROPLOG_PERIOD_MS;
    qn_droplog_add(d, 0, "tcp://10.0.0.9:1", "a message", "again");
}

/* A period later the address is logged again, with what was not. */
Test(droplog, a_peer_is_logged_again_after_a_period_with_the_quiet_count)
{
    qn_droplog d;
    qn_droplog_init(&d, "master", "dropped");
    int lines;
    char *log = s_logged(&d, s_after_the_period, &lines);
    cr_assert_eq(lines, 2, "log: %s", log);
    cr_assert(strstr(log, ": again; 7 dropped in all (not logged since the "
                          "last line: 5 from this address, 0 from others)"),
              "log: %s", log);
    free(log);
}
