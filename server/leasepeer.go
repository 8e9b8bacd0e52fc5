package server

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"google.golang.org/protobuf/proto"

	"github.com/cairnkv/cairn/lease"
	"github.com/cairnkv/cairn/transport"
)

// Lease keep-alives and time-to-live taken by a follower go to the leader
// over the peer port, as etcd's (its /leases and /leases/internal): the
// follower has checked the caller (its token or its client certificate)
// against the lease's keys itself, and the leader serves a member's
// request without checking again. Only members reach the peer port when
// it requires certificates of the cluster's CA (--peer-client-cert-auth):
// nothing outside the cluster can make such a request, and a caller's
// credentials are never replaced by the forwarding member's own.
const (
	// LeaseRenewPath renews the lease of a pb.LeaseKeepAliveRequest
	// body; the answer is a pb.LeaseKeepAliveResponse.
	LeaseRenewPath = "/cairn/lease/renew"
	// LeaseTimeToLivePath answers a pb.LeaseTimeToLiveRequest body
	// with a pb.LeaseTimeToLiveResponse.
	LeaseTimeToLivePath = "/cairn/lease/ttl"
)

// leaseErrHeader names, on a non-200 answer of the lease paths, the
// lessor's error: a member that does not serve these paths (an older
// version, during a rolling upgrade) answers without it.
const leaseErrHeader = "X-Cairn-Lease-Error"

const (
	leaseErrNotFound   = "not-found"
	leaseErrNotPrimary = "not-primary"
)

// maxLeasePeerBody bounds a lease request's body (an ID and a flag).
const maxLeasePeerBody = 1 << 10

// LeasePeerHandler serves LeaseRenewPath and LeaseTimeToLivePath on the
// peer listener.
func (s *Server) LeasePeerHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			http.Error(w, "cairn: POST only", http.StatusMethodNotAllowed)
			return
		}
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxLeasePeerBody))
		if err != nil {
			http.Error(w, "cairn: "+err.Error(), http.StatusBadRequest)
			return
		}
		// Members only, as on raft streams: a request that names no
		// member of the cluster is refused before it is looked at. (The
		// header can be forged where the peer port has no mutual TLS;
		// there the network is trusted, as etcd's /leases trusts it.)
		if !s.isMemberSender(r) {
			http.Error(w, "cairn: not a member of this cluster", http.StatusForbidden)
			return
		}
		var resp proto.Message
		if s.Leader() != s.ID() {
			// A remaining TTL is the primary lessor's alone.
			err = lease.ErrNotPrimary
		}
		switch {
		case err != nil:
		case r.URL.Path == LeaseRenewPath:
			var req pb.LeaseKeepAliveRequest
			if err = proto.Unmarshal(body, &req); err == nil {
				var ttl int64
				if ttl, err = s.renewLocal(r.Context(), req.GetID()); err == nil {
					resp = &pb.LeaseKeepAliveResponse{Header: s.LeaseHeader(), ID: req.GetID(), TTL: ttl}
				}
			}
		case r.URL.Path == LeaseTimeToLivePath:
			var req pb.LeaseTimeToLiveRequest
			if err = proto.Unmarshal(body, &req); err == nil {
				resp, err = s.timeToLiveLocal(r.Context(), &req)
			}
		default:
			http.NotFound(w, r)
			return
		}
		switch {
		case errors.Is(err, lease.ErrLeaseNotFound):
			w.Header().Set(leaseErrHeader, leaseErrNotFound)
			http.Error(w, err.Error(), http.StatusNotFound)
			return
		case errors.Is(err, lease.ErrNotPrimary):
			w.Header().Set(leaseErrHeader, leaseErrNotPrimary)
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		case err != nil:
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		writeProto(w, resp)
	})
}

// writeProto answers a peer request with resp, protobuf-encoded.
func writeProto(w http.ResponseWriter, resp proto.Message) {
	b, err := proto.Marshal(resp)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/protobuf")
	_, _ = w.Write(b)
}

// isMemberSender reports whether r names (X-Cairn-From) another member
// of the cluster.
func (s *Server) isMemberSender(r *http.Request) bool {
	from, err := strconv.ParseUint(r.Header.Get(transport.HeaderFrom), 16, 64)
	if err != nil || from == 0 || from == s.ID() {
		return false
	}
	ms, err := s.members(r.Context())
	if err != nil {
		return false
	}
	for _, m := range ms {
		if m.ID == from {
			return true
		}
	}
	return false
}

// errNoLeasePeerPath is a leader that does not serve the path asked (an
// older Cairn): the caller forwards to its client URL instead.
var errNoLeasePeerPath = errors.New("the leader does not serve the request on its peer port")

// peerCall posts req to path on the leader's peer URLs and decodes
// the answer into resp.
func (s *Server) peerCall(ctx context.Context, path string, req, resp proto.Message) error {
	return s.peerCallTo(ctx, s.Leader(), path, req, resp)
}

// peerCallTo is peerCall to member lead.
func (s *Server) peerCallTo(ctx context.Context, lead uint64, path string, req, resp proto.Message) error {
	if lead == 0 {
		return ErrNoLeader
	}
	var urls []string
	if err := s.onLoop(ctx, func() {
		for _, m := range s.core.Members() {
			if m.ID == lead {
				urls = m.PeerURLs
			}
		}
	}); err != nil {
		return err
	}
	if len(urls) == 0 {
		return ErrNoLeader
	}
	body, err := proto.Marshal(req)
	if err != nil {
		return err
	}
	client := s.cfg.PeerClient
	if client == nil {
		client = http.DefaultClient
	}
	var errs []error
	for _, u := range urls {
		hreq, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimSuffix(u, "/")+path, bytes.NewReader(body))
		if err != nil {
			errs = append(errs, err)
			continue
		}
		hreq.Header.Set("Content-Type", "application/protobuf")
		// Who asks, as on raft streams (a network's view of the sender;
		// the leader does not rely on it).
		hreq.Header.Set(transport.HeaderFrom, strconv.FormatUint(s.ID(), 16))
		hresp, err := client.Do(hreq)
		if err != nil {
			if ctx.Err() != nil {
				return ctxError(ctx.Err())
			}
			errs = append(errs, err)
			continue
		}
		b, err := io.ReadAll(io.LimitReader(hresp.Body, 1<<20))
		hresp.Body.Close()
		if err != nil {
			errs = append(errs, err)
			continue
		}
		switch {
		case hresp.StatusCode == http.StatusOK:
			return proto.Unmarshal(b, resp)
		case hresp.Header.Get(leaseErrHeader) == leaseErrNotFound:
			return lease.ErrLeaseNotFound
		case hresp.Header.Get(leaseErrHeader) == leaseErrNotPrimary:
			return lease.ErrNotPrimary
		case hresp.Header.Get(peerErrHeader) != "":
			return peerError(hresp.Header.Get(peerErrHeader))
		case hresp.StatusCode == http.StatusNotFound || hresp.StatusCode == http.StatusMethodNotAllowed:
			return errNoLeasePeerPath
		default:
			errs = append(errs, fmt.Errorf("%s: %s: %s", u, hresp.Status, strings.TrimSpace(string(b))))
		}
	}
	return fmt.Errorf("node: forwarding to leader %x: %w", lead, errors.Join(errs...))
}
