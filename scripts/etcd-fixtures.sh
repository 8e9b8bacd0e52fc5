#!/usr/bin/env bash
# Regenerates node/wal/etcdwal/testdata: WAL segments and .snap files written
# by a real etcd 3.7 and its etcdutl, for the tests of Cairn's reader of
# etcd's on-disk formats (package node/wal/etcdwal). The tests only read the
# files checked in; run this again after an etcd upgrade and commit the result.
#
#   testdata/member/    a stopped one-member etcd (--snapshot-count 10) after
#                       25 puts, a delete, a lease grant, a put with that
#                       lease, a txn (if k1 = v1 put k1 else put k2) and 3
#                       more puts: member/wal/*.wal and member/snap/*.snap
#                       (three snapshots, four entries after the last).
#   testdata/restored/  `etcdutl snapshot restore` of that member's snapshot
#                       (taken with `etcdctl snapshot save` before stopping)
#                       as member r1 of a three-member cluster.
#   */expect.json       what etcd itself reported, for the tests to compare
#                       with: the member and cluster IDs (hex, from etcd's and
#                       etcdutl's logs); for member/, the raft index and term
#                       from `etcdctl endpoint status` taken just before the
#                       stop; for restored/, the three voters' IDs; and, as
#                       etcd_restart, what etcd logged when restarted on a
#                       scratch copy of exactly the files checked in (the
#                       snapshot index it started from, the number of usable
#                       markers, the commit index, raft's last index and term).
#
# etcd preallocates every WAL segment to 64 MB of zeros. The copies here are
# cut 64 bytes past the end of the last record (found by walking the frames:
# an 8-byte little-endian length word, the low 56 bits the record size, the
# low 3 bits of the top byte the padding when its bit 0x80 is set; a zero
# word ends the segment), so they keep a zero word like a preallocated file
# and stay a few KB. Member bbolt files (member/snap/db) are not kept.
#
# Usage: scripts/etcd-fixtures.sh
#   ETCD, ETCDUTL (default /work/tools/bin/etcd, /work/tools/bin/etcdutl) and
#   ETCDCTL (default bin/etcdctl, built from go.mod's tool if missing) name
#   the binaries. Listens on free ports of 127.0.0.1 only.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
ETCD=${ETCD:-/work/tools/bin/etcd}
ETCDUTL=${ETCDUTL:-/work/tools/bin/etcdutl}
ETCDCTL=${ETCDCTL:-$root/bin/etcdctl}
out=$root/node/wal/etcdwal/testdata

for b in "$ETCD" "$ETCDUTL"; do
  [ -x "$b" ] || { echo "etcd-fixtures: $b missing (set ETCD / ETCDUTL)" >&2; exit 1; }
done
if [ ! -x "$ETCDCTL" ]; then
  mkdir -p "$(dirname "$ETCDCTL")"
  go build -o "$ETCDCTL" go.etcd.io/etcd/etcdctl/v3
fi
"$ETCD" --version | head -1

work=$(mktemp -d "${TMPDIR:-/tmp}/etcd-fixtures.XXXXXX")
pid=
cleanup() {
  if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

# free_port prints a port of 127.0.0.1 nothing listens on.
free_port() {
  local p
  while :; do
    p=$((20000 + RANDOM % 40000))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
      echo "$p"
      return
    fi
  done
}

# wal_end prints the offset just past the last record of an etcd WAL segment.
wal_end() {
  perl -e '
    open(my $f, "<", $ARGV[0]) or die "$ARGV[0]: $!";
    binmode $f;
    my $off = 0;
    while (read($f, my $w, 8) == 8) {
      my ($lo, $hi) = unpack("VV", $w);
      last if $lo == 0 && $hi == 0;
      my $len = $lo + ($hi & 0xffffff) * 4294967296;
      my $pad = ($hi & 0x80000000) ? (($hi >> 24) & 7) : 0;
      $off += 8 + $len + $pad;
      seek($f, $off, 0) or die;
    }
    print $off;
  ' "$1"
}

# copy_member copies a data dir's WAL segments (cut) and .snap files to $2.
copy_member() {
  local src=$1 dst=$2 f end
  rm -rf "$dst"
  mkdir -p "$dst/member/wal" "$dst/member/snap"
  for f in "$src"/member/wal/*.wal; do
    end=$(wal_end "$f")
    head -c "$((end + 64))" "$f" >"$dst/member/wal/$(basename "$f")"
  done
  for f in "$src"/member/snap/*.snap; do
    [ -e "$f" ] && cp "$f" "$dst/member/snap/"
  done
}

# restart_facts starts etcd on a scratch copy of the cut fixture $1 (with
# the database $2, as member $3), stops it once raft is up and prints, as
# JSON, what etcd logged about the log it read: the snapshot it started
# from, how many usable markers the WAL held, the commit index and raft's
# last index and term. This is etcd's own reading of the files checked in.
restart_facts() {
  local fixture=$1 db=$2 name=$3 scratch=$work/restart-$3
  local log=$scratch.log c p line
  rm -rf "$scratch"
  mkdir -p "$scratch"
  cp -r "$fixture/member" "$scratch/"
  cp "$db" "$scratch/member/snap/db"
  c=$(free_port)
  p=$(free_port)
  "$ETCD" --name "$name" --data-dir "$scratch" \
    --listen-client-urls "http://127.0.0.1:$c" --advertise-client-urls "http://127.0.0.1:$c" \
    --listen-peer-urls "http://127.0.0.1:$p" --initial-advertise-peer-urls "http://127.0.0.1:$p" \
    --log-outputs "$log" >/dev/null 2>&1 &
  pid=$!
  for _ in $(seq 1 100); do
    grep -q '"msg":"newRaft' "$log" 2>/dev/null && break
    kill -0 "$pid" 2>/dev/null || { echo "etcd-fixtures: etcd exited on $fixture" >&2; tail -5 "$log" >&2; exit 1; }
    sleep 0.1
  done
  kill "$pid"
  wait "$pid" 2>/dev/null || true
  pid=
  line=$(grep '"msg":"newRaft' "$log") || { echo "etcd-fixtures: etcd did not start raft on $fixture" >&2; exit 1; }
  num() { grep -o "$1[0-9]*" | head -1 | grep -o '[0-9]*$'; }
  printf '{"snapshot_index": %s, "wal_snaps": %s, "commit_index": %s, "last_index": %s, "last_term": %s}' \
    "$(grep 'constructed a snapshot from WAL record' "$log" | num '"snapshot-index":')" \
    "$(grep 'constructed a snapshot from WAL record' "$log" | num '"walSnaps-count":')" \
    "$(grep 'restarting local member' "$log" | num '"commit-index":')" \
    "$(num 'lastindex: ' <<<"$line")" \
    "$(num 'lastterm: ' <<<"$line")"
}

# --- a one-member etcd, stopped after some writes -------------------------
cport=$(free_port)
pport=$(free_port)
ep=127.0.0.1:$cport
"$ETCD" --name m1 --data-dir "$work/m1" \
  --listen-client-urls "http://$ep" --advertise-client-urls "http://$ep" \
  --listen-peer-urls "http://127.0.0.1:$pport" --initial-advertise-peer-urls "http://127.0.0.1:$pport" \
  --initial-cluster "m1=http://127.0.0.1:$pport" --initial-cluster-token etcd-fixtures \
  --snapshot-count 10 --log-outputs "$work/m1.log" >/dev/null 2>&1 &
pid=$!
for _ in $(seq 1 100); do
  "$ETCDCTL" --endpoints "$ep" endpoint health >/dev/null 2>&1 && break
  kill -0 "$pid" 2>/dev/null || { echo "etcd-fixtures: etcd exited" >&2; tail -5 "$work/m1.log" >&2; exit 1; }
  sleep 0.1
done
ctl() { "$ETCDCTL" --endpoints "$ep" "$@"; }
for i in $(seq 1 25); do ctl put "k$i" "v$i" >/dev/null; done
ctl del k3 >/dev/null
lease=$(ctl lease grant 600 | awk '{print $2}')
ctl put leased v --lease "$lease" >/dev/null
# etcdctl txn reads compares, a blank line, success requests, a blank line,
# failure requests.
ctl txn <<<$'value("k1") = "v1"\n\nput k1 v1-txn\n\nput k2 v2-txn\n\n' >/dev/null
for i in 26 27 28; do ctl put "k$i" "v$i" >/dev/null; done
status=$(ctl endpoint status -w json)
ctl snapshot save "$work/snap.db" >/dev/null 2>&1
kill "$pid"
wait "$pid" 2>/dev/null || true
pid=
raft_index=$(grep -o '"raftIndex":[0-9]*' <<<"$status" | cut -d: -f2)
raft_term=$(grep -o '"raftTerm":[0-9]*' <<<"$status" | cut -d: -f2)
member_id=$(grep -o '"member_id":[0-9]*' <<<"$status" | cut -d: -f2)
cluster_id=$(grep -o '"cluster_id":[0-9]*' <<<"$status" | cut -d: -f2)
log_member=$(grep -o '"local-member-id":"[0-9a-f]*"' "$work/m1.log" | head -1 | cut -d'"' -f4)
log_cluster=$(grep -o '"cluster-id":"[0-9a-f]*"' "$work/m1.log" | head -1 | cut -d'"' -f4)
if [ "$(printf %x "$member_id")" != "$log_member" ] || [ "$(printf %x "$cluster_id")" != "$log_cluster" ]; then
  echo "etcd-fixtures: endpoint status and the log disagree on the IDs" >&2
  exit 1
fi

copy_member "$work/m1" "$out/member"
cat >"$out/member/expect.json" <<EOF
{
  "member_id": "$log_member",
  "cluster_id": "$log_cluster",
  "raft_index": $raft_index,
  "raft_term": $raft_term,
  "snapshot_count": 10,
  "etcd_restart": $(restart_facts "$out/member" "$work/m1/member/snap/db" m1)
}
EOF

# --- etcdutl snapshot restore of that member's snapshot ----------------------
u1=http://127.0.0.1:$(free_port)
u2=http://127.0.0.1:$(free_port)
u3=http://127.0.0.1:$(free_port)
"$ETCDUTL" snapshot restore "$work/snap.db" --name r1 --data-dir "$work/r1" \
  --initial-cluster "r1=$u1,r2=$u2,r3=$u3" --initial-advertise-peer-urls "$u1" \
  --initial-cluster-token etcd-fixtures-restored >"$work/restore.log" 2>&1
peer_id() { grep 'added member' "$work/restore.log" | grep -F "[\"$1\"]" | grep -o '"added-peer-id": "[0-9a-f]*"' | cut -d'"' -f4; }
r_cluster=$(grep 'added member' "$work/restore.log" | grep -o '"cluster-id": "[0-9a-f]*"' | head -1 | cut -d'"' -f4)
r1=$(peer_id "$u1")
r2=$(peer_id "$u2")
r3=$(peer_id "$u3")
[ -n "$r_cluster" ] && [ -n "$r1" ] && [ -n "$r2" ] && [ -n "$r3" ] || {
  echo "etcd-fixtures: member IDs not found in etcdutl's output" >&2
  cat "$work/restore.log" >&2
  exit 1
}

copy_member "$work/r1" "$out/restored"
cat >"$out/restored/expect.json" <<EOF
{
  "member_id": "$r1",
  "cluster_id": "$r_cluster",
  "voters": ["$r1", "$r2", "$r3"],
  "etcd_restart": $(restart_facts "$out/restored" "$work/r1/member/snap/db" r1)
}
EOF

echo "wrote $out:"
find "$out" -type f | sort | xargs ls -l
