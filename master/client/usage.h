/*
 * usage.h -- what the quern command tells people about calling it: its
 * help text, and the one line that says what is wrong with a command line.
 */
#ifndef QN_USAGE_H
#define QN_USAGE_H

#include <stddef.h>
#include <stdio.h>

/* Print the help text (quern --help) on f. */
void qn_usage_print(FILE *f);

/*
 * Say a usage error: printf-formatted into err (cap bytes, cut to fit),
 * or, when err is NULL, on stderr as quern says it ("quern: MESSAGE" and
 * a newline). Returns QN_EXIT_USAGE, so that callers can return it.
 */
int qn_usage_error(char *err, size_t cap, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* qn_usage_error on stderr: qn_usage_error(NULL, 0, fmt, ...). */
int qn_usage_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
