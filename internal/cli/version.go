package cli

import (
	"fmt"
	"runtime"
	"runtime/debug"

	"github.com/spf13/cobra"
)

// BuildInfo is what a latchkey binary knows of its own build: the version
// set at link time (see .ci/release), and what the Go toolchain recorded
// (the commit, with -buildvcs, and the Go version).
type BuildInfo struct {
	Version    string `json:"version"`
	Commit     string `json:"commit"`                // "unknown" when built outside a git checkout
	CommitTime string `json:"commit_time,omitempty"` // RFC 3339
	Modified   bool   `json:"modified"`              // built from a work tree with uncommitted changes
	GoVersion  string `json:"go_version"`
	Platform   string `json:"platform"` // GOOS/GOARCH
}

// ReadBuildInfo returns this binary's BuildInfo.
func ReadBuildInfo() BuildInfo {
	bi, _ := debug.ReadBuildInfo()
	return buildInfo(bi, Version)
}

// buildInfo reads bi, which may be nil (a binary built without module
// support). version is the version set at link time.
func buildInfo(bi *debug.BuildInfo, version string) BuildInfo {
	info := BuildInfo{Version: version, Commit: "unknown", GoVersion: runtime.Version(), Platform: runtime.GOOS + "/" + runtime.GOARCH}
	if bi == nil {
		return info
	}
	info.GoVersion = bi.GoVersion
	// go install github.com/latchkey/latchkey/cmd/latchkey@v1.2.0 records
	// the module version; a build from a checkout says (devel).
	if v := bi.Main.Version; version == defaultVersion && v != "" && v != "(devel)" {
		info.Version = v
	}
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			info.Commit = s.Value
		case "vcs.time":
			info.CommitTime = s.Value
		case "vcs.modified":
			info.Modified = s.Value == "true"
		}
	}
	return info
}

// String is the text `latchkey version` prints.
func (b BuildInfo) String() string {
	commit := b.Commit
	if b.CommitTime != "" {
		commit += " (" + b.CommitTime + ")"
	}
	if b.Modified {
		commit += ", with uncommitted changes"
	}
	return fmt.Sprintf("latchkey %s\ncommit: %s\ngo: %s %s\n", b.Version, commit, b.GoVersion, b.Platform)
}

func (s *state) newVersionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the latchkey version, the commit it was built from and the Go version",
		Long: `Print the version of this latchkey binary, the git commit it was built from
(with its time, and whether the work tree had uncommitted changes), and the
Go version and platform it was built with. Release binaries (.ci/release)
carry all of it; a binary built outside a git checkout says commit unknown.

JSON OUTPUT
  {"version": "1.2.0", "commit": "0123...", "commit_time": "2026-05-01T12:00:00Z",
   "modified": false, "go_version": "go1.26.10", "platform": "linux/amd64"}

EXAMPLES
  latchkey version
  latchkey version --output json`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			info := ReadBuildInfo()
			if s.output == formatJSON || (s.output == "" && s.env.Getenv(EnvOutput) == formatJSON) {
				p, err := s.printer(cmd)
				if err != nil {
					return err
				}
				return p.JSON(info)
			}
			fmt.Fprint(cmd.OutOrStdout(), info)
			return nil
		},
	}
}
