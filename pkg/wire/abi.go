// Code generated from golang.org/x/sys/unix on linux/amd64; DO NOT EDIT.
// abi_test.go checks it against that package.

package wire

// The Linux x86_64 ABI values the records carry: syscall numbers, flags,
// address families, errno names. They describe the kernel that wrote the
// records, not the host that reads them.
const (
	AF_INET               = 2
	AF_INET6              = 10
	AF_NETLINK            = 16
	AF_UNIX               = 1
	AF_UNSPEC             = 0
	CLONE_FILES           = 1024
	CLONE_FS              = 512
	CLONE_NEWCGROUP       = 33554432
	CLONE_NEWIPC          = 134217728
	CLONE_NEWNET          = 1073741824
	CLONE_NEWNS           = 131072
	CLONE_NEWPID          = 536870912
	CLONE_NEWTIME         = 128
	CLONE_NEWUSER         = 268435456
	CLONE_NEWUTS          = 67108864
	CLONE_SYSVSEM         = 262144
	IPPROTO_TCP           = 6
	IPPROTO_UDP           = 17
	O_ACCMODE             = 3
	O_APPEND              = 1024
	O_CLOEXEC             = 524288
	O_CREAT               = 64
	O_DIRECT              = 16384
	O_DIRECTORY           = 65536
	O_DSYNC               = 4096
	O_EXCL                = 128
	O_LARGEFILE           = 0
	O_NOATIME             = 262144
	O_NOCTTY              = 256
	O_NOFOLLOW            = 131072
	O_NONBLOCK            = 2048
	O_PATH                = 2097152
	O_RDONLY              = 0
	O_RDWR                = 2
	O_TMPFILE             = 4259840
	O_TRUNC               = 512
	O_WRONLY              = 1
	PTRACE_ATTACH         = 16
	PTRACE_CONT           = 7
	PTRACE_DETACH         = 17
	PTRACE_GETREGS        = 12
	PTRACE_INTERRUPT      = 16903
	PTRACE_KILL           = 8
	PTRACE_PEEKDATA       = 2
	PTRACE_PEEKTEXT       = 1
	PTRACE_POKEDATA       = 5
	PTRACE_POKETEXT       = 4
	PTRACE_SEIZE          = 16902
	PTRACE_SETREGS        = 13
	PTRACE_TRACEME        = 0
	SOCK_DGRAM            = 2
	SOCK_RAW              = 3
	SOCK_SEQPACKET        = 5
	SOCK_STREAM           = 1
	SYS_ACCEPT            = 43
	SYS_ACCEPT4           = 288
	SYS_BIND              = 49
	SYS_BPF               = 321
	SYS_CAPSET            = 126
	SYS_CHMOD             = 90
	SYS_CHOWN             = 92
	SYS_CHROOT            = 161
	SYS_CLONE             = 56
	SYS_CLONE3            = 435
	SYS_CONNECT           = 42
	SYS_COPY_FILE_RANGE   = 326
	SYS_CREAT             = 85
	SYS_DELETE_MODULE     = 176
	SYS_EXECVE            = 59
	SYS_EXECVEAT          = 322
	SYS_FCHMOD            = 91
	SYS_FCHMODAT          = 268
	SYS_FCHMODAT2         = 452
	SYS_FCHOWN            = 93
	SYS_FCHOWNAT          = 260
	SYS_FINIT_MODULE      = 313
	SYS_FSOPEN            = 430
	SYS_FSPICK            = 433
	SYS_FTRUNCATE         = 77
	SYS_INIT_MODULE       = 175
	SYS_IO_URING_SETUP    = 425
	SYS_KEXEC_FILE_LOAD   = 320
	SYS_KEXEC_LOAD        = 246
	SYS_LCHOWN            = 94
	SYS_LINK              = 86
	SYS_LINKAT            = 265
	SYS_LISTEN            = 50
	SYS_MEMFD_CREATE      = 319
	SYS_MKDIR             = 83
	SYS_MKDIRAT           = 258
	SYS_MOUNT             = 165
	SYS_MOUNT_SETATTR     = 442
	SYS_OPEN              = 2
	SYS_OPENAT            = 257
	SYS_OPENAT2           = 437
	SYS_OPEN_TREE         = 428
	SYS_PIVOT_ROOT        = 155
	SYS_PREAD64           = 17
	SYS_PREADV            = 295
	SYS_PREADV2           = 327
	SYS_PROCESS_VM_READV  = 310
	SYS_PROCESS_VM_WRITEV = 311
	SYS_PTRACE            = 101
	SYS_PWRITE64          = 18
	SYS_PWRITEV           = 296
	SYS_PWRITEV2          = 328
	SYS_READ              = 0
	SYS_READV             = 19
	SYS_RECVFROM          = 45
	SYS_RECVMSG           = 47
	SYS_RENAME            = 82
	SYS_RENAMEAT          = 264
	SYS_RENAMEAT2         = 316
	SYS_RMDIR             = 84
	SYS_SENDFILE          = 40
	SYS_SENDMSG           = 46
	SYS_SENDTO            = 44
	SYS_SETFSGID          = 123
	SYS_SETFSUID          = 122
	SYS_SETGID            = 106
	SYS_SETNS             = 308
	SYS_SETREGID          = 114
	SYS_SETRESGID         = 119
	SYS_SETRESUID         = 117
	SYS_SETREUID          = 113
	SYS_SETUID            = 105
	SYS_SPLICE            = 275
	SYS_SYMLINK           = 88
	SYS_SYMLINKAT         = 266
	SYS_TEE               = 276
	SYS_TRUNCATE          = 76
	SYS_UMOUNT2           = 166
	SYS_UNLINK            = 87
	SYS_UNLINKAT          = 263
	SYS_UNSHARE           = 272
	SYS_VMSPLICE          = 278
	SYS_WRITE             = 1
	SYS_WRITEV            = 20
)

// ErrnoNames names the errno values of Linux x86_64.
var ErrnoNames = map[int64]string{
	1:   "EPERM",
	2:   "ENOENT",
	3:   "ESRCH",
	4:   "EINTR",
	5:   "EIO",
	6:   "ENXIO",
	7:   "E2BIG",
	8:   "ENOEXEC",
	9:   "EBADF",
	10:  "ECHILD",
	11:  "EAGAIN",
	12:  "ENOMEM",
	13:  "EACCES",
	14:  "EFAULT",
	15:  "ENOTBLK",
	16:  "EBUSY",
	17:  "EEXIST",
	18:  "EXDEV",
	19:  "ENODEV",
	20:  "ENOTDIR",
	21:  "EISDIR",
	22:  "EINVAL",
	23:  "ENFILE",
	24:  "EMFILE",
	25:  "ENOTTY",
	26:  "ETXTBSY",
	27:  "EFBIG",
	28:  "ENOSPC",
	29:  "ESPIPE",
	30:  "EROFS",
	31:  "EMLINK",
	32:  "EPIPE",
	33:  "EDOM",
	34:  "ERANGE",
	35:  "EDEADLK",
	36:  "ENAMETOOLONG",
	37:  "ENOLCK",
	38:  "ENOSYS",
	39:  "ENOTEMPTY",
	40:  "ELOOP",
	42:  "ENOMSG",
	43:  "EIDRM",
	44:  "ECHRNG",
	45:  "EL2NSYNC",
	46:  "EL3HLT",
	47:  "EL3RST",
	48:  "ELNRNG",
	49:  "EUNATCH",
	50:  "ENOCSI",
	51:  "EL2HLT",
	52:  "EBADE",
	53:  "EBADR",
	54:  "EXFULL",
	55:  "ENOANO",
	56:  "EBADRQC",
	57:  "EBADSLT",
	59:  "EBFONT",
	60:  "ENOSTR",
	61:  "ENODATA",
	62:  "ETIME",
	63:  "ENOSR",
	64:  "ENONET",
	65:  "ENOPKG",
	66:  "EREMOTE",
	67:  "ENOLINK",
	68:  "EADV",
	69:  "ESRMNT",
	70:  "ECOMM",
	71:  "EPROTO",
	72:  "EMULTIHOP",
	73:  "EDOTDOT",
	74:  "EBADMSG",
	75:  "EOVERFLOW",
	76:  "ENOTUNIQ",
	77:  "EBADFD",
	78:  "EREMCHG",
	79:  "ELIBACC",
	80:  "ELIBBAD",
	81:  "ELIBSCN",
	82:  "ELIBMAX",
	83:  "ELIBEXEC",
	84:  "EILSEQ",
	85:  "ERESTART",
	86:  "ESTRPIPE",
	87:  "EUSERS",
	88:  "ENOTSOCK",
	89:  "EDESTADDRREQ",
	90:  "EMSGSIZE",
	91:  "EPROTOTYPE",
	92:  "ENOPROTOOPT",
	93:  "EPROTONOSUPPORT",
	94:  "ESOCKTNOSUPPORT",
	95:  "ENOTSUP",
	96:  "EPFNOSUPPORT",
	97:  "EAFNOSUPPORT",
	98:  "EADDRINUSE",
	99:  "EADDRNOTAVAIL",
	100: "ENETDOWN",
	101: "ENETUNREACH",
	102: "ENETRESET",
	103: "ECONNABORTED",
	104: "ECONNRESET",
	105: "ENOBUFS",
	106: "EISCONN",
	107: "ENOTCONN",
	108: "ESHUTDOWN",
	109: "ETOOMANYREFS",
	110: "ETIMEDOUT",
	111: "ECONNREFUSED",
	112: "EHOSTDOWN",
	113: "EHOSTUNREACH",
	114: "EALREADY",
	115: "EINPROGRESS",
	116: "ESTALE",
	117: "EFSCORRUPTED",
	118: "ENOTNAM",
	119: "ENAVAIL",
	120: "EISNAM",
	121: "EREMOTEIO",
	122: "EDQUOT",
	123: "ENOMEDIUM",
	124: "EMEDIUMTYPE",
	125: "ECANCELED",
	126: "ENOKEY",
	127: "EKEYEXPIRED",
	128: "EKEYREVOKED",
	129: "EKEYREJECTED",
	130: "EOWNERDEAD",
	131: "ENOTRECOVERABLE",
	132: "ERFKILL",
	133: "EHWPOISON",
}
