package integration

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// The Claude Code CLI that the tests run is pinned by claude-code/package.json
// and package-lock.json, and installed with npm into a cache directory keyed
// by the two files, so a run installs it at most once and later runs (and
// other test processes) reuse it.
var claudeCode struct {
	once sync.Once
	bin  string
	err  error
}

// claudeBinary returns the pinned claude CLI, installing it first if
// needed. It skips only under -short: without npm or the registry the test
// fails, as it must in CI.
func claudeBinary(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("runs the real Claude Code CLI, installed with npm; skipped under -short")
	}
	claudeCode.once.Do(func() { claudeCode.bin, claudeCode.err = installClaudeCode() })
	if claudeCode.err != nil {
		t.Fatalf("installing Claude Code with npm: %v", claudeCode.err)
	}
	return claudeCode.bin
}

func installClaudeCode() (string, error) {
	src := filepath.Join(repoRoot, "integration", "claude-code")
	files := []string{"package.json", "package-lock.json"}
	h := sha256.New()
	contents := make([][]byte, len(files))
	for i, name := range files {
		b, err := os.ReadFile(filepath.Join(src, name))
		if err != nil {
			return "", err
		}
		contents[i] = b
		h.Write(b)
	}
	cache, err := os.UserCacheDir()
	if err != nil {
		cache = os.TempDir()
	}
	root := filepath.Join(cache, "caddy-llm-gateway")
	dir := filepath.Join(root, "claude-code-"+hex.EncodeToString(h.Sum(nil))[:16])
	bin := filepath.Join(dir, "node_modules", ".bin", "claude")
	if _, err := os.Stat(filepath.Join(dir, ".installed")); err == nil {
		return bin, nil
	}
	npm, err := exec.LookPath("npm")
	if err != nil {
		return "", fmt.Errorf("npm is needed to install Claude Code: %w", err)
	}
	if err := os.MkdirAll(root, 0o755); err != nil {
		return "", err
	}
	// Install beside the final place and rename, so that a directory
	// there is always complete, whoever else installs at the same time.
	tmp, err := os.MkdirTemp(root, "installing-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(tmp)
	for i, name := range files {
		if err := os.WriteFile(filepath.Join(tmp, name), contents[i], 0o644); err != nil {
			return "", err
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, npm, "ci", "--no-audit", "--no-fund", "--loglevel=error")
	cmd.Dir = tmp
	cmd.Env = append(os.Environ(), "npm_config_update_notifier=false")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("npm ci: %v\n%s", err, out)
	}
	if err := os.WriteFile(filepath.Join(tmp, ".installed"), nil, 0o644); err != nil {
		return "", err
	}
	_ = os.RemoveAll(dir) // an incomplete directory of an older layout
	if err := os.Rename(tmp, dir); err != nil {
		if _, serr := os.Stat(filepath.Join(dir, ".installed")); serr != nil {
			return "", fmt.Errorf("moving the install into place: %w", err)
		}
	}
	if _, err := os.Stat(bin); errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("npm ci installed no %s", bin)
	}
	return bin, nil
}
