package main

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/cairnkv/cairn/internal/proc"
)

// FaultMembers changes the membership through the Cluster API: it removes
// a member (which must then stop by itself), wipes its data, and adds it
// back as a fresh member, either at once as a voter (replace) or as a
// learner promoted once it has caught up (learner). The slot keeps its
// name, ports and proxy; its member ID changes.
const FaultMembers = "members"

// Shapes of a membership change.
const (
	MembersReplace = "replace"
	MembersLearner = "learner"
)

func scheduleMembers(rng *rand.Rand, f *Fault) {
	f.Shape = MembersReplace
	if rng.IntN(2) == 0 {
		f.Shape = MembersLearner
	}
	f.Leader = rng.IntN(4) == 0
}

// membersLog records what the membership changes did, for the members
// check.
type membersLog struct {
	mu       sync.Mutex
	done     map[string]int // completed changes by shape
	skipped  int            // removals the cluster refused until the deadline
	problems []string
}

func (l *membersLog) problem(format string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.problems = append(l.problems, fmt.Sprintf(format, args...))
}

// memberCall runs call with the client of each running member but skip in
// turn until one succeeds or the deadline passes.
func (nm *nemesis) memberCall(skip int, deadline time.Time, call func(context.Context, *clientv3.Client) error) error {
	var last error
	for {
		for i, m := range nm.c.members {
			if i == skip || !m.Running() {
				continue
			}
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			err := call(ctx, nm.clis[i])
			cancel()
			if err == nil {
				return nil
			}
			last = err
		}
		if time.Now().After(deadline) {
			if last == nil {
				last = errors.New("no member running")
			}
			return last
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// applyMembers removes member target and returns the undo that adds it
// back fresh.
func (nm *nemesis) applyMembers(f Fault, target int) (func() error, error) {
	m := nm.c.members[target]
	oldID := m.id.Load()
	tried := false
	err := nm.memberCall(target, time.Now().Add(10*time.Second), func(ctx context.Context, cli *clientv3.Client) error {
		_, err := cli.MemberRemove(ctx, oldID)
		if tried && errors.Is(err, rpctypes.ErrMemberNotFound) {
			return nil // an earlier attempt was applied, its answer lost
		}
		tried = true
		return err
	})
	if err != nil {
		nm.log("nemesis: the cluster refused to remove %s: %v (skipped)", m.Name, err)
		nm.members.mu.Lock()
		nm.members.skipped++
		nm.members.mu.Unlock()
		return func() error { return nil }, nil
	}
	nm.log("nemesis: removed %s (%x) from the cluster (%s)", m.Name, oldID, f.Shape)
	if m.Running() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		_, _, _ = m.Wait(ctx)
		cancel()
		if m.Running() {
			nm.members.problem("%s still ran 10s after its removal", m.Name)
			if err := m.Kill(); err != nil && !errors.Is(err, proc.ErrNotRunning) {
				return nil, err
			}
		}
	}
	if err := wipe(m.DataDir); err != nil {
		return nil, err
	}
	return func() error { return nm.addBack(m, f.Shape == MembersLearner) }, nil
}

// wipe removes everything in dir (a mount point stays) and syncs dir, so
// that a power cut cannot bring the old data back (rm -rf, then sync).
func wipe(dir string) error {
	ents, err := os.ReadDir(dir)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil
		}
		return err
	}
	for _, e := range ents {
		if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
			return err
		}
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// addBack adds m to the cluster again as a fresh member (a learner first,
// then promoted, with learner) and starts it.
func (nm *nemesis) addBack(m *member, learner bool) error {
	var members []*etcdserverpb.Member
	var newID uint64
	tried := false
	err := nm.memberCall(m.idx, time.Now().Add(20*time.Second), func(ctx context.Context, cli *clientv3.Client) error {
		var resp *clientv3.MemberAddResponse
		var err error
		if learner {
			resp, err = cli.MemberAddAsLearner(ctx, []string{m.AdvertisePeerURL})
		} else {
			resp, err = cli.MemberAdd(ctx, []string{m.AdvertisePeerURL})
		}
		if err == nil {
			members, newID = resp.Members, resp.Member.ID
			return nil
		}
		if !tried || !errors.Is(err, rpctypes.ErrPeerURLExist) {
			tried = true
			return err
		}
		// An earlier attempt was applied, its answer lost: find the
		// member it added.
		list, err := cli.MemberList(ctx)
		if err != nil {
			return err
		}
		for _, mem := range list.Members {
			if slices.Contains(mem.PeerURLs, m.AdvertisePeerURL) {
				members, newID = list.Members, mem.ID
				return nil
			}
		}
		return fmt.Errorf("%s's peer URL is taken, by no listed member", m.Name)
	})
	if err != nil {
		return fmt.Errorf("adding %s back: %w", m.Name, err)
	}
	var peers []proc.Peer
	for _, mem := range members {
		name := mem.Name
		if mem.ID == newID {
			name = m.Name
		}
		for _, u := range mem.PeerURLs {
			peers = append(peers, proc.Peer{Name: name, URL: u})
		}
	}
	m.id.Store(newID)
	m.InitialCluster = proc.InitialCluster(peers...)
	m.Existing = true
	what := "voter"
	if learner {
		what = "learner"
	}
	nm.log("nemesis: added %s back as a fresh %s (%x)", m.Name, what, newID)
	if err := startMember(m); err != nil {
		return fmt.Errorf("starting %s after adding it back: %w", m.Name, err)
	}
	if learner {
		err := nm.memberCall(m.idx, time.Now().Add(30*time.Second), func(ctx context.Context, cli *clientv3.Client) error {
			_, err := cli.MemberPromote(ctx, newID)
			if errors.Is(err, rpctypes.ErrMemberNotLearner) {
				return nil // an earlier attempt was applied, its answer lost
			}
			return err
		})
		if err != nil {
			nm.members.problem("learner %s (%x) not promoted in 30s: %v", m.Name, newID, err)
			return nil
		}
		nm.log("nemesis: promoted %s", m.Name)
	}
	// As a careful operator, wait until it has caught up (it answers a
	// linearizable read) before the next change: a voter that holds
	// nothing yet may be needed for a quorum once another member goes.
	deadline := time.Now().Add(30 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		_, err := nm.clis[m.idx].Get(ctx, "chaos/caught-up")
		cancel()
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			nm.members.problem("%s (%x) did not serve a linearizable read within 30s of joining: %v", m.Name, newID, err)
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	nm.members.mu.Lock()
	if nm.members.done == nil {
		nm.members.done = map[string]int{}
	}
	if learner {
		nm.members.done[MembersLearner]++
	} else {
		nm.members.done[MembersReplace]++
	}
	nm.members.mu.Unlock()
	return nil
}

// checkMembers is the verdict on the membership changes: every member
// lists exactly the cluster's members, all voters; removed members
// stopped; learners were promoted.
func checkMembers(c *cluster, nm *nemesis, deadline time.Time) Check {
	want := make([]uint64, len(c.members))
	for i, m := range c.members {
		want[i] = m.id.Load()
	}
	slices.Sort(want)
	var disagree []string
	for {
		disagree = disagree[:0]
		for i, cli := range nm.clis {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			resp, err := cli.MemberList(ctx, clientv3.WithSerializable())
			cancel()
			if err != nil {
				disagree = append(disagree, fmt.Sprintf("m%d: %v", i, err))
				continue
			}
			var got []uint64
			var learners []uint64
			for _, mem := range resp.Members {
				got = append(got, mem.ID)
				if mem.IsLearner {
					learners = append(learners, mem.ID)
				}
			}
			slices.Sort(got)
			if !slices.Equal(got, want) || len(learners) > 0 {
				disagree = append(disagree, fmt.Sprintf("m%d lists %x (learners %x), want %x", i, got, learners, want))
			}
		}
		if len(disagree) == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	nm.members.mu.Lock()
	defer nm.members.mu.Unlock()
	detail := fmt.Sprintf("%d replaced, %d re-added as learners and promoted, %d removals refused", nm.members.done[MembersReplace], nm.members.done[MembersLearner], nm.members.skipped)
	problems := append(slices.Clone(nm.members.problems), disagree...)
	if len(problems) > 0 {
		return fail("members", "%s; %d problems: %s", detail, len(problems), strings.Join(first(problems, 3), "; "))
	}
	return pass("members", "%s; every member lists the same %d voters", detail, len(want))
}
