package testutil

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
)

var (
	buildMu  sync.Mutex
	buildDir string
	built    = map[string]string{}
)

// RepoRoot is the module's root directory.
func RepoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}

// Binary builds a main package of this module (once per test process) and
// returns the path of the binary. pkg is relative to the module root, such
// as "./cmd/sensor".
func Binary(tb testing.TB, pkg string) string {
	tb.Helper()
	buildMu.Lock()
	defer buildMu.Unlock()
	if p, ok := built[pkg]; ok {
		return p
	}
	if buildDir == "" {
		d, err := os.MkdirTemp("", "mcpsec-test-bin-")
		if err != nil {
			tb.Fatal(err)
		}
		buildDir = d
	}
	out := filepath.Join(buildDir, filepath.Base(pkg))
	cmd := exec.Command("go", "build", "-o", out, pkg)
	cmd.Dir = RepoRoot()
	if b, err := cmd.CombinedOutput(); err != nil {
		tb.Fatalf("building %s: %v\n%s", pkg, err, b)
	}
	built[pkg] = out
	return out
}

// Main runs a package's tests, then removes what Binary built: the TestMain
// of packages that build binaries.
//
// The sensors the tests start keep their state (tool store, baselines,
// audit trail) in a directory of the run's own, never in the host's
// /var/lib/mcp-sensor, unless a test names one.
func Main(m *testing.M) {
	state, err := os.MkdirTemp("", "mcpsec-test-state-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	if os.Getenv("MCPSEC_STATE_DIR") == "" {
		os.Setenv("MCPSEC_STATE_DIR", state)
	}
	code := m.Run()
	CleanupBinaries()
	os.RemoveAll(state)
	os.Exit(code)
}

// CleanupBinaries removes what Binary built.
func CleanupBinaries() {
	buildMu.Lock()
	defer buildMu.Unlock()
	if buildDir != "" {
		if err := os.RemoveAll(buildDir); err != nil {
			fmt.Fprintln(os.Stderr, "removing test binaries:", err)
		}
	}
}
