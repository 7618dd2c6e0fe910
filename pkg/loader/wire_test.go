package loader

import (
	"reflect"
	"testing"

	"github.com/mcpsec/sensor/pkg/wire"
)

// TestWireLayout: the hand-written record layouts of pkg/wire, which the
// decoder reads, match what bpf2go generated from bpf/common.h, field by
// field (name, offset, size), and so do the constants.
func TestWireLayout(t *testing.T) {
	pairs := []struct{ gen, hand any }{
		{sensorRecHdr{}, wire.Header{}},
		{sensorEffectFixed{}, wire.EffectFixed{}},
		{sensorChunkHdr{}, wire.ChunkHeader{}},
	}
	for _, p := range pairs {
		sameLayout(t, reflect.TypeOf(p.gen), reflect.TypeOf(p.hand))
	}
	consts := []struct {
		name      string
		gen, hand uint64
	}{
		{"REC_EFFECT", uint64(sensorRecClassREC_EFFECT), uint64(wire.ClassEffect)},
		{"REC_CHUNK", uint64(sensorRecClassREC_CHUNK), uint64(wire.ClassChunk)},
		{"RF_TRUNC_S0", uint64(sensorRecFlagsRF_TRUNC_S0), uint64(wire.FlagTruncS0)},
		{"RF_FAULT", uint64(sensorRecFlagsRF_FAULT), uint64(wire.FlagFault)},
		{"RF_OVERFLOW", uint64(sensorRecFlagsRF_OVERFLOW), uint64(wire.FlagOverflow)},
		{"CF_FIRST", uint64(sensorChunkFlagsCF_FIRST), uint64(wire.ChunkFirst)},
		{"CF_LAST", uint64(sensorChunkFlagsCF_LAST), uint64(wire.ChunkLast)},
		{"CF_CAP", uint64(sensorChunkFlagsCF_CAP), uint64(wire.ChunkCap)},
		{"CF_FAULT", uint64(sensorChunkFlagsCF_FAULT), uint64(wire.ChunkFault)},
		{"CF_BYPASS", uint64(sensorChunkFlagsCF_BYPASS), uint64(wire.ChunkBypass)},
		{"CF_ATTACHED", uint64(sensorChunkFlagsCF_ATTACHED), uint64(wire.ChunkAttached)},
		{"FT_PIPE", uint64(sensorFtypeFT_PIPE), uint64(wire.FilePipe)},
		{"FT_SOCK", uint64(sensorFtypeFT_SOCK), uint64(wire.FileSock)},
		{"FT_TLS", uint64(sensorFtypeFT_TLS), uint64(wire.FileTLS)},
		{"CG_QUARANTINE", CgQuarantine, wire.CgQuarantine},
		{"CG_ALLOWLIST", CgAllowList, wire.CgAllowList},
		{"CG_TAINT_DENY", CgTaintDeny, wire.CgTaintDeny},
		{"CG_TAINTED", CgTainted, wire.CgTainted},
		{"CG_KILL_ON_EXEC", CgKillOnExec, wire.CgKillOnExec},
		{"CG_STOP_ON_EXEC", CgStopOnExec, wire.CgStopOnExec},
		{"K_EXEC", uint64(sensorEffectKindK_EXEC), uint64(wire.KindExec)},
		{"K_EXEC_FAIL", uint64(sensorEffectKindK_EXEC_FAIL), uint64(wire.KindExecFail)},
		{"K_FORK", uint64(sensorEffectKindK_FORK), uint64(wire.KindFork)},
		{"K_EXIT", uint64(sensorEffectKindK_EXIT), uint64(wire.KindExit)},
		{"K_DISCOVER", uint64(sensorEffectKindK_DISCOVER), uint64(wire.KindDiscover)},
		{"K_OPEN", uint64(sensorEffectKindK_OPEN), uint64(wire.KindOpen)},
		{"K_UNLINK", uint64(sensorEffectKindK_UNLINK), uint64(wire.KindUnlink)},
		{"K_RMDIR", uint64(sensorEffectKindK_RMDIR), uint64(wire.KindRmdir)},
		{"K_MKDIR", uint64(sensorEffectKindK_MKDIR), uint64(wire.KindMkdir)},
		{"K_RENAME", uint64(sensorEffectKindK_RENAME), uint64(wire.KindRename)},
		{"K_LINK", uint64(sensorEffectKindK_LINK), uint64(wire.KindLink)},
		{"K_SYMLINK", uint64(sensorEffectKindK_SYMLINK), uint64(wire.KindSymlink)},
		{"K_CHMOD", uint64(sensorEffectKindK_CHMOD), uint64(wire.KindChmod)},
		{"K_CHOWN", uint64(sensorEffectKindK_CHOWN), uint64(wire.KindChown)},
		{"K_TRUNCATE", uint64(sensorEffectKindK_TRUNCATE), uint64(wire.KindTruncate)},
		{"K_CONNECT", uint64(sensorEffectKindK_CONNECT), uint64(wire.KindConnect)},
		{"K_BIND", uint64(sensorEffectKindK_BIND), uint64(wire.KindBind)},
		{"K_LISTEN", uint64(sensorEffectKindK_LISTEN), uint64(wire.KindListen)},
		{"K_ACCEPT", uint64(sensorEffectKindK_ACCEPT), uint64(wire.KindAccept)},
		{"K_SENDTO", uint64(sensorEffectKindK_SENDTO), uint64(wire.KindSendto)},
		{"K_PTRACE", uint64(sensorEffectKindK_PTRACE), uint64(wire.KindPtrace)},
		{"K_MOUNT", uint64(sensorEffectKindK_MOUNT), uint64(wire.KindMount)},
		{"K_UMOUNT", uint64(sensorEffectKindK_UMOUNT), uint64(wire.KindUmount)},
		{"K_UNSHARE", uint64(sensorEffectKindK_UNSHARE), uint64(wire.KindUnshare)},
		{"K_SETNS", uint64(sensorEffectKindK_SETNS), uint64(wire.KindSetns)},
		{"K_MODULE", uint64(sensorEffectKindK_MODULE), uint64(wire.KindModule)},
		{"K_BPF", uint64(sensorEffectKindK_BPF), uint64(wire.KindBpf)},
		{"K_MEMFD", uint64(sensorEffectKindK_MEMFD), uint64(wire.KindMemfd)},
		{"K_SETUID", uint64(sensorEffectKindK_SETUID), uint64(wire.KindSetuid)},
		{"K_CAPSET", uint64(sensorEffectKindK_CAPSET), uint64(wire.KindCapset)},
		{"K_CHROOT", uint64(sensorEffectKindK_CHROOT), uint64(wire.KindChroot)},
		{"K_KEXEC", uint64(sensorEffectKindK_KEXEC), uint64(wire.KindKexec)},
		{"K_IO_URING", uint64(sensorEffectKindK_IO_URING), uint64(wire.KindIoUring)},
		{"K_PROCESS_VM", uint64(sensorEffectKindK_PROCESS_VM), uint64(wire.KindProcessVm)},
		{"K_BYPASS", uint64(sensorEffectKindK_BYPASS), uint64(wire.KindBypass)},
		{"K_MMAP_EXEC", uint64(sensorEffectKindK_MMAP_EXEC), uint64(wire.KindMmapExec)},
		{"K_EGRESS_DENIED", uint64(sensorEffectKindK_EGRESS_DENIED), uint64(wire.KindEgressDenied)},
	}
	for _, c := range consts {
		if c.gen != c.hand {
			t.Errorf("%s: generated %d, pkg/wire %d", c.name, c.gen, c.hand)
		}
	}
}

// sameLayout compares two struct types field by field, ignoring the
// generated types' zero-size layout markers.
func sameLayout(t *testing.T, gen, hand reflect.Type) {
	t.Helper()
	if gen.Size() != hand.Size() {
		t.Errorf("%s is %d bytes, pkg/wire's %s %d", gen.Name(), gen.Size(), hand.Name(), hand.Size())
	}
	var gf []reflect.StructField
	for i := 0; i < gen.NumField(); i++ {
		if f := gen.Field(i); f.Name != "_" {
			gf = append(gf, f)
		}
	}
	if len(gf) != hand.NumField() {
		t.Fatalf("%s has %d fields, pkg/wire's %s %d", gen.Name(), len(gf), hand.Name(), hand.NumField())
	}
	for i, g := range gf {
		h := hand.Field(i)
		if g.Name != h.Name || g.Offset != h.Offset || g.Type.Size() != h.Type.Size() {
			t.Errorf("%s.%s at %d (%d bytes), pkg/wire %s.%s at %d (%d bytes)", gen.Name(), g.Name, g.Offset, g.Type.Size(),
				hand.Name(), h.Name, h.Offset, h.Type.Size())
		}
		if g.Type.Kind() == reflect.Struct {
			sameLayout(t, g.Type, h.Type)
		}
	}
}
