package scan

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// ErrHookExists is returned by InstallHook when another pre-commit hook is
// in place and force is not set.
var ErrHookExists = errors.New("a different pre-commit hook is already installed")

const hookMarker = "# latchkey pre-commit hook"

// HookScript returns the pre-commit hook that runs `latchkey scan --staged`
// with the binary at exe (or, if it has moved, the latchkey on PATH) and
// refuses the commit when it finds something or cannot run.
func HookScript(exe string) string {
	return `#!/bin/sh
` + hookMarker + `: refuses a commit that adds a latchkey secret.
# Installed by 'latchkey scan --install-hook'; delete this file to remove it.
latchkey=` + shellQuote(exe) + `
if [ ! -x "$latchkey" ]; then
	latchkey=$(command -v latchkey) || {
		echo "latchkey pre-commit hook: latchkey is not installed, so the staged changes were not scanned." >&2
		echo "Install latchkey, or skip this check knowingly with: git commit --no-verify" >&2
		exit 1
	}
fi
"$latchkey" scan --staged --quiet
status=$?
if [ "$status" -ne 0 ]; then
	echo >&2
	echo "latchkey: commit refused: the staged changes add a latchkey secret (or could not be scanned)." >&2
	echo "Unstage the file (git restore --staged FILE), remove the secret and keep it in ~/.latchkey/credentials" >&2
	echo "or an ignored .env file; deactivate the key if it was ever shared." >&2
	echo "If this is deliberate, skip the check knowingly with: git commit --no-verify" >&2
	exit 1
fi
`
}

func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// InstallHook writes HookScript(exe) as the pre-commit hook of the
// repository holding dir, where git looks for it (core.hooksPath is
// honoured), and returns the hook's path. An identical hook is left as it
// is and an older latchkey hook is replaced. Any other hook is replaced only
// with force, and then kept as pre-commit.bak; without force InstallHook
// returns ErrHookExists.
func InstallHook(dir, exe string, force bool) (string, error) {
	hooks, err := hooksDir(dir)
	if err != nil {
		return "", err
	}
	path := filepath.Join(hooks, "pre-commit")
	want := []byte(HookScript(exe))
	old, err := os.ReadFile(path)
	switch {
	case err == nil && bytes.Equal(old, want):
		return path, nil
	case err == nil && bytes.Contains(old, []byte(hookMarker)):
		// An older latchkey hook (another binary path): ours to replace.
	case err == nil && !force:
		return path, fmt.Errorf("%w at %s (use --force to replace it; it will be kept as pre-commit.bak)", ErrHookExists, path)
	case err == nil:
		if err := os.WriteFile(path+".bak", old, 0o755); err != nil {
			return path, err
		}
	case !errors.Is(err, os.ErrNotExist):
		return path, err
	}
	if err := os.MkdirAll(hooks, 0o755); err != nil {
		return path, err
	}
	tmp := path + ".latchkey-tmp"
	if err := os.WriteFile(tmp, want, 0o755); err != nil {
		return path, err
	}
	return path, os.Rename(tmp, path)
}

// hooksDir asks git where the hooks of the repository holding dir are:
// .git/hooks, the common directory's hooks for a linked worktree, or
// core.hooksPath.
func hooksDir(dir string) (string, error) {
	cmd := exec.Command("git", "-C", dir, "rev-parse", "--git-path", "hooks")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("finding the hooks directory of %s: %v: %s", dir, err, strings.TrimSpace(stderr.String()))
	}
	p := strings.TrimSpace(string(out))
	if !filepath.IsAbs(p) {
		p = filepath.Join(dir, p)
	}
	return p, nil
}
