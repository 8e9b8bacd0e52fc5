package e2e

import (
	"strings"
	"testing"
)

// ctlStep is one etcdctl run and what etcd 3.7.3 answers: its stdout when
// it exits 0, else the last line of its stderr.
type ctlStep struct {
	args  string
	argv  []string // instead of args, for arguments with spaces or empty ones
	stdin string
	out   string
	code  int
}

func runCtlSteps(t *testing.T, c *Cluster, steps []ctlStep) {
	t.Helper()
	for _, s := range steps {
		argv := s.argv
		if argv == nil {
			argv = strings.Fields(s.args)
		}
		r := c.etcdctlAt(t, c.ClientURLs(), s.stdin, argv...)
		got := r.Stdout
		if r.Code != 0 {
			got = lastLine(r.Stderr)
		}
		if r.Code != s.code || got != s.out {
			t.Errorf("etcdctl %q: exit %d\n%s\nwant exit %d\n%s", argv, r.Code, got, s.code, s.out)
		}
	}
}

// TestAuthCompatEtcdctl runs etcdctl's user, role and auth commands, then
// what each user may and may not do, and compares every output with what
// etcd 3.7.3 prints (the expectations were taken from it, and
// CAIRN_E2E_CAIRN=/work/tools/bin/etcd runs this test against etcd). The
// auth revisions printed by `auth status` are etcd's too.
func TestAuthCompatEtcdctl(t *testing.T) {
	t.Parallel()
	c := NewCluster(t, 1)
	const (
		denied   = "Error: etcdserver: permission denied"
		noUser   = "Error: etcdserver: user name is empty"
		badLogin = "Error: etcdserver: authentication failed, invalid user ID or password"
	)
	readerRole := "Role reader\nKV Read:\n\t[dir/, dir0) (prefix dir/)\n\tfoo\nKV Write:\n\t[a, b) (prefix a)\n\t[dir/, dir0) (prefix dir/)\n"
	runCtlSteps(t, c, []ctlStep{
		{args: "auth enable", out: "Error: etcdserver: root user does not exist", code: 1},
		{args: "user add root --new-user-password=rootpw", out: "User root created\n"},
		{args: "user grant-role root nope", out: "Error: etcdserver: role name not found", code: 1},
		{args: "user grant-role root root", out: "Role root is granted to user root\n"},
		{args: "user get root", out: "User: root\nRoles: root\n"},
		{args: "auth status", out: "Authentication Status: false\nAuthRevision: 3\n"},
		{args: "user add alice --interactive=false", stdin: "alicepw\n", out: "User alice created\n"},
		{args: "user add alice --new-user-password=alicepw", out: "Error: etcdserver: user name already exists", code: 1},
		{args: "user add certonly --no-password", out: "User certonly created\n"},
		{args: "role add reader", out: "Role reader created\n"},
		{args: "role add reader", out: "Error: etcdserver: role name already exists", code: 1},
		{args: "role grant-permission reader read foo", out: "Role reader updated\n"},
		{args: "role grant-permission reader readwrite dir/ --prefix", out: "Role reader updated\n"},
		{args: "role grant-permission reader write a b", out: "Role reader updated\n"},
		{args: "role get reader", out: readerRole},
		{args: "role get root", out: "Error: etcdserver: role name not found", code: 1},
		{args: "user grant-role alice reader", out: "Role reader is granted to user alice\n"},
		{args: "user get alice", out: "User: alice\nRoles: reader\n"},
		{args: "user get alice --detail", out: "User: alice\n\n" + readerRole},
		{args: "user list", out: "alice\ncertonly\nroot\n"},
		{args: "role list", out: "reader\n"},
		{args: "auth enable", out: "Authentication Enabled\n"},
		{args: "auth status", out: "Authentication Status: true\nAuthRevision: 10\n"},

		{args: "put foo bar", out: noUser, code: 1},
		{args: "get foo", out: noUser, code: 1},
		{args: "user list", out: noUser, code: 1},
		{args: "--user root:rootpw put foo bar", out: "OK\n"},
		{args: "--user root:wrong put foo bar", out: badLogin, code: 2},
		{args: "--user nobody:x get foo", out: badLogin, code: 2},
		{args: "--user alice:alicepw get foo", out: "foo\nbar\n"},
		{args: "--user alice:alicepw put foo x", out: denied, code: 1},
		{args: "--user alice:alicepw put dir/x 1", out: "OK\n"},
		{args: "--user alice:alicepw get dir/ --prefix", out: "dir/x\n1\n"},
		{args: "--user alice:alicepw get d --prefix", out: denied, code: 1},
		{args: "--user alice:alicepw txn", stdin: "value(\"foo\") = \"bar\"\n\nput dir/y 2\n\nput foo 3\n\n", out: denied, code: 1},
		{args: "--user alice:alicepw txn", stdin: "value(\"foo\") = \"bar\"\n\nput dir/y 2\n\nget foo\n\n", out: "SUCCESS\n\nOK\n"},
		{args: "--user alice:alicepw del dir/x", out: "1\n"},
		{args: "--user alice:alicepw user list", out: denied, code: 1},
		{args: "--user alice:alicepw user get alice", out: "User: alice\nRoles: reader\n"},
		{args: "--user alice:alicepw user get root", out: denied, code: 1},
		{args: "--user alice:alicepw role get reader", out: readerRole},
		{args: "--user alice:alicepw role list", out: denied, code: 1},
		{args: "--user alice:alicepw compaction 1", out: denied, code: 1},
		{args: "--user alice:alicepw alarm disarm", out: ""}, // lists the alarms (allowed), none to disarm
		{args: "--user alice:alicepw auth disable", out: denied, code: 1},
		{args: "--user certonly:x get foo", out: "Error: rpc error: code = Unknown desc = auth: authentication failed, password was given for no password user", code: 2},

		{args: "--user root:rootpw user delete root", out: "Error: etcdserver: invalid auth management", code: 1},
		{args: "--user root:rootpw user revoke-role root root", out: "Error: etcdserver: invalid auth management", code: 1},
		{args: "--user root:rootpw role delete root", out: "Error: etcdserver: invalid auth management", code: 1},
		{args: "--user root:rootpw user revoke-role alice nope", out: "Error: etcdserver: role is not granted to the user", code: 1},
		{args: "--user root:rootpw role revoke-permission reader zzz", out: "Error: etcdserver: permission is not granted to the role", code: 1},
		{args: "--user root:rootpw role revoke-permission reader dir/ --prefix", out: "Permission of range [dir/, dir0) is revoked from role reader\n"},
		{args: "--user alice:alicepw get dir/y", out: denied, code: 1},
		{args: "--user root:rootpw user passwd alice --interactive=false", stdin: "newpw\n", out: "Password updated\n"},
		{args: "--user alice:alicepw get foo", out: badLogin, code: 2},
		{args: "--user alice:newpw get foo", out: "foo\nbar\n"},
		{args: "--user root:rootpw user revoke-role alice reader", out: "Role reader is revoked from user alice\n"},
		{args: "--user root:rootpw user get alice", out: "User: alice\nRoles:\n"},
		{args: "--user alice:newpw get foo", out: denied, code: 1},
		{args: "--user root:rootpw role delete reader", out: "Role reader deleted\n"},
		{args: "--user root:rootpw user delete alice", out: "User alice deleted\n"},
		{args: "--user root:rootpw user delete alice", out: "Error: etcdserver: user name not found", code: 1},
		{args: "--user root:rootpw auth status", out: "Authentication Status: true\nAuthRevision: 15\n"},
		{args: "--user root:rootpw auth disable", out: "Authentication Disabled\n"},
		{args: "auth status", out: "Authentication Status: false\nAuthRevision: 16\n"},
		{args: "user list", out: "certonly\nroot\n"},
		{args: "get foo", out: "foo\nbar\n"},
	})
}

// TestAuthCompatEtcdctlRanges: open-ended and every-key permissions, the
// range rules of grant-permission, and what a user without the root role
// gets from the maintenance commands and a watch, as etcd 3.7.3 prints
// them.
func TestAuthCompatEtcdctlRanges(t *testing.T) {
	t.Parallel()
	c := NewCluster(t, 1)
	denied := "Error: etcdserver: permission denied"
	runCtlSteps(t, c, []ctlStep{
		{args: "--user root:x get foo", out: ""}, // auth off: the login is not needed
		{args: "user add root --new-user-password=rootpw", out: "User root created\n"},
		{args: "user grant-role root root", out: "Role root is granted to user root\n"},
		{args: "role add r1", out: "Role r1 created\n"},
		{argv: []string{"role", "grant-permission", "r1", "read", "", "--prefix"}, out: "Role r1 updated\n"},
		{args: "role grant-permission r1 write k --from-key", out: "Role r1 updated\n"},
		{argv: []string{"role", "revoke-permission", "r1", "", "--prefix"}, out: "Permission of range [, <open ended> is revoked from role r1\n"},
		{args: "role revoke-permission r1 k --from-key", out: "Permission of range [k, <open ended> is revoked from role r1\n"},
		{args: "role grant-permission r1 readwrite c a", out: "Error: etcdserver: invalid auth management", code: 1},
		{args: "role grant-permission r1 readwrite b bb", out: "Role r1 updated\n"},
		{args: "role get r1", out: "Role r1\nKV Read:\n\t[b, bb)\nKV Write:\n\t[b, bb)\n"},
		{args: "user add bob --new-user-password=b", out: "User bob created\n"},
		{args: "user grant-role bob r1", out: "Role r1 is granted to user bob\n"},
		{args: "auth enable", out: "Authentication Enabled\n"},
		{args: "--user bob:b put b1 x", out: "OK\n"},
		{args: "--user bob:b put bz x", out: denied, code: 1},
		{args: "--user bob:b get b --prefix --keys-only", out: denied, code: 1},
		{args: "--user bob:b get b bb --keys-only", out: "b1\n\n"},
		{args: "--user bob:b alarm list", out: ""},
		{args: "--user bob:b move-leader 1", out: denied, code: 1},
		{args: "--user bob:b snapshot save " + t.TempDir() + "/x.db", out: "Error: rpc error: code = PermissionDenied desc = etcdserver: permission denied", code: 5},
		{args: "--user bob:b endpoint hashkv", out: denied, code: 1},
		{args: "--user bob:b watch zzz", out: "Error: watch is canceled by the server", code: 5},
		{args: "--user root:rootpw role get root", out: "Error: etcdserver: role name not found", code: 1},
		{args: "--user root:rootpw auth disable", out: "Authentication Disabled\n"},
		{args: "--user root:rootpw get b1 --print-value-only", out: "x\n"},
	})
}
