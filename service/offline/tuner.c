/* Hyperparameter tuning: parallel train trials, TPE proposals, trials log, report, refit. */
#include "service/offline/tuner.h"

#include "models/tpe.h"
#include "service/base/clock.h"
#include "service/base/error.h"
#include "service/base/log.h"
#include "service/base/mem.h"
#include "service/base/signals.h"
#include "service/offline/trainer.h"
#include "service/offline/tune_report.h"
#include "service/registry/artefact.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* One trial, asked or finished. */
struct tuner_trial {
    double *values;
    bool asked, finished, told, ok; /* asked by this run (not read back from the log) */
    double loss;
    double seconds;
    char *error;
};

struct tuner {
    const struct config *cfg;
    const struct tune_space *space;
    const char *exe;
    tuner_event_fn *on_event; /* NULL: nobody listens */
    void *opaque;
    const char *log_path; /* the result's */
    struct tpe_study *study;
    size_t nparams;
    char *metric;    /* tune.loss without its "1-" */
    bool complement; /* loss = 1 - metric */
    bool has_threshold;
    double threshold;
    char base_path[1024]; /* the configuration in effect, which every trial starts from */
    char trial_dir[1024];
    char **env; /* the children's environment */

    pthread_mutex_t lock;
    pthread_cond_t changed;
    struct tuner_trial *trials; /* by id */
    size_t ntrials, cap;
    size_t next_tell;               /* trials are told to the study in id order */
    size_t asked_now, finished_now; /* by this run */
    size_t resumed;
    bool stopping;
    const char *stopped;
    int best; /* in tell order, which decides stopping */
    double best_loss;
    size_t since_best;
    int shown_best; /* in finishing order, for the progress events */
    double shown_best_loss;
    FILE *log;
    int64_t started_ms;
    int status; /* the first I/O error of a worker thread */
    char err[512];
};

/* --- the trials log -----------------------------------------------------------------------------
 */

static json_t *tuner_trial_json(const struct tuner *t, size_t id)
{
    const struct tuner_trial *tr = &t->trials[id];
    json_t *o =
        json_pack("{s:I,s:s,s:o,s:f}", "trial", (json_int_t)id, "status", tr->ok ? "ok" : "failed",
                  "params", tune_space_values_json(t->space, tr->values), "seconds", tr->seconds);
    if (tr->ok)
        json_object_set_new(o, "loss", json_real(tr->loss));
    else
        json_object_set_new(o, "error", json_string(tr->error ? tr->error : ""));
    return o;
}

static int tuner_log_append(struct tuner *t, size_t id)
{
    json_t *o = tuner_trial_json(t, id);
    char *line = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    int ok = line && fprintf(t->log, "%s\n", line) > 0 && fflush(t->log) == 0;
    free(line);
    return ok ? TB_OK : TB_IO;
}

static void tuner_grow(struct tuner *t, size_t id)
{
    if (id < t->ntrials)
        return;
    mem_grow((void **)&t->trials, &t->cap, id + 1, sizeof *t->trials);
    memset(&t->trials[t->ntrials], 0, (id + 1 - t->ntrials) * sizeof *t->trials);
    for (size_t i = t->ntrials; i <= id; i++)
        t->trials[i].values = mem_alloc((t->nparams ? t->nparams : 1) * sizeof(double));
    t->ntrials = id + 1;
}

/* Reads line lineno of an earlier run's log (path) into its trial. Returns TB_OK, or TB_CONFIG
 * with err naming the line. */
static int tuner_resume_line(struct tuner *t, const char *path, size_t lineno, const char *line,
                             char *err, size_t errsz)
{
    json_error_t jerr;
    json_t *o = json_loads(line, 0, &jerr);
    json_int_t id = -1;
    const char *status = NULL, *error = NULL;
    json_t *params = NULL;
    double loss = NAN, seconds = 0;
    char why[256];
    int rc = TB_OK;
    if (!o ||
        json_unpack(o, "{s:I,s:s,s:o,s?F,s?F,s?s}", "trial", &id, "status", &status, "params",
                    &params, "loss", &loss, "seconds", &seconds, "error", &error) != 0 ||
        id < 0 || id >= TPE_MAX_TRIALS) {
        rc = tb_fail(err, errsz, TB_CONFIG, "%s:%zu: not a trial record", path, lineno);
        goto done;
    }
    tuner_grow(t, (size_t)id);
    struct tuner_trial *tr = &t->trials[id];
    if (tr->finished) {
        rc = tb_fail(err, errsz, TB_CONFIG, "%s:%zu: trial %lld appears twice", path, lineno,
                     (long long)id);
        goto done;
    }
    if (tune_space_values_from_json(t->space, params, tr->values, t->nparams, why, sizeof why) !=
        TB_OK) {
        rc = tb_fail(err, errsz, TB_CONFIG,
                     "%s:%zu: %s (is this log from another search space? move it away or "
                     "set tune.resume: false)",
                     path, lineno, why);
        goto done;
    }
    tr->finished = true;
    tr->ok = strcmp(status, "ok") == 0 && isfinite(loss);
    tr->loss = loss;
    tr->seconds = seconds;
    tr->error = error ? mem_strdup(error) : NULL;
    t->resumed++;
done:
    json_decref(o);
    return rc;
}

/* Reads an earlier run's log back into the study, in id order: the search continues as if it had
 * not stopped. A log of another space, or damaged, is refused (naming the line), so that a
 * changed space is not silently mixed with old results. */
static int tuner_resume(struct tuner *t, const char *path, char *err, size_t errsz)
{
    FILE *in = fopen(path, "r");
    if (!in)
        return errno == ENOENT ? TB_OK
                               : tb_fail(err, errsz, TB_IO, "%s: %s", path, strerror(errno));
    char *line = NULL;
    size_t cap = 0;
    int rc = TB_OK;
    for (size_t lineno = 1; rc == TB_OK && getline(&line, &cap, in) > 0; lineno++)
        rc = tuner_resume_line(t, path, lineno, line, err, errsz);
    free(line);
    fclose(in);
    return rc;
}

/* --- telling the study, in id order
 * --------------------------------------------------------------- */

/* Tells trial next_tell (finished) to the study and updates the best and the stopping rules. */
static void tuner_tell_next(struct tuner *t)
{
    size_t id = t->next_tell++;
    struct tuner_trial *tr = &t->trials[id];
    char why[256];
    enum tpe_status status = tr->ok ? TPE_OK : TPE_FAILED;
    double loss = tr->ok ? tr->loss : NAN;
    int rc = tr->asked ? tpe_tell(t->study, (int)id, status, loss, why, sizeof why)
                       : tpe_replay(t->study, (int)id, tr->values, t->nparams, status, loss, why,
                                    sizeof why);
    if (rc != TB_OK)
        log_warn("trial %zu: not taken into the search: %s", id, why);
    tr->told = true;
    if (tr->ok && (t->best < 0 || tr->loss < t->best_loss)) {
        t->best = (int)id;
        t->best_loss = tr->loss;
        t->since_best = 0;
    } else {
        t->since_best++;
    }
    const struct config *cfg = t->cfg;
    if (t->stopped)
        return;
    if (t->has_threshold && t->best >= 0 && t->best_loss <= t->threshold)
        t->stopped = "threshold";
    else if (cfg->tune.early_stop_trials > 0 &&
             t->since_best >= (size_t)cfg->tune.early_stop_trials && t->best >= 0)
        t->stopped = "no improvement";
    if (t->stopped)
        t->stopping = true;
}

/* --- one trial: a train process
 * ------------------------------------------------------------------- */

/* The last non-empty line of a file, for a failed trial's reason. */
static char *tuner_last_line(const char *path)
{
    FILE *in = fopen(path, "r");
    char *line = NULL, *last = NULL;
    size_t cap = 0;
    ssize_t n;
    while (in && (n = getline(&line, &cap, in)) > 0) {
        while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
            line[--n] = '\0';
        if (n > 0) {
            free(last);
            last = mem_strdup(line);
        }
    }
    free(line);
    if (in)
        fclose(in);
    return last ? last : mem_strdup("no output");
}

/* Writes cfg to path as YAML. */
static int tuner_write_file(const struct config *cfg, const char *path, char *err, size_t errsz)
{
    FILE *out = fopen(path, "w");
    if (!out)
        return tb_fail(err, errsz, TB_IO, "%s: %s", path, strerror(errno));
    config_write(cfg, out);
    if (fclose(out) != 0)
        return tb_fail(err, errsz, TB_IO, "%s: %s", path, strerror(errno));
    return TB_OK;
}

/* Writes the base configuration with values applied (and overrides) to path. */
static int tuner_write_config(const struct tuner *t, const double *values, const char *path,
                              const char *const *overrides, char *err, size_t errsz)
{
    struct config *cfg = config_new();
    int rc = config_load_file(cfg, t->base_path, err, errsz);
    if (rc != TB_OK)
        goto done;
    if (values) {
        rc = tune_space_apply(t->space, values, cfg, err, errsz);
        if (rc != TB_OK)
            goto done;
    }
    for (size_t i = 0; overrides && overrides[i]; i += 2) {
        rc = config_set(cfg, overrides[i], overrides[i + 1], "tune", err, errsz);
        if (rc != TB_OK)
            goto done;
    }
    rc = tuner_write_file(cfg, path, err, errsz);
done:
    config_destroy(cfg);
    return rc;
}

/* Runs `tributary train -c config` with output to log, waiting at most timeout_s. Returns TB_OK
 * when it exited 0, or an error with err saying what happened. */
static int tuner_spawn(struct tuner *t, const char *config, const char *log, double timeout_s,
                       char *err, size_t errsz)
{
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, 1, log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    posix_spawn_file_actions_adddup2(&actions, 1, 2);
    posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
    char *argv[] = {(char *)t->exe, "train", "-c", (char *)config, NULL};
    pid_t pid;
    int rc = posix_spawn(&pid, t->exe, &actions, NULL, argv, t->env);
    posix_spawn_file_actions_destroy(&actions);
    if (rc != 0)
        return tb_fail(err, errsz, TB_IO, "cannot start %s: %s", t->exe, strerror(rc));
    int64_t deadline = clock_monotonic_ms() + (int64_t)(timeout_s * 1000.0);
    int wstatus = 0;
    for (;;) {
        pid_t done = waitpid(pid, &wstatus, WNOHANG);
        if (done == pid)
            break;
        if (done < 0 && errno != EINTR)
            return tb_fail(err, errsz, TB_IO, "waiting for trial: %s", strerror(errno));
        bool late = clock_monotonic_ms() >= deadline;
        if (late || signals_stop_requested()) {
            kill(pid, SIGKILL);
            waitpid(pid, &wstatus, 0);
            return late ? tb_fail(err, errsz, TB_TIMEOUT, "timed out after %g s", timeout_s)
                        : tb_fail(err, errsz, TB_TIMEOUT, "interrupted");
        }
        struct timespec pause = {0, (long)20 * 1000 * 1000};
        nanosleep(&pause, NULL);
    }
    if (WIFEXITED(wstatus) && WEXITSTATUS(wstatus) == 0)
        return TB_OK;
    char *last = tuner_last_line(log);
    if (WIFSIGNALED(wstatus))
        tb_fail(err, errsz, TB_IO, "killed by signal %d: %s", WTERMSIG(wstatus), last);
    else
        tb_fail(err, errsz, TB_IO, "%s", last);
    free(last);
    return TB_IO;
}

/* The trial's loss from its artefact's manifest. */
static int tuner_loss(struct tuner *t, const char *artefact_path, double *loss, char *err,
                      size_t errsz)
{
    struct artefact *a = artefact_read(artefact_path, err, errsz);
    if (!a)
        return TB_ARTEFACT;
    size_t count = 0;
    const struct artefact_param *metrics = artefact_metrics(a, &count);
    double value;
    int rc = artefact_param_find(metrics, count, t->metric, &value);
    if (rc != TB_OK) {
        char names[512] = "";
        size_t len = 0;
        for (size_t i = 0; i < count && len < sizeof names - 64; i++)
            len += (size_t)snprintf(names + len, sizeof names - len, "%s%s", i ? ", " : "",
                                    metrics[i].name);
        rc = tb_fail(err, errsz, TB_CONFIG,
                     "tune.loss: the manifest has no metric '%s' (it has %s); set train.folds "
                     "or train.split for cv_ or holdout_ metrics",
                     t->metric, names);
        goto done;
    }
    *loss = t->complement ? 1.0 - value : value;
    if (!isfinite(*loss))
        rc = tb_fail(err, errsz, TB_PARSE, "the loss is %g", *loss);
done:
    artefact_destroy(a);
    return rc;
}

/* Reports an event with the fields every event has, and those of its kind set by the caller. */
static void tuner_notify(const struct tuner *t, struct tuner_event *event)
{
    event->log_path = t->log_path;
    if (t->on_event)
        t->on_event(event, t->opaque);
}

/* Reports that trial id finished, with the progress of the job. Called with the lock held. */
static void tuner_notify_trial(struct tuner *t, size_t id)
{
    const struct tuner_trial *tr = &t->trials[id];
    size_t done = t->resumed + t->finished_now, total = (size_t)t->cfg->tune.trials;
    double elapsed = (double)(clock_monotonic_ms() - t->started_ms) / 1000.0;
    double rate = elapsed > 0 ? (double)t->finished_now / elapsed : 0;
    struct tuner_event event = {
        .kind = TUNER_EVENT_TRIAL,
        .trial = id,
        .ok = tr->ok,
        .loss = tr->loss,
        .seconds = tr->seconds,
        .error = tr->ok ? NULL : tr->error,
        .done = done,
        .total = total,
        .best_trial = t->shown_best,
        .best_loss = t->shown_best_loss,
        .trials_per_s = rate,
        .eta_s = rate > 0 && total > done ? (double)(total - done) / rate : 0,
    };
    tuner_notify(t, &event);
}

/* Runs trial id with values, unlocked: writes its configuration, trains it in a child process and
 * reads its loss. Returns TB_OK with *loss, or an error with err saying why the trial failed. */
static int tuner_run_trial(struct tuner *t, int id, const double *values, double *loss, char *err,
                           size_t errsz)
{
    char config[1100], artefact[1100], log_path[1100];
    snprintf(config, sizeof config, "%s/%d.yaml", t->trial_dir, id);
    snprintf(artefact, sizeof artefact, "%s/%d.avro", t->trial_dir, id);
    snprintf(log_path, sizeof log_path, "%s/%d.log", t->trial_dir, id);
    const char *overrides[] = {"train.output", artefact, "registry.directory", "", NULL};
    int rc = tuner_write_config(t, values, config, overrides, err, errsz);
    if (rc != TB_OK)
        goto done;
    rc = tuner_spawn(t, config, log_path, t->cfg->tune.trial_timeout_s, err, errsz);
    if (rc != TB_OK)
        goto done;
    rc = tuner_loss(t, artefact, loss, err, errsz);
done:
    unlink(artefact); /* its loss is all the search needs of it */
    return rc;
}

/* Records trial id's outcome (rc, and loss or err) in the trials, the log and the best shown, and
 * reports it. Called with the lock held. */
static void tuner_record(struct tuner *t, int id, int rc, double loss, int64_t started_ms,
                         const char *err)
{
    struct tuner_trial *tr = &t->trials[id];
    tr->finished = true;
    tr->ok = rc == TB_OK;
    tr->loss = loss;
    tr->seconds = (double)(clock_monotonic_ms() - started_ms) / 1000.0;
    tr->error = rc == TB_OK ? NULL : mem_strdup(err);
    t->finished_now++;
    if (tuner_log_append(t, (size_t)id) != TB_OK && t->status == TB_OK) {
        t->status = tb_fail(t->err, sizeof t->err, TB_IO, "cannot write the trials log: %s",
                            strerror(errno));
        t->stopping = true;
    }
    if (tr->ok && (t->shown_best < 0 || loss < t->shown_best_loss)) {
        t->shown_best = id;
        t->shown_best_loss = loss;
    }
    tuner_notify_trial(t, (size_t)id);
}

/* A worker thread: asks, runs, records, until the search is done. */
static void *tuner_worker(void *arg)
{
    struct tuner *t = arg;
    const struct config *cfg = t->cfg;
    size_t parallelism = (size_t)cfg->tune.parallelism;
    double *values = mem_alloc((t->nparams ? t->nparams : 1) * sizeof(double));
    pthread_mutex_lock(&t->lock);
    for (;;) {
        if (t->stopping || signals_stop_requested() ||
            t->resumed + t->asked_now >= (size_t)cfg->tune.trials)
            break;
        /* Trial k is proposed from exactly trials 0 .. k - P: wait for them, tell them in order. */
        size_t k = t->ntrials;
        while (k >= parallelism && t->next_tell <= k - parallelism && !t->stopping) {
            if (t->trials[t->next_tell].finished) {
                tuner_tell_next(t);
                continue;
            }
            pthread_cond_wait(&t->changed, &t->lock);
            k = t->ntrials;
        }
        if (t->stopping || t->resumed + t->asked_now >= (size_t)cfg->tune.trials)
            break;
        char why[256];
        int id = tpe_ask(t->study, values, t->nparams, why, sizeof why);
        if (id < 0) {
            if (t->status == TB_OK)
                t->status = tb_fail(t->err, sizeof t->err, TB_CONFIG, "tune: %s", why);
            t->stopping = true;
            break;
        }
        tuner_grow(t, (size_t)id);
        memcpy(t->trials[id].values, values, t->nparams * sizeof *values);
        t->trials[id].asked = true;
        t->asked_now++;
        pthread_mutex_unlock(&t->lock);

        int64_t started_ms = clock_monotonic_ms();
        char err[512];
        double loss = NAN;
        int rc = tuner_run_trial(t, id, values, &loss, err, sizeof err);

        pthread_mutex_lock(&t->lock);
        if (signals_stop_requested()) {
            /* Not recorded: a resumed run asks for it again. */
            t->stopping = true;
            break;
        }
        tuner_record(t, id, rc, loss, started_ms, err);
        pthread_cond_broadcast(&t->changed);
    }
    pthread_cond_broadcast(&t->changed);
    pthread_mutex_unlock(&t->lock);
    free(values);
    return NULL;
}

/* --- the job -----------------------------------------------------------------------------------
 */

/* The children's environment: ours without TRIBUTARY_* (their configuration file says it all) and
 * with OPENBLAS_NUM_THREADS sharing the cores out among the trials running at once. */
static char **tuner_env(int parallelism)
{
    size_t n = 0;
    while (environ[n])
        n++;
    char **env = mem_calloc(n + 2, sizeof *env);
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (strncmp(environ[i], "TRIBUTARY_", 10) != 0 &&
            strncmp(environ[i], "OPENBLAS_NUM_THREADS=", 21) != 0)
            env[k++] = mem_strdup(environ[i]);
    }
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    long threads = cores > parallelism ? cores / parallelism : 1;
    char buf[64];
    snprintf(buf, sizeof buf, "OPENBLAS_NUM_THREADS=%ld", threads);
    env[k++] = mem_strdup(buf);
    return env;
}

static int tuner_mkdir(const char *path, char *err, size_t errsz)
{
    char buf[1024];
    snprintf(buf, sizeof buf, "%s", path);
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(buf, 0755) != 0 && errno != EEXIST)
            return tb_fail(err, errsz, TB_IO, "cannot create %s: %s", buf, strerror(errno));
        *p = '/';
    }
    if (mkdir(buf, 0755) != 0 && errno != EEXIST)
        return tb_fail(err, errsz, TB_IO, "cannot create %s: %s", buf, strerror(errno));
    return TB_OK;
}

/* The best trial's values as YAML lines ("key: value"), for the report; the caller frees it.
 * NULL when no trial succeeded, or when the text cannot be built. */
static char *tuner_best_yaml(const struct tuner *t)
{
    if (t->best < 0)
        return NULL;
    char *yaml = NULL;
    size_t len = 0;
    FILE *mem = open_memstream(&yaml, &len);
    if (!mem)
        return NULL;
    json_t *best = tune_space_values_json(t->space, t->trials[t->best].values);
    const char *key;
    json_t *value;
    json_object_foreach(best, key, value)
    {
        char *text = json_dumps(value, JSON_ENCODE_ANY);
        fprintf(mem, "%s: %s\n", key, text ? text : "null");
        free(text);
    }
    json_decref(best);
    fclose(mem);
    return yaml;
}

/* The report beside the log. */
static int tuner_report(const struct tuner *t, const char *path, const char *summary, char *err,
                        size_t errsz)
{
    const struct tpe_space *space = tune_space_tpe(t->space);
    struct tune_report_param *params = mem_calloc(t->nparams ? t->nparams : 1, sizeof *params);
    const char *const **labels = mem_calloc(t->nparams ? t->nparams : 1, sizeof *labels);
    size_t *nlabels = mem_calloc(t->nparams ? t->nparams : 1, sizeof *nlabels);
    for (size_t p = 0; p < t->nparams; p++) {
        struct tpe_param param;
        int parent, option;
        tpe_space_describe(space, p, &param, &parent, &option);
        params[p].name = param.name;
        params[p].categorical = param.kind == TPE_CHOICE;
        labels[p] = param.kind == TPE_CHOICE ? (const char *const *)param.options : NULL;
        nlabels[p] = param.kind == TPE_CHOICE ? param.noptions : 0;
    }
    struct tune_report_trial *trials = mem_calloc(t->ntrials ? t->ntrials : 1, sizeof *trials);
    size_t n = 0;
    for (size_t i = 0; i < t->ntrials; i++) {
        const struct tuner_trial *tr = &t->trials[i];
        if (!tr->finished)
            continue;
        trials[n++] = (struct tune_report_trial){
            .id = (int)i,
            .ok = tr->ok,
            .loss = tr->loss,
            .values = tr->values,
            .seconds = tr->seconds,
            .error = tr->error,
        };
    }
    char *best_yaml = tuner_best_yaml(t);
    char title[256];
    snprintf(title, sizeof title, "%s: %s search, %zu trials", t->cfg->train.model_name,
             t->cfg->tune.algorithm, n);
    struct tune_report report = {
        .title = title,
        .loss_name = t->cfg->tune.loss,
        .params = params,
        .nparams = t->nparams,
        .labels = labels,
        .nlabels = nlabels,
        .trials = trials,
        .ntrials = n,
        .best_config_yaml = best_yaml ? best_yaml : "",
        .summary = summary,
    };
    int rc = tune_report_write(&report, path, err, errsz);
    free(best_yaml);
    free(trials);
    free(nlabels);
    free(labels);
    free(params);
    return rc;
}

/* Frees what t holds; t itself is the caller's. */
static void tuner_free(struct tuner *t)
{
    for (size_t i = 0; t->env && t->env[i]; i++)
        free(t->env[i]);
    free(t->env);
    if (t->log)
        fclose(t->log);
    for (size_t i = 0; i < t->ntrials; i++) {
        free(t->trials[i].values);
        free(t->trials[i].error);
    }
    free(t->trials);
    tpe_study_destroy(t->study);
    free(t->metric);
    pthread_cond_destroy(&t->changed);
    pthread_mutex_destroy(&t->lock);
}

/* The file names of the job, in result and t, from tune.directory and the model's name. */
static void tuner_paths(struct tuner *t, struct tuner_result *result)
{
    const struct config *cfg = t->cfg;
    const char *dir = cfg->tune.directory, *name = cfg->train.model_name;
    snprintf(result->log_path, sizeof result->log_path, "%s/%s-trials.jsonl", dir, name);
    snprintf(result->report_path, sizeof result->report_path, "%s/%s-report.html", dir, name);
    snprintf(result->best_config_path, sizeof result->best_config_path, "%s/%s-best.yaml", dir,
             name);
    snprintf(result->best_artefact_path, sizeof result->best_artefact_path, "%s/%s-best.avro", dir,
             name);
    snprintf(t->base_path, sizeof t->base_path, "%s/%s-base.yaml", dir, name);
    snprintf(t->trial_dir, sizeof t->trial_dir, "%s/%s-trials", dir, name);
    t->log_path = result->log_path;
}

/* Checks tune.loss and tune.loss_threshold, makes the trials' directory, writes the base
 * configuration and makes the study. Returns TB_OK, or TB_CONFIG or TB_IO with err. */
static int tuner_prepare(struct tuner *t, char *err, size_t errsz)
{
    const struct config *cfg = t->cfg;
    t->nparams = tpe_space_size(tune_space_tpe(t->space));
    t->complement = strncmp(cfg->tune.loss, "1-", 2) == 0;
    t->metric = mem_strdup(cfg->tune.loss + (t->complement ? 2 : 0));
    if (!t->metric[0])
        return tb_fail(err, errsz, TB_CONFIG, "tune.loss: empty");
    if (cfg->tune.loss_threshold[0]) {
        char *end;
        t->threshold = strtod(cfg->tune.loss_threshold, &end);
        t->has_threshold = true;
        if (*end || !isfinite(t->threshold))
            return tb_fail(err, errsz, TB_CONFIG, "tune.loss_threshold: '%s' is not a number",
                           cfg->tune.loss_threshold);
    }
    int rc = tuner_mkdir(t->trial_dir, err, errsz);
    if (rc != TB_OK)
        return rc;
    rc = tuner_write_file(cfg, t->base_path, err, errsz);
    if (rc != TB_OK)
        return rc;
    struct tpe_options options = tpe_options_default();
    options.n_startup = (size_t)cfg->tune.startup_trials;
    t->study = tpe_study_new(tune_space_tpe(t->space),
                             strcmp(cfg->tune.algorithm, "random") == 0 ? TPE_RANDOM : TPE_TPE,
                             (uint64_t)cfg->tune.seed, &options, err, errsz);
    return t->study ? TB_OK : TB_CONFIG;
}

/* Forgets trial n and every trial after it. */
static void tuner_truncate(struct tuner *t, size_t n)
{
    for (size_t i = n; i < t->ntrials; i++) {
        free(t->trials[i].values);
        free(t->trials[i].error);
        if (t->trials[i].finished)
            t->resumed--;
    }
    t->ntrials = n;
}

/* Opens the trials log: with tune.resume, reads the earlier run's trials back and tells them to
 * the study, then writes the log again with what was kept, to append the new trials to. */
static int tuner_open_log(struct tuner *t, char *err, size_t errsz)
{
    if (t->cfg->tune.resume) {
        int rc = tuner_resume(t, t->log_path, err, errsz);
        if (rc != TB_OK)
            return rc;
    }
    /* The resumed trials are told in id order up to the first gap. */
    while (t->next_tell < t->ntrials && t->trials[t->next_tell].finished)
        tuner_tell_next(t);
    if (t->next_tell < t->ntrials) {
        /* A trial was running when the earlier run stopped: the ones after it are run again
         * (with one seed they are proposed the same), so that the ids go on without a gap. */
        struct tuner_event event = {
            .kind = TUNER_EVENT_UNFINISHED, .trial = t->next_tell, .best_trial = -1};
        tuner_notify(t, &event);
        tuner_truncate(t, t->next_tell);
    }
    t->log = fopen(t->log_path, "w");
    if (!t->log)
        return tb_fail(err, errsz, TB_IO, "%s: %s", t->log_path, strerror(errno));
    for (size_t i = 0; i < t->ntrials; i++)
        if (tuner_log_append(t, i) != TB_OK)
            return tb_fail(err, errsz, TB_IO, "%s: %s", t->log_path, strerror(errno));
    if (t->resumed) {
        struct tuner_event event = {
            .kind = TUNER_EVENT_RESUMED,
            .done = t->resumed,
            .total = (size_t)t->cfg->tune.trials,
            .best_trial = t->best,
            .best_loss = t->best_loss,
        };
        tuner_notify(t, &event);
    }
    return TB_OK;
}

/* Runs the trials, tune.parallelism at once, until the budget is spent, a stopping rule holds or
 * an interrupt comes; then tells the study the trials left and sets t->stopped. Returns TB_OK, or
 * the first error of a trial thread (or TB_IO when none could start) with err. */
static int tuner_search(struct tuner *t, char *err, size_t errsz)
{
    const struct config *cfg = t->cfg;
    t->shown_best = t->best;
    t->shown_best_loss = t->best_loss;
    t->env = tuner_env(cfg->tune.parallelism);
    t->started_ms = clock_monotonic_ms();

    size_t nthreads = (size_t)cfg->tune.parallelism;
    pthread_t *threads = mem_calloc(nthreads, sizeof *threads);
    size_t started = 0;
    for (; started < nthreads; started++)
        if (pthread_create(&threads[started], NULL, tuner_worker, t) != 0)
            break;
    for (size_t i = 0; i < started; i++)
        pthread_join(threads[i], NULL);
    free(threads);
    struct tuner_event over = {.kind = TUNER_EVENT_TRIALS_OVER, .best_trial = -1};
    tuner_notify(t, &over);

    while (t->next_tell < t->ntrials && t->trials[t->next_tell].finished && !t->stopped)
        tuner_tell_next(t);
    if (!t->stopped)
        t->stopped = signals_stop_requested() ? "interrupted" : "budget";
    if (started == 0)
        return tb_fail(err, errsz, TB_IO, "cannot start a trial thread");
    if (t->status != TB_OK)
        return tb_fail(err, errsz, t->status, "%s", t->err);
    return TB_OK;
}

/* Refits the best trial's configuration on every training row (the training side of train.split,
 * which the trials' folds came from: the holdout stays unseen by the search) and publishes it. */
static int tuner_refit(struct tuner *t, struct tuner_result *result, char *err, size_t errsz)
{
    const struct config *cfg = t->cfg;
    const char *overrides[] = {
        "train.folds",
        "0",
        "train.output",
        result->best_artefact_path,
        "registry.directory",
        cfg->tune.publish ? cfg->registry.directory : "",
        NULL,
    };
    struct config *best = NULL;
    struct artefact *a = NULL;
    struct trainer_summary summary = {0};
    int rc = tuner_write_config(t, t->trials[t->best].values, result->best_config_path, overrides,
                                err, errsz);
    if (rc != TB_OK)
        goto done;
    best = config_new();
    rc = config_load_file(best, result->best_config_path, err, errsz);
    if (rc != TB_OK)
        goto done;
    a = trainer_run(best, &summary, &rc, err, errsz);
    if (a)
        result->published = summary.published;
done:
    artefact_destroy(a);
    config_destroy(best);
    return rc;
}

/* Writes the report of the trials (when there are any); a failure is logged, and clears
 * result->report_path. */
static void tuner_write_report(const struct tuner *t, struct tuner_result *result)
{
    const struct config *cfg = t->cfg;
    if (result->trials == 0)
        return;
    char summary[1024], why[512];
    snprintf(summary, sizeof summary,
             "%zu trials (%zu resumed, %zu failed), %s, parallelism %d, seed %lld, loss %s; "
             "stopped: %s. Best: trial %d, loss %.6g. %s",
             result->trials, result->resumed, result->failed, cfg->tune.algorithm,
             cfg->tune.parallelism, cfg->tune.seed, cfg->tune.loss, t->stopped, t->best,
             t->best_loss, result->published ? "Refitted on all training rows and published." : "");
    if (tuner_report(t, result->report_path, summary, why, sizeof why) != TB_OK) {
        log_warn("report: %s", why);
        result->report_path[0] = '\0';
    }
}

int tuner_run(const struct config *cfg, const struct tune_space *space, const char *exe,
              tuner_event_fn *on_event, void *opaque, struct tuner_result *result, char *err,
              size_t errsz)
{
    memset(result, 0, sizeof *result);
    result->best_trial = -1;
    struct tuner t = {
        .cfg = cfg,
        .space = space,
        .exe = exe,
        .on_event = on_event,
        .opaque = opaque,
        .best = -1,
        .shown_best = -1,
    };
    pthread_mutex_init(&t.lock, NULL);
    pthread_cond_init(&t.changed, NULL);
    tuner_paths(&t, result);
    int rc = tuner_prepare(&t, err, errsz);
    if (rc != TB_OK)
        goto done;
    rc = tuner_open_log(&t, err, errsz);
    if (rc != TB_OK)
        goto done;
    rc = tuner_search(&t, err, errsz);

    /* What the search found is the result whether or not it ended in an error. */
    result->trials = t.resumed + t.finished_now;
    result->resumed = t.resumed;
    for (size_t i = 0; i < t.ntrials; i++)
        result->failed += t.trials[i].finished && !t.trials[i].ok;
    result->best_trial = t.best;
    result->best_loss = t.best_loss;
    result->stopped = t.stopped;
    if (rc == TB_OK && t.best >= 0 && strcmp(t.stopped, "interrupted") != 0)
        rc = tuner_refit(&t, result, err, errsz);
    tuner_write_report(&t, result);
done:
    tuner_free(&t);
    return rc;
}
