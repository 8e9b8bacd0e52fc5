package api

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.uber.org/zap"
	"google.golang.org/grpc"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

const (
	// snapshotChunkBytes is the blob size of each SnapshotResponse, as etcd.
	snapshotChunkBytes = 32 * 1024
	// snapshotLogEveryBytes spaces the progress log lines of a snapshot.
	snapshotLogEveryBytes = 8 * 1024 * 1024
)

// maintenanceServer is the Maintenance service.
type maintenanceServer struct {
	pb.UnimplementedMaintenanceServer
	be             MaintenanceBackend
	lg             *zap.Logger
	serverVersion  string
	storageVersion string
	metrics        *backendMetrics
	// defragging is told when a defragmentation starts and ends.
	defragging func(bool)
}

func (s *maintenanceServer) Alarm(ctx context.Context, r *pb.AlarmRequest) (*pb.AlarmResponse, error) {
	resp, err := s.be.Alarm(ctx, r)
	if err != nil {
		return nil, toGRPCError(err)
	}
	return resp, nil
}

// Status returns the backend's status with the etcd server version Cairn
// claims, the storage version of that version unless the backend gave its
// own and, as etcd reports when no downgrade is in progress, an empty
// DowngradeInfo unless the backend set one.
func (s *maintenanceServer) Status(ctx context.Context, _ *pb.StatusRequest) (*pb.StatusResponse, error) {
	resp, err := s.be.Status(ctx)
	if err != nil {
		return nil, toGRPCError(err)
	}
	resp.Version = s.serverVersion
	if resp.StorageVersion == "" {
		resp.StorageVersion = s.storageVersion
	}
	if resp.DowngradeInfo == nil {
		resp.DowngradeInfo = &pb.DowngradeInfo{}
	}
	return resp, nil
}

func (s *maintenanceServer) Defragment(ctx context.Context, _ *pb.DefragmentRequest) (*pb.DefragmentResponse, error) {
	s.lg.Info("starting defragment")
	s.defragging(true)
	defer s.defragging(false)
	start := time.Now()
	s.metrics.defragInflight.Set(1)
	err := s.be.Defragment(ctx)
	s.metrics.defragInflight.Set(0)
	if err != nil {
		s.lg.Warn("failed to defragment", zap.Error(err))
		return nil, toGRPCError(err)
	}
	s.metrics.defragSeconds.Observe(time.Since(start).Seconds())
	s.lg.Info("finished defragment")
	return &pb.DefragmentResponse{}, nil
}

// defragging, with Config.StopGRPCServiceOnDefrag, reports the gRPC health
// service NOT_SERVING while a defragmentation runs, with etcd's log lines.
func (s *Server) defragging(on bool) {
	if !s.cfg.StopGRPCServiceOnDefrag {
		return
	}
	if on {
		s.lg.Warn("grpc service status changed", zap.String("service", ""),
			zap.String("status", healthpb.HealthCheckResponse_NOT_SERVING.String()), zap.String("reason", "defrag is active"))
		s.grpcHealth.SetServingStatus("", healthpb.HealthCheckResponse_NOT_SERVING)
		return
	}
	s.lg.Info("grpc service status changed", zap.String("service", ""),
		zap.String("status", healthpb.HealthCheckResponse_SERVING.String()))
	s.grpcHealth.SetServingStatus("", healthpb.HealthCheckResponse_SERVING)
}

func (s *maintenanceServer) Hash(ctx context.Context, _ *pb.HashRequest) (*pb.HashResponse, error) {
	resp, err := s.be.Hash(ctx)
	if err != nil {
		return nil, toGRPCError(err)
	}
	return resp, nil
}

func (s *maintenanceServer) HashKV(ctx context.Context, r *pb.HashKVRequest) (*pb.HashKVResponse, error) {
	resp, err := s.be.HashKV(ctx, r.Revision)
	if err != nil {
		return nil, toGRPCError(err)
	}
	return resp, nil
}

func (s *maintenanceServer) MoveLeader(ctx context.Context, r *pb.MoveLeaderRequest) (*pb.MoveLeaderResponse, error) {
	resp, err := s.be.MoveLeader(ctx, r.TargetID)
	if err != nil {
		return nil, toGRPCError(err)
	}
	return resp, nil
}

func (s *maintenanceServer) Downgrade(ctx context.Context, r *pb.DowngradeRequest) (*pb.DowngradeResponse, error) {
	resp, err := s.be.Downgrade(ctx, r)
	if err != nil {
		return nil, toGRPCError(err)
	}
	return resp, nil
}

// Snapshot streams the database as etcd does: blobs of up to 32 KiB, each
// with remaining_bytes counting the database bytes still to come, then
// one final message whose blob is the sha256 of the whole database (and
// remaining_bytes 0). Every message carries the storage version. A client
// concatenating the blobs gets db || sha256(db), which etcdctl verifies.
func (s *maintenanceServer) Snapshot(_ *pb.SnapshotRequest, stream grpc.ServerStreamingServer[pb.SnapshotResponse]) error {
	ctx := stream.Context()
	start := time.Now()
	snap, err := s.openSnapshot(ctx)
	if err != nil {
		s.lg.Warn("failed to open database snapshot", zap.Error(err))
		return toGRPCError(err)
	}
	defer func() {
		if cerr := snap.Close(); cerr != nil {
			s.lg.Warn("failed to close database snapshot", zap.Error(cerr))
		}
		// As etcd's: from taking the snapshot until it is released.
		s.metrics.snapshotSeconds.Observe(time.Since(start).Seconds())
	}()

	total := snap.Size()
	// Every message carries the database's storage version, which a
	// downgrade lowers.
	storageVersion := s.storageVersion
	if vr, ok := s.be.(VersionReporter); ok {
		if _, v, err := vr.Versions(ctx); err == nil && v != "" {
			storageVersion = v
		}
	}
	s.lg.Info("sending database snapshot to client",
		zap.Int64("total-bytes", total),
		zap.String("storage-version", storageVersion),
	)
	w := &snapshotSender{
		stream:  stream,
		lg:      s.lg,
		version: storageVersion,
		total:   total,
		h:       sha256.New(),
		buf:     make([]byte, 0, snapshotChunkBytes),
	}
	if _, err := snap.WriteTo(w); err != nil {
		return toGRPCError(err)
	}
	if err := w.flush(); err != nil {
		return toGRPCError(err)
	}
	if w.sent != total {
		err := fmt.Errorf("api: snapshot wrote %d bytes, announced %d", w.sent, total)
		s.lg.Warn("database snapshot size mismatch", zap.Error(err))
		return toGRPCError(err)
	}
	sum := w.h.Sum(nil)
	s.lg.Info("sending database sha256 checksum to client",
		zap.Int64("total-bytes", total),
		zap.Int("checksum-size", len(sum)),
	)
	if err := stream.Send(&pb.SnapshotResponse{RemainingBytes: 0, Blob: sum, Version: storageVersion}); err != nil {
		return toGRPCError(err)
	}
	s.lg.Info("successfully sent database snapshot to client",
		zap.Int64("total-bytes", total),
		zap.Duration("took", time.Since(start)),
		zap.String("storage-version", storageVersion),
	)
	return nil
}

// openSnapshot uses the backend's SnapshotOpener when it has one, else
// spools MaintenanceBackend.Snapshot into an unlinked temporary file.
func (s *maintenanceServer) openSnapshot(ctx context.Context) (Snapshot, error) {
	if o, ok := s.be.(SnapshotOpener); ok {
		return o.OpenSnapshot(ctx)
	}
	f, err := os.CreateTemp("", "cairn-snapshot-*.db")
	if err != nil {
		return nil, fmt.Errorf("api: snapshot spool: %w", err)
	}
	// Unlink at once: the open descriptor keeps the data until Close.
	if err := os.Remove(f.Name()); err != nil {
		f.Close()
		return nil, fmt.Errorf("api: snapshot spool: %w", err)
	}
	size, err := s.be.Snapshot(ctx, f)
	if err != nil {
		f.Close()
		return nil, err
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		f.Close()
		return nil, fmt.Errorf("api: snapshot spool: %w", err)
	}
	return &fileSnapshot{f: f, size: size}, nil
}

// fileSnapshot is a spooled snapshot.
type fileSnapshot struct {
	f    *os.File
	size int64
}

func (fs *fileSnapshot) Size() int64 { return fs.size }
func (fs *fileSnapshot) WriteTo(w io.Writer) (int64, error) {
	return io.Copy(w, io.LimitReader(fs.f, fs.size))
}
func (fs *fileSnapshot) Close() error { return fs.f.Close() }

// snapshotSender is the io.Writer a Snapshot writes into: it cuts the
// bytes into chunks, hashes them and sends them.
type snapshotSender struct {
	stream  grpc.ServerStreamingServer[pb.SnapshotResponse]
	lg      *zap.Logger
	version string
	total   int64
	sent    int64
	nextLog int64
	h       hash.Hash
	buf     []byte
}

func (w *snapshotSender) Write(p []byte) (int, error) {
	n := 0
	for len(p) > 0 {
		k := min(len(p), snapshotChunkBytes-len(w.buf))
		w.buf = append(w.buf, p[:k]...)
		p = p[k:]
		n += k
		if len(w.buf) == snapshotChunkBytes {
			if err := w.flush(); err != nil {
				return n, err
			}
		}
	}
	return n, nil
}

// flush sends the buffered bytes, if any.
func (w *snapshotSender) flush() error {
	if len(w.buf) == 0 {
		return nil
	}
	if w.sent+int64(len(w.buf)) > w.total {
		return errors.New("api: snapshot larger than its announced size")
	}
	w.sent += int64(len(w.buf))
	w.h.Write(w.buf)
	// Send may keep the blob after returning, so the buffer is not reused.
	resp := &pb.SnapshotResponse{RemainingBytes: uint64(w.total - w.sent), Blob: w.buf, Version: w.version}
	w.buf = make([]byte, 0, snapshotChunkBytes)
	if err := w.stream.Send(resp); err != nil {
		return err
	}
	if w.sent >= w.nextLog+snapshotLogEveryBytes || w.sent == w.total {
		w.nextLog = w.sent
		w.lg.Info("sent database snapshot bytes",
			zap.Int64("sent-bytes", w.sent),
			zap.Int64("total-bytes", w.total),
		)
	}
	return nil
}
