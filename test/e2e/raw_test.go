package e2e

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mcpsec/sensor/internal/testutil"
)

// rawPeer drives a traced server over its stdio by hand, for what the SDK
// client cannot do: bursts in one write, lines that are not JSON.
type rawPeer struct {
	t     *testing.T
	cmd   *exec.Cmd
	in    io.WriteCloser
	out   *bufio.Reader
	trace string
	junk  []string // non-JSON lines the server wrote
}

func startRaw(t *testing.T, argv ...string) *rawPeer {
	t.Helper()
	testutil.RequireBPF(t)
	trace := filepath.Join(t.TempDir(), "trace.jsonl")
	cmd := exec.Command(bin(t, "sensor"), append([]string{"trace", "-o", "json", "--out", trace, "--"}, argv...)...)
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("sensor stderr:\n%s", stderr.String())
		}
	})
	p := &rawPeer{t: t, cmd: cmd, in: in, out: bufio.NewReaderSize(out, 1<<20), trace: trace}
	p.send(`{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"raw","version":"1"}}}` + "\n")
	p.recv(1)
	p.send(`{"jsonrpc":"2.0","method":"notifications/initialized"}` + "\n")
	return p
}

// send writes b in one write syscall.
func (p *rawPeer) send(b string) {
	p.t.Helper()
	if _, err := io.WriteString(p.in, b); err != nil {
		p.t.Fatal(err)
	}
}

// recv reads n JSON-RPC responses, keeping non-JSON lines aside.
func (p *rawPeer) recv(n int) []map[string]json.RawMessage {
	p.t.Helper()
	var out []map[string]json.RawMessage
	deadline := time.Now().Add(60 * time.Second)
	for len(out) < n && time.Now().Before(deadline) {
		b, err := p.out.ReadBytes('\n')
		if err != nil {
			p.t.Fatalf("reading from the server after %d of %d responses: %v", len(out), n, err)
		}
		var m map[string]json.RawMessage
		if json.Unmarshal(b, &m) != nil {
			p.junk = append(p.junk, strings.TrimSpace(string(b)))
			continue
		}
		out = append(out, m)
	}
	return out
}

// finish closes the server's stdin, waits for the sensor, and reads the trace.
func (p *rawPeer) finish() []line {
	p.t.Helper()
	p.in.Close()
	done := make(chan error, 1)
	go func() { done <- p.cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			p.t.Fatalf("sensor exited: %v", err)
		}
	case <-time.After(30 * time.Second):
		p.t.Fatal("the sensor did not exit after the server's stdin closed")
	}
	return readTrace(p.t, p.trace)
}

func callLine(id int, tool, args string) string {
	return fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":"tools/call","params":{"name":%q,"arguments":%s}}`+"\n", id, tool, args)
}

// TestBurst: 100 requests written in one write are all decoded, and so are
// their 100 responses.
func TestBurst(t *testing.T) {
	p := startRaw(t, bin(t, "toolbox"))
	var burst strings.Builder
	for i := 1; i <= 100; i++ {
		burst.WriteString(callLine(i, "echo", fmt.Sprintf(`{"text":"m%d"}`, i)))
	}
	p.send(burst.String())
	if got := p.recv(100); len(got) != 100 {
		t.Fatalf("got %d responses", len(got))
	}
	lines := p.finish()
	in, out := map[string]bool{}, map[string]bool{}
	for _, l := range lines {
		if l.str("kind") != "message" {
			continue
		}
		id, _ := json.Marshal(l["id"])
		if l.str("direction") == "in" && l.str("tool") == "echo" {
			in[string(id)] = true
		}
		if req, _ := l["request"].(map[string]any); l.str("direction") == "out" && req != nil && req["tool"] == "echo" {
			out[string(id)] = true
		}
	}
	if len(in) != 100 || len(out) != 100 {
		t.Errorf("decoded %d of 100 requests and %d of 100 responses", len(in), len(out))
		for _, l := range lines {
			if l.str("kind") == "message" && l["request"] == nil && l.str("direction") == "out" {
				t.Logf("unpaired: %.300v", l)
			}
		}
		t.Logf("stats: %v", stats(t, lines))
	}
	st := stats(t, lines)
	if st.num("drops") != 0 {
		t.Errorf("drops: %v", st)
	}
}

// TestLargeMessages: a 4 MiB request (many reads for the server; the Go
// SDK refuses longer lines) and a 16 MiB response (one write, many chunks)
// both arrive whole.
func TestLargeMessages(t *testing.T) {
	const size, reqSize = 16 << 20, 4 << 20
	p := startRaw(t, bin(t, "toolbox"))
	big := strings.Repeat("y", reqSize)
	p.send(callLine(1, "echo", fmt.Sprintf(`{"text":%q}`, big)))
	p.send(callLine(2, "big", fmt.Sprintf(`{"bytes":%d}`, size)))
	if got := p.recv(2); len(got) != 2 {
		t.Fatalf("got %d responses", len(got))
	}
	lines := p.finish()
	text := func(raw any) string {
		b, _ := json.Marshal(raw)
		var r struct {
			Content []struct{ Text string } `json:"content"`
		}
		_ = json.Unmarshal(b, &r)
		if len(r.Content) == 0 {
			return ""
		}
		return r.Content[0].Text
	}
	var reqOK, echoOK, bigOK bool
	for _, l := range lines {
		if l.str("kind") != "message" || l["truncated"] == true {
			continue
		}
		req, _ := l["request"].(map[string]any)
		switch {
		case l.str("direction") == "in" && l.str("tool") == "echo":
			args, _ := l["arguments"].(map[string]any)
			reqOK = args["text"] == big
		case req != nil && req["tool"] == "echo":
			echoOK = text(l["result"]) == big
		case req != nil && req["tool"] == "big":
			bigOK = text(l["result"]) == strings.Repeat("x", size)
		}
	}
	if !reqOK || !echoOK || !bigOK {
		t.Errorf("large messages whole: 4 MiB request %v, echo response %v, big response %v", reqOK, echoOK, bigOK)
	}
	st := stats(t, lines)
	if st.num("drops") != 0 || st.num("truncations") != 0 {
		t.Errorf("stats: %v", st)
	}
}

// TestNonJSON: a line that is not JSON, from the client or from a
// misbehaving server, is counted and does not break the stream.
func TestNonJSON(t *testing.T) {
	p := startRaw(t, bin(t, "toolbox"))
	p.send(callLine(1, "noise", `{"text":""}`))
	p.recv(1)
	// (the Go SDK server exits on a non-JSON request, so only the server
	// side misbehaves here; the decoder's tests cover both directions)
	p.send(callLine(2, "echo", `{"text":"after the noise"}`))
	p.recv(1)
	if len(p.junk) != 1 {
		t.Fatalf("the server wrote %d non-JSON lines, want 1: %q", len(p.junk), p.junk)
	}
	lines := p.finish()
	var after bool
	for _, l := range lines {
		if req, _ := l["request"].(map[string]any); req != nil && req["tool"] == "echo" {
			after = true
		}
	}
	if !after {
		t.Error("the response after the non-JSON line was not decoded")
	}
	dec, _ := stats(t, lines)["decoder"].(map[string]any)
	if dec["non_json_lines"] != float64(1) {
		t.Errorf("non_json_lines = %v, want 1", dec["non_json_lines"])
	}
}
