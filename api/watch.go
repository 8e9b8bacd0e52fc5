package api

import (
	"context"
	"errors"
	"io"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/cairnkv/cairn/mvcc"
)

// DefaultProgressNotifyInterval is etcd's --watch-progress-notify-interval.
const DefaultProgressNotifyInterval = 10 * time.Minute

// DefaultSendStallTimeout is how long a watch stream may wait on a client
// that reads nothing before it is cut off.
const DefaultSendStallTimeout = 2 * time.Minute

// errWatchStalled ends a stream whose client stopped reading. It is
// Unavailable so that clientv3 reconnects and resumes every watcher from
// the last revision it received: a client that was only slow loses
// nothing, and one that is gone leaves nothing behind.
var errWatchStalled = status.Error(codes.Unavailable, "etcdserver: watch stream canceled: the client read nothing for too long")

// WatchBackend is what the Watch service needs from a member.
type WatchBackend interface {
	// NewWatchStream opens a watch stream on the member's own store (so a
	// follower serves watches from what it has applied).
	NewWatchStream(bufferLen int) *mvcc.WatchStream
	// WatchHeader returns cluster_id, member_id, raft_term and the store's
	// current revision; the service sets revision per response.
	WatchHeader() *pb.ResponseHeader
}

// WatchMember is the member identity a store-backed WatchBackend reports;
// server.Server implements it.
type WatchMember interface {
	ClusterID() uint64
	ID() uint64
	Term() uint64
}

// StoreWatchBackend returns a WatchBackend serving watches from store, with
// headers from m.
func StoreWatchBackend(store *mvcc.Store, m WatchMember) WatchBackend {
	return storeWatchBackend{store: store, m: m}
}

type storeWatchBackend struct {
	store *mvcc.Store
	m     WatchMember
}

func (b storeWatchBackend) NewWatchStream(n int) *mvcc.WatchStream { return b.store.NewWatchStream(n) }

func (b storeWatchBackend) WatchHeader() *pb.ResponseHeader {
	return &pb.ResponseHeader{ClusterId: b.m.ClusterID(), MemberId: b.m.ID(), RaftTerm: b.m.Term(), Revision: b.store.Rev()}
}

// WatchConfig configures the Watch service. The zero value is usable.
type WatchConfig struct {
	// ProgressNotifyInterval is how often watchers created with
	// progress_notify that got no event meanwhile receive a progress
	// notification. 0 means DefaultProgressNotifyInterval.
	ProgressNotifyInterval time.Duration
	// MaxRequestBytes is --max-request-bytes: a response of a watcher
	// created with fragment is split when it reaches this plus gRPC's
	// 512 KiB allowance, as etcd splits it. 0 means DefaultMaxRequestBytes.
	MaxRequestBytes int
	// BufferLen bounds the responses held per stream for a client that
	// does not read (see mvcc.NewWatchStream). 0 means the mvcc default.
	BufferLen int
	// SendStallTimeout cuts off a stream whose client has not taken a
	// response for this long (etcd waits forever). 0 means
	// DefaultSendStallTimeout.
	SendStallTimeout time.Duration
	Logger           *zap.Logger // nil: no logging
	// Permitted checks the creation of a watcher on [key, rangeEnd) by
	// the stream's user (auth); nil permits every watcher.
	Permitted func(ctx context.Context, key, rangeEnd []byte) error
}

// NewWatchServer returns etcd's Watch service on top of b, for
// Config.Watch.
func NewWatchServer(b WatchBackend, cfg WatchConfig) pb.WatchServer {
	if cfg.ProgressNotifyInterval <= 0 {
		cfg.ProgressNotifyInterval = DefaultProgressNotifyInterval
	}
	if cfg.MaxRequestBytes <= 0 {
		cfg.MaxRequestBytes = DefaultMaxRequestBytes
	}
	if cfg.SendStallTimeout <= 0 {
		cfg.SendStallTimeout = DefaultSendStallTimeout
	}
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	return &watchServer{be: b, cfg: cfg, met: newWatchMetrics()}
}

type watchServer struct {
	pb.UnimplementedWatchServer
	be  WatchBackend
	cfg WatchConfig
	met *watchMetrics // registered by New

	streams     atomic.Int64 // open Watch streams
	lastRelease atomic.Int64 // unix nanoseconds of the last releaseMemory
}

// releaseInterval spaces out releaseMemory, which costs a full collection.
const releaseInterval = 30 * time.Second

// streamDone notes the end of a Watch stream. When the last one ends, the
// memory a burst of watchers used goes back to the operating system now
// rather than over the minutes Go's runtime would take: on a control-plane
// node that memory belongs to the apiserver and the rest.
func (s *watchServer) streamDone() {
	if s.streams.Add(-1) != 0 {
		return
	}
	now := time.Now().UnixNano()
	last := s.lastRelease.Load()
	if now-last < int64(releaseInterval) || !s.lastRelease.CompareAndSwap(last, now) {
		return
	}
	go debug.FreeOSMemory()
}

// watchOpts are the per-watcher options the service (not mvcc) applies.
type watchOpts struct {
	fragment, progress bool
	sentEvents         bool // since the last progress tick
}

// watchSession is one Watch stream.
type watchSession struct {
	srv    *watchServer
	stream grpc.BidiStreamingServer[pb.WatchRequest, pb.WatchResponse]
	ws     *mvcc.WatchStream
	ctrl   chan *pb.WatchResponse

	mu   sync.Mutex // orders option updates with the responses they govern
	opts map[mvcc.WatchID]*watchOpts
	// deferredProgress: a progress request arrived while some watcher was
	// catching up; it is answered once all are synced, as etcd does.
	deferredProgress atomic.Bool
	// sendingSince is when the Send in progress began (unix nanoseconds),
	// 0 when none is.
	sendingSince atomic.Int64
}

// Watch serves one bidirectional stream carrying many watchers, as etcd's
// v3rpc watch server does: created responses precede a watcher's events;
// a failed create answers {watch_id -1, created, canceled, cancel_reason};
// cancel answers {canceled}; a progress request answers, once every
// watcher is synced, a progress notification with watch_id -1. When the
// client closes its sending side the stream keeps delivering; when the
// client goes away, or reads nothing for SendStallTimeout while a response
// waits, everything is released.
func (s *watchServer) Watch(stream grpc.BidiStreamingServer[pb.WatchRequest, pb.WatchResponse]) error {
	s.streams.Add(1)
	defer s.streamDone()
	ws := s.be.NewWatchStream(s.cfg.BufferLen)
	defer ws.Close()
	ss := &watchSession{srv: s, stream: stream, ws: ws, ctrl: make(chan *pb.WatchResponse, 16), opts: make(map[mvcc.WatchID]*watchOpts)}
	ctx := stream.Context()
	lg := s.cfg.Logger
	recvErr := make(chan error, 1)
	go func() { recvErr <- ss.recvLoop() }()
	// Responses go out from their own goroutine, as etcd's do, so that
	// this one can give up on a client that stopped reading: returning
	// ends the stream, which unblocks a Send in progress.
	stop := make(chan struct{})
	defer close(stop)
	sendErr := make(chan error, 1)
	go func() { sendErr <- ss.sendLoop(stop) }()
	stall := time.NewTicker(max(s.cfg.SendStallTimeout/4, time.Millisecond))
	defer stall.Stop()
	for {
		select {
		case err := <-sendErr:
			lg.Debug("watch stream send failed", zap.Error(err))
			return err
		case err := <-recvErr:
			if err != nil {
				if ctx.Err() == nil {
					lg.Debug("watch stream receive failed", zap.Error(err))
				}
				return err
			}
			recvErr = nil // the client closed its side: keep sending
		case <-stall.C:
			if since := ss.sendingSince.Load(); since != 0 && time.Since(time.Unix(0, since)) > s.cfg.SendStallTimeout {
				lg.Warn("watch stream cut off: the client read nothing", zap.Duration("for", s.cfg.SendStallTimeout))
				return errWatchStalled
			}
		case <-ctx.Done():
			return toGRPCError(ctx.Err())
		}
	}
}

func (ss *watchSession) header(rev int64) *pb.ResponseHeader {
	h := ss.srv.be.WatchHeader()
	h.Revision = rev
	return h
}

func (ss *watchSession) recvLoop() error {
	ctx := ss.stream.Context()
	for {
		req, err := ss.stream.Recv()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		// Backpressure: while the client is not reading its responses, do
		// not take on more watchers or cancels for it.
		for ss.ws.Full() {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(10 * time.Millisecond):
			}
		}
		var resp *pb.WatchResponse
		switch {
		case req.GetCreateRequest() != nil:
			resp = ss.create(req.GetCreateRequest())
		case req.GetCancelRequest() != nil:
			id := mvcc.WatchID(req.GetCancelRequest().GetWatchId())
			ss.mu.Lock()
			if ss.ws.Cancel(id) == nil {
				delete(ss.opts, id)
			}
			ss.mu.Unlock()
		case req.GetProgressRequest() != nil:
			if !ss.ws.RequestProgressAll() {
				ss.deferredProgress.Store(true)
			}
		}
		if resp != nil {
			select {
			case ss.ctrl <- resp:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
	}
}

// create makes a watcher; it returns the response to send only on failure
// (a success's Created response comes through the mvcc stream, in order).
// A failure answers as etcd does: watch ID -1, created and canceled, the
// reason, and the current revision in the header.
func (ss *watchSession) create(r *pb.WatchCreateRequest) *pb.WatchResponse {
	key, end := r.GetKey(), r.GetRangeEnd()
	fail := func(reason string) *pb.WatchResponse {
		return &pb.WatchResponse{Header: ss.srv.be.WatchHeader(), WatchId: int64(mvcc.InvalidWatchID), Created: true, Canceled: true, CancelReason: reason}
	}
	if r.GetStartRevision() < 0 {
		// etcd refuses it as compacted, whether or not anything was.
		return fail(rpctypes.ErrorDesc(rpctypes.ErrGRPCCompacted))
	}
	if ok := ss.srv.cfg.Permitted; ok != nil {
		k := key
		if len(k) == 0 {
			k = []byte{0} // the smallest key, as etcd checks it
		}
		if err := ok(ss.stream.Context(), k, end); err != nil {
			return fail(toGRPCError(err).Error()) // etcd's reason: the status error's text
		}
	}
	ss.mu.Lock()
	defer ss.mu.Unlock()
	id, err := ss.ws.Watch(mvcc.WatchID(r.GetWatchId()), key, end, r.GetStartRevision(), r.GetFilters(), r.GetPrevKv())
	if err != nil {
		return fail(err.Error())
	}
	ss.opts[id] = &watchOpts{fragment: r.GetFragment(), progress: r.GetProgressNotify()}
	return nil
}

func (ss *watchSession) sendLoop(stop <-chan struct{}) error {
	ticker := time.NewTicker(ss.srv.cfg.ProgressNotifyInterval)
	defer ticker.Stop()
	for {
		select {
		case <-ss.ws.Ready():
			for {
				r, ok := ss.ws.Next()
				if !ok {
					break
				}
				start := time.Now()
				if err := ss.send(r); err != nil {
					return err
				}
				ss.srv.met.observeResponse(time.Since(start), len(r.Events))
			}
			ss.retryDeferredProgress()
		case resp := <-ss.ctrl:
			start := time.Now()
			if err := ss.sendMsg(resp); err != nil {
				return err
			}
			ss.srv.met.control.Observe(time.Since(start).Seconds())
		case <-ticker.C:
			start := time.Now()
			ss.retryDeferredProgress()
			ss.mu.Lock()
			for id, o := range ss.opts {
				if o.progress && !o.sentEvents {
					ss.ws.RequestProgress(id)
				}
				o.sentEvents = false
			}
			ss.mu.Unlock()
			ss.srv.met.progress.Observe(time.Since(start).Seconds())
		case <-stop:
			return nil
		}
	}
}

// sendMsg sends one response, noting when it began for the stall check.
func (ss *watchSession) sendMsg(wr *pb.WatchResponse) error {
	ss.sendingSince.Store(time.Now().UnixNano())
	defer ss.sendingSince.Store(0)
	return ss.stream.Send(wr)
}

// retryDeferredProgress answers a deferred progress request once every
// watcher of the stream is synced.
func (ss *watchSession) retryDeferredProgress() {
	if ss.deferredProgress.Load() && ss.ws.RequestProgressAll() {
		ss.deferredProgress.Store(false)
	}
}

func (ss *watchSession) send(r mvcc.WatchResponse) error {
	ss.mu.Lock()
	o := ss.opts[r.WatchID]
	fragment := o != nil && o.fragment
	if o != nil && len(r.Events) > 0 {
		o.sentEvents = true
	}
	if r.CompactRevision != 0 {
		delete(ss.opts, r.WatchID)
	}
	ss.mu.Unlock()
	wr := &pb.WatchResponse{
		Header:          ss.header(r.Revision),
		WatchId:         int64(r.WatchID),
		Created:         r.Created,
		Canceled:        r.Canceled || r.CompactRevision != 0,
		CompactRevision: r.CompactRevision,
		Events:          r.Events,
	}
	limit := ss.srv.cfg.MaxRequestBytes + grpcOverheadBytes
	if !fragment || len(wr.Events) < 2 || proto.Size(wr) < limit {
		return ss.sendMsg(wr)
	}
	return sendFragments(wr, limit, ss.sendMsg)
}

// sendFragments splits wr's events into responses smaller than limit bytes
// (each with at least one event); all but the last have fragment set.
func sendFragments(wr *pb.WatchResponse, limit int, send func(*pb.WatchResponse) error) error {
	evs := wr.Events
	for len(evs) > 0 {
		part := &pb.WatchResponse{Header: wr.Header, WatchId: wr.WatchId, Fragment: true}
		n := 0
		for n < len(evs) {
			part.Events = evs[:n+1]
			if n > 0 && proto.Size(part) >= limit {
				break
			}
			n++
		}
		part.Events = evs[:n]
		evs = evs[n:]
		part.Fragment = len(evs) > 0
		if err := send(part); err != nil {
			return err
		}
	}
	return nil
}
