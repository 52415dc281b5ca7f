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
  >"$WORK/train.out" 2>&1
check "train reads all 20631 rows of FD001" grep -q "from 20631 rows" "$WORK/train.out"

"$T" inspect "$WORK/fd001.avro" >"$WORK/manifest.json"
check "the manifest records the capped run-to-failure label and its hyperparameters" \
  /usr/bin/python3 -c "
import json, sys
m = json.load(open('$WORK/manifest.json'))
ok = (m['name'] == 'fd001-rul' and m['label'] == 'max(cycle by unit) - cycle, capped at 125'
      and m['hyperparameters'] == {'l2': 1.0, 'rul_cap': 125.0} and len(m['features']) == 14
      and m['metrics']['train_rows'] == 20631)
sys.exit(0 if ok else 1)"

"$T" score -c config/fd001.yaml --model "$WORK/fd001.avro" "$DATA/cmapss/train_FD001.txt" \
  "$WORK/scores.csv" 2>"$WORK/score.err"
check "score writes one prediction per row" test "$(wc -l <"$WORK/scores.csv")" -eq 20632
check "scores equal coefficients applied in Python to the raw file" \
  /usr/bin/python3 -c "
import avro.datafile, avro.io, csv, sys
with open('$WORK/fd001.avro', 'rb') as f:
    art = next(iter(avro.datafile.DataFileReader(f, avro.io.DatumReader())))
names = ['unit', 'cycle', 'setting1', 'setting2', 'setting3'] + ['s%d' % i for i in range(1, 22)]
rows = [dict(zip(names, map(float, line.split()))) for line in open('$DATA/cmapss/train_FD001.txt')]
model, feats = art['model'], art['manifest']['features']
scores = [float(r['prediction']) for r in csv.DictReader(open('$WORK/scores.csv'))]
worst = max(abs(model['intercept'] + sum(c * row[f] for c, f in zip(model['coefficients'], feats)) - s)
            for row, s in zip(rows, scores))
sys.exit(0 if len(scores) == len(rows) and worst < 1e-8 else 1)"
check "score reports the error against the derived label" grep -q "score: 20631 rows, RMSE" "$WORK/score.err"

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

"$T" serve -c config/fleet.yaml --model "$WORK/fd001.avro" --set input.features= >/dev/null \
  2>"$WORK/schema.err"
check "serve refuses a model whose features are not in the input schema" \
  grep -q "config/schemas/telemetry.avsc: feature 's2' is not in the schema" "$WORK/schema.err"

finish
