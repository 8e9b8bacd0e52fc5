#!/usr/bin/env bash
# The headline comparison of issue #18: Cairn against etcd 3.7.3 on this
# machine, with bin/bench. Every comparison starts a fresh cluster (new
# data dirs, free loopback ports) per run and alternates etcd and cairn
# ROUNDS times; the tables have each run, the medians and cairn/etcd.
#
#   scripts/bench-compare.sh                    # results in bench-results/<UTC time>/
#   QUICK=1 scripts/bench-compare.sh            # small counts: checks the plumbing in a minute or two
#   ROUNDS=5 TOTAL=100000 MEMBERS=1 OUT=/tmp/r scripts/bench-compare.sh
#   EXTRA=1 scripts/bench-compare.sh            # also watch latency, lease keep-alive and Kubernetes' shapes
#
# Workloads (A = etcd, B = cairn; 100 clients over 10 connections unless
# said): put (random keys), put from 1 client (sequential keys), range
# linearizable and serializable (one key), txn-put, txn-mixed (4 reads to a
# write; a read is a range with limit 10 over KEYS keys); on each of
# MEMBERS (1 and 3 members). Then put throughput and p99 against the
# number of clients (SWEEP), one member.
#
# OUT gets: compare/NAME-Nm.{md,json} per comparison, summary.md (the
# headline table: medians and cairn/etcd), summary.html (that table and a
# chart of the throughput ratios), sweep-clients.{md,json,html}, and
# bench.log (progress). Nothing of this runs in `make test`.
set -euo pipefail
cd "$(dirname "$0")/.."

ETCD=${ETCD:-/work/tools/bin/etcd}
CAIRN=${CAIRN:-bin/cairn}
BENCH=${BENCH:-bin/bench}
ROUNDS=${ROUNDS:-3}
TOTAL=${TOTAL:-50000}              # operations of a run with 100 clients
SINGLE_TOTAL=${SINGLE_TOTAL:-5000} # operations of a run with 1 client
CLIENTS=${CLIENTS:-100}
CONNS=${CONNS:-10}
VAL=${VAL:-256}                    # value size
KEYS=${KEYS:-35000}                # keys under txn-mixed's reads
MEMBERS=${MEMBERS:-1 3}
SWEEP=${SWEEP:-1,10,50,100,300}
SWEEP_DURATION=${SWEEP_DURATION:-5s}
EXTRA=${EXTRA:-}
if [ -n "${QUICK:-}" ]; then
	ROUNDS=1 TOTAL=1000 SINGLE_TOTAL=200 KEYS=2000 SWEEP=1,10 SWEEP_DURATION=1s
fi
OUT=${OUT:-bench-results/$(date -u +%Y%m%dT%H%M%SZ)}

[ -x "$ETCD" ] || { echo "no etcd binary at $ETCD (set ETCD)" >&2; exit 1; }
if [ "$CAIRN" = bin/cairn ] || [ "$BENCH" = bin/bench ]; then make -s build >/dev/null; fi
# compare starts the binaries from the members' own folders: absolute paths.
CAIRN=$(realpath "$CAIRN") ETCD=$(realpath "$ETCD")
mkdir -p "$OUT/compare"
log="$OUT/bench.log"
echo "etcd: $("$ETCD" --version | head -1); cairn: $("$CAIRN" --version | head -1); $(nproc) cores; $(uptime)" | tee "$OUT/machine.txt"

jsons=() # in the order run, for the summary

# cmp NAME MEMBERS CLIENTS CONNS WORKLOAD [FLAGS...]
cmp() {
	local name=$1 members=$2 clients=$3 conns=$4
	shift 4
	echo "== $name, $members member(s)" | tee -a "$log"
	"$BENCH" -clients "$clients" -conns "$conns" compare \
		-a-bin "$ETCD" -a-name etcd -b-bin "$CAIRN" -b-name cairn \
		-members "$members" -rounds "$ROUNDS" -label "$name" \
		-md "$OUT/compare/$name-${members}m.md" -json-out "$OUT/compare/$name-${members}m.json" \
		"$@" 2>>"$log" >/dev/null
	jsons+=("$OUT/compare/$name-${members}m.json")
	sed -n '/^| median/,$p' "$OUT/compare/$name-${members}m.md" | grep -E '^\| (median|---|ops_per_second|latency_p99_ms) '
}

for m in $MEMBERS; do
	cmp "put-${CLIENTS}c" "$m" "$CLIENTS" "$CONNS" put -total "$TOTAL" -key-space-size 100000 -val-size "$VAL"
	cmp put-1c "$m" 1 1 put -total "$SINGLE_TOTAL" -sequential-keys -key-space-size 100000 -val-size "$VAL"
	cmp "range-lin-${CLIENTS}c" "$m" "$CLIENTS" "$CONNS" range -total "$TOTAL" -consistency l -val-size "$VAL"
	cmp "range-ser-${CLIENTS}c" "$m" "$CLIENTS" "$CONNS" range -total "$TOTAL" -consistency s -val-size "$VAL"
	cmp "txn-put-${CLIENTS}c" "$m" "$CLIENTS" "$CONNS" txn-put -total "$TOTAL" -key-space-size 100000 -val-size "$VAL"
	cmp "txn-mixed-${CLIENTS}c" "$m" "$CLIENTS" "$CONNS" txn-mixed -total "$TOTAL" -rw-ratio 4 -limit 10 \
		-key-space-size "$KEYS" -prefill "$KEYS" -val-size "$VAL"
	if [ -n "$EXTRA" ]; then
		cmp "range-count-${KEYS}keys" "$m" "$CLIENTS" "$CONNS" range -total "$((TOTAL / 10))" -prefill "$KEYS" -key b -prefix -count-only -val-size "$VAL"
		cmp watch-latency "$m" 1 1 watch-latency -streams 10 -watchers-per-stream 10 -put-total 1000 -put-rate 100
		cmp lease-keepalive "$m" "$CLIENTS" "$CONNS" lease-keepalive -total "$TOTAL"
		cmp list-10k "$m" 10 10 list -keys 10000 -limit 500 -total 100
		cmp update-100keys "$m" "$CLIENTS" "$CONNS" update -keys 100 -total "$((TOTAL / 5))"
	fi
done

"$BENCH" summary -html "$OUT/summary.html" "${jsons[@]}" >"$OUT/summary.md"

echo "== put against clients ($SWEEP), 1 member" | tee -a "$log"
"$BENCH" -conns "$CONNS" sweep -a-bin "$ETCD" -a-name etcd -b-bin "$CAIRN" -b-name cairn \
	-param clients -values "$SWEEP" -rounds 1 \
	-md "$OUT/sweep-clients.md" -json-out "$OUT/sweep-clients.json" -html "$OUT/sweep-clients.html" \
	put -duration "$SWEEP_DURATION" -key-space-size 100000 -val-size "$VAL" 2>>"$log" >/dev/null

echo
cat "$OUT/summary.md"
echo
cat "$OUT/sweep-clients.md"
echo
echo "results in $OUT"
