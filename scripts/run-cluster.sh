#!/usr/bin/env bash
# Starts a three-member Cairn cluster on localhost, as etcd's Procfile does:
# clients on 2379, 22379, 32379; peers on 2380, 22380, 32380; data under
# ./data/cluster. Ctrl-C stops all three.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=./bin/cairn
[ -x "$bin" ] || { echo "run-cluster: $bin missing; run 'make build' first" >&2; exit 1; }
mkdir -p data/cluster
cluster="infra1=http://127.0.0.1:2380,infra2=http://127.0.0.1:22380,infra3=http://127.0.0.1:32380"
pids=()
start() {
  local name=$1 client=$2 peer=$3
  "$bin" --name "$name" --data-dir "data/cluster/$name" \
    --listen-client-urls "http://127.0.0.1:$client" --advertise-client-urls "http://127.0.0.1:$client" \
    --listen-peer-urls "http://127.0.0.1:$peer" --initial-advertise-peer-urls "http://127.0.0.1:$peer" \
    --initial-cluster-token cairn-cluster-1 --initial-cluster "$cluster" --initial-cluster-state new \
    --log-outputs "data/cluster/$name.log" &
  pids+=($!)
  echo "$name: client http://127.0.0.1:$client, log data/cluster/$name.log"
}
stop_all() { kill "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true; }
trap 'stop_all; echo stopped; exit 0' INT TERM
start infra1 2379 2380
start infra2 22379 22380
start infra3 32379 32380

# Fail loudly if a member does not come up (a port taken, a bad data dir):
# a cluster running with two of three members is not what was asked for.
names=(infra1 infra2 infra3)
clients=(2379 22379 32379)
for i in 0 1 2; do
  for _ in $(seq 1 100); do
    if ! kill -0 "${pids[$i]}" 2>/dev/null; then
      echo "run-cluster: ${names[$i]} exited (its error is above, or in data/cluster/${names[$i]}.log)" >&2
      tail -5 "data/cluster/${names[$i]}.log" 2>/dev/null >&2 || true
      stop_all
      exit 1
    fi
    curl -fs "http://127.0.0.1:${clients[$i]}/health" >/dev/null 2>&1 && break
    sleep 0.1
  done
  if ! curl -fs "http://127.0.0.1:${clients[$i]}/health" >/dev/null 2>&1; then
    echo "run-cluster: ${names[$i]} is not healthy after 10 s; see data/cluster/${names[$i]}.log" >&2
    stop_all
    exit 1
  fi
done
echo "cluster healthy; try: bin/etcdctl --endpoints=127.0.0.1:2379,127.0.0.1:22379,127.0.0.1:32379 member list -w table"
# Stop everything, loudly, as soon as any member exits.
wait -n "${pids[@]}" || true
echo "run-cluster: a member exited; stopping the others (logs in data/cluster/)" >&2
stop_all
exit 1
