package inspect

import "strings"

const (
	commentLetters = 40   // a comment with this many letters says something
	styleLetters   = 8    // a hidden element with this many letters hides text
	tagBodyWords   = 4    // <IMPORTANT> needs a sentence inside to be an order
	tagScan        = 512  // bytes searched for a tag's '>'
	regionScan     = 4096 // bytes searched for a hidden element's end
)

// Region kinds: text that a renderer hides. Judged once scanned, so that the
// instruction findings inside it count.
const (
	rComment uint8 = iota
	rStyle
	rUrgent
)

type region struct {
	kind        uint8
	start, end  int
	letters     int
	marked      bool // an instruction finding lies inside
	ordered     bool // an order lies inside
	dataOrdered bool // an order to read or send lies inside
}

// angle looks at markup starting at i: a comment, a chat-template token or
// a tag. It returns where reading resumes: after a tag, whose attributes
// are not prose, or inside a comment, whose words are.
func (s *scanner) angle(i int) int {
	t := s.text
	switch {
	case strings.HasPrefix(t[i:], "<!--"):
		s.comment(i)
		return i + 4
	case strings.HasPrefix(t[i:], "<|"):
		j := i + 2
		for j < len(t) && j-i < 34 && isWordByte(t[j]) {
			j++
		}
		if j-i >= 4 && strings.HasPrefix(t[j:], "|>") {
			s.add(lUrgent, i, j+2, wUrgentTag)
			return j + 2
		}
		return i + 1
	}
	return s.tag(i)
}

// comment opens a region for an HTML comment; a "<!--" inside one is text.
func (s *scanner) comment(i int) {
	if i < s.commentEnd {
		return
	}
	t := s.text
	body := i + 4
	end := len(t)
	if k := strings.Index(t[body:], "-->"); k >= 0 {
		end = body + k + 3
	}
	s.commentEnd = end
	letters := 0
	for k := body; k < end && letters < commentLetters; k++ {
		if c := t[k] | 0x20; c >= 'a' && c <= 'z' {
			letters++
		}
	}
	s.openRegion(region{kind: rComment, start: i, end: end, letters: letters})
}

// tag looks at an HTML or pseudo-XML tag: <IMPORTANT> and its kin with a
// sentence inside, and elements styled to be invisible. It returns the end
// of the tag.
func (s *scanner) tag(i int) int {
	t := s.text
	j := i + 1
	closing := j < len(t) && t[j] == '/'
	if closing {
		j++
	}
	var nb [24]byte
	n := 0
	for j < len(t) && n < len(nb) && (isWordByte(t[j]) || t[j] == '-') {
		nb[n] = lower(t[j])
		n, j = n+1, j+1
	}
	if n == 0 || n == len(nb) || !(nb[0] >= 'a' && nb[0] <= 'z') {
		return i + 1
	}
	gt := 0
	for limit := min(len(t)-j, tagScan); gt < limit && t[j+gt] != '>'; gt++ {
		if t[j+gt] == '<' {
			return i + 1
		}
	}
	if gt == min(len(t)-j, tagScan) {
		return i + 1
	}
	attrs, bodyStart := t[j:j+gt], j+gt+1
	if attrs != "" && attrs != "/" && !isSpace(attrs[0]) && attrs[0] != '\n' {
		return i + 1 // <sys/types.h>, <admin@example.com>
	}
	if closing {
		return bodyStart
	}
	for k := 0; k < len(attrs); {
		// src="https://..." and href="https://..." are URLs all the same
		u := strings.Index(attrs[k:], "://")
		if u < 0 {
			break
		}
		k += u + 3
		if st := k - 3 - len("http"); st >= 0 && strings.EqualFold(attrs[st:k-3], "http") {
			k = max(k, s.url(j+st)-j)
		} else if st--; st >= 0 && strings.EqualFold(attrs[st:k-3], "https") {
			k = max(k, s.url(j+st)-j)
		}
	}
	switch string(nb[:n]) {
	case "important", "system", "instructions", "instruction", "system_prompt", "system-prompt", "sys",
		"admin", "urgent", "critical", "override", "secret", "hidden", "system-reminder", "system_message",
		"system-message", "user_instructions", "ai_instructions", "assistant_instructions":
		// <IMPORTANT> in capitals with a sentence inside is the tool
		// poisoning idiom; <important> is also AWS's and DocBook's
		// markup, an order only if one is found inside it.
		end, words := wordsUntilTag(t[bodyStart:min(len(t), bodyStart+400)])
		switch {
		case words < tagBodyWords:
		case allUpper(t[i+1 : i+1+n]):
			s.add(lUrgent, i, bodyStart+end, wUrgentTag)
		case s.nregions < len(s.regions):
			s.openRegion(region{kind: rUrgent, start: i, end: closeTag(t, bodyStart, nb[:n])})
		}
	}
	if s.nregions < len(s.regions) && (containsFold(attrs, "style") && hiddenStyle(attrs) || hasBareAttr(attrs, "hidden")) {
		end := closeTag(t, bodyStart, nb[:n])
		s.openRegion(region{kind: rStyle, start: i, end: end, letters: letters(t[bodyStart:end])})
	}
	return bodyStart
}

// wordsUntilTag counts words up to the next '<'; end is where it stopped.
func wordsUntilTag(b string) (end, words int) {
	in := false
	for end = 0; end < len(b) && b[end] != '<'; end++ {
		c := b[end] | 0x20
		letter := c >= 'a' && c <= 'z'
		if letter && !in {
			words++
		}
		in = letter
	}
	return end, words
}

// closeTag finds the end of the element named name whose body starts at i.
func closeTag(t string, i int, name []byte) int {
	limit := min(len(t), i+regionScan)
	for k := i; k < limit; {
		lt := strings.Index(t[k:limit], "</")
		if lt < 0 {
			break
		}
		k += lt + 2
		if k+len(name) <= len(t) && equalFoldBytes(t[k:k+len(name)], name) {
			return k + len(name)
		}
	}
	return min(len(t), i+1024)
}

func equalFoldBytes(s string, b []byte) bool {
	for i := range b {
		if lower(s[i]) != b[i] {
			return false
		}
	}
	return true
}

// letters counts the letters of the text outside tags.
func letters(b string) int {
	n, in := 0, false
	for i := 0; i < len(b); i++ {
		switch c := b[i]; {
		case c == '<':
			in = true
		case c == '>':
			in = false
		case !in && c|0x20 >= 'a' && c|0x20 <= 'z':
			n++
		}
	}
	return n
}

// hasBareAttr reports the boolean attribute name in a tag's attributes.
func hasBareAttr(attrs, name string) bool {
	for k := 0; k+len(name) <= len(attrs); k++ {
		if attrs[k] == ' ' && k+1+len(name) <= len(attrs) && strings.EqualFold(attrs[k+1:k+1+len(name)], name) {
			e := k + 1 + len(name)
			if e == len(attrs) || attrs[e] == ' ' || attrs[e] == '/' {
				return true
			}
		}
	}
	return false
}

// bracket: "[SYSTEM] ignore ...", "[INST]", "[system prompt]: you are".
// An INI section ("[system]" alone on its line) and a log tag ("[SYSTEM]
// backup done") are not orders.
func (s *scanner) bracket(i int) {
	t := s.text
	end := strings.IndexByte(t[i+1:min(len(t), i+26)], ']')
	if end < 2 {
		return
	}
	raw := t[i+1 : i+1+end]
	var nb [24]byte
	upper := true
	for k := 0; k < len(raw); k++ {
		c := raw[k]
		if !(c|0x20 >= 'a' && c|0x20 <= 'z' || c == ' ' || c == '/' || c == '_') {
			return
		}
		upper = upper && !(c >= 'a' && c <= 'z')
		nb[k] = lower(c)
	}
	name := string(nb[:len(raw)])
	after := i + 2 + end
	switch name {
	case "inst", "/inst", "sys", "/sys":
		if upper {
			s.add(lUrgent, i, after, wUrgentTag)
		}
	case "system", "system message", "system prompt", "system note", "system instructions", "system override",
		"important", "important instructions", "instructions", "admin", "new instructions":
		// "[system](#error_state)": the Bing-era role link
		if leadsOrder(t[after:min(len(t), after+40)]) || strings.HasPrefix(t[after-1:], "](#") {
			s.add(lUrgent, i, min(len(t), after+40), wUrgentTag)
		}
	}
}

// leadsOrder reports whether b starts with a word that opens an order or
// speaks to the reader: "Ignore", "You are", "Send".
func leadsOrder(b string) bool {
	k := 0
	for k < len(b) && (b[k] == ' ' || b[k] == ':' || b[k] == '-' || b[k] == '\n') {
		k++
	}
	var nb [wordMax]byte
	n := 0
	for k < len(b) && n < wordMax && (isWordByte(b[k]) || b[k] == '\'') {
		nb[n] = lower(b[k])
		n, k = n+1, k+1
	}
	w := string(nb[:n])
	return n > 0 && (classOf(nb[:n])&(cImperativeLead|cOverV) != 0 && classOf(nb[:n])&cModal == 0 ||
		w == "you" || w == "your" || w == "from" || w == "new" || w == "before" || w == "when")
}

// heading: "### SYSTEM", "## System:", "### Instruction:", "# NEW INSTRUCTIONS".
// A README's "## Instructions" is a heading, not a role.
func (s *scanner) heading(i int) {
	t := s.text
	j := i
	for j < len(t) && t[j] == '#' {
		j++
	}
	for j < len(t) && t[j] == ' ' {
		j++
	}
	eol := strings.IndexByte(t[j:min(len(t), j+48)], '\n')
	if eol < 0 {
		eol = min(len(t), j+48) - j
	}
	line := strings.TrimRight(t[j:j+eol], " \r")
	colon := strings.HasSuffix(line, ":")
	line = strings.TrimSuffix(line, ":")
	var nb [48]byte
	upper := true
	for k := 0; k < len(line); k++ {
		upper = upper && !(line[k] >= 'a' && line[k] <= 'z')
		nb[k] = lower(line[k])
	}
	switch string(nb[:len(line)]) {
	case "system", "system prompt", "system message", "system instructions", "instruction", "new instructions",
		"admin", "system override", "important instructions":
		if upper || colon {
			s.add(lUrgent, i, j+eol, wUrgentTag)
		}
	}
}
