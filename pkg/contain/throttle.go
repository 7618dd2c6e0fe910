package contain

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// Limits are what throttling sets: at most Pids processes, and CPUQuota
// microseconds of CPU per CPUPeriod.
type Limits struct {
	Pids      int
	CPUQuota  int
	CPUPeriod int
}

// DefaultLimits slow a server down without stopping it.
var DefaultLimits = Limits{Pids: 64, CPUQuota: 20000, CPUPeriod: 100000}

// Throttle limits the processes of cg. It uses the cgroup v2 controllers
// when the hierarchy has them, else the v1 hierarchies (hybrid hosts): the
// processes join a cgroup of the same name there. It says which it used.
func Throttle(cg *Cgroup, l Limits) (string, error) {
	root, err := Cgroup2Root()
	if err != nil {
		return "", err
	}
	b, _ := os.ReadFile(filepath.Join(root, "cgroup.controllers"))
	v2 := map[string]bool{}
	for _, c := range strings.Fields(string(b)) {
		v2[c] = true
	}
	var used []string
	var errs []error
	for _, ctl := range []string{"pids", "cpu"} {
		files := map[string]string{"pids.max": fmt.Sprint(l.Pids)}
		if ctl == "cpu" {
			files = map[string]string{"cpu.max": fmt.Sprintf("%d %d", l.CPUQuota, l.CPUPeriod)}
		}
		if v2[ctl] {
			_ = os.WriteFile(filepath.Join(filepath.Dir(cg.Path), "cgroup.subtree_control"), []byte("+"+ctl), 0)
			for f, v := range files {
				errs = append(errs, os.WriteFile(filepath.Join(cg.Path, f), []byte(v), 0))
			}
			used = append(used, ctl+" (v2)")
			continue
		}
		mnt, ok := V1Mount(ctl)
		if !ok {
			errs = append(errs, fmt.Errorf("no %s controller on cgroup v2 or v1", ctl))
			continue
		}
		dir := filepath.Join(mnt, Parent, filepath.Base(cg.Path))
		if err := os.MkdirAll(dir, 0o755); err != nil {
			errs = append(errs, err)
			continue
		}
		if ctl == "cpu" {
			files = map[string]string{"cpu.cfs_period_us": fmt.Sprint(l.CPUPeriod), "cpu.cfs_quota_us": fmt.Sprint(l.CPUQuota)}
		}
		for _, f := range []string{"pids.max", "cpu.cfs_period_us", "cpu.cfs_quota_us"} {
			if v, ok := files[f]; ok {
				errs = append(errs, os.WriteFile(filepath.Join(dir, f), []byte(v), 0))
			}
		}
		pids, err := cg.Procs()
		errs = append(errs, err)
		for _, pid := range pids {
			// a process that exited meanwhile (ESRCH) needs no limit
			if err := os.WriteFile(filepath.Join(dir, "cgroup.procs"), []byte(fmt.Sprint(pid)), 0); err != nil && !errors.Is(err, syscall.ESRCH) && !errors.Is(err, os.ErrNotExist) {
				errs = append(errs, fmt.Errorf("moving %d into %s: %w", pid, dir, err))
			}
		}
		used = append(used, ctl+" (v1 "+dir+")")
	}
	return strings.Join(used, ", "), errors.Join(errs...)
}

// Unthrottle lifts the limits Throttle set on v1 hierarchies: the
// processes go back to the hierarchy's root and the cgroup is removed.
// (v2 limits go with the server's cgroup.)
func Unthrottle(cg *Cgroup) error {
	var errs []error
	for _, ctl := range []string{"pids", "cpu"} {
		mnt, ok := V1Mount(ctl)
		if !ok {
			continue
		}
		dir := filepath.Join(mnt, Parent, filepath.Base(cg.Path))
		if _, err := os.Stat(dir); err != nil {
			continue // never throttled there
		}
		// the processes fork meanwhile: move them out until none is left
		var err error
		for i := 0; i < 100; i++ {
			b, rerr := os.ReadFile(filepath.Join(dir, "cgroup.procs"))
			if rerr != nil {
				break
			}
			for _, pid := range strings.Fields(string(b)) {
				_ = os.WriteFile(filepath.Join(mnt, "cgroup.procs"), []byte(pid), 0)
			}
			if err = os.Remove(dir); err == nil {
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
		if err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
