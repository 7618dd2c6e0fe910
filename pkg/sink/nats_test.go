package sink

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
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
