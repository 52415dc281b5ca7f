/* serve's HTTP endpoint: health, readiness, metrics and models. */
#include "service/stream/api.h"

#include "models/linear.h"
#include "models/pipeline.h"
#include "service/base/error.h"
#include "service/base/mem.h"
#include "service/base/textfile.h"
#include "service/http/http_server.h"
#include "service/http/prom.h"
#include "service/registry/artefact.h"
#include "service/stream/live_model.h"
#include "service/stream/predict_request.h"

#include <jansson.h>
#include <stdio.h>
#include <string.h>

struct api {
    struct serve *serve;
    struct http_server *server;
    struct prom_family *requests; /* by route, method and status */
    struct prom_family *seconds;  /* by route */
};

static void api_observe(const char *route, const char *method, int status, double latency_s,
                        void *opaque)
{
    struct api *api = opaque;
    char code[8];
    snprintf(code, sizeof code, "%d", status);
    const char *labels[] = {route, method, code};
    prom_inc(prom_child(api->requests, labels));
    prom_observe(prom_child(api->seconds, &route), latency_s);
}

/* Answers with a JSON document (taken). */
static void api_respond_json(struct http_server_response *response, int status, json_t *doc)
{
    char *text = doc ? json_dumps(doc, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
    json_decref(doc);
    if (!text) {
        http_server_respond_error(response, 500, "cannot build the JSON answer");
        return;
    }
    http_server_respond(response, status, "application/json", text, strlen(text));
    free(text);
}

static void api_healthz(const struct http_server_request *request,
                        struct http_server_response *response, void *opaque)
{
    (void)request;
    (void)opaque;
    api_respond_json(response, 200, json_pack("{s:s}", "status", "alive"));
}

static void api_readyz(const struct http_server_request *request,
                       struct http_server_response *response, void *opaque)
{
    (void)request;
    struct api *api = opaque;
    int assigned = serve_assigned(api->serve);
    struct live_model *model = serve_acquire_model(api->serve);
    const char *reason = serve_stopping(api->serve)    ? "stopping"
                         : assigned == 0               ? "no partitions assigned yet"
                         : serve_restoring(api->serve) ? "restoring per-key state"
                                                       : NULL;
    json_t *doc =
        json_pack("{s:b,s:i,s:s,s:s}", "ready", reason == NULL, "assigned_partitions", assigned,
                  "model", artefact_name(model->artefact), "version", model->version);
    if (doc && reason)
        json_object_set_new(doc, "reason", json_string(reason));
    live_model_release(model);
    api_respond_json(response, reason ? 503 : 200, doc);
}

static void api_metrics(const struct http_server_request *request,
                        struct http_server_response *response, void *opaque)
{
    (void)request;
    struct api *api = opaque;
    size_t len = 0;
    char *text = prom_render(serve_registry(api->serve), &len);
    http_server_respond(response, 200, PROM_CONTENT_TYPE, text, len);
    free(text);
}

static void api_models(const struct http_server_request *request,
                       struct http_server_response *response, void *opaque)
{
    (void)request;
    struct api *api = opaque;
    struct live_model *model = serve_acquire_model(api->serve);
    char *manifest = NULL;
    json_t *doc = NULL;
    if (artefact_manifest_json(model->artefact, &manifest) == TB_OK) {
        json_t *parsed = json_loads(manifest, 0, NULL);
        doc = parsed ? json_pack("{s:[o]}", "models", parsed) : NULL;
    }
    free(manifest);
    live_model_release(model);
    api_respond_json(response, 200, doc);
}

/* What serve knows of one machine: which partition and offset its state covers, how many records
 * its online model learned from, and that model's prequential metrics. */
static void api_key(const struct http_server_request *request,
                    struct http_server_response *response, void *opaque)
{
    struct api *api = opaque;
    const char *key = http_server_request_capture(request);
    struct grouped_key k;
    if (!serve_key(api->serve, key, strlen(key), &k)) {
        http_server_respond_error(response, 404,
                                  "no worker holds key '%s' (not seen, or its partition is "
                                  "another instance's)",
                                  key);
        return;
    }
    struct metrics_regression e;
    metrics_running_get(&k.prequential, &e);
    double log_loss, accuracy;
    metrics_running_class_get(&k.prequential_class, &log_loss, &accuracy);
    json_t *prequential = json_object();
    if (e.count > 0)
        json_object_set_new(
            prequential, "regression",
            json_pack("{s:I,s:f,s:f}", "count", (json_int_t)e.count, "mae", e.mae, "rmse", e.rmse));
    if (k.prequential_class.count > 0)
        json_object_set_new(prequential, "classification",
                            json_pack("{s:I,s:f,s:f}", "count",
                                      (json_int_t)k.prequential_class.count, "log_loss", log_loss,
                                      "accuracy", accuracy));
    json_t *doc =
        json_pack("{s:s,s:i,s:I,s:I,s:b,s:o}", "key", key, "partition", (int)k.partition, "offset",
                  (json_int_t)k.offset, "records_learned", (json_int_t)k.records, "spilled",
                  k.spill >= 0, "prequential", prequential);
    api_respond_json(response, 200, doc);
}

/* POST /v1/models/{name}/predict: {"instances": [{field: value, ..., "key": "m-1"}, ...]} (or
 * one instance object), scored in one batch by the stream's pipeline and model, each instance as
 * the next record of its key. */
static void api_predict(const struct http_server_request *request,
                        struct http_server_response *response, void *opaque)
{
    struct api *api = opaque;
    struct live_model *model = serve_acquire_model(api->serve);
    const struct pipeline *pipeline = artefact_pipeline(model->artefact);
    const struct linear_model *linear = artefact_model(model->artefact);
    struct predict_request *parsed = NULL;
    double *features = NULL, *outputs = NULL, *decided = NULL;
    const char *name = http_server_request_capture(request);
    if (strcmp(name, artefact_name(model->artefact)) != 0) {
        http_server_respond_error(response, 404, "unknown model '%s' (serving '%s')", name,
                                  artefact_name(model->artefact));
        goto done;
    }
    size_t len = 0;
    const void *text = http_server_request_body(request, &len);
    char why[512];
    if (predict_request_parse(pipeline, text, len, &parsed, why, sizeof why) != TB_OK) {
        http_server_respond_error(response, 400, "%s", why);
        goto done;
    }
    const struct pipeline_rows *batch = predict_request_rows(parsed);
    size_t n = batch->nrows, p = pipeline_nfeatures(pipeline);
    size_t width = linear_width(linear);
    features = mem_alloc(n * p * sizeof *features);
    outputs = mem_alloc(n * width * sizeof *outputs);
    decided = mem_alloc(n * sizeof *decided);
    serve_peek(api->serve, pipeline, batch, features);
    linear_predict(linear, features, n, outputs);
    linear_decide(linear, outputs, n, decided);
    for (size_t i = 0; model->online && i < n; i++) {
        double *out = outputs + i * width;
        double online = serve_online_predict(api->serve, model, batch->keys[i], batch->key_lens[i],
                                             features + i * p, live_model_offset(model, out));
        live_model_apply_online(model, online, out, &decided[i]);
    }
    json_t *predictions = json_array();
    for (size_t i = 0; i < n; i++) {
        json_t *item = json_pack("{s:f}", "prediction", decided[i]);
        if (linear->nclasses) {
            json_t *probabilities = json_array();
            for (size_t k = 0; k < linear->nclasses; k++)
                json_array_append_new(probabilities, json_real(outputs[i * width + k]));
            json_object_set_new(item, "probabilities", probabilities);
        }
        json_array_append_new(predictions, item);
    }
    json_t *answer = json_pack("{s:s,s:i,s:o}", "model", artefact_name(model->artefact), "version",
                               (int)artefact_version(model->artefact), "predictions", predictions);
    if (answer && linear->nclasses) {
        json_t *classes = json_array();
        for (size_t k = 0; k < linear->nclasses; k++)
            json_array_append_new(classes, json_real(linear->classes[k]));
        json_object_set_new(answer, "classes", classes);
    }
    api_respond_json(response, 200, answer);

done:
    free(decided);
    free(outputs);
    free(features);
    predict_request_destroy(parsed);
    live_model_release(model);
}

/* POST /v1/models/{name}/reload: reads the model's source again and swaps a newer version in. */
static void api_reload(const struct http_server_request *request,
                       struct http_server_response *response, void *opaque)
{
    struct api *api = opaque;
    const char *name = http_server_request_capture(request);
    const char *serving = serve_model_name(api->serve);
    if (strcmp(name, serving) != 0) {
        http_server_respond_error(response, 404, "unknown model '%s' (serving '%s')", name,
                                  serving);
        return;
    }
    char err[768];
    int version = 0;
    bool swapped = false;
    if (serve_reload(api->serve, &version, &swapped, err, sizeof err) != TB_OK) {
        http_server_respond_error(response, 422,
                                  "reload refused, the current version keeps "
                                  "serving: %s",
                                  err);
        return;
    }
    struct live_model *model = serve_acquire_model(api->serve);
    json_t *doc = json_pack("{s:b,s:i,s:s}", "reloaded", swapped, "read_version", version,
                            "serving_version", model->version);
    live_model_release(model);
    api_respond_json(response, 200, doc);
}

/* The bearer token: http.token, or the first line of http.token_file. */
static int api_token(const struct config *cfg, char **token, char *err, size_t errsz)
{
    *token = NULL;
    if (cfg->http.token[0] && cfg->http.token_file[0])
        return tb_fail(err, errsz, TB_CONFIG, "set http.token or http.token_file, not both");
    if (!cfg->http.token_file[0]) {
        *token = mem_strdup(cfg->http.token);
        return TB_OK;
    }
    char *text = textfile_read(cfg->http.token_file, NULL, err, errsz);
    if (!text)
        return TB_CONFIG;
    text[strcspn(text, "\r\n")] = '\0';
    if (!text[0]) {
        free(text);
        return tb_fail(err, errsz, TB_CONFIG, "http.token_file %s: empty first line",
                       cfg->http.token_file);
    }
    *token = text;
    return TB_OK;
}

struct api *api_new(const struct config *cfg, struct serve *serve, int *status, char *err,
                    size_t errsz)
{
    struct api *api = mem_calloc(1, sizeof *api);
    api->serve = serve;
    struct prom_registry *registry = serve_registry(serve);
    const char *labels[] = {"route", "method", "status"};
    api->requests = prom_counter(registry, "tributary_http_requests_total",
                                 "HTTP requests answered, by route, method and status", labels, 3);
    double bounds[16];
    prom_buckets_exponential(0.0001, 2, 16, bounds);
    api->seconds = prom_histogram(
        registry, "tributary_http_request_seconds",
        "HTTP request latency, from the first byte to the answer, by route", labels, 1, bounds, 16);
    char *token = NULL;
    *status = api_token(cfg, &token, err, errsz);
    if (*status != TB_OK)
        goto fail;
    struct http_server_options options = {
        .address = cfg->http.address,
        .max_body_bytes = (size_t)cfg->http.max_body_bytes,
        .header_timeout_ms = cfg->http.header_timeout_ms,
        .idle_timeout_ms = cfg->http.idle_timeout_ms,
        .max_connections = cfg->http.max_connections,
        .bearer_token = token,
        .on_request = api_observe,
        .opaque = api,
    };
    api->server = http_server_new(&options, err, errsz);
    free(token);
    if (!api->server) {
        *status = TB_CONFIG;
        goto fail;
    }
    static const struct {
        const char *path;
        http_server_handler *handler;
    } routes[] = {
        {"/healthz", api_healthz},  {"/readyz", api_readyz},     {"/metrics", api_metrics},
        {"/v1/models", api_models}, {"/v1/keys/{key}", api_key},
    };
    for (size_t i = 0; i < sizeof routes / sizeof routes[0]; i++) {
        *status = http_server_route(api->server, "GET", routes[i].path, 0, routes[i].handler, api,
                                    err, errsz);
        if (*status != TB_OK)
            goto fail;
    }
    *status = http_server_route(api->server, "POST", "/v1/models/{name}/predict", 0, api_predict,
                                api, err, errsz);
    if (*status == TB_OK)
        *status = http_server_route(api->server, "POST", "/v1/models/{name}/reload", 1, api_reload,
                                    api, err, errsz);
    if (*status != TB_OK)
        goto fail;
    *status = TB_OK;
    return api;

fail:
    api_destroy(api);
    return NULL;
}

int api_start(struct api *api, char *err, size_t errsz)
{
    return http_server_start(api->server, err, errsz);
}

int api_port(const struct api *api)
{
    return http_server_port(api->server);
}

void api_destroy(struct api *api)
{
    if (!api)
        return;
    http_server_destroy(api->server);
    free(api);
}
