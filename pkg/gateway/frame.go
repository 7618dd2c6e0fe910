package gateway

import (
	"bytes"
	"encoding/json"
	"strings"

	"github.com/mcpsec/sensor/internal/jsonscan"
)

// Reading a message the way the server will. Parsers disagree on repeated
// keys and on case: encoding/json matches "Method" for "method" and keeps
// the last, JavaScript and Python are exact and keep the last. A message
// whose meaning depends on the parser (a repeated field, or one spelled
// with other case) is refused: what passes means one thing to every
// server.

// message is the part of a JSON-RPC message the gateway reads (raw).
type message struct {
	ID     json.RawMessage
	HasID  bool // an "id" key, even null: some servers take that for a request
	Method string
	Params json.RawMessage
	Result json.RawMessage
	Error  json.RawMessage
}

func (m *message) request() bool { return m.Method != "" && m.HasID }

// idKey is an id as clients match it: a number and the string of that
// number are one id (JavaScript compares Number(id)); "" if the id is
// neither a string nor a number.
func idKey(id json.RawMessage) string {
	var s string
	if json.Unmarshal(id, &s) != nil {
		s = string(id)
	} else if s == "" {
		return "s:"
	}
	var f float64
	if err := json.Unmarshal([]byte(s), &f); err == nil {
		b, _ := json.Marshal(f)
		return "n:" + string(b)
	}
	if len(id) > 0 && id[0] == '"' {
		return "s:" + s
	}
	return ""
}

// parseMessage reads the top level of one message; false if it is not a
// JSON object, or is ambiguous.
func parseMessage(raw []byte) (message, bool) {
	var m message
	if !json.Valid(raw) {
		return m, false
	}
	ok := true
	seen := 0
	isObj := jsonscan.Fields(raw, func(k, v []byte) {
		i := exactKey(k, "id", "method", "params", "result", "error")
		switch {
		case i < 0:
			return
		case i >= 100 || seen&(1<<i) != 0:
			ok = false // another case, or repeated
			return
		}
		seen |= 1 << i
		switch i {
		case 0:
			// kept past the line (a pending call, a decision): a copy
			m.ID, m.HasID = bytes.Clone(bytes.TrimSpace(v)), true
		case 1:
			ok = ok && jsonscan.String(v, &m.Method)
		case 2:
			m.Params = v
		case 3:
			m.Result = v
		case 4:
			m.Error = v
		}
	})
	return m, ok && isObj
}

// exactKey is the index of the name a raw key is exactly; 100+ if it is
// one of them in other case (or escaped); -1 if none.
func exactKey(raw []byte, names ...string) int {
	for i, n := range names {
		if len(raw) == len(n)+2 && string(raw[1:len(raw)-1]) == n {
			return i
		}
	}
	var k string
	if bytes.IndexByte(raw, '\\') >= 0 {
		if json.Unmarshal(raw, &k) != nil {
			return 100
		}
	} else {
		k = string(raw[1 : len(raw)-1])
	}
	for i, n := range names {
		if strings.EqualFold(k, n) {
			return 100 + i
		}
	}
	return -1
}

// callParams are what a request's params name: a tool and its arguments,
// a resource, a prompt. False if ambiguous.
type callParams struct {
	Name string
	URI  string
	Args json.RawMessage
}

func parseParams(raw json.RawMessage) (callParams, bool) {
	var p callParams
	if len(raw) == 0 {
		return p, true
	}
	ok := true
	seen := 0
	jsonscan.Fields(raw, func(k, v []byte) {
		i := exactKey(k, "name", "uri", "arguments")
		switch {
		case i < 0:
			return
		case i >= 100 || seen&(1<<i) != 0:
			ok = false
			return
		}
		seen |= 1 << i
		switch i {
		case 0:
			ok = ok && jsonscan.String(v, &p.Name)
		case 1:
			ok = ok && jsonscan.String(v, &p.URI)
		case 2:
			p.Args = v
			ok = ok && !keysCollide(v)
		}
	})
	return p, ok
}

// keysCollide: an object repeats a key, or spells one in two cases (Go
// servers read keys ignoring case, the last one winning).
func keysCollide(obj []byte) bool {
	seen := map[string]bool{}
	bad := false
	jsonscan.Fields(obj, func(k, _ []byte) {
		var key string
		if json.Unmarshal(k, &key) != nil {
			bad = true
			return
		}
		l := strings.ToLower(key)
		bad = bad || seen[l]
		seen[l] = true
	})
	return bad
}

// itemName is a list item's name (or uri), read exactly; false if the
// item's keys collide.
func itemName(item []byte, field string) (string, bool) {
	var name string
	ok := !keysCollide(item)
	jsonscan.Fields(item, func(k, v []byte) {
		if exactKey(k, field) == 0 {
			ok = ok && jsonscan.String(v, &name)
		}
	})
	return name, ok
}

// argsOf parses a call's arguments when a constraint needs them.
func argsOf(raw json.RawMessage) func() map[string]any {
	return func() map[string]any {
		var a map[string]any
		if len(raw) > 0 {
			_ = json.Unmarshal(raw, &a)
		}
		return a
	}
}
