// Package k8s runs Kubernetes' storage conformance tests (the exported Run*
// functions of k8s.io/apiserver/pkg/storage/testing) against a real server
// process: Kubernetes' etcd3 storage and its watch cache, built on a clientv3
// that talks to a one-member cluster started for each test.
//
// The server is Cairn, built from the parent module, unless CAIRN_K8S_SERVER
// names another binary that takes etcd's flags (for example etcd itself).
// Everything is in the _test.go files; README.md says how to run them.
//
// This is its own module so that k8s.io/* never enters Cairn's go.mod.
package k8s
