package inspect

import (
	"strings"
	"unicode/utf8"
)

// Characters a reader does not see.
const (
	minZWRun     = 3  // a ZWJ between two emoji is one, never a run
	longZWRun    = 16 // enough to spell bytes in a binary code
	bidiContext  = 48 // bytes around an embedding searched for RTL letters
	flagTagLimit = 8  // an emoji subdivision flag: U+1F3F4 and up to 7 tags
)

func isZeroWidth(r rune) bool {
	return r >= 0x200B && r <= 0x200D || r >= 0x2060 && r <= 0x2064 || r == 0xFEFF
}

func isRTL(r rune) bool {
	return r >= 0x0590 && r <= 0x08FF || r >= 0xFB1D && r <= 0xFDFF || r >= 0xFE70 && r <= 0xFEFC ||
		r >= 0x10800 && r <= 0x10FFF || r >= 0x1E800 && r <= 0x1EFFF
}

// nonASCII looks at the character at i; inWord says a word is reading it
// (the word then decides where it ends). It returns where the next
// character starts.
func (s *scanner) nonASCII(i int, inWord bool) int {
	r, size := utf8.DecodeRuneInString(s.text[i:])
	switch {
	case r < 0x2000:
		if isRTL(r) {
			s.lastRTL = i + size
		}
	case isZeroWidth(r):
		if i != s.zwEnd {
			s.flushZW()
			s.zwStart, s.zwCount = i, 0
		}
		s.zwCount++
		s.zwEnd = i + size
	case r >= 0x202A && r <= 0x202E || r >= 0x2066 && r <= 0x2069:
		s.bidi(i, r, size)
	case r >= 0xE0000 && r <= 0xE007F:
		if i != s.tagEnd {
			s.flushTags()
			s.tagStart = i
		}
		s.tagEnd = i + size
	case r == '\u2022' || r == '\u25CF' || r == '\u25AA':
		s.gap |= gBullet
	case r == '\u201C' || r == '\u201D' || r == '\u2018' || r == '\u2019':
		if !inWord {
			s.gap |= gQuote
		}
	case isRTL(r):
		s.lastRTL = i + size
	}
	return i + size
}

func (s *scanner) flushZW() {
	if s.zwCount >= minZWRun {
		w := wZeroWidth
		if s.zwCount >= longZWRun {
			w = wZeroWidthLong
		}
		s.add(lZeroWidth, s.zwStart, s.zwEnd, w)
	}
	s.zwCount = 0
}

// flushTags reports a run of Unicode tag characters, which spell ASCII that
// no one sees: its span is the text they spell. A black flag followed by a
// few tags and CANCEL TAG is an emoji (the flag of England), not a message.
func (s *scanner) flushTags() {
	start, end := s.tagStart, s.tagEnd
	s.tagEnd = -1
	if end <= start {
		return
	}
	t := s.text
	n := (end - start) / 4
	if n <= flagTagLimit && start >= 4 && t[start-4:start] == "\U0001F3F4" && strings.HasSuffix(t[start:end], "\U000E007F") {
		return
	}
	if n < 2 && !tagPrintable(t[start:end]) || s.seen(lTags, start, wTags) {
		return
	}
	var b strings.Builder
	for i := start; i < end && b.Len() < maxSpan; {
		r, size := utf8.DecodeRuneInString(t[i:])
		i += size
		if c := r - 0xE0000; c >= 0x20 && c < 0x7F {
			b.WriteByte(byte(c))
		}
	}
	s.keep(lTags, start, wTags, b.String())
}

// bidi reports a bidirectional control. An override (U+202D, U+202E)
// reorders what the reader sees whatever the script; an embedding or
// isolate next to Arabic or Hebrew letters is how such text is written, and
// is left alone. A run of controls is one finding.
func (s *scanner) bidi(i int, r rune, size int) {
	// Controls close together are one finding: "\u202E \u2066// x\u2069".
	if s.bidiEnd >= 0 && i < s.bidiEnd+bidiContext {
		s.bidiEnd = i + size
		return
	}
	if r != 0x202D && r != 0x202E && (s.lastRTL >= i-bidiContext || rtlAhead(s.text[i+size:])) {
		return
	}
	s.bidiEnd = i + size
	end := min(len(s.text), i+size+40)
	for end < len(s.text) && !utf8.RuneStart(s.text[end]) {
		end++
	}
	s.add(lBidi, i, end, wBidi)
}

func rtlAhead(t string) bool {
	t = t[:min(len(t), bidiContext)]
	for _, r := range t {
		if isRTL(r) {
			return true
		}
	}
	return false
}

func tagPrintable(t string) bool {
	for _, r := range t {
		if c := r - 0xE0000; c >= 0x20 && c < 0x7F {
			return true
		}
	}
	return false
}
