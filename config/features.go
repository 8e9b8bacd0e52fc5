package config

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// etcd 3.7's feature gates (--feature-gates), and what each means in Cairn.
const (
	GateAllAlpha                     = "AllAlpha"
	GateAllBeta                      = "AllBeta"
	GateCompactHashCheck             = "CompactHashCheck"
	GateFastLeaseKeepAlive           = "FastLeaseKeepAlive"
	GateInitialCorruptCheck          = "InitialCorruptCheck"
	GateLeaseCheckpoint              = "LeaseCheckpoint"
	GateLeaseCheckpointPersist       = "LeaseCheckpointPersist"
	GatePriorityRequest              = "PriorityRequest"
	GateSetMemberLocalAddr           = "SetMemberLocalAddr"
	GateStopGRPCServiceOnDefrag      = "StopGRPCServiceOnDefrag"
	GateTxnModeWriteWithSharedBuffer = "TxnModeWriteWithSharedBuffer"
)

// gateSupport is what Cairn does with a gate.
type gateSupport int

const (
	// gateHonoured: the gate switches the feature on and off.
	gateHonoured gateSupport = iota
	// gateFixed: Cairn always behaves one way (fixed); the gate is accepted
	// either way, and a value asking for the other is logged as having no
	// effect.
	gateFixed
	// gateMissing: Cairn does not implement the feature yet; only false is
	// accepted.
	gateMissing
)

// gate is one of etcd's feature gates.
type gate struct {
	name  string
	stage string // "ALPHA" or "BETA", as etcd labels it
	// etcdDefault is etcd 3.7's default; def is Cairn's, which differs
	// where Cairn does better by default (CompactHashCheck).
	etcdDefault, def bool
	support          gateSupport
	// fixed is Cairn's behaviour of a gateFixed gate, and why is what the
	// warning says about it.
	fixed bool
	why   string
}

// gates returns etcd 3.7's feature gates in etcd's (alphabetical) order.
func gates() []gate {
	return []gate{
		{name: GateAllAlpha, stage: "ALPHA"},
		{name: GateAllBeta, stage: "BETA"},
		{name: GateCompactHashCheck, stage: "ALPHA", def: true},
		{name: GateFastLeaseKeepAlive, stage: "BETA", etcdDefault: true, def: false, support: gateFixed, fixed: false,
			why: "always renews a lease once the leader's applied index has caught up"},
		{name: GateInitialCorruptCheck, stage: "ALPHA", support: gateMissing},
		{name: GateLeaseCheckpoint, stage: "ALPHA", def: true, support: gateFixed, fixed: true,
			why: "always checkpoints the remaining TTLs of leases"},
		{name: GateLeaseCheckpointPersist, stage: "ALPHA", def: true, support: gateFixed, fixed: true,
			why: "always persists the remaining TTLs of leases"},
		{name: GatePriorityRequest, stage: "ALPHA", support: gateMissing},
		{name: GateSetMemberLocalAddr, stage: "ALPHA", support: gateMissing},
		{name: GateStopGRPCServiceOnDefrag, stage: "ALPHA"},
		{name: GateTxnModeWriteWithSharedBuffer, stage: "BETA", etcdDefault: true, def: true, support: gateFixed, fixed: true,
			why: "has no separate read buffer in write transactions to share"},
	}
}

func findGate(name string) (gate, bool) {
	i := slices.IndexFunc(gates(), func(g gate) bool { return g.name == name })
	if i < 0 {
		return gate{}, false
	}
	return gates()[i], true
}

// FeatureGates holds the gates --feature-gates set, AllAlpha and AllBeta
// expanded; a gate not in the map has Cairn's default. The zero value
// means every gate at its default.
type FeatureGates map[string]bool

// Enabled reports whether the named gate is on. It panics on a name that
// is not one of etcd's gates (a bug in the caller).
func (fg FeatureGates) Enabled(name string) bool {
	if v, ok := fg[name]; ok {
		return v
	}
	g, ok := findGate(name)
	if !ok {
		panic(fmt.Sprintf("config: unknown feature gate %q", name))
	}
	return g.def
}

// String renders the gates that were set as etcd's flag takes them, sorted.
func (fg FeatureGates) String() string {
	var pairs []string
	for k, v := range fg {
		pairs = append(pairs, k+"="+strconv.FormatBool(v))
	}
	slices.Sort(pairs)
	return strings.Join(pairs, ",")
}

// parseFeatureGates parses etcd's --feature-gates syntax,
// "Name=true,Other=false", with etcd's errors: an unknown name, a missing
// or non-boolean value. A gate given explicitly wins over AllAlpha and
// AllBeta whatever the order, as in etcd. A gate Cairn does not implement
// yet may only be false.
func parseFeatureGates(v string) (FeatureGates, error) {
	explicit := map[string]bool{}
	for _, s := range strings.Split(v, ",") {
		if strings.TrimSpace(s) == "" {
			continue
		}
		k, val, ok := strings.Cut(s, "=")
		k = strings.TrimSpace(k)
		if !ok {
			return nil, fmt.Errorf("missing bool value for %s", k)
		}
		val = strings.TrimSpace(val)
		b, err := strconv.ParseBool(val)
		if err != nil {
			return nil, fmt.Errorf("invalid value of %s=%s, err: %w", k, val, err)
		}
		if _, known := findGate(k); !known {
			return nil, fmt.Errorf("unrecognized feature gate: %s", k)
		}
		explicit[k] = b
	}
	fg := FeatureGates{}
	for k, b := range explicit {
		fg[k] = b
	}
	for _, all := range []struct{ gate, stage string }{{GateAllAlpha, "ALPHA"}, {GateAllBeta, "BETA"}} {
		b, set := explicit[all.gate]
		if !set {
			continue
		}
		for _, g := range gates() {
			if _, own := explicit[g.name]; !own && g.stage == all.stage && g.name != all.gate {
				fg[g.name] = b
			}
		}
	}
	for _, g := range gates() {
		if b, set := fg[g.name]; set && b && g.support == gateMissing {
			how := ""
			if _, own := explicit[g.name]; !own {
				how = fmt.Sprintf(" (%s=true turns it on: add %s=false)", map[string]string{"ALPHA": GateAllAlpha, "BETA": GateAllBeta}[g.stage], g.name)
			}
			return nil, fmt.Errorf("cairn does not implement feature gate %s yet%s", g.name, how)
		}
	}
	// etcd's own rule, on the gates as given (an unset gate is false in
	// etcd; Cairn's defaults of these two are true), so that a setting
	// etcd refuses is refused here too.
	if fg[GateLeaseCheckpointPersist] && !fg[GateLeaseCheckpoint] {
		return nil, fmt.Errorf("enabling feature gate %s requires enabling feature gate %s", GateLeaseCheckpointPersist, GateLeaseCheckpoint)
	}
	return fg, nil
}

// warnings names the gates set to a value that does not change what Cairn
// does, one line each, in etcd's gate order.
func (fg FeatureGates) warnings() []string {
	var out []string
	for _, g := range gates() {
		if b, set := fg[g.name]; set && g.support == gateFixed && b != g.fixed {
			out = append(out, fmt.Sprintf("feature gate %s=%t has no effect: cairn %s", g.name, b, g.why))
		}
	}
	return out
}

// featureGatesHelp is the --feature-gates entry of Usage: the gates that
// change what Cairn does, in etcd's format, then the others.
func featureGatesHelp() string {
	var b strings.Builder
	b.WriteString("Comma-separated Name=true|false pairs that switch features on and off, as etcd's. Options are:")
	var fixed, missing []string
	for _, g := range gates() {
		switch g.support {
		case gateHonoured:
			fmt.Fprintf(&b, "\n    %s=true|false (%s - default=%t", g.name, g.stage, g.def)
			if g.def != g.etcdDefault {
				fmt.Fprintf(&b, "; etcd's default is %t", g.etcdDefault)
			}
			b.WriteString(")")
		case gateFixed:
			fixed = append(fixed, fmt.Sprintf("%s (cairn %s)", g.name, g.why))
		case gateMissing:
			missing = append(missing, g.name)
		}
	}
	fmt.Fprintf(&b, "\n    Accepted, changing nothing: %s.", strings.Join(fixed, "; "))
	fmt.Fprintf(&b, "\n    Not supported yet (only false is accepted): %s.", strings.Join(missing, ", "))
	return b.String()
}

// GateState is one feature gate as etcd_server_feature_enabled reports it.
type GateState struct {
	Name, Stage string // etcd's name and stage ("ALPHA", "BETA")
	Enabled     bool   // whether the feature is on in this member
}

// States returns etcd's feature gates in etcd's order, each with whether
// Cairn runs with the feature on: a gate Cairn honours as set (or at its
// default), one whose behaviour Cairn fixes at that behaviour whatever it
// was set to, one Cairn does not implement off.
func (fg FeatureGates) States() []GateState {
	var out []GateState
	for _, g := range gates() {
		on := false
		switch g.support {
		case gateHonoured:
			on = fg.Enabled(g.name)
		case gateFixed:
			on = g.fixed
		}
		out = append(out, GateState{Name: g.name, Stage: g.stage, Enabled: on})
	}
	return out
}
