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

  # Real-time scoring: wrk against serve's HTTP endpoint, the same model, one instance per
  # request, beside the static /healthz of the same server as the floor.
  echo
  echo "== HTTP predict (wrk, 2 threads, 16 connections, 5 s each)"
  TRIBUTARY_HTTP_ADDRESS=127.0.0.1:0 "$T" serve -c config/demo.yaml --model "$BENCH_SCRATCH/m.avro" \
    --set registry.directory= --set log.level=info >/dev/null 2>"$BENCH_SCRATCH/serve.err" &
  serve_pid=$!
  port=
  for _ in $(seq 100); do
    port=$(sed -n 's/.*HTTP endpoint on port \([0-9]*\).*/\1/p' "$BENCH_SCRATCH/serve.err" | head -1)
    [[ -n $port ]] && break
    sleep 0.1
  done
  cat >"$BENCH_SCRATCH/predict.lua" <<'LUA'
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"instances": [{"key": "m-000007", "load": 0.71, "ambient_temp": 21.5, "inlet_temp": 48.2, "outlet_temp": 87.9, "pressure": 6.1, "vibration": 2.3, "rpm": 1480, "oil_temp": 71.2, "current": 41.0, "flow": 118.0}]}'
LUA
  run_wrk() { # NAME URL [SCRIPT] -> "NAME rate p50 p99" (latencies in ms)
    wrk -t2 -c16 -d5s --latency ${3:+-s "$3"} "$2" 2>/dev/null | awk -v name="$1" '
      function ms(v) { if (v ~ /us$/) return v / 1000; if (v ~ /ms$/) return v + 0; if (v ~ /s$/) return v * 1000; return v }
      $1 == "50%" { p50 = ms($2) } $1 == "99%" { p99 = ms($2) } $1 == "Requests/sec:" { rate = $2 }
      $1 ~ /^Non-2xx/ { bad = $NF }
      END { printf "%s %.0f %.3f %.3f %d\n", name, rate, p50, p99, bad }'
  }
  if [[ -n $port ]]; then
    read -r _ floor f50 f99 fbad < <(run_wrk healthz "http://127.0.0.1:$port/healthz")
    read -r _ rate p50 p99 pbad < <(run_wrk predict "http://127.0.0.1:$port/v1/models/fleet-rul/predict" \
                                     "$BENCH_SCRATCH/predict.lua")
    printf "  GET  /healthz (floor)     %8.0f requests/s  p50 %7.3f ms  p99 %7.3f ms  non-2xx %d\n" "$floor" "$f50" "$f99" "$fbad"
    printf "  POST /v1/.../predict      %8.0f requests/s  p50 %7.3f ms  p99 %7.3f ms  non-2xx %d\n" "$rate" "$p50" "$p99" "$pbad"
    awk -v a="$rate" -v b="$floor" 'BEGIN { printf "  ratio predict / healthz          %.2f\n", a / b }'
    # Fixed offered rates: each of the 16 connections waits 16/R s between requests (wrk's
    # delay() hook; Debian's wrk 4 has no --rate), so the server sees R requests/s while it keeps
    # up, and the latencies are those at that load, not at saturation.
    for offered in 2000 8000; do
      for endpoint in healthz predict; do
        {
          [[ $endpoint == predict ]] && cat "$BENCH_SCRATCH/predict.lua"
          echo "function delay() return $((16 * 1000)) / $offered end"
        } >"$BENCH_SCRATCH/paced-$endpoint.lua"
      done
      read -r _ hrate h50 h99 _ < <(run_wrk healthz "http://127.0.0.1:$port/healthz" "$BENCH_SCRATCH/paced-healthz.lua")
      read -r _ prate q50 q99 _ < <(run_wrk predict "http://127.0.0.1:$port/v1/models/fleet-rul/predict" \
                                     "$BENCH_SCRATCH/paced-predict.lua")
      printf "  offered %5d/s: healthz %6.0f/s p50 %6.3f p99 %6.3f ms | predict %6.0f/s p50 %6.3f p99 %6.3f ms | p99 ratio %.2f\n" \
        "$offered" "$hrate" "$h50" "$h99" "$prate" "$q50" "$q99" "$(awk -v a="$q99" -v b="$h99" 'BEGIN { print a / b }')"
    done
  else
    echo "   (serve did not report its HTTP port)"
    status=1
  fi
  kill -TERM "$serve_pid" 2>/dev/null
  wait "$serve_pid" 2>/dev/null
else
  echo "   (could not prepare the batch scoring data)"
  status=1
fi
rm -rf "${BENCH_SCRATCH:?}"/*
exit $status
