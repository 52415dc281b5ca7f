#!/usr/bin/env bash
# Runs every benchmark in BENCH_DIR and prints what each measured. Benchmarks
# report rates and ratios against their peers; they never fail on time.
set -u
status=0
for b in "$BENCH_DIR"/bench_*; do
  [[ -x $b ]] || continue
  echo "== $(basename "$b")"
  "$b" || { echo "   (benchmark exited with $?)"; status=1; }
  echo
done
exit $status
