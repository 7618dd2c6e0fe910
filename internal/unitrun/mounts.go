package main

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// mounts builds the service's file system view: the caller's binds, the
// state, logs and configuration directories, ReadWritePaths=, then
// ProtectSystem=, ProtectHome=, PrivateTmp=, PrivateDevices= and the
// inaccessible paths of ProtectKernelModules= and ProtectKernelLogs=.
func (s service) mounts(o options) error {
	for _, b := range o.binds {
		if err := mountPoint(b[0], b[1]); err != nil {
			return err
		}
		if err := unix.Mount(b[0], b[1], "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
			return fmt.Errorf("--bind %s:%s: %w", b[0], b[1], err)
		}
	}
	var rw []string
	for _, d := range []struct{ key, base, def string }{{"StateDirectory", "/var/lib", "0755"}, {"LogsDirectory", "/var/log", "0755"},
		{"ConfigurationDirectory", "/etc", "0755"}, {"RuntimeDirectory", "/run", "0755"}} {
		mode := s.last(d.key + "Mode")
		if mode == "" {
			mode = d.def
		}
		m, err := strconv.ParseUint(mode, 8, 32)
		if err != nil {
			return fmt.Errorf("%sMode=%s: %w", d.key, mode, err)
		}
		for _, name := range s.list(d.key) {
			p := filepath.Join(d.base, name)
			if err := os.MkdirAll(p, os.FileMode(m)); err != nil {
				return fmt.Errorf("%s: %w", d.key, err)
			}
			if err := os.Chmod(p, os.FileMode(m)); err != nil {
				return fmt.Errorf("%s: %w", d.key, err)
			}
			if d.key != "ConfigurationDirectory" { // systemd leaves that one read-only
				rw = append(rw, p)
			}
		}
	}
	for _, p := range s.list("ReadWritePaths") {
		optional := strings.HasPrefix(p, "-")
		p = strings.TrimPrefix(p, "-")
		if _, err := os.Stat(p); err != nil {
			if optional {
				continue
			}
			return fmt.Errorf("ReadWritePaths: %w", err)
		}
		rw = append(rw, p)
	}
	for _, p := range rw {
		if err := bindWritable(p); err != nil {
			return fmt.Errorf("read-write %s: %w", p, err)
		}
	}
	switch v := s.last("ProtectSystem"); {
	case v == "strict":
		// the API file systems are left to their own settings, and so are
		// the homes, to ProtectHome= (systemd's READ_WRITE_IMPLICIT)
		if err := readOnlyAll(append([]string{"/proc", "/sys", "/dev", "/home", "/root", "/run/user"}, rw...)); err != nil {
			return fmt.Errorf("ProtectSystem=strict: %w", err)
		}
	case v == "full" || s.yes("ProtectSystem"):
		dirs := []string{"/usr", "/boot", "/efi"}
		if v == "full" {
			dirs = append(dirs, "/etc")
		}
		for _, d := range dirs {
			if err := bindReadOnly(d); err != nil {
				return fmt.Errorf("ProtectSystem=%s: %w", v, err)
			}
		}
	}
	homes := []string{"/home", "/root", "/run/user"}
	switch v := s.last("ProtectHome"); {
	case v == "read-only":
		for _, d := range homes {
			if err := bindReadOnly(d); err != nil {
				return fmt.Errorf("ProtectHome: %w", err)
			}
		}
	case v == "tmpfs" || s.yes("ProtectHome"):
		mode := map[bool]string{true: "0755", false: "0000"}[v == "tmpfs"]
		for _, d := range homes {
			if err := emptyReadOnly(d, mode); err != nil {
				return fmt.Errorf("ProtectHome: %w", err)
			}
		}
	}
	if s.yes("PrivateTmp") {
		for _, d := range []string{"/tmp", "/var/tmp"} {
			if err := unix.Mount("tmpfs", d, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, "mode=1777"); err != nil {
				return fmt.Errorf("PrivateTmp %s: %w", d, err)
			}
		}
	}
	if s.yes("PrivateDevices") {
		if err := privateDev(); err != nil {
			return fmt.Errorf("PrivateDevices: %w", err)
		}
	}
	if s.yes("ProtectKernelModules") {
		seen := map[string]bool{}
		for _, d := range []string{"/usr/lib/modules", "/lib/modules"} {
			if r, err := filepath.EvalSymlinks(d); err == nil && !seen[r] {
				seen[r] = true
				if err := emptyReadOnly(r, "0000"); err != nil {
					return fmt.Errorf("ProtectKernelModules: %w", err)
				}
			}
		}
	}
	if s.yes("ProtectKernelLogs") {
		// /proc/kmsg made unreadable: a mode-0000 file over it (in the
		// private /tmp, checked for by check)
		const blank = "/tmp/.unitrun-inaccessible"
		if err := os.WriteFile(blank, nil, 0); err != nil {
			return err
		}
		if err := unix.Mount(blank, "/proc/kmsg", "", unix.MS_BIND, ""); err != nil {
			return fmt.Errorf("ProtectKernelLogs: %w", err)
		}
		if err := unix.Mount("", "/proc/kmsg", "", unix.MS_REMOUNT|unix.MS_BIND|unix.MS_RDONLY, ""); err != nil {
			return fmt.Errorf("ProtectKernelLogs: %w", err)
		}
	}
	return nil
}

// mountPoint makes dst exist, as a directory or a file like src.
func mountPoint(src, dst string) error {
	st, err := os.Stat(src)
	if err != nil {
		return err
	}
	if st.IsDir() {
		return os.MkdirAll(dst, 0o755)
	}
	if _, err := os.Stat(dst); err == nil {
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	return os.WriteFile(dst, nil, 0o600)
}

// mount is one line of /proc/self/mountinfo.
type mount struct {
	point, fstype string
	flags         uintptr // the per-mount flags a remount must keep
	readOnly      bool
}

func mountInfo() ([]mount, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []mount
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		sep := -1
		for i, f := range fields {
			if f == "-" {
				sep = i
				break
			}
		}
		if len(fields) < 6 || sep < 0 || sep+1 >= len(fields) {
			return nil, fmt.Errorf("mountinfo: unexpected line %q", sc.Text())
		}
		m := mount{point: unescape(fields[4]), fstype: fields[sep+1]}
		for _, opt := range strings.Split(fields[5], ",") {
			switch opt {
			case "ro":
				m.readOnly = true
			case "nosuid":
				m.flags |= unix.MS_NOSUID
			case "nodev":
				m.flags |= unix.MS_NODEV
			case "noexec":
				m.flags |= unix.MS_NOEXEC
			case "noatime":
				m.flags |= unix.MS_NOATIME
			case "nodiratime":
				m.flags |= unix.MS_NODIRATIME
			case "relatime":
				m.flags |= unix.MS_RELATIME
			}
		}
		out = append(out, m)
	}
	return out, sc.Err()
}

// unescape undoes mountinfo's octal escapes (\040 for a space).
func unescape(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func under(p, dir string) bool {
	return p == dir || strings.HasPrefix(p, strings.TrimSuffix(dir, "/")+"/")
}

// readOnlyAll remounts every mount read-only but those at or under keep.
func readOnlyAll(keep []string) error {
	ms, err := mountInfo()
	if err != nil {
		return err
	}
next:
	for _, m := range ms {
		for _, k := range keep {
			if under(m.point, k) {
				continue next
			}
		}
		if m.readOnly {
			continue
		}
		if err := unix.Mount("", m.point, "", unix.MS_REMOUNT|unix.MS_BIND|unix.MS_RDONLY|m.flags, ""); err != nil {
			if m.fstype == "nsfs" || m.fstype == "autofs" || err == unix.ENOENT {
				continue // namespace handles, automounts and vanished mounts
			}
			return fmt.Errorf("read-only %s (%s): %w", m.point, m.fstype, err)
		}
	}
	return nil
}

// bindReadOnly makes dir (if it exists) read-only, its submounts with it.
func bindReadOnly(dir string) error {
	if _, err := os.Stat(dir); err != nil {
		return nil
	}
	if err := unix.Mount(dir, dir, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
		return err
	}
	ms, err := mountInfo()
	if err != nil {
		return err
	}
	for _, m := range ms {
		if under(m.point, dir) && !m.readOnly {
			if err := unix.Mount("", m.point, "", unix.MS_REMOUNT|unix.MS_BIND|unix.MS_RDONLY|m.flags, ""); err != nil && err != unix.ENOENT {
				return fmt.Errorf("read-only %s: %w", m.point, err)
			}
		}
	}
	return nil
}

// bindWritable makes dir and its submounts writable again.
func bindWritable(dir string) error {
	if err := unix.Mount(dir, dir, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
		return err
	}
	ms, err := mountInfo()
	if err != nil {
		return err
	}
	for _, m := range ms {
		if under(m.point, dir) && m.readOnly {
			if err := unix.Mount("", m.point, "", unix.MS_REMOUNT|unix.MS_BIND|m.flags, ""); err != nil && err != unix.ENOENT {
				return fmt.Errorf("read-write %s: %w", m.point, err)
			}
		}
	}
	return nil
}

// emptyReadOnly hides dir (if it exists) under an empty read-only tmpfs.
func emptyReadOnly(dir, mode string) error {
	if _, err := os.Stat(dir); err != nil {
		return nil
	}
	return unix.Mount("tmpfs", dir, "tmpfs", unix.MS_RDONLY|unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, "mode="+mode)
}

// privateDev is a /dev with the pseudo-devices only, as systemd builds it.
func privateDev() error {
	if err := unix.Mount("tmpfs", "/dev", "tmpfs", unix.MS_NOSUID|unix.MS_NOEXEC|unix.MS_STRICTATIME, "mode=0755"); err != nil {
		return err
	}
	for name, dev := range map[string][2]uint32{"null": {1, 3}, "zero": {1, 5}, "full": {1, 7}, "random": {1, 8},
		"urandom": {1, 9}, "tty": {5, 0}} {
		p := "/dev/" + name
		if err := unix.Mknod(p, unix.S_IFCHR|0o666, int(unix.Mkdev(dev[0], dev[1]))); err != nil {
			return err
		}
		if err := os.Chmod(p, 0o666); err != nil {
			return err
		}
	}
	for _, d := range []string{"/dev/shm", "/dev/pts"} {
		if err := os.Mkdir(d, 0o755); err != nil {
			return err
		}
	}
	if err := unix.Mount("tmpfs", "/dev/shm", "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, "mode=1777"); err != nil {
		return err
	}
	if err := unix.Mount("devpts", "/dev/pts", "devpts", unix.MS_NOSUID|unix.MS_NOEXEC, "newinstance,ptmxmode=0666,mode=0620"); err != nil {
		return err
	}
	for link, target := range map[string]string{"ptmx": "pts/ptmx", "fd": "/proc/self/fd", "stdin": "/proc/self/fd/0",
		"stdout": "/proc/self/fd/1", "stderr": "/proc/self/fd/2"} {
		if err := os.Symlink(target, "/dev/"+link); err != nil {
			return err
		}
	}
	return nil
}
