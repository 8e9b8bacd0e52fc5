package config

import (
	"reflect"
	"slices"
	"strings"
	"testing"
)

func TestFeatureGatesDefaults(t *testing.T) {
	var fg FeatureGates // nothing given
	for gate, want := range map[string]bool{
		GateCompactHashCheck:             true, // Cairn's default; etcd's is false
		GateStopGRPCServiceOnDefrag:      false,
		GateInitialCorruptCheck:          false,
		GateLeaseCheckpoint:              true,
		GateTxnModeWriteWithSharedBuffer: true,
		GateFastLeaseKeepAlive:           false,
		GateAllAlpha:                     false,
	} {
		if got := fg.Enabled(gate); got != want {
			t.Errorf("Enabled(%s) = %v, want %v", gate, got, want)
		}
	}
}

func TestParseFeatureGates(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want FeatureGates
	}{
		{"", FeatureGates{}},
		{"CompactHashCheck=false", FeatureGates{GateCompactHashCheck: false}},
		{" StopGRPCServiceOnDefrag = true , CompactHashCheck=1,", FeatureGates{GateStopGRPCServiceOnDefrag: true, GateCompactHashCheck: true}},
		// AllAlpha sets every alpha gate not given explicitly, whatever
		// the order, as etcd's featuregate does.
		{"CompactHashCheck=true,AllAlpha=false", FeatureGates{GateAllAlpha: false, GateCompactHashCheck: true,
			GateInitialCorruptCheck: false, GateLeaseCheckpoint: false, GateLeaseCheckpointPersist: false,
			GatePriorityRequest: false, GateSetMemberLocalAddr: false, GateStopGRPCServiceOnDefrag: false}},
		{"AllBeta=false", FeatureGates{GateAllBeta: false, GateFastLeaseKeepAlive: false, GateTxnModeWriteWithSharedBuffer: false}},
		{"AllAlpha=true,InitialCorruptCheck=false,PriorityRequest=false,SetMemberLocalAddr=false", FeatureGates{GateAllAlpha: true,
			GateCompactHashCheck: true, GateInitialCorruptCheck: false, GateLeaseCheckpoint: true, GateLeaseCheckpointPersist: true,
			GatePriorityRequest: false, GateSetMemberLocalAddr: false, GateStopGRPCServiceOnDefrag: true}},
	} {
		got, err := parseFeatureGates(tc.in)
		if err != nil {
			t.Errorf("parseFeatureGates(%q): %v", tc.in, err)
			continue
		}
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("parseFeatureGates(%q) = %v, want %v", tc.in, got, tc.want)
		}
	}
}

// TestFeatureGateErrors: etcd's messages for what etcd refuses, and
// Cairn's for the gates it does not implement yet.
func TestFeatureGateErrors(t *testing.T) {
	for _, tc := range []struct {
		args, env []string
		want      string
	}{
		{[]string{"--feature-gates", "Foo=true"}, nil,
			`invalid value "Foo=true" for --feature-gates: unrecognized feature gate: Foo`},
		{[]string{"--feature-gates", "CompactHashCheck=maybe"}, nil,
			`invalid value "CompactHashCheck=maybe" for --feature-gates: invalid value of CompactHashCheck=maybe, err: strconv.ParseBool: parsing "maybe": invalid syntax`},
		{[]string{"--feature-gates=CompactHashCheck"}, nil,
			`invalid value "CompactHashCheck" for --feature-gates: missing bool value for CompactHashCheck`},
		{nil, []string{"ETCD_FEATURE_GATES=InitialCorruptCheck=true"},
			`invalid value "InitialCorruptCheck=true" for ETCD_FEATURE_GATES: cairn does not implement feature gate InitialCorruptCheck yet`},
		{[]string{"--feature-gates", "AllAlpha=true"}, nil,
			`invalid value "AllAlpha=true" for --feature-gates: cairn does not implement feature gate InitialCorruptCheck yet (AllAlpha=true turns it on: add InitialCorruptCheck=false)`},
		{[]string{"--feature-gates", "LeaseCheckpointPersist=true"}, nil,
			`invalid value "LeaseCheckpointPersist=true" for --feature-gates: enabling feature gate LeaseCheckpointPersist requires enabling feature gate LeaseCheckpoint`},
	} {
		_, err := Parse(tc.args, tc.env)
		if err == nil || err.Error() != tc.want {
			t.Errorf("Parse(%q, %q) error = %v\nwant %s", tc.args, tc.env, err, tc.want)
		}
	}
}

// TestFeatureGatesThatChangeNothingWarn: a gate Cairn accepts but whose
// value does not change what it does is named in a warning.
func TestFeatureGatesThatChangeNothingWarn(t *testing.T) {
	c, err := Parse([]string{"--feature-gates", "LeaseCheckpoint=true,LeaseCheckpointPersist=true,FastLeaseKeepAlive=true,TxnModeWriteWithSharedBuffer=false"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"feature gate FastLeaseKeepAlive=true has no effect: cairn always renews a lease once the leader's applied index has caught up",
		"feature gate TxnModeWriteWithSharedBuffer=false has no effect: cairn has no separate read buffer in write transactions to share",
	}
	if !slices.Equal(c.Warnings, want) {
		t.Fatalf("warnings\n%q\nwant\n%q", c.Warnings, want)
	}
	if got := c.FeatureGates.String(); got != "FastLeaseKeepAlive=true,LeaseCheckpoint=true,LeaseCheckpointPersist=true,TxnModeWriteWithSharedBuffer=false" {
		t.Fatalf("String() = %q", got)
	}
}

func TestFeatureGatesHelpListsEveryGate(t *testing.T) {
	help := featureGatesHelp()
	for _, g := range gates() {
		if !strings.Contains(help, g.name) {
			t.Errorf("the --feature-gates help does not name %s", g.name)
		}
	}
}

// States reports what Cairn runs with: every etcd gate in etcd's order
// with etcd's stage; honoured gates as set, fixed ones at Cairn's fixed
// behaviour whatever they were set to, missing ones off.
func TestFeatureGateStates(t *testing.T) {
	fg, err := parseFeatureGates("StopGRPCServiceOnDefrag=true,CompactHashCheck=false,FastLeaseKeepAlive=true,LeaseCheckpoint=false,LeaseCheckpointPersist=false")
	if err != nil {
		t.Fatal(err)
	}
	want := []GateState{
		{GateAllAlpha, "ALPHA", false},
		{GateAllBeta, "BETA", false},
		{GateCompactHashCheck, "ALPHA", false},
		{GateFastLeaseKeepAlive, "BETA", false}, // fixed off in Cairn
		{GateInitialCorruptCheck, "ALPHA", false},
		{GateLeaseCheckpoint, "ALPHA", true}, // fixed on in Cairn
		{GateLeaseCheckpointPersist, "ALPHA", true},
		{GatePriorityRequest, "ALPHA", false},
		{GateSetMemberLocalAddr, "ALPHA", false},
		{GateStopGRPCServiceOnDefrag, "ALPHA", true},
		{GateTxnModeWriteWithSharedBuffer, "BETA", true},
	}
	if got := fg.States(); !reflect.DeepEqual(got, want) {
		t.Errorf("States() =\n%v\nwant\n%v", got, want)
	}
	var defaults FeatureGates
	if s := defaults.States(); s[2] != (GateState{GateCompactHashCheck, "ALPHA", true}) || s[9].Enabled {
		t.Errorf("default States() = %v, want CompactHashCheck on and StopGRPCServiceOnDefrag off", s)
	}
}
