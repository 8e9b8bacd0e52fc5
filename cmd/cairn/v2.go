package main

import (
	"net/http"

	"go.uber.org/zap"

	"github.com/cairnkv/cairn/config"
	"github.com/cairnkv/cairn/server"
	"github.com/cairnkv/cairn/v2http"
)

// v2Handler is etcd's v2 HTTP API with --enable-v2, else nil (/v2/ is not
// served). With it, the leader also proposes the expiry of v2 keys.
func v2Handler(cfg *config.Config, srv *server.Server, lg *zap.Logger) http.Handler {
	if !cfg.EnableV2 {
		return nil
	}
	go srv.RunV2Expiry()
	return v2http.New(v2http.Config{Backend: srv, Name: cfg.Name, Logger: lg.Named("v2")})
}
