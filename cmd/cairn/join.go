package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/cairnkv/cairn/config"
	"github.com/cairnkv/cairn/node"
	"github.com/cairnkv/cairn/server"
)

// membersPath is served on the peer listener: the cluster's ID and members,
// for a member that joins a running cluster (--initial-cluster-state
// existing) and must learn both before it can start.
const membersPath = "/cairn/members"

type membersDoc struct {
	ClusterID string        `json:"clusterID"`
	Members   []node.Member `json:"members"`
}

func membersHandler(srv *server.Server) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
		defer cancel()
		ms, err := srv.Members(ctx)
		if err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(membersDoc{ClusterID: fmt.Sprintf("%x", srv.ClusterID()), Members: ms})
	})
}

// discover asks the other members named in --initial-cluster for the
// cluster's ID and members, and finds this member, which `member add` must
// have added with this member's --initial-advertise-peer-urls.
func discover(cfg *config.Config, selfPeerURLs []string, client *http.Client) (clusterID, self uint64, members []node.Member, err error) {
	var errs []error
	for _, m := range cfg.InitialCluster {
		if m.Name == cfg.Name {
			continue
		}
		for _, u := range m.PeerURLs {
			resp, err := client.Get(strings.TrimSuffix(u, "/") + membersPath)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			var doc membersDoc
			err = json.NewDecoder(resp.Body).Decode(&doc)
			resp.Body.Close()
			if err != nil || resp.StatusCode != http.StatusOK {
				errs = append(errs, fmt.Errorf("%s: %s", u, resp.Status))
				continue
			}
			if _, err := fmt.Sscanf(doc.ClusterID, "%x", &clusterID); err != nil {
				errs = append(errs, fmt.Errorf("%s: bad cluster ID %q", u, doc.ClusterID))
				continue
			}
			want := slices.Clone(selfPeerURLs)
			sort.Strings(want)
			for _, dm := range doc.Members {
				got := slices.Clone(dm.PeerURLs)
				sort.Strings(got)
				if slices.Equal(got, want) {
					return clusterID, dm.ID, doc.Members, nil
				}
			}
			return 0, 0, nil, fmt.Errorf("--initial-cluster-state existing: the cluster at %s has no member with peer URLs %v: add it first (etcdctl member add %s --peer-urls=%s)",
				u, selfPeerURLs, cfg.Name, strings.Join(selfPeerURLs, ","))
		}
	}
	return 0, 0, nil, fmt.Errorf("--initial-cluster-state existing: no other member of --initial-cluster answered: %w", errors.Join(errs...))
}
