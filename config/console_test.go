package config

import "testing"

// The console is off unless asked for, and read-only is its own switch,
// from a flag, the environment (ETCD_*, as every flag) or a config file.
func TestConsoleFlags(t *testing.T) {
	for _, tc := range []struct {
		name              string
		args, env         []string
		enabled, readOnly bool
	}{
		{"default", nil, nil, false, false},
		{"enabled", []string{"--enable-console"}, nil, true, false},
		{"read-only", []string{"--enable-console", "--console-read-only"}, nil, true, true},
		{"explicitly off", []string{"--enable-console=false"}, nil, false, false},
		{"environment", nil, []string{"ETCD_ENABLE_CONSOLE=true", "ETCD_CONSOLE_READ_ONLY=true"}, true, true},
		{"file", nil, nil, true, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := tc.args
			if tc.name == "file" {
				args = []string{"--config-file", writeFile(t, "enable-console: true\nconsole-read-only: true\n")}
			}
			c, err := Parse(args, tc.env)
			if err != nil {
				t.Fatal(err)
			}
			if c.EnableConsole != tc.enabled || c.ConsoleReadOnly != tc.readOnly {
				t.Fatalf("EnableConsole=%v ConsoleReadOnly=%v, want %v %v", c.EnableConsole, c.ConsoleReadOnly, tc.enabled, tc.readOnly)
			}
		})
	}
}
