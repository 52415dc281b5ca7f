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

TRIBUTARY_SERVE_STATISTICS_INTERVAL_MS=200 TRIBUTARY_HTTP_TOKEN=s3cret \
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

# The HTTP endpoint, on the port serve logged.
port=$(sed -n 's/.*HTTP endpoint on port \([0-9]*\).*/\1/p' "$WORK/serve.err" | head -1)
check "serve logs the port of its HTTP endpoint" test -n "$port"
http() { # METHOD PATH -> "status body" on one line per request, via Python's standard library
  /usr/bin/python3 -c "
import sys, urllib.request, urllib.error
req = urllib.request.Request('http://127.0.0.1:$port' + sys.argv[2], method=sys.argv[1])
try:
    with urllib.request.urlopen(req, timeout=10) as r:
        print(r.status); sys.stdout.write(r.read().decode())
except urllib.error.HTTPError as e:
    print(e.code); sys.stdout.write(e.read().decode())" "$1" "$2"
}
http GET /healthz >"$WORK/healthz"
check "GET /healthz answers 200 alive" \
  bash -c "head -1 '$WORK/healthz' | grep -qx 200 && grep -q '\"status\":\"alive\"' '$WORK/healthz'"
http GET /readyz >"$WORK/readyz"
check "GET /readyz answers 200 ready with partitions and the model" \
  /usr/bin/python3 -c "
import json, sys
lines = open('$WORK/readyz').read().split('\n', 1)
d = json.loads(lines[1])
sys.exit(0 if lines[0] == '200' and d['ready'] and d['assigned_partitions'] == 8 and d['model'] == 'fleet-rul' else 1)"
http GET /v1/models >"$WORK/models"
check "GET /v1/models lists the served model's manifest" \
  /usr/bin/python3 -c "
import json, sys
lines = open('$WORK/models').read().split('\n', 1)
m = json.loads(lines[1])['models']
sys.exit(0 if lines[0] == '200' and len(m) == 1 and m[0]['name'] == 'fleet-rul' and m[0]['version'] == 1 else 1)"
http GET /nowhere >"$WORK/404"
check "an unknown path is a 404 with a JSON error" \
  bash -c "head -1 '$WORK/404' | grep -qx 404 && grep -q '\"error\"' '$WORK/404'"
http POST /metrics >"$WORK/405"
check "a wrong method is a 405 with a JSON error" \
  bash -c "head -1 '$WORK/405' | grep -qx 405 && grep -q '\"error\"' '$WORK/405'"
post() { # PATH BODY [TOKEN] -> "status" then the body
  /usr/bin/python3 -c "
import sys, urllib.request, urllib.error
headers = {'Content-Type': 'application/json'}
if len(sys.argv) > 3:
    headers['Authorization'] = 'Bearer ' + sys.argv[3]
req = urllib.request.Request('http://127.0.0.1:$port' + sys.argv[1], data=sys.argv[2].encode(), method='POST',
                             headers=headers)
try:
    with urllib.request.urlopen(req, timeout=10) as r:
        print(r.status); sys.stdout.write(r.read().decode())
except urllib.error.HTTPError as e:
    print(e.code); sys.stdout.write(e.read().decode())" "$@"
}
# The input record behind one streamed prediction, sent again over HTTP: the same score.
/usr/bin/python3 -c "
import avro.schema, avro.io, io, json
schema = avro.schema.parse(open('config/schemas/prediction.avsc').read())
p = avro.io.DatumReader(schema).read(avro.io.BinaryDecoder(io.BytesIO(open('$WORK/one.avro','rb').read())))
print(p['source_partition'], p['source_offset'], repr(p['prediction']))" >"$WORK/one.where"
read -r part offset streamed <"$WORK/one.where"
kcat -b "$BOOTSTRAP" -C -t telemetry -p "$part" -o "$offset" -c 1 -e -q -f '%s' 2>/dev/null >"$WORK/one.in"
instance=$(/usr/bin/python3 -c "
import avro.schema, avro.io, io, json
schema = avro.schema.parse(open('config/schemas/telemetry.avsc').read())
r = avro.io.DatumReader(schema).read(avro.io.BinaryDecoder(io.BytesIO(open('$WORK/one.in','rb').read())))
r = {k: v for k, v in r.items() if isinstance(v, (int, float, str)) or v is None}
r['key'] = r['machine_id']
print(json.dumps({'instances': [r, r]}))")
post /v1/models/fleet-rul/predict "$instance" >"$WORK/predict"
check "POST predict scores a streamed record over HTTP exactly as the stream did" \
  /usr/bin/python3 -c "
import json, sys
lines = open('$WORK/predict').read().split('\n', 1)
d = json.loads(lines[1])
ok = (lines[0] == '200' and d['model'] == 'fleet-rul' and d['version'] == 1 and len(d['predictions']) == 2
      and all(abs(x['prediction'] - $streamed) <= 1e-9 * max(1, abs($streamed)) for x in d['predictions']))
sys.exit(0 if ok else 1)"
post /v1/models/fleet-rul/predict '{"instances": [{"load": 1}' >"$WORK/bad-json"
check "malformed JSON is a 400 with a JSON error" \
  bash -c "head -1 '$WORK/bad-json' | grep -qx 400 && grep -q '\"error\": \"malformed JSON' '$WORK/bad-json'"
post /v1/models/fleet-rul/predict '{"instances": [{"load": 1}]}' >"$WORK/missing"
check "a missing input is a 400 naming it" \
  bash -c "head -1 '$WORK/missing' | grep -qx 400 && grep -q \"input 'ambient_temp' is missing\" '$WORK/missing'"
post /v1/models/other/predict '{"instances": [{"load": 1}]}' >"$WORK/other"
check "another model's name is a 404" \
  bash -c "head -1 '$WORK/other' | grep -qx 404 && grep -q \"unknown model 'other'\" '$WORK/other'"

http GET /metrics | tail -n +2 >"$WORK/metrics"
cat >"$WORK/metrics_check.py" <<'PY'
import re, sys
text = open(sys.argv[1]).read()
def value(series):
    m = re.search('^' + re.escape(series) + r' (\S+)$', text, re.M)
    return float(m.group(1)) if m else None
dead = sum(float(v) for v in re.findall(
    r'^tributary_records_dead_lettered_total\{reason="[a-z_]+"\} (\S+)$', text, re.M))
lags = [float(v) for v in re.findall(
    r'^tributary_consumer_lag\{topic="telemetry",partition="[0-7]"\} (\S+)$', text, re.M)]
checks = {
    'consumed': value('tributary_records_consumed_total') == 4000,
    'predicted': value('tributary_records_predicted_total') == 3960,
    'dead letters by reason': dead == 40,
    'batch histogram': value('tributary_batch_records_count') == value('tributary_batches_total')
                       and value('tributary_batch_records_sum') == 4000,
    'latency histogram': value('tributary_end_to_end_seconds_count') == 3960,
    'assigned': value('tributary_partitions_assigned') == 8,
    'model info': 'tributary_model_info{name="fleet-rul",version="1",kind="ridge"} 1' in text,
    'prequential': (value('tributary_prequential_error{metric="mae"}') or 0) > 0,
    'http 200': 'tributary_http_requests_total{route="/healthz",method="GET",status="200"} 1' in text,
    'http 404': 'tributary_http_requests_total{route="unmatched",method="GET",status="404"} 1' in text,
    'lag of the 8 partitions': len(lags) == 8 and all(0 <= v <= 4000 for v in lags),
}
bad = [k for k, ok in checks.items() if not ok]
print('metrics checks failed:', bad, file=sys.stderr) if bad else None
sys.exit(1 if bad else 0)
PY
check "GET /metrics counts what serve did" /usr/bin/python3 "$WORK/metrics_check.py" "$WORK/metrics"
if command -v promtool >/dev/null; then
  check "the exposition passes promtool check metrics" bash -c "promtool check metrics <'$WORK/metrics'"
else
  ok "the exposition passes promtool check metrics # SKIP promtool is not installed"
fi

# Reload: protected by the bearer token; a newer version is swapped in, a damaged one refused.
post /v1/models/fleet-rul/reload '' >"$WORK/reload-anon"
post /v1/models/fleet-rul/reload '' wrong >"$WORK/reload-wrong"
post /v1/models/fleet-rul/reload '' s3cret >"$WORK/reload-same"
check "reload needs the bearer token (401 without, 403 with another)" \
  bash -c "head -1 '$WORK/reload-anon' | grep -qx 401 && head -1 '$WORK/reload-wrong' | grep -qx 403"
check "reload of the same version answers 200 and swaps nothing" \
  bash -c "head -1 '$WORK/reload-same' | grep -qx 200 && grep -q '\"reloaded\":false' '$WORK/reload-same'"
"$TRIBUTARY_BIN" train -c "$cfg" --version 2 --l2 10 >/dev/null 2>&1
post /v1/models/fleet-rul/reload '' s3cret >"$WORK/reload-new"
http GET /v1/models >"$WORK/models2"
check "reload swaps in the newer version the file now holds" \
  bash -c "grep -q '\"reloaded\":true' '$WORK/reload-new' && grep -q '\"version\":2' '$WORK/models2'"
# Reloads while clients predict: every answer comes whole from one version, with that
# version's score (intercept + coefficients . inputs, from the artefact files themselves).
cp "$WORK/fleet.avro" "$WORK/v2.avro"
cat >"$WORK/hammer.py" <<'PY'
import avro.datafile, avro.io, json, sys, threading, urllib.request
port, instance_json, token, work = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
instance = json.loads(instance_json)['instances'][0]
def expected(path):
    with open(path, 'rb') as f:
        a = next(iter(avro.datafile.DataFileReader(f, avro.io.DatumReader())))
    m = a['model']
    return m['intercepts'][0] + sum(c * instance[n] for c, n in zip(m['coefficients'], a['manifest']['features']))
want = {2: expected(work + '/v2.avro')}
answers, failures, stop = [], [], threading.Event()
def client():
    body = json.dumps({'instances': [instance]}).encode()
    while not stop.is_set():
        req = urllib.request.Request('http://127.0.0.1:%s/v1/models/fleet-rul/predict' % port, data=body, method='POST')
        try:
            with urllib.request.urlopen(req, timeout=10) as r:
                d = json.loads(r.read())
                answers.append((d['version'], d['predictions'][0]['prediction']))
        except Exception as e:
            failures.append(repr(e))
threads = [threading.Thread(target=client) for _ in range(4)]
for t in threads: t.start()
import subprocess, time
time.sleep(0.3)
for v in (3, 4):
    subprocess.run([sys.argv[5], 'train', '-c', 'config/fleet.yaml', '--version', str(v), '--l2', str(10 ** v)],
                   check=True, capture_output=True)
    subprocess.run(['cp', work + '/fleet.avro', work + '/v%d.avro' % v], check=True)
    want[v] = expected(work + '/v%d.avro' % v)
    req = urllib.request.Request('http://127.0.0.1:%s/v1/models/fleet-rul/reload' % port, data=b'', method='POST',
                                 headers={'Authorization': 'Bearer ' + token})
    urllib.request.urlopen(req, timeout=10).read()
    time.sleep(0.3)
stop.set()
for t in threads: t.join()
seen = sorted({v for v, _ in answers})
bad = [(v, p) for v, p in answers if v not in want or abs(p - want[v]) > 1e-9 * max(1, abs(want[v]))]
print('answers', len(answers), 'versions', seen, 'failures', len(failures), 'mismatches', len(bad), file=sys.stderr)
sys.exit(0 if answers and not failures and not bad and seen[-1] == 4 else 1)
PY
check "reloads during concurrent predictions: each answer is one whole version's score" \
  /usr/bin/python3 "$WORK/hammer.py" "$port" "$instance" s3cret "$WORK" "$TRIBUTARY_BIN"

printf 'not an artefact' >"$WORK/fleet.avro"
post /v1/models/fleet-rul/reload '' s3cret >"$WORK/reload-bad"
http GET /readyz >"$WORK/readyz2"
check "a damaged artefact is refused with 422 and version 4 keeps serving" \
  bash -c "head -1 '$WORK/reload-bad' | grep -qx 422 && grep -q 'not an Avro container' '$WORK/reload-bad' &&
           grep -q '\"version\":\"4\"' '$WORK/readyz2'"

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
