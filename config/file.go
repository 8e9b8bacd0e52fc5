package config

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"

	"sigs.k8s.io/yaml"
)

// fromFile replaces the configuration with etcd's defaults plus the YAML
// file at path. As in etcd, the command-line flags and ETCD_* variables are
// then ignored; each one that was given is named in a warning.
func (p *parser) fromFile(path string, env map[string]string) error {
	for _, o := range p.opts {
		if f, ok := p.flagSet[o.name]; ok {
			p.warn("ignoring %s: a config file is given, so command-line flags and ETCD_* variables are ignored", f)
		}
	}
	for _, o := range p.opts {
		if v := env[envName(o.name)]; v != "" {
			p.warn("ignoring %s: a config file is given, so command-line flags and ETCD_* variables are ignored", envName(o.name))
		}
	}
	p.warnUnknownEnv(env)

	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("config file: %w", err)
	}
	p.cfg = parseStart()
	return p.applyYAML(data, path)
}

// applyYAML applies an etcd configuration file: a YAML map whose keys are
// flag names. Values are strings, numbers, booleans or lists (joined with
// commas, as the flag would take them); a null value keeps the default.
// Duration options take a Go duration string or, as etcd's file does, a
// number of nanoseconds. Unrecognized keys are ignored with a warning, as
// etcd ignores them.
func (p *parser) applyYAML(data []byte, path string) error {
	var raw map[string]json.RawMessage
	if err := yaml.Unmarshal(data, &raw); err != nil {
		return fmt.Errorf("config file %s: %w", path, err)
	}
	keys := make([]string, 0, len(raw))
	for k := range raw {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		where := fmt.Sprintf("key %q in config file %s", k, path)
		if k == "client-transport-security" || k == "peer-transport-security" {
			if err := p.applyTLSSection(raw[k], k, path); err != nil {
				return err
			}
			continue
		}
		o, ok := p.byName[k]
		v, present, err := yamlScalar(raw[k], o.yamlNanos)
		if !ok {
			// As etcd 3.7 does, an unknown key is not an error; Cairn
			// names it, and what replaced it if etcd removed it (unless
			// it holds its old default, as etcd's older sample files do).
			r, removed := removedFlags()[k]
			switch {
			case !removed:
				p.warn("ignoring unrecognized key %q in config file %s", k, path)
			case err == nil && (!present || v == "" || v == r.def):
			default:
				p.warn("ignoring key %q in config file %s: %s", k, path, r.why)
			}
			continue
		}
		if err != nil {
			return fmt.Errorf("invalid value %s for %s: %w", bytes.TrimSpace(raw[k]), where, err)
		}
		if !present {
			continue
		}
		if k == "discovery-fallback" && v == "proxy" {
			// etcd 3.7 does not check this key in a config file, and its
			// own sample files still set it to "proxy".
			p.warn("ignoring %s=%q: etcd 3.7 removed the v2 proxy", where, v)
			continue
		}
		if err := p.apply(o, v, where); err != nil {
			return err
		}
	}
	return nil
}

// yamlScalar renders one config file value as the string its flag would
// take. present is false for null.
func yamlScalar(raw json.RawMessage, nanos bool) (v string, present bool, err error) {
	raw = bytes.TrimSpace(raw)
	switch {
	case len(raw) == 0 || string(raw) == "null":
		return "", false, nil
	case raw[0] == '"':
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return "", false, err
		}
		return s, true, nil
	case raw[0] == '[':
		var items []json.RawMessage
		if err := json.Unmarshal(raw, &items); err != nil {
			return "", false, err
		}
		parts := make([]string, 0, len(items))
		for _, it := range items {
			s, ok, err := yamlScalar(it, nanos)
			if err != nil {
				return "", false, err
			}
			if ok {
				parts = append(parts, s)
			}
		}
		return strings.Join(parts, ","), true, nil
	case raw[0] == '{':
		return "", false, errors.New("want a value, not a mapping")
	case string(raw) == "true" || string(raw) == "false":
		return string(raw), true, nil
	default: // a number
		if nanos {
			return string(raw) + "ns", true, nil
		}
		return string(raw), true, nil
	}
}
