package main

import (
	"net/http"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/cairnkv/cairn/config"
	"github.com/cairnkv/cairn/server"
	"github.com/cairnkv/cairn/v2http"
)

// v2Leaders holds each daemon's /v2/stats/leader per-follower stats, by
// its configuration: the peer transport feeds them (v2AppendObserver) and
// the v2 handler shows them (a test may start several daemons in one
// process).
var v2Leaders sync.Map // *config.Config → *v2http.LeaderStats

func v2LeaderStats(cfg *config.Config) *v2http.LeaderStats {
	ls, _ := v2Leaders.LoadOrStore(cfg, v2http.NewLeaderStats())
	return ls.(*v2http.LeaderStats)
}

// v2Handler is etcd's v2 HTTP API with --enable-v2, else nil (/v2/ is not
// served). With it, the leader also proposes the expiry of v2 keys.
func v2Handler(cfg *config.Config, srv *server.Server, lg *zap.Logger) http.Handler {
	if !cfg.EnableV2 {
		return nil
	}
	go srv.RunV2Expiry()
	return v2http.New(v2http.Config{Backend: srv, Name: cfg.Name, Logger: lg.Named("v2"), Leader: v2LeaderStats(cfg)})
}

// v2AppendObserver is the peer transport's OnAppend with --enable-v2 (the
// follower stats of /v2/stats/leader), else nil.
func v2AppendObserver(cfg *config.Config) func(to uint64, n int, d time.Duration, ok bool) {
	if !cfg.EnableV2 {
		return nil
	}
	return v2LeaderStats(cfg).Observe
}
