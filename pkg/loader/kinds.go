package loader

// Effect kinds, from enum effect_kind in bpf/common.h.
const (
	KindExec         = sensorEffectKindK_EXEC
	KindExecFail     = sensorEffectKindK_EXEC_FAIL
	KindFork         = sensorEffectKindK_FORK
	KindExit         = sensorEffectKindK_EXIT
	KindDiscover     = sensorEffectKindK_DISCOVER
	KindOpen         = sensorEffectKindK_OPEN
	KindUnlink       = sensorEffectKindK_UNLINK
	KindRmdir        = sensorEffectKindK_RMDIR
	KindMkdir        = sensorEffectKindK_MKDIR
	KindRename       = sensorEffectKindK_RENAME
	KindLink         = sensorEffectKindK_LINK
	KindSymlink      = sensorEffectKindK_SYMLINK
	KindChmod        = sensorEffectKindK_CHMOD
	KindChown        = sensorEffectKindK_CHOWN
	KindTruncate     = sensorEffectKindK_TRUNCATE
	KindConnect      = sensorEffectKindK_CONNECT
	KindBind         = sensorEffectKindK_BIND
	KindListen       = sensorEffectKindK_LISTEN
	KindAccept       = sensorEffectKindK_ACCEPT
	KindSendto       = sensorEffectKindK_SENDTO
	KindPtrace       = sensorEffectKindK_PTRACE
	KindMount        = sensorEffectKindK_MOUNT
	KindUmount       = sensorEffectKindK_UMOUNT
	KindUnshare      = sensorEffectKindK_UNSHARE
	KindSetns        = sensorEffectKindK_SETNS
	KindModule       = sensorEffectKindK_MODULE
	KindBpf          = sensorEffectKindK_BPF
	KindMemfd        = sensorEffectKindK_MEMFD
	KindSetuid       = sensorEffectKindK_SETUID
	KindCapset       = sensorEffectKindK_CAPSET
	KindChroot       = sensorEffectKindK_CHROOT
	KindKexec        = sensorEffectKindK_KEXEC
	KindIoUring      = sensorEffectKindK_IO_URING
	KindProcessVm    = sensorEffectKindK_PROCESS_VM
	KindBypass       = sensorEffectKindK_BYPASS
	KindMmapExec     = sensorEffectKindK_MMAP_EXEC
	KindEgressDenied = sensorEffectKindK_EGRESS_DENIED
)
