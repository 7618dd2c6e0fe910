package decode

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"
)

// TestAppendJSONMatchesEncodingJSON: the fast encoder makes the same object
// as encoding/json would, field for field.
func TestAppendJSONMatchesEncodingJSON(t *testing.T) {
	base := time.Date(2026, 11, 23, 1, 2, 3, 456789012, time.UTC)
	msgs := []*Message{
		{Kind: "message", Time: base, Direction: "in", Stream: "pipe:1", Type: "request", Method: "tools/call",
			ID: json.RawMessage(`"a\"1"`), Tool: "read<file>&\u2028", Arguments: json.RawMessage(`{"path":"x\ny"}`),
			Params: json.RawMessage(`{"name":"read_file","arguments":{"path":"x\ny"}}`), JSONRPC: "2.0",
			Session: "stdio:1", Size: 80, Proc: Proc{PID: 1, TID: 2, PPID: 3, Comm: "no\x01de\xff", Server: "1-2"}},
		{Kind: "message", Time: base, Direction: "out", Stream: "socket:9", Type: "response", ID: json.RawMessage(`7`),
			Result: json.RawMessage(`{"content":[]}`), Request: &RequestRef{Method: "tools/call", Tool: "t", LatencyMS: 1.25},
			Batch: 2, Truncated: true, AfterGap: true, ProtocolVersion: "2026-07-28", InputRequired: true, DuplicateID: true, Unmatched: true,
			HTTP: &HTTPInfo{Transport: "streamable-http", Method: "POST", Target: "/mcp?x=<1>", Status: 200, Host: "127.0.0.1:8080",
				Origin: "http://evil", SessionID: "abc", ProtocolVersion: "2025-11-25", McpMethod: "tools/call", McpName: "t",
				ContentType: "text/event-stream", Event: "message", EventID: "7", LastEventID: "6"}},
		{Kind: "message", Time: base, Direction: "in", Type: "request", HTTP: &HTTPInfo{Transport: "sse"}},
		{Kind: "message", Time: base, Direction: "out", Type: "error", Error: json.RawMessage(`{"code":-32601}`),
			Request: &RequestRef{Method: "x", LatencyMS: 0, ID: json.RawMessage(`"p"`)}},
	}
	for i, m := range msgs {
		want, err := json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		got := m.AppendJSON(nil)
		var w, g any
		if err := json.Unmarshal(got, &g); err != nil {
			t.Fatalf("%d: invalid JSON %s: %v", i, got, err)
		}
		_ = json.Unmarshal(want, &w)
		if !reflect.DeepEqual(w, g) {
			t.Errorf("%d:\n got %s\nwant %s", i, got, want)
		}
	}
}

func BenchmarkEncodeMessage(b *testing.B) {
	m := &Message{Kind: "message", Time: time.Now(), Direction: "in", Stream: "pipe:1", Type: "request",
		Method: "tools/call", ID: json.RawMessage(`12`), Tool: "read_file", Arguments: json.RawMessage(`{"path":"notes.txt"}`),
		Params: json.RawMessage(`{"name":"read_file","arguments":{"path":"notes.txt"}}`), JSONRPC: "2.0",
		Session: "stdio:1", Size: 80, Proc: Proc{PID: 1, TID: 2, Comm: "node", Server: "1-2"}}
	b.Run("encoding/json", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			_, _ = json.Marshal(m)
		}
	})
	b.Run("AppendJSON", func(b *testing.B) {
		b.ReportAllocs()
		var buf []byte
		for i := 0; i < b.N; i++ {
			buf = m.AppendJSON(buf[:0])
		}
	})
}
