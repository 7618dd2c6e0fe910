package decode

import (
	"bytes"
	"fmt"
	"path"
	"strconv"
	"time"

	"github.com/mcpsec/sensor/pkg/wire"
)

// Proc says who did something: host pids, the command name, and the server
// (root process and its start time) the process belongs to.
type Proc struct {
	PID    uint32 `json:"pid"`
	TID    uint32 `json:"tid"`
	PPID   uint32 `json:"ppid,omitempty"`
	Comm   string `json:"comm,omitempty"`
	Server string `json:"server"`
	// Start is the process's start time (boot ns): (PID, Start) is unique.
	Start uint64 `json:"-"`
	// ServerPID is the server's root process, Server's first part.
	ServerPID uint32 `json:"-"`
}

// ServerID formats a server's identity: root pid and root start time (boot
// ns), since pids are reused.
func ServerID(pid uint32, start uint64) string {
	if pid == 0 {
		return ""
	}
	return strconv.FormatUint(uint64(pid), 10) + "-" + strconv.FormatUint(start, 10)
}

func procOf(h *wire.Header) Proc {
	return Proc{
		PID: h.Tgid, TID: h.Tid, PPID: h.Ppid, Comm: h.CommString(),
		Server: ServerID(h.Server, h.ServerStart), Start: h.Start, ServerPID: h.Server,
	}
}

// Effect is one side effect of a server's process tree.
type Effect struct {
	Kind string    `json:"kind"` // always "effect"
	Time time.Time `json:"ts"`
	Proc
	Type    string `json:"type"`
	Syscall string `json:"syscall,omitempty"`
	// Path is absolute. For opens and fd-based calls the kernel resolved it
	// (symlinks followed); otherwise it is Raw joined to the directory it was
	// relative to, cleaned lexically, and Lexical is set.
	Path    string   `json:"path,omitempty"`
	Raw     string   `json:"raw,omitempty"`
	Lexical bool     `json:"lexical,omitempty"`
	To      string   `json:"to,omitempty"`     // rename: the new path
	Target  string   `json:"target,omitempty"` // link, symlink: what the link points to
	Argv    []string `json:"argv,omitempty"`
	Addr    string   `json:"addr,omitempty"`  // remote address (connect, sendto, accept), local (bind, listen)
	Local   string   `json:"local,omitempty"` // accept: the local address
	Socket  string   `json:"socket,omitempty"`
	Flags   string   `json:"flags,omitempty"`
	Access  string   `json:"access,omitempty"`
	Mode    string   `json:"mode,omitempty"`
	Args    []uint64 `json:"args,omitempty"` // escape-class calls: raw arguments
	Detail  string   `json:"detail,omitempty"`
	Child   uint32   `json:"child,omitempty"`
	Code    *int     `json:"code,omitempty"`   // exit status
	Signal  int      `json:"signal,omitempty"` // exit by signal
	Result  int64    `json:"result"`
	Errno   string   `json:"errno,omitempty"`
	Inode   uint64   `json:"inode,omitempty"`
	// Truncated is set when a string was cut at the kernel's limits.
	Truncated bool `json:"truncated,omitempty"`
	// Overflow: tracked through the cgroup fallback because the process map was full.
	Overflow bool `json:"overflow,omitempty"`
	// Fault: a user pointer could not be read; a field may be missing.
	Fault bool `json:"fault,omitempty"`
	// Call is the tool call the effect is attributed to (set by the
	// correlator). Ambiguous: several calls were in flight and nothing
	// singled one out; Calls lists them all.
	Call      *CallRef  `json:"call,omitempty"`
	Calls     []CallRef `json:"calls,omitempty"`
	Ambiguous bool      `json:"ambiguous,omitempty"`
	// Named: the call's arguments name what the effect touched (the path,
	// an argv element, the address), which is what singled the call out.
	Named bool `json:"named,omitempty"`
}

// effectTypes names kinds whose type is fixed; opens are "open" or "write".
var effectTypes = map[wire.Kind]string{
	wire.KindExec: "exec", wire.KindExecFail: "exec", wire.KindFork: "fork",
	wire.KindExit: "exit", wire.KindDiscover: "discover", wire.KindUnlink: "unlink",
	wire.KindRmdir: "rmdir", wire.KindMkdir: "mkdir", wire.KindRename: "rename",
	wire.KindLink: "link", wire.KindSymlink: "symlink", wire.KindChmod: "chmod",
	wire.KindChown: "chown", wire.KindTruncate: "truncate", wire.KindConnect: "connect",
	wire.KindBind: "bind", wire.KindListen: "listen", wire.KindAccept: "accept",
	wire.KindSendto: "sendto", wire.KindPtrace: "ptrace", wire.KindMount: "mount",
	wire.KindUmount: "umount", wire.KindUnshare: "unshare", wire.KindSetns: "setns",
	wire.KindModule: "module", wire.KindBpf: "bpf", wire.KindMemfd: "memfd_create",
	wire.KindSetuid: "setuid", wire.KindCapset: "capset", wire.KindChroot: "chroot",
	wire.KindKexec: "kexec", wire.KindIoUring: "io_uring_setup",
	wire.KindProcessVm: "process_vm", wire.KindBypass: "bypass", wire.KindMmapExec: "mmap_exec",
	wire.KindEgressDenied: "egress_denied",
}

// joinBase resolves a path string against the directory it was relative to.
// A relative string whose directory is unknown resolves to nothing: Path is
// absolute or empty, and Raw keeps the string.
func joinBase(base, raw []byte) string {
	r := string(raw)
	switch {
	case r == "":
		return ""
	case path.IsAbs(r):
		return path.Clean(r)
	case len(base) == 0:
		return ""
	}
	return path.Join(string(base), r)
}

// decodeEffect turns an effect record into an Effect.
func decodeEffect(clk Clock, r *wire.Effect) (*Effect, error) {
	kind := wire.Kind(r.H.Kind)
	typ, ok := effectTypes[kind]
	if kind == wire.KindOpen {
		typ, ok = "open", true
		if OpenWrites(r.A[0]) {
			typ = "write"
		}
	}
	if !ok {
		return nil, fmt.Errorf("unknown effect kind %d", kind)
	}
	e := &Effect{
		Kind: "effect", Time: clk.Wall(r.H.Ts), Proc: procOf(&r.H), Type: typ,
		Result: r.H.Ret, Errno: ErrnoName(r.H.Ret), Inode: r.Ino,
		Truncated: r.H.Flags&(wire.FlagTruncS0*0xf) != 0,
		Overflow:  r.H.Flags&wire.FlagOverflow != 0,
		Fault:     r.H.Flags&wire.FlagFault != 0,
	}
	if r.H.Nr != 0 {
		e.Syscall = SyscallName(r.H.Nr)
	}
	s := r.Slots
	switch kind {
	case wire.KindExec:
		e.Path = string(s[0])
		e.Argv = splitArgv(s[1])
		e.Raw = string(s[2])
		e.Detail = fmt.Sprintf("uid=%d euid=%d", r.A[0], r.A[1])
	case wire.KindExecFail:
		e.Raw = string(s[1])
		e.Path, e.Lexical = joinBase(s[2], s[1]), true
	case wire.KindFork:
		e.Child = uint32(r.A[0])
	case wire.KindExit:
		status := int(r.A[0])
		code := (status >> 8) & 0xff
		e.Code = &code
		e.Signal = status & 0x7f
	case wire.KindDiscover:
		e.Detail = "JSON-RPC seen on stdin"
	case wire.KindOpen:
		e.Flags = OpenFlags(r.A[0])
		e.Access = OpenAccess(r.A[0])
		if r.A[0]&0o100 != 0 { // O_CREAT
			e.Mode = fmt.Sprintf("%#o", r.A[1])
		}
		e.Raw = string(s[1])
		if len(s[0]) > 0 {
			e.Path = string(s[0])
		} else {
			e.Path, e.Lexical = joinBase(s[2], s[1]), true
		}
	case wire.KindUnlink, wire.KindRmdir, wire.KindMkdir, wire.KindChmod,
		wire.KindChown, wire.KindTruncate, wire.KindRename, wire.KindLink,
		wire.KindSymlink:
		fileop(e, r)
	case wire.KindMmapExec:
		e.Path = string(s[0])
	case wire.KindEgressDenied:
		// refused in the kernel by containment: a[0] is the cgroup's policy
		e.Addr = FormatSockaddr(s[0])
		e.Errno = "EPERM"
		e.Detail = denyReason(r.A[0])
	case wire.KindConnect, wire.KindBind, wire.KindListen, wire.KindAccept, wire.KindSendto:
		e.Socket = SocketKind(r.A[1], r.A[2], r.A[3])
		e.Addr = FormatSockaddr(s[0])
		e.Local = FormatSockaddr(s[1])
		if kind == wire.KindListen {
			e.Detail = "backlog=" + strconv.FormatUint(r.A[4], 10)
		}
	case wire.KindBypass:
		e.Detail = fmt.Sprintf("%d bytes moved in-kernel between fd %d and fd %d: not captured",
			r.H.Ret, int64(r.A[0]), int64(r.A[1]))
	default:
		escape(e, r)
	}
	return e, nil
}

func fileop(e *Effect, r *wire.Effect) {
	s := r.Slots
	if len(s[0]) > 0 && len(s[1]) == 0 {
		// fd-based: the kernel walked the fd's path
		e.Path = string(s[0])
	} else {
		e.Raw = string(s[1])
		e.Path, e.Lexical = joinBase(s[0], s[1]), true
	}
	switch wire.Kind(r.H.Kind) {
	case wire.KindChmod, wire.KindMkdir:
		e.Mode = fmt.Sprintf("%#o", r.A[1])
	case wire.KindChown:
		e.Detail = fmt.Sprintf("uid=%d gid=%d", int32(r.A[2]), int32(r.A[3]))
	case wire.KindTruncate:
		e.Detail = "length=" + strconv.FormatInt(int64(r.A[4]), 10)
	case wire.KindRename:
		e.To = joinBase(s[2], s[3])
	case wire.KindLink:
		// link(old, new): the new name is the effect, the old one its target
		e.Target = e.Path
		e.Raw = string(s[3])
		e.Path = joinBase(s[2], s[3])
	case wire.KindSymlink:
		e.Target = string(s[1])
		e.Raw = string(s[3])
		e.Path = joinBase(s[2], s[3])
	}
}

func escape(e *Effect, r *wire.Effect) {
	s := r.Slots
	e.Args = r.A[:4]
	switch wire.Kind(r.H.Kind) {
	case wire.KindPtrace:
		e.Detail = fmt.Sprintf("%s pid=%d", PtraceRequest(r.A[0]), int32(r.A[1]))
	case wire.KindMount:
		switch r.H.Nr {
		case wire.SYS_OPEN_TREE, wire.SYS_FSPICK, wire.SYS_MOUNT_SETATTR:
			e.Raw = string(s[1])
			e.Path, e.Lexical = joinBase(s[0], s[1]), true
		case wire.SYS_FSOPEN:
			e.Detail = "fstype=" + string(s[2])
		default: // mount(source, target, fstype), pivot_root, move_mount(from, to)
			e.Raw = string(s[0])
			e.Path = string(s[1])
			if len(s[2]) > 0 {
				e.Detail = "fstype=" + string(s[2])
			}
		}
	case wire.KindUmount:
		e.Path = string(s[1])
	case wire.KindUnshare:
		e.Flags = CloneFlags(r.A[0])
		if r.H.Nr == wire.SYS_CLONE || r.H.Nr == wire.SYS_CLONE3 {
			e.Child = uint32(r.A[1])
		}
	case wire.KindSetns:
		e.Path = string(s[0])
		e.Flags = CloneFlags(r.A[1])
	case wire.KindModule, wire.KindChroot:
		if len(s[0]) > 0 && len(s[1]) == 0 {
			e.Path = string(s[0])
		} else if len(s[1]) > 0 {
			e.Raw = string(s[1])
			e.Path, e.Lexical = joinBase(s[0], s[1]), wire.Kind(r.H.Kind) == wire.KindChroot
		}
	case wire.KindMemfd:
		e.Raw = string(s[1])
	case wire.KindCapset:
		e.Detail = fmt.Sprintf("effective=%#x permitted=%#x inheritable=%#x", r.A[0], r.A[1], r.A[2])
	}
}

// splitArgv splits a NUL-separated argument area.
func splitArgv(b []byte) []string {
	b = bytes.TrimRight(b, "\x00")
	if len(b) == 0 {
		return nil
	}
	parts := bytes.Split(b, []byte{0})
	out := make([]string, len(parts))
	for i, p := range parts {
		out[i] = string(p)
	}
	return out
}

// denyReason says which containment policy refused an egress.
func denyReason(flags uint64) string {
	switch {
	case flags&wire.CgIndicator != 0:
		return "fleet indicator"
	case flags&wire.CgQuarantine != 0:
		return "quarantined"
	case flags&wire.CgAllowList != 0:
		return "outside the allow-list"
	case flags&wire.CgTainted != 0:
		return "tainted: read a sensitive file"
	}
	return "containment"
}
