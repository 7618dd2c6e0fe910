// Package loader loads the sensor's eBPF programs, attaches them, fills the
// maps that say which processes are tracked, and reads the two ring buffers
// into typed records. It knows nothing of MCP.
//
// Order matters (DESIGN.md, "Loader order"): Load, then start the readers
// (Objects.Readers), then fill the maps (Track*), then Attach. Close undoes
// everything in reverse.
package loader

import (
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"golang.org/x/sys/unix"
)

// Config holds what reaches the eBPF side as constants before load.
type Config struct {
	// SelfPID is never tracked (the sensor's own process).
	SelfPID uint32
	// Discover makes newly exec'd processes whose stdin is a pipe or socket
	// candidates; a candidate that reads `"jsonrpc"` on stdin becomes a server.
	Discover bool
	// CaptureCap is the number of payload bytes kept per syscall; the rest
	// is counted and marked as cut.
	CaptureCap uint64
	// CandidateWindow and CandidateBudget bound how long and for how many
	// stdin reads a candidate is watched.
	CandidateWindow time.Duration
	CandidateBudget uint32
	// Ring sizes in bytes (powers of two, at least a page).
	EffectRing  uint32
	PayloadRing uint32
	// MaxTracked is the size of the tracked-process map.
	MaxTracked uint32
	// WakeupInterval bounds how often the kernel wakes the ring readers
	// while records flow, and so how late a record can be read.
	WakeupInterval time.Duration
}

// DefaultConfig is what `sensor trace` runs with when given no flags.
func DefaultConfig() Config {
	return Config{
		CaptureCap:      32 << 20,
		CandidateWindow: 60 * time.Second,
		CandidateBudget: 8,
		EffectRing:      8 << 20,
		PayloadRing:     32 << 20,
		MaxTracked:      32768,
		WakeupInterval:  2 * time.Millisecond,
	}
}

func (c Config) validate() error {
	for name, v := range map[string]uint32{"effect ring": c.EffectRing, "payload ring": c.PayloadRing} {
		if v < 4096 || v&(v-1) != 0 {
			return fmt.Errorf("%s size %d: must be a power of two of at least 4096 bytes", name, v)
		}
	}
	if c.MaxTracked == 0 {
		return errors.New("max tracked processes must be at least 1")
	}
	if c.WakeupInterval <= 0 || c.WakeupInterval > time.Second {
		return fmt.Errorf("wakeup interval %v: must be between 1ns and 1s", c.WakeupInterval)
	}
	if c.CaptureCap == 0 {
		return errors.New("capture cap must be at least 1 byte")
	}
	return nil
}

// Objects are the loaded programs and maps.
type Objects struct {
	cfg   Config
	objs  sensorObjects
	links []link.Link
	// uprobes on TLS libraries, attached while running
	mu       sync.Mutex
	tlsLinks []link.Link
}

// Load sets the constants, sizes the maps and loads everything into the
// kernel. Nothing is attached yet.
func Load(cfg Config) (*Objects, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if err := removeMemlock(); err != nil {
		return nil, fmt.Errorf("raising the memlock limit: %w", err)
	}
	spec, err := loadSensor()
	if err != nil {
		return nil, fmt.Errorf("reading the embedded eBPF objects: %w", err)
	}
	// the sensor's own binary is never a candidate, whoever runs it
	var selfDev uint32
	var selfIno uint64
	var st unix.Stat_t
	if unix.Stat("/proc/self/exe", &st) == nil {
		selfDev, selfIno = uint32(unix.Major(st.Dev))<<20|uint32(unix.Minor(st.Dev)), st.Ino
	}
	consts := map[string]any{
		"self_tgid":        cfg.SelfPID,
		"self_ino":         selfIno,
		"self_dev":         selfDev,
		"discover":         boolU32(cfg.Discover),
		"capture_cap":      cfg.CaptureCap,
		"candidate_window": uint64(cfg.CandidateWindow.Nanoseconds()),
		"candidate_budget": cfg.CandidateBudget,
		"wakeup_interval":  uint64(cfg.WakeupInterval.Nanoseconds()),
		// wake at once when a ring is an eighth full: plenty of room left
		"effect_wake_bytes":  uint64(cfg.EffectRing / 8),
		"payload_wake_bytes": uint64(cfg.PayloadRing / 8),
	}
	for name, v := range consts {
		if err := spec.Variables[name].Set(v); err != nil {
			return nil, fmt.Errorf("setting %s: %w", name, err)
		}
	}
	spec.Maps[sensorMapEffects].MaxEntries = cfg.EffectRing
	spec.Maps[sensorMapPayloads].MaxEntries = cfg.PayloadRing
	spec.Maps[sensorMapTracked].MaxEntries = cfg.MaxTracked
	o := &Objects{cfg: cfg}
	opts, err := pinSpec(spec)
	if err != nil {
		return nil, &LoadError{fmt.Errorf("containment state: %w", err)}
	}
	if err := spec.LoadAndAssign(&o.objs, opts); err != nil {
		var ve *ebpf.VerifierError
		if errors.As(err, &ve) {
			return nil, &LoadError{fmt.Errorf("loading eBPF programs: %+v", ve)}
		}
		return nil, &LoadError{fmt.Errorf("loading eBPF programs: %w", err)}
	}
	return o, nil
}

// LoadError is a failure of the kernel to load or attach the programs:
// Probe says which kernel feature is missing.
type LoadError struct{ Err error }

func (e *LoadError) Error() string { return e.Err.Error() }
func (e *LoadError) Unwrap() error { return e.Err }

func boolU32(b bool) uint32 {
	if b {
		return 1
	}
	return 0
}

// handlers maps each tail-called program to the syscalls it decodes.
func (o *Objects) handlers() map[*ebpf.Program][]uint32 {
	p := &o.objs.sensorPrograms
	return map[*ebpf.Program][]uint32{
		p.HandleIo: {unix.SYS_READ, unix.SYS_WRITE, unix.SYS_PREAD64, unix.SYS_PWRITE64,
			unix.SYS_READV, unix.SYS_WRITEV, unix.SYS_PREADV, unix.SYS_PWRITEV,
			unix.SYS_PREADV2, unix.SYS_PWRITEV2, unix.SYS_RECVFROM, unix.SYS_SENDTO,
			unix.SYS_RECVMSG, unix.SYS_SENDMSG},
		p.HandleBypass: {unix.SYS_SENDFILE, unix.SYS_SPLICE, unix.SYS_TEE, unix.SYS_VMSPLICE,
			unix.SYS_COPY_FILE_RANGE, unix.SYS_RECVMMSG, unix.SYS_SENDMMSG},
		p.HandleOpen: {unix.SYS_OPEN, unix.SYS_OPENAT, unix.SYS_OPENAT2, unix.SYS_CREAT,
			unix.SYS_OPEN_BY_HANDLE_AT},
		p.HandleFileop: {unix.SYS_UNLINK, unix.SYS_UNLINKAT, unix.SYS_RMDIR, unix.SYS_MKDIR,
			unix.SYS_MKDIRAT, unix.SYS_RENAME, unix.SYS_RENAMEAT, unix.SYS_RENAMEAT2,
			unix.SYS_LINK, unix.SYS_LINKAT, unix.SYS_SYMLINK, unix.SYS_SYMLINKAT,
			unix.SYS_CHMOD, unix.SYS_FCHMOD, unix.SYS_FCHMODAT, unix.SYS_FCHMODAT2,
			unix.SYS_CHOWN, unix.SYS_FCHOWN, unix.SYS_LCHOWN, unix.SYS_FCHOWNAT,
			unix.SYS_TRUNCATE, unix.SYS_FTRUNCATE},
		p.HandleNet: {unix.SYS_CONNECT, unix.SYS_BIND, unix.SYS_LISTEN, unix.SYS_ACCEPT,
			unix.SYS_ACCEPT4},
		p.HandleEscape: {unix.SYS_PTRACE, unix.SYS_MOUNT, unix.SYS_UMOUNT2, unix.SYS_PIVOT_ROOT,
			unix.SYS_UNSHARE, unix.SYS_SETNS, unix.SYS_INIT_MODULE, unix.SYS_FINIT_MODULE,
			unix.SYS_DELETE_MODULE, unix.SYS_BPF, unix.SYS_MEMFD_CREATE, unix.SYS_SETUID,
			unix.SYS_SETGID, unix.SYS_SETREUID, unix.SYS_SETREGID, unix.SYS_SETRESUID,
			unix.SYS_SETRESGID, unix.SYS_SETFSUID, unix.SYS_SETFSGID, unix.SYS_CAPSET,
			unix.SYS_CHROOT, unix.SYS_KEXEC_LOAD, unix.SYS_KEXEC_FILE_LOAD,
			unix.SYS_IO_URING_SETUP, unix.SYS_PROCESS_VM_READV, unix.SYS_PROCESS_VM_WRITEV,
			unix.SYS_CLONE, unix.SYS_CLONE3, unix.SYS_OPEN_TREE, unix.SYS_MOVE_MOUNT,
			unix.SYS_FSOPEN, unix.SYS_FSCONFIG, unix.SYS_FSMOUNT, unix.SYS_FSPICK,
			unix.SYS_MOUNT_SETATTR},
		p.HandleExec: {unix.SYS_EXECVE, unix.SYS_EXECVEAT},
		p.HandleMmap: {unix.SYS_MMAP},
		p.Candidate:  {candidateSlot},
	}
}

// candidateSlot is CANDIDATE_SLOT in bpf/sensor.c.
const candidateSlot = 511

// Attach fills the dispatcher's tail-call table and attaches the hooks. Start
// the readers and fill the tracking maps first.
func (o *Objects) Attach() error {
	for prog, nrs := range o.handlers() {
		for _, nr := range nrs {
			if err := o.objs.SysExitProgs.Put(nr, prog); err != nil {
				return fmt.Errorf("installing handler for syscall %d: %w", nr, err)
			}
		}
	}
	// Lifecycle first, so no child forked during attach escapes tracking.
	links, err := attachAll([]hook{
		{"sched_process_fork", o.objs.SchedFork},
		{"sched_process_exec", o.objs.SchedExec},
		{"sched_process_exit", o.objs.SchedExit},
		{"sys_exit", o.objs.SysExit},
	})
	o.links = links
	return err
}

type hook struct {
	name string
	prog *ebpf.Program
}

// attachAll attaches tp_btf programs (BTF-typed raw tracepoints: no tracefs,
// no trampoline), returning the links made before any failure.
func attachAll(hooks []hook) ([]link.Link, error) {
	var links []link.Link
	for _, h := range hooks {
		l, err := link.AttachTracing(link.TracingOptions{Program: h.prog})
		if err != nil {
			return links, &LoadError{fmt.Errorf("attaching tracepoint %s: %w", h.name, err)}
		}
		links = append(links, l)
	}
	return links, nil
}

// Detach removes the hooks, so no record is produced after it returns; the
// maps and rings stay readable. Close calls it too.
func (o *Objects) Detach() error {
	o.mu.Lock()
	tls := o.tlsLinks
	o.tlsLinks = nil
	o.mu.Unlock()
	err := errors.Join(closeLinks(o.links), closeLinks(tls))
	o.links = nil
	return err
}

// closeLinks detaches links in reverse order of attachment.
func closeLinks(links []link.Link) error {
	var errs []error
	for i := len(links) - 1; i >= 0; i-- {
		errs = append(errs, links[i].Close())
	}
	return errors.Join(errs...)
}

// Close detaches and unloads, in reverse order of creation.
func (o *Objects) Close() error {
	return errors.Join(o.Detach(), o.objs.Close())
}

// Programs lists the loaded programs by name, for stats.
func (o *Objects) programs() map[string]*ebpf.Program {
	p := &o.objs.sensorPrograms
	return map[string]*ebpf.Program{
		"sys_exit": p.SysExit, "sched_fork": p.SchedFork, "sched_exec": p.SchedExec,
		"sched_exit": p.SchedExit, "tls_read": p.TlsRead, "tls_read_ex": p.TlsReadEx,
		"tls_write": p.TlsWrite, "tls_write_ex": p.TlsWriteEx, "tls_ret": p.TlsRet, "tls_free": p.TlsFree,
	}
}
