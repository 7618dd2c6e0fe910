package loader

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mcpsec/sensor/internal/testutil"
	"github.com/mcpsec/sensor/pkg/wire"
	"golang.org/x/sys/unix"
)

func (c *captured) find(kind wire.Kind, pred func(e wire.Effect, s [4]string) bool) (wire.Effect, [4]string, bool) {
	for i, e := range c.effects {
		if wire.Kind(e.H.Kind) == kind && (pred == nil || pred(e, c.slots[i])) {
			return e, c.slots[i], true
		}
	}
	return wire.Effect{}, [4]string{}, false
}

func (c *captured) mustFind(t *testing.T, what string, kind wire.Kind, pred func(e wire.Effect, s [4]string) bool) (wire.Effect, [4]string) {
	t.Helper()
	e, s, ok := c.find(kind, pred)
	if !ok {
		t.Errorf("no %s among %d effects", what, len(c.effects))
	}
	return e, s
}

func realDir(t *testing.T) string {
	d, err := filepath.EvalSymlinks(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// TestOpenPaths: the path an open reports is the one the kernel opened:
// through a symlink, relative to a dirfd, with `..` applied.
func TestOpenPaths(t *testing.T) {
	dir := realDir(t)
	os.MkdirAll(filepath.Join(dir, "allowed"), 0o755)
	os.WriteFile(filepath.Join(dir, "secret"), []byte("s"), 0o600)
	os.WriteFile(filepath.Join(dir, "other"), []byte("o"), 0o600)
	os.Symlink("../secret", filepath.Join(dir, "allowed", "link"))
	c := traceCmd(t, DefaultConfig(), helperCmd("open", dir))

	c.mustFind(t, "open of the symlink's target", wire.KindOpen, func(e wire.Effect, s [4]string) bool {
		return s[0] == filepath.Join(dir, "secret") && s[1] == "allowed/link" && e.H.Ret >= 0 && e.Ino != 0
	})
	c.mustFind(t, "open with .. resolved", wire.KindOpen, func(e wire.Effect, s [4]string) bool {
		return s[0] == filepath.Join(dir, "other") && s[1] == "allowed/../other"
	})
	_, s := c.mustFind(t, "failed open with its base", wire.KindOpen, func(e wire.Effect, s [4]string) bool {
		return s[1] == "allowed/missing" && e.H.Ret == -int64(unix.ENOENT)
	})
	if s[2] != dir {
		t.Errorf("failed open base = %q, want the cwd %q", s[2], dir)
	}
	e, _ := c.mustFind(t, "open for writing", wire.KindOpen, func(e wire.Effect, s [4]string) bool {
		return s[0] == filepath.Join(dir, "allowed", "new.txt")
	})
	if e.A[0]&unix.O_CREAT == 0 || e.A[1] != 0o640 {
		t.Errorf("open flags %#o mode %#o", e.A[0], e.A[1])
	}
}

func TestFileOps(t *testing.T) {
	dir := realDir(t)
	c := traceCmd(t, DefaultConfig(), helperCmd("fileops", dir))
	checks := []struct {
		kind wire.Kind
		what string
		pred func(e wire.Effect, s [4]string) bool
	}{
		{wire.KindMkdir, "mkdir d", func(e wire.Effect, s [4]string) bool { return s[0] == dir && s[1] == "d" && e.A[1] == 0o700 }},
		{wire.KindRename, "rename f -> d/g", func(e wire.Effect, s [4]string) bool { return s[1] == "f" && s[3] == "d/g" && s[2] == dir }},
		{wire.KindChmod, "chmod d/g", func(e wire.Effect, s [4]string) bool { return s[1] == "d/g" && e.A[1] == 0o755 }},
		{wire.KindChmod, "fchmod by fd", func(e wire.Effect, s [4]string) bool { return s[0] == filepath.Join(dir, "d", "g") && e.A[1] == 0o700 }},
		{wire.KindTruncate, "ftruncate by fd", func(e wire.Effect, s [4]string) bool { return s[0] == filepath.Join(dir, "d", "g") }},
		{wire.KindSymlink, "symlink", func(e wire.Effect, s [4]string) bool { return s[1] == "/etc/passwd" && s[3] == "d/ln" }},
		{wire.KindUnlink, "unlink d/g", func(e wire.Effect, s [4]string) bool { return s[1] == "d/g" && e.H.Ret == 0 }},
		{wire.KindRmdir, "rmdir d", func(e wire.Effect, s [4]string) bool { return s[1] == "d" }},
	}
	for _, ck := range checks {
		c.mustFind(t, ck.what, ck.kind, ck.pred)
	}
}

func TestNetEffects(t *testing.T) {
	dir := realDir(t)
	c := traceCmd(t, DefaultConfig(), helperCmd("net", dir))
	family := func(s string) uint16 {
		if len(s) < 2 {
			return 0
		}
		return uint16(s[0]) | uint16(s[1])<<8
	}
	c.mustFind(t, "bind to 127.0.0.1", wire.KindBind, func(e wire.Effect, s [4]string) bool {
		return family(s[0]) == unix.AF_INET && s[0][4:8] == "\x7f\x00\x00\x01"
	})
	_, ls := c.mustFind(t, "listen with its address", wire.KindListen, func(e wire.Effect, s [4]string) bool {
		return family(s[0]) == unix.AF_INET
	})
	c.mustFind(t, "connect to the listener", wire.KindConnect, func(e wire.Effect, s [4]string) bool {
		return family(s[0]) == unix.AF_INET && len(ls[0]) >= 4 && s[0][2:4] == ls[0][2:4]
	})
	c.mustFind(t, "accept with the peer", wire.KindAccept, func(e wire.Effect, s [4]string) bool {
		return family(s[0]) == unix.AF_INET && family(s[1]) == unix.AF_INET && e.H.Ret >= 0
	})
	c.mustFind(t, "IPv6 connect", wire.KindConnect, func(e wire.Effect, s [4]string) bool { return family(s[0]) == unix.AF_INET6 })
	c.mustFind(t, "unix connect", wire.KindConnect, func(e wire.Effect, s [4]string) bool {
		return family(s[0]) == unix.AF_UNIX && strings.Contains(s[0], "s.sock")
	})
	c.mustFind(t, "unix listen with its path", wire.KindListen, func(e wire.Effect, s [4]string) bool {
		return family(s[0]) == unix.AF_UNIX && strings.Contains(s[0], "s.sock")
	})
	e, _ := c.mustFind(t, "UDP sendto", wire.KindSendto, func(e wire.Effect, s [4]string) bool { return family(s[0]) == unix.AF_INET })
	if e.A[2] != unix.SOCK_DGRAM || e.H.Ret != 4 {
		t.Errorf("sendto: type %d ret %d", e.A[2], e.H.Ret)
	}
}

// streams reassembles the captured chunks per (inode, direction) by offset.
func (c *captured) streams() map[[2]uint64]*bytes.Buffer {
	out := map[[2]uint64]*bytes.Buffer{}
	for _, ch := range c.chunks {
		k := [2]uint64{ch.Ino, uint64(ch.Dir)}
		b := out[k]
		if b == nil {
			b = &bytes.Buffer{}
			out[k] = b
		}
		if int(ch.Off) != b.Len() {
			continue // a gap: left to the decoder's tests
		}
		b.Write(ch.Data)
	}
	return out
}

func TestPayloadVectors(t *testing.T) {
	c := traceCmd(t, DefaultConfig(), helperCmd("vectors"))
	want := map[string]bool{
		// writev, then a write with junk in the fd's upper half (the kernel
		// takes fds as ints); readv, then read
		"1:hello vectored world\nupper half\n": false,
		"0:hello vectored world\nupper half\n": false,
		"1:over sendmsg\n":                     false,
		"0:over sendmsg\n":                     false, // recvmsg, once: the MSG_PEEK is not captured
	}
	for k, b := range c.streams() {
		key := fmt.Sprintf("%d:%s", k[1], b.String())
		if _, ok := want[key]; ok {
			want[key] = true
		}
	}
	for k, seen := range want {
		if !seen {
			t.Errorf("stream %q not captured whole (streams: %d)", k, len(c.streams()))
		}
	}
}

func TestCaptureCap(t *testing.T) {
	cfg := DefaultConfig()
	cfg.CaptureCap = 1000
	c := traceCmd(t, cfg, helperCmd("big", "5000"))
	var capped bool
	for _, ch := range c.chunks {
		if ch.Dir == wire.DirOut && ch.Cflags&wire.ChunkCap != 0 && ch.Skipped == 4000 && ch.Off+uint64(ch.Len) == 1000 {
			capped = true
		}
	}
	if !capped {
		t.Error("no chunk marks the 4000 bytes cut by the cap")
	}
	if c.counters["capture_cap_cut_bytes"] < 4000 {
		t.Errorf("capture_cap_cut_bytes = %d", c.counters["capture_cap_cut_bytes"])
	}
}

// TestLargeWrite: one 4 MiB write arrives whole, in order, in many chunks.
func TestLargeWrite(t *testing.T) {
	const n = 4 << 20
	c := traceCmd(t, DefaultConfig(), helperCmd("big", fmt.Sprint(n)))
	for k, b := range c.streams() {
		if k[1] == wire.DirOut && b.Len() == n && bytes.Count(b.Bytes(), []byte("z")) == n {
			return
		}
	}
	t.Errorf("the 4 MiB write was not captured whole; counters %v", c.counters)
}

func TestBypassIsMarked(t *testing.T) {
	c := traceCmd(t, DefaultConfig(), helperCmd("splice"))
	var gap bool
	for _, ch := range c.chunks {
		if ch.Cflags&wire.ChunkBypass != 0 && ch.Skipped == 14 && ch.Len == 0 {
			gap = true
		}
	}
	if !gap {
		t.Error("splice into a pipe left no marked gap")
	}
	c.mustFind(t, "bypass effect", wire.KindBypass, nil)
	if c.counters["bypass_bytes"] != 14 {
		t.Errorf("bypass_bytes = %d", c.counters["bypass_bytes"])
	}
}

func TestLifecycle(t *testing.T) {
	c := traceCmd(t, DefaultConfig(), helperCmd("lifecycle"))
	_, s := c.mustFind(t, "exec of sh", wire.KindExec, func(e wire.Effect, s [4]string) bool { return strings.HasPrefix(s[1], "/bin/sh\x00-c\x00exit 3") })
	if !strings.HasPrefix(s[0], "/") {
		t.Errorf("exec path %q is not absolute", s[0])
	}
	sh, _, _ := c.find(wire.KindExec, func(e wire.Effect, s [4]string) bool { return strings.HasPrefix(s[1], "/bin/sh") })
	c.mustFind(t, "fork of sh", wire.KindFork, func(e wire.Effect, s [4]string) bool { return uint32(e.A[0]) == sh.H.Tgid })
	c.mustFind(t, "exit 3 of sh", wire.KindExit, func(e wire.Effect, s [4]string) bool { return e.H.Tgid == sh.H.Tgid && e.A[0] == 3<<8 })
	c.mustFind(t, "failed exec", wire.KindExecFail, func(e wire.Effect, s [4]string) bool {
		return s[1] == "/nonexistent/binary" && e.H.Ret == -int64(unix.ENOENT)
	})
	// every process of the tree belongs to the one server
	server := c.effects[0].H.Server
	for _, e := range c.effects {
		if e.H.Server != server {
			t.Fatalf("effect of pid %d has server %d, want %d", e.H.Tgid, e.H.Server, server)
		}
	}
}

func TestEscapeEffects(t *testing.T) {
	c := traceCmd(t, DefaultConfig(), helperCmd("escape"))
	c.mustFind(t, "unshare(CLONE_NEWUTS)", wire.KindUnshare, func(e wire.Effect, s [4]string) bool { return e.A[0] == unix.CLONE_NEWUTS && e.H.Ret == 0 })
	c.mustFind(t, "clone with CLONE_NEWUTS", wire.KindUnshare, func(e wire.Effect, s [4]string) bool {
		return (e.H.Nr == unix.SYS_CLONE || e.H.Nr == unix.SYS_CLONE3) && e.A[0]&unix.CLONE_NEWUTS != 0 && e.A[1] > 0
	})
	c.mustFind(t, "memfd_create", wire.KindMemfd, func(e wire.Effect, s [4]string) bool { return s[1] == "payload" })
	c.mustFind(t, "setuid", wire.KindSetuid, nil)
	c.mustFind(t, "ptrace attach", wire.KindPtrace, func(e wire.Effect, s [4]string) bool { return e.A[0] == unix.PTRACE_ATTACH && e.A[1] == 1 })
}

// TestFullMapFailsClosed: with room for two processes, the children of a
// tracked process are still tracked, through their cgroup.
func TestFullMapFailsClosed(t *testing.T) {
	cfg := DefaultConfig()
	cfg.MaxTracked = 2
	c := traceCmd(t, cfg, helperCmd("fork", "6"))
	if c.counters["process_map_full"] == 0 {
		t.Fatal("the process map never filled: the test proves nothing")
	}
	cats := map[uint32]bool{}
	server := c.effects[0].H.Server
	for i, e := range c.effects {
		if wire.Kind(e.H.Kind) == wire.KindOpen && c.slots[i][1] == "/etc/hostname" {
			cats[e.H.Tgid] = true
			if e.H.Server != server {
				t.Errorf("child %d tracked as server %d, want %d", e.H.Tgid, e.H.Server, server)
			}
		}
	}
	if len(cats) != 6 {
		t.Errorf("saw the opens of %d of 6 children", len(cats))
	}
}

// TestUntrackedIsSilent: a process outside the tracked set, busy while the
// sensor runs, produces no record at all.
func TestUntrackedIsSilent(t *testing.T) {
	var other int
	c := traceCmd(t, DefaultConfig(), helperCmd("fileops", realDir(t)), func() {
		cmd := helperCmd("fileops", realDir(t))
		if err := cmd.Run(); err != nil {
			t.Fatal(err)
		}
		other = cmd.Process.Pid
	})
	if len(c.effects) == 0 {
		t.Fatal("the tracked helper produced nothing: the test proves nothing")
	}
	for _, e := range c.effects {
		if e.H.Tgid == uint32(other) {
			t.Fatalf("the untracked process %d produced effect kind %d", other, e.H.Kind)
		}
	}
	for _, ch := range c.chunks {
		if ch.H.Tgid == uint32(other) {
			t.Fatalf("the untracked process %d produced a payload chunk", other)
		}
	}
}

// TestReaderPolls: while records flow, the reader polls the rings on its
// timer and the kernel stops waking it (each wakeup costs the traced
// process an interrupt in its syscall): a steady flow of 2,000 records
// over about a second wakes it only when a gap longer than the wakeup
// interval let it go idle (one wakeup per interval would be 500), and
// every record is read.
func TestReaderPolls(t *testing.T) {
	const n = 1000
	c := traceCmd(t, DefaultConfig(), helperCmd("paced", fmt.Sprint(n)+"/300us"))
	var chunks int
	for _, ch := range c.chunks {
		if ch.Len > 0 {
			chunks++
		}
	}
	if chunks < 2*n {
		t.Errorf("%d chunks read, want %d", chunks, 2*n)
	}
	if w := c.counters["ring_wakeups"]; w == 0 || w > n/10 {
		t.Errorf("%d wakeups for a steady flow of %d records (want 1 to %d)", w, 2*n, n/10)
	}
	t.Logf("%d records, %d wakeups", chunks, c.counters["ring_wakeups"])
}

// The readers wait in Go's poller, not in the kernel holding a thread.
func TestReaderInPoller(t *testing.T) {
	testutil.RequireBPF(t)
	o, err := Load(DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	rd, err := o.NewReader()
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Close()
	for i, w := range rd.waits {
		if w == nil {
			t.Errorf("ring %d is not in Go's poller", i)
		}
	}
}
