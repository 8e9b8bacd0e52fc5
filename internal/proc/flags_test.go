package proc

import (
	"slices"
	"testing"
)

func TestArgsOfAMemberOfANewCluster(t *testing.T) {
	f := Flags{
		Name: "m0", DataDir: "/d/m0", ClientURL: "http://127.0.0.1:1001", PeerURL: "http://127.0.0.1:1002",
		InitialCluster: "m0=http://127.0.0.1:1002", Token: "tok",
	}
	want := []string{
		"--name", "m0",
		"--data-dir", "/d/m0",
		"--listen-client-urls", "http://127.0.0.1:1001",
		"--advertise-client-urls", "http://127.0.0.1:1001",
		"--listen-peer-urls", "http://127.0.0.1:1002",
		"--initial-advertise-peer-urls", "http://127.0.0.1:1002",
		"--initial-cluster", "m0=http://127.0.0.1:1002",
		"--initial-cluster-state", "new",
		"--initial-cluster-token", "tok",
		"--heartbeat-interval", "50",
		"--election-timeout", "500",
		"--log-outputs", "stderr",
	}
	if got := f.Args(); !slices.Equal(got, want) {
		t.Errorf("Args() =\n%q\nwant\n%q", got, want)
	}
}

func TestArgsOfAJoiningMemberBehindAProxy(t *testing.T) {
	f := Flags{
		Name: "m2", DataDir: "d", ClientURL: "http://c", PeerURL: "http://p", AdvertisePeerURL: "http://proxy",
		InitialCluster: "m0=http://x,m2=http://proxy", Existing: true,
		Extra: []string{"--snapshot-count", "10", "--log-outputs", "/dev/null"},
	}
	want := []string{
		"--name", "m2",
		"--data-dir", "d",
		"--listen-client-urls", "http://c",
		"--advertise-client-urls", "http://c",
		"--listen-peer-urls", "http://p",
		"--initial-advertise-peer-urls", "http://proxy",
		"--initial-cluster", "m0=http://x,m2=http://proxy",
		"--initial-cluster-state", "existing",
		"--heartbeat-interval", "50",
		"--election-timeout", "500",
		"--log-outputs", "stderr",
		"--snapshot-count", "10", "--log-outputs", "/dev/null",
	}
	if got := f.Args(); !slices.Equal(got, want) {
		t.Errorf("Args() =\n%q\nwant\n%q", got, want)
	}
	if got := f.Peer(); got != (Peer{"m2", "http://proxy"}) {
		t.Errorf("Peer() = %+v, want the advertised proxy URL", got)
	}
}

func TestInitialClusterKeepsThePeersOrder(t *testing.T) {
	a := Flags{Name: "b", PeerURL: "http://127.0.0.1:2"}
	b := Flags{Name: "a", PeerURL: "http://127.0.0.1:1", AdvertisePeerURL: "http://127.0.0.1:9"}
	if got, want := InitialCluster(a.Peer(), b.Peer()), "b=http://127.0.0.1:2,a=http://127.0.0.1:9"; got != want {
		t.Errorf("InitialCluster = %q, want %q", got, want)
	}
	if got := InitialCluster(); got != "" {
		t.Errorf("InitialCluster() = %q, want \"\"", got)
	}
}

func TestBuildArgs(t *testing.T) {
	for _, tc := range []struct {
		o    BuildOptions
		want []string
	}{
		{BuildOptions{}, []string{"build", "-o", "/b/cairn", CairnPackage}},
		{BuildOptions{Race: true}, []string{"build", "-o", "/b/cairn", "-race", CairnPackage}},
		{BuildOptions{Race: true, Tags: []string{"cairnbugs", "x"}}, []string{"build", "-o", "/b/cairn", "-race", "-tags", "cairnbugs,x", CairnPackage}},
	} {
		if got := buildArgs("/b/cairn", CairnPackage, tc.o); !slices.Equal(got, tc.want) {
			t.Errorf("buildArgs(%+v) = %q, want %q", tc.o, got, tc.want)
		}
	}
}

func TestTail(t *testing.T) {
	for _, tc := range []struct {
		s    string
		n    int
		want string
	}{
		{"a\nb\nc\n", 2, "b\nc"},
		{"a\nb\nc", 5, "a\nb\nc"},
		{"", 3, ""},
		{"a\n\n", 1, "a"},
	} {
		if got := Tail(tc.s, tc.n); got != tc.want {
			t.Errorf("Tail(%q, %d) = %q, want %q", tc.s, tc.n, got, tc.want)
		}
	}
}
