package cli

import (
	"fmt"
	"runtime"
	"runtime/debug"
)

// Set with -ldflags "-X github.com/ckptio/ckptio/cmd/internal/cli.version=v1.2.3
// -X github.com/ckptio/ckptio/cmd/internal/cli.commit=abc123" (the Makefile
// does); empty means what the binary's build information says.
var (
	version string
	commit  string
)

// BuildInfo is what --version prints.
type BuildInfo struct {
	Version string // module version, "devel" when built from a checkout
	Commit  string // VCS revision, "+dirty" appended when modified; "unknown" when not recorded
	Go      string // Go version the binary was built with
}

// Build returns the binary's version, commit and Go version: the -ldflags
// values when set, else runtime/debug.ReadBuildInfo's module version and
// vcs.revision / vcs.modified.
func Build() BuildInfo {
	b := BuildInfo{Version: "devel", Commit: "unknown", Go: runtime.Version()}
	if bi, ok := debug.ReadBuildInfo(); ok {
		if v := bi.Main.Version; v != "" && v != "(devel)" {
			b.Version = v
		}
		var rev string
		var dirty bool
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				rev = s.Value
			case "vcs.modified":
				dirty = s.Value == "true"
			}
		}
		if rev != "" {
			b.Commit = rev
			if dirty {
				b.Commit += "+dirty"
			}
		}
		if bi.GoVersion != "" {
			b.Go = bi.GoVersion
		}
	}
	if version != "" {
		b.Version = version
	}
	if commit != "" {
		b.Commit = commit
	}
	return b
}

// VersionLine is the one line every binary's --version prints:
// "ckpt-store devel (commit 1a2b3c..., go1.26.8)".
func VersionLine(name string) string {
	b := Build()
	return fmt.Sprintf("%s %s (commit %s, %s)", name, b.Version, b.Commit, b.Go)
}
