// Package auth is etcd's authentication and authorization state: users,
// roles, key permissions, whether auth is enabled, and the auth revision.
//
// It is part of Cairn's deterministic core: the node package applies the
// Auth requests of the raft log (etcd's InternalRaftRequest auth fields) to a
// Store, and checks requests against it at apply time. It reads no clock,
// starts no goroutine and does no I/O but through its Backend (the MVCC
// store's auxiliary buckets, written in the same bbolt batch as the
// consistent index). Password hashing (bcrypt) and tokens live in the shell
// (package server), so applying stays cheap and the same on every member.
//
// The state is kept in etcd 3.7's schema: bucket "auth" with the keys
// "authEnabled" (one byte, 1 or 0) and "authRevision" (8 bytes, big
// endian); bucket "authUsers" with authpb.User protobufs keyed by name;
// bucket "authRoles" with authpb.Role protobufs keyed by name. A database
// holding users moves between etcd and Cairn either way.
//
// A Store is written by one goroutine (the core's) and read by any number:
// the shell checks permissions and passwords before proposing.
package auth
