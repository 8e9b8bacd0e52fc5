package main

import (
	"github.com/cairnkv/cairn/node"
	"github.com/cairnkv/cairn/node/wal"
	"github.com/cairnkv/cairn/vfs"
)

// walIdentity returns the member and cluster IDs recorded in cairn's WAL
// in walDir; ok is false when there is none that reads cleanly (no WAL,
// etcd's format, a damaged one: the start goes on as before and reports
// what it finds). A restarting member is who its WAL says, as in etcd:
// a member added at run time got its ID from the cluster (MemberAdd), not
// from --initial-cluster and the token, which give another.
func walIdentity(walDir string) (member, cluster uint64, ok bool) {
	if !wal.Exist(vfs.OS(), walDir) {
		return 0, 0, false
	}
	// The header only: the start reads the whole log again anyway.
	md, err := wal.ReadMetadata(vfs.OS(), walDir)
	if err != nil {
		return 0, 0, false
	}
	meta, err := node.ParseWALMetadata(md)
	if err != nil || meta.MemberID == 0 {
		return 0, 0, false
	}
	return meta.MemberID, meta.ClusterID, true
}
