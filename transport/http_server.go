package transport

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	"go.uber.org/zap"
)

// checkRequest checks the method and identity headers of an inbound peer
// request and returns the sender's ID. If the request is refused it has
// been answered and ok is false.
func (t *HTTP) checkRequest(w http.ResponseWriter, r *http.Request) (from uint64, ok bool) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		http.Error(w, "cairn: method not allowed", http.StatusMethodNotAllowed)
		return 0, false
	}
	cid, err1 := strconv.ParseUint(r.Header.Get(HeaderClusterID), 16, 64)
	from, err2 := strconv.ParseUint(r.Header.Get(HeaderFrom), 16, 64)
	to, err3 := strconv.ParseUint(r.Header.Get(HeaderTo), 16, 64)
	if err := errors.Join(err1, err2, err3); err != nil {
		http.Error(w, "cairn: bad peer identity headers: "+err.Error(), http.StatusBadRequest)
		return 0, false
	}
	if cid != t.cfg.ClusterID {
		t.lg.Warn("refused request from a member of another cluster",
			zap.String("remote-peer-id", idString(from)),
			zap.String("local-cluster-id", idString(t.cfg.ClusterID)),
			zap.String("remote-cluster-id", idString(cid)))
		w.Header().Set(HeaderReject, "cluster-id")
		http.Error(w, fmt.Sprintf("cairn: cluster ID mismatch: member %s belongs to cluster %s, the request from member %s is for cluster %s",
			idString(t.cfg.ID), idString(t.cfg.ClusterID), idString(from), idString(cid)), http.StatusPreconditionFailed)
		return 0, false
	}
	if to != t.cfg.ID {
		t.lg.Warn("refused request meant for another member",
			zap.String("remote-peer-id", idString(from)), zap.String("target-member-id", idString(to)))
		w.Header().Set(HeaderReject, "member-id")
		http.Error(w, fmt.Sprintf("cairn: member ID mismatch: the request from member %s is for member %s, this is member %s",
			idString(from), idString(to), idString(t.cfg.ID)), http.StatusPreconditionFailed)
		return 0, false
	}
	if t.isGone(from) {
		http.Error(w, fmt.Sprintf("cairn: member %s was removed from the cluster", idString(from)), http.StatusGone)
		return 0, false
	}
	closed, peer := t.peerState(from)
	if closed {
		// Close forgot the peers: every sender would look unknown (403)
		// where the truth is that this member is going away.
		http.Error(w, "cairn: peer transport is closed", http.StatusServiceUnavailable)
		return 0, false
	}
	if !peer {
		t.refuseNonMember(w, r, from)
		return 0, false
	}
	return from, true
}

// markGone records that the Handler refused from as a removed member.
func (t *HTTP) markGone(from uint64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.gone == nil {
		t.gone = map[uint64]bool{}
	}
	if !t.gone[from] {
		t.lg.Warn("refusing a member removed from the cluster", zap.String("remote-peer-id", idString(from)))
	}
	t.gone[from] = true
}

func (t *HTTP) isGone(from uint64) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.gone[from]
}

// enterRequest registers an inbound request with the transport. The
// returned context is canceled when the request ends or the transport
// closes, and closing also unblocks reads of the request body. The caller
// must call leave when done. If the transport is closed the request has
// been answered 503 and ok is false.
func (t *HTTP) enterRequest(w http.ResponseWriter, r *http.Request) (ctx context.Context, leave func(), ok bool) {
	if !t.enter() {
		http.Error(w, "cairn: peer transport is closed", http.StatusServiceUnavailable)
		return nil, nil, false
	}
	ctx, cancel := context.WithCancel(r.Context())
	rc := http.NewResponseController(w)
	fired := make(chan struct{})
	stop := context.AfterFunc(t.ctx, func() {
		defer close(fired)
		cancel()
		_ = rc.SetReadDeadline(time.Now())
	})
	leave = func() {
		if !stop() {
			<-fired // the ResponseWriter must not be used after we return
		}
		cancel()
		t.wg.Done()
	}
	return ctx, leave, true
}

// serveStream receives a long-lived stream of frames from one peer and
// hands each message to the Handler, in order.
func (t *HTTP) serveStream(w http.ResponseWriter, r *http.Request) {
	from, ok := t.checkRequest(w, r)
	if !ok {
		return
	}
	ctx, leave, ok := t.enterRequest(w, r)
	if !ok {
		return
	}
	defer leave()
	lg := t.lg.With(zap.String("remote-peer-id", idString(from)))
	recvFailures := t.m.recvFailures.WithLabelValues(idString(from))
	// The frames count as received bytes, as they counted as sent ones.
	body := countingReader{r: r.Body, c: t.m.receivedBytes.WithLabelValues(idString(from))}

	// Read the magic (this sends 100 Continue), answer, then keep reading
	// the body: the sender waits for the answer before writing messages,
	// and HTTP/1 needs full duplex for that.
	rc := http.NewResponseController(w)
	_ = rc.EnableFullDuplex() // HTTP/2 is always full duplex
	var magic [len(streamMagic)]byte
	if _, err := io.ReadFull(r.Body, magic[:]); err != nil || string(magic[:]) != streamMagic {
		recvFailures.Inc()
		lg.Warn("refused stream from peer: bad preamble", zap.ByteString("preamble", magic[:]), zap.Error(err))
		http.Error(w, "cairn: unknown stream protocol", http.StatusBadRequest)
		return
	}
	w.WriteHeader(http.StatusOK)
	if err := rc.Flush(); err != nil {
		lg.Warn("cannot answer stream from peer", zap.Error(err))
		return
	}
	lg.Info("accepted stream from peer")
	dec := newFrameReader(body)
	for {
		m, err := dec.next()
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, io.EOF) {
				lg.Info("stream from peer ended", zap.NamedError("reason", err))
			} else if errors.Is(err, ErrFrameTooLarge) || errors.Is(err, ErrMalformedFrame) {
				recvFailures.Inc()
				t.malformedStream(w, from, err)
			} else {
				recvFailures.Inc()
				lg.Warn("stream from peer broke", zap.Error(err))
			}
			return
		}
		if err := t.cfg.Handler.Process(ctx, m); err != nil {
			if errors.Is(err, ErrSenderRemoved) {
				// End the stream: the sender reconnects and is answered
				// 410 Gone, which tells it to stop.
				t.markGone(from)
				return
			}
			if ctx.Err() != nil {
				return
			}
			recvFailures.Inc()
			lg.Warn("failed to process message from peer", zap.Stringer("type", m.GetType()), zap.Error(err))
		}
	}
}
