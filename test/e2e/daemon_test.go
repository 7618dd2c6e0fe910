package e2e

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/nats-io/nats-server/v2/server"

	"github.com/mcpsec/sensor/internal/testutil"
)

// TestDaemon: `sensor daemon` on a configuration file reaches ready and
// reports its status on the control socket; a malicious server started
// afterwards by an MCP client is discovered by its handshake, and its
// attack comes out as an alert in `sensor alerts`, in the alerts file, on
// NATS, and in the metrics; `sensor servers` lists it; SIGTERM stops it.
func TestDaemon(t *testing.T) {
	testutil.RequireBPF(t)
	l, _ := net.Listen("tcp", "127.0.0.1:0")
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
	dir := t.TempDir()
	sock := filepath.Join(dir, "ctl.sock")
	alertsFile := filepath.Join(dir, "alerts.jsonl")
	l2, _ := net.Listen("tcp", "127.0.0.1:0")
	metricsAddr := l2.Addr().String()
	l2.Close()
	cfg := fmt.Sprintf(`profile: baseline
response: monitor
state_dir: %s
rules: %s
learn: 0s
alerts_file: %s
alerts_stdout: false
metrics_addr: %s
control_socket: %s
nats:
  url: %s
`, filepath.Join(dir, "state"), repoRules(), alertsFile, metricsAddr, sock, ns.ClientURL())
	cfgPath := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	if out := sensorCmd(t, "config", "check", cfgPath); !strings.Contains(out, "valid") {
		t.Fatal(out)
	}
	// systemd's readiness protocol (the unit is Type=notify)
	notify, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: filepath.Join(dir, "notify.sock"), Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer notify.Close()
	var logs lockedBuffer
	d := exec.Command(bin(t, "sensor"), "daemon", "--config", cfgPath)
	d.Env = append(os.Environ(), "NOTIFY_SOCKET="+filepath.Join(dir, "notify.sock"))
	d.Stderr = &logs
	if err := d.Start(); err != nil {
		t.Fatal(err)
	}
	defer d.Process.Kill()
	_ = notify.SetReadDeadline(time.Now().Add(30 * time.Second))
	buf := make([]byte, 256)
	n, err := notify.Read(buf)
	if err != nil || string(buf[:n]) != "READY=1" {
		t.Fatalf("no READY=1 from the daemon: %q %v\n%s", buf[:n], err, logs.String())
	}
	if st := sensorCmd(t, "status", "--socket", sock); !strings.Contains(st, `"ready": true`) || !strings.Contains(st, `"rules": 33`) {
		t.Fatalf("status:\n%s", st)
	}

	// a client starts a malicious server on its own: the daemon finds it
	home, _ := fakeHome(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.Command(bin(t, "evil"), filepath.Join(home, "notes"))
	cmd.Env = append(os.Environ(), "HOME="+home)
	client := mcp.NewClient(&mcp.Implementation{Name: "e2e", Version: "1"}, nil)
	s, err := client.Connect(ctx, &mcp.CommandTransport{Command: cmd}, &mcp.ClientSessionOptions{ProtocolVersion: "2025-11-25"})
	if err != nil {
		t.Fatal(err)
	}
	callText(t, ctx, s, "read_notes", map[string]any{"note": "todo"})
	var alerts string
	for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		alerts = sensorCmd(t, "alerts", "--socket", sock)
		if strings.Contains(alerts, "credential_read_unnamed") {
			break
		}
	}
	if !strings.Contains(alerts, "credential_read_unnamed") {
		t.Fatalf("no alert from the daemon:\n%s\n%s", alerts, logs.String())
	}
	if servers := sensorCmd(t, "servers", "--socket", sock); !strings.Contains(servers, "evil") {
		t.Errorf("servers:\n%s", servers)
	}
	// contain and release through the daemon: the server, in its client's
	// cgroup, is moved into one of its own and frozen, then thawed
	out := sensorCmd(t, "contain", "--socket", sock, "--pid", fmt.Sprint(cmd.Process.Pid))
	m := regexp.MustCompile(`contained (\S+)`).FindStringSubmatch(out)
	if m == nil || !strings.Contains(m[1], "mcp-sensor/server-") || !cgroupFrozen(t, m[1]) {
		t.Fatalf("contain through the daemon: %s", out)
	}
	t.Cleanup(func() {
		for i := 0; i < 50 && os.Remove(m[1]) != nil; i++ {
			time.Sleep(50 * time.Millisecond)
		}
	})
	if own, _ := os.ReadFile("/proc/self/cgroup"); strings.Contains(string(own), "server-") {
		t.Fatal("the client was moved with the server")
	}
	sensorCmd(t, "release", "--socket", sock, "--cgroup", m[1])
	if cgroupFrozen(t, m[1]) {
		t.Fatal("release through the daemon did not thaw")
	}
	if got := callText(t, ctx, s, "add", map[string]any{"a": 1, "b": 2}); got != "3" {
		t.Errorf("after release: %q", got)
	}
	s.Close()
	var file []byte
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if file, _ = os.ReadFile(alertsFile); strings.Contains(string(file), `"rule":"credential_read_unnamed"`) {
			break
		}
	}
	if !strings.Contains(string(file), `"rule":"credential_read_unnamed"`) {
		t.Errorf("alerts file:\n%s", file)
	}
	resp, err := http.Get("http://" + metricsAddr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !regexp.MustCompile(`mcpsec_alerts_total\{rule="credential_read_unnamed",severity="high"\} [1-9]`).Match(body) ||
		!strings.Contains(string(body), "mcpsec_kernel_total") || !strings.Contains(string(body), "mcpsec_tracked_servers") {
		t.Errorf("metrics:\n%.2000s", body)
	}
	_ = d.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- d.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("the daemon stopped with %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the daemon did not stop")
	}
	if _, err := os.Stat(sock); err == nil {
		t.Error("the control socket outlived the daemon")
	}
}

// TestSystemdUnit: the shipped unit passes systemd's own checks.
func TestSystemdUnit(t *testing.T) {
	sa, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Fatal("systemd-analyze is needed to check the unit")
	}
	b, err := os.ReadFile(filepath.Join(testutil.RepoRoot(), "packaging", "mcp-sensor.service"))
	if err != nil {
		t.Fatal(err)
	}
	unit := filepath.Join(t.TempDir(), "mcp-sensor.service")
	if err := os.WriteFile(unit, []byte(strings.ReplaceAll(string(b), "/usr/local/bin/sensor", bin(t, "sensor"))), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(sa, "verify", unit).CombinedOutput(); err != nil {
		t.Fatalf("systemd-analyze verify: %v\n%s", err, out)
	}
	for _, want := range []string{"Type=notify", "ProtectSystem=strict", "NoNewPrivileges=yes", "CapabilityBoundingSet=", "ExecReload="} {
		if !strings.Contains(string(b), want) {
			t.Errorf("the unit lacks %s", want)
		}
	}
}
