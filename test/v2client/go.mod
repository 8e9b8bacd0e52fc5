module github.com/cairnkv/cairn/test/v2client

go 1.26.8

require (
	github.com/cairnkv/cairn v0.0.0-00010101000000-000000000000
	go.etcd.io/etcd/client/v2 v2.305.21
)

require (
	github.com/coreos/go-semver v0.3.1 // indirect
	github.com/json-iterator/go v1.1.11 // indirect
	github.com/modern-go/concurrent v0.0.0-20180306012644-bacd9c7ef1dd // indirect
	github.com/modern-go/reflect2 v1.0.1 // indirect
	go.etcd.io/etcd/api/v3 v3.7.3 // indirect
	go.etcd.io/etcd/client/pkg/v3 v3.7.3 // indirect
)

replace github.com/cairnkv/cairn => ../..
