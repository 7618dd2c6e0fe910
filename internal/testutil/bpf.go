// Package testutil holds helpers shared by the kernel and end-to-end tests.
package testutil

import (
	"os"
	"testing"
)

// RequireBPF skips a test that needs root and a BPF-capable kernel, saying
// why. With MCPSEC_REQUIRE_BPF=1 (CI) the skip becomes a failure, so no
// kernel test can pass by not running.
func RequireBPF(t testing.TB) {
	t.Helper()
	if os.Geteuid() == 0 {
		return
	}
	if os.Getenv("MCPSEC_REQUIRE_BPF") == "1" {
		t.Fatalf("this test needs root to load eBPF programs, and MCPSEC_REQUIRE_BPF=1 forbids skipping it")
	}
	t.Skip("needs root to load eBPF programs (set MCPSEC_REQUIRE_BPF=1 to make this a failure)")
}
