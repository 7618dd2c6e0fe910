package e2e

import (
	"bytes"
	"encoding/json"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/mcpsec/sensor/internal/testutil"
	"github.com/mcpsec/sensor/pkg/scan"
)

// TestScanRealConfigs: `sensor scan` over a home whose client files name
// real npm servers (one with published advisories, one unpinned, one with
// a token in env) and a malicious-by-design one whose tool description
// carries hidden instructions and which, on start-up, reads the user's key
// from every home and calls home. Each finding is reported once with its
// evidence, in text, JSON and SARIF that validates; the live part shows
// the start-up effects, and neither the network nor the real home was
// reached: the listener got no connection, the key in /root was not there
// to read.
func TestScanRealConfigs(t *testing.T) {
	testutil.RequireBPF(t)
	npm := npmFixture(t, "npm-clients", filepath.Join("node_modules", ".bin", "mcp-server-filesystem"))
	evil := bin(t, "evil")
	home := t.TempDir()
	canary := "/root/.mcpsec-scan-canary-" + filepath.Base(home)
	if err := os.WriteFile(canary, []byte("-----BEGIN OPENSSH PRIVATE KEY-----\ncanary\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	defer os.Remove(canary)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var reached atomic.Int32
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			reached.Add(1)
			c.Close()
		}
	}()
	write := func(rel string, v any) {
		b, _ := json.MarshalIndent(v, "", "  ")
		p := filepath.Join(home, rel)
		_ = os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	type srv = map[string]any
	write(".claude.json", srv{"projects": srv{npm: srv{"mcpServers": srv{
		"filesystem": srv{"command": "npx", "args": []string{"-y", "@modelcontextprotocol/server-filesystem@2025.3.28", npm}},
		"everything": srv{"command": "npx", "args": []string{"-y", "@modelcontextprotocol/server-everything"}},
		"memory": srv{"command": "npx", "args": []string{"-y", "@modelcontextprotocol/server-memory@2026.8.31"},
			"env": srv{"GITHUB_TOKEN": "ghp_R2l0SHViVG9rZW5FeGFtcGxlMDEyMzQ1Njc4OQ"}},
		"notes-helper": srv{"command": evil, "args": []string{"/tmp"},
			"env": srv{"EVIL_ON_START": "1", "EVIL_EXFIL": ln.Addr().String(), "EVIL_SECRET": filepath.Base(canary)}},
	}}}})
	write(".cursor/mcp.json", srv{"mcpServers": srv{"team-notes": srv{"url": "http://notes.example.com/mcp"}}})
	state := t.TempDir()
	run := func(args ...string) ([]byte, int) {
		cmd := exec.Command(bin(t, "sensor"), append([]string{"scan", "--home", home, "--project", home, "--state-dir", state}, args...)...)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		code := 0
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatalf("sensor scan: %v\n%s", err, stderr.String())
		}
		if code == 1 {
			t.Fatalf("sensor scan failed:\n%s", stderr.String())
		}
		return out, code
	}
	out, code := run("-o", "json")
	if code != 13 {
		t.Errorf("exit status %d, want 13 (worst finding high, --fail-on high)", code)
	}
	var r scan.Report
	if err := json.Unmarshal(out, &r); err != nil {
		t.Fatalf("the JSON report: %v\n%s", err, out)
	}
	count := map[string]int{}
	for _, f := range r.Findings {
		count[f.Server+"/"+f.Rule]++
		if f.Evidence == "" || f.File == "" {
			t.Errorf("a finding without evidence or file: %+v", f)
		}
	}
	want := map[string]int{
		"filesystem/vulnerable-package":  2, // CVE-2025-53109, CVE-2025-53110
		"everything/unpinned-package":    1,
		"memory/secret-in-config":        1,
		"notes-helper/tool-instructions": 1,
		"notes-helper/startup-effect":    3, // the connection it tried, the key it looked for in the homes, uname
		"team-notes/plain-http":          1,
	}
	for k, n := range want {
		if count[k] != n {
			t.Errorf("%s: %d finding(s), want %d", k, count[k], n)
		}
	}
	for k := range count {
		server := strings.SplitN(k, "/", 2)[0]
		if (server == "filesystem" || server == "everything" || server == "memory") && want[k] == 0 {
			t.Errorf("a real npm server got an unexpected finding %s", k)
		}
	}
	if bytes.Contains(out, []byte("R2l0SHViVG9rZW5FeGFtcGxl")) {
		t.Error("the token is printed in full")
	}
	live := map[string]scan.Live{}
	for _, l := range r.Live {
		live[l.Server] = l
		if !l.Started {
			t.Errorf("%s did not start in the sandbox: %s", l.Server, l.Error)
		}
	}
	if len(live) != 4 || len(live["filesystem"].Tools) == 0 || len(live["everything"].Prompts) == 0 {
		t.Errorf("live results: %+v", r.Live)
	}
	nh := live["notes-helper"]
	if len(nh.Connects) != 1 || nh.Connects[0] != ln.Addr().String() {
		t.Errorf("the connection tried on start-up: %v, want %s", nh.Connects, ln.Addr())
	}
	if !containsPrefix(nh.Files, canary+" (ENOENT)") {
		t.Errorf("the read of the real home's key is not shown as failed: %v", nh.Files)
	}
	if n := reached.Load(); n != 0 {
		t.Errorf("a server reached the network from the sandbox: %d connection(s)", n)
	}
	// SARIF validates against the 2.1.0 schema and carries every finding
	sarif, _ := run("-o", "sarif")
	sch, err := jsonschema.NewCompiler().Compile(filepath.Join(testutil.RepoRoot(), "pkg", "scan", "testdata", "sarif-schema-2.1.0.json"))
	if err != nil {
		t.Fatal(err)
	}
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(sarif))
	if err != nil {
		t.Fatal(err)
	}
	if err := sch.Validate(inst); err != nil {
		t.Fatalf("the SARIF log does not validate: %v", err)
	}
	if n := bytes.Count(sarif, []byte(`"ruleId"`)); n != len(r.Findings) {
		t.Errorf("SARIF has %d results for %d findings", n, len(r.Findings))
	}
	// text for people (the files alone), and --fail-on none exits 0
	text, code := run("--fail-on", "none", "--static")
	if code != 0 || !bytes.Contains(text, []byte("GHSA-hc55-p739-j48w")) || bytes.Contains(text, []byte("Started in the sandbox")) {
		t.Errorf("text report (exit %d):\n%s", code, text)
	}
	t.Logf("scan text report:\n%s", text)
}

func containsPrefix(xs []string, p string) bool {
	for _, x := range xs {
		if strings.HasPrefix(x, p) {
			return true
		}
	}
	return false
}
