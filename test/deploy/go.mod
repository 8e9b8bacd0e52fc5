module github.com/cairnkv/cairn/test/deploy

go 1.26.8

require (
	github.com/cairnkv/cairn v0.0.0-00010101000000-000000000000
	sigs.k8s.io/yaml v1.6.0
)

require (
	go.etcd.io/etcd/client/pkg/v3 v3.7.3 // indirect
	go.yaml.in/yaml/v2 v2.4.4 // indirect
)

replace github.com/cairnkv/cairn => ../..
