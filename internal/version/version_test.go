package version

import (
	"runtime/debug"
	"testing"
)

func TestFrom(t *testing.T) {
	tests := []struct {
		name string
		bi   *debug.BuildInfo
		want string
	}{
		{"nothing recorded", nil, "fixfleet (devel) (commit unknown, unknown; unknown)"},
		{"go run", &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "(devel)"}},
			"fixfleet (devel) (commit unknown, unknown; go1.26.8)"},
		{"stamped", &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "v0.3.0"}, Settings: []debug.BuildSetting{
			{Key: "vcs.revision", Value: "b1cbd3494f"}, {Key: "vcs.time", Value: "2026-12-04T14:00:00Z"}, {Key: "vcs.modified", Value: "true"}}},
			"fixfleet v0.3.0 (commit b1cbd3494f, 2026-12-04T14:00:00Z, with uncommitted changes; go1.26.8)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := From(tt.bi).String(); got != tt.want {
				t.Errorf("got  %q\nwant %q", got, tt.want)
			}
		})
	}
}

// TestRead: a test binary records its build; Read never leaves a field empty.
func TestRead(t *testing.T) {
	in := Read()
	if in.Version == "" || in.Commit == "" || in.Go == "" {
		t.Errorf("empty field in %+v", in)
	}
}
