package proc

import "strings"

// Raft timings of every member: loopback is fast, and tests should not wait
// out etcd's production defaults (100 ms heartbeat, 1 s election) when
// they kill a leader.
const (
	HeartbeatInterval = "50"  // --heartbeat-interval, ms
	ElectionTimeout   = "500" // --election-timeout, ms
)

// Flags are the command-line flags of one member of a loopback cluster.
type Flags struct {
	Name    string
	DataDir string
	// ClientURL is listened on and advertised to clients.
	ClientURL string
	// PeerURL is listened on for peers and advertised to them unless
	// AdvertisePeerURL is set (a proxy in front of PeerURL, say).
	PeerURL          string
	AdvertisePeerURL string
	// InitialCluster is --initial-cluster (see InitialCluster); empty
	// leaves the flag out.
	InitialCluster string
	// Existing starts a member added to a running cluster
	// (--initial-cluster-state existing) rather than one of a new cluster.
	Existing bool
	// Token is --initial-cluster-token; empty leaves the binary's default.
	Token string
	// Extra flags come last, so they override the ones above.
	Extra []string
}

// AdvertisedPeerURL is the peer URL the other members dial.
func (f *Flags) AdvertisedPeerURL() string {
	if f.AdvertisePeerURL != "" {
		return f.AdvertisePeerURL
	}
	return f.PeerURL
}

// Peer is f's entry in --initial-cluster.
func (f *Flags) Peer() Peer {
	return Peer{Name: f.Name, URL: f.AdvertisedPeerURL()}
}

// Args returns the command line of the member f describes. Its log goes to
// stderr, which Member captures.
func (f *Flags) Args() []string {
	state := "new"
	if f.Existing {
		state = "existing"
	}
	a := []string{
		"--name", f.Name,
		"--data-dir", f.DataDir,
		"--listen-client-urls", f.ClientURL,
		"--advertise-client-urls", f.ClientURL,
		"--listen-peer-urls", f.PeerURL,
		"--initial-advertise-peer-urls", f.AdvertisedPeerURL(),
	}
	if f.InitialCluster != "" { // none: a member bootstrapped by discovery (Extra)
		a = append(a, "--initial-cluster", f.InitialCluster)
	}
	a = append(a, "--initial-cluster-state", state)
	if f.Token != "" {
		a = append(a, "--initial-cluster-token", f.Token)
	}
	a = append(a,
		"--heartbeat-interval", HeartbeatInterval,
		"--election-timeout", ElectionTimeout,
		"--log-outputs", "stderr",
	)
	return append(a, f.Extra...)
}

// Peer is one member's entry in --initial-cluster.
type Peer struct {
	Name string
	URL  string // the advertised peer URL
}

// InitialCluster returns the --initial-cluster value naming peers, in
// their order: name=url,name=url.
func InitialCluster(peers ...Peer) string {
	parts := make([]string, len(peers))
	for i, p := range peers {
		parts[i] = p.Name + "=" + p.URL
	}
	return strings.Join(parts, ",")
}
