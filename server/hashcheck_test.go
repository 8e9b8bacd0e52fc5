package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"

	"github.com/cairnkv/cairn/node"
)

// peerRoutes serves the members' peer listeners in process: a request to
// mem://mN goes to that member's HashKVHandler, through alter when set.
type peerRoutes struct {
	c     *testCluster
	alter func(member string, doc *hashKVDoc)
}

func (p *peerRoutes) RoundTrip(r *http.Request) (*http.Response, error) {
	s, m, err := p.c.peerHost(r.URL.Host)
	if err != nil {
		return nil, err
	}
	rec := httptest.NewRecorder()
	s.HashKVHandler().ServeHTTP(rec, r)
	if p.alter != nil && rec.Code == http.StatusOK {
		var doc hashKVDoc
		if err := json.Unmarshal(rec.Body.Bytes(), &doc); err != nil {
			return nil, err
		}
		p.alter(m.Name, &doc)
		rec.Body.Reset()
		_ = json.NewEncoder(rec.Body).Encode(doc)
	}
	return rec.Result(), nil
}

// peerHost is the running member whose peer URL is mem://host, as a
// dialer finds it: refused when that member is stopped.
func (c *testCluster) peerHost(host string) (*Server, node.Member, error) {
	for _, m := range c.members {
		if m.PeerURLs[0] != "mem://"+host {
			continue
		}
		s := c.server(m.ID)
		if s == nil {
			return nil, m, errors.New("connection refused")
		}
		return s, m, nil
	}
	return nil, node.Member{}, fmt.Errorf("no member at %s", host)
}

// hashCheckCluster starts three members whose peer listeners are served by
// routes, with the periodic check off (tests call checkCompactHash).
func hashCheckCluster(t *testing.T) (*testCluster, *peerRoutes, *Server) {
	c := newTestCluster(t, 3, clusterOpts{logger: zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel))})
	routes := &peerRoutes{c: c}
	for _, m := range c.members {
		c.stop(m.ID)
		c.startWith(m.ID, func(cfg *Config) {
			cfg.CompactHashCheckTime = -1
			cfg.PeerClient = &http.Client{Transport: routes}
		})
	}
	lead := c.server(c.waitLeader())
	for i := 0; i < 20; i++ {
		c.put(lead, fmt.Sprintf("k%d", i%4), fmt.Sprint(i))
	}
	resp, err := lead.Compact(context.Background(), &pb.CompactionRequest{Revision: lead.KV().Rev() - 5, Physical: true})
	if err != nil {
		t.Fatal(resp, err)
	}
	// Every member applies the compaction before the check looks.
	for _, s := range c.running() {
		requireKeys(t, s, map[string]string{})
		for s.KV().CompactRev() != lead.KV().CompactRev() {
			requireKeys(t, s, map[string]string{})
		}
	}
	return c, routes, lead
}

func TestCompactHashCheckPassesOnAHealthyCluster(t *testing.T) {
	c, _, lead := hashCheckCluster(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	rev, decided := lead.checkCompactHash(ctx, 0)
	if !decided || rev != lead.KV().CompactRev() {
		t.Fatalf("checkCompactHash = %d, %v; want the compacted revision %d, decided", rev, decided, lead.KV().CompactRev())
	}
	if _, again := lead.checkCompactHash(ctx, rev); again {
		t.Fatal("a decided revision was checked again")
	}
	alarms, err := lead.Alarms(ctx)
	if err != nil || len(alarms) != 0 {
		t.Fatalf("alarms after a clean check: %v %v", alarms, err)
	}
	c.put(lead, "after", "1")
}

// A member whose hash differs from the majority's gets a CORRUPT alarm,
// and the whole cluster then refuses writes with etcd's error.
func TestCompactHashCheckRaisesCorruptForTheDivergentMember(t *testing.T) {
	c, routes, lead := hashCheckCluster(t)
	var victim node.Member
	for _, m := range c.members {
		if m.ID != lead.ID() {
			victim = m
			break
		}
	}
	routes.alter = func(member string, doc *hashKVDoc) {
		if member == victim.Name {
			doc.Hash++
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, decided := lead.checkCompactHash(ctx, 0); !decided {
		t.Fatal("the check did not decide with three members answering")
	}
	alarms, err := lead.Alarms(ctx)
	if err != nil || len(alarms) != 1 || alarms[0].GetMemberID() != victim.ID || alarms[0].GetAlarm() != pb.AlarmType_CORRUPT {
		t.Fatalf("alarms: %v %v; want CORRUPT for %x", alarms, err, victim.ID)
	}
	for _, s := range c.running() {
		_, err := s.Put(ctx, &pb.PutRequest{Key: []byte("k"), Value: []byte("v")})
		if !errors.Is(err, node.ErrCorrupt) {
			t.Fatalf("put through %x while CORRUPT: %v, want %v", s.ID(), err, node.ErrCorrupt)
		}
	}
	// Reads still work; disarming the alarm lets writes through again.
	if _, err := lead.Range(ctx, &pb.RangeRequest{Key: []byte("k0")}); err != nil {
		t.Fatalf("a read while CORRUPT: %v", err)
	}
	if _, err := lead.Alarm(ctx, &pb.AlarmRequest{Action: pb.AlarmRequest_DEACTIVATE, MemberID: victim.ID, Alarm: pb.AlarmType_CORRUPT}); err != nil {
		t.Fatal(err)
	}
	c.put(lead, "after", "1")
}

func TestHashKVHandlerRefusesBadRevisions(t *testing.T) {
	c, _, lead := hashCheckCluster(t)
	_ = c
	for _, q := range []string{"", "rev=x", "rev=0", "rev=1"} {
		rec := httptest.NewRecorder()
		lead.HashKVHandler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, HashKVPath+"?"+q, nil))
		if rec.Code == http.StatusOK {
			t.Errorf("?%s: %d %s, want a refusal (rev 1 is compacted)", q, rec.Code, strings.TrimSpace(rec.Body.String()))
		}
	}
}
