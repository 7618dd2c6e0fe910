package jsonscan

import (
	"encoding/json"
	"strconv"
	"unicode/utf8"
)

// maxDepth bounds the nesting Value parses itself; deeper values are left
// to encoding/json.
const maxDepth = 64

// Value parses JSON into the values json.Unmarshal gives an `any`
// (map[string]any, []any, string, float64, bool, nil), in one pass. What it
// does not parse itself (a string with escapes or bytes that are not UTF-8,
// very deep nesting, anything malformed) it hands to json.Unmarshal, so
// the result is always json.Unmarshal's.
func Value(b []byte) (any, bool) {
	p := parser{b: b}
	v, ok := p.value(0)
	if ok {
		p.i = skipSpace(b, p.i)
		ok = p.i == len(b)
	}
	if ok {
		return v, true
	}
	var out any
	if json.Unmarshal(b, &out) != nil {
		return nil, false
	}
	return out, true
}

type parser struct {
	b []byte
	i int
}

func (p *parser) value(depth int) (any, bool) {
	b := p.b
	p.i = skipSpace(b, p.i)
	if p.i >= len(b) || depth > maxDepth {
		return nil, false
	}
	switch c := b[p.i]; {
	case c == '{':
		return p.object(depth)
	case c == '[':
		return p.array(depth)
	case c == '"':
		return p.str()
	case c == 't':
		return true, p.lit("true")
	case c == 'f':
		return false, p.lit("false")
	case c == 'n':
		return nil, p.lit("null")
	case c == '-' || ('0' <= c && c <= '9'):
		return p.number()
	}
	return nil, false
}

func (p *parser) lit(word string) bool {
	if len(p.b)-p.i < len(word) || string(p.b[p.i:p.i+len(word)]) != word {
		return false
	}
	p.i += len(word)
	return true
}

func (p *parser) object(depth int) (any, bool) {
	m := map[string]any{}
	p.i++ // {
	p.i = skipSpace(p.b, p.i)
	if p.i < len(p.b) && p.b[p.i] == '}' {
		p.i++
		return m, true
	}
	for {
		p.i = skipSpace(p.b, p.i)
		if p.i >= len(p.b) || p.b[p.i] != '"' {
			return nil, false
		}
		k, ok := p.str()
		if !ok {
			return nil, false
		}
		p.i = skipSpace(p.b, p.i)
		if p.i >= len(p.b) || p.b[p.i] != ':' {
			return nil, false
		}
		p.i++
		v, ok := p.value(depth + 1)
		if !ok {
			return nil, false
		}
		m[k.(string)] = v
		p.i = skipSpace(p.b, p.i)
		if p.i >= len(p.b) {
			return nil, false
		}
		switch p.b[p.i] {
		case ',':
			p.i++
		case '}':
			p.i++
			return m, true
		default:
			return nil, false
		}
	}
}

func (p *parser) array(depth int) (any, bool) {
	a := []any{}
	p.i++ // [
	p.i = skipSpace(p.b, p.i)
	if p.i < len(p.b) && p.b[p.i] == ']' {
		p.i++
		return a, true
	}
	for {
		v, ok := p.value(depth + 1)
		if !ok {
			return nil, false
		}
		a = append(a, v)
		p.i = skipSpace(p.b, p.i)
		if p.i >= len(p.b) {
			return nil, false
		}
		switch p.b[p.i] {
		case ',':
			p.i++
		case ']':
			p.i++
			return a, true
		default:
			return nil, false
		}
	}
}

// str reads a string with neither escapes nor control characters, in
// valid UTF-8; anything else is left to encoding/json.
func (p *parser) str() (any, bool) {
	start := p.i + 1
	for j := start; j < len(p.b); j++ {
		switch c := p.b[j]; {
		case c == '"':
			s := p.b[start:j]
			if !utf8.Valid(s) {
				return nil, false
			}
			p.i = j + 1
			return string(s), true
		case c == '\\' || c < 0x20:
			return nil, false
		}
	}
	return nil, false
}

// number reads a number as encoding/json does into an any: a float64.
func (p *parser) number() (any, bool) {
	j := p.i
	if p.b[j] == '-' {
		j++
	}
	digits := func() int {
		n := 0
		for j < len(p.b) && '0' <= p.b[j] && p.b[j] <= '9' {
			j++
			n++
		}
		return n
	}
	if j < len(p.b) && p.b[j] == '0' {
		j++
	} else if digits() == 0 {
		return nil, false
	}
	if j < len(p.b) && p.b[j] == '.' {
		j++
		if digits() == 0 {
			return nil, false
		}
	}
	if j < len(p.b) && (p.b[j] == 'e' || p.b[j] == 'E') {
		j++
		if j < len(p.b) && (p.b[j] == '+' || p.b[j] == '-') {
			j++
		}
		if digits() == 0 {
			return nil, false
		}
	}
	f, err := strconv.ParseFloat(string(p.b[p.i:j]), 64)
	if err != nil {
		return nil, false
	}
	p.i = j
	return f, true
}
