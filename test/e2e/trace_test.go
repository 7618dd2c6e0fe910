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

// TestNPMServer runs a real MCP server from npm (pinned in testdata/npm)
// the way MCP clients do, through npx: npx -> npm exec -> sh -> node all
// share the client's pipes, and must show up as one server.
func TestNPMServer(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	npmDir := npmServers(t)
	root, err := filepath.EvalSymlinks(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	notes := filepath.Join(root, "notes.txt")
	if err := os.WriteFile(notes, []byte("meeting at noon\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	sess, trace := traced(t, ctx, "2025-11-25", npmDir, "npx", "--no-install", "mcp-server-filesystem", root)
	if txt := callText(t, ctx, sess, "read_text_file", map[string]any{"path": notes}); !strings.Contains(txt, "noon") {
		t.Fatalf("read_text_file returned %q", txt)
	}
	if err := sess.Close(); err != nil {
		t.Logf("closing: %v", err)
	}
	lines := readTrace(t, trace)

	var server string
	for _, l := range lines {
		if l.str("method") == "initialize" && l.str("direction") == "in" {
			server = l.str("server")
		}
	}
	if server == "" {
		t.Fatal("no initialize in the trace")
	}
	var call, open, resp line
	comms := map[string]bool{}
	for _, l := range lines {
		if l.str("server") != "" && l.str("server") != server && l.str("kind") != "stats" {
			t.Errorf("line of another server %q (want one server for the whole npx chain): %.200v", l.str("server"), l)
		}
		if argv, _ := l["argv"].([]any); l.str("type") == "exec" && len(argv) > 0 {
			comms[filepath.Base(argv[0].(string))] = true
		}
		switch {
		case l.str("tool") == "read_text_file" && l.str("direction") == "in":
			call = l
		case l.str("kind") == "effect" && l.str("type") == "open" && l.str("path") == notes:
			open = l
		case l.str("direction") == "out" && l["request"] != nil && l["request"].(map[string]any)["tool"] == "read_text_file":
			resp = l
		}
	}
	for _, c := range []string{"node", "sh"} { // npx is node; npm exec runs the bin through sh
		if !comms[c] {
			t.Errorf("no exec of %s in the npx chain; saw %v", c, comms)
		}
	}
	if call == nil || open == nil || resp == nil {
		t.Fatalf("missing from the trace: call=%v open=%v response=%v", call != nil, open != nil, resp != nil)
	}
	b, _ := json.Marshal(resp["result"])
	if !strings.Contains(string(b), "noon") {
		t.Errorf("response result = %s", b)
	}
	if st := stats(t, lines); st.num("drops") != 0 {
		t.Errorf("drops: %v", st)
	}
}
