/* Renders a tuning run as one self-contained HTML page with inline SVG plots drawn here. */
#include "service/offline/tune_report.h"

#include "service/base/error.h"
#include "service/base/mem.h"
#include "service/base/textfile.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* An em dash, as a character reference: what a table shows for "no value". */
#define NO_VALUE "&#8212;"

/* Largest magnitude the plots place: a value beyond it is drawn at this bound, so that the
 * difference of two values (an axis span) stays finite. */
#define MAX_MAGNITUDE 1e300

/* The longest label (in characters) a categorical axis shows before cutting it with an ellipsis. */
#define MAX_TICK_LABEL_CHARS 24

/* The most labels a categorical axis shows; with more options only every k-th is labelled. */
#define MAX_CATEGORY_LABELS 30

/* The most options a categorical parameter without labels may show (larger indices are not
 * plotted). */
#define MAX_UNLABELLED_OPTIONS 1000

/* The quantile of the completed losses at which the loss axis may be clipped, and the fewest
 * completed trials for which it is. */
#define CLIP_QUANTILE   0.95
#define CLIP_MIN_TRIALS 10

/* --- a growing string ------------------------------------------------------------------------- */

struct report_buf {
    char *text; /* always NUL-terminated */
    size_t len, cap;
};

static void buf_append(struct report_buf *b, const void *bytes, size_t n)
{
    mem_grow((void **)&b->text, &b->cap, b->len + n + 1, 1);
    memcpy(b->text + b->len, bytes, n);
    b->len += n;
    b->text[b->len] = '\0';
}

static void buf_puts(struct report_buf *b, const char *s)
{
    buf_append(b, s, strlen(s));
}

static void buf_printf(struct report_buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void buf_printf(struct report_buf *b, const char *fmt, ...)
{
    va_list ap, again;
    va_start(ap, fmt);
    va_copy(again, ap);
    int n = vsnprintf(b->text + b->len, b->cap - b->len, fmt, ap);
    va_end(ap);
    if (n >= 0 && (size_t)n >= b->cap - b->len) {
        mem_grow((void **)&b->text, &b->cap, b->len + (size_t)n + 1, 1);
        vsnprintf(b->text + b->len, b->cap - b->len, fmt, again);
    }
    va_end(again);
    if (n > 0)
        b->len += (size_t)n;
    b->text[b->len] = '\0';
}

/* Returns the length of the well-formed UTF-8 sequence at p that XML allows (no surrogates, no
 * U+FFFE or U+FFFF), or 0 when there is none there. */
static size_t utf8_sequence(const unsigned char *p)
{
    unsigned char c = p[0];
    size_t n;
    uint32_t cp;
    if (c < 0x80)
        return 1;
    if (c >= 0xc2 && c <= 0xdf) {
        n = 2;
        cp = c & 0x1f;
    } else if (c >= 0xe0 && c <= 0xef) {
        n = 3;
        cp = c & 0x0f;
    } else if (c >= 0xf0 && c <= 0xf4) {
        n = 4;
        cp = c & 0x07;
    } else {
        return 0;
    }
    for (size_t i = 1; i < n; i++) {
        if ((p[i] & 0xc0) != 0x80) /* also stops at the terminating NUL */
            return 0;
        cp = (cp << 6) | (p[i] & 0x3f);
    }
    if ((n == 3 && cp < 0x800) || (n == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
        (cp >= 0xd800 && cp <= 0xdfff) || cp == 0xfffe || cp == 0xffff)
        return 0;
    return n;
}

/* Appends s (NULL: nothing) escaped for HTML text and quoted attributes, in a form XML accepts
 * too: & < > " ' as references, a byte that is not valid UTF-8 as U+FFFD, control characters
 * other than tab and newline dropped. With max_chars > 0, at most that many characters and then
 * an ellipsis when s is longer. */
static void buf_escape(struct report_buf *b, const char *s, size_t max_chars)
{
    if (!s)
        return;
    const unsigned char *p = (const unsigned char *)s;
    size_t chars = 0;
    while (*p) {
        if (max_chars > 0 && chars == max_chars) {
            buf_puts(b, "\xe2\x80\xa6"); /* U+2026, an ellipsis */
            return;
        }
        size_t n = utf8_sequence(p);
        if (n == 0) {
            buf_puts(b, "\xef\xbf\xbd"); /* U+FFFD, the replacement character */
            p++;
            chars++;
            continue;
        }
        if (n > 1) {
            buf_append(b, p, n);
            p += n;
            chars++;
            continue;
        }
        unsigned char c = *p++;
        switch (c) {
        case '&':
            buf_puts(b, "&amp;");
            break;
        case '<':
            buf_puts(b, "&lt;");
            break;
        case '>':
            buf_puts(b, "&gt;");
            break;
        case '"':
            buf_puts(b, "&quot;");
            break;
        case '\'':
            buf_puts(b, "&#39;");
            break;
        default:
            if (c < 0x20 && c != '\t' && c != '\n')
                continue; /* not allowed in XML 1.0, and nothing a reader needs */
            buf_append(b, &c, 1);
        }
        chars++;
    }
}

/* Counts the characters of s (UTF-8 lead bytes), at most limit. */
static size_t count_chars(const char *s, size_t limit)
{
    size_t n = 0;
    for (const unsigned char *p = (const unsigned char *)s; s && *p && n < limit; p++)
        n += (*p & 0xc0) != 0x80;
    return n;
}

/* --- numbers ---------------------------------------------------------------------------------- */

/* A pixel coordinate that is safe to print: never NaN or infinite, always within +-1e6. */
static double px(double v)
{
    if (!isfinite(v))
        return 0;
    return fmin(fmax(v, -1e6), 1e6);
}

static double clamp_magnitude(double v)
{
    return fmin(fmax(v, -MAX_MAGNITUDE), MAX_MAGNITUDE);
}

/* Returns "s" for a count other than 1, for plurals. */
static const char *plural(size_t n)
{
    return n == 1 ? "" : "s";
}

/* Appends a finite value with 6 significant digits, or NO_VALUE for NaN and infinities. */
static void buf_number(struct report_buf *b, double v)
{
    if (isfinite(v))
        buf_printf(b, "%.6g", v);
    else
        buf_puts(b, NO_VALUE);
}

/* Appends a duration in seconds, with a precision that suits its size. */
static void buf_seconds(struct report_buf *b, double seconds)
{
    if (!isfinite(seconds))
        buf_puts(b, NO_VALUE);
    else if (fabs(seconds) >= 1e6)
        buf_printf(b, "%.3g", seconds);
    else if (fabs(seconds) >= 100)
        buf_printf(b, "%.0f", seconds);
    else if (fabs(seconds) >= 1)
        buf_printf(b, "%.1f", seconds);
    else
        buf_printf(b, "%.3f", seconds);
}

/* Returns the q-quantile of the n >= 1 sorted values as the order statistic at rank
 * floor(q (n - 1)) (numpy.percentile's method "lower"): unlike interpolation, it never moves
 * towards a single outlier at the top when there are few values. */
static double sorted_quantile(const double *sorted, size_t n, double q)
{
    size_t rank = (size_t)floor(q * (double)(n - 1));
    return sorted[rank < n ? rank : n - 1];
}

static int compare_doubles(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* --- axes ------------------------------------------------------------------------------------- */

enum axis_scale { AXIS_LINEAR, AXIS_LOG, AXIS_CATEGORICAL };

static const char *const axis_scale_names[] = {"linear", "log", "categorical"};

struct axis {
    enum axis_scale scale;
    double lo, hi;   /* the domain, lo < hi; a log axis holds the base-10 logarithms */
    double from, to; /* the pixels that lo and hi map to */
    size_t ncat;     /* categorical: the number of columns, >= 1 */
    bool integer;    /* ticks only at whole numbers (trial ids) */
};

/* Sets a linear domain around the values in [min, max] (min > max: no values) with 5% of the span
 * as margin on each side. A range that is empty or tiny against its magnitude becomes +-5% of its
 * centre (+-1 around zero); on an integer axis +-0.5, so that its one tick is the value. */
static void axis_fit_linear(struct axis *a, double min, double max)
{
    a->scale = AXIS_LINEAR;
    if (!(min <= max)) {
        min = 0;
        max = 1;
    }
    min = clamp_magnitude(min);
    max = clamp_magnitude(max);
    double magnitude = fmax(fabs(min), fabs(max));
    if (max - min <= 1e-9 * magnitude || max - min < 1e-250) {
        double centre = min / 2 + max / 2;
        double half = a->integer ? 0.5 : fabs(centre) > 1e-200 ? 0.05 * fabs(centre) : 1;
        min = centre - half;
        max = centre + half;
    }
    double pad = 0.05 * (max - min);
    a->lo = min - pad;
    a->hi = max + pad;
}

/* Sets a log domain around the positive values in [min, max], 5% of the span (in decades) as
 * margin on each side. */
static void axis_fit_log(struct axis *a, double min, double max)
{
    a->scale = AXIS_LOG;
    double lo = log10(fmin(fmax(min, 1 / MAX_MAGNITUDE), MAX_MAGNITUDE));
    double hi = log10(fmin(fmax(max, 1 / MAX_MAGNITUDE), MAX_MAGNITUDE));
    if (hi - lo < 1) {
        lo -= 0.5;
        hi += 0.5;
    }
    double pad = 0.05 * (hi - lo);
    a->lo = lo - pad;
    a->hi = hi + pad;
}

/* Returns the pixel of a position u in [0, 1] along the axis (clamped into it). */
static double axis_unit_pixel(const struct axis *a, double u)
{
    u = fmin(fmax(u, 0), 1); /* fmax(NaN, 0) is 0 */
    return px(a->from + u * (a->to - a->from));
}

/* Returns the pixel of a position in domain units (log10 of the value on a log axis). */
static double axis_domain_pixel(const struct axis *a, double d)
{
    return axis_unit_pixel(a, (d - a->lo) / (a->hi - a->lo));
}

/* Returns the pixel of a value (an option index on a categorical axis); a value outside the
 * domain is drawn at its nearest edge. */
static double axis_pixel(const struct axis *a, double v)
{
    switch (a->scale) {
    case AXIS_CATEGORICAL:
        return axis_unit_pixel(a, (v + 0.5) / (double)a->ncat);
    case AXIS_LOG:
        return axis_domain_pixel(a, log10(fmin(fmax(v, 1 / MAX_MAGNITUDE), MAX_MAGNITUDE)));
    case AXIS_LINEAR:
        break;
    }
    return axis_domain_pixel(a, clamp_magnitude(v));
}

#define MAX_TICKS 32

/* The ticks of a linear or log axis, in domain units (decades on a log axis). */
struct ticks {
    double at[MAX_TICKS];
    size_t n;
    int step_exponent; /* the step is m * 10^step_exponent, m in {1, 2, 5} */
};

/* Returns a step of 1, 2 or 5 times a power of ten that cuts span into about 5 parts; *exponent
 * receives the power. */
static double nice_step(double span, int *exponent)
{
    double raw = span / 5;
    int e = (int)floor(log10(raw));
    double f = raw / pow(10, e);
    double m = f < 1.5 ? 1 : f < 3.5 ? 2 : f < 7.5 ? 5 : 10;
    if (m == 10) {
        m = 1;
        e++;
    }
    *exponent = e;
    return m * pow(10, e);
}

/* Fills t with the multiples of a nice step that lie in the domain: whole numbers only on an
 * integer axis, whole decades only on a log axis. A categorical axis has none. */
static void axis_ticks(const struct axis *a, struct ticks *t)
{
    t->n = 0;
    t->step_exponent = 0;
    if (a->scale == AXIS_CATEGORICAL || !(a->hi > a->lo) || !isfinite(a->hi - a->lo))
        return;
    int e = 0;
    double step = nice_step(a->hi - a->lo, &e);
    if ((a->integer || a->scale == AXIS_LOG) && step < 1) {
        step = 1;
        e = 0;
    }
    t->step_exponent = e;
    double first = ceil(a->lo / step), last = floor(a->hi / step);
    if (!isfinite(first) || !isfinite(last))
        return;
    /* Counted in integers: first + i is exact while it is a whole number below 2^53. */
    for (size_t i = 0; i < MAX_TICKS && first + (double)i <= last; i++) {
        double v = (first + (double)i) * step;
        t->at[t->n++] = v == 0 ? 0 : v; /* no "-0" */
    }
}

/* Removes the zeros that end the mantissa of a number printed with %e, and the exponent's plus
 * sign and leading zeros: "1.50e+07" becomes "1.5e7". */
static void tidy_exponent(char *text)
{
    char *e = strchr(text, 'e');
    if (!e)
        return;
    char *digits_end = NULL;
    long exponent = strtol(e + 1, &digits_end, 10);
    if (digits_end == e + 1 || *digits_end != '\0')
        return; /* not an exponent as %e writes it: the text stays as it is */
    char *end = e;
    if (memchr(text, '.', (size_t)(e - text))) {
        while (end[-1] == '0')
            end--;
        if (end[-1] == '.')
            end--;
    }
    /* Never longer than what it replaces: "e+07" has a sign and at least two digits. */
    snprintf(end, (size_t)(e - end) + strlen(e) + 1, "e%ld", exponent);
}

/* Writes the label of tick i into out: as few digits as the step needs, in plain decimals unless
 * the numbers are very large or very small; a log axis labels powers of ten. */
static void tick_label(const struct axis *a, const struct ticks *t, size_t i, char *out,
                       size_t size)
{
    double v = t->at[i];
    if (a->scale == AXIS_LOG) {
        int k = (int)lround(v);
        if (k >= -4 && k < 0)
            snprintf(out, size, "%.*f", -k, pow(10, k));
        else if (k >= 0 && k <= 6)
            snprintf(out, size, "%.0f", pow(10, k));
        else
            snprintf(out, size, "1e%d", k);
        return;
    }
    if (v == 0) {
        snprintf(out, size, "0");
        return;
    }
    double largest = fmax(fabs(t->at[0]), fabs(t->at[t->n - 1]));
    int e = t->step_exponent;
    if (largest >= 1e7 || largest < 1e-4) {
        int digits = (int)floor(log10(fabs(v))) - e;
        digits = digits < 0 ? 0 : digits > 16 ? 16 : digits;
        snprintf(out, size, "%.*e", digits, v);
        tidy_exponent(out);
    } else {
        snprintf(out, size, "%.*f", e < 0 ? -e : 0, v);
    }
}

/* Returns the value of a tick in data units. */
static double tick_value(const struct axis *a, double at)
{
    return a->scale == AXIS_LOG ? pow(10, at) : at;
}

/* --- the trials as the report sees them ------------------------------------------------------- */

struct report_row {
    const struct tune_report_trial *trial;
    bool completed; /* ok with a finite loss */
};

/* How one parameter is plotted. */
struct param_view {
    enum axis_scale scale;
    double min, max;           /* of its finite values (numeric), min > max when none */
    size_t ncat;               /* categorical: the options on the axis, >= 1 */
    const char *const *labels; /* categorical: labels[0 .. nlabels - 1], or NULL */
    size_t nlabels;
};

struct report_context {
    const struct tune_report *report;
    const char *loss_name;
    size_t nparams;
    struct report_row *rows; /* sorted by trial id */
    size_t nrows, ncompleted, nfailed;
    const struct report_row *best; /* NULL when no trial completed */
    struct axis loss;              /* the loss axis of every plot (from and to unset) */
    bool clipped;                  /* the loss axis is cut at clip_value */
    double clip_value;
    size_t nclipped; /* completed trials above the loss axis */
    struct param_view *views;
};

static int row_compare(const void *a, const void *b)
{
    const struct tune_report_trial *x = ((const struct report_row *)a)->trial;
    const struct tune_report_trial *y = ((const struct report_row *)b)->trial;
    if (x->id != y->id)
        return x->id < y->id ? -1 : 1;
    return (x > y) - (x < y); /* the same array: keeps equal ids in input order */
}

static double param_value(const struct tune_report_trial *trial, size_t p)
{
    return trial->values ? trial->values[p] : NAN;
}

/* Returns the option of a categorical value (rounded to a whole number), or -1 when the value is
 * inactive or not one of the ncat options. */
static long category_index(double v, size_t ncat)
{
    if (!isfinite(v))
        return -1;
    double r = nearbyint(v);
    if (r < 0 || r >= (double)ncat)
        return -1;
    return (long)r;
}

/* Whether trial has a value of parameter p that its plot can place. */
static bool param_active(const struct param_view *view, const struct tune_report_trial *trial,
                         size_t p)
{
    double v = param_value(trial, p);
    if (view->scale == AXIS_CATEGORICAL)
        return category_index(v, view->ncat) >= 0;
    return isfinite(v);
}

static void describe_param(struct report_context *c, size_t p)
{
    const struct tune_report *r = c->report;
    struct param_view *view = &c->views[p];
    view->min = INFINITY;
    view->max = -INFINITY;
    bool all_positive = true;
    size_t nvalues = 0, largest_option = 0;
    for (size_t i = 0; i < c->nrows; i++) {
        double v = param_value(c->rows[i].trial, p);
        if (!isfinite(v))
            continue;
        nvalues++;
        view->min = fmin(view->min, v);
        view->max = fmax(view->max, v);
        all_positive = all_positive && v > 0;
        long option = category_index(v, MAX_UNLABELLED_OPTIONS);
        if (option >= 0 && (size_t)option + 1 > largest_option)
            largest_option = (size_t)option + 1;
    }
    if (r->params[p].categorical) {
        view->scale = AXIS_CATEGORICAL;
        if (r->labels && r->labels[p] && r->nlabels && r->nlabels[p] > 0) {
            view->labels = r->labels[p];
            view->nlabels = r->nlabels[p];
            view->ncat = view->nlabels;
        } else {
            view->ncat = largest_option > 0 ? largest_option : 1;
        }
    } else if (nvalues > 0 && all_positive && view->max / view->min > 100) {
        view->scale = AXIS_LOG;
    } else {
        view->scale = AXIS_LINEAR;
    }
}

/* Fits the shared loss axis to the completed losses, clipping it at their CLIP_QUANTILE when there
 * are at least CLIP_MIN_TRIALS and the largest lies further above it than the smallest below. */
static void fit_loss_axis(struct report_context *c)
{
    double *losses = mem_alloc(c->ncompleted * sizeof(*losses));
    size_t n = 0;
    for (size_t i = 0; i < c->nrows; i++)
        if (c->rows[i].completed)
            losses[n++] = clamp_magnitude(c->rows[i].trial->loss);
    qsort(losses, n, sizeof(*losses), compare_doubles);
    if (n == 0) {
        axis_fit_linear(&c->loss, 1, 0);
        goto done;
    }
    double min = losses[0], max = losses[n - 1];
    double q = sorted_quantile(losses, n, CLIP_QUANTILE);
    if (n >= CLIP_MIN_TRIALS && max - q > q - min) {
        axis_fit_linear(&c->loss, min, q);
        for (size_t i = 0; i < n; i++)
            c->nclipped += losses[i] > c->loss.hi;
        c->clipped = c->nclipped > 0;
        c->clip_value = q;
    }
    if (!c->clipped) {
        c->nclipped = 0;
        axis_fit_linear(&c->loss, min, max);
    }
done:
    free(losses);
}

/* --- SVG -------------------------------------------------------------------------------------- */

/* A plot: its size and the rectangle its data fill, in pixels. */
struct plot {
    double width, height;
    double left, right, top, bottom;
    struct axis x, y;
    bool slant_labels; /* categorical x: its labels are slanted, to fit side by side */
};

static const char marker_fill[] = "#1f77b4";
static const char best_fill[] = "#ff7f0e";
static const char failed_stroke[] = "#d62728";

/* Returns k: a categorical axis of width pixels labels every k-th of its ncat options, so that
 * there are at most MAX_CATEGORY_LABELS labels, at least 14 pixels (a slanted line) apart. */
static size_t category_label_every(size_t ncat, double width)
{
    size_t every = (ncat + MAX_CATEGORY_LABELS - 1) / MAX_CATEGORY_LABELS;
    while (every < ncat && width / (double)ncat * (double)every < 14)
        every++;
    return every > 0 ? every : 1;
}

/* Whether the labels of a categorical axis of width pixels must be slanted to fit side by side
 * (a character is about 6.5 pixels wide). */
static bool category_labels_slant(const struct param_view *view, double width)
{
    size_t every = category_label_every(view->ncat, width), longest = 3; /* option numbers */
    for (size_t k = 0; view->labels && k < view->nlabels; k++) {
        size_t chars = count_chars(view->labels[k], MAX_TICK_LABEL_CHARS + 1);
        longest = chars > longest ? chars : longest;
    }
    double band = width / (double)view->ncat * (double)every;
    return view->ncat > 1 && (double)longest * 6.5 > band - 4;
}

/* Opens the <svg> element; the caller appends its data attributes and the closing ">". */
static void svg_open(struct report_buf *b, const struct plot *pl)
{
    buf_printf(b,
               "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%.0f\" height=\"%.0f\" "
               "viewBox=\"0 0 %.0f %.0f\" font-family=\"sans-serif\" font-size=\"11\" "
               "role=\"img\"",
               px(pl->width), px(pl->height), px(pl->width), px(pl->height));
}

/* Draws the frame, grid, ticks and axis titles. On a categorical x axis the ticks are the
 * labels (or option numbers when labels is NULL), slanted when they would not fit side by side. */
static void svg_axes(struct report_buf *b, const struct plot *pl, const char *x_title,
                     const char *y_title, const struct param_view *view)
{
    struct ticks t;
    char label[64];
    buf_printf(b,
               "<rect x=\"%.2f\" y=\"%.2f\" width=\"%.2f\" height=\"%.2f\" fill=\"#fff\" "
               "stroke=\"#999\"/>\n",
               px(pl->left), px(pl->top), px(pl->right - pl->left), px(pl->bottom - pl->top));

    axis_ticks(&pl->y, &t);
    buf_puts(b, "<g stroke=\"#e5e5e5\">");
    for (size_t i = 0; i < t.n; i++) {
        double y = axis_domain_pixel(&pl->y, t.at[i]);
        buf_printf(b, "<line x1=\"%.2f\" y1=\"%.2f\" x2=\"%.2f\" y2=\"%.2f\"/>", px(pl->left), y,
                   px(pl->right), y);
    }
    buf_puts(b, "</g>\n<g text-anchor=\"end\" fill=\"#333\">");
    for (size_t i = 0; i < t.n; i++) {
        tick_label(&pl->y, &t, i, label, sizeof(label));
        buf_printf(b, "<text class=\"tick y\" data-value=\"%.12g\" x=\"%.2f\" y=\"%.2f\">%s</text>",
                   tick_value(&pl->y, t.at[i]), px(pl->left - 6),
                   px(axis_domain_pixel(&pl->y, t.at[i]) + 4), label);
    }
    buf_puts(b, "</g>\n");

    if (pl->x.scale == AXIS_CATEGORICAL) {
        size_t ncat = pl->x.ncat, every = category_label_every(ncat, pl->right - pl->left);
        bool slant = pl->slant_labels;
        buf_puts(b, "<g fill=\"#333\">");
        for (size_t k = 0; k < ncat; k += every) {
            double x = axis_pixel(&pl->x, (double)k), y = px(pl->bottom + 16);
            if (slant)
                buf_printf(b,
                           "<text class=\"tick xcat\" x=\"%.2f\" y=\"%.2f\" text-anchor=\"end\" "
                           "transform=\"rotate(-40 %.2f %.2f)\">",
                           x, y - 4, x, y - 4);
            else
                buf_printf(b,
                           "<text class=\"tick xcat\" x=\"%.2f\" y=\"%.2f\" "
                           "text-anchor=\"middle\">",
                           x, y);
            if (view->labels && k < view->nlabels && view->labels[k])
                buf_escape(b, view->labels[k], MAX_TICK_LABEL_CHARS);
            else
                buf_printf(b, "%zu", k);
            buf_puts(b, "</text>");
        }
        buf_puts(b, "</g>\n");
    } else {
        axis_ticks(&pl->x, &t);
        buf_puts(b, "<g stroke=\"#e5e5e5\">");
        for (size_t i = 0; i < t.n; i++) {
            double x = axis_domain_pixel(&pl->x, t.at[i]);
            buf_printf(b, "<line x1=\"%.2f\" y1=\"%.2f\" x2=\"%.2f\" y2=\"%.2f\"/>", x, px(pl->top),
                       x, px(pl->bottom));
        }
        buf_puts(b, "</g>\n<g text-anchor=\"middle\" fill=\"#333\">");
        for (size_t i = 0; i < t.n; i++) {
            tick_label(&pl->x, &t, i, label, sizeof(label));
            buf_printf(
                b, "<text class=\"tick x\" data-value=\"%.12g\" x=\"%.2f\" y=\"%.2f\">%s</text>",
                tick_value(&pl->x, t.at[i]), axis_domain_pixel(&pl->x, t.at[i]),
                px(pl->bottom + 16), label);
        }
        buf_puts(b, "</g>\n");
    }

    buf_printf(b,
               "<text class=\"axis-title x\" x=\"%.2f\" y=\"%.2f\" text-anchor=\"middle\" "
               "font-size=\"12\">",
               px((pl->left + pl->right) / 2), px(pl->height - 8));
    buf_escape(b, x_title, 0);
    if (pl->x.scale == AXIS_LOG)
        buf_puts(b, " (log scale)");
    double title_y = px((pl->top + pl->bottom) / 2);
    buf_printf(b,
               "</text>\n<text class=\"axis-title y\" x=\"14\" y=\"%.2f\" text-anchor=\"middle\" "
               "font-size=\"12\" transform=\"rotate(-90 14 %.2f)\">",
               title_y, title_y);
    buf_escape(b, y_title, 0);
    buf_puts(b, "</text>\n");
}

/* Draws a completed trial at pixel x and its loss: a dot, bigger and orange for the best, or a
 * triangle on the top edge when the loss lies above the axis. The tooltip is the trial's id, its
 * loss and, for a parameter plot, the value shown as param_text (already escaped, or NULL). */
static void svg_trial_marker(struct report_buf *b, const struct report_context *c,
                             const struct plot *pl, double x, const struct report_row *row,
                             const char *param_text)
{
    bool best = row == c->best;
    double loss = row->trial->loss;
    const char *fill = best ? best_fill : marker_fill;
    bool clipped = clamp_magnitude(loss) > pl->y.hi; /* as fit_loss_axis counts them */
    if (clipped) {
        double top = px(pl->top);
        buf_printf(b,
                   "<path class=\"trial clipped%s\" d=\"M %.2f %.2f L %.2f %.2f L %.2f %.2f Z\" "
                   "fill=\"%s\">",
                   best ? " best" : "", x, top, px(x - 4), px(top + 7), px(x + 4), px(top + 7),
                   fill);
    } else {
        buf_printf(b, "<circle class=\"trial%s\" cx=\"%.2f\" cy=\"%.2f\" r=\"%d\" fill=\"%s\"%s>",
                   best ? " best" : "", x, axis_pixel(&pl->y, loss), best ? 5 : 3, fill,
                   best ? " stroke=\"#000\"" : " fill-opacity=\"0.7\"");
    }
    buf_printf(b, "<title>trial %d", row->trial->id);
    if (param_text)
        buf_printf(b, ": %s", param_text);
    buf_puts(b, ", ");
    buf_escape(b, c->loss_name, 0);
    buf_printf(b, " %.6g%s</title>", loss, best ? " (best)" : "");
    buf_puts(b, clipped ? "</path>\n" : "</circle>\n");
}

/* Draws a failed trial at pixel x: a small cross on the top edge, its reason as the tooltip. */
static void svg_failed_marker(struct report_buf *b, const struct plot *pl, double x,
                              const struct report_row *row)
{
    double y = px(pl->top);
    buf_printf(b,
               "<path class=\"failed\" d=\"M %.2f %.2f L %.2f %.2f M %.2f %.2f L %.2f %.2f\" "
               "stroke=\"%s\" stroke-width=\"1.5\"><title>trial %d failed: ",
               px(x - 3), px(y - 3), px(x + 3), px(y + 3), px(x - 3), px(y + 3), px(x + 3),
               px(y - 3), failed_stroke, row->trial->id);
    if (row->trial->ok)
        buf_puts(b, "loss is not finite");
    else
        buf_escape(b, row->trial->error, 200);
    buf_puts(b, "</title></path>\n");
}

/* A note (text already escaped) in the middle of the plot. */
static void svg_empty_note(struct report_buf *b, const struct plot *pl, const char *text)
{
    buf_printf(b,
               "<text class=\"empty-note\" x=\"%.2f\" y=\"%.2f\" text-anchor=\"middle\" "
               "fill=\"#555\">%s</text>\n",
               px((pl->left + pl->right) / 2), px((pl->top + pl->bottom) / 2), text);
}

/* Appends the note that says the loss axis is clipped. */
static void svg_clip_note(struct report_buf *b, const struct report_context *c,
                          const struct plot *pl)
{
    if (!c->clipped)
        return;
    /* Above the frame, on the right, where no marker goes. */
    buf_printf(b,
               "<text class=\"clip-note\" x=\"%.2f\" y=\"%.2f\" text-anchor=\"end\" "
               "font-size=\"10\" fill=\"#555\">%s %.4g: %zu above</text>\n",
               px(pl->right), px(pl->top - 8),
               pl->width > 500 ? "loss axis clipped at the 95th percentile" : "clipped at p95",
               c->clip_value, c->nclipped);
}

/* Appends the data-y-clip attribute of a clipped loss axis. */
static void svg_clip_attribute(struct report_buf *b, const struct report_context *c)
{
    if (c->clipped && isfinite(c->clip_value))
        buf_printf(b, " data-y-clip=\"%.17g\"", c->clip_value);
}

/* The plot of loss against trial id, with the running minimum as a step line. */
static void write_loss_plot(struct report_buf *b, const struct report_context *c)
{
    struct plot pl = {
        .width = 760, .height = 340, .left = 72, .right = 744, .top = 24, .bottom = 292};
    pl.x.integer = true;
    if (c->nrows > 0)
        axis_fit_linear(&pl.x, c->rows[0].trial->id, c->rows[c->nrows - 1].trial->id);
    else
        axis_fit_linear(&pl.x, 0, 1);
    pl.x.from = pl.left;
    pl.x.to = pl.right;
    pl.y = c->loss;
    pl.y.from = pl.bottom;
    pl.y.to = pl.top;

    svg_open(b, &pl);
    buf_puts(b, " data-plot=\"loss\"");
    svg_clip_attribute(b, c);
    buf_puts(b, ">\n");
    svg_axes(b, &pl, "trial", c->loss_name, NULL);

    /* The running minimum in id order: down at each trial that improves on it, level otherwise,
     * on to the last trial. Absolute commands only, so that a reader can take it apart. */
    if (c->ncompleted > 0) {
        buf_printf(b,
                   "<path class=\"best-so-far\" fill=\"none\" stroke=\"%s\" "
                   "stroke-width=\"1.5\" d=\"",
                   best_fill);
        double running = INFINITY;
        for (size_t i = 0; i < c->nrows; i++) {
            const struct report_row *row = &c->rows[i];
            if (!row->completed)
                continue;
            double x = axis_pixel(&pl.x, row->trial->id);
            if (running == INFINITY)
                buf_printf(b, "M %.2f %.2f", x, axis_pixel(&pl.y, row->trial->loss));
            else if (row->trial->loss < running)
                buf_printf(b, " L %.2f %.2f L %.2f %.2f", x, axis_pixel(&pl.y, running), x,
                           axis_pixel(&pl.y, row->trial->loss));
            else
                continue;
            running = row->trial->loss;
        }
        buf_printf(b, " L %.2f %.2f\"/>\n", axis_pixel(&pl.x, c->rows[c->nrows - 1].trial->id),
                   axis_pixel(&pl.y, running));
    }

    buf_puts(b, "<g class=\"trial-markers\">\n");
    for (size_t i = 0; i < c->nrows; i++)
        if (c->rows[i].completed && &c->rows[i] != c->best)
            svg_trial_marker(b, c, &pl, axis_pixel(&pl.x, c->rows[i].trial->id), &c->rows[i], NULL);
    if (c->best)
        svg_trial_marker(b, c, &pl, axis_pixel(&pl.x, c->best->trial->id), c->best, NULL);
    for (size_t i = 0; i < c->nrows; i++)
        if (!c->rows[i].completed)
            svg_failed_marker(b, &pl, axis_pixel(&pl.x, c->rows[i].trial->id), &c->rows[i]);
    buf_puts(b, "</g>\n");

    if (c->nrows == 0)
        svg_empty_note(b, &pl, "no trials");
    else if (c->ncompleted == 0)
        svg_empty_note(b, &pl, "no trial completed");
    svg_clip_note(b, c, &pl);
    buf_puts(b, "</svg>\n");
}

/* Appends the value of parameter p in trial, escaped: its label for a categorical parameter,
 * NO_VALUE when inactive. */
static void buf_param_value(struct report_buf *b, const struct report_context *c, size_t p,
                            const struct tune_report_trial *trial)
{
    const struct param_view *view = &c->views[p];
    double v = param_value(trial, p);
    if (view->scale == AXIS_CATEGORICAL && view->labels) {
        long option = category_index(v, view->nlabels);
        if (option >= 0 && view->labels[option]) {
            buf_escape(b, view->labels[option], 0);
            return;
        }
    }
    buf_number(b, v);
}

/* Appends the name of parameter p, escaped ("parameter p" when it has none). */
static void buf_param_name(struct report_buf *b, const struct report_context *c, size_t p)
{
    const char *name = c->report->params[p].name;
    if (name)
        buf_escape(b, name, 0);
    else
        buf_printf(b, "parameter %zu", p);
}

/* The scatter of loss against the value of parameter p. */
static void write_param_plot(struct report_buf *b, const struct report_context *c, size_t p)
{
    const struct param_view *view = &c->views[p];
    struct plot pl = {
        .width = 380, .height = 280, .left = 64, .right = 364, .top = 24, .bottom = 236};
    if (view->scale == AXIS_CATEGORICAL) {
        pl.x.scale = AXIS_CATEGORICAL;
        pl.x.ncat = view->ncat;
        pl.slant_labels = category_labels_slant(view, pl.right - pl.left);
        if (pl.slant_labels)
            pl.height = 330;
    } else if (view->scale == AXIS_LOG) {
        axis_fit_log(&pl.x, view->min, view->max);
    } else {
        axis_fit_linear(&pl.x, view->min, view->max);
    }
    pl.x.from = pl.left;
    pl.x.to = pl.right;
    pl.y = c->loss;
    pl.y.from = pl.bottom;
    pl.y.to = pl.top;

    char unnamed[32];
    snprintf(unnamed, sizeof(unnamed), "parameter %zu", p);
    const char *raw_name = c->report->params[p].name ? c->report->params[p].name : unnamed;
    struct report_buf name = {.text = mem_alloc(64), .cap = 64}; /* escaped */
    name.text[0] = '\0';
    buf_param_name(&name, c, p);

    svg_open(b, &pl);
    buf_printf(b, " data-plot=\"param\" data-param=\"%s\" data-scale=\"%s\"", name.text,
               axis_scale_names[view->scale]);
    svg_clip_attribute(b, c);
    buf_puts(b, ">\n");
    svg_axes(b, &pl, raw_name, c->loss_name, view);

    struct report_buf tip = {.text = mem_alloc(256), .cap = 256};
    size_t shown = 0;
    buf_puts(b, "<g class=\"trial-markers\">\n");
    for (int pass = 0; pass < 2; pass++) { /* the best last, so that it is drawn on top */
        for (size_t i = 0; i < c->nrows; i++) {
            const struct report_row *row = &c->rows[i];
            if (!row->completed || (row == c->best) != (pass == 1) ||
                !param_active(view, row->trial, p))
                continue;
            tip.len = 0;
            tip.text[0] = '\0';
            buf_puts(&tip, name.text);
            buf_puts(&tip, " = ");
            buf_param_value(&tip, c, p, row->trial);
            svg_trial_marker(b, c, &pl, axis_pixel(&pl.x, param_value(row->trial, p)), row,
                             tip.text);
            shown++;
        }
    }
    for (size_t i = 0; i < c->nrows; i++) {
        const struct report_row *row = &c->rows[i];
        if (!row->completed && param_active(view, row->trial, p))
            svg_failed_marker(b, &pl, axis_pixel(&pl.x, param_value(row->trial, p)), row);
    }
    buf_puts(b, "</g>\n");
    if (shown == 0)
        svg_empty_note(b, &pl, "no completed trial used it");
    svg_clip_note(b, c, &pl);
    buf_puts(b, "</svg>\n");
    free(tip.text);
    free(name.text);
}

/* --- HTML ------------------------------------------------------------------------------------- */

static const char page_style[] = "body{font-family:sans-serif;margin:24px;color:#222}\n"
                                 "h1{font-size:22px}h2{font-size:17px;margin-top:28px}\n"
                                 ".summary{white-space:pre-line;color:#444}\n"
                                 "table{border-collapse:collapse;font-size:13px}\n"
                                 "th,td{border:1px solid #ccc;padding:2px 8px;text-align:right}\n"
                                 "th{background:#f2f2f2}td.text{text-align:left}\n"
                                 "tr.failed td{color:#a33}tr.best td{background:#fff1c9}\n"
                                 "pre{background:#f6f6f6;padding:8px;border:1px solid #ddd}\n"
                                 "figure{display:inline-block;vertical-align:top;margin:8px}\n"
                                 "figcaption{font-size:12px;color:#444}\n";

static void write_head(struct report_buf *b, const struct report_context *c)
{
    const struct tune_report *r = c->report;
    const char *title = r->title ? r->title : "Tuning report";
    buf_puts(b, "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\"/>\n"
                "<title>");
    buf_escape(b, title, 0);
    buf_printf(b, "</title>\n<style>\n%s</style>\n</head>\n<body>\n<h1>", page_style);
    buf_escape(b, title, 0);
    buf_puts(b, "</h1>\n");
    if (r->summary && r->summary[0]) {
        buf_puts(b, "<p class=\"summary\">");
        buf_escape(b, r->summary, 0);
        buf_puts(b, "</p>\n");
    }
    buf_printf(b, "<p class=\"counts\">%zu trial%s: %zu completed, %zu failed.</p>\n", c->nrows,
               plural(c->nrows), c->ncompleted, c->nfailed);
}

static void write_best(struct report_buf *b, const struct report_context *c)
{
    buf_puts(b, "<h2>Best trial</h2>\n");
    if (!c->best) {
        buf_puts(b, "<p class=\"no-best\">No trial completed.</p>\n");
        return;
    }
    buf_puts(b, "<table class=\"best\">\n<tr><th>trial</th><th>");
    buf_escape(b, c->loss_name, 0);
    buf_puts(b, "</th>");
    for (size_t p = 0; p < c->nparams; p++) {
        buf_puts(b, "<th>");
        buf_param_name(b, c, p);
        buf_puts(b, "</th>");
    }
    buf_printf(b, "</tr>\n<tr><td class=\"best-id\">%d</td><td class=\"best-loss\">",
               c->best->trial->id);
    buf_number(b, c->best->trial->loss);
    buf_puts(b, "</td>");
    for (size_t p = 0; p < c->nparams; p++) {
        buf_puts(b, c->views[p].scale == AXIS_CATEGORICAL ? "<td class=\"text\">" : "<td>");
        buf_param_value(b, c, p, c->best->trial);
        buf_puts(b, "</td>");
    }
    buf_puts(b, "</tr>\n</table>\n");
    const char *yaml = c->report->best_config_yaml;
    if (yaml && yaml[0]) {
        buf_puts(b, "<pre class=\"config\">");
        buf_escape(b, yaml, 0);
        buf_puts(b, "</pre>\n");
    }
}

static void write_plots(struct report_buf *b, const struct report_context *c)
{
    buf_puts(b, "<h2>Loss per trial</h2>\n<figure style=\"width:760px\">\n");
    write_loss_plot(b, c);
    buf_puts(b, "<figcaption>");
    buf_escape(b, c->loss_name, 0);
    buf_puts(b, " of each completed trial by trial number (best orange); the line is the best "
                "loss so far.");
    if (c->nfailed > 0)
        buf_printf(b, " Failed trials (%zu) are the crosses on the top edge.", c->nfailed);
    if (c->clipped)
        buf_printf(b,
                   " The loss axis of this and the parameter plots is clipped at the 95th "
                   "percentile of the completed losses (%.6g) so that outliers do not flatten "
                   "the rest; the %zu trial%s above it are triangles on the top edge.",
                   c->clip_value, c->nclipped, plural(c->nclipped));
    buf_puts(b, "</figcaption>\n</figure>\n");

    if (c->nparams == 0)
        return;
    buf_puts(b, "<h2>Loss against each parameter</h2>\n");
    for (size_t p = 0; p < c->nparams; p++) {
        buf_puts(b, "<figure style=\"width:380px\">\n");
        write_param_plot(b, c, p);
        buf_puts(b, "<figcaption>");
        buf_param_name(b, c, p);
        size_t active = 0;
        for (size_t i = 0; i < c->nrows; i++)
            active += param_active(&c->views[p], c->rows[i].trial, p);
        buf_printf(b, " (%s): active in %zu of %zu trials.", axis_scale_names[c->views[p].scale],
                   active, c->nrows);
        if (c->clipped)
            buf_puts(b, " Loss axis clipped as above.");
        buf_puts(b, "</figcaption>\n</figure>\n");
    }
}

static void write_trials_table(struct report_buf *b, const struct report_context *c)
{
    buf_puts(b, "<h2>All trials</h2>\n<table class=\"trials\">\n<thead><tr><th>trial</th>"
                "<th>status</th><th>");
    buf_escape(b, c->loss_name, 0);
    buf_puts(b, "</th><th>seconds</th>");
    for (size_t p = 0; p < c->nparams; p++) {
        buf_puts(b, "<th>");
        buf_param_name(b, c, p);
        buf_puts(b, "</th>");
    }
    buf_puts(b, "</tr></thead>\n<tbody>\n");
    for (size_t i = 0; i < c->nrows; i++) {
        const struct report_row *row = &c->rows[i];
        const struct tune_report_trial *t = row->trial;
        buf_printf(b, "<tr class=\"%s%s\"><td>%d</td><td class=\"text\">",
                   row->completed ? "ok" : "failed", row == c->best ? " best" : "", t->id);
        if (row->completed) {
            buf_puts(b, "ok</td><td>");
            buf_number(b, t->loss);
        } else {
            buf_puts(b, "failed: ");
            if (t->ok)
                buf_puts(b, "loss is not finite");
            else
                buf_escape(b, t->error, 0);
            buf_printf(b, "</td><td>%s", NO_VALUE);
        }
        buf_puts(b, "</td><td>");
        buf_seconds(b, t->seconds);
        buf_puts(b, "</td>");
        for (size_t p = 0; p < c->nparams; p++) {
            buf_puts(b, c->views[p].scale == AXIS_CATEGORICAL ? "<td class=\"text\">" : "<td>");
            buf_param_value(b, c, p, t);
            buf_puts(b, "</td>");
        }
        buf_puts(b, "</tr>\n");
    }
    if (c->nrows == 0)
        buf_printf(b, "<tr><td colspan=\"%zu\" class=\"text\">No trials.</td></tr>\n",
                   4 + c->nparams);
    buf_puts(b, "</tbody>\n</table>\n");
}

char *tune_report_html(const struct tune_report *report)
{
    struct report_context c = {.report = report};
    c.loss_name = report->loss_name ? report->loss_name : "loss";
    c.nparams = report->params ? report->nparams : 0;
    c.nrows = report->trials ? report->ntrials : 0;
    c.rows = mem_calloc(c.nrows, sizeof(*c.rows));
    c.views = mem_calloc(c.nparams, sizeof(*c.views));

    for (size_t i = 0; i < c.nrows; i++) {
        const struct tune_report_trial *t = &report->trials[i];
        c.rows[i].trial = t;
        c.rows[i].completed = t->ok && isfinite(t->loss);
        c.ncompleted += c.rows[i].completed;
    }
    c.nfailed = c.nrows - c.ncompleted;
    qsort(c.rows, c.nrows, sizeof(*c.rows), row_compare);
    for (size_t i = 0; i < c.nrows; i++)
        if (c.rows[i].completed && (!c.best || c.rows[i].trial->loss < c.best->trial->loss))
            c.best = &c.rows[i];
    fit_loss_axis(&c);
    for (size_t p = 0; p < c.nparams; p++)
        describe_param(&c, p);

    struct report_buf b = {.text = mem_alloc(65536), .cap = 65536};
    b.text[0] = '\0';
    write_head(&b, &c);
    write_best(&b, &c);
    write_plots(&b, &c);
    write_trials_table(&b, &c);
    buf_puts(&b, "</body>\n</html>\n");

    free(c.views);
    free(c.rows);
    return b.text;
}

/* --- writing the file ------------------------------------------------------------------------- */

int tune_report_write(const struct tune_report *report, const char *path, char *err, size_t errsz)
{
    char *html = tune_report_html(report);
    char why[512];
    int rc = textfile_write_atomic(path, html, strlen(html), why, sizeof why);
    if (rc != TB_OK)
        tb_fail(err, errsz, rc, "tune report %s", why);
    free(html);
    return rc;
}
