#!/usr/bin/env bash
# Checks that every #include follows the direction of the layers (README "Architecture"): prints
# file:line and the rule for each one that does not, and exits 1 when there is any.
#
# A layer is a folder prefix; it may include its own files, the layers named in its row, and any
# system header except the ones its row forbids. The first row whose prefix matches a file wins.
set -u
cd "$(dirname "$0")/.."

# layer prefix | project folders it may include | system headers it may not include
rules=(
  "service/base/||avro.h jansson.h librdkafka/ event2/ yaml.h cblas.h lapacke.h"
  "models/|service/base/|avro.h jansson.h librdkafka/ event2/ yaml.h"
  "connectors/|connectors/ service/base/|event2/ yaml.h cblas.h lapacke.h"
  "service/config/|service/config/ connectors/kafka/kafka_conf.h service/base/|avro.h event2/ cblas.h lapacke.h"
  "service/http/|service/http/ service/base/|avro.h jansson.h librdkafka/ yaml.h cblas.h lapacke.h"
  "service/registry/|service/registry/ service/config/ connectors/ models/ service/base/|event2/ yaml.h"
  "service/sim/|service/sim/ service/config/ connectors/ service/base/|event2/ cblas.h lapacke.h"
  "service/stream/|service/stream/ service/registry/ service/config/ service/http/ connectors/ models/ service/base/|yaml.h"
  "service/offline/|service/offline/ service/registry/ service/config/ connectors/ models/ service/base/|event2/"
  "service/cli/|service/ connectors/ models/|"
  "tests/unit/models/|tests/unit/models/ tests/support/support.h models/ service/base/|"
  "tests/unit/base/|tests/unit/base/ tests/support/support.h service/base/|"
  "tests/unit/connectors/|tests/support/support.h connectors/ service/base/|"
)

status=0
while IFS= read -r file; do
  allowed="" forbidden="" layer=""
  for row in "${rules[@]}"; do
    IFS='|' read -r prefix may mayNot <<<"$row"
    if [[ $file == "$prefix"* ]]; then
      layer=$prefix allowed=$may forbidden=$mayNot
      break
    fi
  done
  [[ -n $layer ]] || continue
  while IFS=: read -r line text; do
    if [[ $text =~ ^[[:space:]]*#[[:space:]]*include[[:space:]]*\"([^\"]+)\" ]]; then
      target=${BASH_REMATCH[1]}
      ok=0
      [[ $target == "$layer"* ]] && ok=1
      for a in $allowed; do [[ $target == "$a"* ]] && ok=1; done
      if [[ $ok -eq 0 ]]; then
        echo "$file:$line: includes \"$target\", but $layer may include only its own files and: $allowed"
        status=1
      fi
    elif [[ $text =~ ^[[:space:]]*#[[:space:]]*include[[:space:]]*\<([^\>]+)\> ]]; then
      target=${BASH_REMATCH[1]}
      for f in $forbidden; do
        if [[ $target == "$f"* ]]; then
          echo "$file:$line: includes <$target>, which $layer may not use"
          status=1
        fi
      done
    fi
  done < <(grep -n '^[[:space:]]*#[[:space:]]*include' "$file")
done < <(git ls-files '*.c' '*.h' 2>/dev/null || find service connectors models tests -name '*.[ch]')

[[ $status -eq 0 ]] && echo "layers: every include follows the layers' direction"
exit $status
