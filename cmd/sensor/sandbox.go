package main

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// sandboxArg names the helper `sensor scan` starts each server through:
// it runs in a mount namespace of its own (the scan clones it with
// CLONE_NEWNS), hides the homes, /tmp and the sensor's state behind empty
// tmpfs mounts, puts back read-only the directories the server needs (its
// project, the package managers' caches), makes the throw-away home, and
// execs the server. Its egress is refused in the kernel by the cgroup it
// starts in.
const sandboxArg = "__scan-sandbox"

// hiddenDirs are covered with an empty tmpfs in the sandbox.
var hiddenDirs = []string{"/root", "/home", "/tmp", "/var/tmp", "/var/lib/mcp-sensor", "/etc/mcp-sensor", "/run/mcp-sensor", "/run/user"}

// sandboxCommand is the helper's command line for a server.
func sandboxCommand(self, home string, uid, gid int, keep []string, argv []string) []string {
	out := []string{self, sandboxArg, "--home", home, "--uid", strconv.Itoa(uid), "--gid", strconv.Itoa(gid)}
	for _, k := range keep {
		out = append(out, "--keep", k)
	}
	return append(append(out, "--"), argv...)
}

func runSandbox(args []string) int {
	fail := func(format string, a ...any) int {
		fmt.Fprintf(os.Stderr, "sensor sandbox: "+format+"\n", a...)
		return 126
	}
	var home string
	var keep []string
	uid, gid := -1, -1
	i := 0
	for ; i < len(args) && args[i] != "--"; i++ {
		switch {
		case args[i] == "--home" && i+1 < len(args):
			home = args[i+1]
			i++
		case (args[i] == "--uid" || args[i] == "--gid") && i+1 < len(args):
			n, err := strconv.Atoi(args[i+1])
			if err != nil {
				return fail("%s %q: not a number", args[i], args[i+1])
			}
			if args[i] == "--uid" {
				uid = n
			} else {
				gid = n
			}
			i++
		case args[i] == "--keep" && i+1 < len(args):
			keep = append(keep, args[i+1])
			i++
		default:
			return fail("the sandbox helper is started by `sensor scan` only")
		}
	}
	if i+1 >= len(args) || home == "" {
		return fail("the sandbox helper is started by `sensor scan` only")
	}
	argv := args[i+1:]
	// never touch the mounts of the namespace the scan runs in: the
	// helper must have been cloned into one of its own, unlike its parent's
	if ns, parent := mountNS("self"), mountNS(strconv.Itoa(os.Getppid())); ns == "" || parent == "" || ns == parent {
		return fail("not in a mount namespace of its own (it is started by `sensor scan` only): refusing to change mounts")
	}
	if uid < 0 || gid < 0 {
		return fail("the sandbox helper is started by `sensor scan` only")
	}
	if err := sandbox(home, keep); err != nil {
		return fail("%v", err)
	}
	if uid != 0 {
		_ = os.Chown(home, uid, gid)
		_ = os.Chown(filepath.Join(home, ".npm"), uid, gid)
	}
	// the server runs as the owner of the file that names it, never gains
	// privileges (setuid binaries, file capabilities), and a non-root
	// owner's server can neither undo the mounts nor leave its cgroup
	if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
		return fail("no_new_privs: %v", err)
	}
	if uid != 0 {
		if err := syscall.Setgroups([]int{gid}); err != nil {
			return fail("dropping groups: %v", err)
		}
		if err := syscall.Setgid(gid); err != nil {
			return fail("setgid %d: %v", gid, err)
		}
		if err := syscall.Setuid(uid); err != nil {
			return fail("setuid %d: %v", uid, err)
		}
	}
	exe, err := exec.LookPath(argv[0])
	if err != nil {
		return fail("cannot start %s: %v", argv[0], errors.Unwrap(err))
	}
	err = syscall.Exec(exe, argv, os.Environ())
	return fail("cannot start %s: %v", argv[0], err)
}

// mountNS names a process's mount namespace ("" if unknown).
func mountNS(pid string) string {
	s, err := os.Readlink("/proc/" + pid + "/ns/mnt")
	if err != nil {
		return ""
	}
	return s
}

// sandbox arranges the mount namespace this process runs in.
func sandbox(home string, keep []string) error {
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
		return fmt.Errorf("making the mounts private (is this a mount namespace of its own?): %w", err)
	}
	// clones of the directories to keep, taken before they are hidden
	type kept struct {
		path string
		fd   int
	}
	var clones []kept
	isDir := map[string]bool{}
	for _, k := range keep {
		st, err := os.Stat(k)
		if err != nil || k == "/" {
			continue
		}
		isDir[k] = st.IsDir()
		fd, err := unix.OpenTree(unix.AT_FDCWD, k, unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC|unix.AT_RECURSIVE)
		if err != nil {
			return fmt.Errorf("keeping %s: %w", k, err)
		}
		clones = append(clones, kept{k, fd})
	}
	for _, d := range hiddenDirs {
		if st, err := os.Stat(d); err != nil || !st.IsDir() {
			continue
		}
		if err := unix.Mount("tmpfs", d, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, "mode=0755,size=64m"); err != nil {
			return fmt.Errorf("hiding %s: %w", d, err)
		}
	}
	for _, c := range clones {
		dir := c.path
		if !isDir[c.path] {
			dir = filepath.Dir(c.path)
		}
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return fmt.Errorf("keeping %s: %w", c.path, err)
		}
		if !isDir[c.path] {
			if err := os.WriteFile(c.path, nil, 0o755); err != nil && !os.IsExist(err) {
				return fmt.Errorf("keeping %s: %w", c.path, err)
			}
		}
		if err := unix.MoveMount(c.fd, "", unix.AT_FDCWD, c.path, unix.MOVE_MOUNT_F_EMPTY_PATH); err != nil {
			return fmt.Errorf("keeping %s: %w", c.path, err)
		}
		unix.Close(c.fd)
		attr := &unix.MountAttr{Attr_set: unix.MOUNT_ATTR_RDONLY}
		if err := unix.MountSetattr(unix.AT_FDCWD, c.path, unix.AT_RECURSIVE, attr); err != nil {
			return fmt.Errorf("making %s read-only: %w", c.path, err)
		}
	}
	if err := os.MkdirAll(home, 0o700); err != nil {
		return fmt.Errorf("making the throw-away home %s: %w", home, err)
	}
	if err := os.MkdirAll(filepath.Join(home, ".npm"), 0o700); err != nil {
		return err
	}
	return os.Chdir(workDir(home))
}

// workDir is where the server starts: SANDBOX_CWD if kept, else the home.
func workDir(home string) string {
	if d := os.Getenv("MCPSEC_SANDBOX_CWD"); d != "" {
		if st, err := os.Stat(d); err == nil && st.IsDir() {
			return d
		}
	}
	return home
}

// underHidden says whether p is inside a directory the sandbox hides.
func underHidden(p string) bool {
	for _, d := range hiddenDirs {
		if p == d || strings.HasPrefix(p, d+"/") {
			return true
		}
	}
	return false
}
