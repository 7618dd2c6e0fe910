package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// runCLI runs the command line and returns its error text.
func runCLI(t *testing.T, env map[string]string, args ...string) string {
	t.Helper()
	for k, v := range env {
		t.Setenv(k, v)
	}
	root := newRoot()
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&out)
	root.SetArgs(args)
	if err := root.Execute(); err != nil {
		return err.Error()
	}
	return ""
}

// TestBadInput: bad flags, arguments and environment give clear errors
// before anything is loaded (so these run without root).
func TestBadInput(t *testing.T) {
	cases := []struct {
		env  map[string]string
		args []string
		want string
	}{
		{nil, []string{"trace", "-o", "yaml"}, `--output: output: "yaml": use text, json`},
		{nil, []string{"trace", "ls"}, "put the command to trace after --"},
		{nil, []string{"trace", "--pid", "1", "--", "ls"}, "exclusive"},
		{nil, []string{"trace", "--pid", "999999999"}, "no such process"},
		{nil, []string{"trace", "--capture-max", "lots"}, `--capture-max lots: "lots" is not a size: want a positive number with an optional unit, e.g. 64KiB or 16MiB`},
		{nil, []string{"trace", "--payload-ring", "3MiB"}, "power of two"},
		{nil, []string{"trace", "--wakeup-interval", "0s"}, "between 1ns and 1s"},
		{map[string]string{"MCPSEC_OUTPUT": "xml"}, []string{"trace"}, `MCPSEC_OUTPUT: output: "xml"`},
		{map[string]string{"MCPSEC_CAPTURE_MAX": "nope"}, []string{"trace"}, `MCPSEC_CAPTURE_MAX=nope: "nope" is not a size`},
		{nil, []string{"trace", "--no-such-flag"}, "unknown flag --no-such-flag"},
		{nil, []string{"trace", "--stat-interval", "1s"}, `unknown flag --stat-interval (did you mean "--stats-interval"?)`},
		{nil, []string{"trace", "--pid", "abc"}, "--pid abc: not a whole number (e.g. --pid 4242)"},
		{nil, []string{"contain", "--pid", "x1"}, "--pid x1: not a whole number"},
		{nil, []string{"trace", "--color", "sometimes"}, `--color: color: "sometimes"`},
		{nil, []string{"trace", "--log-level", "loud"}, `--log-level: log_level: "loud"`},
		{nil, []string{"trace", "--stats-interval", "-1s"}, "must not be negative"},
		{nil, []string{"trace", "--"}, "nothing after --"},
		{nil, []string{"trace", "--pid", fmt.Sprint(os.Getpid())}, "the sensor itself"},
		{nil, []string{"trace", "--config", "/nonexistent.yaml"}, "/nonexistent.yaml: no such file"},
		{nil, []string{"daemon", "--response", "later"}, `--response: response: "later"`},
		{map[string]string{"SECURITY_PROFILE": "lax"}, []string{"run", "--", "true"}, `SECURITY_PROFILE: profile: "lax" is not a profile`},
		{nil, []string{"run"}, "give the server's command"},
		{nil, []string{"scan", "-o", "yaml"}, "--output yaml: use text, json or sarif"},
		{nil, []string{"scan", "--fail-on", "urgent"}, "--fail-on urgent: use low, medium, high, critical or none"},
		{nil, []string{"scan", "--static", "/nonexistent.json"}, "reading /nonexistent.json"},
		{nil, []string{"scan", "--static", "--advisories", "/nonexistent.yaml"}, "--advisories: reading the advisories"},
		{nil, []string{"mcp", "--socket", "/nonexistent.sock"}, "no daemon control socket at /nonexistent.sock"},
		{nil, []string{"alerts", "verdict", "8000000000000001", "maybe"}, `"maybe": say true`},
		{nil, []string{"alerts", "verdict", "8000000000000001", "false"}, "--reason is required"},
		{nil, []string{"alerts", "-o", "yaml"}, "--output yaml: use text or json"},
	}
	for i, c := range cases {
		t.Run(fmt.Sprint(i), func(t *testing.T) { // scopes t.Setenv
			got := runCLI(t, c.env, c.args...)
			if !strings.Contains(got, c.want) {
				t.Errorf("%v %v: error %q, want it to contain %q", c.env, c.args, got, c.want)
			}
		})
	}
}

func TestHelpAndVersion(t *testing.T) {
	root := newRoot()
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetArgs([]string{"trace", "--help"})
	if err := root.Execute(); err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"sensor trace -- CMD", "--pid", "--output", "--out", "MCP"} {
		if !strings.Contains(out.String(), s) {
			t.Errorf("trace --help lacks %q", s)
		}
	}
	if got := runCLI(t, nil, "version"); got != "" {
		t.Fatal(got)
	}
}

// TestManAndCompletion: the manual pages are written from the commands'
// help, one per command, and the shell completion is there.
func TestManAndCompletion(t *testing.T) {
	dir := t.TempDir()
	if got := runCLI(t, nil, "man", "--dir", dir); got != "" {
		t.Fatal(got)
	}
	b, err := os.ReadFile(filepath.Join(dir, "sensor-trace.1"))
	if err != nil || !strings.Contains(string(b), "--hide-runtime") || !strings.Contains(string(b), "MCPSEC_HIDE_RUNTIME") {
		t.Fatalf("sensor-trace.1: %v\n%.500s", err, b)
	}
	root := newRoot()
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetArgs([]string{"completion", "bash"})
	if err := root.Execute(); err != nil || !strings.Contains(out.String(), "__sensor_") {
		t.Fatalf("completion: %v %.200s", err, out.String())
	}
}
