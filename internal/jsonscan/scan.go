// Package jsonscan reads JSON faster than encoding/json where the sensor
// reads every message: the top-level fields of a JSON-RPC message, and a
// call's arguments as Go values. Each gives what encoding/json would (its
// tests compare them on fuzzed input); where it is unsure it asks
// encoding/json.
package jsonscan

import (
	"bytes"
	"encoding/json"
	"unicode/utf8"
)

// The fields of a JSON-RPC message are read by a scanner over the top level
// of an object already checked by json.Valid, not by json.Unmarshal into a
// struct: that would scan the bytes twice more, byte by byte, for values
// (params, result) that are kept raw anyway. With KeyIs and String it gives
// what json.Unmarshal would: keys matched ignoring case, strings unescaped,
// a wrongly typed field an error (the caller keeps the last of a repeated
// key, as encoding/json does).

// Fields calls fn with each key (raw, quoted) and value of the valid
// JSON object b; false if b is not an object.
func Fields(b []byte, fn func(key, val []byte)) bool {
	i := skipSpace(b, 0)
	if i >= len(b) || b[i] != '{' {
		return false
	}
	i++
	for {
		i = skipSpace(b, i)
		if i >= len(b) || b[i] == '}' {
			return true
		}
		if b[i] == ',' {
			i = skipSpace(b, i+1)
		}
		ke := skipValue(b, i)
		key := b[i:ke]
		i = skipSpace(b, ke)
		i = skipSpace(b, i+1) // the colon
		ve := skipValue(b, i)
		fn(key, b[i:ve])
		i = ve
	}
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// skipValue returns the end of the valid JSON value starting at i.
func skipValue(b []byte, i int) int {
	switch b[i] {
	case '"':
		return skipString(b, i)
	case '{', '[':
		depth := 0
		for i < len(b) {
			switch b[i] {
			case '"':
				i = skipString(b, i)
				continue
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return i + 1
				}
			}
			i++
		}
		return i
	}
	for i < len(b) {
		switch b[i] {
		case ',', '}', ']', ' ', '\t', '\n', '\r':
			return i
		}
		i++
	}
	return i
}

// skipString returns the end of the string whose quote is at i.
func skipString(b []byte, i int) int {
	j := i + 1
	for {
		k := bytes.IndexByte(b[j:], '"')
		if k < 0 {
			return len(b)
		}
		j += k
		// a quote escaped by an odd run of backslashes does not end it
		n := 0
		for p := j - 1; p > i && b[p] == '\\'; p-- {
			n++
		}
		j++
		if n%2 == 0 {
			return j
		}
	}
}

// KeyIs says whether the raw key names name, ignoring case as
// encoding/json does.
func KeyIs(raw []byte, name string) bool {
	if bytes.IndexByte(raw, '\\') < 0 {
		return len(raw) == len(name)+2 && bytes.EqualFold(raw[1:len(raw)-1], []byte(name))
	}
	var k string
	return json.Unmarshal(raw, &k) == nil && bytes.EqualFold([]byte(k), []byte(name))
}

// String unquotes a JSON string as json.Unmarshal into a string
// would: null leaves it as it was, another type is an error.
func String(raw []byte, dst *string) bool {
	switch {
	case raw[0] == 'n':
		return true
	case raw[0] != '"':
		return false
	}
	in := raw[1 : len(raw)-1]
	if bytes.IndexByte(in, '\\') < 0 && utf8.Valid(in) {
		*dst = string(in)
		return true
	}
	return json.Unmarshal(raw, dst) == nil
}
