package contain

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mcpsec/sensor/internal/testutil"
)

func TestFindCgroup2(t *testing.T) {
	hybrid := `24 30 0:22 / /sys/fs/cgroup rw,nosuid - tmpfs tmpfs ro,mode=755
31 24 0:27 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
`
	if p, ok := findCgroup2(strings.NewReader(hybrid)); !ok || p != "/sys/fs/cgroup/unified" {
		t.Errorf("hybrid: %q %v", p, ok)
	}
	pure := "29 23 0:26 / /sys/fs/cgroup rw,nosuid shared:4 - cgroup2 cgroup2 rw,nsdelegate\n"
	if p, ok := findCgroup2(strings.NewReader(pure)); !ok || p != "/sys/fs/cgroup" {
		t.Errorf("pure v2: %q %v", p, ok)
	}
	spaced := `50 23 0:40 / /mnt/my\040cgroups rw - cgroup2 none rw` + "\n"
	if p, _ := findCgroup2(strings.NewReader(spaced)); p != "/mnt/my cgroups" {
		t.Errorf("escaped path: %q", p)
	}
	if _, ok := findCgroup2(strings.NewReader("24 30 0:22 / /sys/fs/cgroup rw - tmpfs tmpfs ro\n")); ok {
		t.Error("found cgroup2 where there is none")
	}
}

func TestCreateStartRemove(t *testing.T) {
	testutil.RequireBPF(t) // needs root
	if _, err := Create("a/b"); err == nil {
		t.Error("a nested name was accepted")
	}
	cg, err := Create(fmt.Sprintf("test-%d", os.Getpid()))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("/bin/sh", "-c", "cat /proc/self/cgroup; sleep 0.2")
	cmd.SysProcAttr = &syscall.SysProcAttr{UseCgroupFD: true, CgroupFD: cg.FD()}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4096)
	n, _ := out.Read(buf)
	if !strings.Contains(string(buf[:n]), "/"+Parent+"/test-") {
		t.Errorf("the child is not in the cgroup: %s", buf[:n])
	}
	pids, _ := cg.Procs()
	found := false
	for _, p := range pids {
		found = found || p == cmd.Process.Pid
	}
	if !found {
		t.Errorf("cgroup.procs %v lacks the child %d", pids, cmd.Process.Pid)
	}
	_ = cmd.Wait()
	if err := cg.Remove(2 * time.Second); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(cg.Path); !os.IsNotExist(err) {
		t.Errorf("cgroup still there: %v", err)
	}
}

// TestThrottleAndFreeze: a forking workload in a cgroup of its own is
// throttled (on v2 controllers, or the v1 hierarchies of a hybrid host),
// then frozen with the processes it forks meanwhile, then thawed and
// unthrottled.
func TestThrottleAndFreeze(t *testing.T) {
	testutil.RequireBPF(t)
	cg, err := Create(fmt.Sprintf("test-throttle-%d", os.Getpid()))
	if err != nil {
		t.Fatal(err)
	}
	// a shell that keeps forking short-lived children
	cmd := exec.Command("/bin/sh", "-c", "while :; do /bin/true; done")
	cmd.SysProcAttr = &syscall.SysProcAttr{UseCgroupFD: true, CgroupFD: cg.FD()}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		_ = cg.Kill()
		_ = cmd.Wait()
		_ = Unthrottle(cg)
		_ = cg.Remove(2 * time.Second)
	}()
	how, err := Throttle(cg, DefaultLimits)
	if err != nil {
		t.Fatalf("throttle (%s): %v", how, err)
	}
	if mnt, ok := V1Mount("pids"); ok && !strings.Contains(how, "pids (v2)") {
		b, err := os.ReadFile(filepath.Join(mnt, Parent, filepath.Base(cg.Path), "pids.max"))
		if err != nil || strings.TrimSpace(string(b)) != "64" {
			t.Fatalf("v1 pids.max: %q %v", b, err)
		}
		procs, _ := os.ReadFile(filepath.Join(mnt, Parent, filepath.Base(cg.Path), "cgroup.procs"))
		if !strings.Contains(string(procs), fmt.Sprint(cmd.Process.Pid)) {
			t.Fatalf("the shell is not in the v1 pids cgroup: %q", procs)
		}
	}
	t.Logf("throttled with %s", how)
	if _, err := cg.Freeze(2 * time.Second); err != nil {
		t.Fatal(err)
	}
	// frozen: nothing runs, no new process appears
	before, _ := cg.Procs()
	time.Sleep(200 * time.Millisecond)
	after, _ := cg.Procs()
	if len(after) > len(before) {
		t.Fatalf("processes appeared while frozen: %v -> %v", before, after)
	}
	if frozen, _ := cg.Frozen(); !frozen {
		t.Fatal("not frozen")
	}
	if _, err := cg.Thaw(2 * time.Second); err != nil {
		t.Fatal(err)
	}
	if err := Unthrottle(cg); err != nil {
		t.Fatal(err)
	}
}
