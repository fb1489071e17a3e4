/*
 * grep.c -- find the lines that match a POSIX extended regular expression.
 *
 *   quern run --job build/jobs/grep.so --arg pattern='err(or)?' ...
 *
 * Output lines are `SHARD:OFFSET<TAB>LINE`, where OFFSET is the byte offset
 * of the line in its file, sorted by shard and then by offset. This shows
 * three more parts of the API: setup and teardown (compile the pattern
 * once per task), quern_arg, quern_offset, and a custom key order.
 *
 * Like grep(1), it first looks for a piece of plain text every match must
 * contain (`tapodel` in `(^| )tapodel( |$)`) with memmem, and runs the
 * regular expression only on lines that have it: most lines of a search
 * for something rare never reach regexec.
 */
#include <quern.h>

#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* One task attempt is one process, so per-task state can be static. */
static regex_t re;
static int compiled;
static char *line; /* NUL-terminated copy of the current line */
static size_t line_cap;
static char *match_key; /* "shard:offset" of a match */
static size_t match_cap;
static char must[256]; /* text every match contains ("" if none known) */
static size_t must_len;

/* Is c special in an extended regular expression? */
static int special(char c)
{
    return strchr(".[]()*+?{}|^$\\", c) != NULL;
}

/*
 * The longest run of plain characters at the top level of pattern, none of
 * them made optional or repeatable by a following *, ?, + or {}: every
 * match contains it. None when the pattern has a top-level | (a match of
 * one branch need not contain the other's text). Groups and bracket
 * expressions end a run and are skipped whole.
 */
static void find_must(const char *p)
{
    char run[sizeof must];
    size_t n = 0;
    must_len = 0;
    for (size_t i = 0; p[i];) {
        char c = p[i];
        if (c == '|')
            goto none;
        if (c == '(' || c == '[') {
            /* Skip the group or bracket expression; a | inside a group
             * only concerns the group. */
            int depth = 0;
            do {
                if (p[i] == '[') {
                    i++;
                    if (p[i] == '^')
                        i++;
                    if (p[i] == ']')
                        i++;
                    while (p[i] && p[i] != ']') {
                        if (p[i] == '[' &&
                            (p[i + 1] == ':' || p[i + 1] == '.' ||
                             p[i + 1] == '=')) {
                            char end = p[i + 1];
                            i += 2;
                            while (p[i] && !(p[i] == end && p[i + 1] == ']'))
                                i++;
                            if (p[i])
                                i++;
                        }
                        if (p[i])
                            i++;
                    }
                } else if (p[i] == '\\' && p[i + 1]) {
                    i++;
                } else if (p[i] == '(') {
                    depth++;
                } else if (p[i] == ')') {
                    depth--;
                }
                if (p[i])
                    i++;
            } while (p[i] && depth > 0);
            goto end_run;
        }
        char lit;
        size_t width;
        if (c == '\\' && p[i + 1] && special(p[i + 1])) {
            lit = p[i + 1];
            width = 2;
        } else if (!special(c)) {
            lit = c;
            width = 1;
        } else if (c == '\\') {
            i += p[i + 1] ? 2 : 1; /* \< \w \1 ...: not plain text */
            goto end_run;
        } else if (c == '{') {
            while (p[i] && p[i] != '}') /* an interval: {2,3} */
                i++;
            if (p[i])
                i++;
            goto end_run;
        } else {
            i++; /* . ^ $ * + ? ) */
            goto end_run;
        }
        i += width;
        if (p[i] == '*' || p[i] == '?' || p[i] == '+' || p[i] == '{') {
            /* This character may be absent or repeated: the run ends
             * before it. */
            goto end_run;
        }
        if (n < sizeof run)
            run[n++] = lit;
        continue;
    end_run:
        if (n > must_len) {
            memcpy(must, run, n);
            must_len = n;
        }
        n = 0;
    }
    if (n > must_len) {
        memcpy(must, run, n);
        must_len = n;
    }
    return;
none:
    must_len = 0;
}

static int grep_setup(quern_task *t)
{
    const char *pattern = quern_arg(t, "pattern");
    if (!pattern)
        return 0; /* reduce tasks need no pattern; map checks below */
    int rc = regcomp(&re, pattern, REG_EXTENDED | REG_NOSUB);
    if (rc != 0) {
        char why[256];
        regerror(rc, &re, why, sizeof why);
        return quern_fail(t, "bad pattern '%s': %s", pattern, why);
    }
    compiled = 1;
    find_must(pattern);
    return 0;
}

static void grep_teardown(quern_task *t)
{
    (void)t;
    if (compiled)
        regfree(&re);
    free(line);
    free(match_key);
}

static int grep_map(quern_task *t, const void *shard, size_t klen,
                    const void *val, size_t vlen)
{
    if (!compiled)
        return quern_fail(t, "give the pattern with --arg pattern=REGEX");
    if (must_len && !memmem(val, vlen, must, must_len))
        return 0; /* cannot match */
    if (vlen + 1 > line_cap) {
        line_cap = (vlen + 1) * 2;
        line = realloc(line, line_cap);
        if (!line)
            return quern_fail(t, "out of memory");
    }
    memcpy(line, val, vlen);
    line[vlen] = '\0';
    if (regexec(&re, line, 0, NULL, 0) != 0)
        return 0;
    /* Key: "shard:offset" (quern_emit copies it, so the buffer is reused). */
    if (klen + 24 > match_cap) {
        match_cap = (klen + 24) * 2;
        match_key = realloc(match_key, match_cap);
        if (!match_key)
            return quern_fail(t, "out of memory");
    }
    memcpy(match_key, shard, klen);
    int n = snprintf(match_key + klen, 24, ":%llu", quern_offset(t));
    return quern_emit(t, match_key, klen + (size_t)n, val, vlen);
}

static int grep_reduce(quern_task *t, const void *key, size_t klen,
                       quern_values *vs)
{
    const void *val;
    size_t vlen;
    while (quern_next(vs, &val, &vlen))
        if (quern_emit(t, key, klen, val, vlen) < 0)
            return -1;
    return 0;
}

/* Split "shard:offset" at its last ':'. */
static size_t split_key(const char *k, size_t n, unsigned long long *off)
{
    size_t c = n;
    while (c > 0 && k[c - 1] != ':')
        c--;
    *off = 0;
    for (size_t i = c; i < n; i++)
        *off = *off * 10 + (unsigned)(k[i] - '0');
    return c ? c - 1 : 0;
}

/* Shard names bytewise, then offsets as numbers. */
static int grep_compare(const void *a, size_t alen, const void *b, size_t blen)
{
    unsigned long long ao, bo;
    size_t as = split_key(a, alen, &ao), bs = split_key(b, blen, &bo);
    size_t n = as < bs ? as : bs;
    int c = memcmp(a, b, n);
    if (c)
        return c;
    if (as != bs)
        return as < bs ? -1 : 1;
    return ao < bo ? -1 : ao > bo;
}

QUERN_JOB(.name = "grep", .map = grep_map, .reduce = grep_reduce,
          .compare = grep_compare, .setup = grep_setup,
          .teardown = grep_teardown);
