#!/usr/bin/env bash
# The container image (docker/) with podman. `make image` builds it from a local base; one
# container runs `serve` (the image's default command) with its embedded broker while `simulate`
# runs beside it: /healthz answers through a published port, the HEALTHCHECK passes, SIGTERM
# drains; `demo` runs in the image; docker/compose.yaml is checked, and what it runs (its train
# command, docker/tributary.yaml, serve's environment) runs on a `tributary broker` container
# with two `serve` containers in its network namespace: one consumer group that splits the
# partitions and scores every record once. Topics are counted with the host's kcat inside the
# containers' network namespace (the embedded broker listens on 127.0.0.1 there only).
# Skipped, saying why, only where podman cannot run at all.
: "${TRIBUTARY_BIN:=$(cd "$(dirname "$0")/../.." && pwd)/build/release/tributary}"
export TRIBUTARY_BIN # lib.sh wants it; nothing here runs the host's binary
source "$(dirname "$0")/../e2e/lib.sh"

IMAGE=localhost/tributary:latest
P=tributary-ct-$$ # prefix of everything this test creates
CONTAINERS=()     # removed in reverse order: the broker last, after those in its namespace
VOLUMES=()
NETWORKS=()
T0=$SECONDS
phase_start=$SECONDS

containers_cleanup() {
  local i
  for ((i = ${#CONTAINERS[@]} - 1; i >= 0; i--)); do podman rm -f -t 0 "${CONTAINERS[i]}"; done
  for v in "${VOLUMES[@]}"; do podman volume rm -f "$v"; done
  for n in "${NETWORKS[@]}"; do podman network rm -f "$n"; done
}
trap 'containers_cleanup >/dev/null 2>&1; cleanup' EXIT
trap 'exit 143' TERM INT

timing() { # NAME: seconds since the last call
  echo "# timing: $1 $((SECONDS - phase_start)) s"
  phase_start=$SECONDS
}
skip_all() {
  echo "# SKIP container tests: $1"
  ok "container tests # SKIP $1"
  finish
}

# in_netns CONTAINER COMMAND...: COMMAND from the host in CONTAINER's network namespace.
in_netns() {
  local pid
  pid=$(podman inspect -f '{{.State.Pid}}' "$1") || return 1
  shift
  if ((EUID == 0)); then nsenter -t "$pid" -n "$@"; else podman unshare nsenter -t "$pid" -n "$@"; fi
}
# ns_count CONTAINER BOOTSTRAP TOPIC: records in TOPIC, read to its end with kcat.
ns_count() {
  in_netns "$1" timeout 30 kcat -b "$2" -C -t "$3" -e -q -f 'x\n' 2>/dev/null | wc -l
}
# http_get HOST:PORT PATH: the whole HTTP/1.0 response, from bash alone.
http_get() {
  timeout 10 bash -c 'exec 3<>"/dev/tcp/${1%:*}/${1##*:}" &&
    printf "GET %s HTTP/1.0\r\nHost: %s\r\n\r\n" "$2" "$1" >&3 && cat <&3' _ "$1" "$2" 2>/dev/null
}
status_of() { head -1 <<<"$1" | awk '{print $2}'; }
# metric TEXT NAME: the value of an unlabelled series in a Prometheus exposition.
metric() { sed -n "s/^$2 \([0-9.e+]*\)\r\?$/\1/p" <<<"$1" | head -1; }
# bootstrap_of CONTAINER: the address a broker (or serve's embedded one) printed first.
bootstrap_of() {
  podman logs "$1" 2>/dev/null | grep -m1 -E '^127\.0\.0\.1:[0-9]+(,127\.0\.0\.1:[0-9]+)*$'
}
# partitions_held CONTAINER: the partitions it holds, one a line, replaying its log's
# "assigned N partitions [..]" and "revoked N partitions [..]" lines (cooperative rebalances
# add and take away a few at a time).
partitions_held() {
  podman logs "$1" 2>&1 |
    sed -n 's/.*\] \(assigned\|revoked\) [0-9]* partitions\{0,1\} \[\([0-9,]*\)\].*/\1 \2/p' |
    awk '{ n = split($2, p, ","); for (i = 1; i <= n; i++) if ($1 == "assigned") held[p[i]] = 1; else delete held[p[i]] }
         END { for (k in held) print k }' | sort -n
}
stopped_line() { podman logs "$1" 2>&1 | grep -o 'stopped: consumed [0-9]*, predicted [0-9]*, dead-lettered [0-9]*' | tail -1; }

# ---- the image ----------------------------------------------------------------------------
make --no-print-directory -C "$REPO" image >"$WORK/image.log" 2>&1
image_rc=$?
if ! command -v podman >/dev/null 2>&1; then
  skip_all "podman is not installed ($(grep -m1 'setup-podman' "$WORK/image.log" || echo 'make image could not install it'))"
fi
if ! podman info >"$WORK/podman-info.log" 2>&1; then
  skip_all "containers cannot run here: podman info fails: $(grep -v '^\s*$' "$WORK/podman-info.log" | tail -1)"
fi
timing "make image"
check "make image builds $IMAGE (docker/setup-podman.sh, then podman build)" test "$image_rc" -eq 0
if ((image_rc != 0)); then
  sed 's/^/    | /' "$WORK/image.log" | tail -30
  finish
fi
grep '^setup-podman:' "$WORK/image.log" | sed 's/^/# /'

podman image inspect -f '{{.Config.User}}|{{json .Config.Entrypoint}}|{{json .Config.Cmd}}|{{json .Config.Healthcheck.Test}}|{{.Config.StopSignal}}' \
  "$IMAGE" >"$WORK/config" 2>&1
check "the image runs tributary as user 10001, ENTRYPOINT [tributary], CMD [serve], a HEALTHCHECK" \
  grep -q '^10001:10001|\["tributary"\]|\["serve"\]|\["CMD","bash","-c",".*/healthz.*"\]|SIGTERM$' "$WORK/config"
podman run --rm --no-healthcheck --entrypoint bash "$IMAGE" -c '
  ldd /usr/local/bin/tributary | grep "not found"; for t in gcc cc make curl; do command -v $t; done
  test -f config/fleet.yaml && test -f config/schemas/telemetry.avsc && test -f config/schemas/prediction.avsc &&
  test -w build/ && echo layout-ok' >"$WORK/layout" 2>&1
check "the runtime image has every library the binary needs, no compiler, config/ with the schemas" \
  test "$(cat "$WORK/layout")" = layout-ok

# A model for the serve containers: simulate history and train, in containers, into a volume.
VOLUMES+=("$P-data")
podman volume create "$P-data" >/dev/null
podman run --rm --no-healthcheck -v "$P-data:/var/lib/tributary" "$IMAGE" simulate -c config/fleet.yaml \
  --output build/history.avro --count 20000 --seed 5 >"$WORK/history.out" 2>&1
podman run --rm --no-healthcheck -v "$P-data:/var/lib/tributary" "$IMAGE" train -c config/fleet.yaml \
  >"$WORK/train.out" 2>&1
check "simulate and train in containers write a model into a volume (as the non-root user)" \
  grep -q "fitted on 20000 rows of build/history.avro" "$WORK/train.out"
timing "image checks and training"

# ---- one container: serve with its embedded broker, simulate beside it --------------------
one=$P-one
CONTAINERS+=("$one")
# The default command (serve), configured from the environment alone.
podman run -d --name "$one" -p 127.0.0.1::8080 -v "$P-data:/var/lib/tributary:ro" \
  -e TRIBUTARY_SERVE_MODEL=/var/lib/tributary/fleet.avro -e TRIBUTARY_KAFKA_SESSION_TIMEOUT_MS=6000 \
  -e TRIBUTARY_KAFKA_HEARTBEAT_INTERVAL_MS=500 "$IMAGE" >/dev/null 2>"$WORK/one.run"
wait_for 30 bootstrap_of "$one" >/dev/null
boot=$(bootstrap_of "$one")
check "serve (the default command) starts the embedded broker in the container" test -n "$boot"
hostport=$(podman port "$one" 8080/tcp 2>/dev/null | head -1)
check "port 8080 is published on 127.0.0.1 ($hostport)" grep -q '^127\.0\.0\.1:[0-9]*$' <<<"$hostport"
ready_one() { [[ $(status_of "$(http_get "$hostport" /readyz)") == 200 ]]; }
wait_for 60 ready_one
resp=$(http_get "$hostport" /healthz)
check "GET /healthz through the published port answers 200 alive" \
  bash -c '[[ $(head -1 <<<"$1") == *" 200 "* && $1 == *"\"status\":\"alive\""* ]]' _ "$resp"
resp=$(http_get "$hostport" /readyz)
check "GET /readyz: ready, all 8 partitions, the model" \
  bash -c '[[ $1 == *"\"ready\":true"* && $1 == *"\"assigned_partitions\":8"* && $1 == *fleet-rul* ]]' _ "$resp"
check "the image's HEALTHCHECK passes (podman healthcheck run)" podman healthcheck run "$one"
hc=$(podman image inspect -f '{{index .Config.Healthcheck.Test 3}}' "$IMAGE")
check "the same check fails where nothing listens (http.address on another port)" \
  bash -c '! podman exec -e TRIBUTARY_HTTP_ADDRESS=0.0.0.0:9 "$1" bash -c "$2" 2>/dev/null' _ "$one" "$hc"

podman exec "$one" tributary simulate -c config/fleet.yaml --bootstrap "$boot" --count 4000 \
  --bad-ratio 0.01 --seed 6 >"$WORK/one-sim.out" 2>&1
check "simulate in the same container produces 4000 records, 40 corrupt" \
  grep -q "simulate: 4000 records (40 corrupted)" "$WORK/one-sim.out"
one_scored() { [[ $(ns_count "$one" "$boot" predictions) -eq 3960 && $(ns_count "$one" "$boot" telemetry.dlq) -eq 40 ]]; }
wait_for 90 one_scored
check "3960 predictions and 40 dead letters come out (kcat in the container's namespace)" one_scored
echo "# predictions $(ns_count "$one" "$boot" predictions), dead letters $(ns_count "$one" "$boot" telemetry.dlq)"
resp=$(http_get "$hostport" /metrics)
check "GET /metrics counts 3960 predicted" test "$(metric "$resp" tributary_records_predicted_total)" = 3960

start=$SECONDS
podman stop -t 30 "$one" >/dev/null 2>&1
took=$((SECONDS - start))
check "podman stop: SIGTERM reaches serve (PID 1), which exits 0 within 10 s (took ${took} s)" \
  bash -c '[[ $(podman inspect -f "{{.State.ExitCode}}" "$1") == 0 && $2 -le 10 ]]' _ "$one" "$took"
check "serve drained: it reports every record on the way out" \
  test "$(stopped_line "$one")" = "stopped: consumed 4000, predicted 3960, dead-lettered 40"
timing "one container"

# The demo (embedded broker, history, training, registry, live scoring, hot swap) in the image:
# its monitor reads the predictions topic back.
podman run --rm --no-healthcheck "$IMAGE" demo -c config/demo.yaml --seconds 4 >"$WORK/demo.out" 2>&1
grep -E '^== done|live error' "$WORK/demo.out" | sed 's/^ */# /'
check "demo in a container: every record accounted for, and the predictions read back" \
  bash -c 'grep -q "every record accounted for" "$1" && grep -Eq "live error of .fleet-rul. v2 over [1-9][0-9]* predictions" "$1"' \
  _ "$WORK/demo.out"
timing "demo"

# ---- docker/compose.yaml ------------------------------------------------------------------
cat >"$WORK/compose.py" <<'PY'
# compose.py FILE check | train | serve-env: checks the file's structure, or prints what the
# containers below take from it (the train command; serve's environment, one -e a line).
import sys, yaml
doc = yaml.safe_load(open(sys.argv[1]))
s = doc["services"]
env = lambda name: s[name].get("environment", {})
if sys.argv[2] == "train":
    print(s["train"]["command"][0])
elif sys.argv[2] == "serve-env":
    for k, v in env("serve").items():
        if k not in ("TRIBUTARY_KAFKA_BOOTSTRAP_SERVERS", "TRIBUTARY_HTTP_ADDRESS"):
            print("-e\n%s=%s" % (k, v))
else:
    checks = {
        "services": {"kafka", "topics", "train", "serve", "simulate"} <= set(s),
        "kafka KRaft": s["kafka"]["image"].startswith("docker.io/apache/kafka:")
                       and "controller" in env("kafka")["KAFKA_PROCESS_ROLES"],
        "topics": all(t in s["topics"]["command"][0] for t in
                      ("telemetry:8", "predictions:8", "telemetry.dlq:8", "models:1:compact",
                       "telemetry.changelog:8:compact")),
        "serve replicas": s["serve"]["deploy"]["replicas"] == 2 and s["serve"]["command"][0] == "serve",
        "serve env": env("serve").get("TRIBUTARY_KAFKA_BOOTSTRAP_SERVERS") == "kafka:9092"
                     and env("serve").get("TRIBUTARY_HTTP_ADDRESS") == "0.0.0.0:8080"
                     and env("serve").get("TRIBUTARY_STATE_CHANGELOG_TOPIC") == "telemetry.changelog",
        "simulate": s["simulate"]["command"][0] == "simulate"
                    and env("simulate").get("TRIBUTARY_KAFKA_BOOTSTRAP_SERVERS") == "kafka:9092",
        "one image": {s[n]["image"] for n in ("train", "serve", "simulate")} == {"localhost/tributary:latest"},
        "model first": s["serve"]["depends_on"]["train"]["condition"] == "service_completed_successfully",
    }
    bad = [k for k, v in checks.items() if not v]
    if bad:
        print("compose checks failed:", bad, file=sys.stderr)
    sys.exit(1 if bad else 0)
PY
compose() { /usr/bin/python3 "$WORK/compose.py" docker/compose.yaml "$@"; }
check "docker/compose.yaml: Kafka (KRaft), its topics, the model, 2 serve replicas, the simulator" \
  compose check
# podman-compose 1.0.3 (bookworm) has no `config`: there, a dry run shows what it would run.
proj=tbct$$
if podman-compose -f docker/compose.yaml config >"$WORK/compose.out" 2>&1; then
  check "podman-compose config accepts docker/compose.yaml" true
else
  VOLUMES+=("${proj}_data" "${proj}_kafka-data")
  NETWORKS+=("${proj}_default")
  podman-compose -p "$proj" -f docker/compose.yaml --dry-run up -d >"$WORK/compose.out" 2>&1
  check "podman-compose reads docker/compose.yaml and would run kafka, topics, train, 2 serves, simulate" \
    bash -c 'for c in kafka_1 topics_1 train_1 serve_1 serve_2 simulate_1; do
               grep -q "^podman run --name=$1_$c " "$2" || exit 1; done' _ "$proj" "$WORK/compose.out"
fi
timing "compose file"

# ---- compose's services on a tributary broker: one network namespace, one consumer group ----
# What compose.yaml runs (its train command, docker/tributary.yaml, serve's environment), with
# `tributary broker` and its topics in place of Kafka, and two serve containers of 1 worker each.
broker=$P-broker
CONTAINERS+=("$broker")
# The namespace's ports are published with its first container: one per serve.
podman run -d --name "$broker" --no-healthcheck -p 127.0.0.1::8081 -p 127.0.0.1::8082 "$IMAGE" \
  broker --brokers 3 --topic telemetry:8 --topic predictions:8 --topic telemetry.dlq:8 \
  --topic models:1 --topic telemetry.changelog:8 >/dev/null
wait_for 30 bootstrap_of "$broker" >/dev/null
boot=$(bootstrap_of "$broker")
check "tributary broker runs in a container" test -n "$boot"
conf=(-v "$REPO/docker/tributary.yaml:/etc/tributary/tributary.yaml:ro")
VOLUMES+=("$P-registry")
podman volume create "$P-registry" >/dev/null
podman run --rm --no-healthcheck --network "container:$broker" -v "$P-registry:/var/lib/tributary" \
  "${conf[@]}" -e TRIBUTARY_KAFKA_BOOTSTRAP_SERVERS="$boot" --entrypoint bash "$IMAGE" \
  -c "$(compose train)" >"$WORK/compose-train.out" 2>&1
check "compose's train command simulates history and publishes fleet-rul version 1" \
  grep -q "published fleet-rul version 1 to /var/lib/tributary/registry" "$WORK/compose-train.out"
mapfile -t serve_env < <(compose serve-env)
for s in a:8081 b:8082; do
  CONTAINERS+=("$P-serve-${s%:*}")
  podman run -d --name "$P-serve-${s%:*}" --network "container:$broker" \
    -v "$P-registry:/var/lib/tributary:ro" "${conf[@]}" "${serve_env[@]}" \
    -e TRIBUTARY_KAFKA_BOOTSTRAP_SERVERS="$boot" -e TRIBUTARY_HTTP_ADDRESS="0.0.0.0:${s#*:}" \
    -e TRIBUTARY_SERVE_WORKERS=1 "$IMAGE" serve -c /etc/tributary/tributary.yaml \
    >/dev/null 2>"$WORK/serve-${s%:*}.run"
done
port_a=$(podman port "$broker" 8081/tcp | head -1)
port_b=$(podman port "$broker" 8082/tcp | head -1)
assigned() { http_get "$1" /readyz | grep -o '"assigned_partitions":[0-9]*' | cut -d: -f2; }
both_ready() {
  local a b
  a=$(assigned "$port_a") b=$(assigned "$port_b")
  [[ -n $a && -n $b ]] && ((a > 0 && b > 0 && a + b == 8)) &&
    [[ $(status_of "$(http_get "$port_a" /readyz)") == 200 && $(status_of "$(http_get "$port_b" /readyz)") == 200 ]]
}
wait_for 120 both_ready
check "both serves are ready, holding 8 partitions between them ($(assigned "$port_a") + $(assigned "$port_b"))" both_ready
check "the HEALTHCHECK follows TRIBUTARY_HTTP_ADDRESS (ports 8081, 8082)" \
  bash -c 'podman healthcheck run "$1" && podman healthcheck run "$2"' _ "$P-serve-a" "$P-serve-b"
partitions_held "$P-serve-a" >"$WORK/held-a"
partitions_held "$P-serve-b" >"$WORK/held-b"
echo "# serve-a holds [$(paste -sd, "$WORK/held-a")], serve-b holds [$(paste -sd, "$WORK/held-b")]"
check "their logs split the partitions: both hold some, none twice, all 8 held" \
  bash -c '[[ -s $1 && -s $2 && -z $(comm -12 "$1" "$2") && $(sort -n "$1" "$2" | paste -sd,) == 0,1,2,3,4,5,6,7 ]]' \
  _ "$WORK/held-a" "$WORK/held-b"
check "the models come from the registry volume, per-machine state from the changelog" \
  bash -c 'podman logs "$1" 2>&1 | grep -q "fleet-rul" && podman logs "$1" 2>&1 | grep -q "restored [0-9]* changelog entries"' \
  _ "$P-serve-b"

podman run --rm --no-healthcheck --network "container:$broker" "${conf[@]}" "$IMAGE" simulate \
  -c /etc/tributary/tributary.yaml --bootstrap "$boot" --count 8000 --rate 0 --bad-ratio 0.005 \
  --seed 11 >"$WORK/group-sim.out" 2>&1
bad=$(sed -n 's/^simulate: 8000 records (\([0-9]*\) corrupted).*/\1/p' "$WORK/group-sim.out")
check "simulate from a third container produces 8000 records, ${bad:-?} corrupt" test -n "$bad"
good=$((8000 - ${bad:-0}))
group_scored() {
  [[ $(ns_count "$broker" "$boot" predictions) -eq $good && $(ns_count "$broker" "$boot" telemetry.dlq) -eq ${bad:-0} ]]
}
wait_for 120 group_scored
check "$good predictions and ${bad:-?} dead letters: each record once (kcat in the namespace)" group_scored
echo "# predictions $(ns_count "$broker" "$boot" predictions), dead letters $(ns_count "$broker" "$boot" telemetry.dlq)"
pa=$(metric "$(http_get "$port_a" /metrics)" tributary_records_predicted_total)
pb=$(metric "$(http_get "$port_b" /metrics)" tributary_records_predicted_total)
check "both serves predicted (serve-a ${pa:-?}, serve-b ${pb:-?}), $good together" \
  bash -c '[[ -n $1 && -n $2 ]] && (($1 > 0 && $2 > 0 && $1 + $2 == $3))' _ "${pa:-}" "${pb:-}" "$good"

podman stop -t 30 "$P-serve-a" "$P-serve-b" >/dev/null 2>&1
check "SIGTERM: both serves exit 0" \
  bash -c '[[ $(podman inspect -f "{{.State.ExitCode}}" "$1" "$2" | paste -sd,) == 0,0 ]]' _ "$P-serve-a" "$P-serve-b"
sa=$(stopped_line "$P-serve-a") sb=$(stopped_line "$P-serve-b")
echo "# serve-a $sa; serve-b $sb"
sums=$(printf '%s\n%s\n' "$sa" "$sb" | awk '{ gsub(/,/, ""); c += $3; p += $5; d += $7 } END { print c, p, d }')
check "their final counts add up: consumed 8000, predicted $good, dead-lettered ${bad:-?} (no record twice)" \
  test "$sums" = "8000 $good ${bad:-0}"
timing "compose's services on a broker"

echo "# timing: total $((SECONDS - T0)) s"
finish
