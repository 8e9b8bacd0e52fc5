package faultfs

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
)

// node is a file or directory of a FS: go-fuse's loopback node with the
// operations that change contents or names replaced.
type node struct {
	fs.LoopbackNode
	f    *FS
	root bool
}

// handle is an open file: a descriptor of the backing file, always opened
// read-write so that pages can be read in and synced out.
type handle struct{ fd int }

var _ = (fs.FileReleaser)((*handle)(nil))

func (h *handle) Release(context.Context) syscall.Errno {
	return fs.ToErrno(syscall.Close(h.fd))
}

func (n *node) rel() string { return n.Path(nil) }

func (n *node) bpath() string { return filepath.Join(n.f.data, n.rel()) }

// ino is the backing inode number of n.
func (n *node) ino() uint64 {
	if n.root {
		ino, _ := lstatIno(n.f.data)
		return ino
	}
	return n.StableAttr().Ino
}

func (n *node) isDir() bool { return n.root || n.StableAttr().Mode&syscall.S_IFMT == syscall.S_IFDIR }

// withFd runs fn with a descriptor of n's backing file: fh's, or one opened
// for the call.
func (n *node) withFd(fh fs.FileHandle, fn func(fd int) syscall.Errno) syscall.Errno {
	if h, ok := fh.(*handle); ok {
		return fn(h.fd)
	}
	fd, err := syscall.Open(n.bpath(), syscall.O_RDWR|syscall.O_CLOEXEC, 0)
	if err != nil {
		return fs.ToErrno(err)
	}
	defer syscall.Close(fd)
	return fn(fd)
}

// dirty returns the unsynced state of n, made from the backing file if
// there is none yet; called with n.f.mu held.
func (n *node) dirty(fd int) (*dirtyFile, error) {
	ino := n.ino()
	if d, ok := n.f.files[ino]; ok {
		return d, nil
	}
	d, err := newDirty(fd)
	if err != nil {
		return nil, err
	}
	n.f.files[ino] = d
	return d, nil
}

// patchSize sets out's size to the unsynced size of inode ino, if any.
func (f *FS) patchSize(ino uint64, a *fuse.Attr) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if d, ok := f.files[ino]; ok {
		a.Size = uint64(d.size)
		a.Blocks = (a.Size + 511) / 512
	}
}

// openFlags are the flags a backing file is opened with: read-write,
// without truncation or append (both are done above the backing file).
func openFlags(flags uint32) int {
	fl := int(flags) &^ (syscall.O_ACCMODE | syscall.O_TRUNC | syscall.O_APPEND | syscall.O_CREAT | syscall.O_EXCL | fuse.FMODE_EXEC)
	return fl | syscall.O_RDWR | syscall.O_CLOEXEC
}

var (
	_ = (fs.NodeLookuper)((*node)(nil))
	_ = (fs.NodeGetattrer)((*node)(nil))
	_ = (fs.NodeSetattrer)((*node)(nil))
	_ = (fs.NodeOpener)((*node)(nil))
	_ = (fs.NodeCreater)((*node)(nil))
	_ = (fs.NodeReader)((*node)(nil))
	_ = (fs.NodeWriter)((*node)(nil))
	_ = (fs.NodeFsyncer)((*node)(nil))
	_ = (fs.NodeAllocater)((*node)(nil))
	_ = (fs.NodeMkdirer)((*node)(nil))
	_ = (fs.NodeMknoder)((*node)(nil))
	_ = (fs.NodeSymlinker)((*node)(nil))
	_ = (fs.NodeLinker)((*node)(nil))
	_ = (fs.NodeUnlinker)((*node)(nil))
	_ = (fs.NodeRmdirer)((*node)(nil))
	_ = (fs.NodeRenamer)((*node)(nil))
)

func (n *node) Lookup(ctx context.Context, name string, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	ch, errno := n.LoopbackNode.Lookup(ctx, name, out)
	if errno == 0 {
		n.f.patchSize(ch.StableAttr().Ino, &out.Attr)
	}
	return ch, errno
}

func (n *node) Getattr(ctx context.Context, fh fs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	if errno := n.LoopbackNode.Getattr(ctx, nil, out); errno != 0 {
		return errno
	}
	if !n.root {
		n.f.patchSize(n.ino(), &out.Attr)
	}
	return 0
}

func (n *node) Setattr(ctx context.Context, fh fs.FileHandle, in *fuse.SetAttrIn, out *fuse.AttrOut) syscall.Errno {
	if size, ok := in.GetSize(); ok {
		if errno := n.truncate(ctx, fh, int64(size)); errno != 0 {
			return errno
		}
	}
	in2 := *in
	in2.Valid &^= fuse.FATTR_SIZE | fuse.FATTR_FH
	if errno := n.LoopbackNode.Setattr(ctx, nil, &in2, out); errno != 0 {
		return errno
	}
	n.f.patchSize(n.ino(), &out.Attr)
	return 0
}

func (n *node) truncate(ctx context.Context, fh fs.FileHandle, size int64) syscall.Errno {
	return n.withFd(fh, func(fd int) syscall.Errno {
		n.f.mu.Lock()
		defer n.f.mu.Unlock()
		d, err := n.dirty(fd)
		if err != nil {
			return fs.ToErrno(err)
		}
		if size > d.size {
			if e := n.writeErrLocked(); e != 0 {
				return e
			}
		}
		return fs.ToErrno(d.truncate(fd, size))
	})
}

// writeErrLocked is the errno the faults give a write to n (0: none).
func (n *node) writeErrLocked() syscall.Errno {
	x := n.f.faults
	if x.WriteErr == 0 || (x.Path != "" && !strings.Contains(n.rel(), x.Path)) {
		return 0
	}
	n.f.stats.FailedWrites++
	return x.WriteErr
}

func (n *node) Open(ctx context.Context, flags uint32) (fs.FileHandle, uint32, syscall.Errno) {
	fd, err := syscall.Open(n.bpath(), openFlags(flags), 0)
	if err != nil {
		return nil, 0, fs.ToErrno(err)
	}
	h := &handle{fd: fd}
	if flags&syscall.O_TRUNC != 0 {
		if errno := n.truncate(ctx, h, 0); errno != 0 {
			syscall.Close(fd)
			return nil, 0, errno
		}
	}
	return h, 0, 0
}

func (n *node) Create(ctx context.Context, name string, flags uint32, mode uint32, out *fuse.EntryOut) (*fs.Inode, fs.FileHandle, uint32, syscall.Errno) {
	p := filepath.Join(n.bpath(), name)
	_, statErr := lstatIno(p)
	existed := statErr == nil
	if !existed {
		if e := n.faultErr(); e != 0 {
			return nil, nil, 0, e
		}
	}
	fl := openFlags(flags) | syscall.O_CREAT
	if flags&syscall.O_EXCL != 0 {
		fl |= syscall.O_EXCL
	}
	fd, err := syscall.Open(p, fl, mode)
	if err != nil {
		return nil, nil, 0, fs.ToErrno(err)
	}
	if !existed {
		n.recordCreate(p)
	}
	ch, errno := n.Lookup(ctx, name, out)
	if errno != 0 {
		syscall.Close(fd)
		return nil, nil, 0, errno
	}
	h := &handle{fd: fd}
	if existed && flags&syscall.O_TRUNC != 0 {
		cn := ch.Operations().(*node)
		if errno := cn.truncate(ctx, h, 0); errno != 0 {
			syscall.Close(fd)
			return nil, nil, 0, errno
		}
		out.Attr.Size = 0
	}
	return ch, h, 0, 0
}

// faultErr is the errno the faults give a change in directory n.
func (n *node) faultErr() syscall.Errno {
	n.f.mu.Lock()
	defer n.f.mu.Unlock()
	return n.writeErrLocked()
}

// recordCreate logs the creation of backing path p in directory n.
func (n *node) recordCreate(p string) {
	ino, _ := lstatIno(p)
	dir := n.ino()
	n.f.record([]uint64{dir}, ino, func() error {
		if !is(p, ino) || !is(filepath.Dir(p), dir) {
			return errStale // gone, or moved by a change that stays
		}
		return os.RemoveAll(p)
	}, nil)
}

// errStale is the undo of a change whose names were changed since by
// changes that stay (made durable by a directory fsync): it is dropped.
var errStale = errors.New("faultfs: name changed since by a durable change")

// is reports whether the backing path p is inode ino.
func is(p string, ino uint64) bool {
	got, err := lstatIno(p)
	return err == nil && got == ino
}

// chain lists the backing inode numbers of n and of its ancestors.
func (n *node) chain() []uint64 {
	out := []uint64{n.ino()}
	for in := n.EmbeddedInode(); ; {
		_, parent := in.Parent()
		if parent == nil {
			return out
		}
		pn, ok := parent.Operations().(*node)
		if !ok {
			return out
		}
		out = append(out, pn.ino())
		in = parent
	}
}

func (n *node) Read(ctx context.Context, fh fs.FileHandle, dest []byte, off int64) (fuse.ReadResult, syscall.Errno) {
	ctxSleep(ctx, n.f.faultsFor(n.rel()).ReadDelay)
	var got int
	errno := n.withFd(fh, func(fd int) syscall.Errno {
		n.f.mu.Lock()
		defer n.f.mu.Unlock()
		var err error
		if d, ok := n.f.files[n.ino()]; ok {
			got, err = d.read(fd, dest, off)
			return fs.ToErrno(err)
		}
		for got < len(dest) {
			m, err := syscall.Pread(fd, dest[got:], off+int64(got))
			if err == syscall.EINTR {
				continue
			}
			if err != nil {
				return fs.ToErrno(err)
			}
			if m == 0 {
				break
			}
			got += m
		}
		return 0
	})
	if errno != 0 {
		return nil, errno
	}
	return fuse.ReadResultData(dest[:got]), 0
}

func (n *node) Write(ctx context.Context, fh fs.FileHandle, data []byte, off int64) (uint32, syscall.Errno) {
	errno := n.withFd(fh, func(fd int) syscall.Errno {
		n.f.mu.Lock()
		defer n.f.mu.Unlock()
		if e := n.writeErrLocked(); e != 0 {
			return e
		}
		d, err := n.dirty(fd)
		if err != nil {
			return fs.ToErrno(err)
		}
		return fs.ToErrno(d.write(fd, data, off))
	})
	if errno != 0 {
		return 0, errno
	}
	return uint32(len(data)), 0
}

func (n *node) Allocate(ctx context.Context, fh fs.FileHandle, off uint64, size uint64, mode uint32) syscall.Errno {
	const keepSize = 0x01 // FALLOC_FL_KEEP_SIZE
	if mode&^keepSize != 0 {
		return syscall.EOPNOTSUPP
	}
	return n.withFd(fh, func(fd int) syscall.Errno {
		n.f.mu.Lock()
		defer n.f.mu.Unlock()
		if e := n.writeErrLocked(); e != 0 {
			return e
		}
		if mode&keepSize != 0 {
			return 0
		}
		d, err := n.dirty(fd)
		if err != nil {
			return fs.ToErrno(err)
		}
		if end := int64(off + size); end > d.size {
			return fs.ToErrno(d.truncate(fd, end))
		}
		return 0
	})
}

func (n *node) Fsync(ctx context.Context, fh fs.FileHandle, flags uint32) syscall.Errno {
	x := n.f.faultsFor(n.rel())
	ctxSleep(ctx, x.SyncDelay)
	n.f.mu.Lock()
	n.f.stats.Syncs++
	if x.SyncErr != 0 {
		n.f.stats.FailedSyncs++
		n.f.mu.Unlock()
		return x.SyncErr
	}
	n.f.mu.Unlock()
	if n.isDir() {
		n.f.syncNames(n.chain(), true)
		return 0
	}
	errno := n.withFd(fh, func(fd int) syscall.Errno {
		n.f.mu.Lock()
		defer n.f.mu.Unlock()
		ino := n.ino()
		d, ok := n.f.files[ino]
		if !ok {
			return 0
		}
		if err := d.sync(fd); err != nil {
			return fs.ToErrno(err)
		}
		delete(n.f.files, ino)
		return 0
	})
	if errno == 0 {
		n.f.syncNames(n.chain(), false)
	}
	return errno
}

func (n *node) Mkdir(ctx context.Context, name string, mode uint32, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	if e := n.faultErr(); e != 0 {
		return nil, e
	}
	ch, errno := n.LoopbackNode.Mkdir(ctx, name, mode, out)
	if errno == 0 {
		n.recordCreate(filepath.Join(n.bpath(), name))
	}
	return ch, errno
}

func (n *node) Mknod(ctx context.Context, name string, mode, rdev uint32, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	if e := n.faultErr(); e != 0 {
		return nil, e
	}
	ch, errno := n.LoopbackNode.Mknod(ctx, name, mode, rdev, out)
	if errno == 0 {
		n.recordCreate(filepath.Join(n.bpath(), name))
	}
	return ch, errno
}

func (n *node) Symlink(ctx context.Context, target, name string, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	if e := n.faultErr(); e != 0 {
		return nil, e
	}
	ch, errno := n.LoopbackNode.Symlink(ctx, target, name, out)
	if errno == 0 {
		n.recordCreate(filepath.Join(n.bpath(), name))
	}
	return ch, errno
}

func (n *node) Link(ctx context.Context, target fs.InodeEmbedder, name string, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	ch, errno := n.LoopbackNode.Link(ctx, target, name, out)
	if errno == 0 {
		p := filepath.Join(n.bpath(), name)
		ino, dir := ch.StableAttr().Ino, n.ino()
		n.f.record([]uint64{dir}, ino, func() error {
			if !is(p, ino) || !is(filepath.Dir(p), dir) {
				return errStale
			}
			return os.Remove(p)
		}, nil)
		n.f.patchSize(ch.StableAttr().Ino, &out.Attr)
	}
	return ch, errno
}

// remove parks the name in the trash instead of removing it, so that a
// power cut can bring it back.
func (n *node) remove(name string) syscall.Errno {
	p := filepath.Join(n.bpath(), name)
	ino, err := lstatIno(p)
	if err != nil {
		return fs.ToErrno(err)
	}
	t, err := n.f.parkInTrash(p)
	if err != nil {
		return fs.ToErrno(err)
	}
	dir := n.ino()
	n.f.record([]uint64{dir}, 0, func() error {
		// Back only into the same directory, and onto no other name.
		if !is(filepath.Dir(p), dir) {
			return errStale
		}
		if _, err := os.Lstat(p); err == nil {
			return errStale
		}
		return os.Rename(t, p)
	}, func() {
		_ = os.RemoveAll(t)
		n.f.forget(ino)
	})
	return 0
}

func (n *node) Unlink(ctx context.Context, name string) syscall.Errno {
	if st, err := os.Lstat(filepath.Join(n.bpath(), name)); err == nil && st.IsDir() {
		return syscall.EISDIR
	}
	return n.remove(name)
}

func (n *node) Rmdir(ctx context.Context, name string) syscall.Errno {
	p := filepath.Join(n.bpath(), name)
	st, err := os.Lstat(p)
	if err != nil {
		return fs.ToErrno(err)
	}
	if !st.IsDir() {
		return syscall.ENOTDIR
	}
	ents, err := os.ReadDir(p)
	if err != nil {
		return fs.ToErrno(err)
	}
	if len(ents) > 0 {
		return syscall.ENOTEMPTY
	}
	return n.remove(name)
}

func (n *node) Rename(ctx context.Context, name string, newParent fs.InodeEmbedder, newName string, flags uint32) syscall.Errno {
	np, ok := newParent.(*node)
	if !ok || np.f != n.f {
		return syscall.EXDEV
	}
	const noReplace = 0x1 // RENAME_NOREPLACE
	if flags&^noReplace != 0 {
		return syscall.EINVAL // RENAME_EXCHANGE and RENAME_WHITEOUT are not modelled
	}
	p1 := filepath.Join(n.bpath(), name)
	p2 := filepath.Join(np.bpath(), newName)
	if p1 == p2 {
		return 0
	}
	st1, err := os.Lstat(p1)
	if err != nil {
		return fs.ToErrno(err)
	}
	var parked string
	var parkedIno uint64
	if st2, err := os.Lstat(p2); err == nil {
		if flags&noReplace != 0 {
			return syscall.EEXIST
		}
		if st2.IsDir() != st1.IsDir() {
			if st1.IsDir() {
				return syscall.ENOTDIR
			}
			return syscall.EISDIR
		}
		if st2.IsDir() {
			if ents, err := os.ReadDir(p2); err != nil || len(ents) > 0 {
				return syscall.ENOTEMPTY
			}
		}
		parkedIno = st2.Sys().(*syscall.Stat_t).Ino
		if parked, err = n.f.parkInTrash(p2); err != nil {
			return fs.ToErrno(err)
		}
	}
	if err := os.Rename(p1, p2); err != nil {
		if parked != "" {
			_ = os.Rename(parked, p2)
		}
		return fs.ToErrno(err)
	}
	dirs := []uint64{n.ino()}
	if d2 := np.ino(); d2 != dirs[0] {
		dirs = append(dirs, d2)
	}
	moved := st1.Sys().(*syscall.Stat_t).Ino
	n.f.record(dirs, moved, func() error {
		if !is(p2, moved) || !is(filepath.Dir(p1), dirs[0]) || !is(filepath.Dir(p2), dirs[len(dirs)-1]) {
			return errStale
		}
		if _, err := os.Lstat(p1); err == nil {
			return errStale
		}
		if err := os.Rename(p2, p1); err != nil {
			return err
		}
		if parked != "" {
			return os.Rename(parked, p2)
		}
		return nil
	}, func() {
		if parked != "" {
			_ = os.RemoveAll(parked)
			n.f.forget(parkedIno)
		}
	})
	return 0
}

// dirHandle is an open directory: the loopback's stream without its own
// fsync, so that a directory fsync reaches node.Fsync.
type dirHandle struct{ ds fs.DirStream }

var (
	_ = (fs.FileReaddirenter)((*dirHandle)(nil))
	_ = (fs.FileSeekdirer)((*dirHandle)(nil))
	_ = (fs.FileReleasedirer)((*dirHandle)(nil))
	_ = (fs.NodeOpendirHandler)((*node)(nil))
)

func (d *dirHandle) Readdirent(ctx context.Context) (*fuse.DirEntry, syscall.Errno) {
	return d.ds.(fs.FileReaddirenter).Readdirent(ctx)
}

func (d *dirHandle) Seekdir(ctx context.Context, off uint64) syscall.Errno {
	return d.ds.(fs.FileSeekdirer).Seekdir(ctx, off)
}

func (d *dirHandle) Releasedir(ctx context.Context, flags uint32) {
	d.ds.(fs.FileReleasedirer).Releasedir(ctx, flags)
}

func (n *node) OpendirHandle(ctx context.Context, flags uint32) (fs.FileHandle, uint32, syscall.Errno) {
	ds, errno := fs.NewLoopbackDirStream(n.bpath())
	if errno != 0 {
		return nil, 0, errno
	}
	return &dirHandle{ds: ds}, 0, 0
}
