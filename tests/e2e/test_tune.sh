#!/usr/bin/env bash
# tributary tune end to end: a TPE search over FD001 (window length and statistics, scaling, L2)
# with parallel trials, its trials log, report and refit; the same seed giving the same trials; a
# resumed job continuing its log; failed trials recorded, not fatal; and a tune run publishing a
# version that a running serve on the embedded broker swaps in.
source "$(dirname "$0")/lib.sh"

cfg=config/fd001.yaml
space=config/spaces/fd001.yaml

# params_of LOG: the trials' parameters, one JSON line per trial in id order.
params_of() {
  /usr/bin/python3 -c "
import json, sys
rows = sorted((json.loads(l) for l in open(sys.argv[1])), key=lambda r: r['trial'])
for r in rows:
    print(r['trial'], json.dumps(r['params'], sort_keys=True))" "$1"
}

"$TRIBUTARY_BIN" tune -c "$cfg" --space "$space" --trials 10 --parallelism 2 --seed 7 \
  --set tune.directory="$WORK/a" --set train.folds=3 >"$WORK/a.out" 2>&1
status=$?
check "tune runs 10 trials of FD001 two at a time and exits 0" test $status -eq 0
check "the trials log has one JSON line per trial, each with its parameters and loss" \
  /usr/bin/python3 -c "
import json, math, sys
rows = [json.loads(l) for l in open('$WORK/a/fd001-rul-trials.jsonl')]
ok = [r for r in rows if r['status'] == 'ok']
sys.exit(0 if len(rows) == 10 and sorted(r['trial'] for r in rows) == list(range(10))
         and len(ok) >= 8 and all(math.isfinite(r['loss']) and 'pipeline.window' in r['params']
                                  for r in ok) else 1)"
check "tune prints the best trial and writes the best configuration and the refitted model" \
  bash -c "grep -q 'tune: best trial [0-9]*, cv_rmse [0-9.]*' '$WORK/a.out' &&
           test -s '$WORK/a/fd001-rul-best.yaml' && test -s '$WORK/a/fd001-rul-best.avro'"
check "the best trial's loss is the smallest in the log" \
  /usr/bin/python3 -c "
import json, re, sys
rows = [json.loads(l) for l in open('$WORK/a/fd001-rul-trials.jsonl')]
best = min((r for r in rows if r['status'] == 'ok'), key=lambda r: r['loss'])
m = re.search(r'best trial (\d+), cv_rmse ([0-9.e+-]+)', open('$WORK/a.out').read())
sys.exit(0 if m and int(m.group(1)) == best['trial'] and abs(float(m.group(2)) - best['loss']) <= 1e-5 * best['loss'] else 1)"
check "the refitted model has the best window, no folds, and holdout and test metrics" \
  /usr/bin/python3 -c "
import avro.datafile, avro.io, json, sys
rows = [json.loads(l) for l in open('$WORK/a/fd001-rul-trials.jsonl')]
best = min((r for r in rows if r['status'] == 'ok'), key=lambda r: r['loss'])
with open('$WORK/a/fd001-rul-best.avro', 'rb') as f:
    a = next(iter(avro.datafile.DataFileReader(f, avro.io.DatumReader())))
m = a['manifest']['metrics']
sys.exit(0 if a['pipeline']['window'] == int(best['params']['pipeline.window'])
         and 'test_rmse' in m and 'holdout_rmse' in m and 'cv_rmse' not in m else 1)"
check "the report is HTML with inline SVG plots of the trials" \
  bash -c "grep -q '<svg' '$WORK/a/fd001-rul-report.html' && grep -q 'cv_rmse' '$WORK/a/fd001-rul-report.html'"

# The same seed and parallelism give the same trials, whatever the timing.
"$TRIBUTARY_BIN" tune -c "$cfg" --space "$space" --trials 10 --parallelism 2 --seed 7 \
  --set tune.directory="$WORK/b" --set train.folds=3 >"$WORK/b.out" 2>&1
check "the same seed gives the same trials" \
  cmp <(params_of "$WORK/a/fd001-rul-trials.jsonl") <(params_of "$WORK/b/fd001-rul-trials.jsonl")
"$TRIBUTARY_BIN" tune -c "$cfg" --space "$space" --trials 10 --parallelism 2 --seed 8 \
  --set tune.directory="$WORK/c" --set train.folds=3 >"$WORK/c.out" 2>&1
differ() { ! cmp -s <(params_of "$1") <(params_of "$2"); }
check "another seed gives other trials" \
  differ "$WORK/a/fd001-rul-trials.jsonl" "$WORK/c/fd001-rul-trials.jsonl"

# Resuming: a larger budget continues the log; the first ten trials are kept as they were.
cp "$WORK/a/fd001-rul-trials.jsonl" "$WORK/a-first.jsonl"
"$TRIBUTARY_BIN" tune -c "$cfg" --space "$space" --trials 14 --parallelism 2 --seed 7 \
  --set tune.directory="$WORK/a" --set train.folds=3 >"$WORK/a2.out" 2>&1
check "a resumed job says so and continues the log to 14 trials" \
  bash -c "grep -q 'tune: resuming .*: 10 trials done' '$WORK/a2.out' &&
           test \$(wc -l <'$WORK/a/fd001-rul-trials.jsonl') -eq 14 &&
           grep -q 'tune: 14 trials (10 resumed' '$WORK/a2.out'"
check "the resumed trials are the earlier ones, unchanged" \
  cmp <(params_of "$WORK/a-first.jsonl") <(params_of "$WORK/a/fd001-rul-trials.jsonl" | sed -n 1,10p)

# Trials that fail are recorded with their reason; the job goes on and says none succeeded.
"$TRIBUTARY_BIN" tune -c "$cfg" --space "$space" --trials 3 --parallelism 1 \
  --set tune.directory="$WORK/d" --set tune.trial_timeout_s=0.001 >"$WORK/d.out" 2>&1
status=$?
check "timed-out trials are recorded as failed and tune exits 1 when none succeeded" \
  bash -c "test $status -eq 1 && grep -q 'no trial succeeded' '$WORK/d.out' &&
           test \$(grep -c '\"status\":\"failed\".*timed out' '$WORK/d/fd001-rul-trials.jsonl') -eq 3"

"$TRIBUTARY_BIN" tune -c "$cfg" --space "$space" --trials 3 \
  --set tune.directory="$WORK/e" --set tune.loss=cv_accuracy >"$WORK/e.out" 2>&1
check "a loss the manifest does not have fails each trial with a message naming it" \
  grep -q "tune.loss: the manifest has no metric 'cv_accuracy'" "$WORK/e/fd001-rul-trials.jsonl"

"$TRIBUTARY_BIN" tune -c "$cfg" --space "$WORK/nope.yaml" >"$WORK/f.out" 2>&1
status=$?
check "a missing space file is a configuration error (exit 2) naming it" \
  bash -c "test $status -eq 2 && grep -q 'nope.yaml' '$WORK/f.out'"

# A tune run publishes a version that a running serve swaps in.
start_broker --brokers 1 --topic telemetry:4 --topic predictions:4 --topic telemetry.dlq:4 \
  --topic models:1 || { not_ok "broker starts"; finish; }
export TRIBUTARY_KAFKA_BOOTSTRAP_SERVERS=$BOOTSTRAP
export TRIBUTARY_TRAIN_INPUT=$WORK/history.avro
export TRIBUTARY_REGISTRY_DIRECTORY=$WORK/registry
export TRIBUTARY_REGISTRY_POLL_MS=200
export TRIBUTARY_SERVE_MODEL=
fleet=config/fleet.yaml
"$TRIBUTARY_BIN" simulate -c "$fleet" --output "$WORK/history.avro" --count 5000 --seed 5 \
  >/dev/null 2>&1
"$TRIBUTARY_BIN" train -c "$fleet" --set train.output= >"$WORK/v1.out" 2>&1
check "version 1 is published to the registry" grep -q "published fleet-rul version 1" "$WORK/v1.out"
"$TRIBUTARY_BIN" serve -c "$fleet" --set serve.workers=1 >"$WORK/serve.out" 2>"$WORK/serve.err" &
SERVE_PID=$!
PIDS+=("$SERVE_PID")
wait_for 30 grep -q "assigned" "$WORK/serve.err"
cat >"$WORK/fleet-space.yaml" <<'EOF'
train.l2: {loguniform: [0.01, 100]}
EOF
"$TRIBUTARY_BIN" tune -c "$fleet" --space "$WORK/fleet-space.yaml" --trials 4 --parallelism 2 \
  --set tune.directory="$WORK/g" --set train.split=random --set tune.loss=holdout_rmse \
  >"$WORK/g.out" 2>&1
check "tune publishes the refitted best model as version 2" \
  grep -q "tune: published fleet-rul version 2 to $WORK/registry" "$WORK/g.out"
# The watch finds the new version within registry.poll_ms; records after that are its.
wait_for 30 grep -q "model 'fleet-rul' version 2 from" "$WORK/serve.err"
"$TRIBUTARY_BIN" simulate -c "$fleet" --count 500 --seed 6 >/dev/null 2>&1
swapped() { grep -q "now serving fleet-rul version 2" "$WORK/serve.err"; }
wait_for 30 swapped
check "the running serve takes the tuned version into service" swapped
finish
