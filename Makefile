# Cairn build, test and run targets. `make help` lists them.
SHELL := /bin/bash
GO    ?= go
BIN   := bin
PKGS  := ./...
BENCHTIME ?= 1s
# The git version stamped into cairn and cairnctl (cairn --version, /version).
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null)
LDFLAGS   := -X github.com/cairnkv/cairn/version.Git=$(VERSION)
DIST      ?= dist
PLATFORMS ?= linux/amd64 linux/arm64

.PHONY: help build release run run-cluster test test-k8s test-monitoring test-etcdcompat test-deploy test-v2client test-console unit lint vet fmt-check archlint sim sim-long chaos chaos-long bench bench-snapshot bench-compare fuzz clean

help:
	@echo "make build       binaries into $(BIN)/: cairn, cairnctl, etcdctl, bench, chaos"
	@echo "make release     static cairn, cairnctl, etcdctl for $(PLATFORMS) into $(DIST)/, with SHA256SUMS"
	@echo "make run         one-node cairn on localhost, data under ./data"
	@echo "make run-cluster three-node local cluster"
	@echo "make test        lint + unit and end-to-end tests (-race) + sim swarm + test-k8s + test-monitoring + test-etcdcompat + test-deploy + test-v2client (what CI runs)"
	@echo "make test-k8s    Kubernetes' storage conformance tests against cairn (test/k8s)"
	@echo "make test-monitoring  the Grafana dashboard and alert rules (monitoring/) against a cairn cluster"
	@echo "make test-etcdcompat  snapshots and HashKV against etcd 3.7.3 and etcdutl (test/etcdcompat)"
	@echo "make test-v2client  etcd 3.5's v2 client library against cairn --enable-v2 (test/v2client)"
	@echo "make test-console  the web console in headless Chromium against a three-member cluster (test/console)"
	@echo "make test-deploy the packaging: versions stamped by build and release, the systemd unit, the image and compose cluster (test/deploy)"
	@echo "make sim         short deterministic simulation swarm"
	@echo "make sim-long    long simulation swarm across all cores"
	@echo "make chaos       Jepsen-style fault runs of the real binary"
	@echo "make chaos-long  30-minute soak per cluster size (3, 5) with every fault kind, disk faults on FUSE (DURATION, SEED, NODES, OUT)"
	@echo "make bench       benchmarks"
	@echo "make bench-snapshot  a follower catching up from a 2 GiB database (streamed snapshot)"
	@echo "make bench-compare   cmd/bench: cairn against etcd 3.7.3 side by side (ETCD=path; QUICK=1, ROUNDS, TOTAL, MEMBERS, OUT)"
	@echo "make lint        gofmt check, go vet and the architecture rules (archlint)"
	@echo "make clean       remove build output and local data"

build:
	@mkdir -p $(BIN)
	$(GO) build -ldflags '$(LDFLAGS)' -o $(BIN)/ ./cmd/...
	$(GO) build -o $(BIN)/etcdctl go.etcd.io/etcd/etcdctl/v3

# Static binaries (CGO_ENABLED=0) of cairn, cairnctl and etcdctl for each of
# PLATFORMS, stamped with VERSION: $(DIST)/cairn-VERSION-OS-ARCH/ and its
# .tar.gz, and $(DIST)/SHA256SUMS of every file (`cd dist && sha256sum -c SHA256SUMS`).
release:
	@test -n "$(VERSION)" || { echo "make release: no VERSION (not a git checkout? pass VERSION=...)"; exit 1; }
	rm -rf $(DIST) && mkdir -p $(DIST)
	set -e; for p in $(PLATFORMS); do \
		os=$${p%/*}; arch=$${p#*/}; name=cairn-$(VERSION)-$$os-$$arch; \
		echo "$$name"; mkdir -p $(DIST)/$$name; \
		CGO_ENABLED=0 GOOS=$$os GOARCH=$$arch $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(DIST)/$$name/ ./cmd/cairn ./cmd/cairnctl; \
		CGO_ENABLED=0 GOOS=$$os GOARCH=$$arch $(GO) build -trimpath -o $(DIST)/$$name/etcdctl go.etcd.io/etcd/etcdctl/v3; \
		tar -C $(DIST) --owner=0 --group=0 -czf $(DIST)/$$name.tar.gz $$name; \
	done
	cd $(DIST) && find . -type f ! -name SHA256SUMS | sed 's|^\./||' | LC_ALL=C sort | xargs sha256sum > SHA256SUMS
	@cat $(DIST)/SHA256SUMS

run: build
	@mkdir -p data
	./$(BIN)/cairn --name default --data-dir data/default.etcd \
		--listen-client-urls http://127.0.0.1:2379 --advertise-client-urls http://127.0.0.1:2379 \
		--listen-peer-urls http://127.0.0.1:2380 --initial-advertise-peer-urls http://127.0.0.1:2380 \
		--initial-cluster default=http://127.0.0.1:2380

run-cluster: build
	./scripts/run-cluster.sh

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go'; git ls-files --others --exclude-standard '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt needed on:"; echo "$$out"; exit 1; fi

vet:
	$(GO) vet $(PKGS)

# The architecture rules that keep the core simulatable (scripts/archlint).
archlint:
	$(GO) run ./scripts/archlint

lint: fmt-check vet archlint

unit:
	$(GO) test -race -count=1 -timeout 10m $(PKGS)

test: lint unit sim test-k8s test-monitoring test-etcdcompat test-deploy test-v2client test-console

# Kubernetes' own storage conformance functions (k8s.io/apiserver) against
# a cairn built from this tree; test/k8s is its own module, so k8s.io/*
# never enters Cairn's go.mod.
test-k8s:
	cd test/k8s && $(GO) vet ./... && $(GO) test -count=1 -timeout 30m ./...

# The Grafana dashboard and Prometheus rules of monitoring/: valid (with
# Prometheus' parsers, and promtool when it is on PATH), and every metric
# they read exported by a running cluster. test/monitoring is its own
# module, so Prometheus' server code never enters Cairn's go.mod.
test-monitoring:
	cd test/monitoring && $(GO) vet ./... && $(GO) test -count=1 -timeout 10m ./...

# Cairn's data and etcd 3.7's, interchangeable: a Cairn snapshot restored
# with etcdutl starts the real etcd 3.7.3, an etcd snapshot restored with
# etcdutl starts cairn, a round trip changes nothing, and HashKV agrees
# with etcd's. test/etcdcompat is its own module, which builds etcd and
# etcdutl from source (its go.mod's tools), so etcd's server never enters
# Cairn's go.mod. CAIRN_ETCDCOMPAT_{CAIRN,ETCD,ETCDUTL} name prebuilt
# binaries to use instead.
test-etcdcompat:
	cd test/etcdcompat && $(GO) vet ./... && $(GO) test -count=1 -timeout 15m ./...

# etcd 3.5's own v2 client library (go.etcd.io/etcd/client/v2) against a
# three-member cairn with --enable-v2 (#17). test/v2client is its own module,
# so the v2 client never enters Cairn's go.mod.
test-v2client:
	cd test/v2client && $(GO) vet ./... && $(GO) test -count=1 -timeout 10m ./...

# The web console (#19, docs/console.md) in a real headless Chromium,
# driven by chromedp, against a three-member cluster; screenshots of each
# page go to CAIRN_CONSOLE_SCREENSHOTS (else a temporary directory the log
# names). test/console is its own module, so chromedp stays out of Cairn's
# go.mod. Without Chromium (CAIRN_CONSOLE_CHROMIUM, else chromium on PATH)
# the target installs Debian's chromium when it runs as root (as CI does),
# and fails if that fails. Not root, it cannot install it: it then says in
# a banner that the browser tests did NOT run and exits 0, so that `make
# test` still runs on a developer's machine without a browser.
CHROMIUM ?= $(or $(CAIRN_CONSOLE_CHROMIUM),$(shell command -v chromium || command -v chromium-browser || command -v google-chrome))
test-console:
	cd test/console && $(GO) vet ./...
	@chromium='$(CHROMIUM)'; \
	if [ -z "$$chromium" ] && [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		echo "test-console: no Chromium; installing Debian's chromium"; \
		{ apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; } || { echo "test-console: installing chromium failed"; exit 1; }; \
		chromium=$$(command -v chromium); \
	fi; \
	if [ -z "$$chromium" ]; then \
		echo "=================================================================="; \
		echo "test-console: NOT RUN: no Chromium, and not root to install it."; \
		echo "  The web console's browser tests (test/console) did not run."; \
		echo "  Install it (apt-get install chromium) or set CAIRN_CONSOLE_CHROMIUM."; \
		echo "=================================================================="; \
		exit 0; \
	fi; \
	cd test/console && CAIRN_CONSOLE_CHROMIUM="$$chromium" $(GO) test -count=1 -timeout 10m ./...

# The packaging (#20): make build and make release stamp the git version
# (cairn --version, /version), the systemd unit (systemd-analyze verify where
# it is) and the three-member set-up of its environment file, the Dockerfile
# and compose.yaml (the image built and the cluster run where podman or
# docker can run; the log says when none can). test/deploy is its own
# module, so these slow tests stay out of `go test ./...`.
test-deploy:
	cd test/deploy && $(GO) vet ./... && $(GO) test -count=1 -timeout 30m ./...

# A short swarm (200 seeds, each 8s of virtual time) and proof that the
# simulator catches each planted bug. The swarm runs in local directory
# mode, so its one-line summary (runs, inconclusive checks) is printed.
sim:
	cd sim && $(GO) test -count=1 -tags invariants -run 'TestSim$$' -args -seeds=200
	$(GO) test -count=1 -tags cairnbugs,invariants ./sim -run 'TestPlantedBugsAreFound|TestCorruptionRaisesTheAlarm|TestNewChecksCatchTheirBugs'

# SEEDS seeds (default 2000) over one process per core; prints runs/s.
sim-long:
	./scripts/sim-long.sh

# Jepsen-style runs of the real binary: 3 and 5 members through kill, pause
# and partition schedules, then a planted bug that must be reported.
# DURATION, SEED, FAULTS and OUT are passed to scripts/chaos.sh.
chaos:
	./scripts/chaos.sh

# The long soak: one run per cluster size (3 and 5 members) with every
# fault kind, power cuts and failing disks on FUSE data dirs included
# (docs/chaos.md). DURATION (default 30m), SEED, NODES, FAULTS and OUT are
# passed to scripts/chaos-long.sh.
chaos-long:
	./scripts/chaos-long.sh

# Benchmarks of every package; figures in README.md come from here.
bench:
	$(GO) test -run '^$$' -bench . -benchmem -benchtime $(BENCHTIME) $(PKGS) | tee bench.txt

# A follower catching up from a 2 GiB database through a streamed snapshot:
# no election, and neither member holds the database in memory (#12).
bench-snapshot:
	CAIRN_E2E_SNAPSHOT_BYTES=$${CAIRN_E2E_SNAPSHOT_BYTES:-2147483648} $(GO) test ./e2e -run '^TestFollowerCatchesUpThroughStreamedSnapshot$$' -count=1 -v -timeout 30m

# cmd/bench against etcd 3.7.3 (ETCD, default /work/tools/bin/etcd): the
# headline workloads on 1 and 3 members, alternating rounds, medians and
# cairn/etcd ratios as markdown, JSON and HTML (scripts/bench-compare.sh,
# docs/performance.md).
bench-compare: build
	./scripts/bench-compare.sh

fuzz:
	$(GO) test ./node/wal -run '^$$' -fuzz FuzzDecodeRecord -fuzztime 60s

clean:
	rm -rf $(BIN) $(DIST) data bench.txt
