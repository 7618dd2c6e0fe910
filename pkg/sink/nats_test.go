package sink

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// natsServer runs a real NATS server with JetStream, storing in dir.
func natsServer(t *testing.T, dir string, port int) *server.Server {
	t.Helper()
	ns, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: port, JetStream: true, StoreDir: dir, NoLog: true, NoSigs: true})
	if err != nil {
		t.Fatal(err)
	}
	go ns.Start()
	if !ns.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats-server did not start")
	}
	return ns
}

func freePort(t *testing.T) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// streamed returns the n field of every message in the stream, in order.
func streamed(t *testing.T, url string) []int {
	t.Helper()
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, err := js.Stream(ctx, "MCPSEC")
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var out []int
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq && info.State.Msgs > 0; seq++ {
		m, err := st.GetMsg(ctx, seq)
		if err != nil {
			t.Fatal(err)
		}
		var v struct{ N int }
		_ = json.Unmarshal(m.Data, &v)
		if m.Header.Get("Mcpsec-Schema") != SchemaVersion || m.Subject != "mcpsec.alert.h1.high.r" {
			t.Fatalf("message %d: subject %s, headers %v", seq, m.Subject, m.Header)
		}
		out = append(out, v.N)
	}
	return out
}

func exactlyOnceInOrder(t *testing.T, got []int, n int) {
	t.Helper()
	if len(got) != n {
		t.Fatalf("%d messages in the stream, want %d", len(got), n)
	}
	for i, v := range got {
		if v != i {
			t.Fatalf("message %d is alert %d: out of order or duplicated (%v)", i, v, got)
		}
	}
}

// The server goes away in the middle of a burst and comes back: every
// alert arrives exactly once, in order.
func TestNATSOutage(t *testing.T) {
	dir, port := t.TempDir(), freePort(t)
	url := fmt.Sprintf("nats://127.0.0.1:%d", port)
	ns := natsServer(t, dir, port)
	s, err := NewNATS(NATSConfig{URL: url, Host: "h1", Spool: filepath.Join(t.TempDir(), "spool.db")})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for i := 0; i < 200; i++ {
		if i == 80 {
			ns.Shutdown()
			ns.WaitForShutdown()
		}
		if err := s.Publish("high", "r", map[string]int{"n": i}); err != nil {
			t.Fatal(err)
		}
	}
	if s.Pending() == 0 {
		t.Fatal("nothing waited in the spool during the outage (the test proves nothing)")
	}
	ns = natsServer(t, dir, port)
	defer ns.Shutdown()
	if !s.Flush(30 * time.Second) {
		t.Fatalf("spool not drained: %+v", s.Stats())
	}
	exactlyOnceInOrder(t, streamed(t, url), 200)
	if st := s.Stats(); st.Published < 200 {
		t.Errorf("stats %+v", st)
	}
}

// The sensor stops in the middle of a burst (what is spooled stays) and a
// new one takes over the spool: every alert arrives exactly once, in order.
func TestNATSRestart(t *testing.T) {
	dir, port := t.TempDir(), freePort(t)
	url := fmt.Sprintf("nats://127.0.0.1:%d", port)
	ns := natsServer(t, dir, port)
	defer ns.Shutdown()
	spool := filepath.Join(t.TempDir(), "spool.db")
	s, err := NewNATS(NATSConfig{URL: url, Host: "h1", Spool: spool})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 150; i++ {
		if err := s.Publish("high", "r", map[string]int{"n": i}); err != nil {
			t.Fatal(err)
		}
	}
	left := s.Pending()
	s.Close() // at once: part of the burst is still spooled
	t.Logf("%d alerts left in the spool at the restart", left)
	s2, err := NewNATS(NATSConfig{URL: url, Host: "h1", Spool: spool})
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	for i := 150; i < 200; i++ {
		if err := s2.Publish("high", "r", map[string]int{"n": i}); err != nil {
			t.Fatal(err)
		}
	}
	if !s2.Flush(30 * time.Second) {
		t.Fatalf("spool not drained: %+v", s2.Stats())
	}
	exactlyOnceInOrder(t, streamed(t, url), 200)
}

// BenchmarkNATSPublish: alerts per second through the spool to JetStream,
// each acknowledged before the next (the order guarantee).
func BenchmarkNATSPublish(b *testing.B) {
	dir := b.TempDir()
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	ns, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: port, JetStream: true, StoreDir: dir, NoLog: true, NoSigs: true})
	if err != nil {
		b.Fatal(err)
	}
	go ns.Start()
	defer ns.Shutdown()
	ns.ReadyForConnections(10 * time.Second)
	s, err := NewNATS(NATSConfig{URL: ns.ClientURL(), Host: "h1", Spool: filepath.Join(b.TempDir(), "spool.db")})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	alert := map[string]any{"kind": "alert", "rule": "credential_read_unnamed", "severity": "high",
		"output": "evil read /root/.ssh/id_rsa during read_notes", "call": map[string]any{"session": "stdio:1", "id": 7, "tool": "read_notes"}}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := s.Publish("high", "r", alert); err != nil {
			b.Fatal(err)
		}
	}
	if !s.Flush(time.Minute) {
		b.Fatal("not drained")
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "alerts/s")
}

// TestNATSKilledDuringBurst: a sensor is killed (SIGKILL) in the middle of
// a burst; a new one takes over its spool. Every alert the first one
// spooled arrives exactly once, in order.
func TestNATSKilledDuringBurst(t *testing.T) {
	if os.Getenv("MCPSEC_SINK_HELPER") != "" {
		// the helper: publish a burst, saying which alerts are spooled
		s, err := NewNATS(NATSConfig{URL: os.Getenv("MCPSEC_SINK_URL"), Host: "h1", Spool: os.Getenv("MCPSEC_SINK_SPOOL")})
		if err != nil {
			fmt.Println("error", err)
			os.Exit(1)
		}
		for i := 0; ; i++ {
			if err := s.Publish("high", "r", map[string]int{"n": i}); err != nil {
				os.Exit(1)
			}
			fmt.Println(i)

		}
	}
	dir, port := t.TempDir(), freePort(t)
	url := fmt.Sprintf("nats://127.0.0.1:%d", port)
	ns := natsServer(t, dir, port)
	defer ns.Shutdown()
	spool := filepath.Join(t.TempDir(), "spool.db")
	h := exec.Command(os.Args[0], "-test.run", "^TestNATSKilledDuringBurst$")
	h.Env = append(os.Environ(), "MCPSEC_SINK_HELPER=1", "MCPSEC_SINK_URL="+url, "MCPSEC_SINK_SPOOL="+spool)
	out, _ := h.StdoutPipe()
	if err := h.Start(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(out)
	spooled := -1
	for sc.Scan() && spooled < 300 {
		fmt.Sscan(sc.Text(), &spooled)
	}
	_ = h.Process.Kill() // SIGKILL, mid-burst
	_ = h.Wait()
	s, err := NewNATS(NATSConfig{URL: url, Host: "h1", Spool: spool})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	left := s.Pending()
	if !s.Flush(30 * time.Second) {
		t.Fatalf("spool not drained: %+v", s.Stats())
	}
	got := streamed(t, url)
	// at least what the helper said was spooled; perhaps one more it
	// spooled but had no time to say; each once, in order
	if len(got) < spooled+1 || len(got) > spooled+2 {
		t.Fatalf("%d alerts in the stream; the helper spooled %d", len(got), spooled+1)
	}
	exactlyOnceInOrder(t, got, len(got))
	t.Logf("killed after %d alerts, %d of them still in the spool; %d arrived", spooled+1, left, len(got))
}

// Events, when asked for, go to their own subjects.
func TestNATSEvents(t *testing.T) {
	dir, port := t.TempDir(), freePort(t)
	url := fmt.Sprintf("nats://127.0.0.1:%d", port)
	ns := natsServer(t, dir, port)
	defer ns.Shutdown()
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	sub, err := nc.SubscribeSync("mcpsec.event.h1.>")
	if err != nil {
		t.Fatal(err)
	}
	nc.Flush()
	s, err := NewNATS(NATSConfig{URL: url, Host: "h1", Spool: filepath.Join(t.TempDir(), "spool.db")})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	s.Event("effect", map[string]string{"type": "open"})
	m, err := sub.NextMsg(5 * time.Second)
	if err != nil || m.Subject != "mcpsec.event.h1.effect" || string(m.Data) != `{"type":"open"}` {
		t.Fatalf("%v %v", m, err)
	}
	if st := s.Stats(); st.Events != 1 {
		t.Fatalf("%+v", st)
	}
}

// A server that comes back with an empty store (the stream gone) gets the
// stream made again, and the alerts that waited go to it.
func TestNATSFreshServer(t *testing.T) {
	port := freePort(t)
	url := fmt.Sprintf("nats://127.0.0.1:%d", port)
	ns := natsServer(t, t.TempDir(), port)
	s, err := NewNATS(NATSConfig{URL: url, Host: "h1", Spool: filepath.Join(t.TempDir(), "spool.db")})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Publish("high", "r", map[string]int{"n": 0}); err != nil || !s.Flush(10*time.Second) {
		t.Fatalf("first alert: %v %+v", err, s.Stats())
	}
	ns.Shutdown()
	ns.WaitForShutdown()
	for i := 0; i < 3; i++ {
		if err := s.Publish("high", "r", map[string]int{"n": i}); err != nil {
			t.Fatal(err)
		}
	}
	ns2 := natsServer(t, t.TempDir(), port) // a new store
	defer ns2.Shutdown()
	if !s.Flush(20 * time.Second) {
		t.Fatalf("not sent to the fresh server: %+v", s.Stats())
	}
	exactlyOnceInOrder(t, streamed(t, url), 3)
}
