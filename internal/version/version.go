// Package version says which build of fixfleet this is: the module version
// and the VCS commit the Go toolchain stamped into the binary.
package version

import (
	"fmt"
	"runtime/debug"
)

// Info is a build's identity. Fields the build did not record are
// "(devel)" (version) or "unknown" (commit, time).
type Info struct {
	Version  string `json:"version"`
	Commit   string `json:"commit"`
	Time     string `json:"commit_time"`
	Modified bool   `json:"modified"`
	Go       string `json:"go"`
}

// Read returns this binary's Info (runtime/debug.ReadBuildInfo).
func Read() Info {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		bi = nil
	}
	return From(bi)
}

// From returns the Info of bi (nil: a build that recorded nothing).
func From(bi *debug.BuildInfo) Info {
	in := Info{Version: "(devel)", Commit: "unknown", Time: "unknown", Go: "unknown"}
	if bi == nil {
		return in
	}
	if v := bi.Main.Version; v != "" {
		in.Version = v
	}
	if bi.GoVersion != "" {
		in.Go = bi.GoVersion
	}
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			in.Commit = s.Value
		case "vcs.time":
			in.Time = s.Value
		case "vcs.modified":
			in.Modified = s.Value == "true"
		}
	}
	return in
}

// String is one line: "fixfleet VERSION (commit C, TIME[, modified]; GO)".
func (in Info) String() string {
	mod := ""
	if in.Modified {
		mod = ", with uncommitted changes"
	}
	return fmt.Sprintf("fixfleet %s (commit %s, %s%s; %s)", in.Version, in.Commit, in.Time, mod, in.Go)
}
