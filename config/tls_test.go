package config

import (
	"slices"
	"strings"
	"testing"
)

// TestTLSFlags: every etcd 3.7 security flag sets its side's field, from a
// flag or an ETCD_* variable.
func TestTLSFlags(t *testing.T) {
	c, err := Parse([]string{
		"--listen-client-urls", "https://127.0.0.1:2379", "--advertise-client-urls", "https://127.0.0.1:2379",
		"--listen-peer-urls", "https://127.0.0.1:2380", "--initial-advertise-peer-urls", "https://127.0.0.1:2380",
		"--initial-cluster", "default=https://127.0.0.1:2380",
		"--cert-file", "c.pem", "--key-file", "c-key.pem", "--client-cert-auth", "--trusted-ca-file", "ca.pem",
		"--client-cert-file", "cc.pem", "--client-key-file", "cc-key.pem", "--client-crl-file", "c.crl",
		"--client-cert-allowed-hostname", "a.example,b.example",
		"--peer-cert-file", "p.pem", "--peer-key-file", "p-key.pem", "--peer-client-cert-auth=true",
		"--peer-trusted-ca-file", "pca.pem", "--peer-crl-file", "p.crl", "--peer-cert-allowed-cn", "m1,m2",
		"--peer-client-cert-file", "pc.pem", "--peer-client-key-file", "pc-key.pem",
		"--cipher-suites", "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
		"--tls-max-version", "TLS1.3", "--self-signed-cert-validity", "3",
	}, []string{"ETCD_AUTO_TLS=true", "ETCD_PEER_AUTO_TLS=true"})
	if err != nil {
		t.Fatal(err)
	}
	wantClient := TLSInfo{CertFile: "c.pem", KeyFile: "c-key.pem", ClientCertFile: "cc.pem", ClientKeyFile: "cc-key.pem",
		ClientCertAuth: true, TrustedCAFile: "ca.pem", CRLFile: "c.crl", AutoTLS: true, AllowedHostnames: []string{"a.example", "b.example"}}
	wantPeer := TLSInfo{CertFile: "p.pem", KeyFile: "p-key.pem", ClientCertFile: "pc.pem", ClientKeyFile: "pc-key.pem",
		ClientCertAuth: true, TrustedCAFile: "pca.pem", CRLFile: "p.crl", AutoTLS: true, AllowedCNs: []string{"m1", "m2"}}
	if !tlsEqual(c.ClientTLS, wantClient) || !tlsEqual(c.PeerTLS, wantPeer) {
		t.Fatalf("client %+v\npeer %+v", c.ClientTLS, c.PeerTLS)
	}
	ids, err := c.CipherSuiteIDs()
	if err != nil || len(ids) != 2 {
		t.Fatalf("cipher suites %v, %v", ids, err)
	}
	if minV, maxV := c.TLSVersions(); minV != 0x0303 || maxV != 0x0304 || c.SelfSignedCertValidity != 3 {
		t.Fatalf("versions %x %x, validity %d", minV, maxV, c.SelfSignedCertValidity)
	}
	if len(c.Warnings) != 0 {
		t.Fatalf("warnings %q", c.Warnings)
	}
}

func tlsEqual(a, b TLSInfo) bool {
	return a.CertFile == b.CertFile && a.KeyFile == b.KeyFile && a.ClientCertFile == b.ClientCertFile &&
		a.ClientKeyFile == b.ClientKeyFile && a.ClientCertAuth == b.ClientCertAuth && a.TrustedCAFile == b.TrustedCAFile &&
		a.CRLFile == b.CRLFile && a.AutoTLS == b.AutoTLS && slices.Equal(a.AllowedCNs, b.AllowedCNs) &&
		slices.Equal(a.AllowedHostnames, b.AllowedHostnames)
}

// TestTLSConfigFileSections reads etcd's client-transport-security and
// peer-transport-security sections.
func TestTLSConfigFileSections(t *testing.T) {
	path := writeFile(t, `
listen-client-urls: https://127.0.0.1:2379
advertise-client-urls: https://127.0.0.1:2379
listen-metrics-urls: https://127.0.0.1:2381
client-transport-security:
  cert-file: /etc/cairn/server.pem
  key-file: /etc/cairn/server-key.pem
  client-cert-auth: true
  trusted-ca-file: /etc/cairn/ca.pem
  auto-tls: false
  allowed-hostname: [client.example]
  skip-client-san-verification: false
  something-else: 1
peer-transport-security:
  cert-file: /etc/cairn/peer.pem
  key-file: /etc/cairn/peer-key.pem
  client-cert-auth: true
  trusted-ca-file: /etc/cairn/ca.pem
  allowed-cn: [m1, m2]
client-crl-file: /etc/cairn/c.crl
peer-crl-file: /etc/cairn/p.crl
tls-min-version: TLS1.3
`)
	c, err := Parse([]string{"--config-file", path}, nil)
	if err != nil {
		t.Fatal(err)
	}
	wantClient := TLSInfo{CertFile: "/etc/cairn/server.pem", KeyFile: "/etc/cairn/server-key.pem", ClientCertAuth: true,
		TrustedCAFile: "/etc/cairn/ca.pem", CRLFile: "/etc/cairn/c.crl", AllowedHostnames: []string{"client.example"}}
	wantPeer := TLSInfo{CertFile: "/etc/cairn/peer.pem", KeyFile: "/etc/cairn/peer-key.pem", ClientCertAuth: true,
		TrustedCAFile: "/etc/cairn/ca.pem", CRLFile: "/etc/cairn/p.crl", AllowedCNs: []string{"m1", "m2"}}
	if !tlsEqual(c.ClientTLS, wantClient) || !tlsEqual(c.PeerTLS, wantPeer) || c.TLSMinVersion != "TLS1.3" {
		t.Fatalf("client %+v\npeer %+v", c.ClientTLS, c.PeerTLS)
	}
	want := []string{`ignoring unrecognized key "client-transport-security.something-else" in config file ` + path}
	if !slices.Equal(c.Warnings, want) {
		t.Fatalf("warnings %q, want %q", c.Warnings, want)
	}
}

// TestTLSErrors: etcd's refusals, one line each.
func TestTLSErrors(t *testing.T) {
	https := []string{"--listen-client-urls", "https://127.0.0.1:2379", "--advertise-client-urls", "https://127.0.0.1:2379"}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{https, "TLS key/cert (--cert-file, --key-file) must be provided for client url https://127.0.0.1:2379 with HTTPS scheme"},
		{[]string{"--listen-client-urls", "http://127.0.0.1:2379", "--advertise-client-urls", "http://127.0.0.1:2379",
			"--listen-client-http-urls", "https://127.0.0.1:2378"},
			"TLS key/cert (--cert-file, --key-file) must be provided for client url https://127.0.0.1:2378 with HTTPS scheme"},
		{[]string{"--listen-metrics-urls", "https://127.0.0.1:2381"},
			"client TLS key/cert (--cert-file, --key-file) must be provided for metrics secure url https://127.0.0.1:2381"},
		{[]string{"--cert-file", "c.pem"}, "--cert-file and --key-file must be given together"},
		{[]string{"--peer-client-key-file", "k.pem", "--peer-cert-file", "c", "--peer-key-file", "k"},
			"--peer-client-cert-file and --peer-client-key-file must be given together"},
		{[]string{"--peer-cert-allowed-cn", "a", "--peer-cert-allowed-hostname", "b"},
			`--peer-cert-allowed-cn and --peer-cert-allowed-hostname are mutually exclusive (cns=["a"], hostnames=["b"])`},
		{[]string{"--tls-min-version", "TLS1.1"},
			`invalid value "TLS1.1" for --tls-min-version: unexpected TLS version "TLS1.1" (must be one of: TLS1.2, TLS1.3)`},
		{[]string{"--tls-min-version", "TLS1.3", "--tls-max-version", "TLS1.2"},
			"min version (TLS1.3) is greater than max version (TLS1.2)"},
		{[]string{"--tls-min-version", "TLS1.3", "--cipher-suites", "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"},
			"cipher suites cannot be configured when only TLS1.3 is enabled"},
		{[]string{"--cipher-suites", "TLS_NOPE"},
			`invalid value "TLS_NOPE" for --cipher-suites: unexpected TLS cipher suite "TLS_NOPE"`},
		{[]string{"--client-cert-auth=maybe"}, `invalid value "maybe" for --client-cert-auth: want true or false`},
		{[]string{"--self-signed-cert-validity", "0"}, `invalid value "0" for --self-signed-cert-validity: must be at least 1 year`},
	} {
		_, err := Parse(tc.args, nil)
		if err == nil || err.Error() != tc.want {
			t.Errorf("Parse(%q):\n got %v\nwant %s", tc.args, err, tc.want)
		}
	}
	// With a certificate, or auto TLS, an https URL is fine.
	for _, extra := range [][]string{{"--cert-file", "c", "--key-file", "k"}, {"--auto-tls"}} {
		if _, err := Parse(append(slices.Clone(https), extra...), nil); err != nil {
			t.Errorf("%q: %v", extra, err)
		}
	}
	if !strings.Contains(Usage(), "--peer-cert-allowed-cn") || strings.Contains(Usage(), "does not implement TLS") {
		t.Error("Usage() does not list the TLS flags as working")
	}
}
