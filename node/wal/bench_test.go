package wal

import (
	"fmt"
	"path/filepath"
	"testing"

	"github.com/cairnkv/cairn/vfs"
	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

// BenchmarkWALSave measures Save on the real file system with fsync: one op
// is one Save of n entries of 100 bytes plus a HardState.
func BenchmarkWALSave(b *testing.B) {
	for _, n := range []int{1, 64} {
		b.Run(fmt.Sprintf("entries=%d", n), func(b *testing.B) {
			w, err := Create(Config{FS: vfs.OS(), Dir: filepath.Join(b.TempDir(), "wal")}, []byte("bench"))
			if err != nil {
				b.Fatal(err)
			}
			defer w.Close()
			data := make([]byte, 100)
			batch := make([]*raftpb.Entry, n)
			next := uint64(1)
			b.SetBytes(int64(n * len(data)))
			b.ResetTimer()
			for b.Loop() {
				for i := range batch {
					batch[i] = &raftpb.Entry{Index: proto.Uint64(next), Term: proto.Uint64(1), Data: data}
					next++
				}
				if err := w.Save(hs(1, 1, next-1), batch); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
