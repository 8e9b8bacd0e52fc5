package mvcc

// resyncWatchers tells the synced watchers at once that the database was
// replaced, so they catch up from the new database's history without
// waiting for the next write, which may never come (as etcd's
// watchableStore.Restore moves every synced watcher to unsynced). Called
// holding no Store lock: the watch group's lock comes before the store's.
func (s *Store) resyncWatchers() {
	if s.watches == nil {
		return
	}
	g := s.watches
	g.mu.Lock()
	defer g.mu.Unlock()
	if now, rev := s.restoreState(); now != g.epoch {
		g.epoch = now
		g.unsyncAll(g.rev + 1)
		g.rev = rev
	}
}
