/* The stream-scoring service: W workers in one consumer group, and the
 * embedded broker when no Kafka is configured. */
#ifndef TRIBUTARY_SERVE_H
#define TRIBUTARY_SERVE_H

#include "service/config/config.h"
#include "service/stream/worker.h"

#include <stdbool.h>
#include <stddef.h>

struct serve;

/* Prepares the service from cfg (which must outlive it): loads the model
 * (serve.model, or the latest of train.model_name in registry.directory) and
 * checks it against the input schema, starts the embedded broker (creating the
 * input, output, dead-letter and models topics) when kafka.bootstrap.servers is
 * not set, and watches registry.directory and registry.topic for new versions,
 * which every worker takes at its next batch (a version that does not load or
 * fit the input schema is refused and counted, and the old one keeps serving).
 * Returns the service (free with serve_destroy) with *status TB_OK, or NULL
 * with the error in *status (TB_CONFIG, TB_ARTEFACT, TB_SCHEMA, TB_IO,
 * TB_KAFKA) and a message in err. */
struct serve *serve_new(const struct config *cfg, int *status, char *err, size_t errsz);

/* Starts cfg->serve.workers worker threads. Returns TB_OK, or the failing
 * worker's error (with err) after stopping any worker already started. */
int serve_start(struct serve *serve, char *err, size_t errsz);

/* Asks every worker to finish its batch in hand, commit and leave. */
void serve_stop(struct serve *serve);

/* True once serve_stop was called or a worker failed and stopped the service. */
int serve_stopping(const struct serve *serve);

/* Waits for every worker thread to end. Returns TB_OK, or the first error a
 * worker ended with. */
int serve_wait(struct serve *serve);

/* True while a worker reads per-key state back from the changelog (not ready). */
bool serve_restoring(const struct serve *serve);

/* Copies what the worker holding the key knows of it (offset, records learned, prequential
 * metrics; not its state); false when no worker holds it. Thread-safe. */
bool serve_key(struct serve *serve, const char *key, size_t len, struct grouped_key *out);

/* The bootstrap servers in use (the embedded broker's when it runs). */
const char *serve_bootstraps(const struct serve *serve);

/* Partitions assigned across all workers. */
int serve_assigned(const struct serve *serve);

/* The keys and bytes of the workers' window histories, summed; thread-safe. */
void serve_table(struct serve *serve, size_t *keys, size_t *bytes);

/* Adds the workers' prequential error to *into; thread-safe. */
void serve_prequential(struct serve *serve, struct metrics_running *into);

/* Computes the features of rows with pipeline, each row as the next record of its key: with
 * the window history of the worker that holds the key, left as it is, or from an empty one for
 * a key no worker holds (or no key). For real-time requests. Thread-safe. */
void serve_peek(struct serve *serve, const struct pipeline *pipeline,
                const struct pipeline_rows *rows, double *out);

/* The online prediction of model->online for one row (features x, offset from the registry
 * model), with the state of the worker that holds the key, or a new key's state when none does.
 * For real-time requests; leaves every state as it was. Thread-safe. */
double serve_online_predict(struct serve *serve, const struct live_model *model, const char *key,
                            size_t len, const double *x, double offset);

/* The service's metrics (records, dead letters by reason, batch and latency histograms, the
 * model, assignment, window tables, prequential error); more families may be added to it. */
struct prom_registry *serve_registry(struct serve *serve);

/* Reads the model's source again (serve.model, or the latest version in registry.directory)
 * and, when it holds a newer version that loads and fits the input schema, swaps it in as the
 * watch would. Returns TB_OK with *version (the version read) and *swapped, or an error with err
 * (the artefact does not read, is another model or does not fit; counted as refused) while
 * the current version keeps serving. Thread-safe. */
int serve_reload(struct serve *serve, int *version, bool *swapped, char *err, size_t errsz);

/* A reference to the model being served; the caller drops it with live_model_release. */
struct live_model *serve_acquire_model(struct serve *serve);

/* Live counters. */
const struct worker_stats *serve_stats(const struct serve *serve);

/* Counters of the workers' per-key state. */
const struct state_store_stats *serve_state_stats(const struct serve *serve);

/* The model's name, and the version being swapped in or served. */
const char *serve_model_name(const struct serve *serve);
int serve_model_version(struct serve *serve);

/* Stops (if needed) and frees everything, the embedded broker last; accepts NULL. */
void serve_destroy(struct serve *serve);

#endif
