#!/usr/bin/env bash
# Watch fan-out, side by side: the same workload against a fresh one-member
# etcd and a fresh one-member Cairn, on loopback, one after the other.
#
#   scripts/watch-bench.sh                 # issue #21's shape: 10 streams x 1,000 watchers, 5,000 puts at 2,000/s
#   STREAMS=100 PUTS=20000 scripts/watch-bench.sh   # 100,000 watchers
#
# ETCD (path to an etcd binary) is optional: without it only Cairn runs.
# TOOL=etcd uses etcd's own benchmark tool (BENCHMARK=path) instead of
# bin/bench; both report delivery time and events/s, and bin/bench also the
# server's start, peak and settled resident memory.
set -euo pipefail
cd "$(dirname "$0")/.."

STREAMS=${STREAMS:-10}
PER_STREAM=${PER_STREAM:-1000}
PUTS=${PUTS:-5000}
RATE=${RATE:-2000}
CONNS=${CONNS:-10}
CLIENTS=${CLIENTS:-10}
SETTLE=${SETTLE:-8s}
ETCD=${ETCD:-}
TOOL=${TOOL:-cairn}
BENCHMARK=${BENCHMARK:-benchmark}
PORT=${PORT:-24379}
OUT=${OUT:-$(mktemp -d)}

make -s build >/dev/null

wait_up() {
	for _ in $(seq 1 100); do
		if curl -fs "http://127.0.0.1:$PORT/health" >/dev/null 2>&1; then return 0; fi
		sleep 0.1
	done
	echo "server did not come up" >&2
	return 1
}

one() { # name binary
	local name=$1 bin=$2 dir="$OUT/$1"
	rm -rf "$dir" && mkdir -p "$dir"
	"$bin" --name bench --data-dir "$dir/data" \
		--listen-client-urls "http://127.0.0.1:$PORT" --advertise-client-urls "http://127.0.0.1:$PORT" \
		--listen-peer-urls "http://127.0.0.1:$((PORT + 1))" --initial-advertise-peer-urls "http://127.0.0.1:$((PORT + 1))" \
		--initial-cluster "bench=http://127.0.0.1:$((PORT + 1))" >"$dir/server.log" 2>&1 &
	local pid=$!
	trap 'kill $pid 2>/dev/null || true' RETURN
	wait_up
	echo "== $name ($STREAMS streams x $PER_STREAM watchers, $PUTS puts at $RATE/s)"
	if [ "$TOOL" = etcd ]; then
		/usr/bin/time -f "bench wall %e s" "$BENCHMARK" --endpoints "127.0.0.1:$PORT" --conns "$CONNS" --clients "$CLIENTS" \
			watch --streams "$STREAMS" --watch-per-stream "$PER_STREAM" --put-total "$PUTS" --put-rate "$RATE" 2>"$dir/bench.err" |
			grep -E "Total:|Requests/sec" || true
		echo "server_rss_peak_mib $(awk '/VmHWM/ {printf "%.1f", $2/1024}' /proc/$pid/status)"
		sleep "${SETTLE%s}"
		echo "server_rss_after_${SETTLE}_mib $(awk '/VmRSS/ {printf "%.1f", $2/1024}' /proc/$pid/status)"
	else
		bin/bench -endpoints "127.0.0.1:$PORT" -conns "$CONNS" -clients "$CLIENTS" -server-pid "$pid" -settle "$SETTLE" \
			watch -streams "$STREAMS" -watch-per-stream "$PER_STREAM" -put-total "$PUTS" -put-rate "$RATE"
	fi
	kill "$pid"
	wait "$pid" 2>/dev/null || true
}

if [ -n "$ETCD" ]; then one etcd "$ETCD"; fi
one cairn bin/cairn
echo "logs in $OUT"
