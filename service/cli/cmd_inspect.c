/* `tributary inspect`: an artefact's manifest as JSON. */
#include "service/cli/commands.h"
#include "service/registry/artefact.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int cmd_inspect(int argc, char **argv)
{
    if (argc == 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
        printf("usage: tributary inspect FILE\n\n"
               "Verifies a model artefact (structure and checksum) and prints its manifest\n"
               "as JSON: name, version, creation time, trainer and hyperparameters,\n"
               "metrics, features, label, input schema fingerprint and checksum.\n");
        return 0;
    }
    if (argc != 2) {
        fprintf(stderr, "usage: tributary inspect FILE\n");
        return 2;
    }
    char err[1024];
    struct artefact *artefact = artefact_read(argv[1], err, sizeof err);
    if (!artefact) {
        fprintf(stderr, "tributary inspect: %s\n", err);
        return 1;
    }
    char *json = NULL;
    int status = 0;
    if (artefact_manifest_json(artefact, &json) != 0) {
        fprintf(stderr, "tributary inspect: %s: could not render the manifest\n", argv[1]);
        status = 1;
    } else {
        printf("%s\n", json);
    }
    free(json);
    artefact_destroy(artefact);
    return status;
}
