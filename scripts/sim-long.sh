#!/usr/bin/env bash
# Runs a long simulation swarm: SEEDS seeds split over one process per core,
# then prints the runs per second. A failing seed prints its replay command.
set -euo pipefail
cd "$(dirname "$0")/.."
seeds=${SEEDS:-2000}
first=${FIRST:-1000}
procs=${PROCS:-$(nproc)}
per=$(( (seeds + procs - 1) / procs ))
go test -c -tags invariants -o /tmp/cairn-sim.test ./sim
start=$(date +%s.%N)
pids=()
for ((p = 0; p < procs; p++)); do
  /tmp/cairn-sim.test -test.run 'TestSim$' -test.count=1 -seeds "$per" -first $((first + p * per)) \
    > "/tmp/cairn-sim-long.$p.log" 2>&1 &
  pids+=($!)
done
fail=0
for i in "${!pids[@]}"; do
  if ! wait "${pids[$i]}"; then fail=1; grep -E "found|replay|artefacts" "/tmp/cairn-sim-long.$i.log" || tail -20 "/tmp/cairn-sim-long.$i.log"; fi
done
end=$(date +%s.%N)
# Each process's summary line, and the inconclusive checks of the whole sweep.
logs=(); for ((p = 0; p < procs; p++)); do logs+=("/tmp/cairn-sim-long.$p.log"); done
grep -h '^sim:' "${logs[@]}" || true
cat "${logs[@]}" | awk '/^sim:/ { for (i = 1; i < NF; i++) if ($(i+1) == "checks" && $(i+2) == "inconclusive") n += $i }
  END { printf "sim-long: %d linearizability checks inconclusive (out of steps)\n", n }'
total=$((per * procs))
awk -v n="$total" -v a="$start" -v b="$end" -v f="$first" \
  'BEGIN { printf "sim-long: %d runs (seeds %d..%d) in %.1fs: %.1f runs/s\n", n, f, f + n - 1, b - a, n / (b - a) }'
if [ "$fail" -ne 0 ]; then echo "0 passed, 1 failed"; exit 1; fi
echo "1 passed, 0 failed"
