// Package contain owns containment: the cgroups the sensor puts servers in
// (one Manager for the responder, the CLI and the daemon's control socket),
// freezing, throttling, the kernel's egress and exec policy of those
// cgroups, the sensitive files whose read taints them, and the seccomp
// filters of `sensor run`.
package contain

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// Parent is the directory under the cgroup2 root that holds the sensor's cgroups.
const Parent = "mcp-sensor"

// fallbackMount is where the sensor mounts cgroup2 if nothing has.
const fallbackMount = "/run/mcp-sensor/cgroup2"

// Cgroup2Root returns where the cgroup v2 hierarchy is mounted, reading
// mountinfo (hybrid hosts mount it at /sys/fs/cgroup/unified, pure v2 hosts
// at /sys/fs/cgroup). If it is mounted nowhere, it mounts it.
func Cgroup2Root() (string, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return "", fmt.Errorf("reading mountinfo: %w", err)
	}
	defer f.Close()
	if p, ok := findCgroup2(f); ok {
		return p, nil
	}
	if err := os.MkdirAll(fallbackMount, 0o700); err != nil {
		return "", fmt.Errorf("no cgroup2 mount, and creating %s: %w", fallbackMount, err)
	}
	if err := unix.Mount("cgroup2", fallbackMount, "cgroup2", 0, ""); err != nil {
		return "", fmt.Errorf("no cgroup2 mount, and mounting one at %s: %w", fallbackMount, err)
	}
	return fallbackMount, nil
}

// findCgroup2 returns the first cgroup2 mount point in a mountinfo listing.
func findCgroup2(r io.Reader) (string, bool) {
	return findMount(r, func(fstype, super string) bool { return fstype == "cgroup2" })
}

// findMount returns the first mount point whose filesystem type and super
// options (after the " - " of a mountinfo line) match.
func findMount(r io.Reader, match func(fstype, super string) bool) (string, bool) {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		// id parent major:minor root mountpoint options [optional...] - fstype source super
		fields := strings.Fields(sc.Text())
		for i, f := range fields {
			if f == "-" && i+3 < len(fields) && len(fields) > 4 && match(fields[i+1], fields[i+3]) {
				return unescapeMountPath(fields[4]), true
			}
		}
	}
	return "", false
}

// V1Mount returns where the cgroup v1 hierarchy of a controller is mounted
// (hybrid hosts keep cpu and pids there), if anywhere.
func V1Mount(controller string) (string, bool) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return "", false
	}
	defer f.Close()
	return findMount(f, func(fstype, super string) bool {
		if fstype != "cgroup" {
			return false
		}
		for _, o := range strings.Split(super, ",") {
			if o == controller {
				return true
			}
		}
		return false
	})
}

// unescapeMountPath undoes mountinfo's octal escapes (\040 for a space).
func unescapeMountPath(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if v, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// Cgroup is a cgroup v2 directory the sensor created.
type Cgroup struct {
	Path string
	ID   uint64 // the kernel's cgroup id: the directory's inode number
	dir  *os.File
}

// Create makes <root>/mcp-sensor/<name> and opens it, ready to start a
// child in it (SysProcAttr.UseCgroupFD) so it is inside from its first
// instruction.
func Create(name string) (*Cgroup, error) {
	root, err := Cgroup2Root()
	if err != nil {
		return nil, err
	}
	if strings.ContainsAny(name, "/\x00") || name == "" || name == "." || name == ".." {
		return nil, fmt.Errorf("cgroup name %q: must be one path component", name)
	}
	p := filepath.Join(root, Parent, name)
	if err := os.MkdirAll(p, 0o755); err != nil {
		return nil, fmt.Errorf("creating cgroup %s: %w", p, err)
	}
	dir, err := os.Open(p)
	if err != nil {
		return nil, fmt.Errorf("opening cgroup %s: %w", p, err)
	}
	var st unix.Stat_t
	if err := unix.Fstat(int(dir.Fd()), &st); err != nil {
		dir.Close()
		return nil, fmt.Errorf("reading the id of cgroup %s: %w", p, err)
	}
	return &Cgroup{Path: p, ID: st.Ino, dir: dir}, nil
}

// FD is the open directory, for SysProcAttr.CgroupFD.
func (c *Cgroup) FD() int { return int(c.dir.Fd()) }

// Procs lists the processes in the cgroup.
func (c *Cgroup) Procs() ([]int, error) {
	b, err := os.ReadFile(filepath.Join(c.Path, "cgroup.procs"))
	if err != nil {
		return nil, fmt.Errorf("listing processes of %s: %w", c.Path, err)
	}
	var pids []int
	for _, f := range strings.Fields(string(b)) {
		if pid, err := strconv.Atoi(f); err == nil {
			pids = append(pids, pid)
		}
	}
	return pids, nil
}

// Remove deletes the cgroup once it is empty, waiting up to wait for
// exiting processes to leave. It fails if processes stay (they outlived the
// server's root: daemons it left behind).
func (c *Cgroup) Remove(wait time.Duration) error {
	defer c.dir.Close()
	deadline := time.Now().Add(wait)
	for {
		err := unix.Rmdir(c.Path)
		if err == nil || errors.Is(err, unix.ENOENT) {
			return nil
		}
		if !errors.Is(err, unix.EBUSY) || time.Now().After(deadline) {
			pids, _ := c.Procs()
			return fmt.Errorf("removing cgroup %s (processes still in it: %v): %w", c.Path, pids, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Kill kills every process in the cgroup (cgroup.kill, Linux 5.14+; else
// SIGKILL to each listed process), so nothing a server forked outlives it.
func (c *Cgroup) Kill() error {
	err := os.WriteFile(filepath.Join(c.Path, "cgroup.kill"), []byte("1"), 0)
	if err == nil {
		return nil
	}
	pids, perr := c.Procs()
	if perr != nil {
		return errors.Join(err, perr)
	}
	for _, pid := range pids {
		_ = unix.Kill(pid, unix.SIGKILL)
	}
	return nil
}

// Open opens an existing cgroup v2 directory (absolute, or relative to the
// cgroup2 root).
func Open(path string) (*Cgroup, error) {
	if !filepath.IsAbs(path) {
		root, err := Cgroup2Root()
		if err != nil {
			return nil, err
		}
		path = filepath.Join(root, path)
	}
	dir, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("opening cgroup %s: %w", path, err)
	}
	var st unix.Stat_t
	if err := unix.Fstat(int(dir.Fd()), &st); err != nil {
		dir.Close()
		return nil, err
	}
	if _, err := os.Stat(filepath.Join(path, "cgroup.procs")); err != nil {
		dir.Close()
		return nil, fmt.Errorf("%s is not a cgroup v2 directory", path)
	}
	return &Cgroup{Path: path, ID: st.Ino, dir: dir}, nil
}

// Close releases the directory handle (the cgroup stays).
func (c *Cgroup) Close() error { return c.dir.Close() }

// Freeze freezes every process in the cgroup, including those forked during
// the freeze (the kernel's cgroup.freeze), and waits up to wait for the
// kernel to report it frozen. It returns when that was seen.
func (c *Cgroup) Freeze(wait time.Duration) (time.Time, error) {
	return c.setFrozen(true, wait)
}

// Thaw resumes the cgroup.
func (c *Cgroup) Thaw(wait time.Duration) (time.Time, error) {
	return c.setFrozen(false, wait)
}

func (c *Cgroup) setFrozen(on bool, wait time.Duration) (time.Time, error) {
	v := "0"
	if on {
		v = "1"
	}
	if err := os.WriteFile(filepath.Join(c.Path, "cgroup.freeze"), []byte(v), 0); err != nil {
		return time.Time{}, fmt.Errorf("writing %s/cgroup.freeze: %w", c.Path, err)
	}
	deadline := time.Now().Add(wait)
	for {
		frozen, err := c.Frozen()
		if err != nil {
			return time.Time{}, err
		}
		if frozen == on {
			return time.Now(), nil
		}
		if time.Now().After(deadline) {
			return time.Time{}, fmt.Errorf("cgroup %s: not %s after %v", c.Path, map[bool]string{true: "frozen", false: "thawed"}[on], wait)
		}
		time.Sleep(200 * time.Microsecond)
	}
}

// Frozen reports the kernel's view (cgroup.events "frozen").
func (c *Cgroup) Frozen() (bool, error) {
	b, err := os.ReadFile(filepath.Join(c.Path, "cgroup.events"))
	if err != nil {
		return false, err
	}
	for _, ln := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(ln, "frozen "); ok {
			return strings.TrimSpace(v) == "1", nil
		}
	}
	return false, fmt.Errorf("%s/cgroup.events has no frozen line", c.Path)
}

// Move puts a process (all its threads) in the cgroup.
func (c *Cgroup) Move(pid int) error {
	return os.WriteFile(filepath.Join(c.Path, "cgroup.procs"), []byte(strconv.Itoa(pid)), 0)
}
