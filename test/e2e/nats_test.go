package e2e

import (
	"context"
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// TestNATSAlert: an attack by a malicious-by-design server produces, within
// the test, its alert on JetStream on the right subject, exactly once.
func TestNATSAlert(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	ns, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: port, JetStream: true, StoreDir: t.TempDir(), NoLog: true, NoSigs: true})
	if err != nil {
		t.Fatal(err)
	}
	go ns.Start()
	defer ns.Shutdown()
	if !ns.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats-server did not start")
	}
	url := ns.ClientURL()
	home, _ := fakeHome(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	ts := traceSetup{version: "2025-11-25", dir: home, env: []string{"HOME=" + home},
		flags: append(ruleFlags(t), "--nats-url", url)}
	s, out := tracedWith(t, ctx, ts, bin(t, "evil"), filepath.Join(home, "notes"))
	callText(t, ctx, s, "read_notes", map[string]any{"note": "todo"})
	s.Close()
	host, _ := os.Hostname()
	host = regexp.MustCompile(`[^A-Za-z0-9_-]+`).ReplaceAllString(host, "_")
	subject := "mcpsec.alert." + host + ".high.credential_read_unnamed"

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
			if json.Unmarshal(m.Data, &a) != nil || a.Rule != "credential_read_unnamed" || a.Severity != "high" {
				t.Fatalf("alert on %s: %s", m.Subject, m.Data)
			}
			found++
		}
	}
	if found != 1 {
		t.Fatalf("%d alerts on %s, want exactly 1", found, subject)
	}
	if st := stats(t, readTrace(t, out)); st.obj("nats").num("published") == 0 || st.obj("nats").num("pending") != 0 {
		t.Errorf("nats stats: %v", st["nats"])
	}
}
