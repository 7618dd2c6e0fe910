package trace

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// userHZ is the unit of /proc/PID/stat's start time (USER_HZ, 100 on Linux).
const userHZ = 100

// statFields returns the fields of /proc/PID/stat from field 3 (state) on:
// comm may hold spaces and parentheses, so they start after the last ')'.
func statFields(pid int) ([]string, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return nil, fmt.Errorf("reading /proc/%d/stat: %w", pid, err)
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return nil, fmt.Errorf("parsing /proc/%d/stat", pid)
	}
	return strings.Fields(s[i+1:]), nil
}

// procStart returns a process's start time since boot in ns, from
// /proc/PID/stat (field 22, in clock ticks).
func procStart(pid int) (uint64, error) {
	f, err := statFields(pid)
	if err != nil {
		return 0, err
	}
	if len(f) < 20 {
		return 0, fmt.Errorf("parsing /proc/%d/stat: %d fields", pid, len(f))
	}
	ticks, err := strconv.ParseUint(f[19], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("parsing start time of %d: %w", pid, err)
	}
	return ticks * (1e9 / userHZ), nil
}

// children lists the direct children of every thread of pid.
func children(pid int) []int {
	tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/children", pid))
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

// walkTree calls visit for pid and every descendant, parents before
// children, so a child forked after its parent was visited is covered by
// the kernel's fork tracking and one forked before is found here.
func walkTree(pid int, visit func(int) error) error {
	seen := map[int]bool{}
	queue := []int{pid}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		if seen[p] {
			continue
		}
		seen[p] = true
		if err := visit(p); err != nil {
			return err
		}
		queue = append(queue, children(p)...)
	}
	return nil
}

// looksLikeMCP matches command lines of common MCP servers.
var looksLikeMCP = regexp.MustCompile(`(?i)(^|[/@\s_-])mcp([-_/\s]|$)|modelcontextprotocol|mcp-server|server-[a-z]+.*mcp|fastmcp`)

// existingServers finds running processes that look like stdio MCP servers:
// stdin is a pipe or socket and the command line names MCP. Servers that
// started before the sensor cannot be confirmed by their `initialize`; this
// heuristic is the best a late start can do, and it says so.
func existingServers(self int) map[int]string {
	out := map[int]string{}
	dirs, _ := os.ReadDir("/proc")
	for _, d := range dirs {
		pid, err := strconv.Atoi(d.Name())
		if err != nil || pid == self {
			continue
		}
		var st unix.Stat_t
		if unix.Stat(fmt.Sprintf("/proc/%d/fd/0", pid), &st) != nil {
			continue
		}
		if st.Mode&unix.S_IFMT != unix.S_IFIFO && st.Mode&unix.S_IFMT != unix.S_IFSOCK {
			continue
		}
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		if err != nil || len(b) == 0 {
			continue
		}
		cmd := strings.TrimSpace(strings.ReplaceAll(string(b), "\x00", " "))
		if looksLikeMCP.MatchString(cmd) {
			out[pid] = cmd
		}
	}
	// keep only the topmost of a tree (npx -> node are one server)
	top := map[int]string{}
	for pid, cmd := range out {
		nested := false
		for a, n := ppid(pid), 0; a > 1 && n < 64; a, n = ppid(a), n+1 {
			if _, ok := out[a]; ok {
				nested = true
				break
			}
		}
		if !nested {
			top[pid] = cmd
		}
	}
	return top
}

func ppid(pid int) int {
	f, err := statFields(pid)
	if err != nil || len(f) < 2 {
		return 0
	}
	p, _ := strconv.Atoi(f[1]) // field 4
	return p
}
