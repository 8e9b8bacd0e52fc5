package config

import "strings"

// Usage returns the --help text: the ways to run cairn, then every flag
// grouped as etcd groups them, each with its etcd default and meaning.
// etcd flags that Cairn does not implement yet are listed and marked.
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
environment variable.

Flags marked [not supported yet] are etcd flags cairn does not implement:
only their etcd default is accepted. Flags marked [ignored] are accepted and
have no effect.
`)
	opts := options()
	for _, g := range groups() {
		b.WriteString("\n" + g + ":\n")
		for _, o := range opts {
			if o.group != g {
				continue
			}
			b.WriteString("  --" + o.name + " '" + o.def + "'")
			switch {
			case o.set == nil && o.inert:
				b.WriteString(" [ignored]")
			case o.set == nil:
				b.WriteString(" [not supported yet]")
			}
			b.WriteString("\n    " + o.help + "\n")
		}
	}
	return b.String()
}
