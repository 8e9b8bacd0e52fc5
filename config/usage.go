package config

import "strings"

// Usage returns the --help text: the ways to run cairn, then every flag
// that works, grouped as etcd groups them, each with its etcd default and
// meaning; etcd flags that Cairn does not implement yet are marked, and
// the ones it accepts but ignores are named apart at the end, with why.
func Usage() string {
	var b strings.Builder
	b.WriteString(`Usage:

  cairn [flags]
    Start a cairn member (an etcd v3 compatible key-value store).

  cairn --version
    Print the version and exit.

  cairn -h | --help
    Print this help and exit.

  cairn --config-file <path>
    Read the configuration from an etcd-style YAML file whose keys are the
    flag names below. When a config file is given, all other command-line
    flags and ETCD_* environment variables are ignored, as in etcd.

Every flag --some-flag can also be set with the environment variable
ETCD_SOME_FLAG. A flag given on the command line takes precedence over its
environment variable. The flags are etcd 3.7's: the ones etcd 3.7 removed
(--experimental-*, the v2 proxy) are refused here too.

Flags marked [not supported yet] are etcd flags cairn does not implement:
only their etcd default is accepted.
`)
	opts := options()
	for _, g := range groups() {
		title := "\n" + g + ":\n"
		for _, o := range opts {
			if o.group != g || o.ignored {
				continue
			}
			b.WriteString(title)
			title = ""
			b.WriteString("  --" + o.name + " '" + o.def + "'")
			if o.set == nil {
				b.WriteString(" [not supported yet]")
			}
			b.WriteString("\n    " + o.help + "\n")
		}
	}
	b.WriteString("\nAccepted for compatibility with etcd, and ignored (a value other than the\ndefault is logged as a warning):\n")
	byWhy := map[string][]string{}
	var whys []string
	for _, o := range opts {
		if !o.ignored {
			continue
		}
		if _, seen := byWhy[o.why]; !seen {
			whys = append(whys, o.why)
		}
		byWhy[o.why] = append(byWhy[o.why], "--"+o.name)
	}
	for _, why := range whys {
		b.WriteString("  " + strings.Join(byWhy[why], ", ") + "\n    " + upperFirst(why) + ".\n")
	}
	return b.String()
}

func upperFirst(s string) string {
	if s == "" || strings.HasPrefix(s, "--") {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}
