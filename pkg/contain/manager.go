package contain

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/mcpsec/sensor/pkg/proc"
	"github.com/mcpsec/sensor/pkg/wire"
)

// Policies is the kernel's containment state of cgroups: the policy flags
// userspace sets (wire.Cg*) and the taint the kernel sets. The loaded
// objects or the pinned maps (loader.PolicyMap) provide it.
type Policies interface {
	Flags(cg uint64) (uint64, bool)
	Set(cg, flags uint64) error
	Delete(cg uint64) error
	ClearTaint(cg uint64) error
	Tainted(cg uint64) bool
	All() (map[uint64]uint64, error)
	// Drop forgets a cgroup that is gone: policy, taint, allow-list.
	Drop(cg uint64) error
}

// Manager is the one owner of containment: the cgroups servers are put in,
// freezing and thawing them, and their kernel policy. The responder, the
// CLI and the daemon's control socket all go through it. Safe for
// concurrent use.
type Manager struct {
	Policies Policies
	// Hook puts the egress programs on the sensor's cgroups (nil: this
	// process cannot; a policy is then set but not enforced until a sensor
	// runs, and the result says so).
	Hook func(parent string) error
	// StateDir keeps the contained servers' names (contained.json).
	StateDir string
	Proc     proc.Root

	mu       sync.Mutex
	owned    map[string]*Cgroup // server id -> its cgroup
	launched *Cgroup            // the launched command's cgroup
	hooked   bool
}

// Target names a server to act on: by its instance id (with its root pid
// and printable name), a pid of it, or its cgroup.
type Target struct {
	Server string // instance id (pid-start), if known
	Name   string // printable name, for the cgroup's name and the records
	PID    int
	Cgroup string
}

// Declare tells the manager the cgroup a server was launched in.
func (m *Manager) Declare(server string, cg *Cgroup) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.owned == nil {
		m.owned = map[string]*Cgroup{}
	}
	m.owned[server] = cg
}

var slugRE = regexp.MustCompile(`[^A-Za-z0-9._-]+`)

// Slug makes a server's name one cgroup path component (a path, a
// script's or a binary's, gives its last element).
func Slug(name string) string {
	if !strings.HasPrefix(name, "@") {
		name = filepath.Base(name) // a path, or a Go module's
	}
	s := strings.Trim(slugRE.ReplaceAllString(strings.TrimPrefix(name, "@"), "_"), "_.")
	if len(s) > 64 {
		s = s[:64]
	}
	if s == "" {
		s = "server"
	}
	return s
}

// cgroupName names a server's cgroup by what it is, then its pid (two
// instances of one server are two cgroups).
func cgroupName(name string, pid int) string {
	return Slug(name) + "-" + strconv.Itoa(pid)
}

// Launched tells the manager the cgroup a launched command runs in: every
// server of that command is contained there.
func (m *Manager) Launched(cg *Cgroup) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.launched = cg
}

// CgroupOf is the cgroup a server is contained in. A server not already in
// one of the sensor's cgroups (a stdio server in its client's cgroup) is
// moved, with its whole tree, into one of its own, named by its identity:
// freezing it must never freeze its client.
func (m *Manager) CgroupOf(t Target) (*Cgroup, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.cgroupOf(t)
}

func (m *Manager) cgroupOf(t Target) (*Cgroup, error) {
	if m.owned == nil {
		m.owned = map[string]*Cgroup{}
	}
	if t.Server != "" && m.owned[t.Server] != nil {
		return m.owned[t.Server], nil
	}
	if m.launched != nil && t.Cgroup == "" {
		return m.launched, nil
	}
	if t.Cgroup != "" {
		return Open(t.Cgroup)
	}
	if t.PID <= 0 {
		return nil, fmt.Errorf("server %s has no process to contain", t.Server)
	}
	rel, err := m.procCgroup(t.PID)
	if err != nil {
		return nil, err
	}
	if strings.HasPrefix(rel, "/"+Parent+"/") {
		cg, err := Open(strings.TrimPrefix(rel, "/"))
		if err == nil && t.Server != "" {
			m.owned[t.Server] = cg
		}
		return cg, err
	}
	name := t.Name
	if name == "" {
		name = "server"
	}
	cg, err := Create(cgroupName(name, t.PID))
	if err != nil {
		return nil, err
	}
	// twice: a child forked while the tree moved is found the second time
	for pass := 0; pass < 2; pass++ {
		for _, pid := range m.proc().Tree(t.PID) {
			if err := cg.Move(pid); err != nil && pid == t.PID && pass == 0 {
				return nil, fmt.Errorf("moving server %d into %s: %w", pid, cg.Path, err)
			}
		}
	}
	if t.Server != "" {
		m.owned[t.Server] = cg
	}
	return cg, nil
}

func (m *Manager) proc() proc.Root {
	if m.Proc == "" {
		return proc.Host
	}
	return m.Proc
}

// procCgroup is the cgroup v2 path of a process, relative to the root.
func (m *Manager) procCgroup(pid int) (string, error) {
	return CgroupOfPID(m.proc(), pid)
}

// CgroupOfPID is the cgroup v2 path of a process ("/mcp-sensor/x-1"),
// relative to the cgroup2 root (the "0::" line of /proc/PID/cgroup; hybrid
// hosts list their v1 hierarchies too).
func CgroupOfPID(root proc.Root, pid int) (string, error) {
	b, err := os.ReadFile(filepath.Join(string(root), strconv.Itoa(pid), "cgroup"))
	if err != nil {
		return "", fmt.Errorf("process %d: no such process", pid)
	}
	for _, ln := range strings.Split(string(b), "\n") {
		if p, ok := strings.CutPrefix(ln, "0::"); ok {
			return p, nil
		}
	}
	return "", fmt.Errorf("process %d is in no cgroup v2", pid)
}

// hook makes sure the egress programs are on the sensor's cgroups before
// a policy that needs them is reported done.
func (m *Manager) hook() error {
	if m.hooked {
		return nil
	}
	root, err := Cgroup2Root()
	if err != nil {
		return err
	}
	parent := filepath.Join(root, Parent)
	if m.Hook == nil {
		if !egressHooked(parent) {
			return fmt.Errorf("no sensor has put the egress hooks on %s (they will be once one runs with response enforce)", parent)
		}
		m.hooked = true
		return nil
	}
	if err := m.Hook(parent); err != nil {
		return err
	}
	m.hooked = true
	return nil
}

// EnsureHooks puts the egress programs on the sensor's cgroups (a fleet
// indicator needs them, whatever the containment mode).
func (m *Manager) EnsureHooks() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.hook()
}

// egressHooked: a sensor pinned the egress links of the cgroup at path.
func egressHooked(path string) bool {
	pin := "link-connect4-" + strings.ReplaceAll(strings.Trim(path, "/"), "/", "_")
	_, err := os.Stat(filepath.Join("/sys/fs/bpf/mcp-sensor/v1", pin))
	return err == nil
}

// AddFlags adds policy flags to a cgroup (the egress hooks are put on
// first when the flags need them).
func (m *Manager) AddFlags(cg *Cgroup, flags uint64) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.addFlags(cg, flags)
}

func (m *Manager) addFlags(cg *Cgroup, flags uint64) error {
	if m.Policies == nil {
		return errors.New("no containment maps: load the sensor, or run `sensor contain` where one has run")
	}
	var herr error
	if flags&(wire.CgQuarantine|wire.CgAllowList|wire.CgTaintDeny) != 0 {
		herr = m.hook()
	}
	cur, _ := m.Policies.Flags(cg.ID)
	if err := m.Policies.Set(cg.ID, cur|flags); err != nil {
		return err
	}
	return herr
}

// Contained is a server under containment.
type Contained struct {
	Cgroup string    `json:"cgroup"`
	Server string    `json:"server,omitempty"`
	Name   string    `json:"name,omitempty"`
	Since  time.Time `json:"since,omitzero"`
	Frozen bool      `json:"frozen"`
	Egress string    `json:"egress"` // denied, allowed
	Gone   bool      `json:"gone,omitempty"`
}

// Contain freezes a server and refuses its egress and execs in the kernel
// (SIGKILL at exec), recording it; by says who asked.
func (m *Manager) Contain(t Target, by string) (Contained, time.Time, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	cg, err := m.cgroupOf(t)
	if err != nil {
		return Contained{}, time.Time{}, err
	}
	var errs []error
	egress := "denied"
	if err := m.addFlags(cg, wire.CgQuarantine|wire.CgKillOnExec); err != nil {
		errs = append(errs, fmt.Errorf("egress: %w", err))
		egress = "NOT denied"
	}
	at, err := cg.Freeze(2 * time.Second)
	errs = append(errs, err)
	c := Contained{Cgroup: cg.Path, Server: t.Server, Name: t.Name, Since: time.Now(), Frozen: err == nil, Egress: egress}
	errs = append(errs, m.record(c))
	return c, at, errors.Join(errs...)
}

// Quarantined records a server whose policy the responder set (frozen or
// cut off), so a restarted sensor reports it.
func (m *Manager) Quarantined(t Target, cg *Cgroup, frozen bool) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.record(Contained{Cgroup: cg.Path, Server: t.Server, Name: t.Name, Since: time.Now(), Frozen: frozen, Egress: "denied"})
}

// Release thaws a server and lifts what containment set (a launch
// allow-list stays), and forgets the record.
func (m *Manager) Release(path string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	cg, err := Open(path)
	if err != nil {
		_ = m.forget(path)
		return err
	}
	defer cg.Close()
	var errs []error
	if m.Policies != nil {
		if f, ok := m.Policies.Flags(cg.ID); ok {
			if rest := f &^ (wire.CgQuarantine | wire.CgKillOnExec | wire.CgStopOnExec | wire.CgTainted); rest != 0 {
				errs = append(errs, m.Policies.Set(cg.ID, rest))
			} else {
				errs = append(errs, m.Policies.Delete(cg.ID))
			}
		}
		errs = append(errs, m.Policies.ClearTaint(cg.ID))
	}
	errs = append(errs, Unthrottle(cg))
	if _, err := cg.Thaw(2 * time.Second); err != nil {
		errs = append(errs, err)
	}
	errs = append(errs, m.forget(path))
	if pids, _ := cg.Procs(); len(pids) == 0 && cg.ID != m.launchedID() {
		// nothing left in it (the server exited while contained)
		if m.Policies != nil {
			errs = append(errs, m.Policies.Drop(cg.ID))
		}
		_ = os.Remove(cg.Path)
	}
	return errors.Join(errs...)
}

func (m *Manager) launchedID() uint64 {
	if m.launched == nil {
		return 0
	}
	return m.launched.ID
}

// Gone is told that a server's root exited: the cgroup made for it is
// removed, with its kernel state, once no process is left in it, unless it
// is contained (frozen, or its egress refused): only `sensor release`
// lifts that.
func (m *Manager) Gone(server string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	cg := m.owned[server]
	if cg == nil || cg == m.launched {
		return
	}
	delete(m.owned, server)
	frozen, _ := cg.Frozen()
	var flags uint64
	if m.Policies != nil {
		flags, _ = m.Policies.Flags(cg.ID)
	}
	if frozen || flags&wire.CgQuarantine != 0 {
		return
	}
	go func() {
		// its last processes leave it moments after the root's exit
		for i := 0; i < 50; i++ {
			if pids, err := cg.Procs(); err != nil || len(pids) == 0 {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		if err := cg.Remove(0); err == nil && m.Policies != nil {
			_ = m.Policies.Drop(cg.ID)
		}
	}()
}

// List is every contained server: the sensor's cgroups that are frozen or
// whose policy refuses egress, with the names the records give them, and
// recorded ones that are gone since.
func (m *Manager) List() ([]Contained, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	recs, err := ReadState(m.StateDir)
	if err != nil {
		return nil, err
	}
	byPath := map[string]ContainedRecord{}
	for _, r := range recs {
		byPath[r.Cgroup] = r
	}
	var flags map[uint64]uint64
	if m.Policies != nil {
		flags, _ = m.Policies.All()
	}
	root, err := Cgroup2Root()
	if err != nil {
		return nil, err
	}
	var out []Contained
	ents, _ := os.ReadDir(filepath.Join(root, Parent))
	for _, e := range ents {
		if !e.IsDir() {
			continue
		}
		cg, err := Open(filepath.Join(root, Parent, e.Name()))
		if err != nil {
			continue
		}
		frozen, _ := cg.Frozen()
		f := flags[cg.ID]
		cg.Close()
		if !frozen && f&wire.CgQuarantine == 0 {
			continue
		}
		c := Contained{Cgroup: cg.Path, Frozen: frozen, Egress: "allowed"}
		if f&wire.CgQuarantine != 0 {
			c.Egress = "denied"
		}
		if r, ok := byPath[cg.Path]; ok {
			c.Server, c.Name, c.Since = r.Server, r.Name, r.Since
			delete(byPath, cg.Path)
		}
		out = append(out, c)
	}
	for _, r := range byPath {
		out = append(out, Contained{Cgroup: r.Cgroup, Server: r.Server, Name: r.Name, Since: r.Since, Gone: true})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Cgroup < out[j].Cgroup })
	return out, nil
}

func (m *Manager) record(c Contained) error {
	recs, _ := ReadState(m.StateDir)
	for _, r := range recs {
		if r.Cgroup == c.Cgroup {
			return nil
		}
	}
	var id uint64
	if cg, err := Open(c.Cgroup); err == nil {
		id = cg.ID
		cg.Close()
	}
	return WriteState(m.StateDir, append(recs, ContainedRecord{Server: c.Server, Name: c.Name, Cgroup: c.Cgroup, CgroupID: id, Since: c.Since}))
}

func (m *Manager) forget(path string) error {
	recs, err := ReadState(m.StateDir)
	if err != nil {
		return err
	}
	kept := recs[:0]
	for _, r := range recs {
		if r.Cgroup != path {
			kept = append(kept, r)
		}
	}
	return WriteState(m.StateDir, kept)
}
