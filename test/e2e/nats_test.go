package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// TestNATSAlert: an attack by a malicious-by-design server produces, within
// the test, its alert on JetStream on the right subject, exactly once.
func TestNATSAlert(t *testing.T) {
	ns := startJetStream(t)
	url := ns.ClientURL()
	home, _ := fakeHome(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	ts := traceSetup{version: "2025-11-25", dir: home, env: []string{"HOME=" + home},
		flags: append(ruleFlags(t), "--nats-url", url)}
	s, out := tracedWith(t, ctx, ts, bin(t, "evil"), filepath.Join(home, "notes"))
	callText(t, ctx, s, "read_notes", map[string]any{"note": "todo"})
	s.Close()
	found := alertsOnJetStream(t, ctx, ns.ClientURL(), "high", "credential_read_unnamed")
	if found != 1 {
		t.Fatalf("%d credential_read_unnamed alerts on JetStream, want exactly 1", found)
	}
	if st := stats(t, readTrace(t, out)); st.obj("nats").num("published") == 0 || st.obj("nats").num("pending") != 0 {
		t.Errorf("nats stats: %v", st["nats"])
	}
}

// BenchmarkAlertToAck: the detection latency from the offending syscall
// (the kernel's timestamp of the key's open) to the alert stored by
// JetStream (its stream timestamp: the ack follows it), over 30 attacks.
func BenchmarkAlertToAck(b *testing.B) {
	if b.N > 1 {
		b.Skip("one run of 30 attacks")
	}
	ns := startJetStream(b)
	home, err := os.MkdirTemp("/home", "mcpsec-bench-")
	if err != nil {
		b.Fatal(err)
	}
	defer os.RemoveAll(home)
	for _, d := range []string{".ssh", "notes"} {
		_ = os.MkdirAll(filepath.Join(home, d), 0o700)
	}
	_ = os.WriteFile(filepath.Join(home, ".ssh", "id_rsa"), []byte("-----BEGIN OPENSSH PRIVATE KEY-----\nb\n-----END OPENSSH PRIVATE KEY-----\n"), 0o600)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	ts := traceSetup{version: "2025-11-25", dir: home, env: []string{"HOME=" + home},
		flags: []string{"--rules", repoRules(), "--state-dir", b.TempDir(), "--learn", "0", "--nats-url", ns.ClientURL()}}
	s, out := tracedWith(b, ctx, ts, bin(b, "evil"), filepath.Join(home, "notes"))
	for i := 0; i < 30; i++ {
		if _, err := s.CallTool(ctx, &mcp.CallToolParams{Name: "read_notes", Arguments: map[string]any{"note": fmt.Sprint(i)}}); err != nil {
			b.Fatal(err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	b.ReportMetric(orderLate(b, s, &traceTail{path: out}), "order-late")
	nc, err := nats.Connect(ns.ClientURL())
	if err != nil {
		b.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	st, err := js.Stream(ctx, "MCPSEC")
	if err != nil {
		b.Fatal(err)
	}
	info, _ := st.Info(ctx)
	var lat []float64
	for seq := info.State.FirstSeq; info.State.Msgs > 0 && seq <= info.State.LastSeq; seq++ {
		m, err := st.GetMsg(ctx, seq)
		if err != nil {
			continue
		}
		var a struct {
			Rule    string
			Effects []struct{ Ts time.Time }
		}
		if json.Unmarshal(m.Data, &a) != nil || a.Rule != "credential_read_unnamed" || len(a.Effects) == 0 {
			continue
		}
		lat = append(lat, float64(m.Time.Sub(a.Effects[0].Ts).Microseconds())/1000)
	}
	if len(lat) < 30 {
		b.Fatalf("%d alerts on NATS, want 30", len(lat))
	}
	sort.Float64s(lat)
	b.ReportMetric(lat[len(lat)/2], "p50-ms")
	b.ReportMetric(lat[len(lat)*99/100], "p99-ms")
}

// startJetStream runs a NATS server with JetStream on a free loopback
// port for the test's lifetime.
func startJetStream(t testing.TB) *server.Server {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	return startJetStreamAt(t, t.TempDir(), port)
}

// startJetStreamAt runs a NATS server with JetStream storing in dir, on
// port, until it is shut down or the test ends.
func startJetStreamAt(t testing.TB, dir string, port int) *server.Server {
	t.Helper()
	ns, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: port, JetStream: true, StoreDir: dir, NoLog: true, NoSigs: true})
	if err != nil {
		t.Fatal(err)
	}
	go ns.Start()
	t.Cleanup(ns.Shutdown)
	if !ns.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats-server did not start")
	}
	return ns
}

// alertsOnJetStream waits up to 15 s for alerts of rule on their subject,
// mcpsec.alert.<host>.<severity>.<rule>, and counts them, checking each.
func alertsOnJetStream(t *testing.T, ctx context.Context, url, severity, rule string) int {
	t.Helper()
	host, _ := os.Hostname()
	host = regexp.MustCompile(`[^A-Za-z0-9_-]+`).ReplaceAllString(host, "_")
	subject := "mcpsec.alert." + host + "." + severity + "." + rule
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	var found int
	for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline) && found == 0; time.Sleep(100 * time.Millisecond) {
		st, err := js.Stream(ctx, "MCPSEC")
		if err != nil {
			continue
		}
		info, _ := st.Info(ctx)
		found = 0
		for seq := info.State.FirstSeq; info.State.Msgs > 0 && seq <= info.State.LastSeq; seq++ {
			m, err := st.GetMsg(ctx, seq)
			if err != nil || m.Subject != subject {
				continue
			}
			var a struct{ Rule, Severity string }
			if json.Unmarshal(m.Data, &a) != nil || a.Rule != rule || a.Severity != severity {
				t.Fatalf("alert on %s: %s", m.Subject, m.Data)
			}
			found++
		}
	}
	return found
}
