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
trap 'kill "${pids[@]}" 2>/dev/null; wait; echo stopped' INT TERM
start infra1 2379 2380
start infra2 22379 22380
start infra3 32379 32380
echo "try: etcdctl --endpoints=127.0.0.1:2379,127.0.0.1:22379,127.0.0.1:32379 member list -w table"
wait
