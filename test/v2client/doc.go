// Package v2client runs etcd's own v2 client library (go.etcd.io/etcd/client/v2,
// of etcd 3.5) against a three-member cairn with --enable-v2. It is its own
// module so that the v2 client never enters Cairn's go.mod (make test-v2client).
package v2client
