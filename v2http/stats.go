package v2http

import (
	"math"
	"sync"
	"time"
)

// LeaderStats are /v2/stats/leader's per-follower latencies and counts,
// kept as etcd 3.5 kept them: every append (MsgApp) this member wrote to a
// follower's stream is a success with the time the write took (current,
// average, standard deviation, minimum and maximum, in milliseconds), and
// every append lost (a failed write, or dropped while the stream was down
// or its queue full) is a failure. They are fed by the peer transport
// (transport.HTTPConfig.OnAppend) for as long as the process runs, across
// leaderships, as etcd's were; a follower nothing was sent to shows
// etcd's initial minimum, 2^63.
type LeaderStats struct {
	mu        sync.Mutex
	followers map[uint64]*followerStats
}

type followerStats struct {
	Latency latencyStats `json:"latency"`
	Counts  countsStats  `json:"counts"`
}

type latencyStats struct {
	Current           float64 `json:"current"`
	Average           float64 `json:"average"`
	averageSquare     float64
	StandardDeviation float64 `json:"standardDeviation"`
	Minimum           float64 `json:"minimum"`
	Maximum           float64 `json:"maximum"`
}

type countsStats struct {
	Fail    uint64 `json:"fail"`
	Success uint64 `json:"success"`
}

// NewLeaderStats returns empty stats.
func NewLeaderStats() *LeaderStats {
	return &LeaderStats{followers: map[uint64]*followerStats{}}
}

func newFollowerStats() *followerStats {
	return &followerStats{Latency: latencyStats{Minimum: 1 << 63}}
}

// Observe records n appends to follower to: each a success that took d
// when ok, else a failure. It is transport.HTTPConfig.OnAppend's shape.
func (ls *LeaderStats) Observe(to uint64, n int, d time.Duration, ok bool) {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	fs := ls.followers[to]
	if fs == nil {
		fs = newFollowerStats()
		ls.followers[to] = fs
	}
	for range n {
		if !ok {
			fs.Counts.Fail++
			continue
		}
		fs.succeeded(d)
	}
}

// succeeded folds one success of d into the running statistics.
func (fs *followerStats) succeeded(d time.Duration) {
	l := &fs.Latency
	ms := float64(d) / float64(time.Millisecond)
	n := float64(fs.Counts.Success)
	fs.Counts.Success++
	l.Current = ms
	l.Maximum = max(l.Maximum, ms)
	l.Minimum = min(l.Minimum, ms)
	l.Average = (n*l.Average + ms) / (n + 1)
	l.averageSquare = (n*l.averageSquare + ms*ms) / (n + 1)
	l.StandardDeviation = math.Sqrt(max(0, l.averageSquare-l.Average*l.Average))
}

// follower returns a copy of id's stats (etcd's initial ones if none).
func (ls *LeaderStats) follower(id uint64) followerStats {
	if ls == nil {
		return *newFollowerStats()
	}
	ls.mu.Lock()
	defer ls.mu.Unlock()
	if fs := ls.followers[id]; fs != nil {
		return *fs
	}
	return *newFollowerStats()
}
