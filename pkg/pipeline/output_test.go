package pipeline

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/mcpsec/sensor/pkg/decode"
)

var t0 = time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)

func msg(at time.Duration, method string) *decode.Message {
	return &decode.Message{Kind: "message", Time: t0.Add(at), Direction: "in", Method: method, Type: "request",
		ID: json.RawMessage("1"), Proc: decode.Proc{PID: 10, TID: 11, Comm: "node", Server: "10-5"}}
}

func eff(at time.Duration, typ, path string) *decode.Effect {
	return &decode.Effect{Kind: "effect", Time: t0.Add(at), Type: typ, Path: path, Proc: decode.Proc{PID: 10, TID: 10, Comm: "node"}}
}

func TestOrdererPutsEventsInTimeOrder(t *testing.T) {
	var got []string
	o := newOrderer(10*time.Millisecond, 100, func(e decode.Event) {
		switch v := e.(type) {
		case *decode.Message:
			got = append(got, v.Method)
		case *decode.Effect:
			got = append(got, v.Path)
		}
	})
	o.push(eff(5*time.Millisecond, "open", "b"))
	o.push(msg(1*time.Millisecond, "a"))          // older, from the other ring
	o.push(eff(30*time.Millisecond, "open", "d")) // releases a, b
	if strings.Join(got, ",") != "a,b" {
		t.Fatalf("released %v", got)
	}
	o.push(msg(25*time.Millisecond, "c"))
	o.tick(t0.Add(time.Second))
	if strings.Join(got, ",") != "a,b,c,d" {
		t.Fatalf("released %v", got)
	}
}

func TestOrdererBoundsMemory(t *testing.T) {
	n := 0
	o := newOrderer(time.Hour, 3, func(decode.Event) { n++ })
	for i := 0; i < 10; i++ {
		o.push(msg(time.Duration(i), "m"))
	}
	if n != 7 || o.h.Len() != 3 {
		t.Fatalf("released %d, held %d", n, o.h.Len())
	}
}

// TestJSONContract: the field names other tools read.
func TestJSONContract(t *testing.T) {
	var buf bytes.Buffer
	w, err := NewWriter("json", NewSink(&buf), false)
	if err != nil {
		t.Fatal(err)
	}
	m := msg(0, "tools/call")
	m.Tool, m.Params, m.Session, m.Stream = "read_file", json.RawMessage(`{"name":"read_file"}`), "stdio:1", "pipe:1"
	e := eff(0, "connect", "")
	e.Addr, e.Result = "127.0.0.1:8080", 0
	w.Event(m)
	w.Event(e)
	w.Stats(&Stats{Kind: "stats", Time: t0})
	w.Flush()
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 3 {
		t.Fatalf("%d lines", len(lines))
	}
	want := []map[string]any{
		{"kind": "message", "direction": "in", "method": "tools/call", "id": float64(1), "tool": "read_file",
			"params": map[string]any{"name": "read_file"}, "pid": float64(10), "tid": float64(11), "server": "10-5",
			"session": "stdio:1", "stream": "pipe:1"},
		{"kind": "effect", "type": "connect", "addr": "127.0.0.1:8080", "result": float64(0), "pid": float64(10)},
		{"kind": "stats"},
	}
	for i, l := range lines {
		var got map[string]any
		if err := json.Unmarshal([]byte(l), &got); err != nil {
			t.Fatal(err)
		}
		if _, err := time.Parse(time.RFC3339Nano, got["ts"].(string)); err != nil {
			t.Errorf("line %d: ts %v", i, got["ts"])
		}
		for k, v := range want[i] {
			gb, _ := json.Marshal(got[k])
			wb, _ := json.Marshal(v)
			if string(gb) != string(wb) {
				t.Errorf("line %d: %s = %s, want %s", i, k, gb, wb)
			}
		}
	}
}

func TestTextOutput(t *testing.T) {
	var buf bytes.Buffer
	w, _ := NewWriter("text", NewSink(&buf), false)
	m := msg(0, "tools/call")
	m.Tool, m.Arguments = "read_file", json.RawMessage(`{"path":"notes.txt"}`)
	e := eff(0, "open", "/etc/shadow")
	e.Raw, e.Result, e.Flags = "allowed/link", 3, "O_RDONLY"
	f := eff(0, "connect", "")
	f.Socket, f.Addr, f.Result, f.Errno = "tcp", "10.0.0.1:443", -111, "ECONNREFUSED"
	for _, ev := range []decode.Event{m, e, f} {
		w.Event(ev)
	}
	w.Flush()
	out := buf.String()
	for _, s := range []string{
		"node[10/11] → in tools/call id=1 tool=read_file {\"path\":\"notes.txt\"}",
		"open /etc/shadow (as allowed/link) O_RDONLY = 3",
		"connect tcp 10.0.0.1:443 = -111 ECONNREFUSED",
	} {
		if !strings.Contains(out, s) {
			t.Errorf("text output lacks %q:\n%s", s, out)
		}
	}
	if strings.Contains(out, "\x1b[") {
		t.Error("colour without a terminal")
	}
	if _, err := NewWriter("yaml", NewSink(&buf), false); err == nil {
		t.Error("unknown format accepted")
	}
}

func TestTextOutputCannotBeForged(t *testing.T) {
	var buf bytes.Buffer
	w, _ := NewWriter("text", NewSink(&buf), false)
	m := msg(0, "tools/call\n22:00:00.000000 node[1] → in fake")
	m.Tool = "x\x1b[2J"
	w.Event(m)
	w.Flush()
	if n := strings.Count(buf.String(), "\n"); n != 1 || strings.Contains(buf.String(), "\x1b") {
		t.Fatalf("a message forged output: %q", buf.String())
	}
}

// TestSinkKeepsLinesWhole: trace lines and a relayed stderr share a sink
// without splitting each other's lines.
func TestSinkKeepsLinesWhole(t *testing.T) {
	var buf bytes.Buffer
	sink := NewSink(&buf)
	w, _ := NewWriter("json", sink, false)
	pr, pw := io.Pipe()
	done := make(chan struct{})
	go func() { sink.Relay(pr); close(done) }()
	go func() {
		for i := 0; i < 200; i++ {
			fmt.Fprintf(pw, "stderr line %d %s\n", i, strings.Repeat("e", 3000))
		}
		pw.Close()
	}()
	for i := 0; i < 200; i++ {
		w.Event(eff(0, "open", strings.Repeat("p", 3000)))
	}
	w.Flush()
	<-done
	for _, l := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		if !strings.HasPrefix(l, "stderr line") && !json.Valid([]byte(l)) {
			t.Fatalf("a spliced line: %.80q", l)
		}
	}
}
