package discovery

import (
	"errors"
	"testing"
)

func TestKeysAreEtcds(t *testing.T) {
	if got := sizeKey("tok"); got != "/_etcd/registry/tok/_config/size" {
		t.Fatalf("size key %q", got)
	}
	if got := memberKey("tok", 0xabc); got != "/_etcd/registry/tok/members/abc" {
		t.Fatalf("member key %q", got)
	}
}

// Registrations order by creation; only the first size make the cluster;
// bad ones are refused as etcd refuses them.
func TestRegistry(t *testing.T) {
	r := &registry{prefix: membersPrefix("tok")}
	for _, tc := range []struct {
		key, value string
		rev        int64
		ok         bool
	}{
		{"/_etcd/registry/tok/members/3", "c=http://c:2380", 7, true},
		{"/_etcd/registry/tok/members/1", "a=http://a:2380,a=http://a2:2380", 5, true},
		{"/_etcd/registry/tok/members/2", "b=http://b:2380", 6, true},
		{"/_etcd/registry/tok/members/2", "b=http://b:2380", 6, false}, // duplicate
		{"/_etcd/registry/other/members/9", "x=http://x:2380", 8, false},
		{"/_etcd/registry/tok/members/4", "no-equals-sign", 9, false},
		{"/_etcd/registry/tok/members/5", "d=http://d:2380", 10, true},
	} {
		if err := r.add(tc.key, tc.value, tc.rev); (err == nil) != tc.ok {
			t.Fatalf("add(%s, %s): %v, want ok %v", tc.key, tc.value, err, tc.ok)
		}
	}
	got, err := r.initialCluster(3)
	if want := "a=http://a:2380,a=http://a2:2380,b=http://b:2380,c=http://c:2380"; err != nil || got != want {
		t.Fatalf("initialCluster(3) = %q, %v, want %q", got, err, want)
	}
	bad := &registry{prefix: membersPrefix("tok")}
	if err := bad.add("/_etcd/registry/tok/members/1", "a=ftp//x", 1); err != nil {
		t.Fatal(err)
	}
	if _, err := bad.initialCluster(1); !errors.Is(err, ErrInvalidURL) {
		t.Fatalf("a bad URL: %v, want %v", err, ErrInvalidURL)
	}
}

func TestErrorIsEtcds(t *testing.T) {
	err := &Error{Op: "join", Err: ErrFullCluster}
	if err.Error() != "failed to join discovery cluster (discovery: cluster is full)" || !errors.Is(err, ErrFullCluster) {
		t.Fatalf("%v", err)
	}
}
