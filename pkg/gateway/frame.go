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
	Method string
	Params json.RawMessage
	Result json.RawMessage
	Error  json.RawMessage
}

func (m *message) request() bool { return m.Method != "" && len(m.ID) > 0 && string(m.ID) != "null" }

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
			m.ID = bytes.Clone(bytes.TrimSpace(v))
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
		}
	})
	return p, ok
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
