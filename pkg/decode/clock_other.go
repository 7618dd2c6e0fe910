//go:build !linux

package decode

import "time"

// start stands in for boot on hosts without CLOCK_BOOTTIME: records are
// only ever replayed there, never read from a kernel.
var start = time.Now()

// BootNow is the time since the process started, in ns.
func BootNow() uint64 { return uint64(time.Since(start).Nanoseconds()) }
