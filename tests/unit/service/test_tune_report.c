/* Unit tests for service/tune_report: the page and every <svg> in it parse as XML (Python's
 * xml.etree), markers and crosses match the trials, the running minimum only falls, the clip is
 * numpy's 95th percentile, log and linear axes follow the data, ticks are nice, text is escaped,
 * edge cases give valid output without NaN or infinity, and the file is written or refused. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "service/base/error.h"
#include "service/base/mem.h"
#include "service/offline/tune_report.h"
#include "tests/support/support.h"

#include <ctype.h>
#include <dirent.h>
#include <float.h>
#include <limits.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* === What Python reads in a report ============================================================ */

/* Parses the page (after its doctype) and each <svg>...</svg> with xml.etree, which raises (and so
 * fails the test) on anything that is not well-formed, and prints one line of facts per plot. */
static const char analyse_py[] =
    "import math, re, sys\n"
    "import xml.etree.ElementTree as ET\n"
    "html = open(sys.argv[1], encoding='utf-8').read()\n"
    "doc = ET.fromstring(re.sub(r'^<!DOCTYPE html>\\s*', '', html))\n"
    "print('title=' + (doc.find('head/title').text or ''))\n"
    "svgs = re.findall(r'<svg\\b.*?</svg>', html, re.S)\n"
    "print('svgs=%d' % len(svgs))\n"
    "COORDS = ('x', 'y', 'x1', 'y1', 'x2', 'y2', 'cx', 'cy', 'r', 'width', 'height')\n"
    "def classes(e):\n"
    "    return (e.get('class') or '').split()\n"
    "def linear_ok(values, integer):\n"
    "    if len(values) < 2:\n"
    "        return False\n"
    "    step = values[1] - values[0]\n"
    "    if step <= 0 or any(abs(b - a - step) > 1e-9 * step for a, b in zip(values, "
    "values[1:])):\n"
    "        return False\n"
    "    mantissa = step / 10 ** math.floor(math.log10(step) + 1e-9)\n"
    "    if min(abs(mantissa - m) for m in (1, 2, 5)) > 1e-6:\n"
    "        return False\n"
    "    if any(abs(v / step - round(v / step)) > 1e-6 for v in values):\n"
    "        return False\n"
    "    return not integer or all(v == int(v) for v in values)\n"
    "def log_ok(values):\n"
    "    if len(values) < 2 or min(values) <= 0:\n"
    "        return False\n"
    "    ks = [math.log10(v) for v in values]\n"
    "    if any(abs(k - round(k)) > 1e-9 for k in ks):\n"
    "        return False\n"
    "    gaps = {round(b) - round(a) for a, b in zip(ks, ks[1:])}\n"
    "    return len(gaps) == 1 and gaps.pop() > 0\n"
    "def readable(ticks):\n"
    "    for e in ticks:\n"
    "        text, value = ''.join(e.itertext()), float(e.get('data-value'))\n"
    "        if len(text) > 8 or abs(float(text) - value) > 1e-9 * abs(value):\n"
    "            return False\n"
    "    return True\n"
    "for s in svgs:\n"
    "    root = ET.fromstring(s)\n"
    "    size = max(float(root.get('width')), float(root.get('height')))\n"
    "    elements = list(root.iter())\n"
    "    def count(name):\n"
    "        return sum(name in classes(e) for e in elements)\n"
    "    bounds = True\n"
    "    for e in elements:\n"
    "        nums = [float(e.get(a)) for a in COORDS if e.get(a) is not None]\n"
    "        nums += [float(t) for t in re.findall(r'-?[0-9.]+', e.get('d') or '')]\n"
    "        bounds = bounds and all(math.isfinite(v) and -10 <= v <= size + 10 for v in nums)\n"
    "    xt = [e for e in elements if classes(e) == ['tick', 'x']]\n"
    "    yt = [e for e in elements if classes(e) == ['tick', 'y']]\n"
    "    cats = [''.join(e.itertext()) for e in elements if classes(e) == ['tick', 'xcat']]\n"
    "    plot, scale = root.get('data-plot'), root.get('data-scale', '-')\n"
    "    xs = [float(e.get('data-value')) for e in xt]\n"
    "    ys = [float(e.get('data-value')) for e in yt]\n"
    "    if scale == 'categorical':\n"
    "        nice_x = not xt and len(cats) > 0\n"
    "    elif scale == 'log':\n"
    "        nice_x = log_ok(xs)\n"
    "    else:\n"
    "        nice_x = linear_ok(xs, plot == 'loss')\n"
    "    paths = [e for e in elements if 'best-so-far' in classes(e)]\n"
    "    points, monotone, end_y = 0, True, '-'\n"
    "    for p in paths:\n"
    "        d = p.get('d')\n"
    "        if not re.fullmatch(r'M -?[0-9.]+ -?[0-9.]+( L -?[0-9.]+ -?[0-9.]+)*', d):\n"
    "            monotone = False\n"
    "            continue\n"
    "        nums = [float(t) for t in d.split() if t not in ('M', 'L')]\n"
    "        px, py = nums[0::2], nums[1::2]\n"
    "        points = len(px)\n"
    "        monotone = monotone and all(b >= a for a, b in zip(px, px[1:]))\n"
    "        monotone = monotone and all(b >= a for a, b in zip(py, py[1:]))\n"
    "        end_y = repr(py[-1])\n"
    "    best = [e for e in elements if 'best' in classes(e)]\n"
    "    best_cy = best[0].get('cy') if best and best[0].get('cy') else '-'\n"
    "    print('svg plot=%s scale=%s trials=%d failed=%d best=%d clipped=%d clip=%s paths=%d '\n"
    "          'points=%d monotone=%d end_y=%s best_cy=%s nice_x=%d nice_y=%d readable=%d '\n"
    "          'bounds=%d ncat=%d param=%s' % (plot, scale, count('trial'), count('failed'),\n"
    "          count('best'), count('clipped'), root.get('data-y-clip', '-'), len(paths), points,\n"
    "          monotone, end_y, best_cy, nice_x, linear_ok(ys, False), readable(xt + yt), bounds,\n"
    "          len(cats), root.get('data-param', '-')))\n"
    "    for c in cats:\n"
    "        print('cat=' + c)\n"
    "rows = doc.findall(\".//table[@class='trials']/tbody/tr\")\n"
    "print('rows=%d' % sum(1 for r in rows if classes(r)[:1] in (['ok'], ['failed'])))\n"
    "ids = doc.findall(\".//td[@class='best-id']\")\n"
    "print('best_id=' + (ids[0].text if ids else '-'))\n";

#define MAX_SVGS 16
#define MAX_CATS 64

/* The facts of one plot, as analyse_py printed them. */
struct svg_facts {
    char plot[16], scale[16], clip[48], end_y[32], best_cy[32], param[128];
    int trials, failed, best, clipped, paths, points, monotone, nice_x, nice_y, readable, bounds;
    int ncat;
    char cats[MAX_CATS][64];
};

struct report_facts {
    char title[256];
    size_t nsvgs;
    struct svg_facts svgs[MAX_SVGS];
    int rows;
    char best_id[32];
};

/* Copies the value of "key=" in line into out: up to the next space, or the rest of the line for
 * the last key ("param", "cat", "title"). Fails the test when the key is missing. */
static void field(const char *line, const char *key, char *out, size_t size)
{
    char pattern[32];
    snprintf(pattern, sizeof(pattern), " %s=", key);
    const char *at = strstr(line, pattern);
    if (at)
        at += strlen(pattern);
    else if (strncmp(line, pattern + 1, strlen(pattern) - 1) == 0)
        at = line + strlen(pattern) - 1;
    else
        fail_msg("no %s in '%s'", key, line);
    bool rest = strcmp(key, "param") == 0 || strcmp(key, "cat") == 0 || strcmp(key, "title") == 0;
    size_t len = rest ? strlen(at) : strcspn(at, " ");
    assert_true(len < size);
    memcpy(out, at, len);
    out[len] = '\0';
}

static int int_field(const char *line, const char *key)
{
    char text[32];
    field(line, key, text, sizeof(text));
    return atoi(text);
}

/* Renders html through analyse_py and fills *facts. */
static void analyse(const char *html, struct report_facts *facts)
{
    memset(facts, 0, sizeof(*facts));
    char *path = NULL;
    FILE *fp = support_temp_file("tune_report", &path);
    assert_int_equal(fwrite(html, 1, strlen(html), fp), strlen(html));
    assert_int_equal(fclose(fp), 0);
    char *out = support_python("-c", analyse_py, path, NULL);
    unlink(path);
    free(path);

    char *cursor = out, *line;
    struct svg_facts *svg = NULL;
    while ((line = support_next_line(&cursor))) {
        if (strncmp(line, "svg ", 4) == 0) {
            assert_true(facts->nsvgs < MAX_SVGS);
            svg = &facts->svgs[facts->nsvgs++];
            field(line, "plot", svg->plot, sizeof(svg->plot));
            field(line, "scale", svg->scale, sizeof(svg->scale));
            field(line, "clip", svg->clip, sizeof(svg->clip));
            field(line, "end_y", svg->end_y, sizeof(svg->end_y));
            field(line, "best_cy", svg->best_cy, sizeof(svg->best_cy));
            field(line, "param", svg->param, sizeof(svg->param));
            svg->trials = int_field(line, "trials");
            svg->failed = int_field(line, "failed");
            svg->best = int_field(line, "best");
            svg->clipped = int_field(line, "clipped");
            svg->paths = int_field(line, "paths");
            svg->points = int_field(line, "points");
            svg->monotone = int_field(line, "monotone");
            svg->nice_x = int_field(line, "nice_x");
            svg->nice_y = int_field(line, "nice_y");
            svg->readable = int_field(line, "readable");
            svg->bounds = int_field(line, "bounds");
            svg->ncat = int_field(line, "ncat");
        } else if (strncmp(line, "cat=", 4) == 0) {
            assert_non_null(svg);
            size_t k = 0;
            while (k < MAX_CATS && svg->cats[k][0])
                k++;
            assert_true(k < MAX_CATS);
            field(line, "cat", svg->cats[k], sizeof(svg->cats[k]));
        } else if (strncmp(line, "title=", 6) == 0) {
            field(line, "title", facts->title, sizeof(facts->title));
        } else if (strncmp(line, "rows=", 5) == 0) {
            facts->rows = int_field(line, "rows");
        } else if (strncmp(line, "best_id=", 8) == 0) {
            field(line, "best_id", facts->best_id, sizeof(facts->best_id));
        } else if (strncmp(line, "svgs=", 5) == 0) {
            /* checked through nsvgs, which counts the plots parsed one by one */
        } else {
            fail_msg("unexpected line from the analyser: '%s'", line);
        }
    }
    free(out);
}

/* Fails the test when text contains "nan" or "inf" in any case: no non-finite number may reach
 * the page, and nothing on the page happens to spell them. */
static void assert_no_nonfinite(const char *html)
{
    for (const char *p = html; *p; p++) {
        char a = (char)tolower((unsigned char)p[0]);
        if (!p[1] || !p[2])
            break;
        char b = (char)tolower((unsigned char)p[1]), c = (char)tolower((unsigned char)p[2]);
        if ((a == 'n' && b == 'a' && c == 'n') || (a == 'i' && b == 'n' && c == 'f'))
            fail_msg("'%.3s' at offset %td: ...%.60s...", p, p - html,
                     p - html > 30 ? p - 30 : html);
    }
}

/* === A realistic study: 40 trials of a four-parameter space ====================================
 */

enum { MAIN_TRIALS = 40, MAIN_PARAMS = 4, DIVERGENT_ID = 20 };
enum { P_LR, P_DEPTH, P_OPTIMIZER, P_MOMENTUM };

static const char *const optimizer_labels[] = {"adam", "sgd", "rms<prop>"};
static const char *const *const main_labels[MAIN_PARAMS] = {NULL, NULL, optimizer_labels, NULL};
static const size_t main_nlabels[MAIN_PARAMS] = {0, 0, 3, 0};
static const struct tune_report_param main_params[MAIN_PARAMS] = {
    {"lr", false}, {"depth", false}, {"optimizer", true}, {"momentum", false}};

struct main_study {
    struct tune_report_trial trials[MAIN_TRIALS];
    double values[MAIN_TRIALS][MAIN_PARAMS];
    struct tune_report report;
    size_t ncompleted, nfailed;
    int best_id;
};

/* Fills a study of 40 trials stored newest first: lr loguniform on [1e-4, 1e-1], depth 2..9,
 * optimizer one of 3, momentum active only with sgd; every trial with id % 7 == 3 failed and
 * trial DIVERGENT_ID has a loss of 1e6. */
static void main_study_fill(struct main_study *s)
{
    memset(s, 0, sizeof(*s));
    support_rng_seed(20240611);
    double best_loss = INFINITY;
    s->best_id = -1;
    for (size_t i = 0; i < MAIN_TRIALS; i++) {
        int id = MAIN_TRIALS - 1 - (int)i;
        double *v = s->values[i];
        v[P_LR] = pow(10, -4 + 3 * support_rng_uniform());
        v[P_DEPTH] = 2 + floor(8 * support_rng_uniform());
        v[P_OPTIMIZER] = floor(3 * support_rng_uniform());
        v[P_MOMENTUM] = v[P_OPTIMIZER] == 1 ? 0.5 + 0.49 * support_rng_uniform() : NAN;
        bool ok = id % 7 != 3;
        double loss = 0.5 + 0.1 * pow(log10(v[P_LR]) + 2.5, 2) + 0.02 * v[P_DEPTH] +
                      0.05 * support_rng_uniform();
        if (id == DIVERGENT_ID)
            loss = 1e6;
        s->trials[i] = (struct tune_report_trial){
            .id = id,
            .ok = ok,
            .loss = ok ? loss : NAN,
            .values = v,
            .seconds = 1 + 30 * support_rng_uniform(),
            .error = ok ? NULL : "worker lost: <signal 9> & core",
        };
        if (ok) {
            s->ncompleted++;
            if (loss < best_loss || (loss == best_loss && id < s->best_id)) {
                best_loss = loss;
                s->best_id = id;
            }
        } else {
            s->nfailed++;
        }
    }
    s->report = (struct tune_report){
        .title = "fd001-rul: TPE, 40 trials",
        .loss_name = "cv_rmse",
        .params = main_params,
        .nparams = MAIN_PARAMS,
        .labels = main_labels,
        .nlabels = main_nlabels,
        .trials = s->trials,
        .ntrials = MAIN_TRIALS,
        .best_config_yaml = "model: ridge\nlr: 0.003\n",
        .summary = "budget 40 trials, 4 in parallel, seed 7; stopped: budget spent",
    };
}

/* Returns the trial with the given id. */
static const struct tune_report_trial *main_trial(const struct main_study *s, int id)
{
    for (size_t i = 0; i < MAIN_TRIALS; i++)
        if (s->trials[i].id == id)
            return &s->trials[i];
    fail_msg("no trial %d", id);
    return NULL;
}

/* Renders and analyses the main study. */
static char *main_render(struct main_study *s, struct report_facts *facts)
{
    main_study_fill(s);
    char *html = tune_report_html(&s->report);
    assert_non_null(html);
    assert_no_nonfinite(html);
    analyse(html, facts);
    assert_int_equal(facts->nsvgs, 1 + MAIN_PARAMS);
    assert_string_equal(facts->svgs[0].plot, "loss");
    for (size_t p = 0; p < MAIN_PARAMS; p++) {
        assert_string_equal(facts->svgs[1 + p].plot, "param");
        assert_string_equal(facts->svgs[1 + p].param, main_params[p].name);
    }
    return html;
}

static void test_loss_plot_marks_every_trial(void **state)
{
    (void)state;
    struct main_study s;
    struct report_facts f;
    char *html = main_render(&s, &f);
    const struct svg_facts *loss = &f.svgs[0];
    assert_int_equal(loss->trials, s.ncompleted);
    assert_int_equal(loss->failed, s.nfailed);
    assert_int_equal(loss->best, 1);
    assert_int_equal(loss->bounds, 1);
    assert_string_equal(f.title, "fd001-rul: TPE, 40 trials");
    char want_id[32];
    snprintf(want_id, sizeof(want_id), "%d", s.best_id);
    assert_string_equal(f.best_id, want_id);
    assert_int_equal(f.rows, MAIN_TRIALS);
    /* The failure reason is shown, escaped. */
    assert_non_null(strstr(html, "worker lost: &lt;signal 9&gt; &amp; core"));
    free(html);
}

static void test_best_so_far_only_falls(void **state)
{
    (void)state;
    struct main_study s;
    struct report_facts f;
    char *html = main_render(&s, &f);
    const struct svg_facts *loss = &f.svgs[0];
    /* Improvements of the running minimum, in id order. */
    size_t improvements = 0;
    double running = INFINITY;
    for (int id = 0; id < MAIN_TRIALS; id++) {
        const struct tune_report_trial *t = main_trial(&s, id);
        if (!t->ok)
            continue;
        if (running != INFINITY && t->loss < running)
            improvements++;
        if (t->loss < running)
            running = t->loss;
    }
    assert_true(improvements >= 2);
    assert_int_equal(loss->paths, 1);
    assert_int_equal(loss->monotone, 1);
    /* A start, two corners per improvement, and the end at the last trial. */
    assert_int_equal(loss->points, 2 + 2 * improvements);
    /* It ends at the level of the best trial's marker. */
    assert_string_not_equal(loss->best_cy, "-");
    support_assert_close_floor(atof(loss->end_y), atof(loss->best_cy), 0, 0.011,
                               "end of the best-so-far line against the best marker");
    free(html);
}

static void test_loss_axis_clipped_at_numpy_percentile(void **state)
{
    (void)state;
    struct main_study s;
    struct report_facts f;
    char *html = main_render(&s, &f);

    size_t len = 0, cap = 0;
    char *arg = NULL;
    double min = INFINITY;
    for (size_t i = 0; i < MAIN_TRIALS; i++) {
        if (!s.trials[i].ok)
            continue;
        mem_grow((void **)&arg, &cap, len + 32, 1);
        len += (size_t)snprintf(arg + len, cap - len, "%s%.17g", len ? "," : "", s.trials[i].loss);
        min = fmin(min, s.trials[i].loss);
    }
    char *out = support_python("-c",
                               "import sys, numpy\n"
                               "losses = [float(v) for v in sys.argv[1].split(',')]\n"
                               "print(repr(float(numpy.percentile(losses, 95, method='lower'))))\n",
                               arg, NULL);
    double want = strtod(out, NULL);
    free(out);
    free(arg);

    for (size_t k = 0; k < f.nsvgs; k++) {
        assert_string_not_equal(f.svgs[k].clip, "-");
        assert_true(strtod(f.svgs[k].clip, NULL) == want);
    }
    /* The axis ends 5% of its span above the percentile: the trials beyond are triangles. */
    double top = want + 0.05 * (want - min);
    int beyond = 0;
    for (size_t i = 0; i < MAIN_TRIALS; i++)
        beyond += s.trials[i].ok && s.trials[i].loss > top;
    assert_true(beyond >= 1);
    assert_int_equal(f.svgs[0].clipped, beyond);
    assert_int_equal(f.svgs[1 + P_LR].clipped, beyond);
    assert_non_null(strstr(html, "class=\"clip-note\""));
    assert_non_null(strstr(html, "clipped at the 95th percentile"));
    /* The divergent trial is still in the table. */
    assert_non_null(strstr(html, "<td>1e+06</td>"));
    free(html);
}

static void test_axis_scales_follow_the_data(void **state)
{
    (void)state;
    struct main_study s;
    struct report_facts f;
    char *html = main_render(&s, &f);
    double lr_min = INFINITY, lr_max = 0;
    for (size_t i = 0; i < MAIN_TRIALS; i++) {
        lr_min = fmin(lr_min, s.values[i][P_LR]);
        lr_max = fmax(lr_max, s.values[i][P_LR]);
    }
    assert_true(lr_max / lr_min > 100); /* the premise: lr spans more than 2 decades */
    assert_string_equal(f.svgs[1 + P_LR].scale, "log");
    assert_string_equal(f.svgs[1 + P_DEPTH].scale, "linear");
    assert_string_equal(f.svgs[1 + P_MOMENTUM].scale, "linear");
    assert_string_equal(f.svgs[1 + P_OPTIMIZER].scale, "categorical");
    assert_int_equal(f.svgs[1 + P_OPTIMIZER].ncat, 3);
    for (size_t k = 0; k < 3; k++)
        assert_string_equal(f.svgs[1 + P_OPTIMIZER].cats[k], optimizer_labels[k]);
    free(html);
}

static void test_parameter_plots_mark_active_trials(void **state)
{
    (void)state;
    struct main_study s;
    struct report_facts f;
    char *html = main_render(&s, &f);
    int sgd_completed = 0, sgd_failed = 0;
    bool best_uses_sgd = main_trial(&s, s.best_id)->values[P_OPTIMIZER] == 1;
    for (size_t i = 0; i < MAIN_TRIALS; i++) {
        if (s.values[i][P_OPTIMIZER] != 1)
            continue;
        sgd_completed += s.trials[i].ok;
        sgd_failed += !s.trials[i].ok;
    }
    for (size_t p = 0; p < MAIN_PARAMS; p++) {
        const struct svg_facts *plot = &f.svgs[1 + p];
        bool conditional = p == P_MOMENTUM;
        assert_int_equal(plot->trials, conditional ? sgd_completed : (int)s.ncompleted);
        assert_int_equal(plot->failed, conditional ? sgd_failed : (int)s.nfailed);
        assert_int_equal(plot->best, conditional && !best_uses_sgd ? 0 : 1);
        assert_int_equal(plot->paths, 0);
        assert_int_equal(plot->bounds, 1);
    }
    free(html);
}

static void test_ticks_are_nice_and_readable(void **state)
{
    (void)state;
    struct main_study s;
    struct report_facts f;
    char *html = main_render(&s, &f);
    for (size_t k = 0; k < f.nsvgs; k++) {
        const struct svg_facts *plot = &f.svgs[k];
        if (plot->nice_x != 1 || plot->nice_y != 1 || plot->readable != 1)
            fail_msg("plot %zu (%s %s): nice_x %d nice_y %d readable %d", k, plot->plot,
                     plot->param, plot->nice_x, plot->nice_y, plot->readable);
    }
    free(html);
}

static void test_text_is_escaped(void **state)
{
    (void)state;
    static const char *const labels0[] = {"x<y", "\"q\"", "&amp;"};
    static const char *const *const labels[] = {labels0, NULL};
    static const size_t nlabels[] = {3, 0};
    static const struct tune_report_param params[] = {{"<a&b>", true}, {"it's", false}};
    const double v[][2] = {{0, 1}, {1, 2}, {2, 3}};
    const struct tune_report_trial trials[] = {
        {.id = 0, .ok = true, .loss = 0.3, .values = v[0], .seconds = 1},
        {.id = 1, .ok = true, .loss = 0.2, .values = v[1], .seconds = 1},
        {.id = 2, .ok = false, .values = v[2], .seconds = 1, .error = "bad <input> & worse"},
    };
    const struct tune_report report = {
        .title = "Fish & \"chips\" <b>",
        .loss_name = "<loss>",
        .params = params,
        .nparams = 2,
        .labels = labels,
        .nlabels = nlabels,
        .trials = trials,
        .ntrials = 3,
        .best_config_yaml = "a: <script>alert(1)</script>\nb: 'x' & \"y\"\n",
        .summary = "seed <7>",
    };
    char *html = tune_report_html(&report);
    struct report_facts f;
    analyse(html, &f);
    assert_string_equal(f.title, report.title);
    assert_int_equal(f.nsvgs, 3);
    assert_string_equal(f.svgs[1].param, "<a&b>");
    assert_string_equal(f.svgs[2].param, "it's");
    assert_int_equal(f.svgs[1].ncat, 3);
    for (size_t k = 0; k < 3; k++)
        assert_string_equal(f.svgs[1].cats[k], labels0[k]);

    static const char *const raw[] = {"<a&b>",   "<script>", "<b>",   "<loss>",
                                      "<input>", "<7>",      "\"q\"", "x<y"};
    for (size_t i = 0; i < sizeof(raw) / sizeof(raw[0]); i++)
        if (strstr(html, raw[i]))
            fail_msg("'%s' appears unescaped", raw[i]);
    static const char *const escaped[] = {
        "&lt;a&amp;b&gt;",
        "&lt;script&gt;alert(1)&lt;/script&gt;",
        "&#39;x&#39; &amp; &quot;y&quot;",
        "&amp;amp;",
        "bad &lt;input&gt; &amp; worse",
        "Fish &amp; &quot;chips&quot;",
    };
    for (size_t i = 0; i < sizeof(escaped) / sizeof(escaped[0]); i++)
        if (!strstr(html, escaped[i]))
            fail_msg("'%s' is missing", escaped[i]);
    free(html);
}

/* === Edge cases =============================================================================== */

#define EDGE_MAX_TRIALS 14

struct edge_case {
    struct tune_report_trial trials[EDGE_MAX_TRIALS];
    size_t ntrials;
    size_t nparams; /* of edge_params */
    bool strange_text;
    int want_completed, want_failed;
};

static const char *const edge_labels0[] = {"a", "b"};
static const char *const *const edge_labels[] = {NULL, edge_labels0, NULL};
static const size_t edge_nlabels[] = {0, 2, 0};
static const struct tune_report_param edge_params[] = {{"x", false}, {"c", true}, {"y", false}};

static const char *const strange_labels0[] = {"\xff\xfe bad utf-8", "ctl\x01\x1b[31m", NULL};
static const char *const *const strange_labels[] = {NULL, strange_labels0, NULL};
static const size_t strange_nlabels[] = {0, 3, 0};
static const struct tune_report_param strange_params[] = {
    {NULL, false}, {"c\xc3", true}, {"", false}};

static const struct edge_case edge_no_trials = {.nparams = 3};

static const struct edge_case edge_one_completed = {
    .trials = {{.id = 0,
                .ok = true,
                .loss = 0.25,
                .values = (const double[]){0.1, 1, 5},
                .seconds = 1.5}},
    .ntrials = 1,
    .nparams = 3,
    .want_completed = 1,
};

static const struct edge_case edge_one_failed = {
    .trials = {{.id = 0, .values = (const double[]){0.1, 0, NAN}, .seconds = 2, .error = "boom"}},
    .ntrials = 1,
    .nparams = 3,
    .want_failed = 1,
};

static const struct edge_case edge_all_failed = {
    .trials = {{.id = 0, .values = (const double[]){1, 0, 1}, .error = "a"},
               {.id = 1, .values = (const double[]){2, 1, NAN}, .error = NULL},
               {.id = 2, .values = (const double[]){3, 1, 3}, .error = "c"},
               {.id = 3, .values = NULL, .error = "d"},
               {.id = 4, .values = (const double[]){5, 0, 5}, .error = "e"}},
    .ntrials = 5,
    .nparams = 3,
    .want_failed = 5,
};

#define SAME(i)                                                                                    \
    {                                                                                              \
        .id = i, .ok = true, .loss = 0.5, .values = (const double[]){i, i % 2, 1e-3 * i},          \
        .seconds = 0.1                                                                             \
    }
static const struct edge_case edge_same_loss = {
    .trials = {SAME(0), SAME(1), SAME(2), SAME(3), SAME(4), SAME(5), SAME(6), SAME(7), SAME(8),
               SAME(9), SAME(10), SAME(11)},
    .ntrials = 12,
    .nparams = 3,
    .want_completed = 12,
};

static const struct edge_case edge_non_finite = {
    .trials = {{.id = 0, .ok = true, .loss = NAN, .values = (const double[]){1, 0, 1}},
               {.id = 1, .ok = true, .loss = INFINITY, .values = (const double[]){1, 0, 1}},
               {.id = 2, .ok = true, .loss = -INFINITY, .values = (const double[]){1, 0, 1}},
               {.id = 3,
                .ok = true,
                .loss = 1,
                .values = (const double[]){INFINITY, 7, -INFINITY},
                .seconds = NAN},
               {.id = 4,
                .ok = true,
                .loss = 2,
                .values = (const double[]){NAN, -1, NAN},
                .seconds = INFINITY},
               {.id = 5, .ok = true, .loss = 3, .values = (const double[]){2, 0.5, 4}},
               {.id = 6, .ok = true, .loss = 4, .values = NULL, .seconds = -INFINITY},
               {.id = 7,
                .ok = false,
                .loss = INFINITY,
                .values = (const double[]){NAN, NAN, NAN},
                .seconds = NAN,
                .error = "err"}},
    .ntrials = 8,
    .nparams = 3,
    .want_completed = 4,
    .want_failed = 4,
};

static const struct edge_case edge_extreme = {
    .trials = {{.id = INT_MAX,
                .ok = true,
                .loss = -1e308,
                .values = (const double[]){5e-324, 1, -1e308},
                .seconds = 1e300},
               {.id = INT_MIN,
                .ok = true,
                .loss = 1e308,
                .values = (const double[]){1e308, 0, 1e308},
                .seconds = -1e300},
               {.id = 0, .ok = true, .loss = DBL_MAX, .values = (const double[]){1e-300, 1, 0}},
               {.id = 0, .ok = true, .loss = 5e-324, .values = (const double[]){1, 0, 5e-324}},
               {.id = 1, .ok = true, .loss = -DBL_MAX, .values = (const double[]){1e200, 1, 1}},
               {.id = 2, .ok = true, .loss = 1e-310, .values = (const double[]){3, 1, 1e-310}},
               {.id = 3, .ok = true, .loss = 1e-300, .values = (const double[]){3, 1, 1e-300}},
               {.id = 4, .ok = true, .loss = 0, .values = (const double[]){3, 1, -1e-300}},
               {.id = 5, .ok = true, .loss = 0, .values = (const double[]){3, 1, 0}},
               {.id = 6, .ok = true, .loss = 1e-320, .values = (const double[]){3, 1, 0}},
               {.id = 7, .ok = true, .loss = 1, .values = (const double[]){3, 1, 0}},
               {.id = 8, .ok = false, .values = (const double[]){1e-308, 1, DBL_MAX}}},
    .ntrials = 12,
    .nparams = 3,
    .want_completed = 11,
    .want_failed = 1,
};

static const struct edge_case edge_no_params = {
    .trials = {{.id = 2, .ok = true, .loss = 3},
               {.id = 0, .ok = true, .loss = 1},
               {.id = 1, .ok = false, .error = "x"}},
    .ntrials = 3,
    .want_completed = 2,
    .want_failed = 1,
};

static const struct edge_case edge_strange_text = {
    .trials = {{.id = 0, .ok = true, .loss = 1, .values = (const double[]){1, 0, 1}},
               {.id = 1, .ok = true, .loss = 2, .values = (const double[]){2, 2, 2}},
               {.id = 2, .ok = true, .loss = 3, .values = (const double[]){3, 1, 3}},
               {.id = 3,
                .ok = false,
                .values = (const double[]){4, 1, 4},
                .error = "\xe2\x82 cut \xed\xa0\x80 surrogate \xef\xbf\xbf ctl\x02"}},
    .ntrials = 4,
    .nparams = 3,
    .strange_text = true,
    .want_completed = 3,
    .want_failed = 1,
};

static const struct edge_case edge_many_options = {
    .trials = {{.id = 0, .ok = true, .loss = 1, .values = (const double[]){1, 49, 1}},
               {.id = 1, .ok = true, .loss = 2, .values = (const double[]){2, 3, 2}},
               {.id = 2, .ok = true, .loss = 3, .values = (const double[]){3, 1e9, 3}}},
    .ntrials = 3,
    .nparams = 3,
    .want_completed = 3,
};

static void test_edge_case(void **state)
{
    const struct edge_case *e = *state;
    struct tune_report report = {
        .title = "edge",
        .loss_name = "rmse",
        .params = edge_params,
        .nparams = e->nparams,
        .labels = edge_labels,
        .nlabels = edge_nlabels,
        .trials = e->trials,
        .ntrials = e->ntrials,
        .best_config_yaml = "a: 1\n",
        .summary = "s",
    };
    if (e == &edge_many_options)
        report.labels = NULL; /* options shown as numbers */
    if (e->strange_text) {
        report = (struct tune_report){
            .params = strange_params,
            .nparams = e->nparams,
            .labels = strange_labels,
            .nlabels = strange_nlabels,
            .trials = e->trials,
            .ntrials = e->ntrials,
            .title = "t\x1b[1m\xc3(",
        };
    }
    char *html = tune_report_html(&report);
    assert_no_nonfinite(html);
    struct report_facts f;
    analyse(html, &f);
    assert_int_equal(f.nsvgs, 1 + e->nparams);
    const struct svg_facts *loss = &f.svgs[0];
    assert_string_equal(loss->plot, "loss");
    assert_int_equal(loss->trials, e->want_completed);
    assert_int_equal(loss->failed, e->want_failed);
    assert_int_equal(loss->best, e->want_completed > 0);
    assert_int_equal(loss->paths, e->want_completed > 0);
    assert_int_equal(loss->monotone, 1);
    assert_int_equal(f.rows, (int)e->ntrials);
    if (e->want_completed > 0)
        assert_string_not_equal(f.best_id, "-");
    else
        assert_string_equal(f.best_id, "-");
    for (size_t k = 0; k < f.nsvgs; k++)
        if (f.svgs[k].bounds != 1)
            fail_msg("plot %zu has a coordinate outside it", k);
    if (e == &edge_same_loss)
        assert_string_equal(loss->clip, "-");
    if (e == &edge_many_options) {
        assert_string_equal(f.svgs[2].scale, "categorical");
        assert_int_equal(f.svgs[2].trials, 2); /* 1e9 is no option */
    }
    if (e == &edge_non_finite)
        assert_non_null(strstr(html, "failed: loss is not finite"));
    free(html);
}

/* === Writing the file ========================================================================= */

static void test_write_creates_file(void **state)
{
    const char *dir = *state;
    struct main_study s;
    main_study_fill(&s);
    char path[4096], err[512] = "";
    snprintf(path, sizeof(path), "%s/report.html", dir);
    support_write_file(path, "old", 3);
    assert_int_equal(tune_report_write(&s.report, path, err, sizeof(err)), TB_OK);
    size_t len = 0;
    char *written = support_read_file(path, &len);
    char *html = tune_report_html(&s.report);
    assert_string_equal(written, html);
    assert_int_equal(len, strlen(html));
    /* Nothing but the report is left behind. */
    DIR *d = opendir(dir);
    assert_non_null(d);
    int entries = 0;
    struct dirent *entry;
    while ((entry = readdir(d)))
        if (strcmp(entry->d_name, ".") != 0 && strcmp(entry->d_name, "..") != 0)
            entries++;
    closedir(d);
    assert_int_equal(entries, 1);
    free(html);
    free(written);
}

static void test_write_refuses_unwritable_path(void **state)
{
    const char *dir = *state;
    struct main_study s;
    main_study_fill(&s);
    char file[4096], path[4096], err[512];
    snprintf(file, sizeof(file), "%s/plain-file", dir);
    support_write_file(file, "x", 1);
    const char *const parents[] = {"missing-directory", "plain-file"};
    for (size_t i = 0; i < 2; i++) {
        snprintf(path, sizeof(path), "%s/%s/report.html", dir, parents[i]);
        err[0] = '\0';
        assert_int_equal(tune_report_write(&s.report, path, err, sizeof(err)), TB_IO);
        if (!strstr(err, path))
            fail_msg("the message '%s' does not name %s", err, path);
        struct stat st;
        assert_int_not_equal(stat(path, &st), 0);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_loss_plot_marks_every_trial),
        cmocka_unit_test(test_best_so_far_only_falls),
        cmocka_unit_test(test_loss_axis_clipped_at_numpy_percentile),
        cmocka_unit_test(test_axis_scales_follow_the_data),
        cmocka_unit_test(test_parameter_plots_mark_active_trials),
        cmocka_unit_test(test_ticks_are_nice_and_readable),
        cmocka_unit_test(test_text_is_escaped),
        NAMED_CASE("edge: no trials", test_edge_case, (void *)&edge_no_trials),
        NAMED_CASE("edge: one completed trial", test_edge_case, (void *)&edge_one_completed),
        NAMED_CASE("edge: one failed trial", test_edge_case, (void *)&edge_one_failed),
        NAMED_CASE("edge: all failed", test_edge_case, (void *)&edge_all_failed),
        NAMED_CASE("edge: all the same loss", test_edge_case, (void *)&edge_same_loss),
        NAMED_CASE("edge: NaN and infinite inputs", test_edge_case, (void *)&edge_non_finite),
        NAMED_CASE("edge: extreme magnitudes", test_edge_case, (void *)&edge_extreme),
        NAMED_CASE("edge: no parameters", test_edge_case, (void *)&edge_no_params),
        NAMED_CASE("edge: invalid UTF-8, control characters, NULL strings", test_edge_case,
                   (void *)&edge_strange_text),
        NAMED_CASE("edge: many options without labels", test_edge_case, (void *)&edge_many_options),
        cmocka_unit_test_setup_teardown(test_write_creates_file, support_setup_temp_dir,
                                        support_teardown_temp_dir),
        cmocka_unit_test_setup_teardown(test_write_refuses_unwritable_path, support_setup_temp_dir,
                                        support_teardown_temp_dir),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
