package main

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestCheckHealth(t *testing.T) {
	for _, tc := range []struct {
		name, body string
		code       int
		wantErr    string
	}{
		{"healthy", `{"health":"true","reason":""}`, 200, ""},
		{"no leader", `{"health":"false","reason":"RAFT NO LEADER"}`, 503, `status 503, health "false", reason "RAFT NO LEADER"`},
		{"200 but false", `{"health":"false","reason":"x"}`, 200, `health "false"`},
		{"not JSON", `<html>`, 200, "not etcd's health JSON"},
	} {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path != "/health" || r.Method != http.MethodGet {
				http.Error(w, "bad request", http.StatusBadRequest)
				return
			}
			w.WriteHeader(tc.code)
			_, _ = w.Write([]byte(tc.body))
		}))
		_, err := checkHealth(context.Background(), srv.Client(), srv.URL+"/health")
		srv.Close()
		switch {
		case tc.wantErr == "" && err != nil:
			t.Errorf("%s: %v, want healthy", tc.name, err)
		case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
			t.Errorf("%s: error %v, want one containing %q", tc.name, err, tc.wantErr)
		}
	}
	// Nothing listening: an error, not a hang.
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL + "/health"
	srv.Close()
	if _, err := checkHealth(context.Background(), http.DefaultClient, url); err == nil {
		t.Errorf("checkHealth of a closed server: no error")
	}
}
