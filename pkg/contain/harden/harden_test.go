package harden

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mcpsec/sensor/pkg/correlate"
)

func TestMake(t *testing.T) {
	profiles := []*correlate.Profile{
		{Server: "/usr/bin/srv /srv/notes", Types: map[string]int{"open": 10, "write": 2, "connect": 1, "setuid": 1},
			Paths: map[string]int{"/srv/notes": 12}, Dests: map[string]int{"10.1.2.3:5432": 1}, Exes: map[string]int{}},
	}
	p, err := Make("/usr/bin/srv /srv/notes", profiles)
	if err != nil {
		t.Fatal(err)
	}
	deny := strings.Join(p.Seccomp.Syscalls[0].Names, " ")
	for _, want := range []string{"ptrace", "mount", "unshare", "bpf", "init_module"} {
		if !strings.Contains(deny, want) {
			t.Errorf("%s not refused: %s", want, deny)
		}
	}
	if strings.Contains(deny, "setuid") {
		t.Error("setuid refused though the baseline used it")
	}
	for _, want := range []string{"ReadWritePaths=/srv/notes", "IPAddressAllow=localhost 10.1.2.3", "IPAddressDeny=any", "SystemCallFilter=~"} {
		if !strings.Contains(p.DropIn, want) {
			t.Errorf("drop-in lacks %q:\n%s", want, p.DropIn)
		}
	}
	if _, err := Make("x", nil); err == nil {
		t.Error("no baseline accepted")
	}
	// systemd accepts the drop-in (where systemd-analyze is installed)
	if sa, err := exec.LookPath("systemd-analyze"); err == nil {
		dir := t.TempDir()
		unit := filepath.Join(dir, "mcp-srv.service")
		if err := os.WriteFile(unit, []byte("[Unit]\nDescription=test\n[Service]\nExecStart=/bin/true\n"+strings.SplitN(p.DropIn, "[Service]\n", 2)[1]), 0o644); err != nil {
			t.Fatal(err)
		}
		if out, err := exec.Command(sa, "verify", unit).CombinedOutput(); err != nil {
			t.Fatalf("systemd-analyze verify: %v\n%s", err, out)
		}
	}
}
