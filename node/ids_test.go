package node

import "testing"

// The IDs etcd 3.7.3 gave a one-member cluster started with
// --initial-cluster default=http://127.0.0.1:23801 and the default token.
func TestIDsAreEtcds(t *testing.T) {
	mid := MemberID([]string{"http://127.0.0.1:23801"}, "etcd-cluster")
	if mid != 0xbdae9bbc11dd390d {
		t.Fatalf("MemberID = %x, want etcd's bdae9bbc11dd390d", mid)
	}
	if cid := ClusterID([]uint64{mid}, "etcd-cluster"); cid != 0xd1cfaf999eb97a2a {
		t.Fatalf("ClusterID = %x, want etcd's d1cfaf999eb97a2a", cid)
	}
	a := MemberID([]string{"http://b", "http://a"}, "t")
	if b := MemberID([]string{"http://a", "http://b"}, "t"); a != b {
		t.Fatalf("the order of peer URLs changed the ID: %x, %x", a, b)
	}
	if ClusterID([]uint64{1, 2}, "t") != ClusterID([]uint64{2, 1}, "t") {
		t.Fatal("the order of member IDs changed the cluster ID")
	}
}
