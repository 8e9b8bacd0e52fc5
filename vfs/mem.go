package vfs

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"
)

// MemFS is an in-memory FS that keeps, for every file, the bytes a power cut
// would leave (those covered by the last File.Sync) apart from the current
// bytes. It is safe for concurrent use; Files opened on it are too.
//
// Directories are durable the way a strict POSIX file system's are (the
// model of pebble's crashable memory FS): every directory keeps, apart from
// its current entries, the set it had at its last SyncDir, each name bound to
// a file or directory (an inode). Namespace operations (Create of a new name,
// Rename, Remove, RemoveAll, MkdirAll) change only the current entries; a
// Crash keeps, for each directory, only its synced entries, and for each file
// the contents of its last File.Sync. So, after a Crash:
//
//   - a file created in a directory never synced since is gone;
//   - a rename not followed by a SyncDir of the destination directory is
//     lost there, and unless the source directory was synced too, the old
//     name is back, bound to the same file (with its synced contents);
//   - a removed name whose directory was not synced since is back, with the
//     file's synced contents;
//   - a directory made by MkdirAll exists only once its parent was synced
//     after its creation (as with pebble, MkdirAll syncs nothing: each new
//     level needs a SyncDir of its parent); what it holds needs its own
//     SyncDir as well;
//   - a file's contents follow its inode, not its name: a file renamed and
//     synced keeps its synced bytes under whichever name survives.
//
// The roots ("/" and ".") always exist.
type MemFS struct {
	mu        sync.Mutex
	files     map[string]*memNode
	dirs      map[string]*dirNode
	roots     map[string]*dirNode
	syncCount int
}

// dirNode is one directory (an inode). synced is its entries as of its last
// SyncDir: base name to *memNode or *dirNode. Its current entries are the
// names under its path in MemFS.files and MemFS.dirs.
type dirNode struct {
	synced map[string]any
}

// memNode is one file's contents. data is what reads see; durable is what
// survives a crash. Outside the dirty range [dirtyLo, dirtyHi) the two agree
// byte for byte, and any size difference lies inside it.
type memNode struct {
	data    []byte
	durable []byte
	dirty   bool
	dirtyLo int64
	dirtyHi int64
}

func (n *memNode) markDirty(lo, hi int64) {
	if lo >= hi {
		return
	}
	if !n.dirty {
		n.dirty, n.dirtyLo, n.dirtyHi = true, lo, hi
		return
	}
	n.dirtyLo = min(n.dirtyLo, lo)
	n.dirtyHi = max(n.dirtyHi, hi)
}

// sync makes durable equal to data, copying only the dirty range.
func (n *memNode) sync() {
	if !n.dirty {
		return
	}
	size := int64(len(n.data))
	n.durable = resize(n.durable, size)
	lo, hi := min(n.dirtyLo, size), min(n.dirtyHi, size)
	copy(n.durable[lo:hi], n.data[lo:hi])
	n.dirty = false
}

// resize returns b truncated or zero-extended to size, reusing b's storage
// when it can.
func resize(b []byte, size int64) []byte {
	if int64(len(b)) >= size {
		return b[:size]
	}
	if int64(cap(b)) >= size {
		old := len(b)
		b = b[:size]
		clear(b[old:])
		return b
	}
	nb := make([]byte, size, max(size, 2*int64(cap(b))))
	copy(nb, b)
	return nb
}

// NewMem returns an empty in-memory file system. The root ("/" and ".")
// exists.
func NewMem() *MemFS {
	return &MemFS{files: map[string]*memNode{}, dirs: map[string]*dirNode{}, roots: map[string]*dirNode{
		".":                        {},
		string(filepath.Separator): {},
	}}
}

func clean(name string) string { return filepath.Clean(name) }

// isRoot reports whether a cleaned name is a root that always exists.
func isRoot(name string) bool {
	return name == "." || name == string(filepath.Separator)
}

func (m *MemFS) dirExistsLocked(dir string) bool { return m.dirNodeLocked(dir) != nil }

// dirNodeLocked returns the directory at the cleaned path dir, nil if there
// is none.
func (m *MemFS) dirNodeLocked(dir string) *dirNode {
	if isRoot(dir) {
		return m.roots[dir]
	}
	return m.dirs[dir]
}

func (m *MemFS) parentExistsLocked(name string, op string) error {
	if !m.dirExistsLocked(filepath.Dir(name)) {
		return &fs.PathError{Op: op, Path: name, Err: fs.ErrNotExist}
	}
	return nil
}

// Create implements FS.
func (m *MemFS) Create(name string) (File, error) {
	name = clean(name)
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.dirExistsLocked(name) {
		return nil, &fs.PathError{Op: "create", Path: name, Err: errors.New("is a directory")}
	}
	if err := m.parentExistsLocked(name, "create"); err != nil {
		return nil, err
	}
	n, ok := m.files[name]
	if !ok {
		n = &memNode{}
		m.files[name] = n
	}
	n.markDirty(0, int64(max(len(n.data), len(n.durable))))
	n.data = n.data[:0]
	return &memFile{fs: m, node: n, name: name, write: true}, nil
}

func (m *MemFS) open(name string, write bool) (File, error) {
	name = clean(name)
	m.mu.Lock()
	defer m.mu.Unlock()
	n, ok := m.files[name]
	if !ok {
		if m.dirExistsLocked(name) {
			return nil, &fs.PathError{Op: "open", Path: name, Err: errors.New("is a directory")}
		}
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
	}
	return &memFile{fs: m, node: n, name: name, write: write}, nil
}

// Open implements FS.
func (m *MemFS) Open(name string) (File, error) { return m.open(name, false) }

// OpenReadWrite implements FS.
func (m *MemFS) OpenReadWrite(name string) (File, error) { return m.open(name, true) }

// hasChildLocked reports whether dir has any file or directory under it.
func (m *MemFS) hasChildLocked(dir string) bool {
	for n := range m.files {
		if filepath.Dir(n) == dir {
			return true
		}
	}
	for d := range m.dirs {
		if d != dir && filepath.Dir(d) == dir {
			return true
		}
	}
	return false
}

// Remove implements FS.
func (m *MemFS) Remove(name string) error {
	name = clean(name)
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.files[name]; ok {
		delete(m.files, name)
		return nil
	}
	if m.dirs[name] != nil {
		if m.hasChildLocked(name) {
			return &fs.PathError{Op: "remove", Path: name, Err: errors.New("directory not empty")}
		}
		delete(m.dirs, name)
		return nil
	}
	return &fs.PathError{Op: "remove", Path: name, Err: fs.ErrNotExist}
}

// under reports whether name is dir itself or lies below it.
func under(name, dir string) bool {
	if isRoot(dir) {
		return true
	}
	return name == dir || strings.HasPrefix(name, dir+string(filepath.Separator))
}

// RemoveAll implements FS.
func (m *MemFS) RemoveAll(dir string) error {
	dir = clean(dir)
	m.mu.Lock()
	defer m.mu.Unlock()
	for n := range m.files {
		if under(n, dir) {
			delete(m.files, n)
		}
	}
	for d := range m.dirs {
		if under(d, dir) {
			delete(m.dirs, d)
		}
	}
	return nil
}

// Rename implements FS.
func (m *MemFS) Rename(oldname, newname string) error {
	oldname, newname = clean(oldname), clean(newname)
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.parentExistsLocked(newname, "rename"); err != nil {
		return err
	}
	if oldname == newname {
		if _, ok := m.files[oldname]; ok || m.dirs[oldname] != nil {
			return nil
		}
	}
	if n, ok := m.files[oldname]; ok {
		if m.dirs[newname] != nil {
			return &fs.PathError{Op: "rename", Path: newname, Err: errors.New("is a directory")}
		}
		delete(m.files, oldname)
		m.files[newname] = n
		return nil
	}
	if m.dirs[oldname] == nil {
		return &fs.PathError{Op: "rename", Path: oldname, Err: fs.ErrNotExist}
	}
	if under(newname, oldname) {
		return &fs.PathError{Op: "rename", Path: newname, Err: errors.New("cannot move a directory into itself")}
	}
	if _, ok := m.files[newname]; ok {
		return &fs.PathError{Op: "rename", Path: newname, Err: errors.New("not a directory")}
	}
	if m.dirs[newname] != nil {
		if m.hasChildLocked(newname) {
			return &fs.PathError{Op: "rename", Path: newname, Err: errors.New("directory not empty")}
		}
		delete(m.dirs, newname)
	}
	move := func(p string) string { return newname + p[len(oldname):] }
	for _, n := range sortedKeys(m.files) {
		if under(n, oldname) {
			m.files[move(n)] = m.files[n]
			delete(m.files, n)
		}
	}
	moved := map[string]*dirNode{}
	for _, d := range sortedKeys(m.dirs) {
		if under(d, oldname) {
			moved[move(d)] = m.dirs[d]
			delete(m.dirs, d)
		}
	}
	for d, n := range moved {
		m.dirs[d] = n
	}
	return nil
}

func sortedKeys[V any](mp map[string]V) []string {
	keys := make([]string, 0, len(mp))
	for k := range mp {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// MkdirAll implements FS. The permission bits are ignored. It syncs no
// directory: each directory it makes survives a Crash only once its parent
// has been synced (see MkdirAllSynced).
func (m *MemFS) MkdirAll(dir string, _ os.FileMode) error {
	dir = clean(dir)
	m.mu.Lock()
	defer m.mu.Unlock()
	var todo []string
	for d := dir; !isRoot(d) && m.dirs[d] == nil; d = filepath.Dir(d) {
		if _, ok := m.files[d]; ok {
			return &fs.PathError{Op: "mkdir", Path: d, Err: errors.New("not a directory")}
		}
		todo = append(todo, d)
		if filepath.Dir(d) == d {
			break
		}
	}
	for _, d := range todo {
		m.dirs[d] = &dirNode{}
	}
	return nil
}

// List implements FS.
func (m *MemFS) List(dir string) ([]string, error) {
	dir = clean(dir)
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.dirExistsLocked(dir) {
		return nil, &fs.PathError{Op: "list", Path: dir, Err: fs.ErrNotExist}
	}
	var names []string
	for n := range m.files {
		if filepath.Dir(n) == dir {
			names = append(names, filepath.Base(n))
		}
	}
	for d := range m.dirs {
		if d != dir && filepath.Dir(d) == dir {
			names = append(names, filepath.Base(d))
		}
	}
	sort.Strings(names)
	return names, nil
}

// Stat implements FS.
func (m *MemFS) Stat(name string) (os.FileInfo, error) {
	name = clean(name)
	m.mu.Lock()
	defer m.mu.Unlock()
	if n, ok := m.files[name]; ok {
		return memInfo{name: filepath.Base(name), size: int64(len(n.data))}, nil
	}
	if m.dirExistsLocked(name) {
		return memInfo{name: filepath.Base(name), dir: true}, nil
	}
	return nil, &fs.PathError{Op: "stat", Path: name, Err: fs.ErrNotExist}
}

// SyncDir implements FS: dir's current entries, each bound to the file or
// directory it names now, become the ones a Crash keeps.
func (m *MemFS) SyncDir(dir string) error {
	dir = clean(dir)
	m.mu.Lock()
	defer m.mu.Unlock()
	dn := m.dirNodeLocked(dir)
	if dn == nil {
		return &fs.PathError{Op: "syncdir", Path: dir, Err: fs.ErrNotExist}
	}
	synced := map[string]any{}
	for n, node := range m.files {
		if filepath.Dir(n) == dir {
			synced[filepath.Base(n)] = node
		}
	}
	for d, node := range m.dirs {
		if d != dir && filepath.Dir(d) == dir {
			synced[filepath.Base(d)] = node
		}
	}
	dn.synced = synced
	return nil
}

// SyncCount returns the number of successful File.Sync calls made on files
// of this MemFS so far.
func (m *MemFS) SyncCount() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.syncCount
}

// Crash returns a new MemFS holding what a power cut would leave of m: from
// each root down, every directory's synced entries (as of its last SyncDir;
// none if it was never synced), and for every file they reach, its contents
// as of its last Sync. A file reached under two names (a rename synced in the
// destination directory but not in the source) is one file under both. Every
// file and directory of the result is synced.
//
// If tear is true and r is not nil, each file with unsynced changes keeps, on
// top of its synced contents, a prefix of those changes in file order: r picks
// a length k uniformly in [0, n] where n is the length of the range the
// unsynced writes and truncations touched, and the first k bytes of that range
// take their current values (the file grows if they reach past its synced
// size). This models a torn sequential write. An unsynced shrink is lost.
//
// m itself is not changed and stays usable; files open on m keep writing to m.
func (m *MemFS) Crash(r *rand.Rand, tear bool) *MemFS {
	m.mu.Lock()
	defer m.mu.Unlock()
	c := NewMem()
	files := map[*memNode]*memNode{}
	seen := map[*dirNode]bool{}
	var walk func(path string, from, to *dirNode)
	walk = func(path string, from, to *dirNode) {
		seen[from] = true
		to.synced = map[string]any{}
		// Visit names in sorted order so a given r gives the same result.
		for _, name := range sortedKeys(from.synced) {
			p := filepath.Join(path, name)
			switch child := from.synced[name].(type) {
			case *memNode:
				nn, ok := files[child]
				if !ok {
					nn = crashFile(child, r, tear)
					files[child] = nn
				}
				c.files[p] = nn
				to.synced[name] = nn
			case *dirNode:
				// Synced entries taken at different times may bind a
				// directory twice (or under itself); keep the first.
				if seen[child] {
					continue
				}
				nd := &dirNode{}
				c.dirs[p] = nd
				to.synced[name] = nd
				walk(p, child, nd)
			}
		}
	}
	for _, root := range sortedKeys(m.roots) {
		walk(root, m.roots[root], c.roots[root])
	}
	return c
}

// crashFile is what a crash leaves of n, synced.
func crashFile(n *memNode, r *rand.Rand, tear bool) *memNode {
	data := append([]byte(nil), n.durable...)
	if tear && r != nil && n.dirty {
		lo := n.dirtyLo
		hi := min(n.dirtyHi, int64(len(n.data)))
		if hi > lo {
			k := r.Int64N(hi - lo + 1)
			if end := lo + k; end > int64(len(data)) {
				data = resize(data, end)
			}
			copy(data[lo:lo+k], n.data[lo:lo+k])
		}
	}
	return &memNode{data: data, durable: append([]byte(nil), data...)}
}

type memInfo struct {
	name string
	size int64
	dir  bool
}

func (i memInfo) Name() string { return i.name }
func (i memInfo) Size() int64  { return i.size }
func (i memInfo) Mode() fs.FileMode {
	if i.dir {
		return fs.ModeDir | 0o755
	}
	return 0o644
}
func (i memInfo) ModTime() time.Time { return time.Time{} }
func (i memInfo) IsDir() bool        { return i.dir }
func (i memInfo) Sys() any           { return nil }

// memFile is an open handle on a memNode. All state is guarded by fs.mu.
type memFile struct {
	fs     *MemFS
	node   *memNode
	name   string
	write  bool
	off    int64
	closed bool
}

func (f *memFile) check(op string, write bool) error {
	if f.closed {
		return &fs.PathError{Op: op, Path: f.name, Err: fs.ErrClosed}
	}
	if write && !f.write {
		return &fs.PathError{Op: op, Path: f.name, Err: fs.ErrPermission}
	}
	return nil
}

func (f *memFile) readAtLocked(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, &fs.PathError{Op: "read", Path: f.name, Err: errors.New("negative offset")}
	}
	if off >= int64(len(f.node.data)) {
		if len(p) == 0 {
			return 0, nil
		}
		return 0, io.EOF
	}
	n := copy(p, f.node.data[off:])
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

// Read implements io.Reader.
func (f *memFile) Read(p []byte) (int, error) {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	if err := f.check("read", false); err != nil {
		return 0, err
	}
	n, err := f.readAtLocked(p, f.off)
	f.off += int64(n)
	if n > 0 && err == io.EOF {
		err = nil
	}
	return n, err
}

// ReadAt implements io.ReaderAt.
func (f *memFile) ReadAt(p []byte, off int64) (int, error) {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	if err := f.check("read", false); err != nil {
		return 0, err
	}
	return f.readAtLocked(p, off)
}

// Write implements io.Writer, writing at the file offset.
func (f *memFile) Write(p []byte) (int, error) {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	if err := f.check("write", true); err != nil {
		return 0, err
	}
	n := f.node
	end := f.off + int64(len(p))
	if end > int64(len(n.data)) {
		n.markDirty(int64(len(n.data)), end)
		n.data = resize(n.data, end)
	}
	copy(n.data[f.off:end], p)
	n.markDirty(f.off, end)
	f.off = end
	return len(p), nil
}

// Seek implements io.Seeker.
func (f *memFile) Seek(offset int64, whence int) (int64, error) {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	if err := f.check("seek", false); err != nil {
		return 0, err
	}
	var abs int64
	switch whence {
	case io.SeekStart:
		abs = offset
	case io.SeekCurrent:
		abs = f.off + offset
	case io.SeekEnd:
		abs = int64(len(f.node.data)) + offset
	default:
		return 0, &fs.PathError{Op: "seek", Path: f.name, Err: fmt.Errorf("invalid whence %d", whence)}
	}
	if abs < 0 {
		return 0, &fs.PathError{Op: "seek", Path: f.name, Err: errors.New("negative offset")}
	}
	f.off = abs
	return abs, nil
}

// Close implements io.Closer.
func (f *memFile) Close() error {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	if err := f.check("close", false); err != nil {
		return err
	}
	f.closed = true
	return nil
}

// Sync implements File: the file's current contents become what Crash keeps.
func (f *memFile) Sync() error {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	if err := f.check("sync", false); err != nil {
		return err
	}
	f.node.sync()
	f.fs.syncCount++
	return nil
}

// Truncate implements File.
func (f *memFile) Truncate(size int64) error {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	if err := f.check("truncate", true); err != nil {
		return err
	}
	if size < 0 {
		return &fs.PathError{Op: "truncate", Path: f.name, Err: errors.New("negative size")}
	}
	n := f.node
	old := int64(len(n.data))
	n.markDirty(min(old, size), max(old, size))
	n.data = resize(n.data, size)
	return nil
}

// Size implements File.
func (f *memFile) Size() (int64, error) {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	if err := f.check("stat", false); err != nil {
		return 0, err
	}
	return int64(len(f.node.data)), nil
}
