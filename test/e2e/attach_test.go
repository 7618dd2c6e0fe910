package e2e

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mcpsec/sensor/internal/testutil"
)

// startSensor runs `sensor trace -o json --out FILE args...` and waits until
// it says it is tracing.
func startSensor(t *testing.T, args ...string) (*exec.Cmd, string) {
	t.Helper()
	testutil.RequireBPF(t)
	trace := filepath.Join(t.TempDir(), "trace.jsonl")
	cmd := exec.Command(bin(t, "sensor"), append([]string{"trace", "-o", "json", "--out", trace}, args...)...)
	pr, pw := io.Pipe()
	var logs bytes.Buffer
	cmd.Stderr = pw
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	ready := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(pr)
		once := false
		for sc.Scan() {
			logs.WriteString(sc.Text() + "\n")
			if !once && strings.Contains(sc.Text(), "tracing") {
				once = true
				close(ready)
			}
		}
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		pw.Close()
		if t.Failed() {
			t.Logf("sensor stderr:\n%s", logs.String())
		}
	})
	select {
	case <-ready:
	case <-time.After(30 * time.Second):
		t.Fatalf("the sensor did not start tracing:\n%s", logs.String())
	}
	return cmd, trace
}

func stopSensor(t *testing.T, cmd *exec.Cmd) {
	t.Helper()
	_ = cmd.Process.Signal(syscall.SIGINT)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("sensor exited: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the sensor did not stop on SIGINT")
	}
}

// plainServer starts the toolbox untraced, with pipes for stdio.
func plainServer(t *testing.T, root string) *rawPeer {
	t.Helper()
	cmd := exec.Command(bin(t, "toolbox"), root)
	in, _ := cmd.StdinPipe()
	out, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	return &rawPeer{t: t, cmd: cmd, in: in, out: bufio.NewReaderSize(out, 1<<20)}
}

func (p *rawPeer) handshake() {
	p.send(`{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"raw","version":"1"}}}` + "\n")
	p.recv(1)
	p.send(`{"jsonrpc":"2.0","method":"notifications/initialized"}` + "\n")
}

// TestAttachPID: `sensor trace --pid N` picks up a running server and its
// later effects and messages, and exits when it does.
func TestAttachPID(t *testing.T) {
	root, _ := filepath.EvalSymlinks(t.TempDir())
	os.WriteFile(filepath.Join(root, "a.txt"), []byte("alpha"), 0o644)
	srv := plainServer(t, root)
	srv.handshake()

	sensor, trace := startSensor(t, "--pid", fmt.Sprint(srv.cmd.Process.Pid))
	srv.send(callLine(7, "read_file", `{"path":"a.txt"}`))
	srv.recv(1)
	srv.in.Close()
	_ = srv.cmd.Wait()
	done := make(chan error, 1)
	go func() { done <- sensor.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("sensor: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the sensor did not exit when the traced process did")
	}
	lines := readTrace(t, trace)
	var call, open, exit bool
	for _, l := range lines {
		call = call || (l.str("tool") == "read_file" && l.str("direction") == "in")
		open = open || (l.str("type") == "open" && l.str("path") == filepath.Join(root, "a.txt"))
		exit = exit || l.str("type") == "exit"
	}
	if !call || !open || !exit {
		t.Errorf("attached trace: call %v, open %v, exit %v", call, open, exit)
	}
}

// TestDiscover: with no pid and no command, a server started after the
// sensor is discovered by the JSON-RPC it reads on stdin, from its first
// message on.
func TestDiscover(t *testing.T) {
	root, _ := filepath.EvalSymlinks(t.TempDir())
	os.WriteFile(filepath.Join(root, "b.txt"), []byte("beta"), 0o644)
	sensor, trace := startSensor(t)
	srv := plainServer(t, root)
	srv.handshake()
	srv.send(callLine(3, "read_file", `{"path":"b.txt"}`))
	srv.recv(1)
	srv.in.Close()
	_ = srv.cmd.Wait()
	time.Sleep(300 * time.Millisecond)
	stopSensor(t, sensor)

	pid := float64(srv.cmd.Process.Pid)
	var discovered, initialize, call, open bool
	for _, l := range readTrace(t, trace) {
		if l.num("pid") != pid {
			continue // other processes of the host may be discovered too
		}
		discovered = discovered || l.str("type") == "discover"
		initialize = initialize || (l.str("method") == "initialize" && l.str("direction") == "in")
		call = call || l.str("tool") == "read_file"
		open = open || (l.str("type") == "open" && l.str("path") == filepath.Join(root, "b.txt"))
	}
	if !discovered || !initialize || !call || !open {
		t.Errorf("discovered %v, initialize %v, call %v, open %v", discovered, initialize, call, open)
	}
}
