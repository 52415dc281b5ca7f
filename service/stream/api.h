/* serve's HTTP endpoint: health, readiness, Prometheus metrics and the loaded models, on a
 * thread of its own that never blocks the stream workers. */
#ifndef TRIBUTARY_API_H
#define TRIBUTARY_API_H

#include "service/config/config.h"
#include "service/stream/serve.h"

#include <stddef.h>

struct api;

/* Binds cfg->http.address with the cfg->http limits and registers the routes:
 *   GET /healthz    200 {"status": "alive"} while the process runs;
 *   GET /readyz     200 {"ready": true, ...} once partitions are assigned and a model is loaded
 *                   and the service is not stopping; 503 {"ready": false, "reason": ...} else;
 *   GET /metrics    the service's registry in the Prometheus text format, with the HTTP
 *                   requests by route, method and status and their latency added to it;
 *   GET /v1/models  {"models": [<manifest>]}: the model being served, as `inspect` prints it;
 *   POST /v1/models/{name}/predict  {"instances": [{<input>: value, ..., "key": "m-1"}, ...]}
 *                   (or one instance object): scored in one batch by the stream's pipeline and
 *                   model, each instance as the next record of its key (that key's window
 *                   history in the workers is used, not changed); answers {"model", "version",
 *                   "predictions": [{"prediction", "probabilities" for classifiers}], "classes"}.
 *                   400 for malformed JSON or a missing or mistyped input, 404 for another
 *                   model's name;
 *   POST /v1/models/{name}/reload  reads the model's source again (serve_reload): 200
 *                   {"reloaded", "read_version", "serving_version"}, or 422 when the version read
 *                   is refused (the current one keeps serving). With http.token or
 *                   http.token_file set it needs "Authorization: Bearer <token>" (401, 403).
 * Anything else is a JSON error: 404, 405, 413. cfg and serve must outlive the api. Returns the
 * api (free with api_destroy before the serve) or NULL with *status and a message in err. */
struct api *api_new(const struct config *cfg, struct serve *serve, int *status, char *err,
                    size_t errsz);

/* Starts answering. Returns TB_OK, or an error with err. */
int api_start(struct api *api, char *err, size_t errsz);

/* The port the endpoint listens on (useful with port 0). */
int api_port(const struct api *api);

/* Stops the endpoint and frees it; accepts NULL. */
void api_destroy(struct api *api);

#endif
