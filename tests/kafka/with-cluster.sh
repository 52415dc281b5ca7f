#!/usr/bin/env bash
# Runs a command beside a real Kafka cluster: starts one (tests/kafka/cluster.sh, --nodes N, 1
# by default) under build/kafka/, exports its bootstrap list as TEST_KAFKA_BOOTSTRAP, runs the
# command, stops the cluster whatever happens, and exits with the command's status.
#
#   with-cluster.sh [--nodes N] COMMAND [ARGS...]
#
# The tests that run against real Kafka share this cluster, each on topics and groups of its own
# names; a test that kills or reconfigures brokers starts a cluster of its own.
set -u
here=$(cd "$(dirname "$0")" && pwd)
nodes=1
if [[ ${1:-} == --nodes ]]; then
  nodes=$2
  shift 2
fi
dir=$(cd "$here/../.." && pwd)/build/kafka/shared-$$
trap '"$here/cluster.sh" stop "$dir"' EXIT
trap 'exit 130' INT TERM
started_ms=$(date +%s%3N)
if ! TEST_KAFKA_BOOTSTRAP=$("$here/cluster.sh" start "$dir" --nodes "$nodes"); then
  echo "with-cluster.sh: the Kafka cluster did not start" >&2
  exit 1
fi
export TEST_KAFKA_BOOTSTRAP
elapsed_ms=$(($(date +%s%3N) - started_ms))
printf '# kafka: %d-node cluster at %s, up in %d.%d s\n' "$nodes" "$TEST_KAFKA_BOOTSTRAP" \
  $((elapsed_ms / 1000)) $((elapsed_ms % 1000 / 100))
"$@"
