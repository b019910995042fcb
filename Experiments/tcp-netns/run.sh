#!/usr/bin/env bash
# The tcp path of a job with every role in its own network namespace, as if on separate
# machines: each namespace has only a veth link to a bridge (10.77.0.0/24), so the roles reach
# the broker only over real tcp between network stacks. Needs root (ip netns) and iproute2.
#
#   bash Experiments/tcp-netns/run.sh [path/to/rollspec]
#
# Prints each role's address, the driver's summary (every sample exactly once), and exits
# non-zero if the job did not complete. Cleans up its namespaces and bridge on exit.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
bin="${1:-$here/../../.build/release/rollspec}"
[ -x "$bin" ] || bin="$here/../../.build/debug/rollspec"
[ -x "$bin" ] || { echo "build rollspec first (swift build -c release)"; exit 1; }
bin="$(realpath "$bin")"
out="$here/out"; rm -rf "$out"; mkdir -p "$out"

roles=(broker worker0 worker1 trainer driver)
cleanup() {
  for r in "${roles[@]}"; do ip netns pids "rs-$r" 2>/dev/null | xargs -r kill -9 2>/dev/null || true; done
  for r in "${roles[@]}"; do ip netns del "rs-$r" 2>/dev/null || true; done
  ip link del rs-br0 2>/dev/null || true
}
trap cleanup EXIT
cleanup

ip link add rs-br0 type bridge
ip addr add 10.77.0.254/24 dev rs-br0
ip link set rs-br0 up
i=1
for r in "${roles[@]}"; do
  ip netns add "rs-$r"
  ip link add "rs-$r-h" type veth peer name eth0 netns "rs-$r"
  ip link set "rs-$r-h" master rs-br0 up
  ip -n "rs-$r" addr add "10.77.0.$i/24" dev eth0
  ip -n "rs-$r" link set eth0 up
  ip -n "rs-$r" link set lo up
  echo "$r: 10.77.0.$i (namespace rs-$r)"
  i=$((i + 1))
done

cat > "$out/job.yaml" <<YAML
name: tcp-netns
runDirectory: $out/run
endpoint: tcp://10.77.0.1:5555
workers: 2
trainer: {minTrajectories: 8, batchSize: 4}
learner: {kind: driver}
driver: {requests: 200, samples: 2, timeoutSeconds: 120}
sampling: {maxTokens: 24}
YAML

( ip netns exec rs-broker "$bin" role broker --config "$out/job.yaml" 2> "$out/broker.log" & )
sleep 0.5
( ip netns exec rs-worker0 "$bin" role worker --config "$out/job.yaml" --index 0 2> "$out/worker0.log" & )
( ip netns exec rs-worker1 "$bin" role worker --config "$out/job.yaml" --index 1 2> "$out/worker1.log" & )
( ip netns exec rs-trainer "$bin" role trainer --config "$out/job.yaml" 2> "$out/trainer.log" & )
status=0
ip netns exec rs-driver "$bin" role driver --config "$out/job.yaml" > "$out/summary.json" 2> "$out/driver.log" || status=$?
echo "driver summary: $(cat "$out/summary.json")"
echo "broker saw: $(grep -c 'joined' "$out/broker.log") joins; worker0 served $(grep -c ' done ' "$out/worker0.log") requests, worker1 $(grep -c ' done ' "$out/worker1.log")"
# The broker's view of its peers: addresses from other namespaces, not loopback.
ip netns exec rs-broker ss -tn state established '( sport = :5555 )' | tail -n +2 | awk '{print "broker connection from " $4}' | sort -u
exit $status
