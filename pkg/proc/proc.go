// Package proc reads what the sensor needs of a process from /proc: its
// start time, parent, children (of every thread), command line, executable,
// working directory, environment and owner. Every reader takes the /proc
// root, so tests can point it at a directory of their own.
package proc

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// Root is /proc, or a stand-in for tests.
type Root string

// Host is the host's /proc.
const Host Root = "/proc"

func (r Root) path(pid int, parts ...string) string {
	return filepath.Join(append([]string{string(r), strconv.Itoa(pid)}, parts...)...)
}

// userHZ is the unit of /proc/PID/stat's start time (USER_HZ, 100 on Linux).
const userHZ = 100

// statFields returns the fields of /proc/PID/stat from field 3 (state) on:
// comm may hold spaces and parentheses, so they start after the last ')'.
func (r Root) statFields(pid int) ([]string, error) {
	b, err := os.ReadFile(r.path(pid, "stat"))
	if err != nil {
		return nil, fmt.Errorf("reading the stat of process %d: %w", pid, err)
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return nil, fmt.Errorf("parsing the stat of process %d", pid)
	}
	return strings.Fields(string(b[i+1:])), nil
}

// Start is a process's start time since boot in ns (field 22 of stat, in
// clock ticks): with the pid, it names a process for good.
func (r Root) Start(pid int) (uint64, error) {
	f, err := r.statFields(pid)
	if err != nil {
		return 0, err
	}
	if len(f) < 20 {
		return 0, fmt.Errorf("parsing the stat of process %d: %d fields", pid, len(f))
	}
	ticks, err := strconv.ParseUint(f[19], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("parsing the start time of process %d: %w", pid, err)
	}
	return ticks * (1e9 / userHZ), nil
}

// PPID is a process's parent (0 if unknown).
func (r Root) PPID(pid int) int {
	f, err := r.statFields(pid)
	if err != nil || len(f) < 2 {
		return 0
	}
	p, _ := strconv.Atoi(f[1])
	return p
}

// Children lists the direct children of every thread of pid: a child
// forked by a worker thread is the child of that thread, not of the main one.
func (r Root) Children(pid int) []int {
	tasks, _ := filepath.Glob(r.path(pid, "task", "*", "children"))
	var out []int
	for _, t := range tasks {
		b, err := os.ReadFile(t)
		if err != nil {
			continue
		}
		for _, f := range strings.Fields(string(b)) {
			if c, err := strconv.Atoi(f); err == nil {
				out = append(out, c)
			}
		}
	}
	return out
}

// maxTree bounds a walk: a fork bomb must not make the sensor walk forever.
const maxTree = 8192

// Walk calls visit for pid and every descendant, parents before children,
// so a child forked after its parent was visited is caught by whoever
// tracks forks from then on, and one forked before is found here. It stops
// at the first error visit returns.
func (r Root) Walk(pid int, visit func(int) error) error {
	seen := map[int]bool{}
	queue := []int{pid}
	for len(queue) > 0 && len(seen) < maxTree {
		p := queue[0]
		queue = queue[1:]
		if seen[p] {
			continue
		}
		seen[p] = true
		if err := visit(p); err != nil {
			return err
		}
		queue = append(queue, r.Children(p)...)
	}
	return nil
}

// Tree is pid and its descendants, parents first.
func (r Root) Tree(pid int) []int {
	var out []int
	_ = r.Walk(pid, func(p int) error { out = append(out, p); return nil })
	return out
}

// Cmdline is a process's argv.
func (r Root) Cmdline(pid int) ([]string, error) {
	b, err := os.ReadFile(r.path(pid, "cmdline"))
	if err != nil {
		return nil, err
	}
	b = bytes.TrimRight(b, "\x00")
	if len(b) == 0 {
		return nil, errors.New("no command line (a kernel thread, or a zombie)")
	}
	return strings.Split(string(b), "\x00"), nil
}

// Exe is the executable a process runs, as the kernel resolved it.
func (r Root) Exe(pid int) (string, error) {
	p, err := os.Readlink(r.path(pid, "exe"))
	return strings.TrimSuffix(p, " (deleted)"), err
}

// Cwd is a process's working directory.
func (r Root) Cwd(pid int) (string, error) {
	return os.Readlink(r.path(pid, "cwd"))
}

// Environ is a process's environment as it was at exec, by name.
func (r Root) Environ(pid int) (map[string]string, error) {
	b, err := os.ReadFile(r.path(pid, "environ"))
	if err != nil {
		return nil, err
	}
	env := map[string]string{}
	for _, kv := range strings.Split(string(b), "\x00") {
		if k, v, ok := strings.Cut(kv, "="); ok && k != "" {
			env[k] = v
		}
	}
	return env, nil
}

// UID is a process's real user id (the first of Uid: in status).
func (r Root) UID(pid int) (int, error) {
	b, err := os.ReadFile(r.path(pid, "status"))
	if err != nil {
		return -1, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "Uid:"); ok {
			f := strings.Fields(v)
			if len(f) > 0 {
				return strconv.Atoi(f[0])
			}
		}
	}
	return -1, fmt.Errorf("no Uid in the status of process %d", pid)
}

// Tgid is the process a thread id belongs to.
func (r Root) Tgid(pid int) (int, error) {
	b, err := os.ReadFile(r.path(pid, "status"))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "Tgid:"); ok {
			return strconv.Atoi(strings.TrimSpace(v))
		}
	}
	return 0, fmt.Errorf("no Tgid in the status of process %d", pid)
}

// Pids lists the processes in /proc.
func (r Root) Pids() []int {
	ents, _ := os.ReadDir(string(r))
	out := make([]int, 0, len(ents))
	for _, e := range ents {
		if pid, err := strconv.Atoi(e.Name()); err == nil {
			out = append(out, pid)
		}
	}
	return out
}
