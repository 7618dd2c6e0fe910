package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/mcpsec/sensor/internal/testutil"
	"github.com/mcpsec/sensor/pkg/contain"
	"github.com/mcpsec/sensor/pkg/proc"
)

// daemon is a `sensor daemon` started for a test on its defaults, with a
// fresh state directory and its files and socket in the test's.
type daemon struct {
	cmd    *exec.Cmd
	sock   string
	alerts string
	state  string
	logs   *lockedBuffer
}

// startDaemon starts the daemon with the defaults and the extra YAML lines
// given, and waits until it is ready.
func startDaemon(t *testing.T, extra string) *daemon {
	t.Helper()
	testutil.RequireBPF(t)
	dir := t.TempDir()
	d := &daemon{sock: filepath.Join(dir, "ctl.sock"), alerts: filepath.Join(dir, "alerts.jsonl"), state: filepath.Join(dir, "state"), logs: &lockedBuffer{}}
	cfg := fmt.Sprintf("state_dir: %s\nalerts_file: %s\nalerts_stdout: false\nmetrics_addr: \"\"\ncontrol_socket: %s\n%s",
		filepath.Join(dir, "state"), d.alerts, d.sock, extra)
	path := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	d.cmd = exec.Command(bin(t, "sensor"), "daemon", "--config", path)
	d.cmd.Env = testEnvWithout("MCPSEC_STATE_DIR")
	d.cmd.Stderr = d.logs
	if err := d.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if d.cmd.ProcessState == nil {
			_ = d.cmd.Process.Signal(syscall.SIGTERM)
			done := make(chan struct{})
			go func() { _ = d.cmd.Wait(); close(done) }()
			select {
			case <-done:
			case <-time.After(20 * time.Second):
				_ = d.cmd.Process.Kill()
			}
		}
		if t.Failed() {
			t.Logf("daemon log:\n%s", d.logs.String())
		}
	})
	d.logs.waitFor(t, `"@message":"ready"`, 1)
	return d
}

// testEnvWithout is the environment minus the named variables.
func testEnvWithout(names ...string) []string {
	var out []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		keep := true
		for _, n := range names {
			keep = keep && k != n
		}
		if keep {
			out = append(out, kv)
		}
	}
	return out
}

// alertLines reads the daemon's alerts file.
func (d *daemon) alertLines(t *testing.T) []line {
	t.Helper()
	if _, err := os.Stat(d.alerts); err != nil {
		return nil
	}
	return readTrace(t, d.alerts)
}

// waitAlert waits for an alert of a rule (and severity) in the alerts file.
func (d *daemon) waitAlert(t *testing.T, rule, severity string) line {
	t.Helper()
	for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		for _, a := range d.alertLines(t) {
			if a.str("rule") == rule && a.str("severity") == severity {
				return a
			}
		}
	}
	t.Fatalf("no %s %s alert from the daemon:\n%s", severity, rule, d.logs.String())
	return nil
}

// servers is `sensor servers` as JSON.
func (d *daemon) servers(t *testing.T) []line {
	t.Helper()
	var out []line
	if err := json.Unmarshal([]byte(sensorCmd(t, "servers", "--socket", d.sock)), &out); err != nil {
		t.Fatal(err)
	}
	return out
}

// tsClient runs the official TypeScript SDK's client (testdata/npm-clients)
// on a server command: it lists the tools and makes the calls. With hold,
// it keeps the session open until release is called.
type tsClient struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	lines chan line
	out   []line
}

func runTSClient(t *testing.T, dir string, spec map[string]any) *tsClient {
	t.Helper()
	b, _ := json.Marshal(spec)
	c := &tsClient{cmd: exec.Command("node", "client.mjs", string(b)), lines: make(chan line, 64)}
	c.cmd.Dir = dir
	c.cmd.Stderr = os.Stderr
	var err error
	if c.stdin, err = c.cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	stdout, err := c.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := c.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		defer close(c.lines)
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 1<<20), 16<<20)
		for sc.Scan() {
			var l line
			if json.Unmarshal(sc.Bytes(), &l) == nil {
				c.lines <- l
			}
		}
	}()
	t.Cleanup(func() { c.stdin.Close(); _ = c.cmd.Process.Kill(); _ = c.cmd.Wait() })
	return c
}

// until reads the client's lines until one of kind (or its end).
func (c *tsClient) until(t *testing.T, kind string) {
	t.Helper()
	timeout := time.After(60 * time.Second)
	for {
		select {
		case l, ok := <-c.lines:
			if !ok {
				if kind != "" {
					t.Fatalf("the client ended before %q: %v", kind, c.out)
				}
				return
			}
			c.out = append(c.out, l)
			if l.str("kind") == kind {
				return
			}
		case <-timeout:
			t.Fatalf("the client never printed %q: %v", kind, c.out)
		}
	}
}

// finish lets a held client close its session and waits for it.
func (c *tsClient) finish(t *testing.T) {
	t.Helper()
	c.stdin.Close()
	c.until(t, "")
	if err := c.cmd.Wait(); err != nil {
		t.Fatalf("the client failed: %v (%v)", err, c.out)
	}
}

// TestDaemonDiscoversNpmServers: the daemon on its defaults (fresh state)
// discovers real npm servers that a real MCP client (the official
// TypeScript SDK) starts through npx, not the sensor; it reads what they
// are from /proc: an old filesystem server that reads outside its argv
// root through a symlink raises path_outside_roots HIGH; `sensor servers`
// shows its name, command, roots and calls. Two other real servers and
// the same filesystem server with other roots, one after the other, raise
// no high or critical alert (no false rug pull, no false cross-server
// reference).
func TestDaemonDiscoversNpmServers(t *testing.T) {
	npmDir := npmFixture(t, "npm-clients", filepath.Join("node_modules", ".bin", "mcp-server-memory"))
	work := t.TempDir()
	allowed, other, secret := filepath.Join(work, "allowed"), filepath.Join(work, "other"), filepath.Join(work, "secret")
	for _, d := range []string{allowed, other, secret} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for f, s := range map[string]string{filepath.Join(allowed, "a.txt"): "hello\n", filepath.Join(secret, "s.txt"): "MCPSEC-SECRET\n", filepath.Join(other, "b.txt"): "b\n"} {
		if err := os.WriteFile(f, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink(filepath.Join(secret, "s.txt"), filepath.Join(allowed, "link")); err != nil {
		t.Fatal(err)
	}
	d := startDaemon(t, "")

	fs := runTSClient(t, npmDir, map[string]any{"command": "npx", "args": []string{"--no-install", "mcp-server-filesystem", allowed},
		"calls": []map[string]any{{"tool": "read_file", "arguments": map[string]any{"path": filepath.Join(allowed, "a.txt")}},
			{"tool": "read_file", "arguments": map[string]any{"path": filepath.Join(allowed, "link")}}},
		"hold": true})
	fs.until(t, "ready")
	if !strings.Contains(fmt.Sprint(fs.out), "MCPSEC-SECRET") {
		t.Fatalf("the old server did not follow the symlink out of its root (the test's premise): %v", fs.out)
	}
	var srv line
	for deadline := time.Now().Add(10 * time.Second); srv == nil && time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		for _, s := range d.servers(t) {
			if s.str("name") == "@modelcontextprotocol/server-filesystem@2025.3.28" && s.num("calls") >= 2 {
				srv = s
			}
		}
	}
	if srv == nil {
		t.Fatalf("sensor servers does not show the filesystem server with its calls: %v", d.servers(t))
	}
	if !strings.Contains(srv.str("command"), "mcp-server-filesystem "+allowed) || fmt.Sprint(srv["roots"]) != fmt.Sprint([]any{allowed}) ||
		srv.obj("client").num("pid") == 0 || srv.obj("identity").str("kind") != "npm" {
		t.Errorf("the server as sensor servers shows it: %v", srv)
	}
	fs.finish(t)
	a := d.waitAlert(t, "path_outside_roots", "high")
	if a.str("server_name") != "@modelcontextprotocol/server-filesystem@2025.3.28" || !strings.Contains(fmt.Sprint(a["effects"]), filepath.Join(secret, "s.txt")) {
		t.Errorf("the escape's alert: %v", a)
	}

	// benign: another server, and the same one with other roots
	for _, spec := range []map[string]any{
		{"command": "npx", "args": []string{"--no-install", "mcp-server-memory"}, "env": map[string]string{"MEMORY_FILE_PATH": filepath.Join(work, "memory.jsonl")},
			"calls": []map[string]any{{"tool": "create_entities", "arguments": map[string]any{"entities": []map[string]any{{"name": "a", "entityType": "t", "observations": []string{"x"}}}}},
				{"tool": "read_graph", "arguments": map[string]any{}}}},
		{"command": "npx", "args": []string{"--no-install", "mcp-server-filesystem", other},
			"calls": []map[string]any{{"tool": "list_directory", "arguments": map[string]any{"path": other}}, {"tool": "read_file", "arguments": map[string]any{"path": filepath.Join(other, "b.txt")}}}},
		{"command": "npx", "args": []string{"--no-install", "mcp-server-filesystem", allowed, other},
			"calls": []map[string]any{{"tool": "list_allowed_directories", "arguments": map[string]any{}}, {"tool": "read_file", "arguments": map[string]any{"path": filepath.Join(allowed, "a.txt")}}}},
	} {
		c := runTSClient(t, npmDir, spec)
		c.until(t, "")
		if err := c.cmd.Wait(); err != nil || strings.Contains(fmt.Sprint(c.out), `kind:error`) {
			t.Fatalf("%v: %v %v", spec["args"], err, c.out)
		}
	}
	time.Sleep(2 * time.Second) // the last alerts, if any, reach the file
	for _, a := range d.alertLines(t) {
		if sev := a.str("severity"); (sev == "high" || sev == "critical") && a.str("rule") != "path_outside_roots" {
			t.Errorf("a benign server raised %s %s: %s", sev, a.str("rule"), a.str("output"))
		}
	}
	if n := strings.Count(d.logs.String(), `"@message":"server found"`); n != 4 {
		t.Errorf("%d servers found, want 4:\n%s", n, d.logs.String())
	}
}

// TestDaemonHomeElsewhere: a server whose $HOME is neither /root nor under
// /home (a service's state directory) reads $HOME/.aws/credentials during
// a call: the daemon, enforcing, raises credential_read_unnamed, and the
// kernel's taint refuses the server's egress: the listener it sends the
// key to gets nothing. The discovered server was put in a cgroup of its
// own (its client's stays as it was).
func TestDaemonHomeElsewhere(t *testing.T) {
	home, err := os.MkdirTemp("/var/lib", "mcpsec-e2e-svc-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(home) })
	if err := os.MkdirAll(filepath.Join(home, ".aws"), 0o700); err != nil {
		t.Fatal(err)
	}
	key := "[default]\naws_access_key_id = AKIAMCPSECE2ETEST000\naws_secret_access_key = " + strings.Repeat("x", 40) + "\n"
	if err := os.WriteFile(filepath.Join(home, ".aws", "credentials"), []byte(key), 0o600); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	got := make(chan int, 16)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			b, _ := io.ReadAll(c)
			got <- len(b)
			c.Close()
		}
	}()
	d := startDaemon(t, "profile: enterprise\nlearn: 0s\n")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.Command(bin(t, "evil"), home)
	cmd.Env = append(testEnvWithout("HOME"), "HOME="+home, "EVIL_SECRET=.aws/credentials", "EVIL_EXFIL="+ln.Addr().String())
	client := mcp.NewClient(&mcp.Implementation{Name: "e2e", Version: "1"}, nil)
	s, err := client.Connect(ctx, &mcp.CommandTransport{Command: cmd}, &mcp.ClientSessionOptions{ProtocolVersion: "2025-11-25"})
	if err != nil {
		t.Fatal(err)
	}
	var cg string
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if rel, _ := contain.CgroupOfPID(proc.Host, cmd.Process.Pid); strings.HasPrefix(rel, "/mcp-sensor/evil-") {
			cg = strings.TrimPrefix(rel, "/")
			break
		}
	}
	if cg == "" {
		t.Fatalf("the discovered server was not given a cgroup of its own:\n%s", d.logs.String())
	}
	if own, _ := os.ReadFile("/proc/self/cgroup"); strings.Contains(string(own), "mcp-sensor") {
		t.Fatal("the client was moved with the server")
	}
	t.Cleanup(func() {
		if out, err := exec.Command(bin(t, "sensor"), "release", "--socket", d.sock, "--cgroup", cg).CombinedOutput(); err != nil {
			t.Errorf("release: %v %s", err, out)
		}
		s.Close()
	})
	// the rule's action (contain) may freeze the server before it answers:
	// the call is not waited for
	go func() {
		_, _ = s.CallTool(ctx, &mcp.CallToolParams{Name: "read_notes", Arguments: map[string]any{"note": "todo"}})
	}()
	a := d.waitAlert(t, "credential_read_unnamed", "high")
	if !strings.Contains(fmt.Sprint(a["effects"]), filepath.Join(home, ".aws", "credentials")) {
		t.Errorf("alert: %v", a)
	}
	select {
	case n := <-got:
		if n > 0 {
			t.Fatalf("%d bytes of the key reached the listener", n)
		}
	case <-time.After(3 * time.Second):
	}
	var st struct {
		Stats struct {
			Kernel map[string]float64 `json:"kernel"`
		} `json:"stats"`
	}
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if err := json.Unmarshal([]byte(sensorCmd(t, "status", "-o", "json", "--socket", d.sock)), &st); err != nil {
			t.Fatal(err)
		}
		if st.Stats.Kernel["egress_denied"] >= 1 && st.Stats.Kernel["cgroups_tainted"] >= 1 {
			return
		}
	}
	t.Errorf("the kernel counted no taint or refused egress: %v", st.Stats.Kernel)
}
