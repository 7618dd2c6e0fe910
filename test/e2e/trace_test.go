package e2e

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// listener accepts one connection at a time on loopback, reads it to EOF and
// answers "pong"; it records what it received.
func listener(t *testing.T) (string, <-chan []byte) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	got := make(chan []byte, 8)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			b, _ := io.ReadAll(c)
			_, _ = c.Write([]byte("pong"))
			c.Close()
			got <- b
		}
	}()
	return ln.Addr().String(), got
}

func callText(t *testing.T, ctx context.Context, s *mcp.ClientSession, tool string, args map[string]any) string {
	t.Helper()
	r, err := s.CallTool(ctx, &mcp.CallToolParams{Name: tool, Arguments: args})
	if err != nil {
		t.Fatalf("calling %s: %v", tool, err)
	}
	if r.IsError || len(r.Content) == 0 {
		t.Fatalf("calling %s: error result %+v", tool, r)
	}
	return r.Content[0].(*mcp.TextContent).Text
}

// TestGoSDKServer: a Go SDK server, driven over stdio by the SDK's client
// through `sensor trace`, reads a file through a symlink that points outside
// its directory and connects to a loopback listener. The trace must show the
// handshake, the tools/call with its tool and arguments, the open of the
// symlink's target, the connect to the listener, and the responses.
func TestGoSDKServer(t *testing.T) {
	for _, tc := range []struct {
		name, version, handshake string
	}{
		{"initialize", "2025-11-25", "initialize"},
		{"discover", "", "server/discover"}, // 2026-07-28: no initialize
	} {
		t.Run(tc.name, func(t *testing.T) { goSDKServer(t, tc.version, tc.handshake) })
	}
}

func goSDKServer(t *testing.T, version, handshake string) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	base, err := filepath.EvalSymlinks(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	root := filepath.Join(base, "allowed")
	secret := filepath.Join(base, "outside", "id_rsa")
	for _, d := range []string{root, filepath.Dir(secret)} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(secret, []byte("-----BEGIN OPENSSH PRIVATE KEY-----\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("../outside/id_rsa", filepath.Join(root, "notes.txt")); err != nil {
		t.Fatal(err)
	}
	addr, got := listener(t)

	sess, trace := traced(t, ctx, version, root, bin(t, "toolbox"), root)
	if txt := callText(t, ctx, sess, "read_file", map[string]any{"path": "notes.txt"}); !strings.Contains(txt, "PRIVATE KEY") {
		t.Fatalf("read_file returned %q", txt)
	}
	if txt := callText(t, ctx, sess, "connect", map[string]any{"addr": addr, "payload": "hello"}); !strings.Contains(txt, "pong") {
		t.Fatalf("connect returned %q", txt)
	}
	if b := <-got; string(b) != "hello" {
		t.Fatalf("listener got %q", b)
	}
	if err := sess.Close(); err != nil {
		t.Logf("closing: %v", err)
	}
	lines := readTrace(t, trace)

	msgs := filter(lines, func(l line) bool { return l.str("kind") == "message" })
	has := func(pred func(line) bool, what string) line {
		t.Helper()
		for _, l := range lines {
			if pred(l) {
				return l
			}
		}
		t.Errorf("the trace lacks %s", what)
		return nil
	}
	has(func(l line) bool { return l.str("method") == handshake && l.str("direction") == "in" }, handshake+" request")
	call := has(func(l line) bool {
		return l.str("method") == "tools/call" && l.str("tool") == "read_file" && l.str("direction") == "in"
	}, "the read_file tools/call")
	if call != nil {
		var args map[string]string
		b, _ := json.Marshal(call["arguments"])
		_ = json.Unmarshal(b, &args)
		if args["path"] != "notes.txt" {
			t.Errorf("tools/call arguments = %s, want path notes.txt", b)
		}
	}
	open := has(func(l line) bool {
		return l.str("kind") == "effect" && l.str("type") == "open" && l.str("path") == secret
	}, "the open of the symlink's target "+secret)
	if open != nil {
		if open.str("raw") != filepath.Join(root, "notes.txt") {
			t.Errorf("open raw = %q, want the symlink %s", open.str("raw"), filepath.Join(root, "notes.txt"))
		}
		if open.num("result") < 0 || open.str("server") == "" || open.num("pid") == 0 {
			t.Errorf("open effect incomplete: %v", open)
		}
	}
	has(func(l line) bool {
		return l.str("kind") == "effect" && l.str("type") == "connect" && l.str("addr") == addr
	}, "the connect to "+addr)
	resp := has(func(l line) bool {
		req, _ := l["request"].(map[string]any)
		return l.str("direction") == "out" && req != nil && req["tool"] == "read_file"
	}, "the read_file response")
	if resp != nil {
		b, _ := json.Marshal(resp["result"])
		if !strings.Contains(string(b), "PRIVATE KEY") {
			t.Errorf("read_file response result = %s", b)
		}
	}
	has(func(l line) bool { return l.str("kind") == "effect" && l.str("type") == "exec" }, "the server's exec")
	has(func(l line) bool { return l.str("kind") == "effect" && l.str("type") == "exit" }, "the server's exit")

	// every message of the server carries its server id and session
	for _, m := range msgs {
		if m.str("server") == "" || m.str("session") == "" || m.str("stream") == "" {
			t.Errorf("message without server/session/stream: %.300v", m)
		}
	}
	st := stats(t, lines)
	if st.num("drops") != 0 {
		t.Errorf("drops = %v, want 0: %v", st["drops"], st)
	}
}
