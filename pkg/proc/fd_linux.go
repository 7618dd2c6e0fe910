//go:build linux

package proc

import (
	"fmt"
	"strconv"

	"golang.org/x/sys/unix"
)

// Channel is what one of a process's file descriptors is, for the stdio of
// an MCP server: a pipe or a socket (with its inode), or something else.
type Channel struct {
	Kind string // "pipe", "socket", or "" for anything else (a tty, a file, /dev/null)
	Ino  uint64
}

// FD says what a process's file descriptor fd is.
func (r Root) FD(pid, fd int) (Channel, error) {
	var st unix.Stat_t
	if err := unix.Stat(r.path(pid, "fd", strconv.Itoa(fd)), &st); err != nil {
		return Channel{}, fmt.Errorf("looking at fd %d of process %d: %w", fd, pid, err)
	}
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFIFO:
		return Channel{Kind: "pipe", Ino: st.Ino}, nil
	case unix.S_IFSOCK:
		return Channel{Kind: "socket", Ino: st.Ino}, nil
	}
	return Channel{Ino: st.Ino}, nil
}

// SameExe says whether a process runs the file with this device and inode.
func (r Root) SameExe(pid int, dev, ino uint64) bool {
	var st unix.Stat_t
	if unix.Stat(r.path(pid, "exe"), &st) != nil {
		return false
	}
	return st.Dev == dev && st.Ino == ino
}

// FileID is the device and inode of a file.
func FileID(path string) (dev, ino uint64, err error) {
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		return 0, 0, err
	}
	return st.Dev, st.Ino, nil
}

// Alive says whether pid still runs the process that started at start.
func (r Root) Alive(pid int, start uint64) bool {
	s, err := r.Start(pid)
	return err == nil && (start == 0 || s == start)
}
