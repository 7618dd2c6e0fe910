package decode

import (
	"bytes"
	"encoding/binary"
	"net/netip"
	"strconv"

	"github.com/mcpsec/sensor/pkg/wire"
)

// FormatSockaddr renders raw sockaddr bytes: "127.0.0.1:8080", "[::1]:80",
// a unix path, "@name" for an abstract unix socket, "unix:unnamed".
func FormatSockaddr(b []byte) string {
	if len(b) < 2 {
		return ""
	}
	family := binary.LittleEndian.Uint16(b[:2])
	switch family {
	case wire.AF_INET:
		if len(b) < 8 {
			return "inet:short"
		}
		port := binary.BigEndian.Uint16(b[2:4])
		ip := netip.AddrFrom4([4]byte(b[4:8]))
		return netip.AddrPortFrom(ip, port).String()
	case wire.AF_INET6:
		if len(b) < 24 {
			return "inet6:short"
		}
		port := binary.BigEndian.Uint16(b[2:4])
		ip := netip.AddrFrom16([16]byte(b[8:24]))
		if len(b) >= 28 {
			if scope := binary.LittleEndian.Uint32(b[24:28]); scope != 0 {
				ip = ip.WithZone(strconv.FormatUint(uint64(scope), 10))
			}
		}
		return netip.AddrPortFrom(ip, port).String()
	case wire.AF_UNIX:
		p := b[2:]
		if len(p) == 0 {
			return "unix:unnamed"
		}
		if p[0] == 0 {
			// abstract: the name is the bytes given; trailing NULs are padding
			return "@" + string(bytes.TrimRight(p[1:], "\x00"))
		}
		return string(trimNul(p))
	case wire.AF_UNSPEC:
		return "unspec"
	}
	return "family" + strconv.FormatUint(uint64(family), 10)
}

func trimNul(b []byte) []byte {
	for i, c := range b {
		if c == 0 {
			return b[:i]
		}
	}
	return b
}
