/*
 * log.h -- one line per event on stderr: time, level, program, message.
 *
 * Under systemd stderr goes to the journal as is. Messages name the ids
 * involved (job, task, attempt, worker) so a line can be grepped on its own.
 */
#ifndef QN_LOG_H
#define QN_LOG_H

enum qn_log_level {
    QN_LOG_ERROR = 0, /* something failed that an operator should see */
    QN_LOG_WARN,      /* unexpected, handled */
    QN_LOG_INFO,      /* normal lifecycle events */
    QN_LOG_DEBUG,     /* per-message detail */
};

/* Set the program name shown on each line and the most verbose level. */
void qn_log_init(const char *program, enum qn_log_level level);

/* "error", "warn", "info" or "debug". */
const char *qn_log_level_name(enum qn_log_level level);

/* Parse "error", "warn", "info" or "debug"; returns the level or -1. */
int qn_log_parse_level(const char *name);

/* Is a message at this level printed? (to skip building costly ones) */
int qn_log_enabled(enum qn_log_level level);

/* Print one line if level is enabled. */
void qn_log(enum qn_log_level level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#define qn_error(...) qn_log(QN_LOG_ERROR, __VA_ARGS__)
#define qn_warn(...) qn_log(QN_LOG_WARN, __VA_ARGS__)
#define qn_info(...) qn_log(QN_LOG_INFO, __VA_ARGS__)
#define qn_debug(...) qn_log(QN_LOG_DEBUG, __VA_ARGS__)

#endif
