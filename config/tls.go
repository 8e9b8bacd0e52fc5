package config

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/url"
	"slices"
	"strings"

	"go.etcd.io/etcd/client/pkg/v3/tlsutil"
)

// TLSInfo is one side's TLS settings (etcd's --cert-file... for clients,
// --peer-cert-file... for peers, or a config file's
// client-transport-security / peer-transport-security section). The
// files are read when the member starts (cmd/cairn checks them then) and
// again for every new connection, so renewed files are used without a
// restart.
type TLSInfo struct {
	// CertFile and KeyFile are the certificate this member serves with,
	// and presents when it dials unless ClientCertFile is given.
	CertFile, KeyFile string
	// ClientCertFile and ClientKeyFile are presented when this member
	// dials (etcd's --client-cert-file, --peer-client-cert-file).
	ClientCertFile, ClientKeyFile string
	// ClientCertAuth asks connecting clients (or peers) for a certificate
	// signed by TrustedCAFile.
	ClientCertAuth bool
	// TrustedCAFile verifies the other side's certificate.
	TrustedCAFile string
	// CRLFile lists revoked certificates, refused at the handshake.
	CRLFile string
	// AutoTLS makes a self-signed certificate at start when no CertFile is
	// given (etcd's --auto-tls, --peer-auto-tls).
	AutoTLS bool
	// AllowedCNs and AllowedHostnames restrict the accepted certificates
	// to these Common Names, or to certificates valid for one of these
	// host names (peer: --peer-cert-allowed-cn, --peer-cert-allowed-hostname;
	// client: --client-cert-allowed-hostname).
	AllowedCNs, AllowedHostnames []string
}

// Empty reports whether no certificate is configured (etcd's
// TLSInfo.Empty): auto TLS may still make one.
func (t TLSInfo) Empty() bool { return t.CertFile == "" && t.KeyFile == "" }

// Enabled reports whether this side serves TLS: with a certificate, or
// one auto TLS makes.
func (t TLSInfo) Enabled() bool { return !t.Empty() || t.AutoTLS }

// IsSecureScheme reports whether a URL scheme asks for TLS.
func IsSecureScheme(scheme string) bool {
	return scheme == "https" || scheme == "unixs"
}

// validateTLS checks the security options as etcd does before it starts:
// an https URL needs a certificate, the versions and cipher suites must be
// known and compatible, and the certificate restrictions are exclusive.
// The files themselves are read by cmd/cairn, which says which one is
// missing, unreadable or does not match.
func (c *Config) validateTLS() error {
	if _, err := c.CipherSuiteIDs(); err != nil {
		return fmt.Errorf("invalid value %q for %s: %w", strings.Join(c.CipherSuites, ","), c.where("cipher-suites"), err)
	}
	minV, err := tlsutil.GetTLSVersion(c.TLSMinVersion)
	if err != nil {
		return fmt.Errorf("invalid value %q for %s: %w", c.TLSMinVersion, c.where("tls-min-version"), err)
	}
	maxV, err := tlsutil.GetTLSVersion(c.TLSMaxVersion)
	if err != nil {
		return fmt.Errorf("invalid value %q for %s: %w", c.TLSMaxVersion, c.where("tls-max-version"), err)
	}
	if maxV != 0 && minV > maxV {
		return fmt.Errorf("min version (%s) is greater than max version (%s)", c.TLSMinVersion, c.TLSMaxVersion)
	}
	if minV == tlsutil13() && len(c.CipherSuites) > 0 {
		return fmt.Errorf("cipher suites cannot be configured when only TLS1.3 is enabled")
	}
	if c.SelfSignedCertValidity == 0 {
		return fmt.Errorf("invalid value \"0\" for %s: must be at least 1 year", c.where("self-signed-cert-validity"))
	}
	for _, side := range []struct {
		t                                TLSInfo
		cert, key, ccert, ckey, cn, host string
	}{
		{c.ClientTLS, "cert-file", "key-file", "client-cert-file", "client-key-file", "client-transport-security.allowed-cn", "client-cert-allowed-hostname"},
		{c.PeerTLS, "peer-cert-file", "peer-key-file", "peer-client-cert-file", "peer-client-key-file", "peer-cert-allowed-cn", "peer-cert-allowed-hostname"},
	} {
		if (side.t.CertFile == "") != (side.t.KeyFile == "") {
			return fmt.Errorf("%s and %s must be given together", c.where(side.cert), c.where(side.key))
		}
		if (side.t.ClientCertFile == "") != (side.t.ClientKeyFile == "") {
			return fmt.Errorf("%s and %s must be given together", c.where(side.ccert), c.where(side.ckey))
		}
		if len(side.t.AllowedCNs) > 0 && len(side.t.AllowedHostnames) > 0 {
			return fmt.Errorf("%s and %s are mutually exclusive (cns=%q, hostnames=%q)",
				c.where(side.cn), c.where(side.host), side.t.AllowedCNs, side.t.AllowedHostnames)
		}
	}
	// etcd's messages for a secure URL without a certificate.
	for _, u := range slices.Concat(c.ListenClientURLs, c.ListenClientHTTPURLs) {
		if IsSecureScheme(u.Scheme) && !c.ClientTLS.Enabled() {
			return fmt.Errorf("TLS key/cert (--cert-file, --key-file) must be provided for client url %s with HTTPS scheme", u.String())
		}
	}
	for _, u := range c.ListenMetricsURLs {
		if IsSecureScheme(u.Scheme) && !c.ClientTLS.Enabled() {
			return fmt.Errorf("client TLS key/cert (--cert-file, --key-file) must be provided for metrics secure url %s", u.String())
		}
	}
	for _, u := range c.ListenPeerURLs {
		if IsSecureScheme(u.Scheme) && !c.PeerTLS.Enabled() {
			return fmt.Errorf("cannot listen on TLS for %s: KeyFile and CertFile are not presented (give --peer-cert-file and --peer-key-file, or --peer-auto-tls)", hostOf(u))
		}
	}
	return nil
}

func hostOf(u url.URL) string {
	if u.Host != "" {
		return u.Host
	}
	return u.Path
}

func tlsutil13() uint16 {
	v, _ := tlsutil.GetTLSVersion(string(tlsutil.TLSVersion13))
	return v
}

// CipherSuiteIDs returns --cipher-suites as Go's cipher suite IDs; nil
// lets Go choose.
func (c *Config) CipherSuiteIDs() ([]uint16, error) {
	if len(c.CipherSuites) == 0 {
		return nil, nil
	}
	return tlsutil.GetCipherSuites(c.CipherSuites)
}

// TLSVersions returns --tls-min-version and --tls-max-version as Go's
// version numbers (0: Go's choice).
func (c *Config) TLSVersions() (minV, maxV uint16) {
	minV, _ = tlsutil.GetTLSVersion(c.TLSMinVersion)
	maxV, _ = tlsutil.GetTLSVersion(c.TLSMaxVersion)
	return minV, maxV
}

// securityOptions are etcd 3.7's security flags that set a TLSInfo field:
// the flag names for each side, and the YAML key of the same field in
// client-transport-security / peer-transport-security ("" when the
// section has no such key).
type securityField struct {
	client, peer, yaml string
	isBool, isList     bool
	get                func(t *TLSInfo) any
}

func securityFields() []securityField {
	return []securityField{
		{client: "cert-file", peer: "peer-cert-file", yaml: "cert-file", get: func(t *TLSInfo) any { return &t.CertFile }},
		{client: "key-file", peer: "peer-key-file", yaml: "key-file", get: func(t *TLSInfo) any { return &t.KeyFile }},
		{client: "client-cert-file", peer: "peer-client-cert-file", yaml: "client-cert-file", get: func(t *TLSInfo) any { return &t.ClientCertFile }},
		{client: "client-key-file", peer: "peer-client-key-file", yaml: "client-key-file", get: func(t *TLSInfo) any { return &t.ClientKeyFile }},
		{client: "client-cert-auth", peer: "peer-client-cert-auth", yaml: "client-cert-auth", isBool: true, get: func(t *TLSInfo) any { return &t.ClientCertAuth }},
		{client: "trusted-ca-file", peer: "peer-trusted-ca-file", yaml: "trusted-ca-file", get: func(t *TLSInfo) any { return &t.TrustedCAFile }},
		{client: "client-crl-file", peer: "peer-crl-file", get: func(t *TLSInfo) any { return &t.CRLFile }},
		{client: "auto-tls", peer: "peer-auto-tls", yaml: "auto-tls", isBool: true, get: func(t *TLSInfo) any { return &t.AutoTLS }},
		{client: "", peer: "peer-cert-allowed-cn", yaml: "allowed-cn", isList: true, get: func(t *TLSInfo) any { return &t.AllowedCNs }},
		{client: "client-cert-allowed-hostname", peer: "peer-cert-allowed-hostname", yaml: "allowed-hostname", isList: true, get: func(t *TLSInfo) any { return &t.AllowedHostnames }},
	}
}

// setTLSField returns the setter of an option that sets field f of the
// client (peer false) or peer side.
func setTLSField(f securityField, peer bool) func(c *Config, v string) error {
	return func(c *Config, v string) error {
		t := &c.ClientTLS
		if peer {
			t = &c.PeerTLS
		}
		switch p := f.get(t).(type) {
		case *string:
			*p = strings.TrimSpace(v)
		case *bool:
			return setBool(func(*Config) *bool { return p })(c, v)
		case *[]string:
			return setStrings(func(*Config) *[]string { return p })(c, v)
		}
		return nil
	}
}

// applyTLSSection applies etcd's client-transport-security or
// peer-transport-security section of a config file. As in etcd, the
// section's keys are cert-file, key-file, client-cert-file,
// client-key-file, client-cert-auth, trusted-ca-file, auto-tls,
// allowed-cn and allowed-hostname (the CRL files are top-level keys);
// unknown keys are ignored with a warning.
func (p *parser) applyTLSSection(raw json.RawMessage, section, path string) error {
	raw = bytes.TrimSpace(raw)
	if string(raw) == "null" {
		return nil
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(raw, &fields); err != nil {
		return fmt.Errorf("invalid value %s for key %q in config file %s: want a mapping", raw, section, path)
	}
	peer := section == "peer-transport-security"
	keys := make([]string, 0, len(fields))
	for k := range fields {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	byYAML := map[string]securityField{}
	for _, f := range securityFields() {
		if f.yaml != "" {
			byYAML[f.yaml] = f
		}
	}
	for _, k := range keys {
		where := fmt.Sprintf("key \"%s.%s\" in config file %s", section, k, path)
		f, ok := byYAML[k]
		if !ok {
			if k != "skip-client-san-verification" {
				p.warn("ignoring unrecognized %s", where)
				continue
			}
		}
		v, present, err := yamlScalar(fields[k], false)
		if err != nil {
			return fmt.Errorf("invalid value %s for %s: %w", bytes.TrimSpace(fields[k]), where, err)
		}
		if !present {
			continue
		}
		if !ok { // skip-client-san-verification
			if v != "false" {
				return fmt.Errorf("invalid value %q for %s: cairn does not implement skipping the client SAN verification", v, where)
			}
			continue
		}
		name := f.client
		if peer {
			name = f.peer
		}
		if name == "" { // the client side's allowed-cn has no flag in etcd 3.7
			name = "client-transport-security.allowed-cn"
		}
		p.cfg.setOrigin(name, where)
		if err := setTLSField(f, peer)(p.cfg, v); err != nil {
			return fmt.Errorf("invalid value %q for %s: %w", v, where, err)
		}
	}
	return nil
}
