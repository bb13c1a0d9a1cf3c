package cli

import (
	"runtime"
	"runtime/debug"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestBuildInfo(t *testing.T) {
	platform := runtime.GOOS + "/" + runtime.GOARCH
	vcs := []debug.BuildSetting{
		{Key: "-trimpath", Value: "true"},
		{Key: "vcs", Value: "git"},
		{Key: "vcs.revision", Value: "0123456789abcdef0123456789abcdef01234567"},
		{Key: "vcs.time", Value: "2026-05-01T12:00:00Z"},
		{Key: "vcs.modified", Value: "false"},
	}
	tests := []struct {
		name     string
		bi       *debug.BuildInfo
		version  string
		want     BuildInfo
		wantText string
	}{
		{
			name:    "release build",
			bi:      &debug.BuildInfo{GoVersion: "go1.26.10", Main: debug.Module{Version: "(devel)"}, Settings: vcs},
			version: "1.2.0",
			want: BuildInfo{Version: "1.2.0", Commit: "0123456789abcdef0123456789abcdef01234567", CommitTime: "2026-05-01T12:00:00Z",
				GoVersion: "go1.26.10", Platform: platform},
			wantText: "latchkey 1.2.0\ncommit: 0123456789abcdef0123456789abcdef01234567 (2026-05-01T12:00:00Z)\ngo: go1.26.10 " + platform + "\n",
		},
		{
			name: "work tree with changes",
			bi: &debug.BuildInfo{GoVersion: "go1.26.10", Main: debug.Module{Version: "(devel)"},
				Settings: append(vcs[:4:4], debug.BuildSetting{Key: "vcs.modified", Value: "true"})},
			version: defaultVersion,
			want: BuildInfo{Version: defaultVersion, Commit: "0123456789abcdef0123456789abcdef01234567", CommitTime: "2026-05-01T12:00:00Z",
				Modified: true, GoVersion: "go1.26.10", Platform: platform},
			wantText: "latchkey " + defaultVersion + "\ncommit: 0123456789abcdef0123456789abcdef01234567 (2026-05-01T12:00:00Z), with uncommitted changes\ngo: go1.26.10 " + platform + "\n",
		},
		{
			name:     "go install of a tagged module",
			bi:       &debug.BuildInfo{GoVersion: "go1.26.10", Main: debug.Module{Version: "v1.3.0"}},
			version:  defaultVersion,
			want:     BuildInfo{Version: "v1.3.0", Commit: "unknown", GoVersion: "go1.26.10", Platform: platform},
			wantText: "latchkey v1.3.0\ncommit: unknown\ngo: go1.26.10 " + platform + "\n",
		},
		{
			name:     "no build information",
			version:  defaultVersion,
			want:     BuildInfo{Version: defaultVersion, Commit: "unknown", GoVersion: runtime.Version(), Platform: platform},
			wantText: "latchkey " + defaultVersion + "\ncommit: unknown\ngo: " + runtime.Version() + " " + platform + "\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := buildInfo(tt.bi, tt.version)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("buildInfo (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.wantText, got.String()); diff != "" {
				t.Errorf("text (-want +got):\n%s", diff)
			}
		})
	}
}
