package inspect

import (
	"strconv"
	"unicode/utf8"
)

// makeSpan quotes t for a report: valid UTF-8, at most maxSpan bytes, with
// control and invisible characters written as \u{XXXX} so that a reader sees
// them and a terminal does not act on them.
func makeSpan(t string) string { return Escape(t, maxSpan) }

// Escape makes text from an untrusted source safe to show a person or a
// model: valid UTF-8, control and invisible characters (zero-width, bidi,
// Unicode tags) written as \u{XXXX}, cut with "…" past max bytes (0: no
// limit).
func Escape(t string, max int) string {
	maxSpan := max
	if maxSpan <= 0 {
		maxSpan = len(t)*10 + 16
	}
	b := make([]byte, 0, min(len(t)+8, maxSpan))
	for i := 0; i < len(t); {
		r, size := utf8.DecodeRuneInString(t[i:])
		i += size
		var piece [16]byte
		p := piece[:0]
		switch {
		case r == utf8.RuneError && size == 1:
			p = append(p, `\u{FFFD}`...)
		case r < 0x20 || r >= 0x7F && r < 0xA0 || invisible(r):
			var hx [8]byte
			h := strconv.AppendUint(hx[:0], uint64(r), 16)
			p = append(p, `\u{`...)
			for k := len(h); k < 4; k++ {
				p = append(p, '0')
			}
			p = append(p, upperHex(h)...)
			p = append(p, '}')
		default:
			p = utf8.AppendRune(p, r)
		}
		if len(b)+len(p) > maxSpan || len(b)+len(p) > maxSpan-len("…") && i < len(t) {
			return string(append(b, "…"...))
		}
		b = append(b, p...)
	}
	return string(b)
}

// upperHex upper-cases hex digits in place.
func upperHex(h []byte) []byte {
	for i, c := range h {
		if c >= 'a' && c <= 'f' {
			h[i] = c - 'a' + 'A'
		}
	}
	return h
}

// invisible reports characters that render as nothing or reorder the text.
func invisible(r rune) bool {
	switch {
	case r == 0x00AD, r == 0x034F, r == 0x061C, r == 0x115F, r == 0x1160, r == 0x17B4, r == 0x17B5,
		r >= 0x180B && r <= 0x180E, r >= 0x200B && r <= 0x200F, r >= 0x2028 && r <= 0x202E,
		r >= 0x2060 && r <= 0x206F, r == 0x3164, r >= 0xFE00 && r <= 0xFE0F, r == 0xFEFF, r == 0xFFA0,
		r >= 0xFFF0 && r <= 0xFFFB, r >= 0x1D173 && r <= 0x1D17A, r >= 0xE0000 && r <= 0xE0FFF:
		return true
	}
	return false
}
