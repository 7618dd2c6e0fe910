// Package e2e runs the sensor binary against real MCP servers and clients,
// on the real kernel. It needs root; with MCPSEC_REQUIRE_BPF=1 (CI) a test
// that cannot run fails instead of skipping.
package e2e

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/mcpsec/sensor/internal/testutil"
)

func TestMain(m *testing.M) { testutil.Main(m) }

// bin returns a binary of this module, built once. MCPSEC_BENCH_SENSOR
// names another sensor binary (an older commit's) for the benchmarks to
// run side by side.
func bin(t testing.TB, name string) string {
	t.Helper()
	if p := os.Getenv("MCPSEC_BENCH_SENSOR"); p != "" && name == "sensor" {
		if _, ok := t.(*testing.B); ok {
			return p
		}
	}
	pkgs := map[string]string{"sensor": "./cmd/sensor", "toolbox": "./internal/testservers/toolbox", "evil": "./internal/testservers/evil",
		"unitrun": "./internal/unitrun"}
	return testutil.Binary(t, pkgs[name])
}

// line is one trace line, decoded loosely.
type line map[string]any

func (l line) str(k string) string {
	s, _ := l[k].(string)
	return s
}

func (l line) num(k string) float64 {
	f, _ := l[k].(float64)
	return f
}

// readTrace parses a JSON-lines trace, checking the contract every line must meet.
func readTrace(t *testing.T, path string) []line {
	t.Helper()
	keepTrace(t, path)
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []line
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	for sc.Scan() {
		var l line
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			t.Fatalf("trace line is not JSON: %v: %.200s", err, sc.Bytes())
		}
		switch l.str("kind") {
		case "message":
			if d := l.str("direction"); d != "in" && d != "out" {
				t.Errorf("message without a direction: %.300v", l)
			}
		case "effect":
			if l.str("type") == "" || l["pid"] == nil {
				t.Errorf("effect without type or pid: %.300v", l)
			}
		case "alert", "stats":
		default:
			t.Errorf("trace line with unknown kind %q", l.str("kind"))
		}
		if _, err := time.Parse(time.RFC3339Nano, l.str("ts")); err != nil {
			t.Errorf("trace line without an RFC 3339 ts: %.200v", l)
		}
		out = append(out, l)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// keepTrace copies a trace to $MCPSEC_E2E_TRACES, if set: the corpus
// internal/fpcount measures the content rules' false positives on.
func keepTrace(t *testing.T, path string) {
	dir := os.Getenv("MCPSEC_E2E_TRACES")
	if dir == "" {
		return
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return // the test itself says why
	}
	name := strings.NewReplacer("/", "_", " ", "_").Replace(t.Name())
	f, err := os.CreateTemp(dir, name+"-*.jsonl")
	if err != nil {
		t.Fatalf("keeping the trace: %v", err)
	}
	defer f.Close()
	if _, err := f.Write(b); err != nil {
		t.Fatalf("keeping the trace: %v", err)
	}
}

func filter(ls []line, pred func(line) bool) []line {
	var out []line
	for _, l := range ls {
		if pred(l) {
			out = append(out, l)
		}
	}
	return out
}

func stats(t *testing.T, ls []line) line {
	t.Helper()
	s := filter(ls, func(l line) bool { return l.str("kind") == "stats" })
	if len(s) == 0 {
		t.Fatal("the trace has no stats line")
	}
	return s[len(s)-1]
}

// traced starts `sensor trace -o json --out FILE -- argv...` as an MCP
// server command for the Go SDK client and connects to it.
func traced(t *testing.T, ctx context.Context, version string, dir string, argv ...string) (*mcp.ClientSession, string) {
	return tracedWith(t, ctx, traceSetup{version: version, dir: dir}, argv...)
}

// traceSetup is how tracedWith runs the sensor.
type traceSetup struct {
	version string   // protocol version the client asks for ("": the SDK's default)
	dir     string   // working directory
	env     []string // added to the environment (the sensor passes it on)
	flags   []string // more sensor trace flags
	client  *mcp.Client
	stderr  io.Writer        // also gets the sensor's stderr
	cmd     chan<- *exec.Cmd // is sent the sensor's command once started
}

// tracedWith starts `sensor trace -o json --out FILE FLAGS -- argv...` as an
// MCP server command for the Go SDK client and connects to it.
func tracedWith(t testing.TB, ctx context.Context, ts traceSetup, argv ...string) (*mcp.ClientSession, string) {
	t.Helper()
	testutil.RequireBPF(t)
	out := filepath.Join(t.TempDir(), "trace.jsonl")
	args := append([]string{"trace", "-o", "json", "--out", out}, ts.flags...)
	args = append(append(args, "--"), argv...)
	cmd := exec.Command(bin(t, "sensor"), args...)
	cmd.Dir = ts.dir
	if ts.env != nil {
		cmd.Env = append(os.Environ(), ts.env...)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if ts.stderr != nil {
		cmd.Stderr = io.MultiWriter(&stderr, ts.stderr)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("sensor stderr:\n%s", stderr.String())
		}
	})
	client := ts.client
	if client == nil {
		client = mcp.NewClient(&mcp.Implementation{Name: "e2e", Version: "1"}, nil)
	}
	var opts *mcp.ClientSessionOptions
	if ts.version != "" {
		opts = &mcp.ClientSessionOptions{ProtocolVersion: ts.version}
	}
	sess, err := client.Connect(ctx, &mcp.CommandTransport{Command: cmd, TerminateDuration: 10 * time.Second}, opts)
	if err != nil {
		t.Fatalf("connecting through the sensor: %v\n%s", err, stderr.String())
	}
	// a test that fails halfway must not leave a sensor loaded behind it
	t.Cleanup(func() {
		if cmd.Process != nil && cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
		}
	})
	if ts.cmd != nil {
		ts.cmd <- cmd
	}
	return sess, out
}

// npmServers installs the pinned npm packages of testdata/npm once per
// lockfile, in a cache directory, and returns that directory.
func npmServers(t *testing.T) string {
	return npmFixture(t, "npm", filepath.Join("node_modules", ".bin", "mcp-server-filesystem"))
}

// npmFixture copies testdata/NAME (package.json, its lockfile and scripts)
// to a cache directory keyed by their contents, runs `npm ci` there once,
// and returns the directory: scripts import from its node_modules.
func npmFixture(t *testing.T, name, probe string) string {
	t.Helper()
	src := filepath.Join(testutil.RepoRoot(), "test", "e2e", "testdata", name)
	ents, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	files := map[string][]byte{}
	h := sha256.New()
	for _, e := range ents {
		if e.IsDir() {
			continue
		}
		b, err := os.ReadFile(filepath.Join(src, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		files[e.Name()] = b
		h.Write([]byte(e.Name()))
		h.Write(b)
	}
	cache, err := os.UserCacheDir()
	if err != nil {
		cache = os.TempDir()
	}
	dir := filepath.Join(cache, "mcpsec-e2e", name+"-"+hex.EncodeToString(h.Sum(nil)[:8]))
	if _, err := os.Stat(filepath.Join(dir, probe)); err == nil {
		return dir
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for f, b := range files {
		if err := os.WriteFile(filepath.Join(dir, f), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cmd := exec.Command("npm", "ci", "--no-audit", "--no-fund")
	cmd.Dir = dir
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("npm ci of %s: %v\n%s", name, err, b)
	}
	return dir
}
