#!/usr/bin/env bash
# The offline commands and the error paths a user meets first: configuration
# mistakes, training and scoring NASA C-MAPSS FD001, and a damaged artefact.
source "$(dirname "$0")/lib.sh"
DATA=${TRIBUTARY_DATA:-$REPO/../shared/data}
T=$TRIBUTARY_BIN

cat >"$WORK/typo.yaml" <<'YAML'
serve:
  workers: 2
  wrokers: 3
YAML
"$T" serve -c "$WORK/typo.yaml" >/dev/null 2>"$WORK/typo.err"
rc=$?
check "an unknown key is a usage error (exit 2)" test "$rc" -eq 2
check "the error names the file, the line and the key" \
  grep -q "typo.yaml:3: unknown key 'serve.wrokers'" "$WORK/typo.err"

TRIBUTARY_SERVE_WORKERS=many "$T" config --check config/fleet.yaml >/dev/null 2>"$WORK/env.err"
check "a bad environment override names the variable and the value" \
  grep -q "environment TRIBUTARY_SERVE_WORKERS: 'many' is not an integer" "$WORK/env.err"

"$T" serve -c config/fleet.yaml --set serve.workers=0 >/dev/null 2>"$WORK/range.err"
check "an out-of-range --set names the key and the bounds" \
  grep -q -- "--set serve.workers: 0 is out of range (1..64)" "$WORK/range.err"

check "every shipped configuration loads" \
  bash -c "for f in config/*.yaml; do '$T' config --check \"\$f\" >/dev/null || exit 1; done"

"$T" train -c config/fd001.yaml --input "$DATA/cmapss/train_FD001.txt" --output "$WORK/fd001.avro" \
  --set train.test_input="$DATA/cmapss/test_FD001.txt" --set train.test_labels="$DATA/cmapss/RUL_FD001.txt" \
  >"$WORK/train.out" 2>&1
check "train fits FD001 with whole engines held out" grep -q "fitted on .* rows of .*train_FD001.txt; .* held out" "$WORK/train.out"

"$T" inspect "$WORK/fd001.avro" >"$WORK/manifest.json"
check "the manifest records the label, the window pipeline and every evaluation" \
  /usr/bin/python3 -c "
import json, sys
m = json.load(open('$WORK/manifest.json'))
k = m['metrics']
ok = (m['name'] == 'fd001-rul' and m['label'] == 'max(cycle by unit) - cycle, capped at 125'
      and m['hyperparameters']['rul_cap'] == 125.0 and m['hyperparameters']['window'] == 30.0
      and len(m['features']) == 14 * 3 and m['pipeline']['window_stats'] == ['mean', 'std']
      and k['train_rows'] + k['holdout_rows'] == 20631 and k['test_rows'] == 100
      and k['cv_folds'] == 5 and 10 < k['test_rmse'] < 30 and k['test_nasa_score'] > 0)
sys.exit(0 if ok else 1)"

"$T" score -c config/fd001.yaml --model "$WORK/fd001.avro" "$DATA/cmapss/train_FD001.txt" \
  "$WORK/scores.csv" 2>"$WORK/score.err"
check "score writes one prediction per row" test "$(wc -l <"$WORK/scores.csv")" -eq 20632
# An independent reading of the artefact: Python's avro package, numpy, and the pipeline as
# models/pipeline.h documents it (rolling window per unit of the last 30 cycles, this one
# included; population std; x' = (x - offset) * factor; prediction = intercept + coef . x').
check "scores equal the artefact's pipeline and model applied in Python to the raw file" \
  /usr/bin/python3 -c "
import avro.datafile, avro.io, csv, sys, numpy as np
with open('$WORK/fd001.avro', 'rb') as f:
    art = next(iter(avro.datafile.DataFileReader(f, avro.io.DatumReader())))
names = ['unit', 'cycle', 'setting1', 'setting2', 'setting3'] + ['s%d' % i for i in range(1, 22)]
data = np.loadtxt('$DATA/cmapss/train_FD001.txt')
col = {n: data[:, i] for i, n in enumerate(names)}
pipe, model = art['pipeline'], art['model']
raw = np.column_stack([col[n] for n in pipe['numeric']])
w, cols = pipe['window'], pipe['window_columns']
feats = np.zeros((len(raw), len(raw[0]) + 2 * len(cols)))
feats[:, :raw.shape[1]] = raw
for i in range(len(raw)):
    j = i
    while j > 0 and i - j + 1 < w and col['unit'][j - 1] == col['unit'][i]:
        j -= 1
    win = raw[j:i + 1, cols]
    feats[i, raw.shape[1]::2] = win.mean(axis=0)
    feats[i, raw.shape[1] + 1::2] = win.std(axis=0)
x = (feats - np.array(pipe['offset'])) * np.array(pipe['factor'])
want = model['intercepts'][0] + x @ np.array(model['coefficients'])
got = np.array([float(r['prediction']) for r in csv.DictReader(open('$WORK/scores.csv'))])
worst = np.max(np.abs(got - want) / np.maximum(1, np.abs(want)))
print('worst relative difference', worst, file=sys.stderr)
sys.exit(0 if len(got) == len(want) and worst < 1e-9 else 1)"
check "score reports the error against the derived label" grep -q "score: 20631 rows, RMSE" "$WORK/score.err"

"$T" score -c config/fd001.yaml --model "$WORK/fd001.avro" "$DATA/cmapss/train_FD001.txt" \
  "$WORK/scores.avro" 2>/dev/null
check "score writes Avro predictions equal to its CSV ones" \
  /usr/bin/python3 -c "
import avro.datafile, avro.io, csv, sys
with open('$WORK/scores.avro', 'rb') as f:
    recs = list(avro.datafile.DataFileReader(f, avro.io.DatumReader()))
rows = list(csv.DictReader(open('$WORK/scores.csv')))
ok = len(recs) == len(rows) == 20631 and all(
    r['prediction'] == float(c['prediction']) and r['key'] == c['key'] and r['model'] == 'fd001-rul'
    and r['source_offset'] == int(c['row']) for r, c in zip(recs, rows))
sys.exit(0 if ok else 1)"

"$T" train -c config/ai4i.yaml --input "$DATA/ai4i/ai4i2020.csv" --output "$WORK/ai4i.avro" \
  >"$WORK/ai4i.out" 2>&1
check "train fits the AI4I failure classifier and reports F1 and AUC on the holdout" \
  bash -c "grep -q 'holdout_f1' '$WORK/ai4i.out' && grep -q 'holdout_auc' '$WORK/ai4i.out'"
"$T" score -c config/ai4i.yaml --model "$WORK/ai4i.avro" "$DATA/ai4i/ai4i2020.csv" \
  "$WORK/ai4i.csv" 2>"$WORK/ai4i-score.err"
check "classifier scores are the class and the probabilities of the logistic model over one-hot Type" \
  /usr/bin/python3 -c "
import avro.datafile, avro.io, csv, sys, numpy as np
with open('$WORK/ai4i.avro', 'rb') as f:
    art = next(iter(avro.datafile.DataFileReader(f, avro.io.DatumReader())))
pipe, model = art['pipeline'], art['model']
rows = list(csv.DictReader(open('$DATA/ai4i/ai4i2020.csv', encoding='utf-8-sig')))
cats = pipe['categorical'][0]['categories']
x = np.array([[float(r[n]) for n in pipe['numeric']] for r in rows])
x = (x - np.array(pipe['offset'])) * np.array(pipe['factor'])
onehot = np.array([[1.0 if r['Type'] == c else 0.0 for c in cats] for r in rows])
z = model['intercepts'][0] + np.hstack([x, onehot]) @ np.array(model['coefficients'])
p1 = 1 / (1 + np.exp(-z))
out = list(csv.DictReader(open('$WORK/ai4i.csv')))
got = np.array([float(o['p_1']) for o in out])
cls = np.array([float(o['prediction']) for o in out])
ok = (cats == ['H', 'L', 'M'] and len(out) == 10000 and np.max(np.abs(got - p1)) < 1e-12
      and np.all(cls == (p1 > 0.5)))
sys.exit(0 if ok else 1)"
check "classifier scoring reports F1 and AUC" grep -q "score: 10000 rows, accuracy .* F1 .* AUC" "$WORK/ai4i-score.err"

"$T" train -c config/ai4i-modes.yaml --input "$DATA/ai4i/ai4i2020.csv" --output "$WORK/modes.avro" \
  --set train.folds=0 >/dev/null 2>&1
"$T" inspect "$WORK/modes.avro" >"$WORK/modes.json"
check "the failure-mode classifier is a softmax over no failure and the five modes" \
  /usr/bin/python3 -c "
import json, sys
m = json.load(open('$WORK/modes.json'))
ok = (m['model']['kind'] == 'softmax' and m['model']['classes'] == [0, 1, 2, 3, 4, 5]
      and m['label'] == 'first set of (TWF, HDF, PWF, OSF, RNF), 0 for none'
      and 0 < m['metrics']['holdout_f1'] < 1 and m['metrics']['holdout_rows'] == 2000)
sys.exit(0 if ok else 1)"

"$T" train -c config/fd001.yaml --input "$DATA/cmapss/train_FD001.txt" --output "" \
  --publish "$WORK/registry" --set train.folds=0 >"$WORK/publish1.out" 2>&1
"$T" train -c config/fd001.yaml --input "$DATA/cmapss/train_FD001.txt" --output "" \
  --publish "$WORK/registry" --set train.folds=0 --l2 10 >"$WORK/publish2.out" 2>&1
check "train --publish takes the registry's next version" \
  bash -c "grep -q 'published fd001-rul version 1' '$WORK/publish1.out' &&
           grep -q 'published fd001-rul version 2' '$WORK/publish2.out' &&
           test -f '$WORK/registry/fd001-rul/v1.avro' && test -f '$WORK/registry/fd001-rul/v2.avro'"
"$T" inspect "$WORK/registry/fd001-rul/v2.avro" >"$WORK/v2.json"
check "the published artefact carries its version and hyperparameters" \
  /usr/bin/python3 -c "
import json, sys
m = json.load(open('$WORK/v2.json'))
sys.exit(0 if m['version'] == 2 and m['hyperparameters']['l2'] == 10.0 else 1)"

cp "$WORK/fd001.avro" "$WORK/broken.avro"
size=$(stat -c %s "$WORK/broken.avro")
printf '\x55' | dd of="$WORK/broken.avro" bs=1 seek=$((size - 40)) conv=notrunc 2>/dev/null
"$T" inspect "$WORK/broken.avro" >/dev/null 2>"$WORK/broken.err"
check "a damaged artefact is refused with the reason" \
  grep -q "broken.avro: checksum mismatch (manifest crc32:" "$WORK/broken.err"
"$T" serve -c config/fleet.yaml --model "$WORK/broken.avro" >/dev/null 2>"$WORK/serve-broken.err"
rc=$?
check "serve refuses to start with a damaged artefact (exit 2, reason given)" \
  bash -c "test $rc -eq 2 && grep -q 'broken.avro: checksum mismatch' '$WORK/serve-broken.err'"

"$T" serve -c config/fleet.yaml --model "$WORK/fd001.avro" >/dev/null 2>"$WORK/schema.err"
rc=$?
check "serve refuses a model whose inputs are not in the input schema (exit 2)" \
  bash -c "test $rc -eq 2 && grep -q \"config/schemas/telemetry.avsc: feature 's2' is not in the schema\" '$WORK/schema.err'"

finish
