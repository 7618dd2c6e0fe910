// Package wire is the layout of the records the sensor's eBPF programs
// write to their ring buffers (bpf/common.h), in plain Go: the decoder and
// everything after it depend on it, not on the eBPF package, so they build
// and test on any OS. pkg/loader checks in a test that these types match the
// ones bpf2go generates, field by field.
package wire

// Header starts every record (struct rec_hdr).
type Header struct {
	Class       uint8
	Kind        uint8
	Flags       uint16
	Nr          uint32
	Ts          uint64 // CLOCK_BOOTTIME ns
	Tgid        uint32
	Tid         uint32
	Ppid        uint32
	Server      uint32
	Start       uint64
	ServerStart uint64
	Cgroup      uint64
	Ret         int64
	Comm        [16]int8
}

// EffectFixed is the fixed part of an effect (struct effect_fixed); its
// string slots follow it, slot i being Slen[i] bytes.
type EffectFixed struct {
	H     Header
	A     [6]uint64
	Ino   uint64
	Dev   uint32
	Imode uint32
	Slen  [4]uint16
}

// ChunkHeader starts a payload record (struct chunk_hdr).
type ChunkHeader struct {
	H       Header
	Ino     uint64
	Off     uint64
	Len     uint32
	Skipped uint32
	Fd      uint32
	Dir     uint8
	Ftype   uint8
	Cflags  uint16
}

// Kind is what an effect record describes (enum effect_kind).
type Kind uint32

// Effect kinds.
const (
	KindExec Kind = iota + 1
	KindExecFail
	KindFork
	KindExit
	KindDiscover
	KindOpen
	KindUnlink
	KindRmdir
	KindMkdir
	KindRename
	KindLink
	KindSymlink
	KindChmod
	KindChown
	KindTruncate
	KindConnect
	KindBind
	KindListen
	KindAccept
	KindSendto
	KindPtrace
	KindMount
	KindUmount
	KindUnshare
	KindSetns
	KindModule
	KindBpf
	KindMemfd
	KindSetuid
	KindCapset
	KindChroot
	KindKexec
	KindIoUring
	KindProcessVm
	KindBypass
	KindMmapExec
	KindEgressDenied
)

// Record classes (enum rec_class).
const (
	ClassEffect = uint8(1)
	ClassChunk  = uint8(2)
)

// Header flags (enum rec_flags).
const (
	FlagTruncS0  = uint16(1 << 0)
	FlagFault    = uint16(1 << 4)
	FlagOverflow = uint16(1 << 5)
)

// Chunk flags (enum chunk_flags).
const (
	ChunkFirst    = uint16(1 << 0)
	ChunkLast     = uint16(1 << 1)
	ChunkCap      = uint16(1 << 2)
	ChunkFault    = uint16(1 << 3)
	ChunkBypass   = uint16(1 << 4)
	ChunkAttached = uint16(1 << 5)
)

// Stream file types (enum ftype).
const (
	FilePipe = uint8(1)
	FileSock = uint8(2)
	FileTLS  = uint8(3)
)

// Chunk directions.
const (
	DirIn  = 0 // read by the server
	DirOut = 1 // written by the server
)

// Containment flags of a cgroup's policy (enum cg_flags in bpf/contain.h),
// as they come back in an egress refusal.
const (
	CgQuarantine = uint64(1 << 0) // deny all egress
	CgAllowList  = uint64(1 << 1) // egress only to the allow-list
	CgTaintDeny  = uint64(1 << 2) // once tainted, only to the allow-list
	CgTainted    = uint64(1 << 3) // a process read a sensitive file
	CgKillOnExec = uint64(1 << 4) // SIGKILL at exec
	CgStopOnExec = uint64(1 << 5) // SIGSTOP at exec
	CgIndicator  = uint64(1 << 6) // in a refusal: a fleet indicator named the destination
)
