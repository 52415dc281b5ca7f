#!/usr/bin/env bash
# The real-Kafka harness itself (tests/kafka/cluster.sh): a node starts and answers, keeps what
# it acknowledged across a SIGKILL and a restart, and `stop` leaves no process and no file.
source "$(dirname "$0")/lib.sh"

DIR=$REPO/build/kafka/test-cluster-$$
CLUSTER=$REPO/tests/kafka/cluster.sh
trap '"$CLUSTER" stop "$DIR" 2>/dev/null; cleanup' EXIT

answers() { kcat -b "$BOOTSTRAP" -L -m "$1" -J >/dev/null; }

started=$SECONDS
BOOTSTRAP=$("$CLUSTER" start "$DIR" --nodes 1 --set auto.create.topics.enable=true) ||
  { not_ok "a 1-node cluster starts"; finish; }
echo "# timing: 1-node cluster up in $((SECONDS - started)) s"
check "the first line is the bootstrap list" grep -qxE '127\.0\.0\.1:[0-9]+' <<<"$BOOTSTRAP"
check "the broker answers metadata" answers 5

seq 1 100 | kcat -b "$BOOTSTRAP" -P -t harness -X acks=all 2>"$WORK/produce.err"
check "100 records produced and read back" test "$(count_records harness)" -eq 100

pid=$(cat "$DIR/node-0/pid")
"$CLUSTER" kill "$DIR" 0
check "kill: the node is gone" wait_for 10 bash -c "! kill -0 $pid 2>/dev/null"
"$CLUSTER" restart "$DIR" 0 >/dev/null || not_ok "restart"
check "restart: the node answers on the same address" answers 10
check "restart: the acknowledged records survived the kill" test "$(count_records harness)" -eq 100

pid=$(cat "$DIR/node-0/pid")
"$CLUSTER" stop "$DIR"
check "stop: no process left" bash -c "! kill -0 $pid 2>/dev/null"
check "stop: no file left" test ! -e "$DIR"
finish
