package inspect

import "unicode/utf8"

// ringSize words are kept for the phrase rules to look back on.
const (
	ringSize = 16
	wordMax  = 15 // longer words are kept unlowered: no class, no phrase
)

// Gap flags: what lay between the previous word and this one.
const (
	gStart  uint16 = 1 << iota // the first word of the text
	gNL                        // a newline
	gBlank                     // an empty line
	gSent                      // . ! ? followed by a space
	gColon                     // :
	gSemi                      // ;
	gComma                     // ,
	gParen                     // ( ) [ ]
	gAngle                     // < > (markup)
	gBullet                    // - * + starting a line
	gQuote                     // " ` or a typographic quote
)

// tok is one word of the text.
type tok struct {
	start, end int32
	cls        uint64
	gap        uint16 // what came before it
	sent       int32  // sentence number
	cap        bool   // starts with an upper-case letter
	upper      bool   // all its letters are upper case
	clause     bool   // starts a clause: an order may start here
	snake      bool   // has an inner underscore: an identifier (send_email)
	dotted     bool   // has an inner dot: a file name (credentials.json)
	n          uint8  // len(b) used, 0xff: too long
	b          [wordMax]byte
}

func (w *tok) is(s string) bool  { return int(w.n) == len(s) && string(w.b[:w.n]) == s }
func (w *tok) has(c uint64) bool { return w.cls&c != 0 }

// scanner holds the state of one Inspect call. It lives on the caller's
// stack: a clean text allocates nothing.
type scanner struct {
	text  string
	tools []string
	own   []string

	ring    [ringSize]tok
	n       int // words read
	none    tok // what back() returns past the start
	gap     uint16
	sent    int32
	sentLen int // words in the current sentence
	impAt   int // word number of the last order in this sentence, -1 if none
	sec     secretState
	pend    pending // an override waiting for the next word

	pendName           int // word number of "Hi Claude", -1: none
	pendStart, pendEnd int

	zwStart, zwEnd, zwCount int // the current run of zero-width characters
	tagStart, tagEnd        int // the current run of Unicode tag characters
	bidiEnd                 int
	lastRTL                 int // end of the last right-to-left letter

	regions    [8]region // comments, hidden elements, <important>: judged once read
	nregions   int
	commentEnd int  // a "<!--" before this is inside a comment
	images     int8 // 0: not yet known, 1: no "![" in the text, 2: some

	fs   []Finding
	best [nLabels]int8 // heaviest finding of each label, for the score
}

// back returns the word k before the last one read (0: the last one). The
// oldest slot is where the next word is being read, so it is not returned.
func (s *scanner) back(k int) *tok {
	if uint(k) >= uint(s.n) || k >= ringSize-1 {
		return &s.none
	}
	return &s.ring[(s.n-1-k)&(ringSize-1)]
}

// isWordByte reports whether c may be part of a word.
func isWordByte(c byte) bool {
	return c|0x20 >= 'a' && c|0x20 <= 'z' || c >= '0' && c <= '9' || c == '_'
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\r' || c == '\f' || c == '\v' }

func (s *scanner) run() {
	t := s.text
	s.impAt, s.lastRTL, s.tagEnd, s.zwEnd, s.bidiEnd = -1, -1000, -1, -1, -1
	s.sec.reset()
	s.pendName = -1
	s.gap = gStart
	for i := 0; i < len(t); {
		c := t[i]
		if c == ' ' {
			i++
			continue
		}
		switch {
		case byteClass[c]&kWord != 0:
			i = s.word(i)
		case c == '.' && i+1 < len(t) && t[i+1]|0x20 >= 'a' && t[i+1]|0x20 <= 'z' && (i == 0 || !isWordByte(t[i-1])):
			i = s.word(i) // .ssh, .env
		case c >= utf8.RuneSelf:
			i = s.nonASCII(i, false)
		case c == '<':
			s.gap |= gAngle
			i = s.angle(i)
		default:
			s.punct(i, c)
			i++
		}
	}
	s.finish()
}

// punct notes what a non-word ASCII byte says about the words around it,
// and hands markup starts to their detectors.
func (s *scanner) punct(i int, c byte) {
	t := s.text
	switch c {
	case '\n':
		if s.gap&gNL != 0 {
			s.gap |= gBlank
		}
		s.gap |= gNL
	case '.', '!', '?':
		if i+1 == len(t) || isSpace(t[i+1]) || t[i+1] == '\n' || t[i+1] == '"' || t[i+1] == '\'' || t[i+1] == ')' || t[i+1] == '<' {
			s.gap |= gSent
		}
	case ':':
		s.gap |= gColon
	case ';':
		s.gap |= gSemi
	case ',':
		s.gap |= gComma
	case '(', ')', ']':
		s.gap |= gParen
	case '[':
		s.gap |= gParen
		s.bracket(i)
	case '>':
		s.gap |= gAngle
	case '"', '`':
		s.gap |= gQuote
	case '-', '*', '+':
		if s.gap&(gNL|gStart) != 0 && s.gap&^(gNL|gStart|gBlank) == 0 && (i+1 == len(t) || isSpace(t[i+1])) {
			s.gap |= gBullet
		}
	case '#':
		if s.gap&(gNL|gStart) != 0 && (i == 0 || t[i-1] != '#') {
			s.heading(i)
		}
	}
}

// Byte classes for the word loop.
const (
	kLetter uint8 = 1 << iota
	kUpper
	kDigit
	kUnder
	kWord = kLetter | kDigit | kUnder
)

// byteClass is a constant table, filled at init and only read.
var byteClass = func() (t [256]uint8) {
	for c := 'a'; c <= 'z'; c++ {
		t[c] = kLetter
		t[c-'a'+'A'] = kLetter | kUpper
	}
	for c := '0'; c <= '9'; c++ {
		t[c] = kDigit
	}
	t['_'] = kUnder
	return t
}()

// word reads the word starting at i into the next ring slot, pushes it and
// runs the phrase rules.
func (s *scanner) word(i int) int {
	t := s.text
	w := &s.ring[s.n&(ringSize-1)]
	*w = tok{start: int32(i), gap: s.gap}
	j := i
	if t[j] == '.' {
		j++ // .ssh, .env
	}
	n := 0 // bytes of the word, which may skip invisible characters
	for {
		// the run of word bytes, lowered into w.b while it fits
		for ; j < len(t); j++ {
			c := t[j]
			k := byteClass[c]
			if k&kWord == 0 {
				break
			}
			if k&kUnder != 0 && j > i {
				w.snake = true
			}
			if n < wordMax {
				w.b[n] = c | (k&kUpper)<<4 // kUpper<<4 is 0x20
			}
			n++
		}
		if j >= len(t) {
			break
		}
		// what may continue a word: "don't", "e-mail", "mcp.json", a
		// typographic apostrophe, characters no one sees ("ig\u200bnore")
		c := t[j]
		if (c == '.' || c == '-' || c == '\'') && j+1 < len(t) && byteClass[t[j+1]]&kWord != 0 {
			w.dotted = w.dotted || c == '.'
			if n < wordMax {
				w.b[n] = c
			}
			n, j = n+1, j+1
			continue
		}
		if c < utf8.RuneSelf {
			break
		}
		r, size := utf8.DecodeRuneInString(t[j:])
		if r == '\u2019' && j+size < len(t) && byteClass[t[j+size]]&kWord != 0 {
			if n < wordMax {
				w.b[n] = '\''
			}
			n, j = n+1, j+size
			continue
		}
		if !invisibleInWord(r) {
			break
		}
		s.nonASCII(j, true)
		j += size
	}
	if t[i] == '.' {
		n++
		copy(w.b[1:], w.b[:wordMax-1])
		w.b[0] = '.'
	}
	w.end = int32(j)
	if n <= wordMax {
		w.n = uint8(n)
		w.cls = classOf(w.b[:n])
		if w.cls&cVerb != 0 && n <= 4 && allUpper(t[i:j]) {
			w.cls = 0 // GET, POST, PUT: HTTP methods, not orders
		}
	} else {
		w.n = 0xff
	}
	first := t[i]
	if first == '.' && i+1 < len(t) {
		first = t[i+1]
	}
	w.cap = first >= 'A' && first <= 'Z'
	w.upper = w.cap && allUpper(t[i:min(j, i+wordMax)])
	if (w.n == 4 || w.n == 5) && (w.is("http") || w.is("https")) && j+3 <= len(t) && t[j:j+3] == "://" ||
		n > 4 && w.n != 0xff && string(w.b[:4]) == "www." {
		return s.url(i)
	}
	s.push(w)
	return j
}

// allUpper reports a word of two or more letters, all upper case.
func allUpper(b string) bool {
	letters := 0
	for i := 0; i < len(b); i++ {
		k := byteClass[b[i]]
		if k&kLetter != 0 {
			if k&kUpper == 0 {
				return false
			}
			letters++
		}
	}
	return letters > 1
}

// push appends w to the ring, decides whether it starts a clause, and runs
// the rules.
func (s *scanner) push(w *tok) {
	g := w.gap
	newSent := g&(gStart|gSent|gBlank|gBullet|gAngle) != 0 || g&gNL != 0 && w.cap || s.sentLen >= 60
	if s.pend.weight > 0 && newSent {
		s.confirm(nil)
	}
	if newSent {
		s.endSentence()
		s.sent++
		s.sentLen = 0
		s.impAt = -1
	}
	if s.nregions > 0 {
		s.closeRegions(int(w.start))
	}
	w.sent = s.sent
	w.clause = newSent || g&(gColon|gSemi|gParen|gQuote) != 0
	s.sentLen++
	s.n++
	s.gap = 0
	s.onWord()
}

// invisibleInWord reports the characters that may hide inside a word.
func invisibleInWord(r rune) bool {
	return r == 0x00AD || r >= 0x200B && r <= 0x200D || r >= 0x2060 && r <= 0x2064 || r == 0xFEFF ||
		r >= 0xE0000 && r <= 0xE007F
}

func (s *scanner) finish() {
	if s.pend.weight > 0 {
		s.confirm(nil)
	}
	s.endSentence()
	s.flushZW()
	s.flushTags()
	s.judgeRegions()
}
