/*
 * log.c -- see log.h.
 */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static const char *s_program = "quern";
static enum qn_log_level s_level = QN_LOG_INFO;
static const char *const s_names[] = {"error", "warn", "info", "debug"};
static int s_journal; /* stderr is systemd's journal stream */

/*
 * systemd sets JOURNAL_STREAM to "DEV:INODE" of the stream it connects to
 * stderr. When stderr is that stream, each line starts with the syslog
 * priority ("<4>"), which the journal takes as the line's priority and
 * strips; the line itself goes in as it is.
 */
static int s_is_journal(void)
{
    const char *js = getenv("JOURNAL_STREAM");
    unsigned long long dev, ino;
    struct stat st;
    if (!js || sscanf(js, "%llu:%llu", &dev, &ino) != 2 ||
        fstat(STDERR_FILENO, &st) < 0)
        return 0;
    return (unsigned long long)st.st_dev == dev &&
           (unsigned long long)st.st_ino == ino;
}

void qn_log_init(const char *program, enum qn_log_level level)
{
    s_program = program;
    s_level = level;
    s_journal = s_is_journal();
}

const char *qn_log_level_name(enum qn_log_level level)
{
    return s_names[(unsigned)level & 3];
}

int qn_log_parse_level(const char *name)
{
    for (int i = 0; i < 4; i++)
        if (strcmp(name, s_names[i]) == 0)
            return i;
    return -1;
}

int qn_log_enabled(enum qn_log_level level)
{
    return level <= s_level;
}

void qn_log(enum qn_log_level level, const char *fmt, ...)
{
    if (level > s_level)
        return;
    static const int priority[] = {3, 4, 6, 7}; /* err, warning, info, debug */
    char line[2048];
    struct timeval tv;
    struct tm tm;
    gettimeofday(&tv, NULL);
    localtime_r(&tv.tv_sec, &tm);
    int n = 0;
    if (s_journal)
        n = snprintf(line, sizeof line, "<%d>", priority[level]);
    n += snprintf(
        line + n, sizeof line - (size_t)n,
        "%04d-%02d-%02d %02d:%02d:%02d.%03d %-5s %s[%d]: ", tm.tm_year + 1900,
        tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
        (int)(tv.tv_usec / 1000), s_names[level], s_program, (int)getpid());
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line + n, sizeof line - (size_t)n - 1, fmt, ap);
    va_end(ap);
    /* One write per line, so lines from several processes do not mix. */
    size_t len = strlen(line);
    line[len++] = '\n';
    ssize_t w = write(STDERR_FILENO, line, len);
    (void)w;
}
