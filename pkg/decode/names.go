package decode

import (
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// syscallNames names the syscalls the sensor decodes (x86_64 numbers).
var syscallNames = map[uint32]string{
	unix.SYS_READ: "read", unix.SYS_WRITE: "write", unix.SYS_PREAD64: "pread64",
	unix.SYS_PWRITE64: "pwrite64", unix.SYS_READV: "readv", unix.SYS_WRITEV: "writev",
	unix.SYS_PREADV: "preadv", unix.SYS_PWRITEV: "pwritev", unix.SYS_PREADV2: "preadv2",
	unix.SYS_PWRITEV2: "pwritev2", unix.SYS_RECVFROM: "recvfrom", unix.SYS_SENDTO: "sendto",
	unix.SYS_RECVMSG: "recvmsg", unix.SYS_SENDMSG: "sendmsg", unix.SYS_SENDFILE: "sendfile",
	unix.SYS_SPLICE: "splice", unix.SYS_TEE: "tee", unix.SYS_VMSPLICE: "vmsplice",
	unix.SYS_COPY_FILE_RANGE: "copy_file_range", unix.SYS_OPEN: "open", unix.SYS_OPENAT: "openat",
	unix.SYS_OPENAT2: "openat2", unix.SYS_CREAT: "creat", unix.SYS_UNLINK: "unlink",
	unix.SYS_UNLINKAT: "unlinkat", unix.SYS_RMDIR: "rmdir", unix.SYS_MKDIR: "mkdir",
	unix.SYS_MKDIRAT: "mkdirat", unix.SYS_RENAME: "rename", unix.SYS_RENAMEAT: "renameat",
	unix.SYS_RENAMEAT2: "renameat2", unix.SYS_LINK: "link", unix.SYS_LINKAT: "linkat",
	unix.SYS_SYMLINK: "symlink", unix.SYS_SYMLINKAT: "symlinkat", unix.SYS_CHMOD: "chmod",
	unix.SYS_FCHMOD: "fchmod", unix.SYS_FCHMODAT: "fchmodat", unix.SYS_FCHMODAT2: "fchmodat2",
	unix.SYS_CHOWN: "chown", unix.SYS_FCHOWN: "fchown", unix.SYS_LCHOWN: "lchown",
	unix.SYS_FCHOWNAT: "fchownat", unix.SYS_TRUNCATE: "truncate", unix.SYS_FTRUNCATE: "ftruncate",
	unix.SYS_CONNECT: "connect", unix.SYS_BIND: "bind", unix.SYS_LISTEN: "listen",
	unix.SYS_ACCEPT: "accept", unix.SYS_ACCEPT4: "accept4", unix.SYS_PTRACE: "ptrace",
	unix.SYS_MOUNT: "mount", unix.SYS_UMOUNT2: "umount2", unix.SYS_PIVOT_ROOT: "pivot_root",
	unix.SYS_UNSHARE: "unshare", unix.SYS_SETNS: "setns", unix.SYS_INIT_MODULE: "init_module",
	unix.SYS_FINIT_MODULE: "finit_module", unix.SYS_DELETE_MODULE: "delete_module",
	unix.SYS_BPF: "bpf", unix.SYS_MEMFD_CREATE: "memfd_create", unix.SYS_SETUID: "setuid",
	unix.SYS_SETGID: "setgid", unix.SYS_SETREUID: "setreuid", unix.SYS_SETREGID: "setregid",
	unix.SYS_SETRESUID: "setresuid", unix.SYS_SETRESGID: "setresgid", unix.SYS_SETFSUID: "setfsuid",
	unix.SYS_SETFSGID: "setfsgid", unix.SYS_CAPSET: "capset", unix.SYS_CHROOT: "chroot",
	unix.SYS_KEXEC_LOAD: "kexec_load", unix.SYS_KEXEC_FILE_LOAD: "kexec_file_load",
	unix.SYS_IO_URING_SETUP: "io_uring_setup", unix.SYS_PROCESS_VM_READV: "process_vm_readv",
	unix.SYS_PROCESS_VM_WRITEV: "process_vm_writev", unix.SYS_EXECVE: "execve",
	unix.SYS_EXECVEAT: "execveat",
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
	e := unix.Errno(-ret)
	if n := unix.ErrnoName(e); n != "" {
		return n
	}
	return "E" + strconv.FormatInt(-ret, 10)
}

type flagName struct {
	bit  uint64
	name string
}

var openFlags = []flagName{
	{unix.O_CREAT, "O_CREAT"}, {unix.O_EXCL, "O_EXCL"}, {unix.O_NOCTTY, "O_NOCTTY"},
	{unix.O_TRUNC, "O_TRUNC"}, {unix.O_APPEND, "O_APPEND"}, {unix.O_NONBLOCK, "O_NONBLOCK"},
	{unix.O_DSYNC, "O_DSYNC"}, {unix.O_DIRECT, "O_DIRECT"}, {unix.O_LARGEFILE, "O_LARGEFILE"},
	{unix.O_DIRECTORY, "O_DIRECTORY"}, {unix.O_NOFOLLOW, "O_NOFOLLOW"}, {unix.O_NOATIME, "O_NOATIME"},
	{unix.O_CLOEXEC, "O_CLOEXEC"}, {unix.O_PATH, "O_PATH"}, {unix.O_TMPFILE &^ unix.O_DIRECTORY, "O_TMPFILE"},
}

// OpenFlags renders open(2) flags as "O_RDONLY|O_CLOEXEC".
func OpenFlags(f uint64) string {
	var parts []string
	switch f & unix.O_ACCMODE {
	case unix.O_RDONLY:
		parts = append(parts, "O_RDONLY")
	case unix.O_WRONLY:
		parts = append(parts, "O_WRONLY")
	case unix.O_RDWR:
		parts = append(parts, "O_RDWR")
	}
	parts = appendFlags(parts, f&^unix.O_ACCMODE, openFlags)
	return strings.Join(parts, "|")
}

// OpenWrites says whether open flags ask to modify the file.
func OpenWrites(f uint64) bool {
	return f&unix.O_ACCMODE != unix.O_RDONLY || f&(unix.O_CREAT|unix.O_TRUNC|unix.O_APPEND) != 0
}

// OpenAccess is "r", "w" or "rw".
func OpenAccess(f uint64) string {
	switch f & unix.O_ACCMODE {
	case unix.O_WRONLY:
		return "w"
	case unix.O_RDWR:
		return "rw"
	}
	return "r"
}

var cloneFlags = []flagName{
	{unix.CLONE_NEWNS, "CLONE_NEWNS"}, {unix.CLONE_NEWUTS, "CLONE_NEWUTS"},
	{unix.CLONE_NEWIPC, "CLONE_NEWIPC"}, {unix.CLONE_NEWUSER, "CLONE_NEWUSER"},
	{unix.CLONE_NEWPID, "CLONE_NEWPID"}, {unix.CLONE_NEWNET, "CLONE_NEWNET"},
	{unix.CLONE_NEWCGROUP, "CLONE_NEWCGROUP"}, {unix.CLONE_NEWTIME, "CLONE_NEWTIME"},
	{unix.CLONE_FILES, "CLONE_FILES"}, {unix.CLONE_FS, "CLONE_FS"}, {unix.CLONE_SYSVSEM, "CLONE_SYSVSEM"},
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
	unix.PTRACE_TRACEME: "PTRACE_TRACEME", unix.PTRACE_PEEKTEXT: "PTRACE_PEEKTEXT",
	unix.PTRACE_PEEKDATA: "PTRACE_PEEKDATA", unix.PTRACE_POKETEXT: "PTRACE_POKETEXT",
	unix.PTRACE_POKEDATA: "PTRACE_POKEDATA", unix.PTRACE_CONT: "PTRACE_CONT",
	unix.PTRACE_KILL: "PTRACE_KILL", unix.PTRACE_ATTACH: "PTRACE_ATTACH",
	unix.PTRACE_DETACH: "PTRACE_DETACH", unix.PTRACE_SEIZE: "PTRACE_SEIZE",
	unix.PTRACE_GETREGS: "PTRACE_GETREGS", unix.PTRACE_SETREGS: "PTRACE_SETREGS",
	unix.PTRACE_INTERRUPT: "PTRACE_INTERRUPT",
}

// PtraceRequest names a ptrace request.
func PtraceRequest(r uint64) string {
	if n, ok := ptraceRequests[r]; ok {
		return n
	}
	return "PTRACE_" + strconv.FormatUint(r, 10)
}

var sockTypes = map[uint64]string{
	unix.SOCK_STREAM: "stream", unix.SOCK_DGRAM: "dgram", unix.SOCK_RAW: "raw",
	unix.SOCK_SEQPACKET: "seqpacket",
}

// SocketKind is "tcp", "udp", "unix-stream", "raw"...
func SocketKind(family, typ, proto uint64) string {
	t := sockTypes[typ&0xf]
	if t == "" {
		t = "type" + strconv.FormatUint(typ, 10)
	}
	switch family {
	case unix.AF_INET, unix.AF_INET6:
		switch {
		case typ&0xf == unix.SOCK_STREAM && (proto == unix.IPPROTO_TCP || proto == 0):
			return "tcp"
		case typ&0xf == unix.SOCK_DGRAM && (proto == unix.IPPROTO_UDP || proto == 0):
			return "udp"
		}
		return t
	case unix.AF_UNIX:
		return "unix-" + t
	case unix.AF_NETLINK:
		return "netlink"
	}
	return "family" + strconv.FormatUint(family, 10) + "-" + t
}
