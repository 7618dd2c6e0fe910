package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/mcpsec/sensor/internal/testutil"
)

// TestDaemonKilledAndNATSDown: the real sensor across both failures. A
// daemon follows a malicious server and publishes its alerts; after 10
// calls NATS stops and 10 more calls' alerts wait in the spool; the daemon
// is killed with SIGKILL while they wait; NATS comes back; a new daemon on
// the same state directory takes the server up again by its pid, and 10
// more calls follow. Every alert is on JetStream exactly once, in the
// order of the calls. (pkg/sink's TestNATSOutage and
// TestNATSKilledDuringBurst stop the server and kill the publisher in the
// very middle of a burst.)
func TestDaemonKilledAndNATSDown(t *testing.T) {
	testutil.RequireBPF(t)
	store := t.TempDir()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port // the same port and store across the outage
	l.Close()
	ns := startJetStreamAt(t, store, port)
	dir := t.TempDir()
	sock := filepath.Join(dir, "ctl.sock")
	config := func(extra string) string {
		p := filepath.Join(dir, fmt.Sprintf("config-%d.yaml", time.Now().UnixNano()))
		cfg := fmt.Sprintf("profile: baseline\nresponse: monitor\nstate_dir: %s\nrules: %s\nlearn: 0s\nalerts_stdout: false\nalerts_file: \"\"\nmetrics_addr: \"\"\ncontrol_socket: %s\nnats:\n  url: nats://127.0.0.1:%d\n%s",
			filepath.Join(dir, "state"), repoRules(), sock, port, extra)
		if err := os.WriteFile(p, []byte(cfg), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	var logs lockedBuffer
	daemon := func(cfg string) *exec.Cmd {
		notifyPath := filepath.Join(dir, fmt.Sprintf("notify-%d.sock", time.Now().UnixNano()))
		notify := notifySocket(t, notifyPath)
		d := exec.Command(bin(t, "sensor"), "daemon", "--config", cfg)
		// the configuration's state directory, not the test run's
		d.Env = append(slices.DeleteFunc(os.Environ(), func(e string) bool { return strings.HasPrefix(e, "MCPSEC_STATE_DIR=") }),
			"NOTIFY_SOCKET="+notifyPath)
		d.Stderr = &logs
		if err := d.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = d.Process.Kill(); _ = d.Wait() })
		waitReady(t, notify, d.Process.Pid, &logs)
		return d
	}
	d1 := daemon(config(""))

	home, _ := fakeHome(t)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	srv := exec.Command(bin(t, "evil"), filepath.Join(home, "notes"))
	srv.Env = append(os.Environ(), "HOME="+home)
	client := mcp.NewClient(&mcp.Implementation{Name: "e2e", Version: "1"}, nil)
	var s *mcp.ClientSession
	s, err = client.Connect(ctx, &mcp.CommandTransport{Command: srv}, &mcp.ClientSessionOptions{ProtocolVersion: "2025-11-25"})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var called []string // JSON-RPC ids of the calls a sensor watched
	burst := func(n int) {
		for i := 0; i < n; i++ {
			callText(t, ctx, s, "read_notes", map[string]any{"note": fmt.Sprint(len(called))})
			called = append(called, fmt.Sprint(len(called)+2)) // the SDK numbers calls after initialize (1)
			time.Sleep(20 * time.Millisecond)
		}
	}
	waitStatus := func(what string, ok func(st string) bool) {
		for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
			if ok(sensorCmd(t, "status", "-o", "json", "--socket", sock)) {
				return
			}
		}
		t.Fatalf("%s:\n%s\n%s", what, sensorCmd(t, "status", "-o", "json", "--socket", sock), logs.String())
	}
	natsField := func(st, k string) float64 {
		var v struct{ Stats struct{ NATS map[string]any } }
		_ = json.Unmarshal([]byte(st), &v)
		f, _ := v.Stats.NATS[k].(float64)
		return f
	}

	burst(10)
	waitStatus("the first alerts were not published", func(st string) bool { return natsField(st, "published") >= 10 })
	ns.Shutdown()
	ns.WaitForShutdown()
	burst(10) // NATS is down: these wait in the spool
	waitStatus("the alerts did not wait in the spool", func(st string) bool { return natsField(st, "pending") >= 10 })
	_ = d1.Process.Kill() // SIGKILL: no flush, no goodbye
	_ = d1.Wait()

	startJetStreamAt(t, store, port)
	_ = os.Remove(sock) // what a killed daemon leaves
	daemon(config(fmt.Sprintf("servers:\n  - pid: %d\n", srv.Process.Pid)))
	burst(10)

	nc, err := nats.Connect(fmt.Sprintf("nats://127.0.0.1:%d", port))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	var ids []string
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		ids = ids[:0]
		st, err := js.Stream(ctx, "MCPSEC")
		if err != nil {
			continue
		}
		info, _ := st.Info(ctx)
		for seq := info.State.FirstSeq; info.State.Msgs > 0 && seq <= info.State.LastSeq; seq++ {
			m, err := st.GetMsg(ctx, seq)
			if err != nil || !strings.HasSuffix(m.Subject, ".credential_read_unnamed") {
				continue
			}
			var a struct{ Call struct{ ID json.RawMessage } }
			_ = json.Unmarshal(m.Data, &a)
			ids = append(ids, string(a.Call.ID))
		}
		if len(ids) >= len(called) {
			break
		}
	}
	if strings.Join(ids, ",") != strings.Join(called, ",") {
		t.Fatalf("alerts on JetStream by call id:\n got %v\nwant %v (each once, in order)\n%s", ids, called, logs.String())
	}
}
