// Package deploy tests Cairn's packaging (issue #20): the container image
// (Dockerfile) and compose.yaml, the systemd unit and its environment file,
// the version that make build and make release stamp into the binaries, and
// a rolling upgrade from the previous build. It is its own module, run by `make test-deploy`, so that its
// slow tests (building the image, systemd in containers, make release) stay
// out of `go test ./...`.
//
// What the machine lacks is said in the test log as a plain fact (no
// container runtime, no systemd-analyze), never as a skip: the checks that
// need nothing but the files still run.
package deploy
