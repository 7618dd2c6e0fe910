package loader

import (
	"errors"
	"fmt"
	"os"
	"syscall"
	"time"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"
)

// How a ring reader waits: parked in Go's poller on the ring's descriptor,
// and telling the kernel, through the ring's last_wake, whether it polls
// (no wakeup needed) or waits for the next record.

// wakePolling in a ring's last wakeup tells its programs that the reader
// polls: they need not wake it (see wake_flags in bpf/common.h).
const wakePolling = ^uint64(0)

// resetWake makes the next record of ring i wake its reader at once.
func (r *Reader) resetWake(i int) { r.setWake(i, 0) }

// polling says the reader of ring i reads it every interval until it finds
// it empty: the kernel stops waking it, which the traced process would pay
// for in its syscall.
func (r *Reader) polling(i int) { r.setWake(i, wakePolling) }

func (r *Reader) setWake(i int, v uint64) {
	if r.lastWake == nil {
		return
	}
	if err := r.lastWake.Update(uint32(i), v, ebpf.UpdateAny); err != nil && r.wakeErr.CompareAndSwap(false, true) {
		// records still come within idlePoll: said once, not per poll
		r.errMu.Lock()
		r.err = errors.Join(r.err, fmt.Errorf("setting ring %d's wakeup: %w", i, err))
		r.errMu.Unlock()
	}
}

// pollable puts a copy of a ring's descriptor in Go's poller; nil if it
// cannot be (the reader then waits in the kernel, as before).
func pollable(m *ebpf.Map) (*os.File, syscall.RawConn) {
	fd, err := unix.FcntlInt(uintptr(m.FD()), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		return nil, nil
	}
	if err := unix.SetNonblock(fd, true); err != nil {
		unix.Close(fd)
		return nil, nil
	}
	f := os.NewFile(uintptr(fd), "ring")
	rc, err := f.SyscallConn()
	if err != nil || f.SetReadDeadline(time.Time{}) != nil { // not in the poller
		f.Close()
		return nil, nil
	}
	return f, rc
}

// wait parks until ring i has records or the deadline (zero: none)
// passes; an error is the deadline, or the reader closing.
func (r *Reader) wait(i int, deadline time.Time) error {
	if err := r.files[i].SetReadDeadline(deadline); err != nil {
		return err
	}
	return r.waits[i].Read(func(uintptr) bool { return r.avail(i) > 0 || r.closed.Load() })
}
