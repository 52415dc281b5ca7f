#!/usr/bin/env bash
# Runs every test program named on the command line, TEST_JOBS of them at once (default: twice
# the number of cores, since most of the long ones wait on brokers and rebalances), keeps each one's output in LOGDIR, prints one line per program as it ends,
# then the logs of the failed ones and one summary line: "tests: N passed, N failed".
#
# A cmocka program reports its own counts ("[  PASSED  ] 3 test(s).",
# "[  FAILED  ] 1 test(s)"); a shell test prints "ok - name" / "not ok - name"
# lines; any other program is one test that passes when it exits 0. A program
# that dies without reporting counts as one failure. Programs start in the order given, so put
# the longest first.
#
# An entry kafka:PATH runs PATH against the real Kafka cluster whose bootstrap list is in
# TEST_KAFKA_BOOTSTRAP (tests/kafka/with-cluster.sh), with TEST_BROKER=kafka; its log
# and line are NAME@kafka. Every other entry runs with TEST_BROKER=embedded.
set -u
logdir=$1
shift
mkdir -p "$logdir"
jobs=${TEST_JOBS:-$(($(nproc) * 2))}

# Runs test $1, then writes "passed failed" to its .result file and prints its line.
run_one() {
  local t=$1 name log start rc secs p f broker=embedded
  if [[ $t == kafka:* ]]; then
    t=${t#kafka:}
    broker=kafka
  fi
  name=$(entry_name "$1")
  log="$logdir/$name.log"
  start=$(date +%s)
  if [[ $broker == kafka && -z ${TEST_KAFKA_BOOTSTRAP:-} ]]; then
    echo "no Kafka cluster: TEST_KAFKA_BOOTSTRAP is not set (tests/kafka/with-cluster.sh)" >"$log"
    rc=1
  elif [[ $t == *.sh ]]; then
    TEST_BROKER=$broker timeout 600 bash "$t" >"$log" 2>&1
    rc=$?
  else
    TEST_BROKER=$broker timeout 600 "$t" >"$log" 2>&1
    rc=$?
  fi
  secs=$(($(date +%s) - start))
  if [[ $t == *.sh ]]; then
    p=$(grep -c '^ok - ' "$log")
    f=$(grep -c '^not ok - ' "$log")
  else
    p=$(sed -n 's/^\[  PASSED  \] \([0-9]*\) test.*/\1/p' "$log" | tail -1)
    f=$(sed -n 's/^\[  FAILED  \] \([0-9]*\) test.*/\1/p' "$log" | tail -1)
    p=${p:-0} f=${f:-0}
  fi
  if [[ $rc -ne 0 && $f -eq 0 ]]; then
    f=1 # crashed, timed out or failed outside a test case
  elif [[ $rc -eq 0 && $p -eq 0 && $f -eq 0 ]]; then
    p=1 # a program that reports no counts (a fuzz replay) is one test
  fi
  echo "$p $f" >"$logdir/$name.result"
  if [[ $f -gt 0 ]]; then
    printf '%-32s FAIL  %3d passed, %d failed (%ds, exit %d)\n' "$name" "$p" "$f" "$secs" "$rc"
  else
    printf '%-32s ok    %3d passed (%ds)\n' "$name" "$p" "$secs"
  fi
}

# The name of an entry's log and line: the program's file name, @kafka for a kafka: entry.
entry_name() {
  if [[ $1 == kafka:* ]]; then
    echo "$(basename "${1#kafka:}")@kafka"
  else
    basename "$1"
  fi
}

for t in "$@"; do
  rm -f "$logdir/$(entry_name "$t").result"
done
running=0
for t in "$@"; do
  if [[ $running -ge $jobs ]]; then
    wait -n
    running=$((running - 1))
  fi
  run_one "$t" &
  running=$((running + 1))
done
wait

passed=0
failed=0
failures=()
for t in "$@"; do
  name=$(entry_name "$t")
  read -r p f 2>/dev/null <"$logdir/$name.result" || { p=0 f=1; }
  passed=$((passed + p))
  failed=$((failed + f))
  if [[ $f -gt 0 ]]; then
    failures+=("$name")
    echo "--- $name (last 40 lines of $logdir/$name.log)"
    tail -40 "$logdir/$name.log" | sed 's/^/    | /'
  fi
done

[[ ${#failures[@]} -gt 0 ]] && echo "failed: ${failures[*]} (logs in $logdir)"
echo "tests: $passed passed, $failed failed"
[[ $failed -eq 0 && $passed -gt 0 ]]
