#!/usr/bin/env bash
# v2-compare.sh ETCD CAIRN: start a one-member etcd 3.5 (ETCD, built from
# the module proxy, see docs/v2.md) and a one-member cairn (CAIRN), both
# with --enable-v2 on free loopback ports, send both the same v2 requests
# with curl, and diff the answers (status and body; indexes and times
# and remaining TTLs (a second may pass mid-run) masked, since etcd's v2 index also counts its own membership writes).
set -euo pipefail
etcd=${1:?etcd 3.5 binary}; cairn=${2:?cairn binary}
dir=$(mktemp -d); trap 'kill $(jobs -p) 2>/dev/null; rm -rf "$dir"' EXIT
ports=($(python3 -c 'import socket
ss=[socket.socket() for _ in range(4)]
for s in ss: s.bind(("127.0.0.1",0))
print(*[s.getsockname()[1] for s in ss])'))
start() { # bin name client peer
  "$1" --name "$2" --data-dir "$dir/$2" --enable-v2 --listen-client-urls "http://127.0.0.1:$3" --advertise-client-urls "http://127.0.0.1:$3" \
    --listen-peer-urls "http://127.0.0.1:$4" --initial-advertise-peer-urls "http://127.0.0.1:$4" --initial-cluster "$2=http://127.0.0.1:$4" >"$dir/$2.log" 2>&1 &
}
start "$etcd" e "${ports[0]}" "${ports[1]}"
start "$cairn" c "${ports[2]}" "${ports[3]}"
for _ in $(seq 100); do
  curl -sf "http://127.0.0.1:${ports[0]}/health" >/dev/null && curl -sf "http://127.0.0.1:${ports[2]}/health" >/dev/null && break
  sleep 0.1
done
run() {
  local B=$1
  req() {
    local m=$1 p=$2; shift 2
    local code; code=$(curl -s -o "$dir/body" -w '%{http_code}' -X "$m" "$B$p" "$@")
    echo "== $m $p $* -> $code"
    sed -E 's/"(modifiedIndex|createdIndex|index)":[0-9]+/"\1":N/g; s/"expiration":"[^"]*"/"expiration":T/g; s/"ttl":[0-9]+/"ttl":S/g; s/[0-9]{20}/INORDER/g; s/\[999999 != [0-9]+\]/[999999 != N]/; s/"leader":"[0-9a-f]+"/"leader":ID/g' "$dir/body"; echo
  }
  req PUT /v2/keys/message -d value="Hello world"
  req GET /v2/keys/message
  req PUT /v2/keys/message -d value="Hello etcd"
  req DELETE /v2/keys/message
  req GET /v2/keys/message
  req PUT /v2/keys/foo -d value=bar -d ttl=5
  req PUT /v2/keys/dir -d dir=true
  req PUT /v2/keys/dir/a -d value=1
  req PUT /v2/keys/dir/_h -d value=h
  req GET '/v2/keys/dir?recursive=true'
  req GET '/v2/keys/dir/_h'
  req DELETE '/v2/keys/dir?dir=true'
  req DELETE '/v2/keys/dir'
  req PUT /v2/keys/foo_dir -d dir=true
  req DELETE '/v2/keys/foo_dir?dir=true'
  req DELETE '/v2/keys/dir?recursive=true'
  req PUT /v2/keys/cas -d value=one
  req PUT /v2/keys/cas -d value=x -d prevExist=false
  req PUT /v2/keys/cas -d value=two -d prevValue=zero
  req PUT /v2/keys/cas -d value=two -d prevIndex=999999
  req PUT /v2/keys/cas -d value=two -d prevValue=one
  req PUT /v2/keys/cas -d value=three -d prevExist=true
  req PUT /v2/keys/nope -d value=three -d prevExist=true
  req DELETE '/v2/keys/cas?prevValue=two'
  req DELETE '/v2/keys/cas?prevValue=three'
  req PUT /v2/keys/cas/x -d value=v
  req PUT /v2/keys/foo/x -d value=v
  req PUT /v2/keys/ -d value=v
  req DELETE /v2/keys/
  req PUT /v2/keys/t -d value=v -d ttl=x
  req PUT /v2/keys/t -d value=v -d prevIndex=x
  req PUT /v2/keys/foo -d refresh=true
  req PUT /v2/keys/foo -d refresh=true -d value=x -d ttl=5
  req PUT /v2/keys/foo -d refresh=true -d ttl=50
  req PUT /v2/keys/foo -d value=v -d prevValue=
  req POST /v2/keys/queue -d value=job1
  req GET '/v2/keys/queue?sorted=true'
  req PUT '/v2/keys/w?wait=true' -d value=v
  req GET '/v2/keys/foo?wait=true&waitIndex=1'
  req GET '/v2/keys/?recursive=true&sorted=true'
  req GET '/v2/keys/dir?dir=true&wait=true&waitIndex=x'
  req GET '/v2/keys/dir?recursive=maybe'
  req PATCH '/v2/keys/dir'
  req PUT /v2/keys/exp -d value=v -d ttl=1
  req GET '/v2/keys/exp?wait=true'
  req PUT /v2/keys/expdir -d dir=true -d ttl=1
  req PUT /v2/keys/expdir/k -d value=v
  req GET '/v2/keys/expdir/k?wait=true'
  req PUT /v2/keys/rm/a/b -d value=v
  req DELETE '/v2/keys/rm?recursive=true'
  req GET '/v2/keys/rm/a/b?wait=true&waitIndex=1'
  req GET '/v2/stats/leader'
  req GET '/v2/members/xyz'
  req POST '/v2/members' -d '{"peerURLs":["http://10.0.0.10:2380"]}'
  req POST '/v2/members' -H 'Content-Type: application/json' -d '{"peerURLs":["notaurl"]}'
  req DELETE '/v2/members/272e204152'
  req PUT '/v2/members/272e204152' -H 'Content-Type: application/json' -d '{"peerURLs":["http://10.0.0.10:2380"]}'
}
run "http://127.0.0.1:${ports[0]}" >"$dir/etcd.out"
run "http://127.0.0.1:${ports[2]}" >"$dir/cairn.out"
if diff "$dir/etcd.out" "$dir/cairn.out"; then
  echo "same answers ($(grep -c '^==' "$dir/etcd.out") requests)"
else
  exit 1
fi
