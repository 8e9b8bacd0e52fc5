package main

import (
	"reflect"
	"slices"
	"testing"
	"time"
)

func TestScheduleIsReproducibleFromTheSeed(t *testing.T) {
	kinds := []string{FaultKill, FaultPause, FaultPartition, FaultDelay}
	a := Schedule(42, 5, time.Minute, kinds)
	b := Schedule(42, 5, time.Minute, kinds)
	if !reflect.DeepEqual(a, b) {
		t.Fatalf("two schedules of seed 42 differ:\n%v\n%v", a, b)
	}
	if c := Schedule(43, 5, time.Minute, kinds); reflect.DeepEqual(a, c) {
		t.Fatalf("seeds 42 and 43 give the same schedule: %v", a)
	}
}

func TestScheduleStaysInBoundsAndUsesOnlyTheGivenKinds(t *testing.T) {
	for seed := int64(1); seed <= 50; seed++ {
		for _, n := range []int{3, 5} {
			kinds := []string{FaultKill, FaultPartition}
			dur := 30 * time.Second
			sched := Schedule(seed, n, dur, kinds)
			if len(sched) < 5 {
				t.Fatalf("seed %d n %d: only %d faults in %v: %v", seed, n, len(sched), dur, sched)
			}
			var end time.Duration
			for i, f := range sched {
				if !slices.Contains(kinds, f.Kind) {
					t.Fatalf("seed %d: fault %d has kind %q, not one of %v", seed, i, f.Kind, kinds)
				}
				if f.At < end || f.At+f.For > dur {
					t.Fatalf("seed %d: fault %d (%v) overlaps the previous one (ended %v) or runs past %v", seed, i, f, end, dur)
				}
				end = f.At + f.For
				if f.Target < 0 || f.Target >= n {
					t.Fatalf("seed %d: fault %d targets m%d of %d", seed, i, f.Target, n)
				}
				switch f.Shape {
				case PartOneWay:
					if f.From == f.To || f.From < 0 || f.To < 0 || f.From >= n || f.To >= n {
						t.Fatalf("seed %d: one-way cut %d→%d of %d members", seed, f.From, f.To, n)
					}
				case PartSplit:
					if len(f.Minority) != (n-1)/2 {
						t.Fatalf("seed %d: split minority %v of %d members", seed, f.Minority, n)
					}
				}
				if f.Mode != LinkBlackhole && f.Mode != LinkRefuse {
					t.Fatalf("seed %d: fault %d has link mode %v", seed, i, f.Mode)
				}
			}
		}
	}
}

func TestScheduleWithoutFaultsIsEmpty(t *testing.T) {
	if s := Schedule(1, 3, time.Minute, nil); len(s) != 0 {
		t.Fatalf("Schedule with no kinds = %v, want none", s)
	}
	if s := Schedule(1, 1, time.Minute, []string{FaultKill}); len(s) != 0 {
		t.Fatalf("Schedule of one member = %v, want none", s)
	}
}

func TestParseFaults(t *testing.T) {
	got, err := ParseFaults("kill, partition,kill")
	if err != nil || !reflect.DeepEqual(got, []string{FaultKill, FaultPartition}) {
		t.Fatalf("ParseFaults = %v, %v", got, err)
	}
	if got, err := ParseFaults("none"); err != nil || got != nil {
		t.Fatalf("ParseFaults(none) = %v, %v", got, err)
	}
	if _, err := ParseFaults("kill,flood"); err == nil {
		t.Fatal("ParseFaults accepted an unknown fault")
	}
}

func TestPartitionLinks(t *testing.T) {
	if got, want := isolateLinks(3, 1), [][2]int{{1, 0}, {0, 1}, {1, 2}, {2, 1}}; !reflect.DeepEqual(got, want) {
		t.Fatalf("isolateLinks(3, 1) = %v, want %v", got, want)
	}
	got := splitLinks(5, []int{0, 3})
	want := [][2]int{{0, 1}, {0, 2}, {0, 4}, {1, 0}, {1, 3}, {2, 0}, {2, 3}, {3, 1}, {3, 2}, {3, 4}, {4, 0}, {4, 3}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("splitLinks(5, [0 3]) = %v, want %v", got, want)
	}
}

func TestScheduleOfDiskAndMembershipFaults(t *testing.T) {
	kinds := []string{FaultPower, FaultDiskStall, FaultDiskEIO, FaultDiskFull, FaultMembers}
	seen := map[string]bool{}
	for seed := int64(1); seed <= 50; seed++ {
		for _, n := range []int{3, 5} {
			dur := 60 * time.Second
			var end time.Duration
			for i, f := range Schedule(seed, n, dur, kinds) {
				seen[f.Label()] = true
				if f.At < end || f.At+f.For > dur {
					t.Fatalf("seed %d: fault %d (%v) overlaps the previous one or runs past %v", seed, i, f, dur)
				}
				end = f.At + f.For
				switch f.Kind {
				case FaultPower:
					want := map[string]int{PowerMinority: (n - 1) / 2, PowerMajority: n/2 + 1, PowerAll: n}[f.Shape]
					if len(f.Minority) != want || !slices.IsSorted(f.Minority) || len(slices.Compact(slices.Clone(f.Minority))) != want {
						t.Fatalf("seed %d n %d: power cut %s on %v", seed, n, f.Shape, f.Minority)
					}
					for _, m := range f.Minority {
						if m < 0 || m >= n {
							t.Fatalf("seed %d: power cut on m%d of %d", seed, m, n)
						}
					}
				case FaultDiskStall:
					if f.Delay < time.Second || f.Delay >= 4*time.Second || f.For < f.Delay {
						t.Fatalf("seed %d: fsync stall %v lasting %v", seed, f.Delay, f.For)
					}
				case FaultMembers:
					if f.Shape != MembersReplace && f.Shape != MembersLearner {
						t.Fatalf("seed %d: membership change %q", seed, f.Shape)
					}
				}
			}
		}
	}
	for _, l := range []string{"power/minority", "power/majority", "power/all", "disk-stall", "disk-eio", "disk-full", "members/replace", "members/learner"} {
		if !seen[l] {
			t.Errorf("no %s fault in 100 schedules", l)
		}
	}
}

func TestParseFaultsKnowsDiskAndMembershipKinds(t *testing.T) {
	got, err := ParseFaults("power,disk-stall,disk-eio,disk-full,members")
	if err != nil || len(got) != 5 {
		t.Fatalf("ParseFaults = %v, %v", got, err)
	}
	if !needsDisk(got) || needsDisk([]string{FaultKill, FaultMembers}) {
		t.Fatal("needsDisk wrong")
	}
}
