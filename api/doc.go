// Package api is Cairn's client-facing surface: etcd's v3 gRPC services
// (KV, Watch, Lease, Cluster, Maintenance, Auth from
// go.etcd.io/etcd/api/v3/etcdserverpb), the grpc-gateway JSON API under
// /v3/, and the plain HTTP endpoints /health, /livez, /readyz, /version,
// /metrics and (optionally) /debug/pprof/, all served on one client
// listener.
//
// The package validates requests exactly as etcd's v3rpc layer does and
// then hands them to a Backend (the raft node). It never interprets the
// key-value data itself, except to cut a KV.RangeStream into etcd's chunks
// out of the backend's Range reads (rangestream.go).
//
// One listener: every accepted connection is sniffed. A connection that
// opens with the HTTP/2 client preface is a gRPC connection and goes to
// grpc.Server's own HTTP/2 transport; anything else is HTTP/1.x and goes
// to a net/http server carrying the gateway and the plain endpoints. This
// is what etcd does with cmux on an insecure listener. It was chosen over
// routing inside net/http (h2c + grpc.Server.ServeHTTP) because ServeHTTP
// measured markedly slower (see BenchmarkUnaryGet* in the tests).
package api
