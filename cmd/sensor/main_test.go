package main

import (
	"bytes"
	"fmt"
	"os"
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
		{nil, []string{"trace", "--capture-max", "lots"}, `"lots" is not a size`},
		{nil, []string{"trace", "--payload-ring", "3MiB"}, "power of two"},
		{nil, []string{"trace", "--wakeup-interval", "0s"}, "between 1ns and 1s"},
		{map[string]string{"MCPSEC_OUTPUT": "xml"}, []string{"trace"}, `MCPSEC_OUTPUT: output: "xml"`},
		{map[string]string{"MCPSEC_CAPTURE_MAX": "nope"}, []string{"trace"}, `MCPSEC_CAPTURE_MAX=nope: "nope" is not a size`},
		{nil, []string{"trace", "--no-such-flag"}, "unknown flag"},
		{nil, []string{"trace", "--color", "sometimes"}, `--color: color: "sometimes"`},
		{nil, []string{"trace", "--log-level", "loud"}, `--log-level: log_level: "loud"`},
		{nil, []string{"trace", "--stats-interval", "-1s"}, "must not be negative"},
		{nil, []string{"trace", "--"}, "nothing after --"},
		{nil, []string{"trace", "--pid", fmt.Sprint(os.Getpid())}, "the sensor itself"},
		{nil, []string{"trace", "--config", "/nonexistent.yaml"}, "/nonexistent.yaml: no such file"},
		{nil, []string{"daemon", "--response", "later"}, `--response: response: "later"`},
		{map[string]string{"SECURITY_PROFILE": "lax"}, []string{"run", "--", "true"}, `SECURITY_PROFILE: profile: "lax" is not a profile`},
		{nil, []string{"run"}, "give the server's command"},
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
