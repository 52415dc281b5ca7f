# Shared helpers for the end-to-end tests: TAP-style results and process care.
# Each test script sources this, calls `check NAME COMMAND...` per case, and
# leaves through `finish`.
set -u
: "${TRIBUTARY_BIN:?TRIBUTARY_BIN must name the built binary}"
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$REPO"
WORK=$(mktemp -d /tmp/tributary-e2e.XXXXXX)
# serve's HTTP endpoint on a free port, so that tests never compete for 8080.
export TRIBUTARY_HTTP_ADDRESS=127.0.0.1:0
PIDS=()
FAILED=0

cleanup() {
  for pid in "${PIDS[@]}"; do stop_process "$pid" 10 2>/dev/null; done
  if [[ $FAILED -gt 0 ]]; then echo "# kept $WORK for inspection"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT

ok() { echo "ok - $1"; }
not_ok() { echo "not ok - $1"; FAILED=$((FAILED + 1)); }

# check NAME COMMAND...: runs the command, reports ok or not ok.
check() {
  local name=$1
  shift
  if "$@"; then ok "$name"; else not_ok "$name"; fi
}

# start_broker ARGS...: starts `tributary broker` and sets BOOTSTRAP.
start_broker() {
  "$TRIBUTARY_BIN" broker "$@" >"$WORK/broker.out" 2>"$WORK/broker.err" &
  PIDS+=($!)
  BROKER_PID=$!
  for _ in $(seq 100); do
    BOOTSTRAP=$(head -n1 "$WORK/broker.out" 2>/dev/null)
    [[ -n $BOOTSTRAP ]] && return 0
    sleep 0.1
  done
  echo "broker did not print its address" >&2
  cat "$WORK/broker.err" >&2
  return 1
}

# wait_for SECONDS COMMAND...: retries the command every 0.5 s until it succeeds.
wait_for() {
  local deadline=$((SECONDS + $1))
  shift
  until "$@"; do
    ((SECONDS >= deadline)) && return 1
    sleep 0.5
  done
}

# stop_process PID SECONDS: sends SIGTERM and waits up to SECONDS for the
# process to exit; returns its exit status, or 124 (after SIGKILL) if it hangs.
stop_process() {
  local pid=$1 deadline=$((SECONDS + $2))
  kill -TERM "$pid" 2>/dev/null
  while kill -0 "$pid" 2>/dev/null; do
    if ((SECONDS >= deadline)); then
      kill -KILL "$pid" 2>/dev/null
      wait "$pid" 2>/dev/null
      return 124
    fi
    sleep 0.1
  done
  wait "$pid"
}

# count_records TOPIC: records in TOPIC, read to its end with kcat.
count_records() {
  kcat -b "$BOOTSTRAP" -C -t "$1" -e -q -f 'x\n' 2>/dev/null | wc -l
}

finish() {
  echo "$FAILED failed"
  exit $((FAILED > 0))
}
