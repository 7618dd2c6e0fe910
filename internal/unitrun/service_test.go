package main

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func unit(t *testing.T, text string) service {
	t.Helper()
	p := filepath.Join(t.TempDir(), "x.service")
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	s, err := readService(p)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestCheck(t *testing.T) {
	base := "[Unit]\nDescription=x\n[Service]\nExecStart=/bin/true\n"
	if err := unit(t, base+"NoNewPrivileges=yes\nReadWritePaths=/run \\\n /sys/fs/bpf\n").check(); err != nil {
		t.Fatal(err)
	}
	for extra, want := range map[string]string{
		"ProtectControlGroups=yes\n":       "ProtectControlGroups= is not emulated",
		"User=nobody\n":                    "User=nobody",
		"CapabilityBoundingSet=~CAP_BPF\n": "unknown capability",
		"RestrictAddressFamilies=AF_X25\n": "AF_X25",
		"ExecStartPre=+/bin/true\n":        "prefixes are not emulated",
	} {
		err := unit(t, base+extra).check()
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: %v, want %q", extra, err, want)
		}
	}
	if got := unit(t, base+"ReadWritePaths=/a /b\nReadWritePaths=\nReadWritePaths=/c\n").list("ReadWritePaths"); !slices.Equal(got, []string{"/c"}) {
		t.Errorf("an empty assignment resets a list: %v", got)
	}
	u := unit(t, base+"ExecStartPre=/bin/a\nExecStartPre=\nExecStartPre=-/bin/b\n")
	if err := u.check(); err != nil {
		t.Fatal(err)
	}
	if got := u.commands("ExecStartPre"); !slices.Equal(got, []string{"-/bin/b"}) {
		t.Errorf("an empty ExecStartPre= resets the list: %v", got)
	}
}

func TestDenied(t *testing.T) {
	names, err := unit(t, "[Service]\nExecStart=/bin/true\nSystemCallFilter=~@reboot @privileged vm86\n").denied()
	if err != nil {
		t.Fatal(err)
	}
	// @privileged holds @clock and @module: nested groups are expanded;
	// vm86 is i386-only and skipped
	for _, want := range []string{"reboot", "kexec_load", "bpf", "settimeofday", "init_module"} {
		if !slices.Contains(names, want) {
			t.Errorf("%s not denied: %v", want, names)
		}
	}
	if slices.Contains(names, "vm86") {
		t.Error("vm86 is not an x86-64 syscall")
	}
	if _, err := unit(t, "[Service]\nExecStart=/bin/true\nSystemCallFilter=@system-service\n").denied(); err == nil {
		t.Error("an allow list was taken")
	}
}
