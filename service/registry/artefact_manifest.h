/* The artefact's manifest as JSON, for `tributary inspect` and the HTTP API. */
#ifndef TRIBUTARY_ARTEFACT_MANIFEST_H
#define TRIBUTARY_ARTEFACT_MANIFEST_H

/* See service/registry/artefact.h, which includes this header. */
struct artefact;

/* Renders the manifest as indented JSON: every manifest field, created_at also as ISO 8601 UTC,
 * the pipeline's inputs and stages (categories, window, impute and scale methods, not the
 * fitted numbers), and the model's kind, classes and number of coefficients. Non-finite
 * metrics become null. On success returns TB_OK and sets *json_out, which the caller frees with
 * free(); returns TB_NOMEM (and *json_out = NULL) if jansson fails. */
int artefact_manifest_json(const struct artefact *artefact, char **json_out);

#endif
