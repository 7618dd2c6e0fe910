package main

import (
	"bufio"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"

	seccomp "github.com/elastic/go-seccomp-bpf"
	"github.com/elastic/go-seccomp-bpf/arch"
	"golang.org/x/sys/unix"

	"github.com/mcpsec/sensor/internal/caps"
	"github.com/mcpsec/sensor/pkg/contain"
)

// service is a unit's [Service] section: each directive with its values
// in order (a directive may repeat).
type service map[string][]string

func readService(path string) (service, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	svc := service{}
	sc := bufio.NewScanner(f)
	section, n, cont := "", 0, ""
	for sc.Scan() {
		n++
		line := strings.TrimSpace(sc.Text())
		if cont != "" {
			line = cont + " " + line
			cont = ""
		}
		if strings.HasSuffix(line, "\\") {
			cont = strings.TrimSuffix(line, "\\")
			continue
		}
		switch {
		case line == "" || line[0] == '#' || line[0] == ';':
		case line[0] == '[':
			section = strings.Trim(line, "[]")
		case section == "Service":
			k, v, ok := strings.Cut(line, "=")
			if !ok {
				return nil, fmt.Errorf("%s:%d: not KEY=VALUE: %q", path, n, line)
			}
			svc[strings.TrimSpace(k)] = append(svc[strings.TrimSpace(k)], strings.TrimSpace(v))
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if len(svc["ExecStart"]) != 1 {
		return nil, fmt.Errorf("%s: want one ExecStart=, found %d", path, len(svc["ExecStart"]))
	}
	return svc, nil
}

// last is a directive's value in force (the last one given).
func (s service) last(k string) string {
	if v := s[k]; len(v) > 0 {
		return v[len(v)-1]
	}
	return ""
}

func (s service) yes(k string) bool {
	switch s.last(k) {
	case "yes", "true", "on", "1":
		return true
	}
	return false
}

// list is a space-separated directive's values over all its lines (an
// empty assignment resets it, as systemd does).
func (s service) list(k string) []string {
	var out []string
	for _, v := range s[k] {
		if v == "" {
			out = nil
		}
		out = append(out, strings.Fields(v)...)
	}
	return out
}

// commands is a command directive's list: an empty assignment resets it.
func (s service) commands(k string) []string {
	var out []string
	for _, v := range s[k] {
		if strings.TrimPrefix(v, "-") == "" {
			out = nil
			continue
		}
		out = append(out, v)
	}
	return out
}

// manager lists the directives that are the service manager's business,
// not the process's sandbox; the caller plays that part (it reads the
// readiness notification, sends the signals, decides on restarts).
var manager = map[string]bool{"Type": true, "NotifyAccess": true, "ExecReload": true, "Restart": true,
	"RestartSec": true, "TimeoutStopSec": true, "TimeoutStartSec": true}

// applied lists the directives this program builds.
var applied = map[string]bool{"ExecStartPre": true, "ExecStart": true, "User": true, "Environment": true,
	"CapabilityBoundingSet": true, "LimitMEMLOCK": true, "OOMScoreAdjust": true, "NoNewPrivileges": true,
	"ProtectSystem": true, "ReadWritePaths": true, "ProtectHome": true, "PrivateTmp": true, "PrivateDevices": true,
	"ProtectKernelModules": true, "ProtectKernelLogs": true,
	"SystemCallFilter": true, "SystemCallErrorNumber": true, "ProtectClock": true, "ProtectHostname": true,
	"RestrictRealtime": true, "RestrictSUIDSGID": true, "RestrictNamespaces": true, "LockPersonality": true,
	"MemoryDenyWriteExecute": true, "RestrictAddressFamilies": true, "SystemCallArchitectures": true, "UMask": true,
	"StateDirectory": true, "StateDirectoryMode": true, "LogsDirectory": true, "LogsDirectoryMode": true,
	"ConfigurationDirectory": true, "ConfigurationDirectoryMode": true, "RuntimeDirectory": true, "RuntimeDirectoryMode": true}

// check refuses what cannot be emulated faithfully.
func (s service) check() error {
	for k := range s {
		if !manager[k] && !applied[k] {
			return fmt.Errorf("%s= is not emulated: teach unitrun to build it, or the test would pass without it", k)
		}
	}
	if u := s.last("User"); u != "" && u != "root" && u != "0" {
		return fmt.Errorf("unit setting User=%s is not emulated (root only)", u)
	}
	if t := s.last("Type"); t != "" && t != "notify" && t != "simple" && t != "exec" {
		return fmt.Errorf("unit setting Type=%s is not emulated", t)
	}
	if v := s.last("RestrictNamespaces"); v != "" && !s.yes("RestrictNamespaces") {
		return fmt.Errorf("RestrictNamespaces=%s is not emulated (yes only)", v)
	}
	if v := s.last("SystemCallArchitectures"); v != "" && v != "native" {
		return fmt.Errorf("SystemCallArchitectures=%s is not emulated (native only)", v)
	}
	if v := s.last("ProtectSystem"); v != "" && v != "strict" && v != "full" && !s.yes("ProtectSystem") && v != "no" {
		return fmt.Errorf("ProtectSystem=%s is not emulated", v)
	}
	if s.yes("ProtectKernelLogs") && !s.yes("PrivateTmp") {
		return errors.New("ProtectKernelLogs= is emulated with PrivateTmp=yes only")
	}
	for _, c := range s.list("CapabilityBoundingSet") {
		if _, ok := caps.Number(c); !ok {
			return fmt.Errorf("CapabilityBoundingSet: unknown capability %s (an inverted ~list is not emulated)", c)
		}
	}
	for _, fam := range s.list("RestrictAddressFamilies") {
		if _, ok := families[fam]; !ok {
			return fmt.Errorf("RestrictAddressFamilies: %s is not emulated", fam)
		}
	}
	if len(strings.Fields(s.last("ExecStart"))) == 0 {
		return errors.New("ExecStart= is empty")
	}
	for _, k := range []string{"ExecStartPre", "ExecStart"} {
		for _, c := range s.commands(k) {
			if strings.ContainsAny(c, "%$\"'") || strings.ContainsAny(c[:1], "@+!:") {
				return fmt.Errorf("%s=%s: specifiers, variables, quoting and the @+!: prefixes are not emulated", k, c)
			}
		}
	}
	return nil
}

// start builds the sandbox in this (already unshared) mount namespace
// and runs the service.
func (s service) start(o options) error {
	runtime.LockOSThread() // capabilities, no_new_privs and seccomp are per thread
	if err := s.mounts(o); err != nil {
		return err
	}
	env, err := s.environment(o)
	if err != nil {
		return err
	}
	if err := s.limits(); err != nil {
		return err
	}
	if err := s.capabilities(); err != nil {
		return err
	}
	if s.yes("NoNewPrivileges") {
		if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
			return fmt.Errorf("NoNewPrivileges: %w", err)
		}
	}
	if err := s.seccomp(); err != nil {
		return err
	}
	if err := os.Chdir("/"); err != nil {
		return err
	}
	null, err := os.Open("/dev/null")
	if err != nil {
		return err
	}
	if err := unix.Dup2(int(null.Fd()), 0); err != nil { // StandardInput=null
		return err
	}
	for _, c := range s.commands("ExecStartPre") {
		ignore := strings.HasPrefix(c, "-")
		argv := strings.Fields(strings.TrimPrefix(c, "-"))
		cmd := exec.Command(argv[0], argv[1:]...)
		cmd.Env, cmd.Stdout, cmd.Stderr = env, os.Stdout, os.Stderr
		if err := cmd.Run(); err != nil && !ignore {
			return fmt.Errorf("ExecStartPre=%s: %w", c, err)
		}
	}
	argv := strings.Fields(s.last("ExecStart"))
	return syscall.Exec(argv[0], argv, env)
}

// environment is what systemd gives a service: no inherited variables.
func (s service) environment(o options) ([]string, error) {
	id := make([]byte, 16)
	_, _ = rand.Read(id)
	env := []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "INVOCATION_ID=" + hex.EncodeToString(id),
		"HOME=/root", "USER=root", "LOGNAME=root", "SHELL=/bin/sh"}
	if o.notify != "" {
		env = append(env, "NOTIFY_SOCKET="+o.notify)
	}
	for k, base := range map[string]string{"StateDirectory": "/var/lib", "LogsDirectory": "/var/log",
		"ConfigurationDirectory": "/etc", "RuntimeDirectory": "/run"} {
		var dirs []string
		for _, d := range s.list(k) {
			dirs = append(dirs, filepath.Join(base, d))
		}
		if len(dirs) > 0 {
			env = append(env, strings.ToUpper(strings.TrimSuffix(k, "Directory"))+"_DIRECTORY="+strings.Join(dirs, ":"))
		}
	}
	for _, e := range s["Environment"] {
		for _, kv := range strings.Fields(e) {
			if !strings.Contains(kv, "=") {
				return nil, fmt.Errorf("unit setting Environment=%s: not KEY=VALUE", kv)
			}
			env = append(env, kv)
		}
	}
	return env, nil
}

func (s service) limits() error {
	if v := s.last("LimitMEMLOCK"); v != "" {
		lim := uint64(unix.RLIM_INFINITY)
		if v != "infinity" {
			n, err := strconv.ParseUint(v, 10, 64)
			if err != nil {
				return fmt.Errorf("LimitMEMLOCK=%s: %w", v, err)
			}
			lim = n
		}
		if err := unix.Setrlimit(unix.RLIMIT_MEMLOCK, &unix.Rlimit{Cur: lim, Max: lim}); err != nil {
			// raising a hard limit takes CAP_SYS_RESOURCE, which a
			// container's bounding set may lack (systemd as PID 1 has it)
			var cur unix.Rlimit
			if err2 := unix.Getrlimit(unix.RLIMIT_MEMLOCK, &cur); err != unix.EPERM || err2 != nil {
				return fmt.Errorf("LimitMEMLOCK: %w", err)
			}
			cur.Cur = cur.Max
			if err := unix.Setrlimit(unix.RLIMIT_MEMLOCK, &cur); err != nil {
				return fmt.Errorf("LimitMEMLOCK: %w", err)
			}
			fmt.Fprintf(os.Stderr, "unitrun: LimitMEMLOCK=%s: not allowed here (no CAP_SYS_RESOURCE), the hard limit %d is used\n", v, cur.Max)
		}
	}
	if v := s.last("OOMScoreAdjust"); v != "" {
		if err := os.WriteFile("/proc/self/oom_score_adj", []byte(v), 0); err != nil {
			if !errors.Is(err, unix.EACCES) { // lowering it takes CAP_SYS_RESOURCE too
				return fmt.Errorf("OOMScoreAdjust: %w", err)
			}
			fmt.Fprintf(os.Stderr, "unitrun: OOMScoreAdjust=%s: not allowed here (no CAP_SYS_RESOURCE), left as it is\n", v)
		}
	}
	if v := s.last("UMask"); v != "" {
		m, err := strconv.ParseUint(v, 8, 32)
		if err != nil {
			return fmt.Errorf("UMask=%s: %w", v, err)
		}
		unix.Umask(int(m))
	}
	return nil
}

// capabilities shrinks the bounding set: root's capabilities after the
// exec are what is left of it.
func (s service) capabilities() error {
	if len(s["CapabilityBoundingSet"]) == 0 {
		return nil
	}
	keep := map[int]bool{}
	for _, c := range s.list("CapabilityBoundingSet") {
		n, _ := caps.Number(c)
		keep[n] = true
	}
	// what the Protect*= and PrivateDevices= settings take away too
	for k, taken := range map[string][]string{"PrivateDevices": {"CAP_MKNOD", "CAP_SYS_RAWIO"},
		"ProtectClock": {"CAP_SYS_TIME", "CAP_WAKE_ALARM"}, "ProtectKernelModules": {"CAP_SYS_MODULE"},
		"ProtectKernelLogs": {"CAP_SYSLOG"}} {
		if s.yes(k) {
			for _, c := range taken {
				n, _ := caps.Number(c)
				delete(keep, n)
			}
		}
	}
	b, err := os.ReadFile("/proc/sys/kernel/cap_last_cap")
	if err != nil {
		return err
	}
	lastCap, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		return err
	}
	for c := 0; c <= lastCap; c++ {
		if !keep[c] {
			if err := unix.Prctl(unix.PR_CAPBSET_DROP, uintptr(c), 0, 0, 0); err != nil {
				return fmt.Errorf("CapabilityBoundingSet: dropping %d: %w", c, err)
			}
		}
	}
	return nil
}

// seccomp builds the filters systemd would: the architecture first, then
// one policy for the Restrict*=, Protect*=, LockPersonality= and
// MemoryDenyWriteExecute= settings.
func (s service) seccomp() error {
	if s.last("SystemCallArchitectures") == "native" {
		if err := contain.NativeOnly(); err != nil {
			return fmt.Errorf("SystemCallArchitectures: %w", err)
		}
	}
	eperm := seccomp.ActionErrno
	var groups []seccomp.SyscallGroup
	deny := func(action seccomp.Action, names ...string) {
		groups = append(groups, seccomp.SyscallGroup{Names: names, Action: action})
	}
	when := func(action seccomp.Action, name string, conds ...seccomp.ArgumentConditions) {
		var nc []seccomp.NameWithConditions
		for _, c := range conds {
			nc = append(nc, seccomp.NameWithConditions{Name: name, Conditions: c})
		}
		groups = append(groups, seccomp.SyscallGroup{NamesWithCondtions: nc, Action: action})
	}
	arg := func(n uint32, op seccomp.Operation, v uint64) seccomp.Condition {
		return seccomp.Condition{Argument: n, Operation: op, Value: v}
	}
	if fams := s.list("RestrictAddressFamilies"); len(fams) > 0 {
		var conds seccomp.ArgumentConditions
		for _, f := range fams {
			conds = append(conds, arg(0, seccomp.NotEqual, families[f]))
		}
		when(seccomp.ActionErrno|seccomp.Action(unix.EAFNOSUPPORT), "socket", conds)
	}
	if s.yes("MemoryDenyWriteExecute") {
		when(eperm, "mmap", seccomp.ArgumentConditions{arg(2, seccomp.BitsSet, unix.PROT_WRITE), arg(2, seccomp.BitsSet, unix.PROT_EXEC)})
		when(eperm, "mprotect", seccomp.ArgumentConditions{arg(2, seccomp.BitsSet, unix.PROT_EXEC)})
		when(eperm, "pkey_mprotect", seccomp.ArgumentConditions{arg(2, seccomp.BitsSet, unix.PROT_EXEC)})
		when(eperm, "shmat", seccomp.ArgumentConditions{arg(2, seccomp.BitsSet, shmExec)})
	}
	if s.yes("RestrictNamespaces") {
		const ns = unix.CLONE_NEWNS | unix.CLONE_NEWCGROUP | unix.CLONE_NEWUTS | unix.CLONE_NEWIPC |
			unix.CLONE_NEWUSER | unix.CLONE_NEWPID | unix.CLONE_NEWNET
		deny(eperm, "setns")
		when(eperm, "unshare", seccomp.ArgumentConditions{arg(0, seccomp.BitsSet, ns)})
		when(eperm, "clone", seccomp.ArgumentConditions{arg(0, seccomp.BitsSet, ns)})
		// clone3's flags are behind a pointer: refused as too new, as
		// systemd does, so callers fall back to clone
		deny(seccomp.ActionErrno|seccomp.Action(unix.ENOSYS), "clone3")
	}
	if s.yes("LockPersonality") {
		when(eperm, "personality", seccomp.ArgumentConditions{arg(0, seccomp.NotEqual, 0), arg(0, seccomp.NotEqual, 0xffffffff)})
	}
	if s.yes("RestrictRealtime") {
		// FIFO and RR, and anything above IDLE: DEADLINE, and a policy
		// or'ed with SCHED_RESET_ON_FORK (as systemd does)
		when(eperm, "sched_setscheduler", seccomp.ArgumentConditions{arg(1, seccomp.Equal, unix.SCHED_FIFO)},
			seccomp.ArgumentConditions{arg(1, seccomp.Equal, unix.SCHED_RR)},
			seccomp.ArgumentConditions{arg(1, seccomp.GreaterThan, unix.SCHED_IDLE)})
	}
	if s.yes("RestrictSUIDSGID") {
		const sugid = unix.S_ISUID | unix.S_ISGID
		for name, i := range map[string]uint32{"chmod": 1, "fchmod": 1, "fchmodat": 2, "fchmodat2": 2, "creat": 1, "mknod": 1,
			"mknodat": 2, "mkdir": 1, "mkdirat": 2} {
			when(eperm, name, seccomp.ArgumentConditions{arg(i, seccomp.BitsSet, sugid)})
		}
		when(eperm, "open", seccomp.ArgumentConditions{arg(1, seccomp.BitsSet, unix.O_CREAT), arg(2, seccomp.BitsSet, sugid)})
		when(eperm, "openat", seccomp.ArgumentConditions{arg(2, seccomp.BitsSet, unix.O_CREAT), arg(3, seccomp.BitsSet, sugid)})
		// openat2's mode is behind a pointer: too new, callers fall back
		deny(seccomp.ActionErrno|seccomp.Action(unix.ENOSYS), "openat2")
	}
	if len(s["SystemCallFilter"]) > 0 {
		names, err := s.denied()
		if err != nil {
			return err
		}
		action := seccomp.ActionKillProcess // systemd's default for a filtered call
		if v := s.last("SystemCallErrorNumber"); v != "" {
			if v != "EPERM" {
				return fmt.Errorf("SystemCallErrorNumber=%s is not emulated (EPERM only)", v)
			}
			action = eperm
		}
		deny(action, names...)
	}
	if s.yes("ProtectClock") {
		deny(eperm, "clock_settime", "clock_adjtime", "settimeofday", "adjtimex")
	}
	if s.yes("ProtectKernelModules") {
		deny(eperm, "init_module", "finit_module", "delete_module")
	}
	if s.yes("ProtectKernelLogs") {
		deny(eperm, "syslog")
	}
	if s.yes("ProtectHostname") {
		deny(eperm, "sethostname", "setdomainname")
	}
	if len(groups) == 0 {
		return nil
	}
	f := seccomp.Filter{NoNewPrivs: s.yes("NoNewPrivileges"), Policy: seccomp.Policy{DefaultAction: seccomp.ActionAllow, Syscalls: groups}}
	if err := seccomp.LoadFilter(f); err != nil {
		return fmt.Errorf("seccomp: %w", err)
	}
	return nil
}

const shmExec = 0o100000 // SHM_EXEC (uapi/linux/shm.h)

var families = map[string]uint64{"AF_UNIX": unix.AF_UNIX, "AF_INET": unix.AF_INET, "AF_INET6": unix.AF_INET6,
	"AF_NETLINK": unix.AF_NETLINK, "AF_PACKET": unix.AF_PACKET}

// denied expands a SystemCallFilter=~ deny list, its @groups as this
// machine's systemd defines them (systemd-analyze syscall-filter), to the
// x86-64 syscalls it names.
func (s service) denied() ([]string, error) {
	var tokens []string
	for _, v := range s["SystemCallFilter"] {
		if !strings.HasPrefix(v, "~") {
			return nil, fmt.Errorf("SystemCallFilter=%s: only deny lists (~...) are emulated", v)
		}
		tokens = append(tokens, strings.Fields(strings.TrimPrefix(v, "~"))...)
	}
	known := arch.X86_64.SyscallNames
	seen, out := map[string]bool{}, []string(nil)
	for len(tokens) > 0 {
		t := tokens[0]
		tokens = tokens[1:]
		if seen[t] {
			continue
		}
		seen[t] = true
		if !strings.HasPrefix(t, "@") {
			if _, ok := known[t]; ok { // other architectures' calls are skipped, as systemd does
				out = append(out, t)
			}
			continue
		}
		b, err := exec.Command("systemd-analyze", "syscall-filter", t).Output()
		if err != nil {
			return nil, fmt.Errorf("SystemCallFilter: expanding %s with systemd-analyze: %w", t, err)
		}
		for _, ln := range strings.Split(string(b), "\n")[1:] {
			if f := strings.TrimSpace(ln); f != "" && !strings.HasPrefix(f, "#") {
				tokens = append(tokens, f)
			}
		}
	}
	if len(out) == 0 {
		return nil, errors.New("SystemCallFilter: names no syscall of this architecture")
	}
	return out, nil
}
