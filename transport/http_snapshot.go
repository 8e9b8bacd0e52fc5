package transport

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
	"go.uber.org/zap"
)

// SendSnapshot implements Transport.
func (t *HTTP) SendSnapshot(m *raftpb.Message, db SnapshotBody) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.goSnapshot(m, db)
}

// goSnapshot sends m with db on a goroutine of its own. t.mu is held.
func (t *HTTP) goSnapshot(m *raftpb.Message, db SnapshotBody) {
	if t.closed {
		_ = db.Close()
		return
	}
	to := m.GetTo()
	p := t.peers[to]
	if p == nil {
		_ = db.Close()
		t.lg.Debug("dropped snapshot to unknown peer", zap.String("remote-peer-id", idString(to)))
		t.rep.unreachable(to)
		t.rep.snapshot(to, raft.SnapshotFailure)
		return
	}
	p.snaps.Add(1)
	t.wg.Go(func() {
		defer p.snaps.Done()
		defer func() { _ = db.Close() }()
		t.sendSnapshot(p, m, db)
	})
}

// bytesBody is a SnapshotBody over data already in memory.
type bytesBody []byte

func (b bytesBody) Size() int64                        { return int64(len(b)) }
func (b bytesBody) WriteTo(w io.Writer) (int64, error) { n, err := w.Write(b); return int64(n), err }
func (bytesBody) Close() error                         { return nil }

// sendSnapshot POSTs the MsgSnap m with db to p and reports the outcome. It
// tries the peer's URLs in order until one answers. Nothing is reported if p
// is stopped meanwhile.
func (t *HTTP) sendSnapshot(p *peer, m *raftpb.Message, db SnapshotBody) {
	meta := m.GetSnapshot().GetMetadata()
	lg := p.lg.With(zap.Uint64("snapshot-index", meta.GetIndex()), zap.Uint64("snapshot-term", meta.GetTerm()))
	to := idString(p.id)
	start := time.Now()
	inflight := t.m.snapSendInflight.WithLabelValues(to)
	inflight.Inc()
	defer inflight.Dec()
	failed := func() {
		p.m.sentFailures.Inc()
		t.m.snapSendFailures.WithLabelValues(to).Inc()
		t.rep.snapshot(p.id, raft.SnapshotFailure)
	}
	head, err := snapshotHead(m, db.Size())
	if err != nil {
		lg.Error("cannot marshal snapshot message", zap.Error(err))
		failed()
		return
	}
	size := int64(len(head)) + db.Size()
	lg.Info("sending snapshot", zap.Int64("size-bytes", size))
	var errs []error
	for _, u := range p.orderedURLs() {
		err := t.postSnapshot(p, u, head, db, lg)
		if p.ctx.Err() != nil {
			return
		}
		if err == nil {
			lg.Info("sent snapshot", zap.String("url", u), zap.Int64("size-bytes", size))
			p.m.sentBytes.Add(float64(size))
			t.m.snapSend.WithLabelValues(to).Inc()
			t.m.snapSendSeconds.WithLabelValues(to).Observe(time.Since(start).Seconds())
			t.rep.snapshot(p.id, raft.SnapshotFinish)
			return
		}
		errs = append(errs, err)
		var answered *answerError
		if errors.As(err, &answered) {
			break // the peer refused it; another URL reaches the same peer
		}
	}
	if len(errs) == 0 {
		errs = append(errs, errors.New("transport: peer has no URLs"))
	}
	err = errors.Join(errs...)
	lg.Warn("failed to send snapshot", zap.Int64("size-bytes", size), zap.Error(err))
	if errors.Is(err, ErrRemoved) {
		t.rep.removed(p.id)
	}
	t.rep.unreachable(p.id)
	failed()
}

// answerError is a snapshot refused by the peer, as opposed to a peer that
// could not be reached.
type answerError struct{ err error }

func (e *answerError) Error() string { return e.err.Error() }
func (e *answerError) Unwrap() error { return e.err }

// postSnapshot sends head then the database in one POST to SnapshotPath at
// u. The database is written into the request as it goes out, never held
// in memory.
func (t *HTTP) postSnapshot(p *peer, u string, head []byte, db SnapshotBody, lg *zap.Logger) error {
	size := int64(len(head)) + db.Size()
	pr, pw := io.Pipe()
	wrote := make(chan struct{})
	go func() {
		defer close(wrote)
		_, err := pw.Write(head)
		if err == nil {
			_, err = db.WriteTo(pw)
		}
		_ = pw.CloseWithError(err)
	}()
	defer func() {
		// The request is over: stop the writer (if the body was not read
		// to its end) and wait for it, so db is free for another attempt.
		_ = pr.CloseWithError(errors.New("transport: snapshot request ended"))
		<-wrote
	}()
	body := &progressReader{r: pr, total: size, report: func(n, total int64) {
		lg.Info("sending snapshot: progress", zap.Int64("sent-bytes", n), zap.Int64("size-bytes", total))
	}}
	req, err := http.NewRequestWithContext(p.ctx, http.MethodPost, strings.TrimSuffix(u, "/")+SnapshotPath, body)
	if err != nil {
		return fmt.Errorf("transport: snapshot request to %s: %w", u, err)
	}
	req.ContentLength = size
	t.setHeaders(req, p.id)
	// A peer that refuses the snapshot says so before we send it.
	req.Header.Set("Expect", "100-continue")
	resp, err := t.client.Do(req)
	if err != nil {
		return fmt.Errorf("transport: send snapshot to %s: %w", u, err)
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
	if resp.StatusCode != http.StatusNoContent {
		return &answerError{fmt.Errorf("transport: send snapshot to %s: %w", u, rejection(resp, strings.TrimSpace(string(msg))))}
	}
	return nil
}

// progressReader counts what is read through it and calls report at every
// multiple of snapshotProgressBytes below total, and once at the end.
type progressReader struct {
	r      io.Reader
	total  int64 // expected size, -1 if unknown
	n      int64
	next   int64
	report func(n, total int64)
	ended  bool
}

func (pr *progressReader) Read(b []byte) (int, error) {
	n, err := pr.r.Read(b)
	pr.n += int64(n)
	if pr.next == 0 {
		pr.next = snapshotProgressBytes
	}
	for pr.n >= pr.next {
		if pr.next != pr.total {
			pr.report(pr.next, pr.total)
		}
		pr.next += snapshotProgressBytes
	}
	if !pr.ended && (err == io.EOF || pr.n == pr.total) {
		pr.ended = true
		pr.report(pr.n, pr.total)
	}
	return n, err
}

// serveSnapshot receives one MsgSnap and hands it to the Handler. It
// answers 204 once Process accepted it.
func (t *HTTP) serveSnapshot(w http.ResponseWriter, r *http.Request) {
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
	start := time.Now()
	inflight := t.m.snapRecvInflight.WithLabelValues(idString(from))
	inflight.Inc()
	defer inflight.Dec()
	received := false
	defer func() {
		if received {
			t.m.snapRecv.WithLabelValues(idString(from)).Inc()
			t.m.snapRecvSeconds.WithLabelValues(idString(from)).Observe(time.Since(start).Seconds())
		} else {
			t.m.recvFailures.WithLabelValues(idString(from)).Inc()
			t.m.snapRecvFailures.WithLabelValues(idString(from)).Inc()
		}
	}()
	size := r.ContentLength
	if size > maxSnapshotBytes {
		lg.Warn("refused snapshot: too large", zap.Int64("size-bytes", size))
		http.Error(w, fmt.Sprintf("cairn: snapshot of %d bytes exceeds the limit of %d", size, int64(maxSnapshotBytes)), http.StatusRequestEntityTooLarge)
		return
	}
	lg.Info("receiving snapshot", zap.Int64("size-bytes", size))
	counted := countingReader{r: r.Body, c: t.m.receivedBytes.WithLabelValues(idString(from))}
	body := &progressReader{r: io.LimitReader(counted, maxSnapshotBytes+maxSnapshotFieldBytes), total: size, report: func(n, total int64) {
		lg.Info("receiving snapshot: progress", zap.Int64("received-bytes", n), zap.Int64("size-bytes", total))
	}}
	var handlerErr error
	err := decodeSnapshot(bufio.NewReaderSize(body, 64<<10), maxSnapshotBytes, func(m *raftpb.Message, data io.Reader, dataSize int64) error {
		if m.GetType() != raftpb.MsgSnap {
			return fmt.Errorf("%w: snapshot path got a %v", errMalformed, m.GetType())
		}
		if m.GetFrom() != from {
			return fmt.Errorf("%w: a snapshot from %s sent by %s", errMalformed, idString(m.GetFrom()), idString(from))
		}
		meta := m.GetSnapshot().GetMetadata()
		lg.Info("receiving snapshot database", zap.Int64("size-bytes", dataSize),
			zap.Uint64("snapshot-index", meta.GetIndex()), zap.Uint64("snapshot-term", meta.GetTerm()))
		handlerErr = t.cfg.Handler.ProcessSnapshot(ctx, m, data)
		return handlerErr
	})
	switch {
	case err == nil:
	case handlerErr != nil && errors.Is(handlerErr, ErrSenderRemoved):
		t.markGone(from)
		http.Error(w, fmt.Sprintf("cairn: member %s was removed from the cluster", idString(from)), http.StatusGone)
		return
	case handlerErr != nil:
		lg.Warn("failed to process snapshot", zap.Error(handlerErr))
		http.Error(w, "cairn: processing snapshot: "+handlerErr.Error(), http.StatusInternalServerError)
		return
	case errors.Is(err, errTooLarge):
		lg.Warn("refused snapshot: too large", zap.Int64("received-bytes", body.n), zap.Error(err))
		http.Error(w, "cairn: "+err.Error(), http.StatusRequestEntityTooLarge)
		return
	case errors.Is(err, errMalformed):
		lg.Warn("refused snapshot: cannot decode", zap.Int64("received-bytes", body.n), zap.Error(err))
		http.Error(w, "cairn: decoding snapshot: "+err.Error(), http.StatusBadRequest)
		return
	default:
		lg.Warn("failed to receive snapshot", zap.Int64("received-bytes", body.n), zap.Error(err))
		http.Error(w, "cairn: reading snapshot: "+err.Error(), http.StatusBadRequest)
		return
	}
	lg.Info("received snapshot", zap.Int64("size-bytes", body.n))
	received = true
	w.WriteHeader(http.StatusNoContent)
}
