package contain

import (
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"unsafe"

	seccomp "github.com/elastic/go-seccomp-bpf"
	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"
)

// EscapeSyscalls are refused (EPERM) to every server `sensor run` launches:
// calls that break out of or inspect a sandbox, load kernel code, or do I/O
// the sensor cannot see.
var EscapeSyscalls = []string{
	"ptrace", "process_vm_readv", "process_vm_writev",
	"mount", "umount2", "pivot_root", "chroot", "open_tree", "move_mount", "fsopen", "fsconfig", "fsmount", "fspick", "mount_setattr",
	"unshare", "setns",
	"init_module", "finit_module", "delete_module",
	"bpf", "perf_event_open", "kexec_load", "kexec_file_load",
	"keyctl", "add_key", "request_key",
	"io_uring_setup", "io_uring_enter", "io_uring_register",
	"open_by_handle_at", "name_to_handle_at", "userfaultfd", "swapon", "swapoff", "reboot",
}

// SupervisedSyscalls go to the supervisor, which can refuse them at run time.
var SupervisedSyscalls = []string{"execve", "execveat", "connect"}

// InstallFilters is run by the launch helper, on the thread that will
// exec: no_new_privs, the baseline filter, then the user-notification
// filter, whose listener fd it returns. With supervise false only the
// baseline is installed.
func InstallFilters(supervise bool) (int, error) {
	if err := seccomp.SetNoNewPrivs(); err != nil {
		return -1, err
	}
	// the policies below speak x86-64: a 32-bit (int 0x80) or x32 call
	// would bypass them, so those are refused outright first
	if err := loadRaw(nativeOnly(), 0); err != nil {
		return -1, fmt.Errorf("native-ABI seccomp filter: %w", err)
	}
	base := seccomp.Filter{NoNewPrivs: true, Policy: seccomp.Policy{
		DefaultAction: seccomp.ActionAllow,
		Syscalls: []seccomp.SyscallGroup{
			{Names: EscapeSyscalls, Action: seccomp.ActionErrno},
			// packet sockets see and forge traffic below the egress hooks
			{NamesWithCondtions: []seccomp.NameWithConditions{{Name: "socket", Conditions: seccomp.ArgumentConditions{
				{Argument: 0, Operation: seccomp.Equal, Value: unix.AF_PACKET}}}}, Action: seccomp.ActionErrno},
		},
	}}
	if err := seccomp.LoadFilter(base); err != nil {
		return -1, fmt.Errorf("baseline seccomp filter: %w", err)
	}
	if !supervise {
		return -1, nil
	}
	pol := seccomp.Policy{
		DefaultAction: seccomp.ActionAllow,
		Syscalls:      []seccomp.SyscallGroup{{Names: SupervisedSyscalls, Action: seccomp.ActionUserNotify}},
	}
	insts, err := pol.Assemble()
	if err != nil {
		return -1, err
	}
	fd, err := loadRawFD(insts, unix.SECCOMP_FILTER_FLAG_NEW_LISTENER)
	if err != nil {
		return -1, fmt.Errorf("user-notification seccomp filter: %w", err)
	}
	return fd, nil
}

// nativeOnly refuses (EPERM) every syscall that is not x86-64's own ABI.
func nativeOnly() []bpf.Instruction {
	const errnoEPERM = unix.SECCOMP_RET_ERRNO | uint32(unix.EPERM)
	return []bpf.Instruction{
		bpf.LoadAbsolute{Off: 4, Size: 4}, // seccomp_data.arch
		bpf.JumpIf{Cond: bpf.JumpEqual, Val: unix.AUDIT_ARCH_X86_64, SkipTrue: 1},
		bpf.RetConstant{Val: errnoEPERM},
		bpf.LoadAbsolute{Off: 0, Size: 4},                                       // seccomp_data.nr
		bpf.JumpIf{Cond: bpf.JumpGreaterOrEqual, Val: 0x40000000, SkipFalse: 1}, // __X32_SYSCALL_BIT
		bpf.RetConstant{Val: errnoEPERM},
		bpf.RetConstant{Val: unix.SECCOMP_RET_ALLOW},
	}
}

func loadRaw(insts []bpf.Instruction, flags uintptr) error {
	_, err := loadRawFD(insts, flags)
	return err
}

// loadRawFD installs a filter with the given flags; with NEW_LISTENER it
// returns the listener's fd.
func loadRawFD(insts []bpf.Instruction, flags uintptr) (int, error) {
	raw, err := bpf.Assemble(insts)
	if err != nil {
		return -1, err
	}
	filt := make([]unix.SockFilter, len(raw))
	for i, r := range raw {
		filt[i] = unix.SockFilter{Code: r.Op, Jt: r.Jt, Jf: r.Jf, K: r.K}
	}
	prog := unix.SockFprog{Len: uint16(len(filt)), Filter: &filt[0]}
	fd, _, errno := unix.Syscall(unix.SYS_SECCOMP, unix.SECCOMP_SET_MODE_FILTER, flags, uintptr(unsafe.Pointer(&prog)))
	if errno != 0 {
		return -1, errno
	}
	return int(fd), nil
}

// SendFD passes fd over a unix socket.
func SendFD(sock *os.File, fd int) error {
	return unix.Sendmsg(int(sock.Fd()), []byte{0}, unix.UnixRights(fd), nil, 0)
}

// RecvFD receives a file descriptor sent with SendFD.
func RecvFD(sock *os.File) (int, error) {
	buf := make([]byte, 1)
	oob := make([]byte, unix.CmsgSpace(4))
	_, oobn, _, _, err := unix.Recvmsg(int(sock.Fd()), buf, oob, unix.MSG_CMSG_CLOEXEC)
	if err != nil {
		return -1, err
	}
	msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
	if err != nil || len(msgs) == 0 {
		return -1, errors.New("no file descriptor received (the launch helper failed; see its error)")
	}
	fds, err := unix.ParseUnixRights(&msgs[0])
	if err != nil || len(fds) == 0 {
		return -1, errors.New("no file descriptor in the message")
	}
	return fds[0], nil
}

// seccompNotif and seccompNotifResp are struct seccomp_notif and
// seccomp_notif_resp (uapi/linux/seccomp.h).
type seccompNotif struct {
	ID    uint64
	PID   uint32
	Flags uint32
	Nr    int32
	Arch  uint32
	IP    uint64
	Args  [6]uint64
}

type seccompNotifResp struct {
	ID    uint64
	Val   int64
	Error int32
	Flags uint32
}

// Supervisor answers the launched server's execs and connects: it lets
// them through until told to tighten, then refuses them with EPERM. If the
// supervisor dies, notified syscalls fail: that is fail-closed.
type Supervisor struct {
	fd        int
	launched  atomic.Bool // the helper's exec of the server went through
	execs     atomic.Bool // refuse execs
	connects  atomic.Bool // refuse connects
	Refused   atomic.Uint64
	Allowed   atomic.Uint64
	OnRefused func(pid uint32, syscall string)
	once      sync.Once
}

// NewSupervisor serves the listener fd until it is closed.
func NewSupervisor(fd int) *Supervisor {
	s := &Supervisor{fd: fd}
	go s.serve()
	return s
}

// Tighten refuses, from now on, the launched server's execs (and connects).
func (s *Supervisor) Tighten(execs, connects bool) {
	if execs {
		s.execs.Store(true)
	}
	if connects {
		s.connects.Store(true)
	}
}

// Tightened says what is refused.
func (s *Supervisor) Tightened() (execs, connects bool) { return s.execs.Load(), s.connects.Load() }

// Close stops serving.
func (s *Supervisor) Close() error {
	var err error
	s.once.Do(func() { err = unix.Close(s.fd) })
	return err
}

func (s *Supervisor) serve() {
	for {
		var n seccompNotif
		_, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(s.fd), unix.SECCOMP_IOCTL_NOTIF_RECV, uintptr(unsafe.Pointer(&n)))
		if errno == syscall.EINTR || errno == syscall.ENOENT {
			continue
		}
		if errno != 0 {
			return // closed, or the filtered processes are gone
		}
		resp := seccompNotifResp{ID: n.ID, Flags: unix.SECCOMP_USER_NOTIF_FLAG_CONTINUE}
		name := "connect"
		refuse := false
		switch n.Nr {
		case unix.SYS_EXECVE, unix.SYS_EXECVEAT:
			name = "exec"
			// the first exec is the launch of the server itself
			refuse = s.launched.Load() && s.execs.Load()
			s.launched.Store(true)
		case unix.SYS_CONNECT:
			refuse = s.connects.Load()
		}
		if refuse {
			resp.Flags = 0
			resp.Error = -int32(unix.EPERM)
			s.Refused.Add(1)
			if s.OnRefused != nil {
				s.OnRefused(n.PID, name)
			}
		} else {
			s.Allowed.Add(1)
		}
		unix.Syscall(unix.SYS_IOCTL, uintptr(s.fd), unix.SECCOMP_IOCTL_NOTIF_SEND, uintptr(unsafe.Pointer(&resp)))
	}
}

// NativeOnly installs, on the calling thread and what it execs, a filter
// that refuses every syscall not made through x86-64's own ABI (systemd's
// SystemCallArchitectures=native).
func NativeOnly() error { return loadRaw(nativeOnly(), 0) }
