package loader

import (
	"io"
	"os"
	"os/exec"
	"sync"
	"testing"
	"time"

	"github.com/mcpsec/sensor/internal/testutil"
	"github.com/mcpsec/sensor/pkg/wire"
)

// catWith starts cat with a pipe for stdin (a candidate: stdin is a
// channel), returning it and the pipe's write end.
func catWith(t *testing.T) (*exec.Cmd, io.WriteCloser) {
	t.Helper()
	c := exec.Command("/bin/cat")
	in, err := c.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	c.Stdout = io.Discard
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Process.Kill(); _ = c.Wait() })
	return c, in
}

// TestDiscoveryEvidence: a process becomes a server only on evidence that
// it speaks MCP on its stdin: a handshake (protocolVersion in a message
// that begins like JSON-RPC), or, for one already running when the sensor
// started, an MCP method. JSON lines that merely mention MCP (the
// sensor's own trace piped to a tool) and a language server's messages do
// not make one; nor does the sensor's own binary, whoever runs it.
func TestDiscoveryEvidence(t *testing.T) {
	testutil.RequireBPF(t)
	const (
		initialize = `{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"c","version":"1"}}}` + "\n"
		toolsCall  = `{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"read_file","arguments":{"path":"a"}}}` + "\n"
		traceLine  = `{"kind":"message","ts":"2026-01-01T00:00:00Z","method":"tools/call","params":{"protocolVersion":"2025-11-25"}}` + "\n"
		lsp        = "Content-Length: 60\r\n\r\n" + `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{}}`
	)
	// already running when the sensor starts
	preCall, preCallIn := catWith(t)
	preTrace, preTraceIn := catWith(t)
	cfg := DefaultConfig()
	cfg.SelfPID, cfg.Discover = uint32(os.Getpid()), true
	o, err := Load(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	rd, err := o.NewReader()
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	found := map[uint32]bool{}
	rd.RunFunc(func(b []byte) {
		var e wire.Effect
		if cls, _ := wire.RecordClass(b); cls == wire.ClassEffect && wire.ParseEffect(b, &e) == nil && wire.Kind(e.H.Kind) == wire.KindDiscover {
			mu.Lock()
			found[e.H.Tgid] = true
			mu.Unlock()
		}
	})
	for _, c := range []*exec.Cmd{preCall, preTrace} {
		if err := o.AddCandidate(uint32(c.Process.Pid), 0); err != nil {
			t.Fatal(err)
		}
	}
	if err := o.Attach(); err != nil {
		t.Fatal(err)
	}
	// exec'd after: candidates at their exec
	newInit, newInitIn := catWith(t)
	newCall, newCallIn := catWith(t)
	newTrace, newTraceIn := catWith(t)
	newLSP, newLSPIn := catWith(t)
	// the sensor's own binary (this test binary stands in for it) reading a handshake
	self := helperCmd("cat")
	selfIn, err := self.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	self.Stdout = io.Discard
	if err := self.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = self.Process.Kill(); _ = self.Wait() }()
	time.Sleep(50 * time.Millisecond) // every cat is past its exec
	for w, s := range map[io.Writer]string{preCallIn: toolsCall, preTraceIn: traceLine, newInitIn: initialize,
		newCallIn: toolsCall, newTraceIn: traceLine, newLSPIn: lsp, selfIn: initialize} {
		if _, err := io.WriteString(w, s); err != nil {
			t.Fatal(err)
		}
	}
	want := map[string]struct {
		c    *exec.Cmd
		want bool
	}{
		"running before, then tools/call":          {preCall, true},
		"running before, then a trace line":        {preTrace, false},
		"started after, then its initialize":       {newInit, true},
		"started after, then tools/call only":      {newCall, false},
		"started after, then a trace line":         {newTrace, false},
		"a language server's initialize":           {newLSP, false},
		"the sensor's own binary, then initialize": {self, false},
	}
	time.Sleep(500 * time.Millisecond) // the reads are seen, the records read
	mu.Lock()
	defer mu.Unlock()
	for name, w := range want {
		if got := found[uint32(w.c.Process.Pid)]; got != w.want {
			t.Errorf("%s: discovered %v, want %v", name, got, w.want)
		}
	}
	rd.Close()
}
