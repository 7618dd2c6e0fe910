// Package bench measures what the sensor costs, side by side in one run
// (`make bench` runs these and benchstat compares the columns):
//
//   - Untracked*: an untracked process's syscalls and a real workload with
//     nothing attached, with empty programs on the same hooks (the floor),
//     and with the sensor (hooks=nothing|empty|sensor);
//   - ToolCall: a Go SDK server's tools/call round trip, untraced and traced
//     through `sensor trace`, with p50 and p99;
//   - Capture: JSON-RPC messages per second decoded from one server, and
//     the drops, at 20,000 msgs/s and flat out.
//
// They need root; with MCPSEC_REQUIRE_BPF=1 they fail instead of skipping.
package bench

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
	"golang.org/x/sys/unix"

	"github.com/mcpsec/sensor/internal/testutil"
	"github.com/mcpsec/sensor/pkg/contain"
	"github.com/mcpsec/sensor/pkg/decode"
	"github.com/mcpsec/sensor/pkg/loader"
)

func TestMain(m *testing.M) { testutil.Main(m) }

type hooks struct {
	name  string
	setup func(b *testing.B) func()
}

var variants = []hooks{
	{"nothing", func(b *testing.B) func() { return func() {} }},
	{"empty", func(b *testing.B) func() {
		e, err := loader.AttachEmpty()
		if err != nil {
			b.Fatal(err)
		}
		return func() { e.Close() }
	}},
	{"sensor", func(b *testing.B) func() {
		cfg := loader.DefaultConfig()
		cfg.SelfPID = uint32(os.Getpid())
		o, err := loader.Load(cfg)
		if err != nil {
			b.Fatal(err)
		}
		rd, err := o.NewReader()
		if err != nil {
			b.Fatal(err)
		}
		rd.RunFunc(func([]byte) {})
		if err := o.Attach(); err != nil {
			b.Fatal(err)
		}
		return func() { rd.Close(); o.Close() }
	}},
}

// eachVariant runs fn under nothing, empty programs and the sensor.
func eachVariant(b *testing.B, fn func(b *testing.B)) {
	testutil.RequireBPF(b)
	for _, v := range variants {
		b.Run("hooks="+v.name, func(b *testing.B) {
			done := v.setup(b)
			defer done()
			b.ResetTimer()
			fn(b)
		})
	}
}

// BenchmarkUntrackedRead: read(fd, buf, 1) on /dev/zero, the floor's syscall.
func BenchmarkUntrackedRead(b *testing.B) {
	eachVariant(b, func(b *testing.B) {
		fd, err := unix.Open("/dev/zero", unix.O_RDONLY, 0)
		if err != nil {
			b.Fatal(err)
		}
		defer unix.Close(fd)
		buf := make([]byte, 1)
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			_, _ = unix.Read(fd, buf)
		}
	})
}

// BenchmarkUntrackedGetppid: the cheapest syscall, so hook cost dominates.
func BenchmarkUntrackedGetppid(b *testing.B) {
	eachVariant(b, func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			unix.Getppid()
		}
	})
}

// sourceTar archives a slice of the Go source tree (a few thousand files).
func sourceTar(b *testing.B) []byte {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	root := filepath.Join(runtimeGOROOT(), "src", "net")
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		h, _ := tar.FileInfoHeader(info, "")
		h.Name, _ = filepath.Rel(root, p)
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		defer f.Close()
		_, err = io.Copy(tw, f)
		return err
	})
	if err != nil {
		b.Fatal(err)
	}
	tw.Close()
	return buf.Bytes()
}

func runtimeGOROOT() string {
	out, err := exec.Command("go", "env", "GOROOT").Output()
	if err != nil {
		return "/usr/local/go"
	}
	return strings.TrimSpace(string(out))
}

// BenchmarkUntrackedUntar: a real workload of an untracked process, `tar -x`
// of a source tree (fork, exec, thousands of opens and writes), then rm.
// Disk and page-cache drift would swamp a few percent, so each iteration
// runs the workload once under each variant, in rotating order, attaching
// and detaching outside the timed part; it reports each variant's median
// (ns/op covers three rotations).
func BenchmarkUntrackedUntar(b *testing.B) {
	testutil.RequireBPF(b)
	archive := sourceTar(b)
	tarFile := filepath.Join(b.TempDir(), "src.tar")
	if err := os.WriteFile(tarFile, archive, 0o644); err != nil {
		b.Fatal(err)
	}
	work := func() time.Duration {
		dir, _ := os.MkdirTemp("", "untar-")
		t0 := time.Now()
		if out, err := exec.Command("tar", "-xf", tarFile, "-C", dir).CombinedOutput(); err != nil {
			b.Fatalf("tar: %v %s", err, out)
		}
		if out, err := exec.Command("rm", "-rf", dir).CombinedOutput(); err != nil {
			b.Fatalf("rm: %v %s", err, out)
		}
		return time.Since(t0)
	}
	work() // warm the page cache
	times := make([][]time.Duration, len(variants))
	b.ResetTimer()
	// three rotations per iteration: go test settles on few iterations of
	// a workload this long, and a median needs samples
	for i := 0; i < 3*b.N; i++ {
		for j := range variants {
			v := (i + j) % len(variants)
			b.StopTimer()
			done := variants[v].setup(b)
			b.StartTimer()
			times[v] = append(times[v], work())
			b.StopTimer()
			done()
			b.StartTimer()
		}
	}
	b.StopTimer()
	med := func(d []time.Duration) float64 {
		sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
		return float64(d[len(d)/2].Nanoseconds())
	}
	for v := range variants {
		b.ReportMetric(med(times[v]), variants[v].name+"-ns")
	}
	b.ReportMetric(med(times[2])/med(times[0]), "sensor/nothing")
	b.ReportMetric(med(times[2])/med(times[1]), "sensor/empty")
}

// BenchmarkToolCall: a Go SDK server's tools/call round trip, untraced and
// traced by `sensor trace` (trace written as JSON to /dev/null). Both
// servers run at once and calls alternate between them, so machine noise
// falls on both alike; it reports each one's p50 and p99 and their ratios.
func BenchmarkToolCall(b *testing.B) {
	testutil.RequireBPF(b)
	toolbox := testutil.Binary(b, "./internal/testservers/toolbox")
	sensor := sensorBinary(b)
	ctx := context.Background()
	connect := func(argv ...string) *mcp.ClientSession {
		cmd := exec.Command(argv[0], argv[1:]...)
		client := mcp.NewClient(&mcp.Implementation{Name: "bench", Version: "1"}, nil)
		sess, err := client.Connect(ctx, &mcp.CommandTransport{Command: cmd}, nil)
		if err != nil {
			b.Fatal(err)
		}
		return sess
	}
	plain := connect(toolbox)
	defer plain.Close()
	traced := connect(sensor, "trace", "-o", "json", "--out", "/dev/null", "--", toolbox)
	defer traced.Close()
	params := &mcp.CallToolParams{Name: "echo", Arguments: map[string]any{"text": "hello, world"}}
	call := func(s *mcp.ClientSession) time.Duration {
		t0 := time.Now()
		if _, err := s.CallTool(ctx, params); err != nil {
			b.Fatal(err)
		}
		return time.Since(t0)
	}
	for i := 0; i < 100; i++ { // warm up
		call(plain)
		call(traced)
	}
	lp := make([]time.Duration, 0, b.N)
	lt := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if i%2 == 0 {
			lp = append(lp, call(plain))
			lt = append(lt, call(traced))
		} else {
			lt = append(lt, call(traced))
			lp = append(lp, call(plain))
		}
	}
	b.StopTimer()
	pct := func(l []time.Duration, p int) float64 {
		sort.Slice(l, func(i, j int) bool { return l[i] < l[j] })
		return float64(l[min(len(l)*p/100, len(l)-1)].Nanoseconds())
	}
	p50u, p99u, p50t, p99t := pct(lp, 50), pct(lp, 99), pct(lt, 50), pct(lt, 99)
	b.ReportMetric(p50u, "untraced-p50-ns")
	b.ReportMetric(p99u, "untraced-p99-ns")
	b.ReportMetric(p50t, "traced-p50-ns")
	b.ReportMetric(p99t, "traced-p99-ns")
	b.ReportMetric(p50t/p50u, "p50-ratio")
	b.ReportMetric(p99t/p99u, "p99-ratio")
}

// BenchmarkCapture: one server writes b.N JSON-RPC messages (about 200
// bytes, one write each) while the sensor captures and decodes them in this
// process. Reports decoded messages per second, and every drop.
func BenchmarkCapture(b *testing.B) {
	testutil.RequireBPF(b)
	flood := testutil.Binary(b, "./internal/testservers/flood")
	for _, rate := range []int{20000, 0} {
		name := fmt.Sprintf("rate=%d", rate)
		if rate == 0 {
			name = "rate=max"
		}
		b.Run(name, func(b *testing.B) {
			cfg := loader.DefaultConfig()
			cfg.SelfPID = uint32(os.Getpid())
			o, err := loader.Load(cfg)
			if err != nil {
				b.Fatal(err)
			}
			defer o.Close()
			rd, err := o.NewReader()
			if err != nil {
				b.Fatal(err)
			}
			dec := decode.NewDecoder(decode.DefaultOptions())
			rd.RunFunc(func(rec []byte) { _ = dec.Record(rec, func(decode.Event) {}) })
			cg, err := contain.Create(fmt.Sprintf("bench-%d-%d", os.Getpid(), time.Now().UnixNano()))
			if err != nil {
				b.Fatal(err)
			}
			if err := o.TrackCgroup(cg.ID); err != nil {
				b.Fatal(err)
			}
			if err := o.Attach(); err != nil {
				b.Fatal(err)
			}
			cmd := exec.Command(flood, "-n", fmt.Sprint(b.N), "-rate", fmt.Sprint(rate))
			cmd.SysProcAttr = &syscall.SysProcAttr{UseCgroupFD: true, CgroupFD: cg.FD()}
			out, _ := cmd.StdoutPipe()
			b.ResetTimer()
			start := time.Now()
			if err := cmd.Start(); err != nil {
				b.Fatal(err)
			}
			_, _ = io.Copy(io.Discard, out)
			if err := cmd.Wait(); err != nil {
				b.Fatal(err)
			}
			rd.Drain(20*time.Millisecond, 30*time.Second)
			elapsed := time.Since(start)
			b.StopTimer()
			rd.Close()
			_ = cg.Remove(time.Second)
			st := dec.Stats()
			k, _ := o.Counters()
			drops := k["payload_ring_full"] + k["effect_ring_full"] + k["recursion_misses"]
			b.ReportMetric(float64(st.MessagesOut)/elapsed.Seconds(), "msgs/s")
			b.ReportMetric(float64(b.N-int(st.MessagesOut)), "lost-msgs")
			b.ReportMetric(float64(drops), "drops")
		})
	}
}
