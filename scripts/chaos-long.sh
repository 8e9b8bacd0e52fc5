#!/usr/bin/env bash
# The long soak of the real cairn binary (cmd/chaos): one run per cluster
# size (3 and 5 members) with every fault kind at once -- kill -9, SIGSTOP,
# partitions, slow links, power cuts on FUSE data dirs (internal/faultfs),
# fsync stalls, EIO and ENOSPC disks, and membership changes -- each
# printing the runner's per-fault table and checks. Needs /dev/fuse and
# root (or fusermount) for the disk faults.
#   DURATION (default 30m per run), SEED (default: from the clock),
#   FAULTS (default: every kind), NODES (default "3 5"),
#   OUT (default ./data/chaos-long).
set -euo pipefail
cd "$(dirname "$0")/.."
duration=${DURATION:-30m}
seed=${SEED:-$(( $(date +%s) % 100000 + 1 ))}
faults=${FAULTS:-kill,pause,partition,delay,power,disk-stall,disk-eio,disk-full,members}
nodes=${NODES:-3 5}
out=${OUT:-data/chaos-long}
mkdir -p "$out" bin
go build -o bin/chaos ./cmd/chaos
go build -o bin/cairn ./cmd/cairn
fail=0
for n in $nodes; do
  dir="$out/n$n-seed$seed"
  rm -rf "$dir"
  echo "== soak: $n nodes, $duration, seed $seed, faults $faults"
  # More keys than the short runs: the linearizability check splits the
  # history by key, and a long history on few keys takes it too long.
  if ! ./bin/chaos -nodes "$n" -duration "$duration" -seed "$seed" -faults "$faults" -keys 20 \
      -check-timeout 20m -recover 60s -cairn "$PWD/bin/cairn" -out "$dir"; then
    fail=1
  fi
done
if [ "$fail" -ne 0 ]; then echo "chaos-long: FAILED (seed $seed)"; exit 1; fi
echo "chaos-long: all runs passed (seed $seed)"
