package server

import (
	"fmt"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/cairnkv/cairn/internal/testutil"
)

// Every member of a cluster that starts together fast-forwards its election
// clock once it is connected to its two peers, as etcd's do, saying so in
// etcd's words.
func TestMembersAdvanceTicksOncePeersAreConnected(t *testing.T) {
	core, logs := observer.New(zapcore.InfoLevel)
	newTestCluster(t, 3, clusterOpts{logger: zap.New(core)})
	testutil.Eventually(t, 30*time.Second, "every member to fast-forward its election ticks", func() (bool, string) {
		es := logs.FilterMessage("initialized peer connections; fast-forwarding election ticks").All()
		who := map[string]bool{}
		for _, e := range es {
			c := e.ContextMap()
			if c["active-remote-members"] != int64(2) || c["forward-ticks"] != int64(8) {
				t.Fatalf("logged %v, want 2 active remote members and 8 ticks", c)
			}
			who[e.LoggerName] = true
		}
		return len(who) == 3, fmt.Sprint(who)
	})
	if n := logs.FilterMessage("starting initial election tick advance").Len(); n != 3 {
		t.Fatalf("%d members started the advance, want 3", n)
	}
}
