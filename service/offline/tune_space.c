/* The search space of `tributary tune`: loads the YAML space file into a TPE space, and writes a
 * trial's values into a configuration and to and from JSON (see tune_space.h). */
#include "service/offline/tune_space.h"

#include "service/config/yaml_file.h"

#include "service/base/error.h"
#include "service/base/mem.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

/* Nesting of conditional choices; also stops a YAML alias that refers to its own ancestor from
 * recursing for ever. */
#define TUNE_DEPTH_MAX 32
/* Integral values below this magnitude are written without an exponent ("%.0f" is exact for
 * them); it is below 2^63, so an int64 key takes every one in its range. */
#define TUNE_INTEGER_TEXT_MAX 9.2e18
/* Integral quantised values below this magnitude go into JSON as integers (exact in a double). */
#define TUNE_JSON_INTEGER_MAX 9007199254740992.0

/* One TPE parameter, at the same index as in the TPE space. */
struct tune_param {
    char *key; /* the configuration key it sets, or NULL for a conditional choice */
    enum tpe_kind kind;
    int parent, parent_option; /* TPE_ROOT and -1 at the top */
    size_t noptions;
    char **labels; /* choice: a label per option; on a key, also the value text it sets */
};

/* A constant: key takes text whenever its branch is active. */
struct tune_constant {
    char *key;
    char *text;
    int parent, parent_option;
};

struct tune_space {
    struct tpe_space *tpe;
    struct tune_param *params; /* tpe_space_size(tpe) of them */
    size_t nparams, params_cap;
    struct tune_constant *constants;
    size_t nconstants, constants_cap;
};

/* Where a configuration key is set (by a constant or a parameter), to find keys set twice on one
 * path of active branches. */
struct tune_setting {
    const char *key; /* the document's string */
    size_t line;
    int parent, parent_option;
};

/* State of one tune_space_load. */
struct tune_loader {
    const char *file;
    yaml_document_t *doc;
    struct tune_space *space;
    struct config *scratch; /* every value is tried on it with config_set */
    struct tune_setting *settings;
    size_t nsettings, settings_cap;
    char *err;
    size_t errsz;
};

/* Distributions by name, with their arguments (choice is handled apart). */
static const struct {
    enum tpe_kind kind;
    size_t nargs;
    const char *args;
} tune_distributions[] = {
    {TPE_UNIFORM, 2, "low, high"},     {TPE_LOGUNIFORM, 2, "low, high"},
    {TPE_QUNIFORM, 3, "low, high, q"}, {TPE_QLOGUNIFORM, 3, "low, high, q"},
    {TPE_NORMAL, 2, "mu, sigma"},      {TPE_RANDINT, 2, "low, high"},
};

#define TUNE_NDISTRIBUTIONS (sizeof tune_distributions / sizeof tune_distributions[0])

/* ---- the space ------------------------------------------------------------------------------- */

static void tune_free_strings(char **items, size_t n)
{
    if (!items)
        return;
    for (size_t i = 0; i < n; i++)
        free(items[i]);
    free(items);
}

void tune_space_destroy(struct tune_space *space)
{
    if (!space)
        return;
    for (size_t i = space->nconstants; i-- > 0;) {
        free(space->constants[i].text);
        free(space->constants[i].key);
    }
    free(space->constants);
    for (size_t i = space->nparams; i-- > 0;) {
        tune_free_strings(space->params[i].labels, space->params[i].noptions);
        free(space->params[i].key);
    }
    free(space->params);
    tpe_space_destroy(space->tpe);
    free(space);
}

const struct tpe_space *tune_space_tpe(const struct tune_space *space)
{
    return space->tpe;
}

static bool tune_is_integral(double v)
{
    return isfinite(v) && v == floor(v);
}

/* Writes v so that config_set parses it back to the same number: an integral value without a
 * decimal point or exponent (an integer key takes it), any other as "%.17g". */
static void tune_format_number(double v, char *buf, size_t bufsz)
{
    if (tune_is_integral(v) && fabs(v) < TUNE_INTEGER_TEXT_MAX)
        snprintf(buf, bufsz, "%.0f", v == 0 ? 0.0 : v); /* no "-0" */
    else
        snprintf(buf, bufsz, "%.17g", v);
}

/* Formats "file:line: message" into the loader's err. */
static void tune_format_error(struct tune_loader *l, size_t line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void tune_format_error(struct tune_loader *l, size_t line, const char *fmt, ...)
{
    char message[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(message, sizeof message, fmt, ap);
    va_end(ap);
    tb_format(l->err, l->errsz, "%s:%zu: %s", l->file, line, message);
}

/* tune_format_error, evaluating to TB_CONFIG: a macro, as tb_fail is, so that the analyzers see
 * the status of a failure path. */
#define tune_fail(l, line, ...) (tune_format_error((l), (line), __VA_ARGS__), tb_status(TB_CONFIG))

static bool tune_is_config_key(const char *name)
{
    const char *path = NULL;
    for (size_t i = 0; (path = config_key_path(i)) != NULL; i++)
        if (strcmp(path, name) == 0)
            return true;
    return false;
}

/* The text of a scalar node, refusing one with an embedded NUL ("\0"). */
static int tune_scalar_text(struct tune_loader *l, const yaml_node_t *node, const char *what,
                            const char **text)
{
    const char *value = (const char *)node->data.scalar.value;
    if (strlen(value) != node->data.scalar.length)
        return tune_fail(l, yaml_file_line(node), "%s: contains a NUL character", what);
    *text = value;
    return TB_OK;
}

/* The value text of a constant or a choice option for key, as config_set takes it: a scalar's text
 * (a YAML null is ""), or the items of a list of scalars joined by ','. *text is the caller's to
 * free. Returns TB_OK or TB_CONFIG. */
static int tune_value_text(struct tune_loader *l, const char *key, const yaml_node_t *node,
                           char **text)
{
    const char *item_text = NULL;
    int rc = TB_OK;
    if (node->type == YAML_SCALAR_NODE) {
        if (yaml_file_is_null(node)) {
            *text = mem_strdup("");
            return TB_OK;
        }
        rc = tune_scalar_text(l, node, key, &item_text);
        if (rc == TB_OK)
            *text = mem_strdup(item_text);
        return rc;
    }
    if (node->type != YAML_SEQUENCE_NODE)
        return tune_fail(l, yaml_file_line(node), "%s: expected a value or a list of values", key);
    char *joined = mem_strdup("");
    size_t len = 0;
    for (yaml_node_item_t *it = node->data.sequence.items.start; it < node->data.sequence.items.top;
         it++) {
        const yaml_node_t *item = yaml_document_get_node(l->doc, *it);
        if (item->type != YAML_SCALAR_NODE) {
            rc = tune_fail(l, yaml_file_line(item), "%s: expected a list of values", key);
            goto done;
        }
        rc = tune_scalar_text(l, item, key, &item_text);
        if (rc != TB_OK)
            goto done;
        if (strchr(item_text, ',')) {
            rc = tune_fail(l, yaml_file_line(item), "%s: list item '%s' contains a comma", key,
                           item_text);
            goto done;
        }
        size_t add = strlen(item_text);
        joined = mem_realloc(joined, len + (len ? 1 : 0) + add + 1);
        if (len)
            joined[len++] = ',';
        memcpy(joined + len, item_text, add + 1);
        len += add;
    }
    *text = joined;
    joined = NULL;
done:
    free(joined);
    return rc;
}

/* Sets key to text on the scratch configuration. On refusal fails with "file:line: key: " and
 * config_set's message; when role is not NULL ("uniform low"), the message says which value of
 * a distribution it was: "file:line: key: uniform low -1 is refused: -1 is out of range (>= 0)". */
static int tune_try_value(struct tune_loader *l, size_t line, const char *key, const char *text,
                          const char *role)
{
    char message[512];
    /* With an empty origin config_set writes " key: message"; keep only the message. */
    if (config_set(l->scratch, key, text, "", message, sizeof message) == TB_OK)
        return TB_OK;
    const char *reason = message;
    while (*reason == ' ')
        reason++;
    size_t key_len = strlen(key);
    if (strncmp(reason, key, key_len) == 0 && strncmp(reason + key_len, ": ", 2) == 0)
        reason += key_len + 2;
    if (role)
        return tune_fail(l, line, "%s: %s %s is refused: %s", key, role, text, reason);
    return tune_fail(l, line, "%s: %s", key, reason);
}

/* As tune_try_value for a number, written as tune_space_apply would write it. */
static int tune_try_number(struct tune_loader *l, size_t line, const char *key, double v,
                           const char *kind, const char *what)
{
    char text[64], role[64];
    tune_format_number(v, text, sizeof text);
    snprintf(role, sizeof role, "%s %s", kind, what);
    return tune_try_value(l, line, key, text, role);
}

/* Whether the occurrence of a key under (parent_a, option_a) and another under (parent_b,
 * option_b) can never be active together: some choice lies on both paths with different options
 * taken. */
static bool tune_exclusive(const struct tune_space *space, int parent_a, int option_a, int parent_b,
                           int option_b)
{
    for (int a = parent_a, oa = option_a; a != TPE_ROOT;
         oa = space->params[a].parent_option, a = space->params[a].parent)
        for (int b = parent_b, ob = option_b; b != TPE_ROOT;
             ob = space->params[b].parent_option, b = space->params[b].parent)
            if (a == b && oa != ob)
                return true;
    return false;
}

/* Records that key is set at line under (parent, option); fails when an earlier setting of the
 * key can be active at the same time. */
static int tune_record_setting(struct tune_loader *l, const char *key, size_t line, int parent,
                               int option)
{
    for (size_t i = 0; i < l->nsettings; i++) {
        const struct tune_setting *s = &l->settings[i];
        if (strcmp(s->key, key) == 0 &&
            !tune_exclusive(l->space, s->parent, s->parent_option, parent, option))
            return tune_fail(l, line, "'%s' is set twice on one path (first at line %zu)", key,
                             s->line);
    }
    mem_grow((void **)&l->settings, &l->settings_cap, l->nsettings + 1, sizeof *l->settings);
    l->settings[l->nsettings++] =
        (struct tune_setting){.key = key, .line = line, .parent = parent, .parent_option = option};
    return TB_OK;
}

/* Adds a parameter to the TPE space and its description to the space; the space takes labels
 * over (also on failure). Returns its index, or TB_CONFIG. */
static int tune_add_param(struct tune_loader *l, size_t line, int parent, int option,
                          const struct tpe_param *param, const char *key, char **labels)
{
    char message[512];
    int index = tpe_space_add(l->space->tpe, parent, option, param, message, sizeof message);
    if (index < 0) {
        tune_free_strings(labels, param->noptions);
        return tune_fail(l, line, "%s", message);
    }
    mem_grow((void **)&l->space->params, &l->space->params_cap, l->space->nparams + 1,
             sizeof *l->space->params);
    l->space->params[l->space->nparams++] = (struct tune_param){
        .key = key ? mem_strdup(key) : NULL,
        .kind = param->kind,
        .parent = parent,
        .parent_option = parent == TPE_ROOT ? -1 : option,
        .noptions = param->kind == TPE_CHOICE ? param->noptions : 0,
        .labels = labels,
    };
    return index;
}

/* Joins prefix and name into a TPE name; the caller frees it. */
static char *tune_join_name(const char *prefix, const char *name)
{
    size_t len = strlen(prefix) + strlen(name) + 1;
    char *joined = mem_alloc(len);
    snprintf(joined, len, "%s%s", prefix, name);
    return joined;
}

/* A number strictly between a and b (a < b) that is not an integer, or NAN when the doubles
 * there are all integers. */
static double tune_fraction_between(double a, double b)
{
    double t = (a + fmin(b, floor(a) + 1)) / 2;
    return t > a && t < b && !tune_is_integral(t) ? t : NAN;
}

/* Tries on the scratch configuration the values a numeric distribution on key certainly or
 * typically gives: its bounds, and a fractional value when it gives such. */
static int tune_try_distribution(struct tune_loader *l, size_t line, const char *key,
                                 const struct tpe_param *p)
{
    const char *kind = tpe_kind_name(p->kind);
    double fraction = NAN;
    int rc = TB_OK;
    switch (p->kind) {
    case TPE_UNIFORM:
    case TPE_LOGUNIFORM:
    case TPE_QUNIFORM:
    case TPE_QLOGUNIFORM:
        rc = tune_try_number(l, line, key, p->low, kind, "low");
        if (rc == TB_OK)
            rc = tune_try_number(l, line, key, p->high, kind, "high");
        if (p->kind == TPE_UNIFORM || p->kind == TPE_LOGUNIFORM) {
            fraction = tune_fraction_between(p->low, p->high);
        } else if (!tune_is_integral(p->q)) {
            /* Of two neighbouring multiples of a fractional q at most one is an integer. */
            double k = ceil(p->low / p->q);
            for (int step = 0; step < 2 && isnan(fraction); step++) {
                double v = (k + step) * p->q;
                if (v <= p->high && !tune_is_integral(v))
                    fraction = v;
            }
        }
        break;
    case TPE_NORMAL:
        rc = tune_try_number(l, line, key, p->mu, kind, "mu");
        fraction = tune_fraction_between(p->mu, p->mu + p->sigma);
        break;
    case TPE_RANDINT:
        rc = tune_try_number(l, line, key, p->low, kind, "low");
        if (rc == TB_OK)
            rc = tune_try_number(l, line, key, p->high - 1, kind, "largest value");
        break;
    case TPE_CHOICE:
        break;
    }
    if (rc == TB_OK && !isnan(fraction))
        rc = tune_try_number(l, line, key, fraction, kind, "value");
    return rc;
}

/* Parses a distribution's argument: a whole finite number. */
static int tune_argument(struct tune_loader *l, const char *key, const char *kind,
                         const yaml_node_t *node, double *out, const char **text)
{
    if (node->type != YAML_SCALAR_NODE)
        return tune_fail(l, yaml_file_line(node), "%s: %s arguments must be numbers", key, kind);
    int rc = tune_scalar_text(l, node, key, text);
    if (rc != TB_OK)
        return rc;
    char *end = NULL;
    double v = strtod(*text, &end);
    if (!**text || end == *text || *end != '\0' || !isfinite(v))
        return tune_fail(l, yaml_file_line(node), "%s: %s argument '%s' is not a number", key, kind,
                         *text);
    *out = v;
    return TB_OK;
}

/* Loads `key: {kind: [arguments]}` (a numeric distribution, row d of tune_distributions). */
static int tune_load_numeric(struct tune_loader *l, const char *key, size_t d,
                             const yaml_node_t *args, int parent, int option, const char *prefix)
{
    enum tpe_kind kind_id = tune_distributions[d].kind;
    const char *kind = tpe_kind_name(kind_id);
    size_t nargs = tune_distributions[d].nargs, line = yaml_file_line(args);
    if (args->type != YAML_SEQUENCE_NODE)
        return tune_fail(l, line, "%s: %s takes a list of %zu arguments (%s)", key, kind, nargs,
                         tune_distributions[d].args);
    size_t given = (size_t)(args->data.sequence.items.top - args->data.sequence.items.start);
    if (given != nargs)
        return tune_fail(l, line, "%s: %s takes %zu arguments (%s), got %zu", key, kind, nargs,
                         tune_distributions[d].args, given);
    double v[3] = {0, 0, 0};
    const char *text[3] = {NULL, NULL, NULL};
    for (size_t i = 0; i < nargs; i++) {
        const yaml_node_t *item =
            yaml_document_get_node(l->doc, args->data.sequence.items.start[i]);
        int rc = tune_argument(l, key, kind, item, &v[i], &text[i]);
        if (rc != TB_OK)
            return rc;
    }
    struct tpe_param p = {.kind = kind_id};
    switch (kind_id) {
    case TPE_NORMAL:
        if (!(v[1] > 0))
            return tune_fail(l, line, "%s: normal needs sigma > 0 (got %s)", key, text[1]);
        p.mu = v[0];
        p.sigma = v[1];
        break;
    case TPE_RANDINT:
        if (!tune_is_integral(v[0]) || !tune_is_integral(v[1]))
            return tune_fail(l, line, "%s: randint needs integer bounds (got %s, %s)", key, text[0],
                             text[1]);
        if (!(v[0] < v[1]))
            return tune_fail(l, line, "%s: randint needs low < high (got %s, %s)", key, text[0],
                             text[1]);
        if (v[1] - v[0] > TPE_MAX_CATEGORIES)
            return tune_fail(l, line, "%s: randint has more than %d values", key,
                             TPE_MAX_CATEGORIES);
        p.low = v[0];
        p.high = v[1];
        break;
    default: /* the uniform kinds */
        if (!(v[0] < v[1]))
            return tune_fail(l, line, "%s: %s needs low < high (got %s, %s)", key, kind, text[0],
                             text[1]);
        if ((kind_id == TPE_LOGUNIFORM || kind_id == TPE_QLOGUNIFORM) && !(v[0] > 0))
            return tune_fail(l, line, "%s: %s needs low > 0 (got %s)", key, kind, text[0]);
        if ((kind_id == TPE_QUNIFORM || kind_id == TPE_QLOGUNIFORM) && !(v[2] > 0))
            return tune_fail(l, line, "%s: %s needs q > 0 (got %s)", key, kind, text[2]);
        p.low = v[0];
        p.high = v[1];
        p.q = v[2];
        break;
    }
    int rc = tune_try_distribution(l, line, key, &p);
    if (rc != TB_OK)
        return rc;
    char *name = tune_join_name(prefix, key);
    p.name = name;
    rc = tune_add_param(l, line, parent, option, &p, key, NULL);
    free(name);
    return rc < 0 ? rc : TB_OK;
}

/* Loads `key: {choice: [value, ...]}`: a choice among values of a configuration key. */
static int tune_load_key_choice(struct tune_loader *l, const char *key, const yaml_node_t *args,
                                int parent, int option, const char *prefix)
{
    char **labels = NULL;
    size_t n = 0;
    char *name = NULL;
    int rc = TB_OK;
    if (args->type != YAML_SEQUENCE_NODE)
        return tune_fail(l, yaml_file_line(args), "%s: choice takes a list of options", key);
    n = (size_t)(args->data.sequence.items.top - args->data.sequence.items.start);
    if (n == 0)
        return tune_fail(l, yaml_file_line(args), "%s: choice needs at least one option", key);
    labels = mem_calloc(n, sizeof *labels);
    for (size_t k = 0; k < n; k++) {
        const yaml_node_t *item =
            yaml_document_get_node(l->doc, args->data.sequence.items.start[k]);
        if (item->type == YAML_MAPPING_NODE) {
            rc = tune_fail(l, yaml_file_line(item),
                           "%s: option %zu is a mapping; a conditional choice needs a name that "
                           "is not a configuration key",
                           key, k);
            goto done;
        }
        rc = tune_value_text(l, key, item, &labels[k]);
        if (rc != TB_OK)
            goto done;
        rc = tune_try_value(l, yaml_file_line(item), key, labels[k], NULL);
        if (rc != TB_OK)
            goto done;
        for (size_t j = 0; j < k; j++) {
            if (strcmp(labels[j], labels[k]) == 0) {
                rc = tune_fail(l, yaml_file_line(item), "%s: option '%s' is given twice", key,
                               labels[k]);
                goto done;
            }
        }
    }
    name = tune_join_name(prefix, key);
    struct tpe_param p = {
        .name = name, .kind = TPE_CHOICE, .noptions = n, .options = (const char *const *)labels};
    int index = tune_add_param(l, yaml_file_line(args), parent, option, &p, key, labels);
    labels = NULL; /* the space has them, or freed them */
    rc = index < 0 ? index : TB_OK;
done:
    free(name);
    tune_free_strings(labels, n);
    return rc;
}

static int tune_load_mapping(struct tune_loader *l, const yaml_node_t *map, int parent, int option,
                             const char *prefix, int depth);

/* The key and value of the only pair of node when it is a mapping of one pair, else NULLs. */
static void tune_single_pair(struct tune_loader *l, const yaml_node_t *node,
                             const yaml_node_t **key, const yaml_node_t **value)
{
    *key = *value = NULL;
    if (node->type != YAML_MAPPING_NODE ||
        node->data.mapping.pairs.top - node->data.mapping.pairs.start != 1)
        return;
    *key = yaml_document_get_node(l->doc, node->data.mapping.pairs.start->key);
    *value = yaml_document_get_node(l->doc, node->data.mapping.pairs.start->value);
}

/* The candidate label of a branch: the value text of its first constant, or NULL when it has
 * none. Returns TB_OK or TB_CONFIG (a first constant of a bad shape). */
static int tune_branch_constant(struct tune_loader *l, const yaml_node_t *branch, char **label)
{
    *label = NULL;
    for (yaml_node_pair_t *pair = branch->data.mapping.pairs.start;
         pair < branch->data.mapping.pairs.top; pair++) {
        const yaml_node_t *key = yaml_document_get_node(l->doc, pair->key);
        const yaml_node_t *value = yaml_document_get_node(l->doc, pair->value);
        if (key->type != YAML_SCALAR_NODE || value->type == YAML_MAPPING_NODE ||
            !tune_is_config_key((const char *)key->data.scalar.value))
            continue;
        return tune_value_text(l, (const char *)key->data.scalar.value, value, label);
    }
    return TB_OK;
}

/* The label of a branch known by its index: "0", "1", ...; the caller frees it. */
static char *tune_index_label(size_t index)
{
    char text[32];
    snprintf(text, sizeof text, "%zu", index);
    return mem_strdup(text);
}

/* Loads `name: {choice: [branch, ...]}`, a conditional choice among mappings, with name not a
 * configuration key. */
static int tune_load_branches(struct tune_loader *l, const char *name, const yaml_node_t *name_node,
                              const yaml_node_t *value, int parent, int option, const char *prefix,
                              int depth)
{
    const yaml_node_t *choice = NULL, *args = NULL;
    char **labels = NULL, **constants = NULL;
    size_t n = 0;
    char *full_name = NULL, *branch_prefix = NULL;
    int rc = TB_OK;
    tune_single_pair(l, value, &choice, &args);
    if (!choice || choice->type != YAML_SCALAR_NODE ||
        strcmp((const char *)choice->data.scalar.value, "choice") != 0)
        return tune_fail(l, yaml_file_line(name_node), "'%s' is not a configuration key", name);
    if (args->type != YAML_SEQUENCE_NODE)
        return tune_fail(l, yaml_file_line(args), "%s: choice takes a list of options", name);
    n = (size_t)(args->data.sequence.items.top - args->data.sequence.items.start);
    if (n == 0)
        return tune_fail(l, yaml_file_line(args), "%s: choice needs at least one option", name);
    labels = mem_calloc(n, sizeof *labels);
    constants = mem_calloc(n, sizeof *constants);
    for (size_t k = 0; k < n; k++) {
        const yaml_node_t *item =
            yaml_document_get_node(l->doc, args->data.sequence.items.start[k]);
        if (item->type != YAML_MAPPING_NODE) {
            rc = tune_fail(l, yaml_file_line(item),
                           "'%s' is not a configuration key, so the options of its choice must be "
                           "mappings (branches)",
                           name);
            goto done;
        }
        rc = tune_branch_constant(l, item, &constants[k]);
        if (rc != TB_OK)
            goto done;
    }
    /* A first constant's value labels its branch unless another branch starts with it too; the
     * others are labelled with their index. Should that still give two equal labels (a constant
     * "1" and branch 1 without one), every branch is labelled with its index. */
    bool clash = false;
    for (size_t k = 0; k < n; k++) {
        bool unique = constants[k] != NULL;
        for (size_t j = 0; j < n && unique; j++)
            unique = j == k || !constants[j] || strcmp(constants[j], constants[k]) != 0;
        labels[k] = unique ? mem_strdup(constants[k]) : tune_index_label(k);
        for (size_t j = 0; j < k; j++)
            clash = clash || strcmp(labels[j], labels[k]) == 0;
    }
    for (size_t k = 0; k < n && clash; k++) {
        free(labels[k]);
        labels[k] = tune_index_label(k);
    }
    full_name = tune_join_name(prefix, name);
    struct tpe_param p = {.name = full_name,
                          .kind = TPE_CHOICE,
                          .noptions = n,
                          .options = (const char *const *)labels};
    int index = tune_add_param(l, yaml_file_line(name_node), parent, option, &p, NULL, labels);
    labels = NULL; /* the space has them, or freed them */
    if (index < 0) {
        rc = index;
        goto done;
    }
    const struct tune_param *added = &l->space->params[index];
    for (size_t k = 0; k < n; k++) {
        const yaml_node_t *item =
            yaml_document_get_node(l->doc, args->data.sequence.items.start[k]);
        size_t len = strlen(full_name) + 1 + strlen(added->labels[k]) + 2;
        free(branch_prefix);
        branch_prefix = mem_alloc(len);
        snprintf(branch_prefix, len, "%s=%s/", full_name, added->labels[k]);
        rc = tune_load_mapping(l, item, index, (int)k, branch_prefix, depth + 1);
        if (rc != TB_OK)
            goto done;
        added = &l->space->params[index]; /* params may have moved */
    }
done:
    free(branch_prefix);
    free(full_name);
    tune_free_strings(constants, n);
    tune_free_strings(labels, n);
    return rc;
}

/* Loads `key: value` with value a constant: a scalar, or a list for a list key. */
static int tune_load_constant(struct tune_loader *l, const char *key, const yaml_node_t *value,
                              int parent, int option)
{
    char *text = NULL;
    int rc = tune_value_text(l, key, value, &text);
    if (rc != TB_OK)
        goto done;
    rc = tune_try_value(l, yaml_file_line(value), key, text, NULL);
    if (rc != TB_OK)
        goto done;
    struct tune_space *space = l->space;
    mem_grow((void **)&space->constants, &space->constants_cap, space->nconstants + 1,
             sizeof *space->constants);
    space->constants[space->nconstants++] =
        (struct tune_constant){.key = mem_strdup(key),
                               .text = text,
                               .parent = parent,
                               .parent_option = parent == TPE_ROOT ? -1 : option};
    text = NULL; /* the space has it */
done:
    free(text);
    return rc;
}

/* Loads one entry `key: value` of a mapping whose key is a configuration key: a distribution, a
 * choice among values, or a constant. */
static int tune_load_key(struct tune_loader *l, const char *key, const yaml_node_t *key_node,
                         const yaml_node_t *value, int parent, int option, const char *prefix)
{
    int rc = tune_record_setting(l, key, yaml_file_line(key_node), parent, option);
    if (rc != TB_OK)
        return rc;
    if (value->type == YAML_MAPPING_NODE) {
        const yaml_node_t *kind = NULL, *args = NULL;
        tune_single_pair(l, value, &kind, &args);
        if (!kind)
            return tune_fail(
                l, yaml_file_line(value),
                "%s: expected one distribution, got a mapping of %zu entries", key,
                (size_t)(value->data.mapping.pairs.top - value->data.mapping.pairs.start));
        const char *kind_text = kind->type == YAML_SCALAR_NODE
                                    ? (const char *)kind->data.scalar.value
                                    : "(not a string)";
        if (strcmp(kind_text, "choice") == 0)
            return tune_load_key_choice(l, key, args, parent, option, prefix);
        for (size_t d = 0; d < TUNE_NDISTRIBUTIONS; d++)
            if (strcmp(kind_text, tpe_kind_name(tune_distributions[d].kind)) == 0)
                return tune_load_numeric(l, key, d, args, parent, option, prefix);
        return tune_fail(l, yaml_file_line(kind),
                         "%s: unknown distribution '%s' (expected uniform, loguniform, quniform, "
                         "qloguniform, normal, randint or choice)",
                         key, kind_text);
    }
    return tune_load_constant(l, key, value, parent, option);
}

/* Loads the entries of a mapping: the top level (parent TPE_ROOT) or option `option` of the
 * choice parameter `parent`, whose parameters are named prefix + key. */
static int tune_load_mapping(struct tune_loader *l, const yaml_node_t *map, int parent, int option,
                             const char *prefix, int depth)
{
    if (depth > TUNE_DEPTH_MAX)
        return tune_fail(l, yaml_file_line(map), "choices nested too deeply (more than %d levels)",
                         TUNE_DEPTH_MAX);
    yaml_node_pair_t *start = map->data.mapping.pairs.start, *top = map->data.mapping.pairs.top;
    for (yaml_node_pair_t *pair = start; pair < top; pair++) {
        const yaml_node_t *key = yaml_document_get_node(l->doc, pair->key);
        const char *name = NULL;
        if (key->type != YAML_SCALAR_NODE)
            return tune_fail(l, yaml_file_line(key), "expected a string as the key");
        int rc = tune_scalar_text(l, key, "key", &name);
        if (rc != TB_OK)
            return rc;
        for (yaml_node_pair_t *earlier = start; earlier < pair; earlier++) {
            const yaml_node_t *other = yaml_document_get_node(l->doc, earlier->key);
            if (strcmp((const char *)other->data.scalar.value, name) == 0)
                return tune_fail(l, yaml_file_line(key), "duplicate key '%s'", name);
        }
    }
    for (yaml_node_pair_t *pair = start; pair < top; pair++) {
        const yaml_node_t *key = yaml_document_get_node(l->doc, pair->key);
        const yaml_node_t *value = yaml_document_get_node(l->doc, pair->value);
        const char *name = (const char *)key->data.scalar.value;
        int rc = tune_is_config_key(name)
                     ? tune_load_key(l, name, key, value, parent, option, prefix)
                     : tune_load_branches(l, name, key, value, parent, option, prefix, depth);
        if (rc != TB_OK)
            return rc;
    }
    return TB_OK;
}

struct tune_space *tune_space_load(const char *path, char *err, size_t errsz)
{
    yaml_document_t doc;
    struct tune_space *space = NULL;
    struct tune_loader loader = {.file = path, .doc = &doc, .err = err, .errsz = errsz};
    int rc = yaml_file_load(path, &doc, err, errsz);
    if (rc != TB_OK)
        return NULL;
    const yaml_node_t *root = yaml_document_get_root_node(&doc);
    if (!root || yaml_file_is_null(root)) {
        rc = tb_fail(err, errsz, TB_CONFIG, "%s: the search space is empty", path);
        goto done;
    }
    if (root->type != YAML_MAPPING_NODE) {
        rc = tb_fail(err, errsz, TB_CONFIG, "%s:%zu: expected a mapping at the top", path,
                     yaml_file_line(root));
        goto done;
    }
    space = mem_calloc(1, sizeof *space);
    space->tpe = tpe_space_new();
    loader.space = space;
    loader.scratch = config_new();
    rc = tune_load_mapping(&loader, root, TPE_ROOT, -1, "", 0);
    if (rc == TB_OK && space->nparams == 0)
        rc = tb_fail(err, errsz, TB_CONFIG,
                     "%s: the search space has no parameter (no distribution and no choice)", path);
done:
    free(loader.settings);
    config_destroy(loader.scratch);
    yaml_document_delete(&doc);
    if (rc != TB_OK) {
        tune_space_destroy(space);
        space = NULL;
    }
    return space;
}

/* ---- trials ---------------------------------------------------------------------------------- */

/* Whether option `option` of choice parameter `parent` is taken, given which parameters are
 * active (active[] filled up to parent). */
static bool tune_branch_taken(const double *values, const bool *active, int parent, int option)
{
    return parent == TPE_ROOT || (active[parent] && values[parent] == (double)option);
}

/* Whether a choice's value is the index of one of its options. */
static bool tune_is_option(const struct tune_param *p, double v)
{
    return tune_is_integral(v) && v >= 0 && v < (double)p->noptions;
}

/* Fills active[] from values and checks that every active parameter has a value and every active
 * choice a valid option index. Returns TB_OK or TB_CONFIG. */
static int tune_check_values(const struct tune_space *space, const double *values, bool *active,
                             char *err, size_t errsz)
{
    const char *name = NULL;
    for (size_t i = 0; i < space->nparams; i++) {
        const struct tune_param *p = &space->params[i];
        struct tpe_param def;
        active[i] = tune_branch_taken(values, active, p->parent, p->parent_option);
        if (!active[i])
            continue;
        tpe_space_describe(space->tpe, i, &def, NULL, NULL);
        name = def.name;
        if (isnan(values[i]))
            return tb_fail(err, errsz, TB_CONFIG, "parameter '%s' has no value", name);
        if (p->kind == TPE_CHOICE && !tune_is_option(p, values[i]))
            return tb_fail(err, errsz, TB_CONFIG, "parameter '%s': %.17g is not an option index",
                           name, values[i]);
    }
    return TB_OK;
}

/* Sets the active parameters and constants on cfg. Returns TB_OK or config_set's TB_CONFIG. */
static int tune_set_values(const struct tune_space *space, const double *values, const bool *active,
                           struct config *cfg, char *err, size_t errsz)
{
    for (size_t i = 0; i < space->nparams; i++) {
        const struct tune_param *p = &space->params[i];
        if (!active[i] || !p->key)
            continue;
        char number[64];
        const char *text = number;
        if (p->kind == TPE_CHOICE)
            text = p->labels[(size_t)values[i]];
        else
            tune_format_number(values[i], number, sizeof number);
        int rc = config_set(cfg, p->key, text, "tune", err, errsz);
        if (rc != TB_OK)
            return rc;
    }
    for (size_t i = 0; i < space->nconstants; i++) {
        const struct tune_constant *c = &space->constants[i];
        if (!tune_branch_taken(values, active, c->parent, c->parent_option))
            continue;
        int rc = config_set(cfg, c->key, c->text, "tune", err, errsz);
        if (rc != TB_OK)
            return rc;
    }
    return TB_OK;
}

int tune_space_apply(const struct tune_space *space, const double *values, struct config *cfg,
                     char *err, size_t errsz)
{
    bool *active = mem_calloc(space->nparams, sizeof *active);
    struct config *scratch = NULL;
    int rc = tune_check_values(space, values, active, err, errsz);
    if (rc != TB_OK)
        goto done;
    /* A key's checks do not depend on the other keys, so values a fresh configuration takes are
     * taken by cfg too: trying them first leaves cfg untouched on failure. */
    scratch = config_new();
    rc = tune_set_values(space, values, active, scratch, err, errsz);
    if (rc != TB_OK)
        goto done;
    rc = tune_set_values(space, values, active, cfg, err, errsz);
done:
    config_destroy(scratch);
    free(active);
    return rc;
}

json_t *tune_space_values_json(const struct tune_space *space, const double *values)
{
    bool *active = mem_calloc(space->nparams, sizeof *active);
    json_t *object = json_object();
    if (!object)
        goto done;
    for (size_t i = 0; i < space->nparams; i++) {
        const struct tune_param *p = &space->params[i];
        double v = values[i];
        active[i] = tune_branch_taken(values, active, p->parent, p->parent_option) && !isnan(v);
        if (!active[i])
            continue;
        if (p->kind == TPE_CHOICE && !tune_is_option(p, v)) {
            active[i] = false; /* not a trial tpe_ask gave: its branches stay out */
            continue;
        }
        struct tpe_param def;
        tpe_space_describe(space->tpe, i, &def, NULL, NULL);
        json_t *item = NULL;
        bool integral = tune_is_integral(v) && fabs(v) < TUNE_JSON_INTEGER_MAX;
        if (p->kind == TPE_CHOICE)
            item = json_string(p->labels[(size_t)v]);
        else if (integral &&
                 (p->kind == TPE_RANDINT || p->kind == TPE_QUNIFORM || p->kind == TPE_QLOGUNIFORM))
            item = json_integer((json_int_t)v);
        else
            item = json_real(v);
        if (json_object_set_new(object, def.name, item) != 0) {
            json_decref(object);
            object = NULL;
            goto done;
        }
    }
done:
    free(active);
    return object;
}

int tune_space_values_from_json(const struct tune_space *space, const json_t *object,
                                double *values, size_t n, char *err, size_t errsz)
{
    bool *active = NULL;
    int rc = TB_OK;
    if (n < space->nparams)
        return tb_fail(err, errsz, TB_USAGE, "room for %zu values, the space has %zu", n,
                       space->nparams);
    if (!json_is_object(object))
        return tb_fail(err, errsz, TB_PARSE, "trial values: expected a JSON object");
    for (size_t i = 0; i < space->nparams; i++)
        values[i] = NAN;
    const char *name = NULL;
    json_t *item = NULL;
    json_object_foreach((json_t *)object, name, item)
    {
        int index = tpe_space_find(space->tpe, name);
        if (index < 0) {
            rc = tb_fail(err, errsz, TB_PARSE, "trial values: unknown parameter '%s'", name);
            goto done;
        }
        const struct tune_param *p = &space->params[index];
        if (p->kind != TPE_CHOICE) {
            if (!json_is_number(item)) {
                rc = tb_fail(err, errsz, TB_PARSE, "trial values: parameter '%s' is not a number",
                             name);
                goto done;
            }
            values[index] = json_number_value(item);
            continue;
        }
        const char *label = json_string_value(item);
        if (!label) {
            rc = tb_fail(err, errsz, TB_PARSE,
                         "trial values: parameter '%s' is not a string (an option's label)", name);
            goto done;
        }
        for (size_t k = 0; k < p->noptions && isnan(values[index]); k++)
            if (strcmp(p->labels[k], label) == 0)
                values[index] = (double)k;
        if (isnan(values[index])) {
            rc = tb_fail(err, errsz, TB_PARSE,
                         "trial values: parameter '%s': '%s' is not one of its options", name,
                         label);
            goto done;
        }
    }
    active = mem_calloc(space->nparams, sizeof *active);
    for (size_t i = 0; i < space->nparams; i++) {
        const struct tune_param *p = &space->params[i];
        active[i] = tune_branch_taken(values, active, p->parent, p->parent_option);
        if (active[i] == !isnan(values[i]))
            continue;
        struct tpe_param def;
        tpe_space_describe(space->tpe, i, &def, NULL, NULL);
        if (active[i])
            rc = tb_fail(err, errsz, TB_PARSE, "trial values: parameter '%s' is missing", def.name);
        else
            rc = tb_fail(err, errsz, TB_PARSE,
                         "trial values: parameter '%s' is given, but its branch is not chosen",
                         def.name);
        goto done;
    }
done:
    free(active);
    return rc;
}
