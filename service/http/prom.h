/* Prometheus metrics: a registry of counters, gauges and histograms updated lock-free from any
 * thread, rendered in the text exposition format 0.0.4. */
#ifndef TRIBUTARY_PROM_H
#define TRIBUTARY_PROM_H

#include <stddef.h>

/* The Content-Type of what prom_render returns. */
#define PROM_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

/* Names: a metric name matches [a-zA-Z_:][a-zA-Z0-9_:]*, a label name [a-zA-Z_][a-zA-Z0-9_]*
 * and does not start with "__"; a histogram has no label "le". Help text is non-empty UTF-8.
 * A name or help text that breaks these rules is a programming error: the function that was
 * given it logs it with log_error and returns NULL (or ignores the update).
 *
 * Threads: every function may be called from any thread at the same time as any other, except
 * prom_registry_destroy, which must be the last call on its registry and everything in it.
 * prom_add, prom_inc, prom_set and prom_observe take no lock: they are a few atomic operations
 * on the handle prom_child returned, which stays valid until the registry is destroyed. */

enum prom_type { PROM_COUNTER, PROM_GAUGE, PROM_HISTOGRAM };

struct prom_registry; /* the metric families; owns everything below */
struct prom_family;   /* one metric name with its help, type and label names */
struct prom_metric;   /* one child of a family: one combination of label values */
struct prom_sink;     /* where a collector puts its samples during a render */

/* Returns a new, empty registry (never NULL); the caller frees it with prom_registry_destroy. */
struct prom_registry *prom_registry_new(void);

/* Frees the registry, its families and their children; every handle taken from it becomes
 * invalid. Accepts NULL. */
void prom_registry_destroy(struct prom_registry *reg);

/* Registers a counter (a value that only goes up; by convention its name ends in "_total"), or a
 * gauge, named name with help text help and the label names labels[0..nlabels) (copied; labels
 * may be NULL when nlabels is 0). Returns the family, owned by the registry, or NULL (logged)
 * when the name, a label name or the help is invalid, a label name repeats, or the name, or a
 * series name another family renders (a histogram's "<name>_bucket", "_sum", "_count"), is
 * taken. */
struct prom_family *prom_counter(struct prom_registry *reg, const char *name, const char *help,
                                 const char *const *labels, size_t nlabels);
struct prom_family *prom_gauge(struct prom_registry *reg, const char *name, const char *help,
                               const char *const *labels, size_t nlabels);

/* As prom_counter, for a histogram with the upper bounds bounds[0..nbounds) (copied), which must
 * be strictly increasing and finite, except that a last bound of +Inf is allowed and ignored:
 * the +Inf bucket is always there, so nbounds may be 0. Also NULL (logged) for bad bounds or a
 * label named "le". Renders "<name>_bucket" with "le" for each bound and +Inf (cumulative
 * counts), "<name>_sum" and "<name>_count" (which equals the +Inf bucket in every render). */
struct prom_family *prom_histogram(struct prom_registry *reg, const char *name, const char *help,
                                   const char *const *labels, size_t nlabels, const double *bounds,
                                   size_t nbounds);

/* Returns the child of f for the label values values[0..nlabels) (in the order of the family's
 * label names; NULL for a family without labels), creating it, at 0, on first use. Label values
 * may be any strings; bytes that are not valid UTF-8 are replaced by U+FFFD, so two values that
 * differ only there share a child. The child is owned by the registry and kept until it is
 * destroyed: keep the handle for the hot path instead of calling this each time (it takes the
 * family's lock). A family without labels renders its one child even before it is updated; a
 * family with labels renders the children created so far, and nothing when there are none.
 * Returns NULL (logged) when f is NULL, is a collector, or values is NULL or holds a NULL while
 * the family has labels. */
struct prom_metric *prom_child(struct prom_family *f, const char *const *values);

/* Adds v to a counter (v must be >= 0, not NaN) or a gauge (any v). Anything else (a negative
 * counter increment, a histogram, NULL) is logged and ignored. Lock-free: one atomic add when v
 * is a whole number below 2^53 on a counter (the common prom_inc), else a compare-and-swap loop
 * on a double. */
void prom_add(struct prom_metric *m, double v);

/* prom_add(m, 1). */
void prom_inc(struct prom_metric *m);

/* Sets a gauge to v. Anything but a gauge is logged and ignored. Lock-free. */
void prom_set(struct prom_metric *m, double v);

/* Records the observation v in a histogram: one atomic add to its bucket (the first whose bound
 * is >= v; NaN goes only to +Inf) and a compare-and-swap on the sum. Anything but a histogram is
 * logged and ignored. */
void prom_observe(struct prom_metric *m, double v);

/* Returns the current value of a counter or a gauge, the number of observations of a histogram,
 * or NaN for NULL. Updates made concurrently may or may not be counted. */
double prom_value(const struct prom_metric *m);

/* Writes count bounds start, start * factor, start * factor^2, ... (start * pow(factor, i))
 * into out[0..count). Returns TB_OK, or TB_USAGE (logged, out untouched) unless start > 0,
 * factor > 1, count >= 1 and every bound is finite. */
int prom_buckets_exponential(double start, double factor, size_t count, double *out);

/* Writes count bounds start, start + width, start + 2 width, ... (start + i * width) into
 * out[0..count). Returns TB_OK, or TB_USAGE (logged, out untouched) unless width > 0,
 * count >= 1 and every bound is finite. */
int prom_buckets_linear(double start, double width, size_t count, double *out);

/* A collector is a counter or gauge family whose samples are not stored in the registry but
 * produced at each render by collect(sink, opaque), for values owned elsewhere (consumer lag per
 * partition, table sizes). collect may run in any thread that calls prom_render, several at once
 * when several threads render. It runs with no lock of the registry held, so it may use the
 * registry (but not destroy it); it should be quick, as it delays the scrape.
 * It reports each sample with prom_sink_emit. Returns the family (it cannot have children) or
 * NULL (logged) as prom_counter does, and also when type is PROM_HISTOGRAM or collect is NULL. */
struct prom_family *prom_collector(struct prom_registry *reg, const char *name, const char *help,
                                   enum prom_type type, const char *const *labels, size_t nlabels,
                                   void (*collect)(struct prom_sink *sink, void *opaque),
                                   void *opaque);

/* Emits, from inside a collect callback only, the sample of the collector's family with label
 * values values[0..nlabels) (copied; NULL when it has no labels; invalid UTF-8 is replaced as in
 * prom_child) and value. A second sample with the same label values, a negative or NaN counter
 * value, or NULL values on a family with labels is logged and dropped, so the render stays
 * valid. */
void prom_sink_emit(struct prom_sink *sink, const char *const *values, double value);

/* Renders every family in the text exposition format 0.0.4, families sorted by name (byte
 * order), each a "# HELP" line, a "# TYPE" line and its samples, children sorted by their label
 * values; a family with no sample is left out. Label values are escaped (\\, \", \n), help text
 * too (\\, \n); numbers are whole numbers without exponent when exact (magnitude up to 2^53),
 * otherwise the shortest %g form that reads back to the same double (0.1, 1.5e-07, 1e+20), or
 * +Inf, -Inf, NaN. Calls the collectors. Returns the text, NUL-terminated, with its length in *len
 * (when len is not NULL); never NULL. The caller frees it. Each value is read atomically, but the
 * render is not one snapshot of the whole registry: a histogram's _sum may lag its _count under
 * concurrent observations. */
char *prom_render(struct prom_registry *reg, size_t *len);

#endif
