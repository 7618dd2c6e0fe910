package bench

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
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/mcpsec/sensor/internal/testutil"
)

// sensorBinary is the sensor under test: MCPSEC_BENCH_SENSOR names another
// build (an older commit's, to compare side by side), else this tree's.
func sensorBinary(b *testing.B) string {
	if p := os.Getenv("MCPSEC_BENCH_SENSOR"); p != "" {
		return p
	}
	return testutil.Binary(b, "./cmd/sensor")
}

// BenchmarkPipelineDecoupled: one server raises 1,000 distinct high alerts
// a second, in enforce mode (the playbook answers each) with NATS and the
// audit trail on, while another writes 20,000 messages a second; both are
// discovered by their handshake. The stages must be decoupled: the second
// server loses nothing (no ring drop, every message decoded), and every
// alert reaches JetStream once, in order. Two kinds of alert:
// alerts=secrets (secret_in_tool_result: results carrying an access key,
// which an older sensor raises too, for comparing side by side with
// MCPSEC_BENCH_SENSOR) and alerts=files (path_outside_roots: files created
// outside the server's argv root during a call). Reports the flood's lost
// messages, ring drops, pipeline queue drops, alerts raised and delivered
// (and out of order or duplicated), and how long JetStream took, after
// the storm ended, to store the last alert, and each alert's latency from
// its event to JetStream.
func BenchmarkPipelineDecoupled(b *testing.B) {
	for _, kind := range []struct{ mode, rule, index string }{
		{"secrets", "secret_in_tool_result", `"type":"response","id":(\d+)`},
		{"files", "path_outside_roots", `f-(\d{7})`},
	} {
		b.Run("alerts="+kind.mode, func(b *testing.B) { pipelineDecoupled(b, kind.mode, kind.rule, regexp.MustCompile(kind.index)) })
	}
}

func pipelineDecoupled(b *testing.B, mode, rule string, index *regexp.Regexp) {
	testutil.RequireBPF(b)
	const floodN, floodRate, alertN, alertRate = 100000, 20000, 5000, 1000
	sensor := sensorBinary(b)
	flood := testutil.Binary(b, "./internal/testservers/flood")
	storm := testutil.Binary(b, "./internal/testservers/storm")
	b.StopTimer()
	for i := 0; i < b.N; i++ {
		dir := b.TempDir()
		root, outside := filepath.Join(dir, "root"), filepath.Join(dir, "outside")
		for _, d := range []string{root, outside} {
			if err := os.Mkdir(d, 0o755); err != nil {
				b.Fatal(err)
			}
		}
		ns := benchJetStream(b)
		trace := filepath.Join(dir, "trace.jsonl")
		var logs syncBuffer
		s := exec.Command(sensor, "trace", "-o", "json", "--out", trace, "--response", "enforce", "--learn", "0",
			"--nats-url", ns.ClientURL(), "--state-dir", filepath.Join(dir, "state"))
		s.Stderr = &logs
		if err := s.Start(); err != nil {
			b.Fatal(err)
		}
		for deadline := time.Now().Add(20 * time.Second); !strings.Contains(logs.String(), "tracing"); time.Sleep(50 * time.Millisecond) {
			if time.Now().After(deadline) {
				b.Fatalf("the sensor did not start:\n%s", logs.String())
			}
		}
		b.StartTimer()
		init := `{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"bench","version":"1"}}}` + "\n"
		fl := startServer(b, init, nil, flood, "-handshake", "-n", fmt.Sprint(floodN), "-rate", fmt.Sprint(floodRate))
		st := startServer(b, init, []string{"STORM_OUT=" + outside}, storm, "-mode", mode, "-n", fmt.Sprint(alertN), "-rate", fmt.Sprint(alertRate), root)
		if mode == "files" {
			time.Sleep(100 * time.Millisecond) // discovered at the handshake
			if _, err := io.WriteString(st.in, `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"tidy","arguments":{}}}`+"\n"); err != nil {
				b.Fatal(err)
			}
		}
		st.wait(b)
		stormEnd := time.Now()
		fl.wait(b)
		delivered, late, dup, last, lat := jetStreamAlerts(b, ns.ClientURL(), rule, index, alertN, 60*time.Second)
		b.StopTimer()
		_ = s.Process.Signal(syscall.SIGINT)
		if err := s.Wait(); err != nil {
			b.Logf("sensor: %v\n%s", err, logs.String())
		}
		raised, floodMsgs, drops, qdrops := readBenchTrace(b, trace, rule, fl.cmd.Process.Pid)
		b.ReportMetric(float64(floodN-floodMsgs), "flood-lost-msgs")
		b.ReportMetric(float64(drops), "ring-drops")
		b.ReportMetric(float64(qdrops), "queue-drops")
		b.ReportMetric(float64(raised), "alerts-raised")
		b.ReportMetric(float64(delivered), "alerts-on-jetstream")
		b.ReportMetric(float64(late), "alerts-out-of-order")
		b.ReportMetric(float64(dup), "alerts-duplicated")
		b.ReportMetric(float64(last.Sub(stormEnd).Milliseconds()), "drain-ms")
		if len(lat) > 0 {
			sort.Float64s(lat)
			b.ReportMetric(lat[len(lat)/2], "alert-to-jetstream-p50-ms")
			b.ReportMetric(lat[len(lat)*99/100], "alert-to-jetstream-p99-ms")
		}
	}
}

type benchServer struct {
	cmd  *exec.Cmd
	in   io.WriteCloser
	done chan struct{}
}

// startServer starts a stand-in server with pipes for stdin and stdout (a
// stdio server, discovered by its handshake) and sends the handshake.
func startServer(b *testing.B, handshake string, env []string, argv ...string) *benchServer {
	b.Helper()
	s := &benchServer{cmd: exec.Command(argv[0], argv[1:]...), done: make(chan struct{})}
	s.cmd.Env = append(os.Environ(), env...)
	var err error
	if s.in, err = s.cmd.StdinPipe(); err != nil {
		b.Fatal(err)
	}
	out, err := s.cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	s.cmd.Stderr = os.Stderr
	if err := s.cmd.Start(); err != nil {
		b.Fatal(err)
	}
	go func() { _, _ = io.Copy(io.Discard, out); close(s.done) }()
	if _, err := io.WriteString(s.in, handshake); err != nil {
		b.Fatal(err)
	}
	return s
}

func (s *benchServer) wait(b *testing.B) {
	<-s.done
	s.in.Close()
	if err := s.cmd.Wait(); err != nil {
		b.Fatalf("%s: %v", s.cmd.Path, err)
	}
}

// jetStreamAlerts waits until want alerts of rule are on JetStream (or the
// timeout) and checks their order by the index each carries (a file
// f-NNNNNNN or a message id, made in order): it returns how many are
// there, how many came after a later one, how many twice, and when the
// last one was seen.
func jetStreamAlerts(b *testing.B, url, rule string, re *regexp.Regexp, want int, timeout time.Duration) (n, late, dup int, last time.Time, lat []float64) {
	b.Helper()
	nc, err := nats.Connect(url)
	if err != nil {
		b.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var stream jetstream.Stream
	for stream == nil {
		if stream, err = js.Stream(ctx, "MCPSEC"); err != nil {
			if ctx.Err() != nil {
				return 0, 0, 0, time.Now(), nil
			}
			stream = nil
			time.Sleep(50 * time.Millisecond)
		}
	}
	seen := map[int]bool{}
	prev := -1
	seq := uint64(1)
	for len(seen) < want && ctx.Err() == nil {
		m, err := stream.GetMsg(ctx, seq)
		if err != nil {
			time.Sleep(20 * time.Millisecond)
			continue
		}
		seq++
		if m.Time.After(last) {
			last = m.Time // when JetStream stored it
		}
		if !strings.HasSuffix(m.Subject, "."+rule) {
			continue
		}
		mm := re.FindSubmatch(m.Data)
		if mm == nil {
			continue
		}
		k, _ := strconv.Atoi(string(mm[1]))
		var a struct {
			TS time.Time `json:"ts"`
		}
		if json.Unmarshal(m.Data, &a) == nil {
			// from the offending event to JetStream storing the alert
			lat = append(lat, float64(m.Time.Sub(a.TS).Microseconds())/1000)
		}
		if seen[k] {
			dup++
			continue
		}
		seen[k] = true
		if k < prev {
			late++
		}
		prev = max(prev, k)
	}
	return len(seen), late, dup, last, lat
}

// readBenchTrace counts the alerts raised, the flood server's messages,
// the kernel's drops and the pipeline's queue drops in the trace.
func readBenchTrace(b *testing.B, path, rule string, floodPID int) (alerts, floodMsgs int, drops, queueDrops float64) {
	b.Helper()
	f, err := os.Open(path)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	pid := fmt.Sprintf(`"pid":%d,`, floodPID)
	for sc.Scan() {
		ln := sc.Bytes()
		switch {
		case strings.Contains(string(ln[:min(len(ln), 40)]), `"kind":"message"`) && strings.Contains(string(ln), pid) &&
			strings.Contains(string(ln), "notifications/progress"):
			floodMsgs++
		case strings.Contains(string(ln[:min(len(ln), 40)]), `"kind":"alert"`) && strings.Contains(string(ln), `"rule":"`+rule+`"`):
			alerts++
		case strings.Contains(string(ln[:min(len(ln), 40)]), `"kind":"stats"`):
			var st struct {
				Drops  float64 `json:"drops"`
				Queues map[string]struct {
					Dropped map[string]float64 `json:"dropped"`
				} `json:"queues"`
			}
			_ = json.Unmarshal(ln, &st)
			drops = st.Drops
			queueDrops = 0
			for _, q := range st.Queues {
				for _, n := range q.Dropped {
					queueDrops += n
				}
			}
		}
	}
	return
}

func benchJetStream(b *testing.B) *server.Server {
	b.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	ns, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: port, JetStream: true, StoreDir: b.TempDir(), NoLog: true, NoSigs: true})
	if err != nil {
		b.Fatal(err)
	}
	go ns.Start()
	b.Cleanup(ns.Shutdown)
	if !ns.ReadyForConnections(10 * time.Second) {
		b.Fatal("nats-server did not start")
	}
	return ns
}

// syncBuffer is a buffer one goroutine writes and another reads.
type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
