package decode

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/mcpsec/sensor/pkg/wire"
)

// feedCuts delivers s as stream (ino, dir) in pieces sized by cuts, losing
// every drop-th piece (drop 0: none).
func feedCuts(d *Decoder, ino uint64, dir uint8, s string, cuts []byte, drop uint8, emit func(Event)) {
	off := 0
	for i := 0; off < len(s); i++ {
		step := 7
		if len(cuts) > 0 {
			step = int(cuts[i%len(cuts)])*3 + 1
		}
		end := min(off+step, len(s))
		if drop == 0 || i%(int(drop)+1) != int(drop) {
			_ = d.Record(chunk(1, ino, dir, wire.FileSock, 5, uint64(off), s[off:end]), emit)
		}
		off = end
	}
}

// FuzzHTTPNoSplice sends numbered exchanges (JSON and SSE replies,
// Content-Length and chunked bodies) through the decoder in fuzzed pieces,
// losing some. Every whole message that comes out must be one that went
// in, byte for byte; with nothing lost, every message comes out.
func FuzzHTTPNoSplice(f *testing.F) {
	f.Add(uint8(6), []byte{5, 60, 7}, uint8(0), "pad", uint8(3))
	f.Add(uint8(9), []byte{1, 2, 3}, uint8(2), "x\n\ny", uint8(0))
	f.Add(uint8(4), []byte{200}, uint8(1), "", uint8(255))
	f.Fuzz(func(t *testing.T, n uint8, cuts []byte, drop uint8, pad string, mode uint8) {
		if len(pad) > 64 || len(cuts) > 64 {
			return
		}
		var in, out strings.Builder
		sent := map[string]string{}
		for i := 0; i < int(n); i++ {
			p, _ := json.Marshal(map[string]string{"pad": strings.Repeat(pad, i%4)})
			req := fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":"m","params":%s}`, i, p)
			resp := fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"result":%s}`, i, p)
			sent["in"+fmt.Sprint(i)] = string(p)
			sent["out"+fmt.Sprint(i)] = string(p)
			bit := (int(mode) >> (i % 8)) & 1
			if bit == 0 {
				in.WriteString(post("S", req))
			} else {
				in.WriteString(fmt.Sprintf("POST /mcp HTTP/1.1\r\nMcp-Session-Id: S\r\nTransfer-Encoding: chunked\r\n\r\n%x\r\n%s\r\n0\r\n\r\n", len(req), req))
			}
			if (i+bit)%2 == 0 {
				out.WriteString(jsonResp("", resp))
			} else {
				out.WriteString(sseResp("event: message\ndata: "+resp+"\n\n", ": ping\n\n"))
			}
		}
		d := NewDecoder(Options{MaxMessage: 1 << 16})
		var got []*Message
		emit := func(e Event) {
			if m, ok := e.(*Message); ok {
				got = append(got, m)
			}
		}
		feedCuts(d, 1, wire.DirIn, in.String(), cuts, drop, emit)
		feedCuts(d, 1, wire.DirOut, out.String(), cuts, drop, emit)
		d.Flush(emit)
		for _, m := range got {
			if m.Truncated {
				continue
			}
			body := m.Params
			if m.Direction == "out" {
				body = m.Result
			}
			want, ok := sent[m.Direction+string(m.ID)]
			if !ok || string(body) != want {
				t.Fatalf("spliced or corrupt message: %s id %s body %s type %s raw %q gap %v", m.Direction, m.ID, body, m.Type, m.Raw, m.AfterGap)
			}
		}
		if drop == 0 && len(got) != 2*int(n) {
			t.Fatalf("lossless stream: %d of %d messages", len(got), 2*int(n))
		}
	})
}

// FuzzHTTPParser feeds arbitrary bytes as both directions of a connection.
// Nothing may panic and no buffer may outgrow its bound.
func FuzzHTTPParser(f *testing.F) {
	f.Add([]byte(post("S", callReq)), []byte(sseResp("data: "+callResp+"\n\n")), []byte{3, 9})
	f.Add([]byte("GET / HTTP/1.1\r\n\r\nPOST /x HTTP/1.0\r\nContent-Length: 5\r\n\r\nhello"), []byte("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nz\r\n"), []byte{1})
	f.Add([]byte("\x16\x03\x01"), []byte("HTTP/1.1 101 Switching\r\n\r\n\x00\x01"), []byte{})
	f.Fuzz(func(t *testing.T, in, out, cuts []byte) {
		if len(in)+len(out) > 1<<16 {
			return
		}
		d := NewDecoder(Options{MaxMessage: 512})
		emit := func(e Event) {
			if m, ok := e.(*Message); ok && m.Size > 0 && len(m.Params)+len(m.Result) > 512 {
				t.Fatalf("message larger than the cap: %d", len(m.Params)+len(m.Result))
			}
		}
		feedCuts(d, 1, wire.DirIn, string(in), cuts, 0, emit)
		feedCuts(d, 1, wire.DirOut, string(out), cuts, 0, emit)
		for _, c := range d.http.conns {
			for _, h := range c.halves {
				if h != nil && (len(h.buf) > maxHead+512 || len(h.body) > 512) {
					t.Fatalf("buffer beyond its bound: head %d body %d", len(h.buf), len(h.body))
				}
			}
		}
		d.Flush(emit)
	})
}

// FuzzSSE feeds an arbitrary event-stream body, in arbitrary pieces.
func FuzzSSE(f *testing.F) {
	f.Add([]byte("event: message\nid: 1\ndata: {\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{}}\n\n: keepalive\n\n"), []byte{2, 5})
	f.Add([]byte("data: a\r\ndata: b\r\n\r\nevent: endpoint\ndata: /m?sessionId=x\n\n"), []byte{0})
	f.Fuzz(func(t *testing.T, body, cuts []byte) {
		if len(body) > 1<<16 {
			return
		}
		d := NewDecoder(Options{MaxMessage: 256})
		s := "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n\r\n" + string(body)
		feedCuts(d, 1, wire.DirIn, "GET /mcp HTTP/1.1\r\n\r\n", nil, 0, func(Event) {})
		feedCuts(d, 1, wire.DirOut, s, cuts, 0, func(e Event) {
			if m, ok := e.(*Message); ok && !m.Truncated && m.Size > 256 {
				t.Fatalf("untruncated message of %d bytes over the cap", m.Size)
			}
		})
		for _, c := range d.http.conns {
			if h := c.halves[1]; h != nil && h.sse != nil && (len(h.sse.data) > 256 || len(h.sse.line) > 256+16) {
				t.Fatalf("sse buffers %d %d", len(h.sse.data), len(h.sse.line))
			}
		}
		d.Flush(func(Event) {})
	})
}

// FuzzSessions drives the session layer with arbitrary messages: pending
// requests and per-session state stay within their bounds.
func FuzzSessions(f *testing.F) {
	f.Add([]byte{0, 1, 2, 3, 4, 5, 6, 7, 8, 9})
	f.Add([]byte{1, 1, 1, 1, 130, 130, 7})
	f.Fuzz(func(t *testing.T, ops []byte) {
		s := NewSessions(8)
		s.MaxSessions = 4
		methods := []string{"initialize", "tools/list", "tools/call", "notifications/cancelled", "ping"}
		for i, op := range ops {
			m := &Message{
				Session:   fmt.Sprint("s", op%5),
				Direction: []string{"in", "out"}[op>>7],
				ID:        json.RawMessage(fmt.Sprint(op % 11)),
			}
			switch op % 3 {
			case 0:
				m.Type, m.Method = "request", methods[int(op)%len(methods)]
				if m.Method == "notifications/cancelled" {
					m.Type, m.ID = "notification", nil
					m.Params = json.RawMessage(fmt.Sprintf(`{"requestId":%d}`, i%11))
				}
			case 1:
				m.Type = "response"
				m.Result = json.RawMessage(`{"protocolVersion":"2025-11-25","tools":[{"name":"t"},{"name":""},1]}`)
			default:
				m.Type = "error"
				if op%2 == 0 {
					m.ID = json.RawMessage("null")
				}
			}
			s.pair(m)
			if s.Pending() > 8 || len(s.state) > 4 {
				t.Fatalf("bounds: pending %d sessions %d", s.Pending(), len(s.state))
			}
		}
	})
}
