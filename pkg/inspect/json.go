package inspect

import (
	"bytes"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// Bounds of the JSON walk.
const (
	maxJSONDepth   = 64
	maxJSONStrings = 4096
	maxJSONText    = 256 << 10
	minBlob        = 256 // a string this long in one base64 word is data, not text
)

// Strings appends the string values of a JSON document (a JSON-RPC result
// or params), depth- and count-bounded; keys are skipped. For invalid JSON
// it appends the raw text as one string.
func Strings(raw []byte, out []string) []string {
	n0 := len(out)
	p := jsonWalker{raw: raw, list: out}
	if !p.document() {
		return append(out[:n0], string(raw))
	}
	return p.list
}

// InspectJSON is Inspect over the string values of raw joined with "\n",
// bounded to 256 KiB. Base64 blobs (images, audio) are left out: they hold
// no words. Invalid JSON is inspected as text.
func InspectJSON(raw []byte, o *Options) Report {
	p := jsonWalker{raw: raw}
	if !p.document() {
		return Inspect(string(raw[:min(len(raw), maxJSONText)]), o)
	}
	return InspectStrings(p.list, o)
}

// InspectStrings is InspectJSON over the strings Strings gave: for a
// caller that needs them too, so the JSON is walked once.
func InspectStrings(strs []string, o *Options) Report {
	n := 0
	for _, s := range strs {
		n += len(s) + 1
	}
	var b strings.Builder
	b.Grow(min(n, maxJSONText))
	for _, s := range strs {
		if b.Len() >= maxJSONText {
			break
		}
		if blob(s) {
			continue
		}
		if b.Len() > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(s[:min(len(s), maxJSONText-b.Len())])
	}
	return Inspect(b.String(), o)
}

// jsonWalker collects the string values of a document into list.
type jsonWalker struct {
	raw   []byte
	i     int
	list  []string
	count int
}

func (p *jsonWalker) document() bool {
	p.space()
	if !p.value(0) {
		return false
	}
	p.space()
	return p.i == len(p.raw)
}

func (p *jsonWalker) space() {
	for p.i < len(p.raw) {
		switch p.raw[p.i] {
		case ' ', '\t', '\n', '\r':
			p.i++
		default:
			return
		}
	}
}

func (p *jsonWalker) value(depth int) bool {
	if depth > maxJSONDepth || p.i >= len(p.raw) {
		return false
	}
	switch c := p.raw[p.i]; {
	case c == '{':
		return p.object(depth)
	case c == '[':
		return p.array(depth)
	case c == '"':
		return p.str(true)
	case c == '-' || c >= '0' && c <= '9':
		for p.i < len(p.raw) && (p.raw[p.i] >= '0' && p.raw[p.i] <= '9' || p.raw[p.i] == '-' || p.raw[p.i] == '+' ||
			p.raw[p.i] == '.' || p.raw[p.i]|0x20 == 'e') {
			p.i++
		}
		return true
	}
	for _, lit := range [...]string{"true", "false", "null"} {
		if len(p.raw)-p.i >= len(lit) && string(p.raw[p.i:p.i+len(lit)]) == lit {
			p.i += len(lit)
			return true
		}
	}
	return false
}

func (p *jsonWalker) object(depth int) bool {
	p.i++
	p.space()
	if p.i < len(p.raw) && p.raw[p.i] == '}' {
		p.i++
		return true
	}
	for {
		p.space()
		if p.i >= len(p.raw) || p.raw[p.i] != '"' || !p.str(false) {
			return false
		}
		p.space()
		if p.i >= len(p.raw) || p.raw[p.i] != ':' {
			return false
		}
		p.i++
		p.space()
		if !p.value(depth + 1) {
			return false
		}
		if more, ok := p.next('}'); !more {
			return ok
		}
	}
}

func (p *jsonWalker) array(depth int) bool {
	p.i++
	p.space()
	if p.i < len(p.raw) && p.raw[p.i] == ']' {
		p.i++
		return true
	}
	for {
		p.space()
		if !p.value(depth + 1) {
			return false
		}
		if more, ok := p.next(']'); !more {
			return ok
		}
	}
}

// next reads what follows a member or an element: a comma (more to come)
// or the closing bracket (done and well formed); anything else is not
// JSON.
func (p *jsonWalker) next(closing byte) (more, ok bool) {
	p.space()
	if p.i >= len(p.raw) {
		return false, false
	}
	switch p.raw[p.i] {
	case ',':
		p.i++
		return true, true
	case closing:
		p.i++
		return false, true
	}
	return false, false
}

// str reads a string; keep says it is a value to collect.
func (p *jsonWalker) str(keep bool) bool {
	// The closing quote is the first one not escaped. The walk is lenient
	// about raw control characters: what it reads is inspected, not
	// trusted.
	start := p.i + 1
	end, escaped := start, false
	for {
		q := bytes.IndexByte(p.raw[end:], '"')
		if q < 0 {
			return false
		}
		bs := bytes.IndexByte(p.raw[end:end+q], '\\')
		if bs < 0 {
			end += q
			break
		}
		escaped = true
		end += bs + 2 // the escape and the byte it escapes
		if end > len(p.raw) {
			return false
		}
	}
	p.i = end + 1
	body := p.raw[start:end]
	if !keep || p.count >= maxJSONStrings {
		return p.valid(body, escaped)
	}
	p.count++
	if !escaped {
		p.list = append(p.list, string(body))
		return true
	}
	b, ok := unescape(make([]byte, 0, len(body)), body, false)
	if !ok {
		return false
	}
	p.list = append(p.list, string(b))
	return true
}

// unescape appends the decoded JSON string body to dst (when !validate)
// and reports whether it is valid.
func unescape(dst, body []byte, validate bool) ([]byte, bool) {
	for len(body) > 0 {
		k := bytes.IndexByte(body, '\\')
		if k < 0 {
			k = len(body)
		}
		if !validate {
			dst = append(dst, body[:k]...)
		}
		if k == len(body) {
			break
		}
		if k+1 >= len(body) {
			return dst, false
		}
		var c byte
		n := 2
		switch body[k+1] {
		case '"', '\\', '/':
			c = body[k+1]
		case 'b':
			c = '\b'
		case 'f':
			c = '\f'
		case 'n':
			c = '\n'
		case 'r':
			c = '\r'
		case 't':
			c = '\t'
		case 'u':
			r, ok := hex4(body[k+2:])
			if !ok {
				return dst, false
			}
			n = 6
			if utf16.IsSurrogate(r) && len(body) >= k+12 && body[k+6] == '\\' && body[k+7] == 'u' {
				if r2, ok := hex4(body[k+8:]); ok {
					if d := utf16.DecodeRune(r, r2); d != utf8.RuneError {
						r, n = d, 12
					}
				}
			}
			if !validate {
				dst = utf8.AppendRune(dst, r)
			}
			body = body[k+n:]
			continue
		default:
			return dst, false
		}
		if !validate {
			dst = append(dst, c)
		}
		body = body[k+n:]
	}
	return dst, true
}

func hex4(b []byte) (rune, bool) {
	if len(b) < 4 {
		return 0, false
	}
	var r rune
	for _, c := range b[:4] {
		switch {
		case c >= '0' && c <= '9':
			r = r<<4 | rune(c-'0')
		case c|0x20 >= 'a' && c|0x20 <= 'f':
			r = r<<4 | rune(c|0x20-'a'+10)
		default:
			return 0, false
		}
	}
	return r, true
}

// blob reports a long string with no spaces from the base64 alphabet.
func blob[T string | []byte](b T) bool {
	if len(b) < minBlob {
		return false
	}
	for i := 0; i < len(b); i++ {
		c := b[i]
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '+' || c == '/' || c == '=' ||
			c == '-' || c == '_' || c == '\\') {
			return false
		}
	}
	return true
}

// valid checks the escapes of a string that is not kept.
func (p *jsonWalker) valid(body []byte, escaped bool) bool {
	if !escaped {
		return true
	}
	_, ok := unescape(nil, body, true)
	return ok
}
