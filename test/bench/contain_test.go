package bench

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/mcpsec/sensor/internal/testutil"
	"github.com/mcpsec/sensor/pkg/contain"
	"github.com/mcpsec/sensor/pkg/loader"
)

// BenchmarkConnect: the cost the egress hooks add to connect(2), measured on
// UDP connects to loopback (no handshake, so the hook's share shows), from
// a cgroup with nothing attached, with the hooks and no policy for the
// cgroup (the common case: one map lookup), and with an enforced allow-list
// (an LPM trie lookup) that allows the destination.
func BenchmarkConnect(b *testing.B) {
	testutil.RequireBPF(b)
	root, err := contain.Cgroup2Root()
	if err != nil {
		b.Fatal(err)
	}
	// outside the sensor's cgroups, whose pinned hooks would apply
	dir := filepath.Join(root, fmt.Sprintf("mcpsec-bench-%d", os.Getpid()))
	if err := os.Mkdir(dir, 0o755); err != nil {
		b.Fatal(err)
	}
	defer os.Remove(dir)
	cg, err := contain.Open(dir)
	if err != nil {
		b.Fatal(err)
	}
	defer cg.Close()
	orig := selfCgroup(b, root)
	if err := cg.Move(os.Getpid()); err != nil {
		b.Fatal(err)
	}
	defer func() { _ = os.WriteFile(filepath.Join(orig, "cgroup.procs"), []byte(fmt.Sprint(os.Getpid())), 0) }()

	objs, err := loader.Load(loader.DefaultConfig())
	if err != nil {
		b.Fatal(err)
	}
	defer objs.Close()
	sa := &unix.SockaddrInet4{Port: 9, Addr: [4]byte{127, 0, 0, 1}}
	connect := func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
			if err != nil {
				b.Fatal(err)
			}
			if err := unix.Connect(fd, sa); err != nil {
				b.Fatal(err)
			}
			unix.Close(fd)
		}
	}
	b.Run("hooks=nothing", connect)
	if err := objs.AttachEgress(dir); err != nil {
		b.Fatal(err)
	}
	defer loader.DetachEgress(dir)
	// the hooks are there: a quarantined cgroup cannot connect
	if err := objs.SetPolicy(cg.ID, loader.CgQuarantine); err != nil {
		b.Fatal(err)
	}
	fd, _ := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	err = unix.Connect(fd, sa)
	unix.Close(fd)
	if err != unix.EPERM {
		b.Fatalf("connect from a quarantined cgroup: %v, want EPERM", err)
	}
	if err := objs.DeletePolicy(cg.ID); err != nil {
		b.Fatal(err)
	}
	b.Run("hooks=egress", connect)
	if err := objs.SetPolicy(cg.ID, loader.CgAllowList); err != nil {
		b.Fatal(err)
	}
	defer objs.DeletePolicy(cg.ID)
	if err := objs.AllowEgress(cg.ID, netip.MustParsePrefix("127.0.0.0/8"), nil); err != nil {
		b.Fatal(err)
	}
	b.Run("hooks=allowlist", connect)
}

// selfCgroup is this process's cgroup v2 directory.
func selfCgroup(b *testing.B, root string) string {
	data, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		b.Fatal(err)
	}
	for _, ln := range strings.Split(string(data), "\n") {
		if p, ok := strings.CutPrefix(ln, "0::"); ok {
			return filepath.Join(root, p)
		}
	}
	b.Fatal("no cgroup v2 line in /proc/self/cgroup")
	return ""
}
