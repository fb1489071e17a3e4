/*
 * gentext.c -- deterministic Zipf-distributed text for tests, the demo and
 * benchmarks.
 *
 *   gentext --out DIR --size 200M [--files 8] [--vocab 50000] [--seed 1]
 *
 * Writes DIR/text-NNN.txt, each about size/files bytes of lines of 1 to 20
 * words. Words are made-up syllable strings drawn from a vocabulary with
 * Zipf's law (exponent 1), like word frequencies in real text. The same
 * arguments always produce the same bytes.
 */
#include "util.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static uint64_t s_state;

static uint64_t s_rand(void)
{
    return qn_splitmix64(&s_state);
}

static double s_unit(void)
{
    return (double)(s_rand() >> 11) / 9007199254740992.0;
}

int main(int argc, char **argv)
{
    const char *out = NULL;
    uint64_t size = 0, files = 1, vocab = 50000, seed = 1;
    static const struct option opts[] = {
        {"out", required_argument, NULL, 'o'},
        {"size", required_argument, NULL, 's'},
        {"files", required_argument, NULL, 'f'},
        {"vocab", required_argument, NULL, 'v'},
        {"seed", required_argument, NULL, 'r'},
        {NULL, 0, NULL, 0},
    };
    int c;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        int bad = 0;
        switch (c) {
        case 'o': out = optarg; break;
        case 's': bad = qn_parse_size(optarg, &size); break;
        case 'f': bad = qn_parse_uint(optarg, 1, 100000, &files); break;
        case 'v': bad = qn_parse_uint(optarg, 1, 10000000, &vocab); break;
        case 'r': bad = qn_parse_uint(optarg, 0, UINT64_MAX, &seed); break;
        default: bad = -1;
        }
        if (bad) {
            fprintf(stderr, "gentext: bad option\n");
            return 2;
        }
    }
    if (!out || !size) {
        fprintf(stderr, "usage: gentext --out DIR --size SIZE [--files N] "
                        "[--vocab N] [--seed N]\n");
        return 2;
    }
    s_state = seed;
    if (qn_mkdirs(out, 0755) < 0) {
        fprintf(stderr, "gentext: cannot create %s\n", out);
        return 1;
    }

    /* The vocabulary: distinct strings of 1-4 syllables. */
    static const char *const syl[] = {
        "ka",  "ri",  "to",  "me",  "su",  "la",  "no",  "vi",  "de",  "po",
        "an",  "el",  "is",  "or",  "un",  "ba",  "ce",  "fu",  "go",  "hi",
        "ju",  "qua", "ne",  "sho", "te",  "wa",  "xi",  "yo",  "ze",  "mar",
        "tin", "del", "ros", "gar", "pel", "son", "lin", "der", "mon", "ta"};
    size_t nsyl = QN_ARRAY_LEN(syl);
    char **words = qn_calloc(vocab, sizeof *words);
    size_t *wlen = qn_calloc(vocab, sizeof *wlen);
    for (uint64_t i = 0; i < vocab; i++) {
        /* Write i in base nsyl: distinct by construction. */
        char w[64];
        size_t n = 0;
        uint64_t x = i;
        do {
            const char *s = syl[x % nsyl];
            size_t l = strlen(s);
            memcpy(w + n, s, l);
            n += l;
            x /= nsyl;
        } while (x);
        words[i] = memcpy(qn_malloc(n), w, n);
        wlen[i] = n;
    }
    /* Zipf CDF over ranks 1..vocab. */
    double *cdf = qn_calloc(vocab, sizeof *cdf);
    double sum = 0;
    for (uint64_t i = 0; i < vocab; i++)
        cdf[i] = (sum += 1.0 / (double)(i + 1));
    for (uint64_t i = 0; i < vocab; i++)
        cdf[i] /= sum;

    uint64_t per = size / files;
    char *buf = qn_malloc(1 << 20);
    for (uint64_t f = 0; f < files; f++) {
        char path[4096];
        snprintf(path, sizeof path, "%s/text-%03llu.txt", out,
                 (unsigned long long)f);
        FILE *fp = fopen(path, "w");
        if (!fp) {
            fprintf(stderr, "gentext: %s: %s\n", path, strerror(errno));
            return 1;
        }
        uint64_t written = 0;
        uint64_t want = f + 1 == files ? size - per * (files - 1) : per;
        while (written < want) {
            size_t n = 0;
            int nw = 1 + (int)(s_rand() % 20);
            for (int k = 0; k < nw; k++) {
                double u = s_unit();
                size_t lo = 0, hi = vocab - 1;
                while (lo < hi) {
                    size_t mid = (lo + hi) / 2;
                    if (cdf[mid] < u)
                        lo = mid + 1;
                    else
                        hi = mid;
                }
                if (k)
                    buf[n++] = (s_rand() % 50) ? ' ' : '\t';
                memcpy(buf + n, words[lo], wlen[lo]);
                n += wlen[lo];
            }
            buf[n++] = '\n';
            if (written + n > want && written > 0)
                break;
            fwrite(buf, 1, n, fp);
            written += n;
        }
        if (fclose(fp) != 0) {
            fprintf(stderr, "gentext: writing %s failed\n", path);
            return 1;
        }
    }
    for (uint64_t i = 0; i < vocab; i++)
        free(words[i]);
    free(words);
    free(wlen);
    free(cdf);
    free(buf);
    return 0;
}
