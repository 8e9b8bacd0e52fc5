package config

import (
	"fmt"
	"net"
	"net/url"
	"slices"
	"strings"
)

// parseURLList parses a comma-separated list of URLs as etcd's URL flags do:
// surrounding spaces are trimmed, duplicates are dropped (first one kept),
// and every URL must pass checkURL. An empty or blank string is an empty
// list.
func parseURLList(s string) ([]url.URL, error) {
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	var out []url.URL
	seen := make(map[string]bool)
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			return nil, fmt.Errorf("empty URL in list")
		}
		u, err := parseURL(part)
		if err != nil {
			return nil, err
		}
		if seen[u.String()] {
			continue
		}
		seen[u.String()] = true
		out = append(out, *u)
	}
	return out, nil
}

func parseURL(s string) (*url.URL, error) {
	u, err := url.Parse(s)
	if err != nil {
		return nil, fmt.Errorf("URL %q does not parse: %w", s, err)
	}
	if err := checkURL(*u); err != nil {
		return nil, err
	}
	return u, nil
}

// checkURL applies etcd's rules to a member URL: the scheme is http, https,
// unix or unixs; http and https URLs have a host:port address and no path.
func checkURL(u url.URL) error {
	switch u.Scheme {
	case "http", "https":
		if _, _, err := net.SplitHostPort(u.Host); err != nil {
			return fmt.Errorf("URL %q does not have a host:port address", u.String())
		}
		if u.Path != "" {
			return fmt.Errorf("URL %q must not contain a path", u.String())
		}
	case "unix", "unixs":
	default:
		return fmt.Errorf("URL %q has scheme %q; want http, https, unix or unixs", u.String(), u.Scheme)
	}
	return nil
}

// checkBindURL applies etcd's extra rule for URLs that are listened on: the
// host must be an IP address or "localhost", never another domain name.
func checkBindURL(u url.URL) error {
	if err := checkURL(u); err != nil {
		return err
	}
	if u.Scheme == "unix" || u.Scheme == "unixs" {
		return nil
	}
	host, _, _ := net.SplitHostPort(u.Host)
	if host == "localhost" || net.ParseIP(host) != nil {
		return nil
	}
	return fmt.Errorf("URL %q cannot be listened on: the host must be an IP address or localhost", u.String())
}

func formatURLs(us []url.URL) string {
	s := make([]string, len(us))
	for i := range us {
		s[i] = us[i].String()
	}
	return strings.Join(s, ",")
}

// ParseInitialCluster parses an --initial-cluster value such as
// "n1=http://a:2380,n1=http://b:2380,n2=http://c:2380". A name may appear
// several times; its URLs are gathered into one Member, in order. Members are
// returned in the order their names first appear. Spaces around names and
// URLs are ignored, as are empty entries (",,"); an empty string gives no
// members. Errors: an entry without '=', an empty name, an invalid URL (see
// checkURL) and a URL listed twice.
func ParseInitialCluster(s string) ([]Member, error) {
	var members []Member
	index := make(map[string]int)
	seenURL := make(map[string]string)
	for _, entry := range strings.Split(s, ",") {
		entry = strings.TrimSpace(entry)
		if entry == "" {
			continue
		}
		name, rawURL, ok := strings.Cut(entry, "=")
		if !ok {
			return nil, fmt.Errorf("entry %q is not of the form name=URL", entry)
		}
		name, rawURL = strings.TrimSpace(name), strings.TrimSpace(rawURL)
		if name == "" {
			return nil, fmt.Errorf("entry %q has an empty member name", entry)
		}
		if rawURL == "" {
			return nil, fmt.Errorf("entry %q has an empty URL", entry)
		}
		u, err := parseURL(rawURL)
		if err != nil {
			return nil, fmt.Errorf("member %q: %w", name, err)
		}
		us := u.String()
		if prev, dup := seenURL[us]; dup {
			return nil, fmt.Errorf("URL %q is listed twice (members %q and %q)", us, prev, name)
		}
		seenURL[us] = name
		i, ok := index[name]
		if !ok {
			i = len(members)
			index[name] = i
			members = append(members, Member{Name: name})
		}
		members[i].PeerURLs = append(members[i].PeerURLs, us)
	}
	return members, nil
}

// FormatInitialCluster is the inverse of ParseInitialCluster: it renders
// members as "name=url,name=url" in order.
func FormatInitialCluster(members []Member) string {
	var parts []string
	for _, m := range members {
		for _, u := range m.PeerURLs {
			parts = append(parts, m.Name+"="+u)
		}
	}
	return strings.Join(parts, ",")
}

// sameURLSet reports whether a and b hold the same URLs, ignoring order and
// repeats.
func sameURLSet(a []string, b []url.URL) bool {
	x := slices.Clone(a)
	y := make([]string, len(b))
	for i := range b {
		y[i] = b[i].String()
	}
	slices.Sort(x)
	slices.Sort(y)
	return slices.Equal(slices.Compact(x), slices.Compact(y))
}
