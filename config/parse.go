package config

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"slices"
	"strings"
)

// Parse builds the configuration of a cairn member from its command-line
// arguments (without the program name) and its environment (os.Environ()
// form, "KEY=value"), following etcd's documented precedence:
//
//  1. Command-line flags, in the forms --name value, --name=value, -name
//     value and -name=value; a boolean flag alone means true. An unknown
//     flag or a positional argument is an error.
//  2. For every flag not given on the command line, its ETCD_* variable
//     (--data-dir <-> ETCD_DATA_DIR); empty variables are ignored. Other
//     ETCD_* variables are ignored with a warning in Config.Warnings.
//  3. If --config-file (or ETCD_CONFIG_FILE) names a YAML file, the
//     configuration comes from etcd's defaults and that file only: as etcd
//     documents, all other flags and ETCD_* variables are then ignored
//     (each ignored one is listed in Config.Warnings).
//
// Then, as etcd does: an empty --data-dir becomes "<name>.etcd"; a
// --name other than "default" with no --initial-cluster given makes the
// initial cluster "<name>=<initial-advertise-peer-urls>"; and
// --listen-client-urls given without --advertise-client-urls clears the
// default advertised URLs (so Validate asks for them). Finally the result
// is checked with Validate.
//
// Parse returns ErrHelp for -h/--help and ErrVersion for --version. Every
// other error is one line naming the flag, variable or config file key and
// the bad value.
func Parse(args []string, environ []string) (*Config, error) {
	p := newParser()
	fs := flag.NewFlagSet("cairn", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	var configFile string
	var version bool
	fs.StringVar(&configFile, "config-file", "", "")
	fs.BoolVar(&version, "version", false, "")
	for _, o := range p.opts {
		v := &flagValue{p: p, opt: o}
		if o.isBool {
			fs.Var(boolFlagValue{v}, o.name, "")
		} else {
			fs.Var(v, o.name, "")
		}
	}
	if err := fs.Parse(args); err != nil {
		if p.err != nil {
			return nil, p.err
		}
		return nil, flagError(err)
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q: cairn takes only flags (see --help)", fs.Arg(0))
	}
	if version {
		return nil, ErrVersion
	}

	env := parseEnviron(environ)
	if configFile == "" {
		configFile = env[envName("config-file")]
	}
	var err error
	if configFile != "" {
		err = p.fromFile(configFile, env)
	} else {
		err = p.fromEnv(env)
	}
	if err != nil {
		return nil, err
	}
	c := p.finish()
	c.ConfigFile = configFile
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return c, nil
}

// parser carries one Parse call's state.
type parser struct {
	cfg    *Config
	opts   []option
	byName map[string]option
	// flagSet maps an option's name to the flag that set it.
	flagSet map[string]string
	// err is the first error of a flag value, kept so that Parse reports
	// it in Cairn's words rather than the flag package's.
	err      error
	warnings []string
}

func newParser() *parser {
	p := &parser{
		cfg:     parseStart(),
		opts:    options(),
		byName:  make(map[string]option),
		flagSet: make(map[string]string),
	}
	for _, o := range p.opts {
		p.byName[o.name] = o
	}
	return p
}

// parseStart is Default() with the data dir left to be derived from the
// final name.
func parseStart() *Config {
	c := Default()
	c.DataDir = ""
	return c
}

func (p *parser) warn(format string, args ...any) {
	p.warnings = append(p.warnings, fmt.Sprintf(format, args...))
}

// apply sets option o from value v, which came from where (a flag, a
// variable or a config file key).
func (p *parser) apply(o option, v, where string) error {
	if o.set == nil && !o.ignored {
		if o.isDefault(v) {
			return nil
		}
		return fmt.Errorf("invalid value %q for %s: cairn does not implement this etcd option yet (only etcd's default %q is accepted)", v, where, o.def)
	}
	if o.set != nil {
		if err := o.set(p.cfg, v); err != nil {
			return fmt.Errorf("invalid value %q for %s: %w", v, where, err)
		}
	}
	p.cfg.setOrigin(o.name, where)
	if o.ignored && !o.isDefault(v) {
		p.warn("ignoring %s=%q: %s", where, v, o.why)
	}
	return nil
}

type flagValue struct {
	p   *parser
	opt option
}

func (f *flagValue) String() string {
	if f == nil {
		return ""
	}
	return f.opt.def
}

func (f *flagValue) Set(v string) error {
	where := "--" + f.opt.name
	if err := f.p.apply(f.opt, v, where); err != nil {
		if f.p.err == nil {
			f.p.err = err
		}
		return err
	}
	f.p.flagSet[f.opt.name] = where
	return nil
}

// boolFlagValue lets a boolean flag stand alone (--enable-pprof).
type boolFlagValue struct{ *flagValue }

func (boolFlagValue) IsBoolFlag() bool { return true }

// flagError rewords the flag package's own errors (the ones not raised by
// an option's parser) in Cairn's --flag spelling.
func flagError(err error) error {
	if errors.Is(err, flag.ErrHelp) {
		return ErrHelp
	}
	msg := err.Error()
	if name, ok := strings.CutPrefix(msg, "flag provided but not defined: -"); ok {
		if r, removed := removedFlags()[name]; removed {
			return fmt.Errorf("unknown flag --%s: %s (see --help)", name, r.why)
		}
		return fmt.Errorf("unknown flag --%s (see --help)", name)
	}
	if name, ok := strings.CutPrefix(msg, "flag needs an argument: -"); ok {
		return fmt.Errorf("flag --%s needs a value", name)
	}
	return fmt.Errorf("command line: %w", err)
}

// parseEnviron turns "KEY=value" entries into a map; a later entry wins,
// as with os.Getenv.
func parseEnviron(environ []string) map[string]string {
	env := make(map[string]string)
	for _, kv := range environ {
		k, v, ok := strings.Cut(kv, "=")
		if ok && k != "" {
			env[k] = v
		}
	}
	return env
}

// specialEnv are ETCD_* variables that are not options but are not
// unknown either.
func specialEnv(name string) bool {
	switch name {
	case "ETCD_CONFIG_FILE", "ETCD_UNSUPPORTED_ARCH", "ETCD_VERSION":
		return true
	}
	return false
}

// fromEnv applies the ETCD_* variables of options not set by a flag.
func (p *parser) fromEnv(env map[string]string) error {
	for _, o := range p.opts {
		name := envName(o.name)
		v, ok := env[name]
		if !ok || v == "" {
			continue
		}
		if f, ok := p.flagSet[o.name]; ok {
			p.warn("ignoring %s: %s is set on the command line", name, f)
			continue
		}
		if err := p.apply(o, v, name); err != nil {
			return err
		}
	}
	if v := env["ETCD_VERSION"]; v != "" {
		p.warn("ignoring ETCD_VERSION: it is not an option (use --version)")
	}
	p.warnUnknownEnv(env)
	return nil
}

// warnUnknownEnv warns of every ETCD_* variable that is no option, as etcd
// does, saying what replaced the ones etcd 3.7 removed.
func (p *parser) warnUnknownEnv(env map[string]string) {
	known := make(map[string]bool, len(p.opts))
	for _, o := range p.opts {
		known[envName(o.name)] = true
	}
	removed := make(map[string]string)
	for name, r := range removedFlags() {
		removed[envName(name)] = r.why
	}
	var unknown []string
	for k := range env {
		if strings.HasPrefix(k, "ETCD_") && !known[k] && !specialEnv(k) {
			unknown = append(unknown, k)
		}
	}
	slices.Sort(unknown)
	for _, k := range unknown {
		if why, ok := removed[k]; ok {
			p.warn("ignoring environment variable %s: %s", k, why)
			continue
		}
		p.warn("ignoring unrecognized environment variable %s", k)
	}
}

// finish applies etcd's derived defaults and returns the configuration.
func (p *parser) finish() *Config {
	c := p.cfg
	if c.DataDir == "" {
		c.DataDir = c.Name + ".etcd"
	}
	if _, given := c.origin["initial-cluster"]; !given && c.Name != DefaultName {
		m := Member{Name: c.Name}
		for _, u := range c.InitialAdvertisePeerURLs {
			m.PeerURLs = append(m.PeerURLs, u.String())
		}
		c.InitialCluster = []Member{m}
	}
	_, listenGiven := c.origin["listen-client-urls"]
	_, advertiseGiven := c.origin["advertise-client-urls"]
	if listenGiven && !advertiseGiven {
		c.AdvertiseClientURLs = nil
	}
	if c.QuotaBackendBytes > MaxQuotaBytes {
		p.warn("%s=%d exceeds the suggested maximum of %d bytes", c.where("quota-backend-bytes"), c.QuotaBackendBytes, MaxQuotaBytes)
	}
	p.warnings = append(p.warnings, c.FeatureGates.warnings()...)
	c.Warnings = p.warnings
	return c
}
