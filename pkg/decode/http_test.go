package decode

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/mcpsec/sensor/pkg/wire"
)

// conv drives one server's side of HTTP connections, byte stream by byte
// stream, with exact offsets, as the kernel would deliver them.
type conv struct {
	t    *testing.T
	d    *Decoder
	off  map[StreamKey]uint64
	evs  []Event
	step int // bytes per chunk; 0: whole writes
}

func newConv(t *testing.T, maxMessage int) *conv {
	return &conv{t: t, d: NewDecoder(Options{MaxMessage: maxMessage}), off: map[StreamKey]uint64{}}
}

// send delivers s on socket ino in direction dir (DirIn: read by the server).
func (c *conv) send(ino uint64, dir uint8, s string) {
	c.t.Helper()
	k := StreamKey{ino, dir}
	step := c.step
	if step <= 0 {
		step = len(s)
	}
	for len(s) > 0 {
		n := min(step, len(s))
		c.evs = append(c.evs, decodeAll(c.t, c.d, chunk(7, ino, dir, wire.FileSock, 5, c.off[k], s[:n]))...)
		c.off[k] += uint64(n)
		s = s[n:]
	}
}

// lose declares n bytes of a stream lost, as a capture cut does.
func (c *conv) lose(ino uint64, dir uint8, n uint64) {
	k := StreamKey{ino, dir}
	h := wire.ChunkHeader{H: hdr(7), Ino: ino, Dir: dir, Ftype: wire.FileSock, Fd: 5, Off: c.off[k], Skipped: uint32(n)}
	c.evs = append(c.evs, decodeAll(c.t, c.d, wire.MarshalChunk(h, nil))...)
	c.off[k] += n
}

func (c *conv) messages() []*Message {
	c.d.Flush(func(e Event) { c.evs = append(c.evs, e) })
	return messages(c.evs)
}

func post(session, body string, extra ...string) string {
	h := "POST /mcp HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nContent-Type: application/json\r\nAccept: application/json, text/event-stream\r\n"
	if session != "" {
		h += "Mcp-Session-Id: " + session + "\r\n"
	}
	for _, e := range extra {
		h += e + "\r\n"
	}
	return h + fmt.Sprintf("Content-Length: %d\r\n\r\n", len(body)) + body
}

func jsonResp(session, body string) string {
	h := "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
	if session != "" {
		h += "Mcp-Session-Id: " + session + "\r\n"
	}
	return h + fmt.Sprintf("Content-Length: %d\r\n\r\n", len(body)) + body
}

// sseResp is a chunked text/event-stream response carrying events.
func sseResp(events ...string) string {
	s := "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n"
	for _, e := range events {
		s += fmt.Sprintf("%x\r\n%s\r\n", len(e), e)
	}
	return s + "0\r\n\r\n"
}

const (
	initReq  = `{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"c","version":"1"}}}`
	initResp = `{"jsonrpc":"2.0","id":0,"result":{"protocolVersion":"2025-06-18","capabilities":{},"serverInfo":{"name":"s","version":"1"}}}`
	callReq  = `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{"text":"hi"}}}`
	callResp = `{"jsonrpc":"2.0","id":1,"result":{"content":[{"type":"text","text":"hi"}]}}`
)

func TestHTTPStreamableJSONAndSSE(t *testing.T) {
	for _, step := range []int{0, 1, 7} {
		t.Run(fmt.Sprint("step", step), func(t *testing.T) {
			c := newConv(t, 1<<20)
			c.step = step
			// two sessions on two keep-alive connections, reusing ids
			for i, sid := range []string{"s-A", "s-B"} {
				ino := uint64(100 + i)
				c.send(ino, wire.DirIn, post("", initReq))
				c.send(ino, wire.DirOut, jsonResp(sid, initResp))
				c.send(ino, wire.DirIn, post(sid, `{"jsonrpc":"2.0","method":"notifications/initialized"}`))
				c.send(ino, wire.DirOut, "HTTP/1.1 202 Accepted\r\nContent-Length: 0\r\n\r\n")
			}
			for i, sid := range []string{"s-A", "s-B"} {
				ino := uint64(100 + i)
				c.send(ino, wire.DirIn, post(sid, callReq, "MCP-Protocol-Version: 2025-06-18", "Origin: http://localhost"))
				c.send(ino, wire.DirOut, sseResp("event: message\nid: 1\ndata: "+callResp+"\n\n"))
			}
			ms := c.messages()
			if len(ms) != 10 {
				t.Fatalf("%d messages: %+v", len(ms), ms)
			}
			for i, m := range ms {
				if m.HTTP == nil || m.HTTP.Transport != "streamable-http" {
					t.Fatalf("%d: http %+v", i, m.HTTP)
				}
			}
			if r := ms[1]; r.Request == nil || r.Request.Method != "initialize" || r.HTTP.SessionID != "s-A" || r.ProtocolVersion != "2025-06-18" || r.HTTP.Status != 200 {
				t.Fatalf("initialize response %+v %+v", r, r.HTTP)
			}
			for i := 6; i < 10; i += 2 {
				req, resp := ms[i], ms[i+1]
				if req.Tool != "echo" || req.HTTP.Origin != "http://localhost" || req.HTTP.ProtocolVersion != "2025-06-18" || req.ProtocolVersion != "2025-06-18" {
					t.Fatalf("request %+v %+v", req, req.HTTP)
				}
				if resp.Request == nil || resp.Request.Tool != "echo" || resp.Session != req.Session || resp.HTTP.Event != "message" || resp.HTTP.EventID != "1" {
					t.Fatalf("response %+v %+v", resp, resp.HTTP)
				}
			}
			if ms[6].Session == ms[8].Session {
				t.Fatal("two sessions share a name")
			}
			st := c.d.Stats()
			if st.Sessions.Unmatched != 0 || st.Sessions.Responses != 4 || st.HTTP.Requests != 6 || st.HTTP.Responses != 6 || st.HTTP.SSEEvents != 2 {
				t.Fatalf("stats %+v %+v", st.Sessions, st.HTTP)
			}
		})
	}
}

// The standalone GET stream carries a server-to-client request; the client
// answers it in a POST on another connection.
func TestHTTPGetStreamServerRequest(t *testing.T) {
	c := newConv(t, 1<<20)
	c.send(1, wire.DirIn, "GET /mcp HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\nMcp-Session-Id: S\r\nLast-Event-ID: 4\r\n\r\n")
	c.send(1, wire.DirOut, "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n")
	ev := "id: 5\ndata: {\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"roots/list\"}\n\n"
	c.send(1, wire.DirOut, fmt.Sprintf("%x\r\n%s\r\n", len(ev), ev))
	c.send(1, wire.DirOut, "2\r\n: \r\n") // a keep-alive comment, split oddly
	c.send(2, wire.DirIn, post("S", `{"jsonrpc":"2.0","id":1,"result":{"roots":[{"uri":"file:///w"}]}}`))
	c.send(2, wire.DirOut, "HTTP/1.1 202 Accepted\r\nContent-Length: 0\r\n\r\n")
	c.send(2, wire.DirIn, "DELETE /mcp HTTP/1.1\r\nMcp-Session-Id: S\r\n\r\n")
	c.send(2, wire.DirOut, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
	ms := c.messages()
	if len(ms) != 2 {
		t.Fatalf("%+v", ms)
	}
	if ms[0].Method != "roots/list" || ms[0].Direction != "out" || ms[0].HTTP.LastEventID != "" || ms[0].HTTP.EventID != "5" || ms[0].Session != "http:S" {
		t.Fatalf("%+v %+v", ms[0], ms[0].HTTP)
	}
	if ms[1].Request == nil || ms[1].Request.Method != "roots/list" || ms[1].Direction != "in" {
		t.Fatalf("%+v", ms[1])
	}
	if st := c.d.Stats(); st.HTTP.Terminated != 1 || st.Sessions.Ended != 1 {
		t.Fatalf("%+v", st.HTTP)
	}
}

func TestHTTPLegacySSE(t *testing.T) {
	c := newConv(t, 1<<20)
	c.step = 3
	c.send(1, wire.DirIn, "GET /sse HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n\r\n")
	c.send(1, wire.DirOut, "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n\r\n")
	c.send(1, wire.DirOut, "event: endpoint\r\ndata: /messages?sessionId=L1\r\n\r\n")
	c.send(2, wire.DirIn, "POST /messages?sessionId=L1 HTTP/1.1\r\nContent-Type: application/json\r\nContent-Length: "+fmt.Sprint(len(callReq))+"\r\n\r\n"+callReq)
	c.send(2, wire.DirOut, "HTTP/1.1 202 Accepted\r\nContent-Length: 8\r\n\r\nAccepted")
	c.send(1, wire.DirOut, "event: message\r\ndata: "+callResp+"\r\n\r\n")
	ms := c.messages()
	if len(ms) != 2 {
		t.Fatalf("%+v", ms)
	}
	for _, m := range ms {
		if m.Session != "http:L1" || m.HTTP.Transport != "sse" {
			t.Fatalf("%+v %+v", m, m.HTTP)
		}
	}
	if ms[1].Request == nil || ms[1].Request.Tool != "echo" {
		t.Fatalf("%+v", ms[1])
	}
	if st := c.d.Stats(); st.HTTP.NonJSON != 0 && st.NonJSON != 1 {
		t.Fatalf("%+v", st)
	}
}

// 2026-07-28: no initialize, no session id; the version in _meta and the
// Mcp-Method/Mcp-Name headers. Ids repeat across exchanges on one connection
// and still pair with their own responses.
func TestHTTPStateless20260728(t *testing.T) {
	c := newConv(t, 1<<20)
	body := func(id int) string {
		return fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":"tools/call","params":{"name":"get_weather","arguments":{},"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28"}}}`, id)
	}
	for i := 0; i < 2; i++ {
		c.send(1, wire.DirIn, post("", body(1), "MCP-Protocol-Version: 2026-07-28", "Mcp-Method: tools/call", "Mcp-Name: get_weather"))
		c.send(1, wire.DirOut, jsonResp("", `{"jsonrpc":"2.0","id":1,"result":{"inputRequests":{"a":{"method":"elicitation/create"}}}}`))
	}
	ms := c.messages()
	if len(ms) != 4 {
		t.Fatalf("%+v", ms)
	}
	if ms[0].ProtocolVersion != "2026-07-28" || ms[0].HTTP.McpMethod != "tools/call" || ms[0].HTTP.McpName != "get_weather" {
		t.Fatalf("%+v %+v", ms[0], ms[0].HTTP)
	}
	if ms[0].Session == ms[2].Session || ms[1].Session != ms[0].Session || ms[1].Request == nil || !ms[1].InputRequired || ms[3].Request == nil {
		t.Fatalf("%+v\n%+v", ms[1], ms[3])
	}
}

func TestHTTPBatch(t *testing.T) {
	c := newConv(t, 1<<20)
	c.send(1, wire.DirIn, post("S", `[{"jsonrpc":"2.0","id":1,"method":"ping"},{"jsonrpc":"2.0","id":2,"method":"tools/list"}]`))
	c.send(1, wire.DirOut, jsonResp("", `[{"jsonrpc":"2.0","id":1,"result":{}},{"jsonrpc":"2.0","id":2,"result":{"tools":[{"name":"t","description":"d","inputSchema":{"type":"object"}}]}}]`))
	ms := c.messages()
	if len(ms) != 4 || ms[1].Batch != 2 || ms[3].Request == nil || ms[3].Request.Method != "tools/list" {
		t.Fatalf("%+v", ms)
	}
	tools := c.d.sess.Tools("http:S")
	if tools["t"].Hash == "" || string(tools["t"].InputSchema) != `{"type":"object"}` {
		t.Fatalf("%+v", tools)
	}
}

// A gap inside a body of known length keeps the framing: the body is
// reported truncated, the next exchange is whole. A gap across a message
// boundary makes the parser find the next start line.
func TestHTTPGaps(t *testing.T) {
	c := newConv(t, 1<<20)
	req := post("S", callReq)
	cut := strings.Index(req, `"params"`)
	c.send(1, wire.DirIn, req[:cut])
	c.lose(1, wire.DirIn, 10)
	c.send(1, wire.DirIn, req[cut+10:])
	c.send(1, wire.DirIn, post("S", `{"jsonrpc":"2.0","id":2,"method":"ping"}`))
	// lose the end of one request and the start of the next
	next := post("S", `{"jsonrpc":"2.0","id":3,"method":"ping"}`)
	c.send(1, wire.DirIn, req[:cut])
	c.lose(1, wire.DirIn, uint64(len(req)-cut+20))
	c.send(1, wire.DirIn, next[20:])
	c.send(1, wire.DirIn, "garbage that is not a request\r\n"+next)
	ms := c.messages()
	var got []string
	for _, m := range ms {
		got = append(got, fmt.Sprintf("%s/%s/t%v/g%v", m.Method, m.ID, m.Truncated, m.AfterGap))
	}
	want := "tools/call/1/ttrue/gfalse ping/2/tfalse/gfalse tools/call/1/ttrue/gfalse ping/3/tfalse/gtrue"
	if strings.Join(got, " ") != want {
		t.Fatalf("got  %s\nwant %s", strings.Join(got, " "), want)
	}
	st := c.d.Stats().HTTP
	if st.LostBodies != 2 || st.Resyncs != 1 || st.GapBytes != uint64(10+len(req)-cut+20) {
		t.Fatalf("%+v", st)
	}
}

// An SSE event cut by a gap is dropped; the next event is whole.
func TestHTTPSSEGap(t *testing.T) {
	c := newConv(t, 1<<20)
	c.send(1, wire.DirIn, "GET /mcp HTTP/1.1\r\nMcp-Session-Id: S\r\n\r\n")
	c.send(1, wire.DirOut, "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n\r\n")
	c.send(1, wire.DirOut, `data: {"jsonrpc":"2.0","method":"notifications/a","params":{"x":"`)
	c.lose(1, wire.DirOut, 50)
	c.send(1, wire.DirOut, "more\"}}\n\ndata: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/b\"}\n\n")
	ms := c.messages()
	if len(ms) != 1 || ms[0].Method != "notifications/b" || !ms[0].AfterGap {
		t.Fatalf("%+v", ms)
	}
	if st := c.d.Stats().HTTP; st.LostBodies != 1 {
		t.Fatalf("%+v", st)
	}
}

func TestHTTPNotHTTP(t *testing.T) {
	c := newConv(t, 1<<20)
	c.send(1, wire.DirIn, "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03")
	c.send(1, wire.DirIn, strings.Repeat("\xaa", 100))
	c.send(2, wire.DirOut, "SSH-2.0-OpenSSH_9.2\r\n")
	if ms := c.messages(); len(ms) != 0 {
		t.Fatalf("%+v", ms)
	}
	st := c.d.Stats().HTTP
	if st.TLSBytes != 11 || st.NotHTTPBytes != 121 {
		t.Fatalf("%+v", st)
	}
}

func TestHTTPLargeBodyAndCap(t *testing.T) {
	c := newConv(t, 1<<20)
	c.step = 64 << 10
	big := `{"jsonrpc":"2.0","id":1,"result":{"contents":[{"uri":"file:///x","text":"` + strings.Repeat("y", 900<<10) + `"}]}}`
	c.send(1, wire.DirIn, post("S", `{"jsonrpc":"2.0","id":1,"method":"resources/read","params":{"uri":"file:///x"}}`))
	c.send(1, wire.DirOut, jsonResp("", big))
	c.send(1, wire.DirIn, post("S", `{"jsonrpc":"2.0","id":2,"method":"resources/read","params":{"uri":"file:///y"}}`))
	over := strings.Replace(big, `"id":1`, `"id":2`, 1) + strings.Repeat(" ", 200<<10)
	c.send(1, wire.DirOut, jsonResp("", over))
	ms := c.messages()
	if len(ms) != 4 || ms[1].Truncated || ms[1].Size != len(big) || len(ms[1].Result) < 900<<10 || ms[1].Request == nil {
		t.Fatalf("%d %+v", len(ms), ms[1].Size)
	}
	if !ms[3].Truncated || ms[3].Size != len(over) || string(ms[3].ID) != "2" {
		t.Fatalf("%+v", ms[3])
	}
	if st := c.d.Stats().HTTP; st.Oversized != 1 {
		t.Fatalf("%+v", st)
	}
}

// Picked up mid-life (--pid): the parser waits for the next start line.
func TestHTTPAttachedMidStream(t *testing.T) {
	c := newConv(t, 1<<20)
	req := post("S", callReq)
	h := wire.ChunkHeader{H: hdr(7), Ino: 1, Dir: wire.DirIn, Ftype: wire.FileSock, Fd: 5, Cflags: wire.ChunkAttached}
	c.evs = append(c.evs, decodeAll(t, c.d, wire.MarshalChunk(h, []byte(req[30:]+req)))...)
	ms := c.messages()
	if len(ms) != 1 || ms[0].Tool != "echo" || !ms[0].AfterGap {
		t.Fatalf("%+v", ms)
	}
}

// Regressions found in review: each asserts the fixed behaviour.
func TestHTTPReviewRegressions(t *testing.T) {
	t.Run("start line not spliced across a gap", func(t *testing.T) {
		c := newConv(t, 1<<20)
		c.send(1, wire.DirIn, "PO")
		c.lose(1, wire.DirIn, 100)
		c.send(1, wire.DirIn, "ST /evil HTTP/1.1\r\nContent-Length: 2\r\n\r\n{}"+post("S", `{"jsonrpc":"2.0","id":1,"method":"ping"}`))
		ms := c.messages()
		if len(ms) != 1 || ms[0].HTTP.Target != "/mcp" || ms[0].Method != "ping" {
			t.Fatalf("%+v", ms)
		}
	})
	t.Run("a refused DELETE keeps the session", func(t *testing.T) {
		c := newConv(t, 1<<20)
		c.send(1, wire.DirIn, post("S", `{"jsonrpc":"2.0","id":1,"method":"tools/list"}`))
		c.send(1, wire.DirOut, jsonResp("", `{"jsonrpc":"2.0","id":1,"result":{"tools":[{"name":"t"}]}}`))
		c.send(1, wire.DirIn, "DELETE /mcp HTTP/1.1\r\nMcp-Session-Id: S\r\n\r\n")
		c.send(1, wire.DirOut, "HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\n\r\n")
		if len(c.d.sess.Tools("http:S")) != 1 || c.d.Stats().HTTP.Terminated != 0 {
			t.Fatal("a 405 to DELETE ended the session")
		}
	})
	t.Run("pairing recovers after a lost response", func(t *testing.T) {
		c := newConv(t, 1<<20)
		body := func(id int) string { return fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":"tools/list"}`, id) }
		resp := func(id int) string { return fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"result":{"tools":[]}}`, id) }
		c.send(1, wire.DirIn, post("", body(1)))
		r1 := jsonResp("", resp(1))
		c.send(1, wire.DirOut, r1[:10])
		c.lose(1, wire.DirOut, uint64(len(r1)-10))
		for i := 2; i < 5; i++ {
			c.send(1, wire.DirIn, post("", body(i)))
			c.send(1, wire.DirOut, jsonResp("", resp(i)))
		}
		paired := 0
		for _, m := range c.messages() {
			if m.Direction == "out" && m.Request != nil {
				paired++
			}
		}
		if paired != 3 {
			t.Fatalf("%d of 3 responses after the loss paired", paired)
		}
	})
	t.Run("progress token of a reused request id", func(t *testing.T) {
		s := NewSessions(8)
		req := &Message{Type: "request", Direction: "in", Session: "s", ID: json.RawMessage("1"), Method: "tools/call",
			Params: json.RawMessage(`{"_meta":{"progressToken":"t"}}`)}
		s.pair(req)
		s.pair(req)
		p := &Message{Type: "notification", Direction: "out", Session: "s", Method: "notifications/progress", Params: json.RawMessage(`{"progressToken":"t"}`)}
		s.pair(p)
		if p.Request == nil || !req.DuplicateID {
			t.Fatalf("progress not linked after a duplicate request: %+v", p)
		}
	})
	t.Run("sse: comments do not count toward an event's size", func(t *testing.T) {
		c := newConv(t, 256)
		c.send(1, wire.DirIn, "GET /mcp HTTP/1.1\r\n\r\n")
		c.send(1, wire.DirOut, "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n\r\n:"+strings.Repeat("k", 1000)+"\n\ndata: {\"jsonrpc\":\"2.0\",\"method\":\"x\"}\n\n")
		ms := c.messages()
		if len(ms) != 1 || ms[0].Truncated || ms[0].Size != len(`{"jsonrpc":"2.0","method":"x"}`) {
			t.Fatalf("%d %+v", len(ms), *ms[0])
		}
	})
	t.Run("sse: byte order mark, CR line ends, ids carry over", func(t *testing.T) {
		c := newConv(t, 1<<20)
		c.step = 1
		c.send(1, wire.DirIn, "GET /mcp HTTP/1.1\r\n\r\n")
		c.send(1, wire.DirOut, "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n\r\n\xef\xbb\xbfid: 7\rdata: {\"jsonrpc\":\"2.0\",\"method\":\"a\"}\r\rdata: {\"jsonrpc\":\"2.0\",\"method\":\"b\"}\r\n\r\n")
		ms := c.messages()
		if len(ms) != 2 || ms[0].Method != "a" || ms[1].HTTP.EventID != "7" {
			t.Fatalf("%+v %+v %+v", *ms[0], *ms[1], *ms[1].HTTP)
		}
	})
	t.Run("an upgrade leaves both halves alone", func(t *testing.T) {
		c := newConv(t, 1<<20)
		c.send(1, wire.DirIn, "GET /ws HTTP/1.1\r\nUpgrade: websocket\r\n\r\n")
		c.send(1, wire.DirOut, "HTTP/1.1 101 Switching Protocols\r\n\r\n\x81\x05hello")
		c.send(1, wire.DirIn, "\x81\x85"+strings.Repeat("x", 100))
		c.messages()
		if st := c.d.Stats().HTTP; st.Malformed != 0 || st.Upgrades != 1 || st.NotHTTPBytes == 0 {
			t.Fatalf("%+v", st)
		}
	})
	t.Run("after a gap only the next exchange is marked", func(t *testing.T) {
		c := newConv(t, 1<<20)
		c.send(1, wire.DirIn, "GET /x HTTP/1.1\r\n")
		c.lose(1, wire.DirIn, 10)
		c.send(1, wire.DirIn, "GET /mcp HTTP/1.1\r\n\r\n"+post("S", `{"jsonrpc":"2.0","id":1,"method":"ping"}`))
		ms := c.messages()
		if len(ms) != 1 || ms[0].AfterGap {
			t.Fatalf("%+v", ms)
		}
	})
	t.Run("ended sessions do not grow the age queue", func(t *testing.T) {
		s := NewSessions(8)
		for i := 0; i < 10000; i++ {
			name := fmt.Sprint("http:", i)
			s.session(name, true)
			s.end(name)
		}
		if len(s.stateOrder) > 200 {
			t.Fatalf("age queue %d for %d sessions", len(s.stateOrder), len(s.state))
		}
	})
}

// A reused SSL* (or a stream whose kernel state was evicted) starts again
// at offset 0 in both directions, the request side first: the new request
// still pairs with the new response.
func TestHTTPStreamRestart(t *testing.T) {
	c := newConv(t, 1<<20)
	c.send(1, wire.DirIn, post("S", `{"jsonrpc":"2.0","id":1,"method":"ping"}`))
	c.send(1, wire.DirOut, jsonResp("", `{"jsonrpc":"2.0","id":1,"result":{}}`))
	c.off = map[StreamKey]uint64{}
	c.send(1, wire.DirIn, post("T", `{"jsonrpc":"2.0","id":1,"method":"ping"}`))
	c.send(1, wire.DirOut, jsonResp("", `{"jsonrpc":"2.0","id":1,"result":{}}`))
	ms := c.messages()
	if len(ms) != 4 || ms[3].Request == nil || ms[3].Session != "http:T" || ms[2].AfterGap || ms[3].AfterGap {
		t.Fatalf("%+v", ms)
	}
	if st := c.d.Stats().HTTP; st.LostBodies != 0 || st.Unpaired != 0 {
		t.Fatalf("%+v", st)
	}
}

// TestHTTPOtherRequests: requests a process receives that carry no
// JSON-RPC (a launcher's command in the query or a JSON body, a health
// check) are reported as http_request effects with their method, target
// and body; MCP's own requests are messages, not effects.
func TestHTTPOtherRequests(t *testing.T) {
	c := newConv(t, 1<<20)
	c.send(1, wire.DirIn, "GET /run?command=sh&args=-c&args=id HTTP/1.1\r\nHost: x\r\n\r\n")
	c.send(1, wire.DirOut, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
	body := `{"command":"uname -a"}`
	c.send(2, wire.DirIn, fmt.Sprintf("POST /exec HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s", len(body), body))
	c.send(3, wire.DirIn, post("", `{"jsonrpc":"2.0","id":1,"method":"tools/list"}`))
	// a request the process sends (a fetch tool's) is not one it received
	c.send(4, wire.DirOut, "GET /page?q=1 HTTP/1.1\r\nHost: example.com\r\n\r\n")
	msgs := c.messages()
	var got []string
	for _, e := range c.evs {
		if ef, ok := e.(*Effect); ok && ef.Type == "http_request" {
			got = append(got, ef.Detail)
		}
	}
	want := []string{"GET /run?command=sh&args=-c&args=id", "POST /exec " + body}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("http_request effects %q, want %q", got, want)
	}
	if len(msgs) != 1 || msgs[0].Method != "tools/list" {
		t.Fatalf("messages %v, want the one tools/list", msgs)
	}
	if n := c.d.Stats().HTTPRequests; n != 2 {
		t.Fatalf("http_requests_other %d, want 2", n)
	}
}
