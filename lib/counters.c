/*
 * counters.c -- see counters.h.
 */
#include "counters.h"

#include "util.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

void qn_counters_init(qn_counters *cs, const char *const *names, size_t n)
{
    memset(cs, 0, sizeof *cs);
    QN_GROW(cs->v, cs->cap, n + 8);
    for (size_t i = 0; i < n; i++)
        cs->v[i] = (qn_counter){names[i], 0};
    cs->n = cs->nfixed = n;
}

size_t qn_counters_add(qn_counters *cs, const char *prefix, const char *name,
                       long long delta)
{
    size_t plen = strlen(prefix);
    for (size_t i = cs->nfixed; i < cs->n; i++) {
        const char *have = cs->v[i].name;
        if (strncmp(have, prefix, plen) == 0 &&
            strcmp(have + plen, name) == 0) {
            cs->v[i].value = qn_sat_add(cs->v[i].value, delta);
            return i;
        }
    }
    if (cs->max && cs->n >= cs->max)
        return SIZE_MAX; /* a plugin inventing names without end */
    qn_buf full = {0};
    qn_buf_printf(&full, "%s%s", prefix, name);
    qn_utf8_sanitize(full.data);
    QN_GROW(cs->v, cs->cap, cs->n + 1);
    cs->v[cs->n] = (qn_counter){full.data, delta};
    return cs->n++;
}

void qn_counters_fold(qn_counters *into, const qn_counters *from)
{
    for (size_t i = 0; i < from->n; i++)
        qn_counters_add(into, "", from->v[i].name, from->v[i].value);
}

long long qn_counters_get(const qn_counters *cs, const char *name)
{
    for (size_t i = 0; i < cs->n; i++)
        if (strcmp(cs->v[i].name, name) == 0)
            return cs->v[i].value;
    return 0;
}

void qn_counters_release(qn_counters *cs)
{
    for (size_t i = cs->nfixed; i < cs->n; i++)
        free((char *)cs->v[i].name);
    free(cs->v);
    memset(cs, 0, sizeof *cs);
}
