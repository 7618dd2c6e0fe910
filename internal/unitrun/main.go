// Command unitrun starts a systemd service unit's ExecStartPre= and
// ExecStart= commands inside the sandbox its [Service] section asks for,
// as far as that can be built without systemd as PID 1: the tests use it
// to run `sensor daemon` under the shipped unit's settings on a machine
// where systemd is installed but not running.
//
// Every directive of the section is either applied or named as the
// manager's business (restart policy, reload, timeouts); a directive it
// does not know is an error, so a unit cannot gain a setting that the test
// silently ignores.
//
// Usage:
//
//	unitrun [--bind SRC:DST]... [--notify SOCKET] UNIT-FILE
//
// --bind mounts SRC on DST in the service's mount namespace before the
// sandbox is built (tests redirect the state, logs and configuration
// directories there). --notify is passed as NOTIFY_SOCKET.
//
// It must run as root. The service's main process replaces it (same pid,
// as systemd's MAINPID).
package main

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
)

const stage2 = "__unitrun-stage2"

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "unitrun:", err)
		os.Exit(1)
	}
}

type options struct {
	binds  [][2]string
	notify string
	unit   string
}

func parseArgs(args []string) (options, error) {
	var o options
	for len(args) > 0 {
		switch a := args[0]; {
		case a == "--bind" && len(args) > 1:
			src, dst, ok := strings.Cut(args[1], ":")
			if !ok || !filepath.IsAbs(src) || !filepath.IsAbs(dst) {
				return o, fmt.Errorf("--bind %q: want SRC:DST, both absolute", args[1])
			}
			o.binds = append(o.binds, [2]string{src, dst})
			args = args[2:]
		case a == "--notify" && len(args) > 1:
			o.notify = args[1]
			args = args[2:]
		case strings.HasPrefix(a, "-"):
			return o, fmt.Errorf("unknown option %s (usage: unitrun [--bind SRC:DST]... [--notify SOCKET] UNIT-FILE)", a)
		default:
			if o.unit != "" {
				return o, fmt.Errorf("one unit file, not %q and %q", o.unit, a)
			}
			o.unit = a
			args = args[1:]
		}
	}
	if o.unit == "" {
		return o, errors.New("usage: unitrun [--bind SRC:DST]... [--notify SOCKET] UNIT-FILE")
	}
	return o, nil
}

func run(args []string) error {
	if os.Geteuid() != 0 {
		return errors.New("must run as root")
	}
	inner := len(args) > 0 && args[0] == stage2
	if inner {
		args = args[1:]
	}
	o, err := parseArgs(args)
	if err != nil {
		return err
	}
	svc, err := readService(o.unit)
	if err != nil {
		return err
	}
	if err := svc.check(); err != nil {
		return err
	}
	if !inner {
		// the mount (and, for ProtectHostname, UTS) namespaces must be made
		// before the process has threads: unshare(1) makes them and runs
		// this program again, in the same pid (the service's main pid)
		self, err := os.Executable()
		if err != nil {
			return err
		}
		unshare, err := exec.LookPath("unshare")
		if err != nil {
			return fmt.Errorf("unshare(1) (util-linux) is needed: %w", err)
		}
		// slave: mounts made on the host later still reach the service,
		// as under systemd; the service's own stay its own
		argv := []string{"unshare", "--mount", "--propagation", "slave"}
		if svc.yes("ProtectHostname") {
			argv = append(argv, "--uts")
		}
		argv = append(append(argv, self, stage2), args...)
		return syscall.Exec(unshare, argv, os.Environ())
	}
	return svc.start(o)
}
