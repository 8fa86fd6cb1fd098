#include "dr/metrics.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "dr/buf.h"
#include "dr/util.h"

#define NBUCKETS 14
static const double bounds[NBUCKETS] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                        0.1,    0.25,  0.5,    1,     2.5,  5,     10};

enum kind { COUNTER, GAUGE, HISTOGRAM, GAUGE_FN };

struct series {
    char *name;
    char *labels;
    enum kind kind;
    double value;
    double sum;
    unsigned long long buckets[NBUCKETS + 1];
    unsigned long long count;
    double (*fn)(void *);
    void *ctx;
    struct series *next;
};

struct family {
    char *name;
    char *type;
    char *help;
    struct family *next;
};

#define NSLOTS 1024
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static struct series *slots[NSLOTS];
static struct family *families;

static unsigned hash(const char *a, const char *b)
{
    unsigned h = 2166136261u;
    for (; *a; a++) {
        h = (h ^ (unsigned char)*a) * 16777619u;
    }
    h = (h ^ '|') * 16777619u;
    for (; *b; b++) {
        h = (h ^ (unsigned char)*b) * 16777619u;
    }
    return h % NSLOTS;
}

/* Caller holds mu. */
static struct series *get(const char *name, const char *labels, enum kind kind)
{
    unsigned h;
    struct series *s;

    labels = labels ? labels : "";
    h = hash(name, labels);
    for (s = slots[h]; s; s = s->next) {
        if (strcmp(s->name, name) == 0 && strcmp(s->labels, labels) == 0) {
            return s;
        }
    }
    s = dr_xcalloc(1, sizeof(*s));
    s->name = dr_xstrdup(name);
    s->labels = dr_xstrdup(labels);
    s->kind = kind;
    s->next = slots[h];
    slots[h] = s;
    return s;
}

void dr_metrics_describe(const char *name, const char *type, const char *help)
{
    struct family *f;

    pthread_mutex_lock(&mu);
    for (f = families; f; f = f->next) {
        if (strcmp(f->name, name) == 0) {
            pthread_mutex_unlock(&mu);
            return;
        }
    }
    f = dr_xcalloc(1, sizeof(*f));
    f->name = dr_xstrdup(name);
    f->type = dr_xstrdup(type);
    f->help = dr_xstrdup(help);
    f->next = families;
    families = f;
    pthread_mutex_unlock(&mu);
}

void dr_metrics_inc(const char *name, const char *labels, double v)
{
    pthread_mutex_lock(&mu);
    get(name, labels, COUNTER)->value += v;
    pthread_mutex_unlock(&mu);
}

void dr_metrics_set(const char *name, const char *labels, double v)
{
    pthread_mutex_lock(&mu);
    get(name, labels, GAUGE)->value = v;
    pthread_mutex_unlock(&mu);
}

static void observe(struct series *s, double seconds)
{
    int i;

    for (i = 0; i < NBUCKETS && seconds > bounds[i]; i++) {
    }
    s->buckets[i]++;
    s->count++;
    s->sum += seconds;
}

void dr_metrics_observe(const char *name, const char *labels, double seconds)
{
    pthread_mutex_lock(&mu);
    observe(get(name, labels, HISTOGRAM), seconds);
    pthread_mutex_unlock(&mu);
}

void dr_metrics_observe_many(const char *name, const char *labels, const double *seconds, size_t n)
{
    struct series *s;

    if (n == 0) {
        return;
    }
    pthread_mutex_lock(&mu);
    s = get(name, labels, HISTOGRAM);
    for (size_t i = 0; i < n; i++) {
        observe(s, seconds[i]);
    }
    pthread_mutex_unlock(&mu);
}

void dr_metrics_gauge_fn(const char *name, const char *labels, double (*fn)(void *), void *ctx)
{
    struct series *s;

    pthread_mutex_lock(&mu);
    s = get(name, labels, GAUGE_FN);
    s->kind = GAUGE_FN;
    s->fn = fn;
    s->ctx = ctx;
    pthread_mutex_unlock(&mu);
}

double dr_metrics_value(const char *name, const char *labels)
{
    double v = 0;
    struct series *s;

    pthread_mutex_lock(&mu);
    labels = labels ? labels : "";
    for (s = slots[hash(name, labels)]; s; s = s->next) {
        if (strcmp(s->name, name) == 0 && strcmp(s->labels, labels) == 0) {
            v = s->kind == HISTOGRAM ? (double)s->count : s->value;
            break;
        }
    }
    pthread_mutex_unlock(&mu);
    return v;
}

static void series_text(struct dr_buf *b, const struct series *s)
{
    const char *sep = *s->labels ? "," : "";

    switch (s->kind) {
    case COUNTER:
    case GAUGE:
        dr_buf_printf(b, "%s{%s} %.17g\n", s->name, s->labels, s->value);
        break;
    case GAUGE_FN:
        dr_buf_printf(b, "%s{%s} %.17g\n", s->name, s->labels, s->fn(s->ctx));
        break;
    case HISTOGRAM: {
        unsigned long long cum = 0;
        for (int i = 0; i < NBUCKETS; i++) {
            cum += s->buckets[i];
            dr_buf_printf(b, "%s_bucket{%s%sle=\"%g\"} %llu\n", s->name, s->labels, sep, bounds[i],
                          cum);
        }
        cum += s->buckets[NBUCKETS];
        dr_buf_printf(b, "%s_bucket{%s%sle=\"+Inf\"} %llu\n", s->name, s->labels, sep, cum);
        dr_buf_printf(b, "%s_sum{%s} %.9g\n%s_count{%s} %llu\n", s->name, s->labels, s->sum,
                      s->name, s->labels, s->count);
        break;
    }
    }
}

char *dr_metrics_render(void)
{
    struct dr_buf b;
    struct family *f;

    dr_buf_init(&b, 64 * 1024 * 1024);
    pthread_mutex_lock(&mu);
    for (f = families; f; f = f->next) {
        dr_buf_printf(&b, "# HELP %s %s\n# TYPE %s %s\n", f->name, f->help, f->name, f->type);
        for (int i = 0; i < NSLOTS; i++) {
            for (struct series *s = slots[i]; s; s = s->next) {
                if (strcmp(s->name, f->name) == 0) {
                    series_text(&b, s);
                }
            }
        }
    }
    /* Series nobody described still show (untyped), so a metric cannot vanish silently. */
    for (int i = 0; i < NSLOTS; i++) {
        for (struct series *se = slots[i]; se; se = se->next) {
            int described = 0;
            for (f = families; f && !described; f = f->next) {
                described = strcmp(f->name, se->name) == 0;
            }
            if (!described) {
                series_text(&b, se);
            }
        }
    }
    pthread_mutex_unlock(&mu);
    return dr_buf_steal(&b, NULL);
}

void dr_metrics_reset(void)
{
    pthread_mutex_lock(&mu);
    for (int i = 0; i < NSLOTS; i++) {
        struct series *s = slots[i], *n;
        for (; s; s = n) {
            n = s->next;
            free(s->name);
            free(s->labels);
            free(s);
        }
        slots[i] = NULL;
    }
    while (families) {
        struct family *n = families->next;
        free(families->name);
        free(families->type);
        free(families->help);
        free(families);
        families = n;
    }
    pthread_mutex_unlock(&mu);
}
