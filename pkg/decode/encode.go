package decode

import (
	"strconv"
	"time"
	"unicode/utf8"
)

// AppendJSON appends the message as one JSON object, the same object
// encoding/json makes of it (TestAppendJSONMatchesEncodingJSON), at a
// fraction of the cost: messages are the sensor's hottest output, and the
// raw JSON-RPC fields were validated when the line was parsed, so they are
// copied as they are instead of being scanned again.
func (m *Message) AppendJSON(b []byte) []byte {
	b = append(b, `{"kind":`...)
	b = appendString(b, m.Kind)
	b = append(b, `,"ts":"`...)
	b = m.Time.AppendFormat(b, time.RFC3339Nano)
	b = append(b, '"')
	b = appendProc(b, &m.Proc)
	b = appendField(b, "direction", m.Direction, false)
	b = appendField(b, "session", m.Session, true)
	b = appendField(b, "stream", m.Stream, false)
	b = appendField(b, "type", m.Type, false)
	b = appendField(b, "raw", m.Raw, true)
	b = appendField(b, "jsonrpc", m.JSONRPC, true)
	b = appendField(b, "method", m.Method, true)
	b = appendRaw(b, "id", m.ID)
	b = appendField(b, "tool", m.Tool, true)
	b = appendRaw(b, "arguments", m.Arguments)
	b = appendRaw(b, "params", m.Params)
	b = appendRaw(b, "result", m.Result)
	b = appendRaw(b, "error", m.Error)
	if r := m.Request; r != nil {
		b = append(b, `,"request":{"method":`...)
		b = appendString(b, r.Method)
		b = appendField(b, "tool", r.Tool, true)
		b = appendRaw(b, "id", r.ID)
		b = append(b, `,"latency_ms":`...)
		b = strconv.AppendFloat(b, r.LatencyMS, 'f', -1, 64)
		b = append(b, '}')
	}
	b = appendField(b, "protocol_version", m.ProtocolVersion, true)
	if m.InputRequired {
		b = append(b, `,"input_required":true`...)
	}
	if m.DuplicateID {
		b = append(b, `,"duplicate_id":true`...)
	}
	if m.Unmatched {
		b = append(b, `,"unmatched":true`...)
	}
	if h := m.HTTP; h != nil {
		b = appendHTTP(b, h)
	}
	if m.Batch != 0 {
		b = append(b, `,"batch":`...)
		b = strconv.AppendInt(b, int64(m.Batch), 10)
	}
	b = append(b, `,"size":`...)
	b = strconv.AppendInt(b, int64(m.Size), 10)
	if m.Truncated {
		b = append(b, `,"truncated":true`...)
	}
	if m.AfterGap {
		b = append(b, `,"after_gap":true`...)
	}
	if m.Joined {
		b = append(b, `,"joined":true`...)
	}
	return append(b, '}')
}

func appendHTTP(b []byte, h *HTTPInfo) []byte {
	b = append(b, `,"http":{"transport":`...)
	b = appendString(b, h.Transport)
	b = appendField(b, "method", h.Method, true)
	b = appendField(b, "target", h.Target, true)
	if h.Status != 0 {
		b = append(b, `,"status":`...)
		b = strconv.AppendInt(b, int64(h.Status), 10)
	}
	b = appendField(b, "host", h.Host, true)
	b = appendField(b, "origin", h.Origin, true)
	b = appendField(b, "session_id", h.SessionID, true)
	b = appendField(b, "protocol_version", h.ProtocolVersion, true)
	b = appendField(b, "mcp_method", h.McpMethod, true)
	b = appendField(b, "mcp_name", h.McpName, true)
	b = appendField(b, "content_type", h.ContentType, true)
	b = appendField(b, "event", h.Event, true)
	b = appendField(b, "event_id", h.EventID, true)
	b = appendField(b, "last_event_id", h.LastEventID, true)
	return append(b, '}')
}

func appendProc(b []byte, p *Proc) []byte {
	b = append(b, `,"pid":`...)
	b = strconv.AppendUint(b, uint64(p.PID), 10)
	b = append(b, `,"tid":`...)
	b = strconv.AppendUint(b, uint64(p.TID), 10)
	if p.PPID != 0 {
		b = append(b, `,"ppid":`...)
		b = strconv.AppendUint(b, uint64(p.PPID), 10)
	}
	b = appendField(b, "comm", p.Comm, true)
	return appendField(b, "server", p.Server, false)
}

func appendField(b []byte, key, v string, omitEmpty bool) []byte {
	if omitEmpty && v == "" {
		return b
	}
	b = append(b, ',', '"')
	b = append(b, key...)
	b = append(b, '"', ':')
	return appendString(b, v)
}

func appendRaw(b []byte, key string, raw []byte) []byte {
	if len(raw) == 0 {
		return b
	}
	b = append(b, ',', '"')
	b = append(b, key...)
	b = append(b, '"', ':')
	return append(b, raw...)
}

const hexDigits = "0123456789abcdef"

// appendString appends s as a JSON string, as encoding/json does: control
// characters, quotes, backslashes and the characters HTML treats specially
// escaped, invalid UTF-8 replaced by U+FFFD.
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
