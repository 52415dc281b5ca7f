#!/usr/bin/env bash
# A real Apache Kafka cluster on 127.0.0.1 for the tests and benchmarks: N nodes in KRaft
# combined mode (each one broker and controller), from the jars `make deps` put in
# build/kafka/VERSION/libs.
#
#   cluster.sh start DIR [--nodes N] [--base-port P] [--set KEY=VALUE]...
#       Formats N nodes (default 1) under DIR (which must not hold a running cluster), starts
#       them, waits until every node answers a metadata request, and prints the bootstrap list
#       on the first line of standard output. Node i listens on P+2i (clients) and P+2i+1
#       (controller); without --base-port the ports are free ones the system picks. Each
#       --set adds a broker property (e.g. auto.create.topics.enable=false). Logs go to
#       DIR/node-I/server.log.
#   cluster.sh stop DIR       stops every node (SIGTERM, SIGKILL after 20 s) and removes DIR
#   cluster.sh kill DIR I     SIGKILLs node I (a crash: nothing flushed)
#   cluster.sh restart DIR I  starts node I again after a kill, and waits until it answers
#   cluster.sh pause DIR I / resume DIR I   SIGSTOP / SIGCONT node I
#   cluster.sh bootstrap DIR  prints the bootstrap list again
#
# Exits non-zero, with the reason on standard error and the last lines of the node's log, when
# a node does not come up within 60 s.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
version=$(sed -n '/<artifactId>kafka_2.13</{n;s:.*<version>\(.*\)</version>.*:\1:p}' "$here/pom.xml")
libs=${TRIBUTARY_KAFKA_LIBS:-$repo/build/kafka/$version/libs}

die() {
  echo "cluster.sh: $*" >&2
  exit 1
}

# Prints a port nobody listens on now (the kernel's choice for an ephemeral bind).
free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

# True when the node at host:port answers a metadata request.
answers() {
  kcat -L -b "$1" -m 3 -J >/dev/null 2>&1
}

node_pid() {
  local pidfile=$1/node-$2/pid
  [[ -f $pidfile ]] && cat "$pidfile"
}

# Starts node $2 of the cluster in $1 (already formatted) in the background.
launch() {
  local dir=$1 i=$2 node=$1/node-$2
  # Java's own logs (GC, JVM errors) beside the broker's; the heap is small: tests and
  # benchmarks move little data, and three nodes share a small machine.
  nohup java -Xms256m -Xmx${TRIBUTARY_KAFKA_HEAP:-768m} -XX:+UseG1GC -XX:MaxGCPauseMillis=20 \
    -Djava.awt.headless=true -Dlog4j2.configurationFile="$here/log4j2.yaml" \
    -Dkafka.logs.dir="$node" -cp "$libs/*" kafka.Kafka "$node/server.properties" \
    >"$node/stdout.log" 2>&1 &
  echo $! >"$node/pid"
}

# Waits until node $2 of the cluster in $1 answers, or fails with its log.
await() {
  local dir=$1 i=$2 port
  port=$(sed -n 's/^client.port=//p' "$dir/node-$i/ports")
  for _ in $(seq 1 600); do
    answers "127.0.0.1:$port" && return 0
    kill -0 "$(node_pid "$dir" "$i")" 2>/dev/null || break
    sleep 0.1
  done
  echo "cluster.sh: node $i did not come up on 127.0.0.1:$port" >&2
  tail -20 "$dir/node-$i/server.log" "$dir/node-$i/stdout.log" >&2 2>/dev/null || true
  return 1
}

bootstrap() {
  local dir=$1 list="" port
  for ports in "$dir"/node-*/ports; do
    port=$(sed -n 's/^client.port=//p' "$ports")
    list=${list:+$list,}127.0.0.1:$port
  done
  echo "$list"
}

start() {
  local dir=$1
  shift
  local nodes=1 base="" sets=()
  while [[ $# -gt 0 ]]; do
    case $1 in
    --nodes) nodes=$2; shift 2 ;;
    --base-port) base=$2; shift 2 ;;
    --set) sets+=("$2"); shift 2 ;;
    *) die "unknown option '$1'" ;;
    esac
  done
  [[ -d $libs ]] || die "no Kafka jars in $libs: run make deps"
  [[ $nodes =~ ^[1-9]$ ]] || die "--nodes: 1 to 9, not '$nodes'"
  if [[ -d $dir ]]; then
    for pidfile in "$dir"/node-*/pid; do
      [[ -f $pidfile ]] && kill -0 "$(cat "$pidfile")" 2>/dev/null && die "$dir holds a running cluster"
    done
    rm -rf "$dir"
  fi
  mkdir -p "$dir"
  local voters="" replication=$((nodes < 3 ? nodes : 3))
  local client_ports=() controller_ports=()
  for ((i = 0; i < nodes; i++)); do
    if [[ -n $base ]]; then
      client_ports[i]=$((base + 2 * i))
      controller_ports[i]=$((base + 2 * i + 1))
    else
      client_ports[i]=$(free_port)
      controller_ports[i]=$(free_port)
    fi
    voters=${voters:+$voters,}$((i + 1))@127.0.0.1:${controller_ports[i]}
  done
  local cluster_id
  cluster_id=$(java -cp "$libs/*" -Dlog4j2.configurationFile="$here/log4j2.yaml" \
    -Dkafka.logs.dir="$dir" kafka.tools.StorageTool random-uuid 2>/dev/null | tail -1)
  for ((i = 0; i < nodes; i++)); do
    local node=$dir/node-$i
    mkdir -p "$node/data"
    printf 'client.port=%s\ncontroller.port=%s\n' "${client_ports[i]}" "${controller_ports[i]}" >"$node/ports"
    cat >"$node/server.properties" <<EOF
process.roles=broker,controller
node.id=$((i + 1))
controller.quorum.voters=$voters
listeners=PLAINTEXT://127.0.0.1:${client_ports[i]},CONTROLLER://127.0.0.1:${controller_ports[i]}
advertised.listeners=PLAINTEXT://127.0.0.1:${client_ports[i]}
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
log.dirs=$node/data
num.partitions=4
default.replication.factor=$replication
min.insync.replicas=$((replication > 1 ? 2 : 1))
offsets.topic.replication.factor=$replication
offsets.topic.num.partitions=8
transaction.state.log.replication.factor=$replication
transaction.state.log.min.isr=$((replication > 1 ? 2 : 1))
transaction.state.log.num.partitions=8
share.coordinator.state.topic.replication.factor=$replication
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
log.flush.interval.messages=9223372036854775807
num.network.threads=2
num.io.threads=4
background.threads=4
EOF
    for kv in "${sets[@]+"${sets[@]}"}"; do
      echo "$kv" >>"$node/server.properties"
    done
    java -cp "$libs/*" -Dlog4j2.configurationFile="$here/log4j2.yaml" -Dkafka.logs.dir="$node" \
      kafka.tools.StorageTool format -t "$cluster_id" -c "$node/server.properties" \
      >"$node/format.log" 2>&1 ||
      { cat "$node/format.log" >&2; die "formatting node $i failed"; }
  done
  for ((i = 0; i < nodes; i++)); do
    launch "$dir" "$i"
  done
  for ((i = 0; i < nodes; i++)); do
    await "$dir" "$i" || { stop "$dir" >/dev/null 2>&1; exit 1; }
  done
  bootstrap "$dir"
}

stop() {
  local dir=$1 pids=()
  [[ -d $dir ]] || return 0
  for pidfile in "$dir"/node-*/pid; do
    [[ -f $pidfile ]] || continue
    local pid
    pid=$(cat "$pidfile")
    kill -CONT "$pid" 2>/dev/null || true
    kill -TERM "$pid" 2>/dev/null && pids+=("$pid")
  done
  for _ in $(seq 1 200); do
    local alive=0
    for pid in "${pids[@]+"${pids[@]}"}"; do
      kill -0 "$pid" 2>/dev/null && alive=1
    done
    [[ $alive -eq 0 ]] && break
    sleep 0.1
  done
  for pid in "${pids[@]+"${pids[@]}"}"; do
    kill -KILL "$pid" 2>/dev/null || true
  done
  rm -rf "$dir"
}

cmd=${1:-}
[[ $# -ge 2 ]] || die "usage: cluster.sh start|stop|kill|restart|pause|resume|bootstrap DIR ..."
dir=$2
shift 2
case $cmd in
start) start "$dir" "$@" ;;
stop) stop "$dir" ;;
kill) kill -KILL "$(node_pid "$dir" "$1")" ;;
restart)
  launch "$dir" "$1"
  await "$dir" "$1"
  ;;
pause) kill -STOP "$(node_pid "$dir" "$1")" ;;
resume) kill -CONT "$(node_pid "$dir" "$1")" ;;
bootstrap) bootstrap "$dir" ;;
*) die "unknown command '$cmd'" ;;
esac
