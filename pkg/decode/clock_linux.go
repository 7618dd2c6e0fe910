package decode

import "golang.org/x/sys/unix"

// BootNow is the current CLOCK_BOOTTIME in ns.
func BootNow() uint64 {
	var ts unix.Timespec
	_ = unix.ClockGettime(unix.CLOCK_BOOTTIME, &ts)
	return uint64(ts.Nano())
}
