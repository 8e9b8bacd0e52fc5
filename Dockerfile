# syntax=docker/dockerfile:1
# Cairn's container image: cairn, cairnctl and etcdctl on a distroless base,
# running as a non-root user with its data in the /var/lib/cairn volume.
#
#   docker build --build-arg VERSION=$(git describe --tags --always --dirty) -t cairn .
#   docker run -d -p 2379:2379 -v cairn-data:/var/lib/cairn --name cairn cairn
#
# Every etcd 3.7 flag can follow the image name, or be given as its ETCD_*
# variable with -e. The image listens on 0.0.0.0 inside the container; a member
# others reach must advertise its host's address (docs/deploy.md, compose.yaml).
# GO_IMAGE and RUNTIME_IMAGE name the two bases, for a mirror or a local copy.
ARG GO_IMAGE=golang:1.26.8-bookworm
ARG RUNTIME_IMAGE=gcr.io/distroless/static-debian12:nonroot

FROM ${GO_IMAGE} AS build
WORKDIR /src
ENV CGO_ENABLED=0 GOTOOLCHAIN=local GOFLAGS="-trimpath -buildvcs=false"
COPY go.mod go.sum ./
RUN go mod download
COPY . .
# The git version cairn --version and /version report:
# --build-arg VERSION=$(git describe --tags --always --dirty).
ARG VERSION=
RUN go build -ldflags "-X github.com/cairnkv/cairn/version.Git=${VERSION}" -o /out/bin/ ./cmd/cairn ./cmd/cairnctl \
    && go build -o /out/bin/etcdctl go.etcd.io/etcd/etcdctl/v3 \
    && mkdir -p -m 0700 /out/data

FROM ${RUNTIME_IMAGE}
COPY --from=build /out/bin/ /usr/local/bin/
# The data dir, owned by the image's user (distroless' nonroot, 65532) with
# etcd's mode 0700; a new named volume takes both.
COPY --from=build --chown=65532:65532 /out/data /var/lib/cairn
USER 65532:65532
ENV ETCD_DATA_DIR=/var/lib/cairn \
    ETCD_LISTEN_CLIENT_URLS=http://0.0.0.0:2379 \
    ETCD_ADVERTISE_CLIENT_URLS=http://127.0.0.1:2379 \
    ETCD_LISTEN_PEER_URLS=http://0.0.0.0:2380
VOLUME ["/var/lib/cairn"]
EXPOSE 2379 2380
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 \
    CMD ["/usr/local/bin/cairnctl", "check", "health", "http://127.0.0.1:2379/health"]
ENTRYPOINT ["/usr/local/bin/cairn"]
