package bench

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/mcpsec/sensor/internal/testutil"
)

// npmServers installs test/e2e/testdata/npm-clients (the pinned npm
// servers) once per lockfile in a cache directory, and returns it.
func npmServers(b *testing.B) string {
	b.Helper()
	src := filepath.Join(testutil.RepoRoot(), "test", "e2e", "testdata", "npm-clients")
	h := sha256.New()
	for _, f := range []string{"package.json", "package-lock.json", "client.mjs"} {
		data, err := os.ReadFile(filepath.Join(src, f))
		if err != nil {
			b.Fatal(err)
		}
		h.Write([]byte(f))
		h.Write(data)
	}
	cache, err := os.UserCacheDir()
	if err != nil {
		cache = os.TempDir()
	}
	dir := filepath.Join(cache, "mcpsec-e2e", "npm-clients-"+hex.EncodeToString(h.Sum(nil)[:8]))
	if _, err := os.Stat(filepath.Join(dir, "node_modules", ".bin", "mcp-server-everything")); err == nil {
		return dir
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		b.Fatal(err)
	}
	for _, f := range []string{"package.json", "package-lock.json", "client.mjs"} {
		data, _ := os.ReadFile(filepath.Join(src, f))
		if err := os.WriteFile(filepath.Join(dir, f), data, 0o644); err != nil {
			b.Fatal(err)
		}
	}
	cmd := exec.Command("npm", "ci", "--no-audit", "--no-fund")
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		b.Fatalf("npm ci: %v\n%s", err, out)
	}
	return dir
}

// realServer says how to run one kind of server and reach it.
type realServer struct {
	name string
	argv []string // the server's command
	http bool     // Streamable HTTP on $PORT at /mcp, else stdio
	tool string
	args map[string]any
}

func realServers(b *testing.B) []realServer {
	npm := npmServers(b)
	everything := filepath.Join(npm, "node_modules", "@modelcontextprotocol", "server-everything", "dist", "index.js")
	msg := strings.Repeat("m", 512)
	return []realServer{
		{name: "node-stdio", argv: []string{"node", everything, "stdio"}, tool: "echo", args: map[string]any{"message": msg}},
		{name: "node-http", argv: []string{"node", everything, "streamableHttp"}, http: true, tool: "echo", args: map[string]any{"message": msg}},
		{name: "python-stdio", argv: []string{"python3", filepath.Join(testutil.RepoRoot(), "test", "bench", "testdata", "echo_server.py")},
			tool: "echo", args: map[string]any{"message": msg}},
	}
}

// started is a server with a client session, and the sensor tracing it.
type started struct {
	sess   *mcp.ClientSession
	sensor *exec.Cmd
	server *exec.Cmd
}

func (s *started) close() {
	s.sess.Close()
	for _, c := range []*exec.Cmd{s.server, s.sensor} {
		if c != nil && c.Process != nil {
			_ = c.Process.Signal(os.Interrupt)
			done := make(chan struct{})
			go func() { _ = c.Wait(); close(done) }()
			select {
			case <-done:
			case <-time.After(10 * time.Second):
				_ = c.Process.Kill()
			}
		}
	}
}

// start runs the server, under `sensor VERB` (trace, or run: the gateway
// on the wire) with flags unless flags is nil, and connects a Go SDK
// client to it.
func start(b *testing.B, rs realServer, sensor, verb string, flags []string) *started {
	b.Helper()
	ctx := context.Background()
	argv := rs.argv
	if flags != nil {
		// MCPSEC_BENCH_FLAGS: more of the sensor's flags (--cpu-profile F)
		flags = append(flags, strings.Fields(os.Getenv("MCPSEC_BENCH_FLAGS"))...)
		head := []string{sensor, "trace", "-o", "json", "--out", "/dev/null"}
		if verb == "run" {
			head = []string{sensor, "run", "--out", "/dev/null", "--state-dir", b.TempDir()}
		}
		argv = append(append(append(head, flags...), "--"), rs.argv...)
	}
	client := mcp.NewClient(&mcp.Implementation{Name: "bench", Version: "1"}, nil)
	s := &started{}
	if !rs.http {
		cmd := exec.Command(argv[0], argv[1:]...)
		sess, err := client.Connect(ctx, &mcp.CommandTransport{Command: cmd}, nil)
		if err != nil {
			b.Fatalf("%v: %v", argv, err)
		}
		s.sess = sess
		return s
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = append(os.Environ(), "PORT="+strconv.Itoa(port))
	cmd.Stdin = nil
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	if flags != nil {
		s.sensor = cmd
	} else {
		s.server = cmd
	}
	url := fmt.Sprintf("http://127.0.0.1:%d/mcp", port)
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		sess, err := client.Connect(ctx, &mcp.StreamableClientTransport{Endpoint: url}, nil)
		if err == nil {
			s.sess = sess
			return s
		}
		if time.Now().After(deadline) {
			b.Fatalf("%v: %v", argv, err)
		}
	}
}

// benchCalls is how many calls each run of BenchmarkRealServers makes
// (MCPSEC_BENCH_CALLS, default 1,000).
func benchCalls() int {
	if n, err := strconv.Atoi(os.Getenv("MCPSEC_BENCH_CALLS")); err == nil && n > 0 {
		return n
	}
	return 1000
}

// cpuTicks is a process's user and system time so far, in clock ticks
// (USER_HZ, 100 a second).
func cpuTicks(pid int) (user, sys uint64) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, 0
	}
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
	user, _ = strconv.ParseUint(f[11], 10, 64)
	sys, _ = strconv.ParseUint(f[12], 10, 64)
	return user, sys
}

// sensorPID finds the `sensor trace` process among this process's
// children (the stdio transport starts it).
func sensorPID(sensor string) int {
	ents, _ := os.ReadDir("/proc")
	self := strconv.Itoa(os.Getpid())
	for _, e := range ents {
		stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		f := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+1:]))
		if len(f) > 1 && f[1] == self {
			if exe, _ := os.Readlink(filepath.Join("/proc", e.Name(), "exe")); exe == sensor {
				pid, _ := strconv.Atoi(e.Name())
				return pid
			}
		}
	}
	return 0
}

// BenchmarkRealServers: the tools/call round trip (echo, a 512-byte
// argument) on real servers: the npm reference server
// (@modelcontextprotocol/server-everything) over stdio and over
// Streamable HTTP, and a Python stdio server. Each runs twice at once,
// plain and under `sensor trace -o json --out /dev/null` (with the
// built-in rules, or --no-rules), and the client alternates calls between
// the two, so noise falls on both alike; 1,000 calls each
// (MCPSEC_BENCH_CALLS) after 200 to warm up, once per run: -count 6 makes
// six alternating pairs. Reports p50 and p99 of each, their ratios, and the sensor's CPU
// (user and system) per message.
func BenchmarkRealServers(b *testing.B) {
	testutil.RequireBPF(b)
	if b.N > 1 {
		b.Skip("one run of benchCalls() calls each; -count N for N pairs")
	}
	sensor := sensorBinary(b)
	n := benchCalls()
	for _, rs := range realServers(b) {
		for _, v := range []struct {
			name, verb string
			flags      []string
		}{{"rules", "trace", []string{}}, {"norules", "trace", []string{"--no-rules"}}, {"gateway", "run", []string{}}} {
			if v.verb == "run" && rs.http {
				continue // sensor run is for stdio servers
			}
			b.Run(rs.name+"/"+v.name, func(b *testing.B) {
				plain := start(b, rs, sensor, "", nil)
				defer plain.close()
				traced := start(b, rs, sensor, v.verb, v.flags)
				defer traced.close()
				spid := sensorPID(sensor)
				ctx := context.Background()
				params := &mcp.CallToolParams{Name: rs.tool, Arguments: rs.args}
				call := func(s *mcp.ClientSession) time.Duration {
					t0 := time.Now()
					if _, err := s.CallTool(ctx, params); err != nil {
						b.Fatal(err)
					}
					return time.Since(t0)
				}
				for i := 0; i < 200; i++ {
					call(plain.sess)
					call(traced.sess)
				}
				lp, lt := make([]time.Duration, 0, n), make([]time.Duration, 0, n)
				u0, s0 := cpuTicks(spid)
				b.ResetTimer()
				for i := 0; i < n; i++ {
					if i%2 == 0 {
						lp = append(lp, call(plain.sess))
						lt = append(lt, call(traced.sess))
					} else {
						lt = append(lt, call(traced.sess))
						lp = append(lp, call(plain.sess))
					}
				}
				b.StopTimer()
				u1, s1 := cpuTicks(spid)
				pct := func(l []time.Duration, p int) float64 {
					sort.Slice(l, func(i, j int) bool { return l[i] < l[j] })
					return float64(l[min(len(l)*p/100, len(l)-1)].Microseconds())
				}
				p50p, p99p, p50t, p99t := pct(lp, 50), pct(lp, 99), pct(lt, 50), pct(lt, 99)
				b.ReportMetric(p50p, "plain-p50-us")
				b.ReportMetric(p50t, "traced-p50-us")
				b.ReportMetric(p99p, "plain-p99-us")
				b.ReportMetric(p99t, "traced-p99-us")
				b.ReportMetric(p50t/p50p, "p50-ratio")
				b.ReportMetric(p99t/p99p, "p99-ratio")
				if spid > 0 {
					// two messages per call, 10 ms per clock tick
					perMsg := func(t uint64) float64 { return float64(t) * 10000 / float64(2*n) }
					b.ReportMetric(perMsg(u1-u0), "sensor-usr-us/msg")
					b.ReportMetric(perMsg(s1-s0), "sensor-sys-us/msg")
				}
			})
		}
	}
}
