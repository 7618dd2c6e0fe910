package respond

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/mcpsec/sensor/pkg/correlate"
)

// Snapshot is what a contained server looked like when it was contained.
type Snapshot struct {
	Time      time.Time        `json:"time"`
	Server    string           `json:"server"`
	Rule      string           `json:"rule"`
	Cgroup    string           `json:"cgroup,omitempty"`
	Processes []ProcSnapshot   `json:"processes"`
	Alert     *correlate.Alert `json:"alert"`
	Recent    []any            `json:"recent_events,omitempty"`
}

// ProcSnapshot is one process of a contained server.
type ProcSnapshot struct {
	PID     int               `json:"pid"`
	PPID    int               `json:"ppid"`
	Comm    string            `json:"comm"`
	Exe     string            `json:"exe,omitempty"`
	Cmdline []string          `json:"cmdline"`
	Cwd     string            `json:"cwd,omitempty"`
	FDs     map[string]string `json:"fds"`
	Sockets []string          `json:"sockets,omitempty"` // lines of /proc/net/{tcp,tcp6,udp,udp6,unix} for its sockets
	Env     map[string]string `json:"environment"`       // secrets redacted
}

var secretName = regexp.MustCompile(`(?i)(key|token|secret|passw|pwd|auth|cred|cookie|session|private)`)

// redact hides values that look secret: by the variable's name, or by
// their content (private keys and token formats).
func redact(name, value string) string {
	if secretName.MatchString(name) || len(correlate.Secrets(value)) > 0 {
		return "<redacted>"
	}
	return value
}

// SnapProc describes a process for a forensic snapshot.
func SnapProc(pid int) ProcSnapshot {
	p := ProcSnapshot{PID: pid, FDs: map[string]string{}, Env: map[string]string{}}
	base := fmt.Sprintf("/proc/%d", pid)
	if b, err := os.ReadFile(base + "/comm"); err == nil {
		p.Comm = strings.TrimSpace(string(b))
	}
	if b, err := os.ReadFile(base + "/cmdline"); err == nil {
		p.Cmdline = strings.Split(strings.TrimRight(string(b), "\x00"), "\x00")
	}
	p.Exe, _ = os.Readlink(base + "/exe")
	p.Cwd, _ = os.Readlink(base + "/cwd")
	if b, err := os.ReadFile(base + "/stat"); err == nil {
		if i := strings.LastIndexByte(string(b), ')'); i > 0 {
			f := strings.Fields(string(b)[i+1:])
			if len(f) > 1 {
				fmt.Sscan(f[1], &p.PPID)
			}
		}
	}
	socks := map[string]bool{}
	if ents, err := os.ReadDir(base + "/fd"); err == nil {
		for _, e := range ents {
			t, err := os.Readlink(filepath.Join(base, "fd", e.Name()))
			if err != nil {
				continue
			}
			p.FDs[e.Name()] = t
			if ino, ok := strings.CutPrefix(t, "socket:["); ok {
				socks[strings.TrimSuffix(ino, "]")] = true
			}
		}
	}
	for _, proto := range []string{"tcp", "tcp6", "udp", "udp6", "unix"} {
		f, err := os.Open(fmt.Sprintf("%s/net/%s", base, proto))
		if err != nil {
			continue
		}
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			fields := strings.Fields(sc.Text())
			for _, fl := range fields {
				if socks[fl] {
					p.Sockets = append(p.Sockets, proto+": "+sc.Text())
					break
				}
			}
		}
		f.Close()
	}
	if b, err := os.ReadFile(base + "/environ"); err == nil {
		for _, kv := range strings.Split(string(b), "\x00") {
			if k, v, ok := strings.Cut(kv, "="); ok {
				p.Env[k] = redact(k, v)
			}
		}
	}
	return p
}
