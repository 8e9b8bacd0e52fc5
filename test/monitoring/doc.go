// Package monitoring tests the Grafana dashboard and the Prometheus alert
// rules in monitoring/: the rules are valid (Prometheus' own rule parser,
// and promtool when it is on PATH), every expression parses, and every
// metric they read is exported by a running three-member Cairn cluster.
//
// It is its own module so that Prometheus' server code (its PromQL and
// rule-file parsers) never enters Cairn's go.mod; `make test-monitoring`
// runs it, and `make test` includes it.
package monitoring
