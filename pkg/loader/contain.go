package loader

import (
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"strings"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"golang.org/x/sys/unix"
)

// Containment flags of a cgroup's policy, from enum cg_flags.
const (
	CgQuarantine = uint64(sensorCgFlagsCG_QUARANTINE)   // deny all egress
	CgAllowList  = uint64(sensorCgFlagsCG_ALLOWLIST)    // egress only to the allow-list
	CgTaintDeny  = uint64(sensorCgFlagsCG_TAINT_DENY)   // once tainted, only to the allow-list
	CgTainted    = uint64(sensorCgFlagsCG_TAINTED)      // a process read a sensitive file
	CgKillOnExec = uint64(sensorCgFlagsCG_KILL_ON_EXEC) // SIGKILL at exec
	CgStopOnExec = uint64(sensorCgFlagsCG_STOP_ON_EXEC) // SIGSTOP at exec
)

// PinDir is where containment state is pinned, versioned so that a changed
// map layout is never loaded over an old pin.
const PinDir = "/sys/fs/bpf/mcp-sensor/v1"

// pinnedMaps are the maps that outlive the sensor: a contained server stays
// contained when the sensor dies or restarts.
var pinnedMaps = []string{"cg_policies", "cg_taint", "egress_allow", "egress_deny", "sensitive_files"}

// mountBPFFS mounts bpffs at /sys/fs/bpf if nothing is there.
func mountBPFFS() error {
	var st unix.Statfs_t
	if err := unix.Statfs("/sys/fs/bpf", &st); err == nil && st.Type == unix.BPF_FS_MAGIC {
		return nil
	}
	if err := os.MkdirAll("/sys/fs/bpf", 0o700); err != nil {
		return err
	}
	if err := unix.Mount("bpf", "/sys/fs/bpf", "bpf", 0, "mode=0700"); err != nil {
		return fmt.Errorf("mounting bpffs at /sys/fs/bpf: %w", err)
	}
	return nil
}

// pinSpec marks the containment maps to be pinned by name under PinDir.
func pinSpec(spec *ebpf.CollectionSpec) (*ebpf.CollectionOptions, error) {
	if err := mountBPFFS(); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(PinDir, 0o700); err != nil {
		return nil, err
	}
	for _, n := range pinnedMaps {
		spec.Maps[n].Pinning = ebpf.PinByName
	}
	return &ebpf.CollectionOptions{Maps: ebpf.MapOptions{PinPath: PinDir}}, nil
}

// egressHooks are the cgroup sock_addr attach points and their programs.
func (o *Objects) egressHooks() []struct {
	name   string
	attach ebpf.AttachType
	prog   *ebpf.Program
} {
	p := &o.objs.sensorPrograms
	return []struct {
		name   string
		attach ebpf.AttachType
		prog   *ebpf.Program
	}{
		{"connect4", ebpf.AttachCGroupInet4Connect, p.EgressConnect4},
		{"connect6", ebpf.AttachCGroupInet6Connect, p.EgressConnect6},
		{"sendmsg4", ebpf.AttachCGroupUDP4Sendmsg, p.EgressSendmsg4},
		{"sendmsg6", ebpf.AttachCGroupUDP6Sendmsg, p.EgressSendmsg6},
		{"skb", ebpf.AttachCGroupInetEgress, p.EgressSkb},
	}
}

// AttachEgress puts the egress programs on the cgroup at path (the sensor's
// subtree: they apply to every cgroup below it). The links are pinned, so
// they stay when the sensor exits; a pinned link found from an earlier run
// is updated to this run's program instead of adding a second one.
func (o *Objects) AttachEgress(path string) error {
	for _, h := range o.egressHooks() {
		pin := filepath.Join(PinDir, "link-"+h.name+"-"+pinName(path))
		if l, err := link.LoadPinnedLink(pin, nil); err == nil {
			err = l.Update(h.prog)
			l.Close()
			if err == nil {
				continue
			}
			_ = os.Remove(pin) // stale: attach afresh
		}
		l, err := link.AttachCgroup(link.CgroupOptions{Path: path, Attach: h.attach, Program: h.prog})
		if err != nil {
			return fmt.Errorf("attaching the %s egress hook to %s: %w", h.name, path, err)
		}
		if err := l.Pin(pin); err != nil {
			l.Close()
			return fmt.Errorf("pinning the %s egress hook: %w", h.name, err)
		}
		l.Close() // the pin holds it
	}
	return nil
}

// DetachEgress removes the pinned egress hooks of the cgroup at path.
func DetachEgress(path string) error {
	var errs []error
	for _, name := range []string{"connect4", "connect6", "sendmsg4", "sendmsg6", "skb"} {
		pin := filepath.Join(PinDir, "link-"+name+"-"+pinName(path))
		l, err := link.LoadPinnedLink(pin, nil)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			errs = append(errs, err)
			continue
		}
		errs = append(errs, l.Unpin(), l.Close())
	}
	return errors.Join(errs...)
}

func pinName(path string) string {
	return strings.ReplaceAll(strings.Trim(path, "/"), "/", "_")
}

// Policy is a cgroup's containment state.
type Policy = sensorCgPolicy

// SetPolicy sets a cgroup's flags. (The kernel keeps a cgroup's taint in
// a map of its own, so this never races with it.)
func (o *Objects) SetPolicy(cgroup, flags uint64) error {
	return o.objs.CgPolicies.Put(cgroup, &Policy{Flags: flags &^ CgTainted})
}

// Tainted reports whether a sensitive read tainted the cgroup.
func (o *Objects) Tainted(cgroup uint64) bool {
	var at uint64
	return o.objs.CgTaint.Lookup(cgroup, &at) == nil
}

// EgressHooked reports whether a sensor attached the egress hooks on the
// cgroup at path (they stay pinned when it exits).
func EgressHooked(path string) bool {
	_, err := os.Stat(filepath.Join(PinDir, "link-connect4-"+pinName(path)))
	return err == nil
}

// GetPolicy returns a cgroup's policy (ok false if it has none).
func (o *Objects) GetPolicy(cgroup uint64) (Policy, bool) {
	var p Policy
	err := o.objs.CgPolicies.Lookup(cgroup, &p)
	return p, err == nil
}

// DeletePolicy drops a cgroup's policy, its taint and its allow-list.
func (o *Objects) DeletePolicy(cgroup uint64) error {
	err := o.objs.CgPolicies.Delete(cgroup)
	if errors.Is(err, ebpf.ErrKeyNotExist) {
		err = nil
	}
	terr := o.objs.CgTaint.Delete(cgroup)
	if errors.Is(terr, ebpf.ErrKeyNotExist) {
		terr = nil
	}
	return errors.Join(err, terr, clearAllow(o.objs.EgressAllow, cgroup))
}

// AllowEgress sets a destination of a cgroup's allow-list: a prefix and
// every port allowed to it (none: any). It replaces what the prefix had:
// give each prefix once, with all its ports (an LPM lookup would return a
// wider prefix's entry, so entries are not merged here).
func (o *Objects) AllowEgress(cgroup uint64, prefix netip.Prefix, ports []uint16) error {
	var v sensorEgressPorts
	if len(ports) > len(v.Port) {
		return fmt.Errorf("%s: at most %d ports per destination", prefix, len(v.Port))
	}
	copy(v.Port[:], ports)
	k := egressKey(cgroup, prefix)
	return o.objs.EgressAllow.Put(&k, &v)
}

// DenyEgress refuses a destination's ports (none: every port) to the
// servers of a cgroup, or to every server with a policy when cgroup is 0,
// whatever their policy allows: the fleet's indicators for one address.
// It replaces what the address had; at most 8 ports.
func (o *Objects) DenyEgress(cgroup uint64, prefix netip.Prefix, ports []uint16) error {
	var v sensorEgressPorts
	if len(ports) > len(v.Port) {
		return fmt.Errorf("%s: at most %d ports per destination", prefix, len(v.Port))
	}
	copy(v.Port[:], ports)
	k := egressKey(cgroup, prefix)
	return o.objs.EgressDeny.Put(&k, &v)
}

// UndenyEgress lifts DenyEgress of an address.
func (o *Objects) UndenyEgress(cgroup uint64, prefix netip.Prefix) error {
	k := egressKey(cgroup, prefix)
	if err := o.objs.EgressDeny.Delete(&k); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
		return err
	}
	return nil
}

// ClearDenied lifts every DenyEgress (a sensor joining the fleet takes the
// indicators in force afresh: one withdrawn while no sensor ran must not
// stay in the pinned map).
func (o *Objects) ClearDenied() error {
	var k, next sensorEgressKey
	var keys []sensorEgressKey
	for err := o.objs.EgressDeny.NextKey(nil, &next); err == nil; err = o.objs.EgressDeny.NextKey(&k, &next) {
		keys = append(keys, next)
		k = next
	}
	var errs []error
	for i := range keys {
		if err := o.objs.EgressDeny.Delete(&keys[i]); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func egressKey(cgroup uint64, prefix netip.Prefix) sensorEgressKey {
	a := prefix.Addr()
	bits := prefix.Bits()
	if a.Is4() {
		bits += 96
		a = netip.AddrFrom16(a.As16())
	}
	var k sensorEgressKey
	k.Prefixlen = uint32(64 + bits)
	k.Cgroup = cgroup
	k.Addr = a.As16()
	return k
}

func clearAllow(m *ebpf.Map, cgroup uint64) error {
	var k, next sensorEgressKey
	var keys []sensorEgressKey
	it := m.Iterate()
	var v sensorEgressPorts
	for it.Next(&next, &v) {
		if next.Cgroup == cgroup {
			keys = append(keys, next)
		}
	}
	var errs []error
	for _, k = range keys {
		if err := m.Delete(&k); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
			errs = append(errs, err)
		}
	}
	return errors.Join(append(errs, it.Err())...)
}

// AddSensitive marks a file (by device and inode, as stat gives them):
// reading it taints a managed cgroup.
func (o *Objects) AddSensitive(dev uint64, ino uint64) error {
	k := sensorFileKey{Dev: uint32(unix.Major(dev))<<20 | uint32(unix.Minor(dev)), Ino: ino}
	return o.objs.SensitiveFiles.Put(&k, uint8(1))
}

// PinnedPolicies opens the pinned policy maps of an earlier or running
// sensor (for `sensor contain` and `release`, which load no programs).
func PinnedPolicies() (*PolicyMap, error) {
	m, err := ebpf.LoadPinnedMap(filepath.Join(PinDir, "cg_policies"), nil)
	if err != nil {
		return nil, fmt.Errorf("no containment state pinned at %s (has a sensor run on this host?): %w", PinDir, err)
	}
	t, err := ebpf.LoadPinnedMap(filepath.Join(PinDir, "cg_taint"), nil)
	if err != nil {
		m.Close()
		return nil, fmt.Errorf("no taint map pinned at %s: %w", PinDir, err)
	}
	a, err := ebpf.LoadPinnedMap(filepath.Join(PinDir, "egress_allow"), nil)
	if err != nil {
		m.Close()
		t.Close()
		return nil, fmt.Errorf("no allow-list map pinned at %s: %w", PinDir, err)
	}
	return &PolicyMap{m: m, taint: t, allow: a, owned: true}, nil
}

// Policies is the loaded objects' policy map.
func (o *Objects) Policies() *PolicyMap {
	return &PolicyMap{m: o.objs.CgPolicies, taint: o.objs.CgTaint, allow: o.objs.EgressAllow}
}

// PolicyMap is the cgroups' containment state: the policy map userspace
// writes and the taint map the kernel writes.
type PolicyMap struct {
	m, taint, allow *ebpf.Map
	owned           bool
}

// Flags returns a cgroup's policy flags.
func (p *PolicyMap) Flags(cgroup uint64) (uint64, bool) {
	var v Policy
	if p.m.Lookup(cgroup, &v) != nil {
		return 0, false
	}
	return v.Flags, true
}

// Set sets a cgroup's flags.
func (p *PolicyMap) Set(cgroup, flags uint64) error {
	return p.m.Put(cgroup, &Policy{Flags: flags &^ CgTainted})
}

// Tainted reports whether a sensitive read tainted the cgroup.
func (p *PolicyMap) Tainted(cgroup uint64) bool {
	var at uint64
	return p.taint.Lookup(cgroup, &at) == nil
}

// ClearTaint forgets that a cgroup read a sensitive file.
func (p *PolicyMap) ClearTaint(cgroup uint64) error {
	err := p.taint.Delete(cgroup)
	if errors.Is(err, ebpf.ErrKeyNotExist) {
		return nil
	}
	return err
}

// Delete drops a cgroup's policy.
func (p *PolicyMap) Delete(cgroup uint64) error {
	err := p.m.Delete(cgroup)
	if errors.Is(err, ebpf.ErrKeyNotExist) {
		return nil
	}
	return err
}

// Drop forgets everything about a cgroup that is gone: its policy, its
// taint and its allow-list.
func (p *PolicyMap) Drop(cgroup uint64) error {
	return errors.Join(p.Delete(cgroup), p.ClearTaint(cgroup), clearAllow(p.allow, cgroup))
}

// All returns every cgroup's flags.
func (p *PolicyMap) All() (map[uint64]uint64, error) {
	out := map[uint64]uint64{}
	var k uint64
	var v Policy
	it := p.m.Iterate()
	for it.Next(&k, &v) {
		out[k] = v.Flags
	}
	return out, it.Err()
}

// Close releases the maps (the pins stay) if this map opened them.
func (p *PolicyMap) Close() error {
	if !p.owned {
		return nil
	}
	return errors.Join(p.m.Close(), p.taint.Close(), p.allow.Close())
}

// removeMemlock lifts RLIMIT_MEMLOCK for kernels that still charge BPF
// memory to it (before 5.11; later ones use memory cgroups). It is done by
// hand: cilium/ebpf's rlimit package probes the kernel with a bpf() call
// from its init, in every process that links it, the sensor's launch
// helper included, whose every syscall the sensor judges.
func removeMemlock() error {
	err := unix.Setrlimit(unix.RLIMIT_MEMLOCK, &unix.Rlimit{Cur: unix.RLIM_INFINITY, Max: unix.RLIM_INFINITY})
	if errors.Is(err, unix.EPERM) {
		// the limit is fixed here; kernels since 5.11 do not need it
		// raised, and an older one fails the load with a clear error
		return nil
	}
	return err
}
