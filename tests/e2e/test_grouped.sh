#!/usr/bin/env bash
# Grouped per-key online models, exact across a crash: two `serve` processes share an
# 8-partition topic in one group and one is killed with SIGKILL mid-stream; the other takes its
# partitions over, restoring their per-key state from the changelog. Every input gets a
# prediction (or a dead letter), and at the end every machine's state (its RLS model on the
# registry model's residual, its window, its offset and its record count) equals, within 1e-9,
# the state of a third `serve` that read the same stream alone without failure, and with a
# memory limit that keeps only about a third of the machines in memory (the rest go to its spill
# file and come back on their next record).
source "$(dirname "$0")/lib.sh"

start_broker --brokers 3 --topic telemetry:8 --topic pred-a:8 --topic pred-b:8 \
  --topic dlq-a:8 --topic dlq-b:8 --topic changelog-a:8 --topic changelog-b:8 ||
  { not_ok "broker starts"; finish; }
export TRIBUTARY_KAFKA_BOOTSTRAP_SERVERS=$BOOTSTRAP
export TRIBUTARY_SERVE_MODEL=$WORK/fleet.avro
export TRIBUTARY_TRAIN_OUTPUT=$WORK/fleet.avro
export TRIBUTARY_TRAIN_INPUT=$WORK/history.avro
export TRIBUTARY_PIPELINE_WINDOW=5
export TRIBUTARY_REGISTRY_TOPIC=
cfg=config/fleet.yaml

"$TRIBUTARY_BIN" simulate -c "$cfg" --output "$WORK/history.avro" --count 20000 --seed 5 \
  --machines 60 >"$WORK/history.out" 2>&1
"$TRIBUTARY_BIN" train -c "$cfg" >"$WORK/train.out" 2>&1
check "the fleet model (5-record windows) trains" test -s "$WORK/fleet.avro"

TRIBUTARY_STATE_CHANGELOG_TOPIC=no-changelog timeout 30 "$TRIBUTARY_BIN" serve -c "$cfg" \
  >"$WORK/nochangelog.out" 2>&1
check "serve refuses a changelog topic that does not exist, naming the key and the count" \
  grep -q "state.changelog_topic: topic 'no-changelog' does not exist; create it compacted (cleanup.policy=compact) with 8 partitions" "$WORK/nochangelog.out"

# serve_run NAME GROUP RUN [MAX_BYTES]: one serve with one worker, its own output, dead letters
# and changelog.
serve_run() {
  TRIBUTARY_STATE_MAX_BYTES=${4:-0} TRIBUTARY_SERVE_WORKERS=1 TRIBUTARY_SERVE_GROUP_ID=$2 TRIBUTARY_OUTPUT_TOPIC=pred-$3 \
    TRIBUTARY_OUTPUT_DEAD_LETTER_TOPIC=dlq-$3 TRIBUTARY_STATE_CHANGELOG_TOPIC=changelog-$3 \
    TRIBUTARY_STATE_CHECKPOINT_INTERVAL_MS=300 TRIBUTARY_SERVE_COMMIT_INTERVAL_MS=700 \
    TRIBUTARY_SERVE_BATCH_MAX_RECORDS=200 TRIBUTARY_KAFKA_FETCH_WAIT_MAX_MS=10 \
    TRIBUTARY_ONLINE_MODEL=rls TRIBUTARY_ONLINE_FORGETTING=0.98 TRIBUTARY_ONLINE_DELTA=10 \
    "$TRIBUTARY_BIN" serve -c "$cfg" >"$WORK/$1.out" 2>"$WORK/$1.err" &
  PIDS+=($!)
  eval "PID_$1=$!"
}
serve_run a1 crash a
serve_run a2 crash a
serve_run solo solo b 100000

# Both members of the crash group hold partitions before the stream starts.
two_members() {
  grep -q "assigned" "$WORK/a1.err" && grep -q "assigned" "$WORK/a2.err" &&
    grep -q "assigned" "$WORK/solo.err"
}
wait_for 60 two_members
check "the three serves join their groups" two_members

"$TRIBUTARY_BIN" simulate -c "$cfg" --count 16000 --rate 1600 --seed 6 --machines 60 \
  --bad-ratio 0.005 >"$WORK/live.out" 2>&1 &
SIM_PID=$!
PIDS+=("$SIM_PID")

# Mid-stream, once a1 has predicted a good part of its share, it dies without warning.
a1_busy() {
  [[ $(kcat -b "$BOOTSTRAP" -C -t pred-a -e -q -f '%k\n' 2>/dev/null | wc -l) -ge 4000 ]]
}
wait_for 60 a1_busy
kill -KILL "$PID_a1"
wait "$PID_a1" 2>/dev/null
check "a1 is killed with SIGKILL mid-stream" a1_busy
wait "$SIM_PID"
check "the stream of 16000 records is produced" grep -q "simulate: 16000 records" "$WORK/live.out"

# read_topic.py: read(bootstrap, topic), every message of an 8-partition topic from its start to
# its end; the checks below import it (Python looks for modules beside the script it runs).
cat >"$WORK/read_topic.py" <<'EOF'
from confluent_kafka import Consumer, TopicPartition
def read(bootstrap, topic):
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "check", "enable.auto.commit": False,
                  "enable.partition.eof": True})
    c.assign([TopicPartition(topic, p, 0) for p in range(8)])
    out, eof = [], set()
    while len(eof) < 8:
        m = c.poll(5)
        if m is None:
            break
        if m.error():
            eof.add(m.partition())
            continue
        out.append(m)
    c.close()
    return out
EOF

# covered RUN: every input offset has a prediction or a dead letter in that run's topics.
cat >"$WORK/covered.py" <<'EOF'
import sys, io, avro.schema, avro.io
from read_topic import read
bootstrap, run = sys.argv[1], sys.argv[2]
schema = avro.schema.parse(open("config/schemas/prediction.avsc").read())
seen = set()
for m in read(bootstrap, "pred-" + run):
    r = avro.io.DatumReader(schema).read(avro.io.BinaryDecoder(io.BytesIO(m.value())))
    seen.add((r["source_partition"], r["source_offset"]))
for m in read(bootstrap, "dlq-" + run):
    h = dict(m.headers())
    seen.add((int(h["tributary.source.partition"]), int(h["tributary.source.offset"])))
inputs = {(m.partition(), m.offset()) for m in read(bootstrap, "telemetry")}
missing = inputs - seen
print(f"{len(inputs)} inputs, {len(missing)} without an output")
sys.exit(0 if len(inputs) == 16000 and not missing else 1)
EOF
covered() { /usr/bin/python3 "$WORK/covered.py" "$BOOTSTRAP" "$1" >"$WORK/covered-$1.out" 2>&1; }
wait_for 120 covered a
check "after the crash every input has a prediction or a dead letter (group of two)" covered a
wait_for 60 covered b
check "every input has a prediction or a dead letter (alone)" covered b
check "a2 took a1's partitions over and restored their state from the changelog" \
  grep -Eq "restored [1-9][0-9]* changelog entries" "$WORK/a2.err"

port=$(sed -n 's/.*HTTP endpoint on port \([0-9]*\).*/\1/p' "$WORK/solo.err" | head -1)
get() { /usr/bin/python3 -c "
import sys, urllib.request, urllib.error
try:
    r = urllib.request.urlopen('http://127.0.0.1:$port' + sys.argv[1])
    print(r.status, r.read().decode())
except urllib.error.HTTPError as e:
    print(e.code, e.read().decode())" "$1"; }
get /metrics >"$WORK/solo.metrics"
metric() { awk -v m="$1" '$1 == m {printf "%.0f", $2}' "$WORK/solo.metrics"; }
spilled=$(metric tributary_state_spilled_total)
unspilled=$(metric tributary_state_unspilled_total)
echo "# solo: $spilled keys spilled, $unspilled brought back, $(metric tributary_key_table_bytes) bytes held"
check "at state.max_bytes the solo serve spilled machines and brought them back" \
  test "${spilled:-0}" -gt 100 -a "${unspilled:-0}" -gt 100
check "the solo serve's per-key memory stays near state.max_bytes" \
  test "$(metric tributary_key_table_bytes)" -le 110000
check "the online models' prequential RMSE is on /metrics" \
  grep -q '^tributary_online_prequential{metric="rmse"} [0-9]' "$WORK/solo.metrics"
get /v1/keys/m-000007 >"$WORK/key.out"
check "GET /v1/keys/{key} shows a machine's offset, records learned and prequential error" \
  /usr/bin/python3 -c "
import json, sys
status, body = open('$WORK/key.out').read().split(' ', 1)
doc = json.loads(body)
sys.exit(0 if status == '200' and doc['key'] == 'm-000007' and doc['records_learned'] > 100
         and doc['prequential']['regression']['count'] == doc['records_learned'] else 1)"
get /v1/keys/no-such-machine >"$WORK/nokey.out"
check "GET /v1/keys/{key} of an unknown machine is a 404 with a JSON error" \
  grep -q '^404 {"error": "no worker holds key' "$WORK/nokey.out"
# A real-time request scores what the stream would: its prediction for a new reading of a machine
# (window and online model of that machine, in memory or spilled) equals the prediction the
# stream then makes for the same reading.
cat >"$WORK/http_vs_stream.py" <<'EOF'
import io, json, sys, time, urllib.request, avro.schema, avro.io
from confluent_kafka import Producer
from read_topic import read
bootstrap, port = sys.argv[1], sys.argv[2]
telemetry = avro.schema.parse(open("config/schemas/telemetry.avsc").read())
prediction = avro.schema.parse(open("config/schemas/prediction.avsc").read())
worst = 0.0
for key in ("m-000007", "m-000031", "m-000052"):
    last = [m for m in read(bootstrap, "telemetry") if m.key() == key.encode()][-1]
    rec = avro.io.DatumReader(telemetry).read(avro.io.BinaryDecoder(io.BytesIO(last.value())))
    rec.update(cycle=rec["cycle"] + 1, rul=max(0.0, (rec["rul"] or 1) - 1),
               vibration=rec["vibration"] * 1.01)
    body = {k: v for k, v in rec.items() if k not in ("machine_id", "ts")}
    body["key"] = key
    req = urllib.request.Request(f"http://127.0.0.1:{port}/v1/models/fleet-rul/predict",
                                 data=json.dumps({"instances": [body]}).encode(), method="POST")
    http = json.loads(urllib.request.urlopen(req).read())["predictions"][0]["prediction"]
    out = io.BytesIO()
    avro.io.DatumWriter(telemetry).write(rec, avro.io.BinaryEncoder(out))
    where = []
    p = Producer({"bootstrap.servers": bootstrap})
    p.produce("telemetry", key=key, value=out.getvalue(),
              on_delivery=lambda err, m: where.append((m.partition(), m.offset())))
    p.flush(10)
    streamed = None
    for _ in range(100):
        for m in read(bootstrap, "pred-b"):
            r = avro.io.DatumReader(prediction).read(avro.io.BinaryDecoder(io.BytesIO(m.value())))
            if (r["source_partition"], r["source_offset"]) == where[0]:
                streamed = r["prediction"]
        if streamed is not None:
            break
        time.sleep(0.2)
    d = abs(http - streamed) / max(1.0, abs(streamed))
    worst = max(worst, d)
    print(f"{key}: HTTP {http!r}, stream {streamed!r}")
sys.exit(0 if worst <= 1e-9 else 1)
EOF
PYTHONPATH="$WORK" /usr/bin/python3 "$WORK/http_vs_stream.py" "$BOOTSTRAP" "$port" \
  >"$WORK/http_vs_stream.out" 2>&1
status=$?
sed 's/^/# /' "$WORK/http_vs_stream.out"
check "HTTP predict for a machine's next reading equals the stream's prediction (window, RLS)" \
  test $status -eq 0

stop_process "$PID_a2" 30
check "a2 stops cleanly (final checkpoint)" test $? -eq 0
stop_process "$PID_solo" 30
check "the solo serve stops cleanly (final checkpoint)" test $? -eq 0

# The latest checkpoint of every machine in both changelogs, compared value by value.
cat >"$WORK/compare.py" <<'EOF'
import sys, io, math, avro.schema, avro.io
from read_topic import read
bootstrap = sys.argv[1]
schema = avro.schema.parse(open("config/schemas/changelog.avsc").read())
def latest(topic):
    # A key's entries are on one partition, in order: the last one read is its latest.
    return {m.key(): avro.io.DatumReader(schema).read(avro.io.BinaryDecoder(io.BytesIO(m.value())))
            for m in read(bootstrap, topic)}
a, b = latest("changelog-a"), latest("changelog-b")
bad = []
if set(a) != set(b):
    bad.append(f"keys differ: {len(a)} vs {len(b)}")
worst = 0.0
for k in sorted(set(a) & set(b)):
    x, y = a[k], b[k]
    for f in ("offset", "records", "model", "window_width"):
        if x[f] != y[f]:
            bad.append(f"{k}: {f} {x[f]} vs {y[f]}")
    for f in ("state", "window", "metrics"):
        if len(x[f]) != len(y[f]):
            bad.append(f"{k}: {f} has {len(x[f])} vs {len(y[f])} values")
            continue
        for u, v in zip(x[f], y[f]):
            d = abs(u - v) / max(1.0, abs(v))
            worst = max(worst, d)
            if not d <= 1e-9:
                bad.append(f"{k}: {f} {u} vs {v}")
learned = sum(v["records"] for v in b.values())
print(f"{len(a)} machines, {learned} records learned, worst relative difference {worst:.3g}")
for line in bad[:10]:
    print(line)
sys.exit(0 if not bad and len(a) == 60 and learned > 0 else 1)
EOF
/usr/bin/python3 "$WORK/compare.py" "$BOOTSTRAP" >"$WORK/compare.out" 2>&1
status=$?
cat "$WORK/compare.out" | sed 's/^/# /'
check "every machine's state after the crash equals the solo run's (1e-9)" test $status -eq 0
finish
