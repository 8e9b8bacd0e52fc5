// Package version holds Cairn's own version and the etcd version it speaks.
package version

const (
	// Cairn is this release of Cairn.
	Cairn = "0.1.0-dev"
	// Etcd is the etcd server version Cairn reports to clients (Status,
	// /version), because Kubernetes and other clients switch features on it.
	Etcd = "3.7.0"
	// EtcdCluster is the cluster version reported in /version.
	EtcdCluster = "3.7.0"
	// EtcdStorage is the etcd storage schema Cairn's database follows
	// (bucket names, key and value formats), recorded in its meta bucket as
	// etcd records it.
	EtcdStorage = "3.7.0"
)
