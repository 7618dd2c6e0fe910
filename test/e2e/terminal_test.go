package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/mcpsec/sensor/internal/testutil"
)

// tmuxSession runs a command in a detached tmux session (a terminal of
// 240 columns), so the sensor writes what a person at a terminal sees.
type tmuxSession struct{ name string }

func startTmux(t *testing.T, name, command string) *tmuxSession {
	t.Helper()
	if _, err := exec.LookPath("tmux"); err != nil {
		t.Fatal("tmux is needed (scripts/setup.sh installs it)")
	}
	s := &tmuxSession{name: fmt.Sprintf("%s-%d", name, os.Getpid())}
	// the pane stays after the command ends, for the last capture
	cmd := exec.Command("tmux", "new-session", "-d", "-s", s.name, "-x", "240", "-y", "80", command+"; sleep 600")
	cmd.Env = testEnvWithout("TMUX", "MCPSEC_STATE_DIR")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("tmux: %v %s", err, out)
	}
	t.Cleanup(func() { _ = exec.Command("tmux", "kill-session", "-t", s.name).Run() })
	return s
}

// screen is what the pane shows, its wrapped lines joined.
func (s *tmuxSession) screen(t *testing.T) string {
	t.Helper()
	out, err := exec.Command("tmux", "capture-pane", "-p", "-J", "-t", s.name).CombinedOutput()
	if err != nil {
		t.Fatalf("capture-pane: %v %s", err, out)
	}
	return string(out)
}

// interrupt sends Ctrl-C and waits for the pane's command to end.
func (s *tmuxSession) interrupt(t *testing.T, done string) {
	_ = exec.Command("tmux", "send-keys", "-t", s.name, "C-c", "").Run()
	waitFile(t, done, "stopping")
}

func waitFile(t *testing.T, path, want string) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if b, _ := os.ReadFile(path); strings.Contains(string(b), want) {
			return
		}
	}
	b, _ := os.ReadFile(path)
	t.Fatalf("%s never said %q:\n%s", path, want, b)
}

// TestTerminalOutput: the daemon in a terminal prints a line a person
// reads for each server found and gone and for each alert (its severity,
// rule, server and call), and `sensor trace --only messages,alerts` prints
// the messages and the alert of a real npm server driven by a real client,
// with no effect lines. Captured from tmux panes.
func TestTerminalOutput(t *testing.T) {
	testutil.RequireBPF(t)
	npmDir := npmFixture(t, "npm-clients", filepath.Join("node_modules", ".bin", "mcp-server-memory"))
	dir := t.TempDir()
	allowed, secret := filepath.Join(dir, "allowed"), filepath.Join(dir, "secret")
	for _, d := range []string{allowed, secret} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	_ = os.WriteFile(filepath.Join(secret, "s.txt"), []byte("MCPSEC-SECRET\n"), 0o644)
	_ = os.WriteFile(filepath.Join(allowed, "a.txt"), []byte("a\n"), 0o644)
	if err := os.Symlink(filepath.Join(secret, "s.txt"), filepath.Join(allowed, "link")); err != nil {
		t.Fatal(err)
	}
	sensor := bin(t, "sensor")
	dlog, tlog := filepath.Join(dir, "daemon.log"), filepath.Join(dir, "trace.log")
	d := startTmux(t, "mcpsec-daemon", fmt.Sprintf("MCPSEC_STATE_DIR=%s MCPSEC_CONTROL_SOCKET=%s MCPSEC_ALERTS_FILE=%s MCPSEC_METRICS_ADDR= %s daemon 2>%s",
		filepath.Join(dir, "state"), filepath.Join(dir, "ctl.sock"), filepath.Join(dir, "alerts.jsonl"), sensor, dlog))
	tr := startTmux(t, "mcpsec-trace", fmt.Sprintf("%s trace --only messages,alerts --hide-runtime 2>%s", sensor, tlog))
	waitFile(t, dlog, `"ready"`)
	waitFile(t, tlog, "tracing")

	c := runTSClient(t, npmDir, map[string]any{"command": "npx", "args": []string{"--no-install", "mcp-server-filesystem", allowed},
		"calls": []map[string]any{{"tool": "read_file", "arguments": map[string]any{"path": filepath.Join(allowed, "link")}}}})
	c.until(t, "")
	_ = c.cmd.Wait()

	var ds, ts string
	for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		ds, ts = d.screen(t), tr.screen(t)
		if strings.Contains(ds, "SERVER GONE") && strings.Contains(ts, "ALERT HIGH") {
			break
		}
	}
	name := "@modelcontextprotocol/server-filesystem@2025.3.28"
	for _, want := range []string{
		"SERVER FOUND " + name + " pid ",
		"(node " + npmDir + "/node_modules/.bin/mcp-server-filesystem " + allowed + ") roots " + allowed,
		"ALERT HIGH path_outside_roots: " + name + " open " + filepath.Join(secret, "s.txt") + " outside its roots",
		"[call read_file id=2]",
		"SERVER GONE " + name,
	} {
		if !strings.Contains(ds, want) {
			t.Errorf("the daemon's terminal lacks %q:\n%s", want, ds)
		}
	}
	if strings.Contains(ds, `{"kind"`) {
		t.Errorf("JSON on the daemon's terminal:\n%s", ds)
	}
	for _, want := range []string{
		"→ in initialize id=0",
		"→ in tools/call id=2 tool=read_file",
		"← out response id=2 (tools/call read_file,",
		"ALERT HIGH path_outside_roots",
	} {
		if !strings.Contains(ts, want) {
			log, _ := os.ReadFile(tlog)
			t.Errorf("the trace's terminal lacks %q:\n%s\nits log:\n%s", want, ts, log)
		}
	}
	if m := regexp.MustCompile(`\] (open|write|mmap_exec|exec|fork|exit|connect) `).FindString(ts); m != "" {
		t.Errorf("the trace (messages and alerts only) shows an effect line (%q):\n%s", m, ts)
	}
	for _, never := range []string{"[after lost bytes]", "runtime opens folded"} {
		if strings.Contains(ts, never) {
			t.Errorf("the trace shows %q:\n%s", never, ts)
		}
	}
	d.interrupt(t, dlog)
	tr.interrupt(t, tlog)
}
