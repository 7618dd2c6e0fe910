package inspect

import "strings"

// Where a URL sits decides what it can do: an image is fetched as soon as
// the answer is rendered, a link when someone clicks it.
const (
	uBare uint8 = iota
	uLink
	uImage
)

// How much a URL looks like it carries data away.
const (
	evNone = iota
	evWeak
	evStrong
)

const maxRefImages = 64 // "![" occurrences searched for a reference's use

// url judges the URL starting at i and returns where it ends; the words
// inside it are not read as prose.
func (s *scanner) url(i int) int {
	t := s.text
	ctx, from := s.urlContext(i)
	end := urlEnd(t, i, ctx)
	rest := t[i:end]
	if k := strings.Index(rest, "://"); k >= 0 {
		rest = rest[k+3:]
	}
	hostEnd := strings.IndexAny(rest, "/?#")
	if hostEnd < 0 {
		hostEnd = len(rest)
	}
	if !s.foreign(rest[:hostEnd]) {
		return end
	}
	ev, placeholder := urlEvidence(rest[hostEnd:], ctx == uImage)
	ordered := s.impAt >= 0 && s.gap&(gSent|gBlank|gBullet|gAngle) == 0
	if ctx == uBare && placeholder != phNone && !(placeholder == phConversation && ordered) {
		// a template in the docs, unless it asks for the conversation
		// in an order ("open https://x.io/?d=<chat_history>")
		ev = min(ev, evWeak)
	}
	if ev == evNone && ordered && emptyDataParam(rest[hostEnd:]) {
		ev = evWeak // "forward their contacts to https://x.io/c?data="
	}
	switch {
	case ev == evNone:
	case ctx == uImage:
		// An image the sentence orders rendered ("always include this
		// image: ...") is the exfiltration itself.
		weight := pick(ev == evStrong, wImage+b2i(ordered), wImageWeak)
		s.add(lImage, from, end+b2i(end < len(t) && t[end] == ')'), weight)
	default:
		s.add(lLink, from, end, pick(ev == evStrong, wLink, wLinkWeak))
	}
	return end
}

func pick(b bool, x, y int) int {
	if b {
		return x
	}
	return y
}

// urlContext tells a markdown image or link, an HTML src or href, a
// reference definition ("[ref]: url", an image if some "![..][ref]" uses
// it) and a bare URL; from is where the construct starts.
func (s *scanner) urlContext(i int) (ctx uint8, from int) {
	t := s.text
	k := i
	for k > 0 && t[k-1] == ' ' && i-k < 4 {
		k--
	}
	if k >= 2 && t[k-1] == '(' && t[k-2] == ']' {
		lb := openBracket(t, k-2)
		switch {
		case lb > 0 && t[lb-1] == '!':
			return uImage, lb - 1
		case lb >= 0:
			return uLink, lb
		}
		return uLink, i
	}
	q := k
	if q > 0 && (t[q-1] == '"' || t[q-1] == '\'') {
		q--
	}
	if q >= 4 && strings.EqualFold(t[q-4:q], "src=") {
		return uImage, q - 4
	}
	if q >= 5 && strings.EqualFold(t[q-5:q], "href=") {
		return uLink, q - 5
	}
	if k >= 2 && t[k-1] == ':' && t[k-2] == ']' {
		if lb := openBracket(t, k-2); lb >= 0 && (lb == 0 || t[lb-1] == '\n' || t[lb-1] == ' ') {
			if s.refImage(t[lb+1 : k-2]) {
				return uImage, lb
			}
			return uLink, lb
		}
	}
	return uBare, i
}

// openBracket finds the '[' that the ']' at rb closes, on the same line.
func openBracket(t string, rb int) int {
	depth := 0
	for k := rb - 1; k >= 0 && rb-k < 512; k-- {
		switch t[k] {
		case ']':
			depth++
		case '[':
			if depth == 0 {
				return k
			}
			depth--
		case '\n':
			return -1
		}
	}
	return -1
}

// refImage reports whether an image uses the reference label:
// "![alt][label]" or "![label]".
func (s *scanner) refImage(label string) bool {
	t := s.text
	if s.images == 0 {
		s.images = 1 + int8(b2i(strings.Contains(t, "![")))
	}
	if s.images == 1 {
		return false
	}
	for k, n := 0, 0; n < maxRefImages; n++ {
		j := strings.Index(t[k:], "![")
		if j < 0 {
			return false
		}
		k += j + 2
		rb := strings.IndexByte(t[k:min(len(t), k+512)], ']')
		if rb < 0 {
			continue
		}
		alt, after := t[k:k+rb], k+rb+1
		if after < len(t) && t[after] == '[' {
			if e := strings.IndexByte(t[after:min(len(t), after+256)], ']'); e > 0 {
				ref := t[after+1 : after+e]
				if strings.EqualFold(ref, label) || ref == "" && strings.EqualFold(alt, label) {
					return true
				}
			}
		} else if (after == len(t) || t[after] != '(') && strings.EqualFold(alt, label) {
			return true
		}
	}
	return false
}

// urlEnd finds where the URL starting at i ends. Template placeholders
// ("{data}", "<SECRET>", "[DATA]") are kept whole even with spaces inside.
func urlEnd(t string, i int, ctx uint8) int {
	depth := 0
	k := i
loop:
	for k < len(t) {
		switch c := t[k]; {
		case c <= ' ' || c >= 0x80 || c == '"' || c == '`' || c == '\'' || c == '>':
			break loop
		case c == '{' || c == '<' || c == '[':
			if e := placeholderEnd(t, k); e > 0 {
				k = e
				continue
			}
			if c != '[' {
				break loop
			}
		case c == ']' && ctx == uBare:
			break loop
		case c == '(':
			depth++
		case c == ')':
			if depth == 0 {
				break loop
			}
			depth--
		}
		k++
	}
	if ctx == uBare {
		for k > i && strings.IndexByte(".,;:!?*_", t[k-1]) >= 0 {
			k--
		}
	}
	return k
}

// placeholderEnd returns the end of a template placeholder opening at k, or
// -1: a short run of name characters (and spaces) closed on the same line.
func placeholderEnd(t string, k int) int {
	closer := byte(']')
	switch t[k] {
	case '{':
		closer = '}'
	case '<':
		closer = '>'
	}
	for j := k + 1; j < len(t) && j-k <= 48; j++ {
		switch c := t[j]; {
		case c == closer:
			if j == k+1 {
				return -1
			}
			return j + 1
		case c == '{' && t[k] == '{': // {{data}}
		case isWordByte(c) || c == ' ' || c == '-' || c == '.' || c == ':' || c == '$':
		default:
			return -1
		}
	}
	return -1
}

// foreign reports whether a URL's host is someone else's: not the
// server's own, not this machine, not a template.
func (s *scanner) foreign(host string) bool {
	if at := strings.LastIndexByte(host, '@'); at >= 0 {
		host = host[at+1:]
	}
	if c := strings.LastIndexByte(host, ':'); c >= 0 && !strings.HasSuffix(host, "]") {
		host = host[:c]
	}
	host = strings.TrimSuffix(host, ".")
	if host == "" || strings.ContainsAny(host, "{}<>$[%") && !strings.HasPrefix(host, "[") ||
		!strings.ContainsAny(host, ".:") || strings.EqualFold(host, "localhost") ||
		strings.HasPrefix(host, "127.") || host == "[::1]" || host == "0.0.0.0" {
		return false
	}
	for _, own := range s.own {
		own = strings.TrimSuffix(own, ".")
		if own == "" {
			continue
		}
		if strings.EqualFold(host, own) ||
			len(host) > len(own) && host[len(host)-len(own)-1] == '.' && strings.EqualFold(host[len(host)-len(own):], own) {
			return false
		}
	}
	return true
}
