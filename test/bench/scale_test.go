package bench

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/mcpsec/sensor/internal/testutil"
)

// daemon is `sensor daemon` as installed, on a fresh state directory.
type daemon struct {
	cmd    *exec.Cmd
	dir    string
	sock   string
	alerts string
	logs   *syncBuffer
}

func startDaemon(b *testing.B, sensor string, flags ...string) *daemon {
	b.Helper()
	dir := b.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "none.yaml"), nil, 0o644); err != nil {
		b.Fatal(err)
	}
	d := &daemon{dir: dir, sock: filepath.Join(dir, "sensor.sock"), alerts: filepath.Join(dir, "alerts.jsonl"), logs: &syncBuffer{}}
	args := append([]string{"daemon", "--config", filepath.Join(dir, "none.yaml"), "--state-dir", filepath.Join(dir, "state"),
		"--control-socket", d.sock, "--alerts-file", d.alerts, "--alerts-stdout=false", "--metrics-addr", "",
		"-o", "json", "--stats-interval", "0"}, flags...)
	d.cmd = exec.Command(sensor, args...)
	d.cmd.Stderr = d.logs
	if err := d.cmd.Start(); err != nil {
		b.Fatal(err)
	}
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if _, err := os.Stat(d.sock); err == nil {
			if st, err := exec.Command(sensor, "status", "--socket", d.sock).Output(); err == nil && strings.Contains(string(st), `"ready": true`) {
				return d
			}
		}
		if time.Now().After(deadline) {
			b.Fatalf("the daemon did not start:\n%s", d.logs.String())
		}
	}
}

func (d *daemon) stop(b *testing.B) {
	_ = d.cmd.Process.Signal(syscall.SIGTERM)
	if err := d.cmd.Wait(); err != nil {
		b.Logf("daemon: %v\n%s", err, d.logs.String())
	}
}

// servers counts the servers `sensor servers` lists whose line has substr.
func (d *daemon) servers(b *testing.B, sensor, substr string) int {
	out, err := exec.Command(sensor, "servers", "--socket", d.sock).CombinedOutput()
	if err != nil {
		b.Fatalf("sensor servers: %v\n%s", err, out)
	}
	return strings.Count(string(out), substr)
}

// status reads the daemon's counters: ring and queue drops, and the
// messages decoded.
func (d *daemon) status(b *testing.B, sensor string) map[string]float64 {
	out, err := exec.Command(sensor, "status", "--socket", d.sock).Output()
	if err != nil {
		b.Fatalf("sensor status: %v", err)
	}
	var st struct {
		Stats struct {
			Drops   float64 `json:"drops"`
			Decoder struct {
				In  float64 `json:"messages_in"`
				Out float64 `json:"messages_out"`
			} `json:"decoder"`
			Kernel map[string]float64 `json:"kernel"`
		} `json:"stats"`
	}
	if err := json.Unmarshal(out, &st); err != nil {
		b.Fatalf("sensor status: %v", err)
	}
	k := st.Stats.Kernel
	return map[string]float64{"ring_drops": k["payload_ring_full"] + k["effect_ring_full"] + k["recursion_misses"],
		"queue_drops": st.Stats.Drops, "messages": st.Stats.Decoder.In + st.Stats.Decoder.Out}
}

// procStatus reads a process's resident memory and the part of it that is
// its own (anonymous: the heap; the rest is the binary's text and the
// rings, kernel memory mapped twice over), in MiB.
func procStatus(pid int) (rss, anon float64) {
	rss, anon, _ = procMemory(pid)
	return rss, anon
}

// procMemory reads VmRSS, RssAnon and VmHWM (the peak), in MiB.
func procMemory(pid int) (rss, anon, hwm float64) {
	data, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	for _, ln := range strings.Split(string(data), "\n") {
		f := strings.Fields(ln)
		if len(f) < 2 {
			continue
		}
		kb, _ := strconv.ParseFloat(f[1], 64)
		switch f[0] {
		case "VmRSS:":
			rss = kb / 1024
		case "VmHWM:":
			hwm = kb / 1024
		case "RssAnon:":
			anon = kb / 1024
		}
	}
	return rss, anon, hwm
}

// BenchmarkScale: the daemon (`sensor daemon`, fresh state, monitor) with
// many traced servers: N Python stdio servers, each started by a Go SDK
// client as an assistant starts one and discovered by its handshake,
// each answering a tools/call (a 512-byte echo) a second. Once all are
// listed, it measures over 20 s the daemon's resident memory (and the
// anonymous part of it), its CPU (share of one CPU, and per message);
// then the detection latency under that load: a malicious-by-design
// server (discovered too) reads an SSH key in 30 calls over 10 s, and
// each alert's detect_ms (the read's kernel time to the responder) is
// taken; and the peak resident memory. flood=20000: one server writing 20,000
// messages a second for 20 s, with its drops and losses.
func BenchmarkScale(b *testing.B) {
	testutil.RequireBPF(b)
	if b.N > 1 {
		b.Skip("one run each")
	}
	sensor := sensorBinary(b)
	for _, n := range []int{1, 10, 100} {
		b.Run(fmt.Sprintf("servers=%d", n), func(b *testing.B) { scaleServers(b, sensor, n) })
	}
	b.Run("flood=20000", func(b *testing.B) { scaleFlood(b, sensor) })
}

func scaleServers(b *testing.B, sensor string, n int) {
	const window = 20 * time.Second
	d := startDaemon(b, sensor, "--learn", "0", "--response", "monitor")
	defer d.stop(b)
	echo := filepath.Join(testutil.RepoRoot(), "test", "bench", "testdata", "echo_server.py")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var calls, failed atomic.Int64
	var wg sync.WaitGroup
	sessions := make([]*mcp.ClientSession, n)
	for i := range sessions {
		client := mcp.NewClient(&mcp.Implementation{Name: "bench", Version: "1"}, nil)
		s, err := client.Connect(ctx, &mcp.CommandTransport{Command: exec.Command("python3", echo)}, nil)
		if err != nil {
			b.Fatalf("server %d: %v", i, err)
		}
		sessions[i] = s
		defer s.Close()
	}
	msg := strings.Repeat("m", 512)
	for _, s := range sessions {
		wg.Add(1)
		go func() {
			defer wg.Done()
			time.Sleep(time.Duration(rand.Int64N(int64(time.Second)))) // spread the calls over the second
			t := time.NewTicker(time.Second)
			defer t.Stop()
			for {
				if _, err := s.CallTool(ctx, &mcp.CallToolParams{Name: "echo", Arguments: map[string]any{"message": msg}}); err != nil {
					if ctx.Err() != nil {
						return
					}
					failed.Add(1)
				} else {
					calls.Add(1)
				}
				select {
				case <-ctx.Done():
					return
				case <-t.C:
				}
			}
		}()
	}
	for deadline := time.Now().Add(60 * time.Second); d.servers(b, sensor, "echo_server.py") < n; time.Sleep(500 * time.Millisecond) {
		if time.Now().After(deadline) {
			b.Fatalf("the daemon lists %d of %d servers", d.servers(b, sensor, "echo_server.py"), n)
		}
	}
	time.Sleep(2 * time.Second)
	pid := d.cmd.Process.Pid
	u0, s0 := cpuTicks(pid)
	c0 := calls.Load()
	t0 := time.Now()
	time.Sleep(window)
	el := time.Since(t0)
	u1, s1 := cpuTicks(pid)
	msgs := 2 * float64(calls.Load()-c0)
	rss, anon := procStatus(pid)
	// then, under the same load, an attacker
	det := attack(b, ctx, d, 10*time.Second)
	_, _, hwm := procMemory(pid)
	cancel()
	wg.Wait()
	cpu := float64(u1-u0+s1-s0) * 10 // ms
	b.ReportMetric(rss, "rss-MiB")
	b.ReportMetric(anon, "anon-MiB")
	b.ReportMetric(hwm, "peak-rss-MiB")
	b.ReportMetric(cpu/el.Seconds()/10, "cpu-%")
	b.ReportMetric(cpu*1000/max(msgs, 1), "cpu-us/msg")
	b.ReportMetric(msgs/el.Seconds(), "msgs/s")
	b.ReportMetric(float64(failed.Load()), "failed-calls")
	if len(det) == 0 {
		b.Fatal("no alert for the key's reads")
	}
	sort.Float64s(det)
	b.ReportMetric(det[len(det)/2], "detect-p50-ms")
	b.ReportMetric(det[len(det)*99/100], "detect-p99-ms")
	b.ReportMetric(float64(len(det)), "alerts")
}

// attack runs the evil server (discovered like the others) for about the
// window, reading its home's SSH key in 30 calls, and returns the
// detection latency of each alert that says so.
func attack(b *testing.B, ctx context.Context, d *daemon, window time.Duration) []float64 {
	home := filepath.Join(d.dir, "home")
	if err := os.MkdirAll(filepath.Join(home, ".ssh"), 0o700); err != nil {
		b.Fatal(err)
	}
	key := "-----BEGIN OPENSSH PRIVATE KEY-----\nbench\n-----END OPENSSH PRIVATE KEY-----\n"
	if err := os.WriteFile(filepath.Join(home, ".ssh", "id_rsa"), []byte(key), 0o600); err != nil {
		b.Fatal(err)
	}
	cmd := exec.Command(testutil.Binary(b, "./internal/testservers/evil"), filepath.Join(home, "notes"))
	cmd.Env = append(os.Environ(), "HOME="+home)
	client := mcp.NewClient(&mcp.Implementation{Name: "bench", Version: "1"}, nil)
	s, err := client.Connect(ctx, &mcp.CommandTransport{Command: cmd}, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	start := time.Now()
	time.Sleep(time.Second) // identified, its home's keys listed
	const attacks = 30
	gap := (window - 2*time.Second) / attacks
	for i := 0; i < attacks; i++ {
		if _, err := s.CallTool(ctx, &mcp.CallToolParams{Name: "read_notes", Arguments: map[string]any{"note": fmt.Sprint(i)}}); err != nil {
			b.Fatal(err)
		}
		time.Sleep(gap)
	}
	time.Sleep(window - time.Since(start))
	return detections(b, d.alerts, "evil")
}

// detections reads the alerts file: detect_ms of each alert on a server
// whose name has substr.
func detections(b *testing.B, path, substr string) []float64 {
	f, err := os.Open(path)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	var out []float64
	byRule := map[string][]float64{}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		var a struct {
			Rule     string `json:"rule"`
			Server   string `json:"server_name"`
			Response *struct {
				DetectMS float64 `json:"detect_ms"`
			} `json:"response"`
		}
		if json.Unmarshal(sc.Bytes(), &a) == nil && a.Response != nil && a.Response.DetectMS > 0 && strings.Contains(a.Server, substr) {
			out = append(out, a.Response.DetectMS)
			byRule[a.Rule] = append(byRule[a.Rule], a.Response.DetectMS)
		}
	}
	for r, l := range byRule {
		sort.Float64s(l)
		b.Logf("%s: %d alerts, detection p50 %.2f ms, max %.2f ms", r, len(l), l[len(l)/2], l[len(l)-1])
	}
	return out
}

// scaleFlood: one discovered server writing 20,000 messages a second.
func scaleFlood(b *testing.B, sensor string) {
	const rate, seconds = 20000, 20
	d := startDaemon(b, sensor, "--learn", "0", "--response", "monitor")
	defer d.stop(b)
	flood := testutil.Binary(b, "./internal/testservers/flood")
	init := `{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"bench","version":"1"}}}` + "\n"
	pid := d.cmd.Process.Pid
	u0, s0 := cpuTicks(pid)
	t0 := time.Now()
	fl := startServer(b, init, nil, flood, "-handshake", "-n", fmt.Sprint(rate*seconds), "-rate", fmt.Sprint(rate))
	fl.wait(b)
	el := time.Since(t0)
	time.Sleep(time.Second) // the last records read
	u1, s1 := cpuTicks(pid)
	rss, anon, hwm := procMemory(pid)
	cpu := float64(u1-u0+s1-s0) * 10
	b.ReportMetric(rss, "rss-MiB")
	b.ReportMetric(anon, "anon-MiB")
	b.ReportMetric(hwm, "peak-rss-MiB")
	b.ReportMetric(cpu/el.Seconds()/10, "cpu-%")
	b.ReportMetric(cpu*1000/float64(rate*seconds), "cpu-us/msg")
	st := d.status(b, sensor)
	b.ReportMetric(st["ring_drops"], "ring-drops")
	b.ReportMetric(st["queue_drops"], "queue-drops")
	b.ReportMetric(float64(rate*seconds+1)-st["messages"], "lost-msgs") // and the handshake
}
