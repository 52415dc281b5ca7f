/* Prometheus metrics: lock-free counters, gauges and histograms and their text exposition. */
#include "service/http/prom.h"

#include "service/base/error.h"
#include "service/base/log.h"
#include "service/base/mem.h"
#include "service/base/strmap.h"

#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* 2^53: below it every whole number is a double, and a counter's whole part is exact. */
#define PROM_EXACT_LIMIT 9007199254740992.0

struct prom_metric {
    struct prom_family *family;
    /* The label values, valid UTF-8, each followed by its NUL, back to back: the child's key in
     * the family's index. Immutable. */
    char *key;
    size_t key_len;
    char **values; /* family->nlabels pointers into key */
    /* Counter: the sum of whole-number increments, so that prom_inc is one atomic add. */
    _Atomic uint64_t whole;
    /* The bits of a double: a counter's other increments, a gauge's value, a histogram's sum. */
    _Atomic uint64_t bits;
    _Atomic uint64_t *buckets; /* histogram: family->nbounds + 1 counts, not cumulative */
};

struct prom_family {
    enum prom_type type;
    char *name, *help;
    char **labels;
    size_t nlabels;
    double *bounds; /* histogram: finite, strictly increasing; +Inf is implicit */
    size_t nbounds;
    void (*collect)(struct prom_sink *sink, void *opaque); /* NULL unless a collector */
    void *opaque;
    pthread_mutex_t lock; /* guards the children, the index and lookup, not the children's values */
    struct prom_metric **children; /* in creation order */
    size_t nchildren, children_cap;
    struct strmap *index; /* a child's key -> its place in children */
    char *lookup;         /* the key prom_child looks up, kept so that it allocates once */
    size_t lookup_cap;
};

struct prom_registry {
    pthread_mutex_t lock;          /* guards the array of families, not the families */
    struct prom_family **families; /* in creation order */
    size_t nfamilies, families_cap;
};

/* One sample a collector emitted. */
struct prom_sample {
    char **values;
    double value;
    size_t seq; /* emission order, so that the first of duplicates is the one kept */
};

struct prom_sink {
    struct prom_family *family;
    struct prom_sample *samples;
    size_t nsamples, samples_cap;
};

static const char *const prom_type_names[] = {"counter", "gauge", "histogram"};

/* --- doubles in atomics ----------------------------------------------------------------------- */

static uint64_t prom_bits_of(double v)
{
    uint64_t bits;
    memcpy(&bits, &v, sizeof bits);
    return bits;
}

static double prom_double_of(uint64_t bits)
{
    double v;
    memcpy(&v, &bits, sizeof v);
    return v;
}

static void prom_atomic_add_double(_Atomic uint64_t *cell, double v)
{
    uint64_t old = atomic_load_explicit(cell, memory_order_relaxed);
    while (!atomic_compare_exchange_weak_explicit(cell, &old, prom_bits_of(prom_double_of(old) + v),
                                                  memory_order_relaxed, memory_order_relaxed))
        ;
}

/* --- validation ------------------------------------------------------------------------------- */

static int prom_is_alpha_(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}

static int prom_is_digit(unsigned char c)
{
    return c >= '0' && c <= '9';
}

static int prom_valid_metric_name(const char *s)
{
    if (!s || !(prom_is_alpha_((unsigned char)*s) || *s == ':'))
        return 0;
    for (s++; *s; s++)
        if (!prom_is_alpha_((unsigned char)*s) && !prom_is_digit((unsigned char)*s) && *s != ':')
            return 0;
    return 1;
}

static int prom_valid_label_name(const char *s)
{
    if (!s || !prom_is_alpha_((unsigned char)*s))
        return 0;
    for (s++; *s; s++)
        if (!prom_is_alpha_((unsigned char)*s) && !prom_is_digit((unsigned char)*s))
            return 0;
    return 1;
}

/* The length of the valid UTF-8 sequence at s (1 to 4), or 0 when s does not start one: a stray
 * continuation byte, an overlong form, a surrogate, a code point above U+10FFFF, or a sequence
 * cut short (by the terminating NUL, too). */
static size_t prom_utf8_sequence(const unsigned char *s)
{
    if (s[0] < 0x80)
        return 1;
    size_t len;
    uint32_t cp, min;
    if (s[0] >= 0xC2 && s[0] <= 0xDF) {
        len = 2, cp = s[0] & 0x1Fu, min = 0x80;
    } else if (s[0] >= 0xE0 && s[0] <= 0xEF) {
        len = 3, cp = s[0] & 0x0Fu, min = 0x800;
    } else if (s[0] >= 0xF0 && s[0] <= 0xF4) {
        len = 4, cp = s[0] & 0x07u, min = 0x10000;
    } else {
        return 0;
    }
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xC0u) != 0x80)
            return 0;
        cp = (cp << 6) | (s[i] & 0x3Fu);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
        return 0;
    return len;
}

static int prom_valid_utf8(const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    while (*p) {
        size_t n = prom_utf8_sequence(p);
        if (n == 0)
            return 0;
        p += n;
    }
    return 1;
}

/* Returns a copy of s (the caller frees it) in which each byte that starts no valid UTF-8
 * sequence is replaced by U+FFFD. */
static char *prom_utf8_copy(const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    char *out = mem_alloc(3 * strlen(s) + 1);
    size_t len = 0;
    while (*p) {
        size_t n = prom_utf8_sequence(p);
        if (n == 0) {
            memcpy(out + len, "\xEF\xBF\xBD", 3);
            len += 3;
            p++;
        } else {
            memcpy(out + len, p, n);
            len += n;
            p += n;
        }
    }
    out[len] = '\0';
    return out;
}

/* --- families --------------------------------------------------------------------------------- */

static void prom_metric_free(struct prom_metric *m)
{
    if (!m)
        return;
    free((void *)m->buckets);
    free(m->values);
    free(m->key);
    free(m);
}

static void prom_family_free(struct prom_family *f)
{
    if (!f)
        return;
    for (size_t i = 0; i < f->nchildren; i++)
        prom_metric_free(f->children[i]);
    strmap_destroy(f->index);
    free(f->lookup);
    free(f->children);
    pthread_mutex_destroy(&f->lock);
    free(f->bounds);
    for (size_t i = 0; i < f->nlabels; i++)
        free(f->labels[i]);
    free(f->labels);
    free(f->help);
    free(f->name);
    free(f);
}

static const void *prom_child_key_of(const void *owner, size_t i, size_t *len)
{
    const struct prom_metric *m = ((const struct prom_family *)owner)->children[i];
    *len = m->key_len;
    return m->key;
}

struct prom_registry *prom_registry_new(void)
{
    struct prom_registry *reg = mem_calloc(1, sizeof *reg);
    pthread_mutex_init(&reg->lock, NULL);
    return reg;
}

void prom_registry_destroy(struct prom_registry *reg)
{
    if (!reg)
        return;
    for (size_t i = 0; i < reg->nfamilies; i++)
        prom_family_free(reg->families[i]);
    free(reg->families);
    pthread_mutex_destroy(&reg->lock);
    free(reg);
}

/* The names of the series a family of this type renders, besides its own name. */
static const char *const prom_histogram_suffixes[] = {"", "_bucket", "_sum", "_count"};

static size_t prom_suffix_count(enum prom_type type)
{
    return type == PROM_HISTOGRAM ? 4 : 1;
}

/* Whether a_name a_suffix and b_name b_suffix spell the same string. */
static int prom_concat_equal(const char *a_name, const char *a_suffix, const char *b_name,
                             const char *b_suffix)
{
    size_t a1 = strlen(a_name), b1 = strlen(b_name);
    if (a1 + strlen(a_suffix) != b1 + strlen(b_suffix))
        return 0;
    size_t total = a1 + strlen(a_suffix);
    for (size_t i = 0; i < total; i++) {
        char x = i < a1 ? a_name[i] : a_suffix[i - a1];
        char y = i < b1 ? b_name[i] : b_suffix[i - b1];
        if (x != y)
            return 0;
    }
    return 1;
}

/* The series name, among those family f renders, that a new family named name of type would
 * render too, or NULL when they have none in common. */
static const char *prom_collision(const struct prom_family *f, const char *name,
                                  enum prom_type type)
{
    for (size_t i = 0; i < prom_suffix_count(f->type); i++)
        for (size_t j = 0; j < prom_suffix_count(type); j++)
            if (prom_concat_equal(f->name, prom_histogram_suffixes[i], name,
                                  prom_histogram_suffixes[j]))
                return prom_histogram_suffixes[i];
    return NULL;
}

/* Checks what every kind of family is given; logs and returns 0 when something is wrong. */
static int prom_check_family(const char *kind, const char *name, const char *help,
                             const char *const *labels, size_t nlabels, int histogram)
{
    if (!prom_valid_metric_name(name)) {
        log_error("prom: %s name '%s' is invalid (want [a-zA-Z_:][a-zA-Z0-9_:]*)", kind,
                  name ? name : "(null)");
        return 0;
    }
    if (!help || !*help || !prom_valid_utf8(help)) {
        log_error("prom: %s '%s' needs help text, non-empty UTF-8", kind, name);
        return 0;
    }
    if (nlabels > 0 && !labels) {
        log_error("prom: %s '%s' has %zu labels but no label names", kind, name, nlabels);
        return 0;
    }
    for (size_t i = 0; i < nlabels; i++) {
        const char *label = labels[i];
        if (!prom_valid_label_name(label)) {
            log_error("prom: %s '%s': label name '%s' is invalid (want [a-zA-Z_][a-zA-Z0-9_]*)",
                      kind, name, label ? label : "(null)");
            return 0;
        }
        if (label[0] == '_' && label[1] == '_') {
            log_error("prom: %s '%s': label name '%s' starts with \"__\", which is reserved", kind,
                      name, label);
            return 0;
        }
        if (histogram && strcmp(label, "le") == 0) {
            log_error("prom: %s '%s': a histogram cannot have a label named \"le\"", kind, name);
            return 0;
        }
        for (size_t j = 0; j < i; j++) {
            if (strcmp(labels[j], label) == 0) {
                log_error("prom: %s '%s': label name '%s' is given twice", kind, name, label);
                return 0;
            }
        }
    }
    return 1;
}

/* Registers a family whose arguments prom_check_family accepted and whose bounds are valid:
 * returns it, or NULL (logged) when its name collides with another family's. */
static struct prom_family *prom_register(struct prom_registry *reg, const char *kind,
                                         enum prom_type type, const char *name, const char *help,
                                         const char *const *labels, size_t nlabels,
                                         const double *bounds, size_t nbounds,
                                         void (*collect)(struct prom_sink *, void *), void *opaque)
{
    struct prom_family *f = mem_calloc(1, sizeof *f);
    f->type = type;
    f->name = mem_strdup(name);
    f->help = mem_strdup(help);
    f->nlabels = nlabels;
    f->labels = mem_calloc(nlabels ? nlabels : 1, sizeof *f->labels);
    for (size_t i = 0; i < nlabels; i++)
        f->labels[i] = mem_strdup(labels[i]);
    f->nbounds = nbounds;
    f->bounds = mem_alloc((nbounds ? nbounds : 1) * sizeof *f->bounds);
    if (nbounds)
        memcpy(f->bounds, bounds, nbounds * sizeof *bounds);
    f->collect = collect;
    f->opaque = opaque;
    pthread_mutex_init(&f->lock, NULL);
    f->index = strmap_new(prom_child_key_of, f);

    pthread_mutex_lock(&reg->lock);
    for (size_t i = 0; i < reg->nfamilies; i++) {
        const struct prom_family *other = reg->families[i];
        const char *suffix = prom_collision(other, name, type);
        if (suffix) {
            pthread_mutex_unlock(&reg->lock);
            log_error("prom: %s '%s': the name '%s%s' is taken by the %s '%s'", kind, name,
                      other->name, suffix, prom_type_names[other->type], other->name);
            goto fail;
        }
    }
    mem_grow((void **)&reg->families, &reg->families_cap, reg->nfamilies + 1,
             sizeof *reg->families);
    reg->families[reg->nfamilies++] = f;
    pthread_mutex_unlock(&reg->lock);

    /* A family without labels has exactly one child: create it so that it renders from the
     * start, at 0, as Prometheus expects of an unlabelled metric. */
    if (nlabels == 0 && !collect)
        prom_child(f, NULL);
    return f;
fail:
    prom_family_free(f);
    return NULL;
}

struct prom_family *prom_counter(struct prom_registry *reg, const char *name, const char *help,
                                 const char *const *labels, size_t nlabels)
{
    if (!prom_check_family("counter", name, help, labels, nlabels, 0))
        return NULL;
    return prom_register(reg, "counter", PROM_COUNTER, name, help, labels, nlabels, NULL, 0, NULL,
                         NULL);
}

struct prom_family *prom_gauge(struct prom_registry *reg, const char *name, const char *help,
                               const char *const *labels, size_t nlabels)
{
    if (!prom_check_family("gauge", name, help, labels, nlabels, 0))
        return NULL;
    return prom_register(reg, "gauge", PROM_GAUGE, name, help, labels, nlabels, NULL, 0, NULL,
                         NULL);
}

struct prom_family *prom_histogram(struct prom_registry *reg, const char *name, const char *help,
                                   const char *const *labels, size_t nlabels, const double *bounds,
                                   size_t nbounds)
{
    if (!prom_check_family("histogram", name, help, labels, nlabels, 1))
        return NULL;
    if (nbounds > 0 && !bounds) {
        log_error("prom: histogram '%s' has %zu bounds but no array of them", name, nbounds);
        return NULL;
    }
    if (nbounds > 0 && isinf(bounds[nbounds - 1]) && bounds[nbounds - 1] > 0)
        nbounds--; /* +Inf is always the last bucket */
    for (size_t i = 0; i < nbounds; i++) {
        if (!isfinite(bounds[i])) {
            log_error("prom: histogram '%s': bound %zu is %g (want finite)", name, i, bounds[i]);
            return NULL;
        }
        if (i > 0 && !(bounds[i] > bounds[i - 1])) {
            log_error("prom: histogram '%s': bound %zu (%g) is not above bound %zu (%g)", name, i,
                      bounds[i], i - 1, bounds[i - 1]);
            return NULL;
        }
    }
    return prom_register(reg, "histogram", PROM_HISTOGRAM, name, help, labels, nlabels, bounds,
                         nbounds, NULL, NULL);
}

struct prom_family *prom_collector(struct prom_registry *reg, const char *name, const char *help,
                                   enum prom_type type, const char *const *labels, size_t nlabels,
                                   void (*collect)(struct prom_sink *sink, void *opaque),
                                   void *opaque)
{
    if (type != PROM_COUNTER && type != PROM_GAUGE) {
        log_error("prom: collector '%s' must be a counter or a gauge", name ? name : "(null)");
        return NULL;
    }
    if (!collect) {
        log_error("prom: collector '%s' has no collect function", name ? name : "(null)");
        return NULL;
    }
    if (!prom_check_family("collector", name, help, labels, nlabels, 0))
        return NULL;
    return prom_register(reg, "collector", type, name, help, labels, nlabels, NULL, 0, collect,
                         opaque);
}

/* --- children --------------------------------------------------------------------------------- */

/* Writes the label values, each repaired to valid UTF-8 where it is not and followed by its NUL,
 * into f->lookup and returns their length: the key of f's index. Under f->lock. */
static size_t prom_child_key(struct prom_family *f, const char *const *values)
{
    size_t len = 0;
    for (size_t i = 0; i < f->nlabels; i++) {
        char *repaired = prom_valid_utf8(values[i]) ? NULL : prom_utf8_copy(values[i]);
        const char *value = repaired ? repaired : values[i];
        size_t size = strlen(value) + 1;
        mem_grow((void **)&f->lookup, &f->lookup_cap, len + size, 1);
        memcpy(f->lookup + len, value, size);
        len += size;
        free(repaired);
    }
    return len;
}

/* Adds a new child with key[0..len) (as prom_child_key writes it), copied. Under f->lock. */
static struct prom_metric *prom_child_create(struct prom_family *f, const char *key, size_t len)
{
    struct prom_metric *m = mem_calloc(1, sizeof *m);
    m->family = f;
    m->key = mem_alloc(len);
    if (len > 0)
        memcpy(m->key, key, len);
    m->key_len = len;
    m->values = mem_alloc((f->nlabels ? f->nlabels : 1) * sizeof *m->values);
    for (size_t i = 0, at = 0; i < f->nlabels; i++) {
        m->values[i] = m->key + at;
        at += strlen(m->values[i]) + 1;
    }
    atomic_init(&m->whole, 0);
    atomic_init(&m->bits, prom_bits_of(0.0));
    if (f->type == PROM_HISTOGRAM) {
        m->buckets = mem_alloc((f->nbounds + 1) * sizeof *m->buckets);
        for (size_t i = 0; i <= f->nbounds; i++)
            atomic_init(&m->buckets[i], 0);
    }
    mem_grow((void **)&f->children, &f->children_cap, f->nchildren + 1, sizeof *f->children);
    f->children[f->nchildren] = m;
    strmap_put(f->index, m->key, len, f->nchildren);
    f->nchildren++;
    return m;
}

struct prom_metric *prom_child(struct prom_family *f, const char *const *values)
{
    if (!f) {
        log_error("prom: prom_child of a NULL family");
        return NULL;
    }
    if (f->collect) {
        log_error("prom: '%s' is a collector, which has no children", f->name);
        return NULL;
    }
    if (f->nlabels > 0 && !values) {
        log_error("prom: '%s' needs %zu label values, got none", f->name, f->nlabels);
        return NULL;
    }
    for (size_t i = 0; i < f->nlabels; i++) {
        if (!values[i]) {
            log_error("prom: '%s': the value of label '%s' is NULL", f->name, f->labels[i]);
            return NULL;
        }
    }
    /* The key goes into the family's own buffer: most calls find their child, and then allocate
     * nothing (a value that needs repair costs a copy). */
    pthread_mutex_lock(&f->lock);
    size_t len = prom_child_key(f, values);
    size_t i = strmap_get(f->index, f->lookup, len);
    struct prom_metric *found =
        i != STRMAP_MISSING ? f->children[i] : prom_child_create(f, f->lookup, len);
    pthread_mutex_unlock(&f->lock);
    return found;
}

/* --- updates ---------------------------------------------------------------------------------- */

void prom_add(struct prom_metric *m, double v)
{
    if (!m) {
        log_error("prom: prom_add on a NULL metric");
        return;
    }
    const struct prom_family *f = m->family;
    if (f->type == PROM_GAUGE) {
        prom_atomic_add_double(&m->bits, v);
        return;
    }
    if (f->type != PROM_COUNTER) {
        log_error("prom: prom_add on the %s '%s' (want a counter or a gauge)",
                  prom_type_names[f->type], f->name);
        return;
    }
    if (!(v >= 0)) {
        log_error("prom: counter '%s' cannot go down (prom_add of %g ignored)", f->name, v);
        return;
    }
    if (v < PROM_EXACT_LIMIT && v == floor(v))
        atomic_fetch_add_explicit(&m->whole, (uint64_t)v, memory_order_relaxed);
    else
        prom_atomic_add_double(&m->bits, v);
}

void prom_inc(struct prom_metric *m)
{
    prom_add(m, 1.0);
}

void prom_set(struct prom_metric *m, double v)
{
    if (!m) {
        log_error("prom: prom_set on a NULL metric");
        return;
    }
    if (m->family->type != PROM_GAUGE) {
        log_error("prom: prom_set on the %s '%s' (want a gauge)", prom_type_names[m->family->type],
                  m->family->name);
        return;
    }
    atomic_store_explicit(&m->bits, prom_bits_of(v), memory_order_relaxed);
}

void prom_observe(struct prom_metric *m, double v)
{
    if (!m) {
        log_error("prom: prom_observe on a NULL metric");
        return;
    }
    const struct prom_family *f = m->family;
    if (f->type != PROM_HISTOGRAM) {
        log_error("prom: prom_observe on the %s '%s' (want a histogram)", prom_type_names[f->type],
                  f->name);
        return;
    }
    /* The first bound >= v; nbounds (+Inf) when there is none, which is also where NaN goes. */
    size_t lo = 0, hi = f->nbounds;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (v <= f->bounds[mid])
            hi = mid;
        else
            lo = mid + 1;
    }
    atomic_fetch_add_explicit(&m->buckets[lo], 1, memory_order_relaxed);
    prom_atomic_add_double(&m->bits, v);
}

double prom_value(const struct prom_metric *m)
{
    if (!m)
        return NAN;
    double bits = prom_double_of(atomic_load_explicit(&m->bits, memory_order_relaxed));
    switch (m->family->type) {
    case PROM_COUNTER:
        return (double)atomic_load_explicit(&m->whole, memory_order_relaxed) + bits;
    case PROM_GAUGE:
        return bits;
    case PROM_HISTOGRAM: {
        uint64_t count = 0;
        for (size_t i = 0; i <= m->family->nbounds; i++)
            count += atomic_load_explicit(&m->buckets[i], memory_order_relaxed);
        return (double)count;
    }
    }
    return NAN;
}

/* --- bucket bounds ---------------------------------------------------------------------------- */

int prom_buckets_exponential(double start, double factor, size_t count, double *out)
{
    if (!(start > 0) || !(factor > 1) || count == 0 || !out) {
        log_error("prom: exponential buckets need start > 0, factor > 1 and count >= 1 (got %g, "
                  "%g, %zu)",
                  start, factor, count);
        return TB_USAGE;
    }
    if (!isfinite(start * pow(factor, (double)(count - 1)))) {
        log_error("prom: exponential buckets from %g by %g overflow before %zu bounds", start,
                  factor, count);
        return TB_USAGE;
    }
    for (size_t i = 0; i < count; i++)
        out[i] = start * pow(factor, (double)i);
    return TB_OK;
}

int prom_buckets_linear(double start, double width, size_t count, double *out)
{
    if (!isfinite(start) || !(width > 0) || count == 0 || !out) {
        log_error("prom: linear buckets need a finite start, width > 0 and count >= 1 (got %g, "
                  "%g, %zu)",
                  start, width, count);
        return TB_USAGE;
    }
    if (!isfinite(start + (double)(count - 1) * width)) {
        log_error("prom: linear buckets from %g by %g overflow before %zu bounds", start, width,
                  count);
        return TB_USAGE;
    }
    for (size_t i = 0; i < count; i++)
        out[i] = start + (double)i * width;
    return TB_OK;
}

/* --- collectors ------------------------------------------------------------------------------- */

void prom_sink_emit(struct prom_sink *sink, const char *const *values, double value)
{
    if (!sink) {
        log_error("prom: prom_sink_emit with a NULL sink");
        return;
    }
    struct prom_family *f = sink->family;
    if (f->nlabels > 0 && !values) {
        log_error("prom: collector '%s' emitted no label values (want %zu); dropped", f->name,
                  f->nlabels);
        return;
    }
    for (size_t i = 0; i < f->nlabels; i++) {
        if (!values[i]) {
            log_error("prom: collector '%s' emitted a NULL value of label '%s'; dropped", f->name,
                      f->labels[i]);
            return;
        }
    }
    if (f->type == PROM_COUNTER && !(value >= 0)) {
        log_error("prom: collector '%s' emitted the counter value %g; dropped", f->name, value);
        return;
    }
    mem_grow((void **)&sink->samples, &sink->samples_cap, sink->nsamples + 1,
             sizeof *sink->samples);
    struct prom_sample *s = &sink->samples[sink->nsamples];
    s->values = mem_calloc(f->nlabels ? f->nlabels : 1, sizeof *s->values);
    for (size_t i = 0; i < f->nlabels; i++)
        s->values[i] = prom_utf8_copy(values[i]);
    s->value = value;
    s->seq = sink->nsamples++;
}

/* --- rendering -------------------------------------------------------------------------------- */

struct prom_buf {
    char *data;
    size_t len, cap;
};

static void prom_buf_append(struct prom_buf *b, const char *s, size_t n)
{
    mem_grow((void **)&b->data, &b->cap, b->len + n + 1, 1);
    memcpy(b->data + b->len, s, n);
    b->len += n;
    b->data[b->len] = '\0';
}

static void prom_buf_puts(struct prom_buf *b, const char *s)
{
    prom_buf_append(b, s, strlen(s));
}

/* Appends s with backslash and newline escaped, and the double quote too when quotes. */
static void prom_buf_escaped(struct prom_buf *b, const char *s, int quotes)
{
    const char *run = s;
    for (; *s; s++) {
        const char *escape = *s == '\\'            ? "\\\\"
                             : *s == '\n'          ? "\\n"
                             : quotes && *s == '"' ? "\\\""
                                                   : NULL;
        if (escape) {
            prom_buf_append(b, run, (size_t)(s - run));
            prom_buf_puts(b, escape);
            run = s + 1;
        }
    }
    prom_buf_append(b, run, (size_t)(s - run));
}

/* Writes v as Prometheus reads it into buf (at least 32 bytes): +Inf, -Inf, NaN, a whole number
 * without exponent when it is one of magnitude up to 2^53 (so exact), else the shortest %g that
 * reads back as v. */
static void prom_format_double(double v, char *buf, size_t bufsz)
{
    if (isnan(v)) {
        snprintf(buf, bufsz, "NaN");
    } else if (isinf(v)) {
        snprintf(buf, bufsz, v > 0 ? "+Inf" : "-Inf");
    } else if (fabs(v) <= PROM_EXACT_LIMIT && v == floor(v)) {
        snprintf(buf, bufsz, "%lld", (long long)v);
    } else {
        for (int precision = 1; precision <= 17; precision++) {
            snprintf(buf, bufsz, "%.*g", precision, v);
            if (strtod(buf, NULL) == v)
                break;
        }
    }
}

static void prom_buf_double(struct prom_buf *b, double v)
{
    char num[40];
    prom_format_double(v, num, sizeof num);
    prom_buf_puts(b, num);
}

/* Appends one sample line: name suffix{labels="values",le="le"} value. le may be NULL. */
static void prom_buf_sample(struct prom_buf *b, const struct prom_family *f, const char *suffix,
                            char *const *values, const char *le, double value)
{
    prom_buf_puts(b, f->name);
    prom_buf_puts(b, suffix);
    if (f->nlabels > 0 || le) {
        prom_buf_puts(b, "{");
        for (size_t i = 0; i < f->nlabels; i++) {
            if (i > 0)
                prom_buf_puts(b, ",");
            prom_buf_puts(b, f->labels[i]);
            prom_buf_puts(b, "=\"");
            prom_buf_escaped(b, values[i], 1);
            prom_buf_puts(b, "\"");
        }
        if (le) {
            prom_buf_puts(b, f->nlabels > 0 ? ",le=\"" : "le=\"");
            prom_buf_puts(b, le);
            prom_buf_puts(b, "\"");
        }
        prom_buf_puts(b, "}");
    }
    prom_buf_puts(b, " ");
    prom_buf_double(b, value);
    prom_buf_puts(b, "\n");
}

static void prom_buf_header(struct prom_buf *b, const struct prom_family *f)
{
    prom_buf_puts(b, "# HELP ");
    prom_buf_puts(b, f->name);
    prom_buf_puts(b, " ");
    prom_buf_escaped(b, f->help, 0);
    prom_buf_puts(b, "\n# TYPE ");
    prom_buf_puts(b, f->name);
    prom_buf_puts(b, " ");
    prom_buf_puts(b, prom_type_names[f->type]);
    prom_buf_puts(b, "\n");
}

/* Compares two arrays of *nlabels label values, value by value. */
static int prom_compare_values(char *const *a, char *const *b, size_t nlabels)
{
    for (size_t i = 0; i < nlabels; i++) {
        int c = strcmp(a[i], b[i]);
        if (c != 0)
            return c;
    }
    return 0;
}

/* qsort_r comparators; nlabels points to the family's number of labels. */
static int prom_compare_children(const void *a, const void *b, void *nlabels)
{
    const struct prom_metric *x = *(struct prom_metric *const *)a;
    const struct prom_metric *y = *(struct prom_metric *const *)b;
    return prom_compare_values(x->values, y->values, *(const size_t *)nlabels);
}

static int prom_compare_samples(const void *a, const void *b, void *nlabels)
{
    const struct prom_sample *x = a, *y = b;
    int c = prom_compare_values(x->values, y->values, *(const size_t *)nlabels);
    if (c != 0)
        return c;
    return (x->seq > y->seq) - (x->seq < y->seq);
}

static int prom_compare_families(const void *a, const void *b)
{
    const struct prom_family *x = *(struct prom_family *const *)a;
    const struct prom_family *y = *(struct prom_family *const *)b;
    return strcmp(x->name, y->name);
}

static void prom_render_collector(struct prom_buf *b, struct prom_family *f)
{
    struct prom_sink sink = {.family = f};
    f->collect(&sink, f->opaque);
    if (sink.nsamples > 1)
        qsort_r(sink.samples, sink.nsamples, sizeof *sink.samples, prom_compare_samples,
                &f->nlabels);
    for (size_t i = 0; i < sink.nsamples; i++) {
        if (i == 0)
            prom_buf_header(b, f);
        const struct prom_sample *s = &sink.samples[i];
        if (i > 0 && prom_compare_values(sink.samples[i - 1].values, s->values, f->nlabels) == 0) {
            log_error("prom: collector '%s' emitted one series twice; the second is dropped",
                      f->name);
            continue;
        }
        prom_buf_sample(b, f, "", s->values, NULL, s->value);
    }
    for (size_t i = 0; i < sink.nsamples; i++) {
        for (size_t j = 0; j < f->nlabels; j++)
            free(sink.samples[i].values[j]);
        free(sink.samples[i].values);
    }
    free(sink.samples);
}

static void prom_render_histogram_child(struct prom_buf *b, const struct prom_family *f,
                                        struct prom_metric *m)
{
    char le[40];
    uint64_t cumulative = 0;
    for (size_t i = 0; i <= f->nbounds; i++) {
        cumulative += atomic_load_explicit(&m->buckets[i], memory_order_relaxed);
        prom_format_double(i < f->nbounds ? f->bounds[i] : INFINITY, le, sizeof le);
        prom_buf_sample(b, f, "_bucket", m->values, le, (double)cumulative);
    }
    double sum = prom_double_of(atomic_load_explicit(&m->bits, memory_order_relaxed));
    prom_buf_sample(b, f, "_sum", m->values, NULL, sum);
    /* The total of the buckets just read, so that _count always equals the +Inf bucket. */
    prom_buf_sample(b, f, "_count", m->values, NULL, (double)cumulative);
}

static void prom_render_family(struct prom_buf *b, struct prom_family *f)
{
    if (f->collect) {
        prom_render_collector(b, f);
        return;
    }
    pthread_mutex_lock(&f->lock);
    size_t n = f->nchildren;
    struct prom_metric **children = mem_alloc((n ? n : 1) * sizeof *children);
    if (n)
        memcpy(children, f->children, n * sizeof *children);
    pthread_mutex_unlock(&f->lock);

    qsort_r(children, n, sizeof *children, prom_compare_children, &f->nlabels);
    if (n > 0)
        prom_buf_header(b, f);
    for (size_t i = 0; i < n; i++) {
        if (f->type == PROM_HISTOGRAM)
            prom_render_histogram_child(b, f, children[i]);
        else
            prom_buf_sample(b, f, "", children[i]->values, NULL, prom_value(children[i]));
    }
    free(children);
}

char *prom_render(struct prom_registry *reg, size_t *len)
{
    struct prom_buf b = {0};
    prom_buf_append(&b, "", 0);

    pthread_mutex_lock(&reg->lock);
    size_t n = reg->nfamilies;
    struct prom_family **families = mem_alloc((n ? n : 1) * sizeof *families);
    if (n)
        memcpy(families, reg->families, n * sizeof *families);
    pthread_mutex_unlock(&reg->lock);

    qsort(families, n, sizeof *families, prom_compare_families);
    for (size_t i = 0; i < n; i++)
        prom_render_family(&b, families[i]);
    free(families);
    if (len)
        *len = b.len;
    return b.data;
}
