package mvcc

import (
	"bytes"
	"sort"

	"github.com/google/btree"
)

// generation is one life of a key: its revisions in ascending order, from the
// put that created it to, in a closed generation, the tombstone that ended it.
type generation []Revision

// keyIndex is the revision history of one key. gens is never empty; the last
// generation is the live one and is empty when the key is deleted (or was
// never put). Every earlier generation is closed: its last revision is a
// tombstone.
type keyIndex struct {
	key  []byte
	gens []generation
}

// latest returns the newest revision of a live key.
func (ki *keyIndex) latest() (Revision, bool) {
	g := ki.gens[len(ki.gens)-1]
	if len(g) == 0 {
		return Revision{}, false
	}
	return g[len(g)-1], true
}

// at returns the revision holding the key's value as of store revision
// atRev, or false when the key did not exist then.
func (ki *keyIndex) at(atRev int64) (Revision, bool) {
	for i := len(ki.gens) - 1; i >= 0; i-- {
		g := ki.gens[i]
		if len(g) == 0 || g[0].Main > atRev {
			continue
		}
		j := sort.Search(len(g), func(k int) bool { return g[k].Main > atRev }) - 1
		if i < len(ki.gens)-1 && j == len(g)-1 {
			return Revision{}, false // the tombstone: deleted as of atRev
		}
		return g[j], true
	}
	return Revision{}, false
}

func (ki *keyIndex) put(r Revision) {
	last := len(ki.gens) - 1
	ki.gens[last] = append(ki.gens[last], r)
}

func (ki *keyIndex) tombstone(r Revision) {
	ki.put(r)
	ki.gens = append(ki.gens, nil)
}

// compact drops history not needed to read at store revisions >= c:
// whole generations whose tombstone is below c, and in the first
// generation that lives past c, everything before its newest revision at
// or below c. A generation whose tombstone is at c keeps just that
// tombstone (until a later compaction), so a watch from the compacted
// revision, which etcd allows, still gets that revision's deletes, as in
// etcd 3.7. The revisions at or below c that remain are added to keep. It
// reports whether nothing remains.
func (ki *keyIndex) compact(c int64, keep map[Revision]struct{}) bool {
	i := 0
	for i < len(ki.gens)-1 && ki.gens[i][len(ki.gens[i])-1].Main < c {
		i++
	}
	gens := ki.gens[:0:0]
	if i == 0 && len(ki.gens) == 1 {
		gens = ki.gens[:0] // the common case: one generation, trimmed in place
	}
	for k := i; k < len(ki.gens); k++ {
		g := ki.gens[k]
		if k < len(ki.gens)-1 && g[len(g)-1].Main == c {
			tomb := g[len(g)-1]
			if keep != nil {
				keep[tomb] = struct{}{}
			}
			gens = append(gens, generation{tomb})
			continue
		}
		if j := sort.Search(len(g), func(k int) bool { return g[k].Main > c }) - 1; j >= 0 {
			if keep != nil {
				keep[g[j]] = struct{}{}
			}
			if j > 0 {
				g = append(generation(nil), g[j:]...)
			}
		}
		gens = append(append(gens, g), ki.gens[k+1:]...)
		break
	}
	ki.gens = gens
	return len(ki.gens) == 1 && len(ki.gens[0]) == 0
}

// revert removes every revision with the given main revision; they must be
// the newest of the key. It reports whether nothing remains.
func (ki *keyIndex) revert(main int64) bool {
	for {
		last := len(ki.gens) - 1
		g := ki.gens[last]
		if len(g) == 0 {
			if last == 0 {
				break
			}
			prev := ki.gens[last-1]
			if prev[len(prev)-1].Main != main {
				break
			}
			ki.gens = ki.gens[:last] // reopen the generation the tombstone closed
			continue
		}
		if g[len(g)-1].Main != main {
			break
		}
		ki.gens[last] = g[:len(g)-1]
	}
	return len(ki.gens) == 1 && len(ki.gens[0]) == 0
}

// treeIndex maps keys to their keyIndex, ordered by key.
//
// It is a github.com/google/btree BTreeG. BenchmarkIndexBTree compares it
// with github.com/tidwall/btree (NoLocks) over 100k keys: tidwall is about
// as fast on point lookups (1.7 vs 1.8 us on a busy 2-core box), 1.6x faster
// on 100-key scans and 1.4x on inserts. We keep google/btree anyway:
// it documents read operations as safe for concurrent use, which is the
// whole read path here (many Range/HashKV calls walk the tree in parallel
// under mu.RLock), while tidwall's lock-free mode makes no such promise and
// its default mode takes an internal lock on every read. Revisit with a
// concurrency review of tidwall if scans become the bottleneck.
type treeIndex struct {
	tree *btree.BTreeG[*keyIndex]
}

func newTreeIndex() *treeIndex {
	return &treeIndex{tree: btree.NewG(32, func(a, b *keyIndex) bool { return bytes.Compare(a.key, b.key) < 0 })}
}

func (t *treeIndex) get(key []byte) *keyIndex {
	ki, _ := t.tree.Get(&keyIndex{key: key})
	return ki
}

func (t *treeIndex) put(key []byte, r Revision) {
	ki := t.get(key)
	if ki == nil {
		ki = &keyIndex{key: append([]byte(nil), key...), gens: []generation{nil}}
		t.tree.ReplaceOrInsert(ki)
	}
	ki.put(r)
}

// tombstone records the deletion of key at r. The key must be live, except
// while rebuilding from disk where a defensive empty history is tolerated.
func (t *treeIndex) tombstone(key []byte, r Revision) {
	ki := t.get(key)
	if ki == nil {
		ki = &keyIndex{key: append([]byte(nil), key...), gens: []generation{nil}}
		t.tree.ReplaceOrInsert(ki)
	}
	ki.tombstone(r)
}

// revert undoes every change with main revision main to key.
func (t *treeIndex) revert(key []byte, main int64) {
	ki := t.get(key)
	if ki != nil && ki.revert(main) {
		t.tree.Delete(ki)
	}
}

// ascend calls fn for each key in [key, end) in key order until fn returns
// false. An empty end means the single key; end "\x00" means every key >= key.
func (t *treeIndex) ascend(key, end []byte, fn func(ki *keyIndex) bool) {
	switch {
	case len(end) == 0:
		if ki := t.get(key); ki != nil {
			fn(ki)
		}
	case len(end) == 1 && end[0] == 0:
		t.tree.AscendGreaterOrEqual(&keyIndex{key: key}, fn)
	default:
		if bytes.Compare(key, end) >= 0 {
			return
		}
		t.tree.AscendRange(&keyIndex{key: key}, &keyIndex{key: end}, fn)
	}
}

// compact compacts every key at c and returns the revisions at or below c
// that must stay on disk.
func (t *treeIndex) compact(c int64) map[Revision]struct{} {
	keep := make(map[Revision]struct{})
	var empty []*keyIndex
	t.tree.Ascend(func(ki *keyIndex) bool {
		if ki.compact(c, keep) {
			empty = append(empty, ki)
		}
		return true
	})
	for _, ki := range empty {
		t.tree.Delete(ki)
	}
	return keep
}

// revAt is a revision in the index and whether it is a tombstone.
type revAt struct {
	rev  Revision
	tomb bool
}

// revisions returns every revision with Main <= atRev still in the index, in
// revision order.
func (t *treeIndex) revisions(atRev int64) []revAt {
	var out []revAt
	t.tree.Ascend(func(ki *keyIndex) bool {
		for gi, g := range ki.gens {
			for ri, r := range g {
				if r.Main > atRev {
					break
				}
				out = append(out, revAt{rev: r, tomb: gi < len(ki.gens)-1 && ri == len(g)-1})
			}
		}
		return true
	})
	sort.Slice(out, func(i, j int) bool { return out[j].rev.GreaterThan(out[i].rev) })
	return out
}

// hashRevisions returns, in revision order, the revisions etcd's HashKV
// hashes at atRev with the store compacted at compactRev: every revision
// after compactRev up to atRev, and of those at or below compactRev only
// each key's live revision as of atRev (or all of them when no key is
// live); never the tombstone at compactRev itself, which some etcd versions
// remove at compaction and others keep. So the number matches etcd's for
// the same data, and does not depend on how far physical compaction got.
func (t *treeIndex) hashRevisions(atRev, compactRev int64) []revAt {
	all := t.revisions(atRev)
	live := make(map[Revision]bool)
	t.tree.Ascend(func(ki *keyIndex) bool {
		if r, ok := ki.at(atRev); ok {
			live[r] = true
		}
		return true
	})
	out := all[:0]
	for _, ra := range all {
		switch {
		case ra.tomb && ra.rev.Main == compactRev:
		case ra.rev.Main > compactRev, len(live) == 0, live[ra.rev]:
			out = append(out, ra)
		}
	}
	return out
}

func (t *treeIndex) len() int { return t.tree.Len() }
