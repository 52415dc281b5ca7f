#!/usr/bin/env bash
# The whole path through the built binary: broker, simulate (history and live),
# train, inspect, serve; the output topic read with kcat.
source "$(dirname "$0")/lib.sh"

start_broker --brokers 3 --topic telemetry:8 --topic predictions:8 --topic telemetry.dlq:8 ||
  { not_ok "broker starts"; finish; }
export TRIBUTARY_KAFKA_BOOTSTRAP_SERVERS=$BOOTSTRAP
export TRIBUTARY_SERVE_MODEL=$WORK/fleet.avro
export TRIBUTARY_TRAIN_OUTPUT=$WORK/fleet.avro
export TRIBUTARY_TRAIN_INPUT=$WORK/history.avro
cfg=config/fleet.yaml

"$TRIBUTARY_BIN" simulate -c "$cfg" --output "$WORK/history.avro" --count 20000 --seed 5 \
  >"$WORK/history.out" 2>&1
check "simulate writes 20000 records of history to an Avro file" \
  grep -q "simulate: 20000 records" "$WORK/history.out"

"$TRIBUTARY_BIN" train -c "$cfg" >"$WORK/train.out" 2>&1
check "train fits the history and writes the artefact" \
  grep -q "fitted on 20000 rows of $WORK/history.avro; 0 held out, 0 skipped" "$WORK/train.out"

"$TRIBUTARY_BIN" inspect "$WORK/fleet.avro" >"$WORK/manifest.json" 2>&1
check "inspect prints the manifest with name, features and checksum" \
  bash -c "grep -q '\"fleet-rul\"' '$WORK/manifest.json' && grep -q '\"vibration\"' '$WORK/manifest.json' && grep -q 'crc32:' '$WORK/manifest.json'"

"$TRIBUTARY_BIN" serve -c "$cfg" >"$WORK/serve.out" 2>"$WORK/serve.err" &
SERVE_PID=$!
PIDS+=("$SERVE_PID")

"$TRIBUTARY_BIN" simulate -c "$cfg" --count 4000 --bad-ratio 0.01 --seed 6 >"$WORK/live.out" 2>&1
check "simulate produces 4000 live records, 40 of them corrupt" \
  grep -q "simulate: 4000 records (40 corrupted)" "$WORK/live.out"

all_scored() { [[ $(count_records predictions) -eq 3960 && $(count_records telemetry.dlq) -eq 40 ]]; }
wait_for 90 all_scored
check "every good record gets one prediction and every corrupt one a dead letter" all_scored

kcat -b "$BOOTSTRAP" -C -t predictions -e -q -f '%k %h\n' 2>/dev/null >"$WORK/pred.meta"
check "predictions are keyed by machine id and name the model in headers" \
  bash -c "grep -Eq '^m-[0-9]{6} .*tributary.model=fleet-rul' '$WORK/pred.meta' && grep -q 'tributary.model.version=1' '$WORK/pred.meta'"

kcat -b "$BOOTSTRAP" -C -t telemetry.dlq -e -q -f '%h\n' 2>/dev/null >"$WORK/dlq.meta"
check "dead letters carry the reason and the source partition and offset" \
  bash -c "grep -q 'tributary.error=' '$WORK/dlq.meta' && grep -q 'tributary.source.offset=' '$WORK/dlq.meta'"

kcat -b "$BOOTSTRAP" -C -t predictions -e -q -c 1 -f '%s' 2>/dev/null >"$WORK/one.avro"
check "a prediction decodes with the published schema (Python avro)" \
  /usr/bin/python3 -c "
import avro.schema, avro.io, io, sys
schema = avro.schema.parse(open('config/schemas/prediction.avsc').read())
rec = avro.io.DatumReader(schema).read(avro.io.BinaryDecoder(io.BytesIO(open('$WORK/one.avro','rb').read())))
sys.exit(0 if rec['model'] == 'fleet-rul' and rec['key'].startswith('m-') and rec['label'] is not None else 1)"

start=$SECONDS
stop_process "$SERVE_PID" 30
rc=$?
PIDS=("$BROKER_PID")
check "SIGTERM: serve exits 0" test "$rc" -eq 0
check "SIGTERM: serve is gone within 10 s" test $((SECONDS - start)) -le 10
check "serve reports what it did on the way out" \
  grep -q "stopped: consumed 4000, predicted 3960, dead-lettered 40" "$WORK/serve.err"

kcat -b "$BOOTSTRAP" -L >/dev/null 2>&1
finish
