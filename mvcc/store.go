package mvcc

import (
	"encoding/binary"
	"errors"
	"fmt"
	"github.com/cairnkv/cairn/version"
	"os"
	"sync"
	"time"

	"github.com/cairnkv/cairn/clock"
	bolt "go.etcd.io/bbolt"
	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.uber.org/zap"
)

var (
	keyBucket  = []byte("key")
	metaBucket = []byte("meta")

	metaConsistentIndex = []byte("consistent_index")
	metaTerm            = []byte("term")
	metaScheduledCompat = []byte("scheduledCompactRev")
	metaFinishedCompact = []byte("finishedCompactRev")
	metaStorageVersion  = []byte("storageVersion")
	metaConfState       = []byte("confState")
)

// Config configures a Store. The zero value of every field but Path is a
// usable default.
type Config struct {
	Path                 string        // bbolt file (created if missing)
	BatchInterval        time.Duration // commit the open batch when this much (clock) time has passed since it began; default 100ms
	BatchLimit           int           // ...or when it holds this many writes; default 10000
	CompactionBatchLimit int           // revisions scanned per compaction batch; default 1000
	// CompactionPace is the clock time one compaction batch stands for: a
	// CompactStep that comes this long or longer after the previous one
	// does a batch for each CompactionPace that passed, up to
	// compactionCatchUp, so physical compaction goes on at one batch per
	// CompactionPace even when steps are rare (an idle member steps once
	// a tick); steps closer together do one batch each. Default 10ms (as
	// etcd's --compaction-sleep-interval between its batches).
	CompactionPace time.Duration
	Clock          clock.Clock // default clock.Real{}
	NoSync         bool        // no fsync of bbolt (the simulator, --unsafe-no-fsync); default false
	Mlock          bool        // lock the database's pages in RAM (--memory-mlock)
	Watch          WatchLimits // memory bounds of watching; zero fields take the defaults
	Logger         *zap.Logger // nil = zap.NewNop()
}

func (c *Config) validate() error {
	if c.Path == "" {
		return errors.New("mvcc: Config.Path is empty")
	}
	if c.BatchInterval <= 0 {
		c.BatchInterval = 100 * time.Millisecond
	}
	if c.BatchLimit <= 0 {
		c.BatchLimit = 10000
	}
	if c.CompactionBatchLimit <= 0 {
		c.CompactionBatchLimit = 1000
	}
	if c.CompactionPace <= 0 {
		c.CompactionPace = 10 * time.Millisecond
	}
	if c.Clock == nil {
		c.Clock = clock.Real{}
	}
	if c.Logger == nil {
		c.Logger = zap.NewNop()
	}
	return nil
}

// compaction is a physical compaction in progress: revisions at or below rev
// not in keep are removed from the key bucket, scanning from next.
type compaction struct {
	rev     int64
	keep    map[Revision]struct{}
	next    []byte
	started time.Time // by the Store's clock: Compact, or the first step of one resumed at open
	last    time.Time // when the last step ran (zero before the first)
}

// state is everything derived from one database file.
type state struct {
	db         *bolt.DB
	index      *treeIndex
	rev        int64
	compactRev int64
	comp       *compaction
	ci, term   uint64
	keys       int64 // live keys at rev
}

// Store is the revisioned key space. See the package documentation for the
// concurrency contract.
type Store struct {
	cfg Config
	lg  *zap.Logger

	// wmu serialises the writer with Defrag, ReplaceDB, Snapshot, Hash and
	// Close. boundary (on wmu) is signalled when the open batch reaches an
	// entry boundary (see lockAtBoundary).
	wmu      sync.Mutex
	boundary *sync.Cond

	// Guarded by wmu (writer-only state).
	tx         *bolt.Tx // the open batch
	batchN     int      // writes in the open batch
	batchStart time.Time
	midEntry   bool // writes since the last SetConsistentIndex, with ciTracked
	ciTracked  bool // SetConsistentIndex is in use
	hook       func(rev int64, events []*mvccpb.Event)
	failed     error // sticky: a commit failed, the store is unusable

	commitObserver func(d time.Duration) // see SetCommitObserver; guarded by wmu
	compObserver   CompactionObserver    // see SetCompactionObserver; guarded by wmu
	phaseObserver  func(CommitPhases)    // see SetCommitPhasesObserver; guarded by wmu
	ops            opCounters            // see Stats

	// mu guards what readers see: the state and the overlay.
	mu sync.RWMutex
	state
	// overlay holds the encoded KeyValue of every revision written in the
	// open batch, so readers see uncommitted writes without touching tx.
	overlay map[Revision][]byte
	closed  bool

	watches *watchState // see watch.go

	snaps snapshotTracker // open DBSnapshots; see snapshot.go
}

// Open opens or creates the store at cfg.Path, rebuilds the key index from
// it and resumes an unfinished compaction (completed by CompactStep).
func Open(cfg Config) (*Store, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	db, err := openDB(cfg.Path, &cfg)
	if err != nil {
		return nil, err
	}
	st, err := load(db)
	if err != nil {
		_ = db.Close()
		return nil, err
	}
	s := &Store{cfg: cfg, lg: cfg.Logger}
	s.boundary = sync.NewCond(&s.wmu)
	if err := s.install(st); err != nil {
		_ = db.Close()
		return nil, err
	}
	s.watches = newWatchState(s.rev, cfg.Watch)
	return s, nil
}

// openDB opens the bbolt file at path with cfg's NoSync and Mlock. As
// etcd's --unsafe-no-fsync does, NoSync also skips the fsync of the file's
// growth.
func openDB(path string, cfg *Config) (*bolt.DB, error) {
	db, err := bolt.Open(path, 0o600, &bolt.Options{NoSync: cfg.NoSync, NoGrowSync: cfg.NoSync, Mlock: cfg.Mlock,
		FreelistType: bolt.FreelistMapType, NoFreelistSync: true, InitialMmapSize: initialMmapSize})
	if err != nil {
		return nil, fmt.Errorf("mvcc: opening %s: %w", path, err)
	}
	return db, nil
}

// load creates the buckets if missing and derives the state of db.
func load(db *bolt.DB) (*state, error) {
	st := &state{db: db, index: newTreeIndex(), rev: 1}
	err := db.Update(func(tx *bolt.Tx) error {
		kb, err := tx.CreateBucketIfNotExists(keyBucket)
		if err != nil {
			return err
		}
		mb, err := tx.CreateBucketIfNotExists(metaBucket)
		if err != nil {
			return err
		}
		st.ci = getUint64(mb, metaConsistentIndex)
		st.term = getUint64(mb, metaTerm)
		scheduled, err := getCompactRev(mb, metaScheduledCompat)
		if err != nil {
			return err
		}
		finished, err := getCompactRev(mb, metaFinishedCompact)
		if err != nil {
			return err
		}
		if mb.Get(metaStorageVersion) == nil {
			if err := mb.Put(metaStorageVersion, []byte(version.EtcdStorage)); err != nil {
				return err
			}
		}
		if err := indexRevisions(kb, st.index, func(r Revision, _, _ []byte) {
			st.rev = max(st.rev, r.Main)
		}); err != nil {
			return err
		}
		if scheduled > 0 {
			st.compactRev = scheduled
			st.rev = max(st.rev, scheduled)
			keep := st.index.compact(scheduled)
			if scheduled > finished {
				st.comp = &compaction{rev: scheduled, keep: keep}
			}
		}
		st.keys = countLiveKeys(st.index)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("mvcc: loading %s: %w", db.Path(), err)
	}
	return st, nil
}

// install makes st current and opens a new batch on it. Callers hold wmu
// and mu, or own s exclusively.
func (s *Store) install(st *state) error {
	tx, err := st.db.Begin(true)
	if err != nil {
		return fmt.Errorf("mvcc: beginning batch: %w", err)
	}
	s.state = *st
	s.noteRestore()
	s.tx = tx
	s.overlay = make(map[Revision][]byte)
	s.batchN = 0
	s.midEntry = false
	s.ciTracked = st.ci > 0
	return nil
}

// indexRevisions adds every revision of kb, the key bucket, to index,
// calling each with the revision and its raw key and value once indexed.
func indexRevisions(kb *bolt.Bucket, index *treeIndex, each func(r Revision, k, v []byte)) error {
	c := kb.Cursor()
	for k, v := c.First(); k != nil; k, v = c.Next() {
		r, tomb, ok := parseRevKey(k)
		if !ok && legacyRevKey(k) {
			return ErrLegacyFormat
		}
		if !ok {
			return fmt.Errorf("mvcc: corrupt revision key %x in bucket %q", k, keyBucket)
		}
		key, err := kvKey(v)
		if err != nil {
			return fmt.Errorf("mvcc: corrupt value at revision %v: %w", r, err)
		}
		if tomb {
			index.tombstone(key, r)
		} else {
			index.put(key, r)
		}
		each(r, k, v)
	}
	return nil
}

// getCompactRev reads a compacted revision from meta: a revision key, as
// etcd writes it.
func getCompactRev(b *bolt.Bucket, k []byte) (int64, error) {
	v := b.Get(k)
	if v == nil {
		return 0, nil
	}
	if len(v) == 8 {
		return 0, ErrLegacyFormat
	}
	r, _, ok := parseRevKey(v)
	if !ok {
		return 0, fmt.Errorf("mvcc: corrupt %s %x in bucket %q", k, v, metaBucket)
	}
	return r.Main, nil
}

func getUint64(b *bolt.Bucket, k []byte) uint64 {
	v := b.Get(k)
	if len(v) != 8 {
		return 0
	}
	return binary.BigEndian.Uint64(v)
}

func putUint64(b *bolt.Bucket, k []byte, v uint64) error {
	var buf [8]byte
	binary.BigEndian.PutUint64(buf[:], v)
	return b.Put(k, buf[:])
}

// writable returns an error when the writer may not proceed. wmu is held.
func (s *Store) writable() error {
	if s.failed != nil {
		return s.failed
	}
	if s.closed {
		return ErrClosed
	}
	return nil
}

// noteWrite counts one write into the open batch. wmu is held.
func (s *Store) noteWrite(entryWrite bool) {
	if s.batchN == 0 {
		s.batchStart = s.cfg.Clock.Now()
	}
	s.batchN++
	if entryWrite && s.ciTracked {
		s.midEntry = true
	}
}

func (s *Store) due() bool {
	if s.batchN == 0 {
		return false
	}
	return s.batchN >= s.cfg.BatchLimit || s.cfg.Clock.Now().Sub(s.batchStart) >= s.cfg.BatchInterval
}

// commit commits the open batch and, if reopen, begins the next one. wmu is
// held. A failed commit makes the store unusable.
func (s *Store) commit(reopen bool) error {
	if err := s.writable(); err != nil {
		return err
	}
	start := s.cfg.Clock.Now()
	if err := s.tx.Commit(); err != nil {
		s.failed = fmt.Errorf("mvcc: committing batch: %w", err)
		s.tx = nil
		return s.failed
	}
	if s.commitObserver != nil {
		s.commitObserver(s.cfg.Clock.Now().Sub(start))
	}
	if s.phaseObserver != nil {
		st := s.tx.Stats()
		s.phaseObserver(CommitPhases{Rebalance: st.GetRebalanceTime(), Spill: st.GetSpillTime(), Write: st.GetWriteTime()})
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.overlay = make(map[Revision][]byte)
	s.batchN = 0
	s.tx = nil
	if !reopen {
		return nil
	}
	tx, err := s.db.Begin(true)
	if err != nil {
		s.failed = fmt.Errorf("mvcc: beginning batch: %w", err)
		return s.failed
	}
	s.tx = tx
	return nil
}

// lockAtBoundary locks wmu at a point where the open batch holds only whole
// raft entries: when SetConsistentIndex is in use, it waits until every write
// has been followed by SetConsistentIndex, so that a commit from another
// goroutine never persists half an entry without its index.
func (s *Store) lockAtBoundary() {
	s.wmu.Lock()
	for s.midEntry && s.failed == nil && !s.closed {
		s.boundary.Wait()
	}
}

// MaybeCommit commits the open batch if BatchInterval has elapsed (by the
// configured Clock) since it began or it holds BatchLimit writes; otherwise
// it does nothing. Writer goroutine only.
func (s *Store) MaybeCommit() error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if err := s.writable(); err != nil {
		return err
	}
	if !s.due() {
		return nil
	}
	return s.commit(true)
}

// Commit commits the open batch now (fsync unless NoSync). Writer goroutine
// only.
func (s *Store) Commit() error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	return s.commit(true)
}

// SetConsistentIndex records the raft index and term of the last applied
// entry in the open batch. The node calls it after applying each entry; it
// marks an entry boundary, and commits the batch if it is due.
func (s *Store) SetConsistentIndex(index, term uint64) {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if s.writable() != nil {
		return
	}
	mb := s.tx.Bucket(metaBucket)
	if err := putUint64(mb, metaConsistentIndex, index); err != nil {
		s.failed = fmt.Errorf("mvcc: recording consistent index: %w", err)
		return
	}
	if err := putUint64(mb, metaTerm, term); err != nil {
		s.failed = fmt.Errorf("mvcc: recording term: %w", err)
		return
	}
	s.mu.Lock()
	s.ci, s.term = index, term
	s.mu.Unlock()
	s.noteWrite(false)
	s.ciTracked = true
	s.midEntry = false
	s.boundary.Broadcast()
	if s.due() {
		_ = s.commit(true) // a failure is sticky and returned by the next write
	}
}

// ConsistentIndex returns the index and term last given to
// SetConsistentIndex; right after Open, what was last committed.
func (s *Store) ConsistentIndex() (index, term uint64) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.ci, s.term
}

// Rev returns the current revision: 1 for a fresh store.
func (s *Store) Rev() int64 {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.rev
}

// CompactRev returns the last compacted revision, 0 if none.
func (s *Store) CompactRev() int64 {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.compactRev
}

// Compacting reports whether a compaction's revisions are still being
// removed (CompactStep has work to do).
func (s *Store) Compacting() bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.comp != nil
}

// SetEventHook installs fn, called synchronously on the writer goroutine at
// the end of every Put, DeleteRange or Txn that changed something, with the
// new revision and all its events in order. fn must not call the Store's
// mutating methods. nil removes the hook.
func (s *Store) SetEventHook(fn func(rev int64, events []*mvccpb.Event)) {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	s.hook = fn
}

// Close commits the open batch and closes the database. Later calls return
// ErrClosed from every method but Close, which returns nil.
func (s *Store) Close() error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if s.closed {
		return nil
	}
	var errs []error
	if s.failed == nil {
		errs = append(errs, s.commit(false))
	} else if s.tx != nil {
		errs = append(errs, s.tx.Rollback())
	}
	s.mu.Lock()
	s.closed = true
	errs = append(errs, s.db.Close())
	s.mu.Unlock()
	s.boundary.Broadcast()
	return errors.Join(errs...)
}

// Abandon closes the database WITHOUT committing the open batch, as a crash
// would: everything since the last commit is lost.
func (s *Store) Abandon() error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if s.closed {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var errs []error
	if s.tx != nil {
		errs = append(errs, s.tx.Rollback())
		s.tx = nil
	}
	s.closed = true
	errs = append(errs, s.db.Close())
	s.boundary.Broadcast()
	return errors.Join(errs...)
}

// syncDir fsyncs the directory holding path, making a rename durable.
func syncDir(path string) error {
	d, err := os.Open(dirOf(path))
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
