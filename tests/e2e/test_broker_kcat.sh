#!/usr/bin/env bash
# `tributary broker` serves any Kafka client: kcat produces, lists and consumes.
source "$(dirname "$0")/lib.sh"

start_broker --brokers 1 --topic greetings:3 || { not_ok "broker starts"; finish; }
check "broker prints a loopback bootstrap address first" \
  grep -Eq '^127\.0\.0\.1:[0-9]+$' <<<"$BOOTSTRAP"

kcat -b "$BOOTSTRAP" -L -t greetings >"$WORK/meta" 2>&1
check "kcat sees the topic with its 3 partitions" \
  grep -q 'topic "greetings" with 3 partitions' "$WORK/meta"

for i in $(seq 1 50); do echo "machine-$((i % 5)):hello $i"; done |
  kcat -b "$BOOTSTRAP" -P -t greetings -K: -z lz4 2>"$WORK/produce.err"
kcat -b "$BOOTSTRAP" -C -t greetings -e -q -f '%k=%s\n' >"$WORK/consumed" 2>/dev/null
check "kcat reads back the 50 records it produced" test "$(wc -l <"$WORK/consumed")" -eq 50
check "keys and values survive the round trip" grep -qx 'machine-2=hello 17' "$WORK/consumed"

check "--help states the per-partition retention limit" \
  bash -c "'$TRIBUTARY_BIN' broker --help | grep -q '5 MiB'"
bad_topic_is_usage_error() {
  "$TRIBUTARY_BIN" broker --topic x:0 >/dev/null 2>"$WORK/bad.err"
  [[ $? -eq 2 ]] && grep -q "expected NAME:PARTITIONS" "$WORK/bad.err"
}
check "a bad --topic is a usage error (exit 2) naming the expected form" bad_topic_is_usage_error

stop_process "$BROKER_PID" 10
check "SIGTERM stops the broker with exit status 0" test $? -eq 0
PIDS=()
finish
