package e2e

import (
	"bytes"
	"encoding/json"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mcpsec/sensor/internal/testutil"
)

func runSensor(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	testutil.RequireBPF(t)
	cmd := exec.Command(bin(t, "sensor"), args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return code, out.String(), errb.String()
}

// TestExitCodes: `sensor trace -- CMD` exits as CMD does, so it can stand in
// an MCP client's command line.
func TestExitCodes(t *testing.T) {
	if code, out, _ := runSensor(t, "trace", "-o", "json", "--", "/bin/sh", "-c", "echo hi; exit 7"); code != 7 || out != "hi\n" {
		t.Errorf("exit %d, stdout %q; want 7 and the command's own stdout", code, out)
	}
	if code, _, errs := runSensor(t, "trace", "--", "/nonexistent/server"); code != 127 || !strings.Contains(errs, "/nonexistent/server") {
		t.Errorf("exit %d (want 127), stderr %q", code, errs)
	}
}

// TestStderrShared: the trace (JSON) and a chatty command's stderr share
// the sensor's stderr without splitting each other's lines.
func TestStderrShared(t *testing.T) {
	script := `for i in $(seq 1 300); do echo "log line $i $(printf '%0500d' 0)" >&2; cat /etc/hostname >/dev/null; done`
	code, _, errs := runSensor(t, "trace", "-o", "json", "--", "/bin/sh", "-c", script)
	if code != 0 {
		t.Fatalf("exit %d", code)
	}
	var logs, events int
	for _, l := range strings.Split(strings.TrimSpace(errs), "\n") {
		switch {
		case strings.HasPrefix(l, "log line "):
			logs++
		case json.Valid([]byte(l)):
			events++
		default:
			t.Fatalf("a split or spliced line on stderr: %.120q", l)
		}
	}
	if logs != 300 || events < 300 {
		t.Errorf("%d log lines (want 300), %d JSON lines", logs, events)
	}
}

// TestStopKillsTheTree: a traced command that ignores SIGTERM, and a
// grandchild, are killed when the sensor is told twice to stop; nothing of
// the command outlives the sensor.
func TestStopKillsTheTree(t *testing.T) {
	cmd, _ := startSensor(t, "--", "/bin/sh", "-c", `trap "" TERM; sleep 300 & wait`)
	time.Sleep(300 * time.Millisecond) // the shell sets its trap
	cmd.Process.Signal(syscall.SIGTERM)
	time.Sleep(300 * time.Millisecond)
	cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		ee, ok := err.(*exec.ExitError)
		if !ok || ee.ExitCode() != 128+9 {
			t.Errorf("sensor exit: %v (want 137: the command was killed)", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the sensor did not stop")
	}
	if out, _ := exec.Command("pgrep", "-f", "sleep 300").Output(); len(out) > 0 {
		exec.Command("pkill", "-f", "sleep 300").Run()
		t.Errorf("the command's grandchild survived: %s", out)
	}
}
