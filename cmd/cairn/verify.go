package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"

	"github.com/cairnkv/cairn/node"
)

// verifyMember answers the peer transport's question about a sender it
// does not know (transport.HTTPConfig.VerifyMember): is it a member this
// one has not learned of yet, added while it was down or behind (it may
// even lead)? It asks the members it knows, on their peer listeners
// (GET /cairn/members, with the peer side's TLS), and believes the first
// of this cluster that lists the sender. A stranger is listed by none, and
// stays refused.
func verifyMember(known func(context.Context) ([]node.Member, error), client *http.Client, self, clusterID uint64) func(context.Context, uint64) ([]string, bool) {
	return func(ctx context.Context, id uint64) ([]string, bool) {
		if known == nil {
			return nil, false
		}
		ms, err := known(ctx)
		if err != nil {
			return nil, false
		}
		for _, m := range ms {
			if m.ID == self || m.ID == id {
				continue
			}
			for _, u := range m.PeerURLs {
				doc, err := fetchMembers(ctx, client, u)
				if err != nil {
					continue // try its next URL
				}
				if doc.ClusterID != fmt.Sprintf("%x", clusterID) {
					break
				}
				for _, dm := range doc.Members {
					if dm.ID == id && len(dm.PeerURLs) > 0 {
						return dm.PeerURLs, true
					}
				}
				break // this member answered without it: ask the next
			}
		}
		return nil, false
	}
}

func fetchMembers(ctx context.Context, client *http.Client, peerURL string) (*membersDoc, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimSuffix(peerURL, "/")+membersPath, nil)
	if err != nil {
		return nil, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s: %s", peerURL, resp.Status)
	}
	var doc membersDoc
	if err := json.NewDecoder(resp.Body).Decode(&doc); err != nil {
		return nil, err
	}
	return &doc, nil
}
