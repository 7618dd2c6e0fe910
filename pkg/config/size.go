package config

import (
	"fmt"
	"strconv"
	"strings"
)

// Size is a byte count written with an optional unit: 4096, 64KiB, 16MiB,
// 1GiB (KB, MB, GB and K, M, G are binary too).
type Size uint64

var sizeUnits = []struct {
	suffix string
	mult   uint64
}{
	{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10},
	{"GB", 1 << 30}, {"MB", 1 << 20}, {"KB", 1 << 10},
	{"G", 1 << 30}, {"M", 1 << 20}, {"K", 1 << 10}, {"B", 1},
}

// ParseSize reads a size.
func ParseSize(s string) (Size, error) {
	t := strings.TrimSpace(s)
	mult := uint64(1)
	for _, u := range sizeUnits {
		if strings.HasSuffix(t, u.suffix) {
			t, mult = strings.TrimSpace(strings.TrimSuffix(t, u.suffix)), u.mult
			break
		}
	}
	n, err := strconv.ParseUint(t, 10, 64)
	if err != nil || n == 0 {
		return 0, fmt.Errorf("%q is not a size: want a positive number with an optional unit, e.g. 64KiB or 16MiB", s)
	}
	if n > (1<<63)/mult {
		return 0, fmt.Errorf("%q is too large", s)
	}
	return Size(n * mult), nil
}

func (s Size) String() string {
	n := uint64(s)
	for _, u := range sizeUnits[:3] {
		if n >= u.mult && n%u.mult == 0 {
			return strconv.FormatUint(n/u.mult, 10) + u.suffix
		}
	}
	return strconv.FormatUint(n, 10)
}
