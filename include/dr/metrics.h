/*
 * Prometheus metrics: counters, gauges and histograms identified by name plus a label string
 * (already formatted: topic="email-backfill",outcome="ok"). Process-wide and thread-safe.
 * Label values must be bounded sets (topics, processors, outcomes), never ids.
 */
#ifndef DR_METRICS_H
#define DR_METRICS_H

#include <stddef.h>

void dr_metrics_describe(const char *name, const char *type, const char *help);
void dr_metrics_inc(const char *name, const char *labels, double v);
void dr_metrics_set(const char *name, const char *labels, double v);
/* Histogram in seconds with buckets from 0.5 ms to 10 s. */
void dr_metrics_observe(const char *name, const char *labels, double seconds);
/* n observations at once (one lock): for hot paths that gather them first. */
void dr_metrics_observe_many(const char *name, const char *labels, const double *seconds, size_t n);
/* A gauge computed when /metrics is read; fn runs on the reading thread. */
void dr_metrics_gauge_fn(const char *name, const char *labels, double (*fn)(void *), void *ctx);
/* The exposition text; caller frees. */
char *dr_metrics_render(void);
/* Current value of a counter or gauge series (0 if absent): for tests. */
double dr_metrics_value(const char *name, const char *labels);
void dr_metrics_reset(void);

#endif
