#!/usr/bin/env bash
# Runs every benchmark in BENCH_DIR and prints what each measured. Benchmarks
# report rates and ratios against their peers; they never fail on time.
#
# A benchmark whose peers are not C (scikit-learn) has them in
# tests/bench/<name>_peers.py: it runs as /usr/bin/python3 right after the
# benchmark, in the same section, on the files the benchmark left in
# BENCH_SCRATCH (a directory in BENCH_DIR, removed at the end).
set -u
here=$(cd "$(dirname "$0")" && pwd)
BENCH_SCRATCH=$(mktemp -d "$BENCH_DIR/scratch.XXXXXX") || exit 1
export BENCH_DIR BENCH_SCRATCH
trap 'rm -rf "$BENCH_SCRATCH"' EXIT
status=0
for b in "$BENCH_DIR"/bench_*; do
  [[ -x $b ]] || continue
  name=$(basename "$b")
  echo "== $name"
  if "$b"; then
    peers=$here/${name}_peers.py
    if [[ -f $peers ]]; then
      /usr/bin/python3 "$peers" || { rc=$?; echo "   (${name}_peers.py exited with $rc)"; status=1; }
    fi
  else
    echo "   (benchmark exited with $?)"
    status=1
  fi
  rm -rf "${BENCH_SCRATCH:?}"/*
  echo
done

# Batch scoring: `tributary score` over a file, the offline row beside serve's streaming one.
# The demo's pipeline (10-reading windows per machine, standardised) and ridge model, on
# 400 000 simulated readings of 1 000 machines.
echo "== batch scoring (tributary score)"
T=$TRIBUTARY_BIN
data=$BENCH_SCRATCH/history.avro
if "$T" simulate -c config/demo.yaml --output "$data" --count 400000 --machines 1000 --seed 11 \
     --set log.level=warn >/dev/null &&
   "$T" train -c config/demo.yaml --set train.input="$data" --set train.output="$BENCH_SCRATCH/m.avro" \
     --set registry.directory= --set train.split=none >/dev/null; then
  for out in scores.csv scores.avro; do
    start=$(date +%s.%N)
    "$T" score -c config/demo.yaml --model "$BENCH_SCRATCH/m.avro" "$data" "$BENCH_SCRATCH/$out" 2>/dev/null ||
      { echo "   (score exited with $?)"; status=1; }
    end=$(date +%s.%N)
    awk -v s="$start" -v e="$end" -v o="$out" \
      'BEGIN { printf "  score 400000 Avro records -> %-12s %10.0f records/s (%.2f s, reading and writing included)\n", o, 400000 / (e - s), e - s }'
  done
else
  echo "   (could not prepare the batch scoring data)"
  status=1
fi
rm -rf "${BENCH_SCRATCH:?}"/*
exit $status
