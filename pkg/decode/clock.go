package decode

import (
	"time"

	"golang.org/x/sys/unix"
)

// Clock turns the kernel's CLOCK_BOOTTIME nanoseconds into wall-clock time.
type Clock struct {
	// Offset is wall-clock ns minus boot-clock ns, read once at start.
	Offset int64
}

// NewClock reads both clocks now.
func NewClock() Clock {
	var ts unix.Timespec
	_ = unix.ClockGettime(unix.CLOCK_BOOTTIME, &ts)
	boot := ts.Nano()
	wall := time.Now().UnixNano()
	return Clock{Offset: wall - boot}
}

// Wall converts a boot-clock timestamp.
func (c Clock) Wall(bootNs uint64) time.Time {
	return time.Unix(0, int64(bootNs)+c.Offset)
}

// BootNow is the current CLOCK_BOOTTIME in ns.
func BootNow() uint64 {
	var ts unix.Timespec
	_ = unix.ClockGettime(unix.CLOCK_BOOTTIME, &ts)
	return uint64(ts.Nano())
}
