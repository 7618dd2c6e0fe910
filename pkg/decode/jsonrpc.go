package decode

import (
	"bytes"
	"encoding/json"
	"errors"
	"time"

	"github.com/mcpsec/sensor/internal/jsonscan"
)

// Message is one JSON-RPC message seen on a server's stream.
type Message struct {
	Kind string    `json:"kind"` // always "message"
	Time time.Time `json:"ts"`
	Proc
	Direction string `json:"direction"` // "in": to the server, "out": from it
	Session   string `json:"session,omitempty"`
	Stream    string `json:"stream"`
	// Type is "request", "notification", "response" or "error"; "invalid"
	// for a line that is not JSON-RPC (Raw holds its start).
	Type    string          `json:"type"`
	Raw     string          `json:"raw,omitempty"`
	JSONRPC string          `json:"jsonrpc,omitempty"`
	Method  string          `json:"method,omitempty"`
	ID      json.RawMessage `json:"id,omitempty"`
	Tool    string          `json:"tool,omitempty"`
	// Arguments of a tools/call, also inside Params.
	Arguments json.RawMessage `json:"arguments,omitempty"`
	Params    json.RawMessage `json:"params,omitempty"`
	Result    json.RawMessage `json:"result,omitempty"`
	Error     json.RawMessage `json:"error,omitempty"`
	// Request is set on responses: the method (and tool) of the request they
	// answer, and how long it took.
	Request *RequestRef `json:"request,omitempty"`
	// ProtocolVersion: the MCP version the message is spoken in: the
	// request's own (_meta, 2026-07-28), else the session's negotiated
	// one (from the initialize response), else the HTTP header's.
	ProtocolVersion string `json:"protocol_version,omitempty"`
	// InputRequired: a result that asks the client for input (2026-07-28).
	InputRequired bool `json:"input_required,omitempty"`
	// DuplicateID: a request reused the id of one still pending in its
	// session. Unmatched: a response whose request was never seen.
	DuplicateID bool `json:"duplicate_id,omitempty"`
	Unmatched   bool `json:"unmatched,omitempty"`
	// HTTP: the exchange that carried it, on the HTTP transports.
	HTTP      *HTTPInfo `json:"http,omitempty"`
	Batch     int       `json:"batch,omitempty"`     // position+1 within a JSON-RPC batch
	Size      int       `json:"size"`                // bytes of the line
	Truncated bool      `json:"truncated,omitempty"` // cut at the message cap: fields may be missing
	AfterGap  bool      `json:"after_gap,omitempty"` // bytes were lost just before it
	Joined    bool      `json:"joined,omitempty"`    // the first message of a stream joined mid-life
}

// CallRef names a call: its session, request id, method and tool.
type CallRef struct {
	Session string          `json:"session"`
	ID      json.RawMessage `json:"id"`
	Method  string          `json:"method,omitempty"`
	Tool    string          `json:"tool,omitempty"`
}

// RequestRef points a response, or a progress notification, back at its
// request.
type RequestRef struct {
	Method string `json:"method"`
	Tool   string `json:"tool,omitempty"`
	// ID of the request: set on progress notifications, which carry a
	// token instead.
	ID        json.RawMessage `json:"id,omitempty"`
	LatencyMS float64         `json:"latency_ms"`
}

// rawMessage is the union of JSON-RPC request, notification and response.
type rawMessage struct {
	JSONRPC string          `json:"jsonrpc"`
	ID      json.RawMessage `json:"id"`
	Method  string          `json:"method"`
	Params  json.RawMessage `json:"params"`
	Result  json.RawMessage `json:"result"`
	Error   json.RawMessage `json:"error"`
}

var (
	errNotJSONRPC  = errors.New("not a JSON-RPC message")
	errInvalidJSON = errors.New("not JSON")
	errFieldType   = errors.New("a JSON-RPC field of the wrong type")
)

// parseLine decodes a line into messages: one, or several for a batch.
func parseLine(line []byte) ([]Message, error) {
	b := bytes.TrimSpace(line)
	if len(b) == 0 {
		return nil, errNotJSONRPC
	}
	if b[0] == '[' {
		var items []json.RawMessage
		if err := json.Unmarshal(b, &items); err != nil {
			return nil, err
		}
		if len(items) == 0 {
			return nil, errNotJSONRPC
		}
		out := make([]Message, 0, len(items))
		for i, it := range items {
			m, err := parseOne(it)
			if err != nil {
				return nil, err
			}
			m.Batch = i + 1
			m.Size = len(it)
			out = append(out, m)
		}
		return out, nil
	}
	m, err := parseOne(b)
	if err != nil {
		return nil, err
	}
	m.Size = len(line)
	return []Message{m}, nil
}

func parseOne(b []byte) (Message, error) {
	if len(b) == 0 || b[0] != '{' {
		return Message{}, errNotJSONRPC
	}
	if !json.Valid(b) {
		return Message{}, errInvalidJSON
	}
	b = append([]byte(nil), b...) // the message's fields are slices of its own copy
	var r rawMessage
	ok := true
	jsonscan.Fields(b, func(key, val []byte) {
		switch {
		case jsonscan.KeyIs(key, "jsonrpc"):
			ok = jsonscan.String(val, &r.JSONRPC) && ok
		case jsonscan.KeyIs(key, "method"):
			ok = jsonscan.String(val, &r.Method) && ok
		case jsonscan.KeyIs(key, "id"):
			r.ID = val
		case jsonscan.KeyIs(key, "params"):
			r.Params = val
		case jsonscan.KeyIs(key, "result"):
			r.Result = val
		case jsonscan.KeyIs(key, "error"):
			r.Error = val
		}
	})
	if !ok {
		return Message{}, errFieldType
	}
	// MCP messages carry "jsonrpc" (its value is checked by rules, not here:
	// a wrong version is protocol abuse worth reporting, not noise)
	if r.JSONRPC == "" {
		return Message{}, errNotJSONRPC
	}
	m := Message{
		Kind: "message", JSONRPC: r.JSONRPC, Method: r.Method, ID: r.ID,
		Params: r.Params, Result: r.Result, Error: r.Error,
	}
	switch {
	case r.Method != "" && r.ID == nil:
		m.Type = "notification"
	case r.Method != "":
		m.Type = "request"
	case r.Error != nil:
		m.Type = "error"
	default:
		m.Type = "response"
	}
	if r.Method == "tools/call" && len(r.Params) > 0 {
		var name string
		var args json.RawMessage
		good := true
		isObj := jsonscan.Fields(r.Params, func(key, val []byte) {
			switch {
			case jsonscan.KeyIs(key, "name"):
				good = jsonscan.String(val, &name) && good
			case jsonscan.KeyIs(key, "arguments"):
				args = val
			}
		})
		if isObj && good {
			m.Tool = name
			m.Arguments = args
		}
	}
	return m, nil
}

// parsePartial pulls what it can from the start of a truncated message: the
// method and id usually come first. Fields it cannot find stay empty; the
// cut field (usually params or result) is not kept.
func parsePartial(b []byte) (m Message) {
	m = Message{Kind: "message", Type: "unknown", Truncated: true}
	var hasResult, hasError bool
	defer func() {
		switch {
		case m.Method != "" && m.ID != nil:
			m.Type = "request"
		case m.Method != "":
			m.Type = "notification"
		case hasError:
			m.Type = "error"
		case hasResult:
			m.Type = "response"
		}
	}()
	dec := json.NewDecoder(bytes.NewReader(b))
	tok, err := dec.Token()
	if err != nil || tok != json.Delim('{') {
		return m
	}
	for dec.More() {
		kt, err := dec.Token()
		if err != nil {
			return m
		}
		key, _ := kt.(string)
		hasResult = hasResult || key == "result"
		hasError = hasError || key == "error"
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return m
		}
		switch key {
		case "jsonrpc":
			_ = json.Unmarshal(v, &m.JSONRPC)
		case "method":
			_ = json.Unmarshal(v, &m.Method)
		case "id":
			m.ID = v
		case "error":
			m.Error = v
		}
	}
	return m
}
