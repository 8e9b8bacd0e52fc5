package version

import (
	"runtime/debug"
	"testing"
)

func TestFromBuildInfo(t *testing.T) {
	setting := func(kv ...string) []debug.BuildSetting {
		var s []debug.BuildSetting
		for i := 0; i < len(kv); i += 2 {
			s = append(s, debug.BuildSetting{Key: kv[i], Value: kv[i+1]})
		}
		return s
	}
	for _, tc := range []struct {
		name string
		bi   *debug.BuildInfo
		ok   bool
		want string
	}{
		{"no build info", nil, false, ""},
		{"clean tree", &debug.BuildInfo{Settings: setting("vcs", "git", "vcs.revision", "f362c61d0a3b4c5e6f7a8b9c0d1e2f3a4b5c6d7e", "vcs.modified", "false")}, true, "f362c61d0a3b"},
		{"dirty tree", &debug.BuildInfo{Settings: setting("vcs.revision", "f362c61d0a3b4c5e6f7a", "vcs.modified", "true")}, true, "f362c61d0a3b-dirty"},
		{"short revision", &debug.BuildInfo{Settings: setting("vcs.revision", "abc")}, true, "abc"},
		{"go install module@version", &debug.BuildInfo{Main: debug.Module{Version: "v0.2.0"}}, true, "v0.2.0"},
		{"devel without vcs", &debug.BuildInfo{Main: debug.Module{Version: "(devel)"}, Settings: setting("-buildvcs", "false")}, true, ""},
	} {
		got := fromBuildInfo(func() (*debug.BuildInfo, bool) { return tc.bi, tc.ok })
		if got != tc.want {
			t.Errorf("%s: fromBuildInfo = %q, want %q", tc.name, got, tc.want)
		}
	}
}

func TestGitVersionPrefersTheStamp(t *testing.T) {
	old := Git
	t.Cleanup(func() { Git = old })
	Git = "v0.1.0-3-gabcdef0-dirty"
	if got := GitVersion(); got != Git {
		t.Errorf("GitVersion() = %q, want the stamped %q", got, Git)
	}
	if got := Describe(); got != Git {
		t.Errorf("Describe() = %q, want the stamped %q", got, Git)
	}
	Git = ""
	if got, fallback := GitVersion(), fromBuildInfo(debug.ReadBuildInfo); got != fallback {
		t.Errorf("unstamped GitVersion() = %q, want the build info's %q", got, fallback)
	}
	if GitVersion() == "" && Describe() != "unknown" {
		t.Errorf("Describe() = %q without a version, want unknown", Describe())
	}
}
