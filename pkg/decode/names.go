package decode

import (
	"strconv"
	"strings"

	"github.com/mcpsec/sensor/pkg/wire"
)

// syscallNames names the syscalls the sensor decodes (x86_64 numbers).
var syscallNames = map[uint32]string{
	wire.SYS_READ: "read", wire.SYS_WRITE: "write", wire.SYS_PREAD64: "pread64",
	wire.SYS_PWRITE64: "pwrite64", wire.SYS_READV: "readv", wire.SYS_WRITEV: "writev",
	wire.SYS_PREADV: "preadv", wire.SYS_PWRITEV: "pwritev", wire.SYS_PREADV2: "preadv2",
	wire.SYS_PWRITEV2: "pwritev2", wire.SYS_RECVFROM: "recvfrom", wire.SYS_SENDTO: "sendto",
	wire.SYS_RECVMSG: "recvmsg", wire.SYS_SENDMSG: "sendmsg", wire.SYS_SENDFILE: "sendfile",
	wire.SYS_SPLICE: "splice", wire.SYS_TEE: "tee", wire.SYS_VMSPLICE: "vmsplice",
	wire.SYS_COPY_FILE_RANGE: "copy_file_range", wire.SYS_OPEN: "open", wire.SYS_OPENAT: "openat",
	wire.SYS_OPENAT2: "openat2", wire.SYS_CREAT: "creat", wire.SYS_UNLINK: "unlink",
	wire.SYS_UNLINKAT: "unlinkat", wire.SYS_RMDIR: "rmdir", wire.SYS_MKDIR: "mkdir",
	wire.SYS_MKDIRAT: "mkdirat", wire.SYS_RENAME: "rename", wire.SYS_RENAMEAT: "renameat",
	wire.SYS_RENAMEAT2: "renameat2", wire.SYS_LINK: "link", wire.SYS_LINKAT: "linkat",
	wire.SYS_SYMLINK: "symlink", wire.SYS_SYMLINKAT: "symlinkat", wire.SYS_CHMOD: "chmod",
	wire.SYS_FCHMOD: "fchmod", wire.SYS_FCHMODAT: "fchmodat", wire.SYS_FCHMODAT2: "fchmodat2",
	wire.SYS_CHOWN: "chown", wire.SYS_FCHOWN: "fchown", wire.SYS_LCHOWN: "lchown",
	wire.SYS_FCHOWNAT: "fchownat", wire.SYS_TRUNCATE: "truncate", wire.SYS_FTRUNCATE: "ftruncate",
	wire.SYS_CONNECT: "connect", wire.SYS_BIND: "bind", wire.SYS_LISTEN: "listen",
	wire.SYS_ACCEPT: "accept", wire.SYS_ACCEPT4: "accept4", wire.SYS_PTRACE: "ptrace",
	wire.SYS_MOUNT: "mount", wire.SYS_UMOUNT2: "umount2", wire.SYS_PIVOT_ROOT: "pivot_root",
	wire.SYS_UNSHARE: "unshare", wire.SYS_SETNS: "setns", wire.SYS_INIT_MODULE: "init_module",
	wire.SYS_FINIT_MODULE: "finit_module", wire.SYS_DELETE_MODULE: "delete_module",
	wire.SYS_BPF: "bpf", wire.SYS_MEMFD_CREATE: "memfd_create", wire.SYS_SETUID: "setuid",
	wire.SYS_SETGID: "setgid", wire.SYS_SETREUID: "setreuid", wire.SYS_SETREGID: "setregid",
	wire.SYS_SETRESUID: "setresuid", wire.SYS_SETRESGID: "setresgid", wire.SYS_SETFSUID: "setfsuid",
	wire.SYS_SETFSGID: "setfsgid", wire.SYS_CAPSET: "capset", wire.SYS_CHROOT: "chroot",
	wire.SYS_KEXEC_LOAD: "kexec_load", wire.SYS_KEXEC_FILE_LOAD: "kexec_file_load",
	wire.SYS_IO_URING_SETUP: "io_uring_setup", wire.SYS_PROCESS_VM_READV: "process_vm_readv",
	wire.SYS_PROCESS_VM_WRITEV: "process_vm_writev", wire.SYS_EXECVE: "execve",
	wire.SYS_EXECVEAT: "execveat",
}

// SyscallName names an x86_64 syscall number, or gives it as "syscall_N".
func SyscallName(nr uint32) string {
	if n, ok := syscallNames[nr]; ok {
		return n
	}
	return "syscall_" + strconv.FormatUint(uint64(nr), 10)
}

// ErrnoName turns a negative syscall result into its errno name ("ENOENT").
func ErrnoName(ret int64) string {
	if ret >= 0 {
		return ""
	}
	if n := wire.ErrnoNames[-ret]; n != "" {
		return n
	}
	return "E" + strconv.FormatInt(-ret, 10)
}

type flagName struct {
	bit  uint64
	name string
}

var openFlags = []flagName{
	{wire.O_CREAT, "O_CREAT"}, {wire.O_EXCL, "O_EXCL"}, {wire.O_NOCTTY, "O_NOCTTY"},
	{wire.O_TRUNC, "O_TRUNC"}, {wire.O_APPEND, "O_APPEND"}, {wire.O_NONBLOCK, "O_NONBLOCK"},
	{wire.O_DSYNC, "O_DSYNC"}, {wire.O_DIRECT, "O_DIRECT"}, {wire.O_LARGEFILE, "O_LARGEFILE"},
	{wire.O_DIRECTORY, "O_DIRECTORY"}, {wire.O_NOFOLLOW, "O_NOFOLLOW"}, {wire.O_NOATIME, "O_NOATIME"},
	{wire.O_CLOEXEC, "O_CLOEXEC"}, {wire.O_PATH, "O_PATH"}, {wire.O_TMPFILE &^ wire.O_DIRECTORY, "O_TMPFILE"},
}

// OpenFlags renders open(2) flags as "O_RDONLY|O_CLOEXEC".
func OpenFlags(f uint64) string {
	var parts []string
	switch f & wire.O_ACCMODE {
	case wire.O_RDONLY:
		parts = append(parts, "O_RDONLY")
	case wire.O_WRONLY:
		parts = append(parts, "O_WRONLY")
	case wire.O_RDWR:
		parts = append(parts, "O_RDWR")
	}
	parts = appendFlags(parts, f&^wire.O_ACCMODE, openFlags)
	return strings.Join(parts, "|")
}

// OpenWrites says whether open flags ask to modify the file.
func OpenWrites(f uint64) bool {
	return f&wire.O_ACCMODE != wire.O_RDONLY || f&(wire.O_CREAT|wire.O_TRUNC|wire.O_APPEND) != 0
}

// OpenAccess is "r", "w" or "rw".
func OpenAccess(f uint64) string {
	switch f & wire.O_ACCMODE {
	case wire.O_WRONLY:
		return "w"
	case wire.O_RDWR:
		return "rw"
	}
	return "r"
}

var cloneFlags = []flagName{
	{wire.CLONE_NEWNS, "CLONE_NEWNS"}, {wire.CLONE_NEWUTS, "CLONE_NEWUTS"},
	{wire.CLONE_NEWIPC, "CLONE_NEWIPC"}, {wire.CLONE_NEWUSER, "CLONE_NEWUSER"},
	{wire.CLONE_NEWPID, "CLONE_NEWPID"}, {wire.CLONE_NEWNET, "CLONE_NEWNET"},
	{wire.CLONE_NEWCGROUP, "CLONE_NEWCGROUP"}, {wire.CLONE_NEWTIME, "CLONE_NEWTIME"},
	{wire.CLONE_FILES, "CLONE_FILES"}, {wire.CLONE_FS, "CLONE_FS"}, {wire.CLONE_SYSVSEM, "CLONE_SYSVSEM"},
}

// CloneFlags renders namespace flags of unshare/setns.
func CloneFlags(f uint64) string {
	return strings.Join(appendFlags(nil, f, cloneFlags), "|")
}

func appendFlags(parts []string, f uint64, names []flagName) []string {
	for _, n := range names {
		if f&n.bit == n.bit && n.bit != 0 {
			parts = append(parts, n.name)
			f &^= n.bit
		}
	}
	if f != 0 {
		parts = append(parts, "0x"+strconv.FormatUint(f, 16))
	}
	return parts
}

var ptraceRequests = map[uint64]string{
	wire.PTRACE_TRACEME: "PTRACE_TRACEME", wire.PTRACE_PEEKTEXT: "PTRACE_PEEKTEXT",
	wire.PTRACE_PEEKDATA: "PTRACE_PEEKDATA", wire.PTRACE_POKETEXT: "PTRACE_POKETEXT",
	wire.PTRACE_POKEDATA: "PTRACE_POKEDATA", wire.PTRACE_CONT: "PTRACE_CONT",
	wire.PTRACE_KILL: "PTRACE_KILL", wire.PTRACE_ATTACH: "PTRACE_ATTACH",
	wire.PTRACE_DETACH: "PTRACE_DETACH", wire.PTRACE_SEIZE: "PTRACE_SEIZE",
	wire.PTRACE_GETREGS: "PTRACE_GETREGS", wire.PTRACE_SETREGS: "PTRACE_SETREGS",
	wire.PTRACE_INTERRUPT: "PTRACE_INTERRUPT",
}

// PtraceRequest names a ptrace request.
func PtraceRequest(r uint64) string {
	if n, ok := ptraceRequests[r]; ok {
		return n
	}
	return "PTRACE_" + strconv.FormatUint(r, 10)
}

var sockTypes = map[uint64]string{
	wire.SOCK_STREAM: "stream", wire.SOCK_DGRAM: "dgram", wire.SOCK_RAW: "raw",
	wire.SOCK_SEQPACKET: "seqpacket",
}

// SocketKind is "tcp", "udp", "unix-stream", "raw"...
func SocketKind(family, typ, proto uint64) string {
	t := sockTypes[typ&0xf]
	if t == "" {
		t = "type" + strconv.FormatUint(typ, 10)
	}
	switch family {
	case wire.AF_INET, wire.AF_INET6:
		switch {
		case typ&0xf == wire.SOCK_STREAM && (proto == wire.IPPROTO_TCP || proto == 0):
			return "tcp"
		case typ&0xf == wire.SOCK_DGRAM && (proto == wire.IPPROTO_UDP || proto == 0):
			return "udp"
		}
		return t
	case wire.AF_UNIX:
		return "unix-" + t
	case wire.AF_NETLINK:
		return "netlink"
	}
	return "family" + strconv.FormatUint(family, 10) + "-" + t
}
