package vfs

// NoSync wraps fs so that nothing is ever made durable: File.Sync and
// SyncDir do nothing and succeed. It is etcd's --unsafe-no-fsync for the
// WAL: fast, and a crash of the machine loses what the page cache held.
func NoSync(fs FS) FS { return noSyncFS{fs} }

type noSyncFS struct{ FS }

func (n noSyncFS) Create(name string) (File, error) { return wrapNoSync(n.FS.Create(name)) }

func (n noSyncFS) OpenReadWrite(name string) (File, error) {
	return wrapNoSync(n.FS.OpenReadWrite(name))
}

func (noSyncFS) SyncDir(string) error { return nil }

func wrapNoSync(f File, err error) (File, error) {
	if err != nil {
		return nil, err
	}
	return noSyncFile{f}, nil
}

type noSyncFile struct{ File }

func (noSyncFile) Sync() error { return nil }
