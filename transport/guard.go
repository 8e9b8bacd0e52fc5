package transport

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"time"

	"go.uber.org/zap"
)

// The peer listener talks to members only: a request from a sender that
// is not a peer of this transport (not a member of the cluster as this
// member knows it) is refused with 403 before its body is read, and a
// stream that carries something other than frames of raft messages is
// cut. Each is logged once per sender and reason, so a misconfigured or
// hostile process cannot flood the log.

// maxWarned bounds warnOnce's memory: past it, refusals are logged at
// debug level only.
const maxWarned = 1024

// warnOnce remembers what was logged as a warning.
type warnOnce struct {
	mu   sync.Mutex
	seen map[string]bool
}

// first reports whether key was not logged yet, and records it.
func (o *warnOnce) first(key string) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.seen[key] || len(o.seen) >= maxWarned {
		return false
	}
	if o.seen == nil {
		o.seen = map[string]bool{}
	}
	o.seen[key] = true
	return true
}

// warnOnceFor logs msg as a warning the first time for key, and at debug
// level afterwards.
func (t *HTTP) warnOnceFor(key, msg string, fields ...zap.Field) {
	if t.warned.first(key) {
		t.lg.Warn(msg+" (logged once per sender)", fields...)
		return
	}
	t.lg.Debug(msg, fields...)
}

// peerState reports, at one instant, whether Close was called and whether
// id is a peer.
func (t *HTTP) peerState(id uint64) (closed, peer bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.closed, t.peers[id] != nil
}

// isPeer reports whether id is a peer of the transport.
func (t *HTTP) isPeer(id uint64) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.peers[id] != nil
}

// RemovedChecker is implemented by a Handler that knows which members
// were removed from the cluster: their requests are answered 410 Gone
// (which stops them), where other non-members get 403.
type RemovedChecker interface {
	IsRemoved(id uint64) bool
}

// refuseNonMember answers a request from a sender that is not a peer:
// 410 Gone if it was removed from the cluster, 403 otherwise.
func (t *HTTP) refuseNonMember(w http.ResponseWriter, r *http.Request, from uint64) {
	if rc, ok := t.cfg.Handler.(RemovedChecker); ok && rc.IsRemoved(from) {
		t.markGone(from)
		http.Error(w, fmt.Sprintf("cairn: member %s was removed from the cluster", idString(from)), http.StatusGone)
		return
	}
	t.verifyLater(from)
	t.warnOnceFor("unknown\x00"+idString(from), "refused a request from an unknown member",
		zap.String("remote-peer-id", idString(from)), zap.String("remote-addr", r.RemoteAddr), zap.String("path", r.URL.Path))
	w.Header().Set(HeaderReject, "unknown-member")
	w.Header().Set("Connection", "close") // the body is not read
	http.Error(w, fmt.Sprintf("cairn: member %s does not know member %s: not a member of the cluster", idString(t.cfg.ID), idString(from)),
		http.StatusForbidden)
}

// malformedStream ends a stream whose bytes are not frames of raft
// messages. Its answer (200) is already sent, so the connection is cut:
// hijacked and closed where the protocol allows (HTTP/1), otherwise
// aborted with http.ErrAbortHandler, which net/http handles without
// logging.
func (t *HTTP) malformedStream(w http.ResponseWriter, from uint64, err error) {
	t.warnOnceFor("malformed\x00"+idString(from), "cut a stream from peer: malformed frame",
		zap.String("remote-peer-id", idString(from)), zap.Error(err))
	if conn, _, herr := http.NewResponseController(w).Hijack(); herr == nil {
		_ = conn.Close()
		return
	}
	panic(http.ErrAbortHandler)
}

// How often a sender may be checked with VerifyMember, how many checks
// may run at once, and how long one may take.
const (
	memberCheckEvery   = 2 * time.Second
	maxMemberChecks    = 2
	memberCheckTimeout = 5 * time.Second
)

// memberChecks rate-limits the VerifyMember calls.
type memberChecks struct {
	mu       sync.Mutex
	last     map[uint64]time.Time
	inflight int
}

// verifyLater asks HTTPConfig.VerifyMember, in the background, whether
// the refused sender id is a member this member does not know yet (one
// added while it was down or behind, which may even lead); if so it
// becomes a peer, and its next stream is accepted. Checks are limited per
// ID and in number, so strangers cannot make this member flood its peers.
func (t *HTTP) verifyLater(id uint64) {
	if t.cfg.VerifyMember == nil {
		return
	}
	c := &t.checks
	c.mu.Lock()
	now := time.Now()
	if last, ok := c.last[id]; (ok && now.Sub(last) < memberCheckEvery) || c.inflight >= maxMemberChecks {
		c.mu.Unlock()
		return
	}
	if c.last == nil || len(c.last) >= maxWarned {
		c.last = map[uint64]time.Time{}
	}
	c.last[id] = now
	c.inflight++
	c.mu.Unlock()
	done := func() {
		c.mu.Lock()
		c.inflight--
		c.mu.Unlock()
	}
	if !t.enter() {
		done()
		return
	}
	go func() {
		defer t.wg.Done()
		defer done()
		ctx, cancel := context.WithTimeout(t.ctx, memberCheckTimeout)
		urls, ok := t.cfg.VerifyMember(ctx, id)
		cancel()
		if !ok || len(urls) == 0 {
			return
		}
		t.lg.Info("the cluster's members list a member this one does not know yet; accepting it as a peer",
			zap.String("remote-peer-id", idString(id)), zap.Strings("urls", urls))
		t.AddPeer(id, urls)
	}()
}
