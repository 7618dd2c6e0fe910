package decode

import "time"

// Clock turns the kernel's CLOCK_BOOTTIME nanoseconds into wall-clock time.
type Clock struct {
	// Offset is wall-clock ns minus boot-clock ns, read once at start.
	Offset int64
}

// NewClock reads both clocks now.
func NewClock() Clock {
	boot := BootNow()
	wall := time.Now().UnixNano()
	return Clock{Offset: wall - int64(boot)}
}

// Wall converts a boot-clock timestamp.
func (c Clock) Wall(bootNs uint64) time.Time {
	return time.Unix(0, int64(bootNs)+c.Offset)
}
