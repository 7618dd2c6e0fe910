package e2e

import (
	"slices"

	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/modelcontextprotocol/go-sdk/mcp"
	"golang.org/x/sys/unix"

	"github.com/mcpsec/sensor/internal/caps"
	"github.com/mcpsec/sensor/internal/testutil"
	"github.com/mcpsec/sensor/pkg/correlate"
	"github.com/mcpsec/sensor/rules"
)

// TestDaemon: `sensor daemon` on a configuration file reaches ready and
// reports its status on the control socket; a malicious server started
// afterwards by an MCP client is discovered by its handshake, and its
// attack comes out as an alert in `sensor alerts`, in the alerts file, on
// NATS, and in the metrics; `sensor servers` lists it; SIGTERM stops it.
func TestDaemon(t *testing.T) {
	testutil.RequireBPF(t)
	ns := startJetStream(t)
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
  ocsf: true
`, filepath.Join(dir, "state"), repoRules(), alertsFile, metricsAddr, sock, ns.ClientURL())
	cfgPath := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	if out := sensorCmd(t, "config", "check", cfgPath); !strings.Contains(out, "valid") {
		t.Fatal(out)
	}
	// systemd's readiness protocol (the unit is Type=notify)
	notify := notifySocket(t, filepath.Join(dir, "notify.sock"))
	var logs lockedBuffer
	d := exec.Command(bin(t, "sensor"), "daemon", "--config", cfgPath)
	d.Env = append(os.Environ(), "NOTIFY_SOCKET="+filepath.Join(dir, "notify.sock"))
	d.Stderr = &logs
	if err := d.Start(); err != nil {
		t.Fatal(err)
	}
	defer d.Process.Kill()
	waitReady(t, notify, d.Process.Pid, &logs)
	if st := sensorCmd(t, "status", "-o", "json", "--socket", sock); !strings.Contains(st, `"ready": true`) || !strings.Contains(st, shippedRules(t)) {
		t.Fatalf("status:\n%s", st)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	// the alerts as OCSF findings, on their own subject
	nc, err := nats.Connect(ns.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	findings, err := nc.SubscribeSync("mcpsec.ocsf.>")
	if err != nil {
		t.Fatal(err)
	}
	s, pid := attackAndAlert(t, ctx, sock, &logs)
	checkOCSF(t, findings)
	if servers := sensorCmd(t, "servers", "--socket", sock); !strings.Contains(servers, "evil") {
		t.Errorf("servers:\n%s", servers)
	}
	containRelease(t, ctx, sock, s, pid)
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
	if n := alertsOnJetStream(t, ctx, ns.ClientURL(), "high", "credential_read_unnamed"); n != 1 {
		t.Errorf("%d credential_read_unnamed alerts on JetStream, want 1", n)
	}
	stopDaemon(t, d, sock)
}

// stopDaemon sends SIGTERM and expects a clean exit that removes the
// control socket.
func stopDaemon(t *testing.T, d *exec.Cmd, sock string) {
	t.Helper()
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

// notifySocket is the service manager's end of sd_notify: a datagram
// socket that is told each sender's credentials.
func notifySocket(t *testing.T, path string) *net.UnixConn {
	t.Helper()
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	rc, _ := c.SyscallConn()
	var serr error
	if err := rc.Control(func(fd uintptr) { serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_PASSCRED, 1) }); err != nil || serr != nil {
		t.Fatal(err, serr)
	}
	return c
}

// waitReady waits for READY=1 and checks that it came from the main
// process, as NotifyAccess=main demands.
func waitReady(t *testing.T, c *net.UnixConn, mainPID int, logs *lockedBuffer) {
	t.Helper()
	buf, oob := make([]byte, 256), make([]byte, unix.CmsgSpace(unix.SizeofUcred))
	var n, oobn int
	var err error
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); {
		_ = c.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
		if n, oobn, _, _, err = c.ReadMsgUnix(buf, oob); err == nil {
			break
		}
		// a main process that exited (a zombie until waited for) will not notify
		if stat, _ := os.ReadFile(fmt.Sprintf("/proc/%d/stat", mainPID)); len(stat) == 0 || strings.Contains(string(stat), ") Z ") {
			t.Fatalf("the daemon exited before READY=1:\n%s", logs.String())
		}
	}
	if err != nil || string(buf[:n]) != "READY=1" {
		t.Fatalf("no READY=1 from the daemon: %q %v\n%s", buf[:n], err, logs.String())
	}
	msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
	if err != nil || len(msgs) != 1 {
		t.Fatalf("READY=1 without credentials: %v", err)
	}
	cred, err := unix.ParseUnixCredentials(&msgs[0])
	if err != nil || int(cred.Pid) != mainPID {
		t.Fatalf("READY=1 from pid %d, not the main process %d (%v)", cred.Pid, mainPID, err)
	}
}

// attackAndAlert has an MCP client start the malicious server on its own
// (no trace, no selector) and waits for the daemon on sock to report its
// credential read. It returns the client's session and the server's pid.
func attackAndAlert(t *testing.T, ctx context.Context, sock string, logs *lockedBuffer) (*mcp.ClientSession, int) {
	t.Helper()
	home, _ := fakeHome(t)
	cmd := exec.Command(bin(t, "evil"), filepath.Join(home, "notes"))
	cmd.Env = append(os.Environ(), "HOME="+home)
	client := mcp.NewClient(&mcp.Implementation{Name: "e2e", Version: "1"}, nil)
	s, err := client.Connect(ctx, &mcp.CommandTransport{Command: cmd}, &mcp.ClientSessionOptions{ProtocolVersion: "2025-11-25"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	callText(t, ctx, s, "read_notes", map[string]any{"note": "todo"})
	var alerts string
	for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if alerts = sensorCmd(t, "alerts", "--socket", sock); strings.Contains(alerts, "credential_read_unnamed") {
			return s, cmd.Process.Pid
		}
	}
	t.Fatalf("no alert from the daemon:\n%s\n%s", alerts, logs.String())
	return nil, 0
}

// containRelease contains the server through the daemon's socket (it
// shares its client's cgroup: it is moved into one of its own and
// frozen), then releases it and calls it again.
func containRelease(t *testing.T, ctx context.Context, sock string, s *mcp.ClientSession, pid int) {
	t.Helper()
	out := sensorCmd(t, "contain", "--socket", sock, "--pid", fmt.Sprint(pid))
	m := regexp.MustCompile(`contained (\S+)`).FindStringSubmatch(out)
	// the server's own cgroup is named by what it runs
	if m == nil || !strings.Contains(m[1], fmt.Sprintf("mcp-sensor/evil-%d", pid)) || !cgroupFrozen(t, m[1]) {
		t.Fatalf("contain through the daemon: %s", out)
	}
	t.Cleanup(func() {
		s.Close() // the server leaves its cgroup when it exits
		for i := 0; i < 100 && os.Remove(m[1]) != nil; i++ {
			time.Sleep(50 * time.Millisecond)
		}
		if _, err := os.Stat(m[1]); err == nil {
			t.Errorf("%s outlived its server", m[1])
		}
	})
	if own, _ := os.ReadFile("/proc/self/cgroup"); strings.Contains(string(own), "mcp-sensor/") {
		t.Fatal("the client was moved with the server")
	}
	sensorCmd(t, "release", "--socket", sock, "--cgroup", m[1])
	if cgroupFrozen(t, m[1]) {
		t.Fatal("release through the daemon did not thaw")
	}
	if got := callText(t, ctx, s, "add", map[string]any{"a": 1, "b": 2}); got != "3" {
		t.Errorf("after release: %q", got)
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

// TestDaemonUnderUnit: `sensor daemon` started under the shipped unit's
// settings. systemd is installed here but is not PID 1, so systemd-run
// cannot start it; internal/unitrun builds what the unit's [Service]
// section asks for (mount namespace with ProtectSystem=strict and the
// read-write paths, PrivateTmp, PrivateDevices, ProtectHome, the
// capability bounding set, no_new_privs, the seccomp filters of the
// Restrict*/Protect* settings, UMask, systemd's environment) and refuses a
// directive it does not know. The config check of ExecStartPre passes;
// the daemon sends READY=1 from its main pid, reports its status,
// discovers a server and alerts on it (alerts file, JetStream), contains
// and releases it, reloads on SIGHUP, logs JSON, and stops on SIGTERM;
// the sandbox is checked from outside through /proc.
func TestDaemonUnderUnit(t *testing.T) {
	testutil.RequireBPF(t)
	ns := startJetStream(t)
	dir := t.TempDir()
	for _, d := range []string{"state", "log", "etc"} {
		if err := os.Mkdir(filepath.Join(dir, d), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	// the directories the unit names are redirected into the test's
	// (unitrun creates their mount points, as systemd would)
	for _, d := range []string{"/var/lib/mcp-sensor", "/var/log/mcp-sensor", "/etc/mcp-sensor"} {
		if _, err := os.Stat(d); err != nil {
			t.Cleanup(func() { os.Remove(d) })
		}
	}
	// PrivateTmp hides /tmp: the binary and the sockets live elsewhere
	exeDir, err := os.MkdirTemp("/var/lib", "mcpsec-e2e-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(exeDir) })
	runDir, err := os.MkdirTemp("/run", "mcpsec-e2e-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(runDir) })
	exe := filepath.Join(exeDir, "sensor")
	if out, err := exec.Command("cp", bin(t, "sensor"), exe).CombinedOutput(); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	unitText, err := os.ReadFile(filepath.Join(testutil.RepoRoot(), "packaging", "mcp-sensor.service"))
	if err != nil {
		t.Fatal(err)
	}
	unit := filepath.Join(dir, "mcp-sensor.service")
	if err := os.WriteFile(unit, []byte(strings.ReplaceAll(string(unitText), "/usr/local/bin/sensor", exe)), 0o644); err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(runDir, "ctl.sock")
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	metricsAddr := l.Addr().String()
	l.Close()
	// the shipped rules (built in), the unit's own directories
	cfg := fmt.Sprintf("profile: baseline\nresponse: monitor\nlearn: 0s\nmetrics_addr: %s\ncontrol_socket: %s\nnats:\n  url: %s\n",
		metricsAddr, sock, ns.ClientURL())
	if err := os.WriteFile(filepath.Join(dir, "etc", "config.yaml"), []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	notifyPath := filepath.Join(runDir, "notify.sock")
	notify := notifySocket(t, notifyPath)
	var logs, stdout lockedBuffer
	d := exec.Command(bin(t, "unitrun"), "--bind", filepath.Join(dir, "state")+":/var/lib/mcp-sensor",
		"--bind", filepath.Join(dir, "log")+":/var/log/mcp-sensor", "--bind", filepath.Join(dir, "etc")+":/etc/mcp-sensor",
		"--notify", notifyPath, unit)
	d.Stdout, d.Stderr = &stdout, &logs
	if err := d.Start(); err != nil {
		t.Fatal(err)
	}
	defer d.Process.Kill()
	waitReady(t, notify, d.Process.Pid, &logs)
	if !strings.Contains(stdout.String(), "/etc/mcp-sensor/config.yaml: valid") {
		t.Errorf("ExecStartPre's config check did not run: %q", stdout.String())
	}
	st := sensorCmd(t, "status", "-o", "json", "--socket", sock)
	if !strings.Contains(st, `"ready": true`) || !strings.Contains(st, shippedRules(t)) || !strings.Contains(st, `"connected": true`) {
		t.Fatalf("status:\n%s", st)
	}

	// the sandbox, seen from outside
	pid := d.Process.Pid
	status, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	field := func(k string) string {
		m := regexp.MustCompile(`(?m)^` + k + `:\s*(\S+)`).FindSubmatch(status)
		if m == nil {
			t.Fatalf("no %s in /proc/%d/status", k, pid)
		}
		return string(m[1])
	}
	if field("NoNewPrivs") != "1" || field("Seccomp") != "2" {
		t.Errorf("NoNewPrivs %s, Seccomp %s: want 1 and 2", field("NoNewPrivs"), field("Seccomp"))
	}
	own, _ := os.ReadFile("/proc/self/status")
	ownBnd, _ := strconv.ParseUint(regexp.MustCompile(`(?m)^CapBnd:\s*(\S+)`).FindStringSubmatch(string(own))[1], 16, 64)
	var want uint64
	for _, c := range strings.Fields(regexp.MustCompile(`(?m)^CapabilityBoundingSet=(.*)$`).FindStringSubmatch(string(unitText))[1]) {
		want |= 1 << capNumber(t, c)
	}
	want &= ownBnd // what this machine can give at all
	if got, _ := strconv.ParseUint(field("CapBnd"), 16, 64); got != want {
		t.Errorf("CapBnd %x, want %x", got, want)
	}
	if got, _ := strconv.ParseUint(field("CapEff"), 16, 64); got != want {
		t.Errorf("CapEff %x, want %x", got, want)
	}
	if a, b := nsLink(t, "self"), nsLink(t, fmt.Sprint(pid)); a == b {
		t.Error("the daemon shares the test's mount namespace")
	}
	mi, _ := os.ReadFile(fmt.Sprintf("/proc/%d/mountinfo", pid))
	for _, re := range []string{`(?m)^\S+ \S+ \S+ / / ro[, ]`, `(?m) /tmp rw\S* - tmpfs `, `(?m) /dev rw\S* - tmpfs `,
		`(?m) /var/lib/mcp-sensor rw[, ]`, `(?m) /home ro[, ]`,
		`(?m) /sys/fs/cgroup(/unified)? rw[, ]\S*( \S+:\S+)* - cgroup2 `, `(?m) /sys/fs/bpf rw[, ]`} {
		if !regexp.MustCompile(re).Match(mi) {
			t.Errorf("the daemon's mounts lack %s:\n%s", re, mi)
		}
	}
	if umask := field("Umask"); umask != "0077" {
		t.Errorf("Umask %s, want 0077", umask)
	}

	// it does its work inside
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	s, srv := attackAndAlert(t, ctx, sock, &logs)
	containRelease(t, ctx, sock, s, srv)
	if n := alertsOnJetStream(t, ctx, ns.ClientURL(), "high", "credential_read_unnamed"); n != 1 {
		t.Errorf("%d credential_read_unnamed alerts on JetStream, want 1", n)
	}
	var file []byte
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if file, _ = os.ReadFile(filepath.Join(dir, "log", "alerts.jsonl")); strings.Contains(string(file), `"rule":"credential_read_unnamed"`) {
			break
		}
	}
	if !strings.Contains(string(file), `"rule":"credential_read_unnamed"`) {
		t.Errorf("alerts file in LogsDirectory:\n%s", file)
	}
	if fi, err := os.Stat(filepath.Join(dir, "log", "alerts.jsonl")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("alerts file: %v %v", fi, err)
	}
	_ = d.Process.Signal(syscall.SIGHUP) // ExecReload
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline) && !strings.Contains(logs.String(), "rules reloaded"); {
		time.Sleep(50 * time.Millisecond)
	}
	if !strings.Contains(logs.String(), `"why":"SIGHUP"`) {
		t.Errorf("no reload on SIGHUP:\n%s", logs.String())
	}
	if _, err := http.Get("http://" + metricsAddr + "/metrics"); err != nil {
		t.Errorf("metrics: %v", err)
	}
	stopDaemon(t, d, sock)
	// go-hclog writes JSON when stderr is not a terminal (the journal)
	for _, ln := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
		if !strings.HasPrefix(ln, "unitrun: ") && !json.Valid([]byte(ln)) {
			t.Errorf("a log line is not JSON: %q", ln)
		}
	}
}

// nsLink is a process's mount namespace.
func nsLink(t *testing.T, pid string) string {
	l, err := os.Readlink("/proc/" + pid + "/ns/mnt")
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// capNumber is a capability's bit.
func capNumber(t *testing.T, name string) uint {
	n, ok := caps.Number(name)
	if !ok {
		t.Fatalf("unknown capability %s", name)
	}
	return uint(n)
}

// shippedRules is how the daemon's status counts the repository's rules.
func shippedRules(t *testing.T) string {
	t.Helper()
	rs, err := correlate.LoadFS(rules.Files, "rules")
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf(`"rules": %d`, len(rs.Rules))
}

// checkOCSF reads OCSF findings until the credential read's, and checks it
// is a Detection Finding whose attestation is its audit record's hash.
func checkOCSF(t *testing.T, sub *nats.Subscription) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); {
		m, err := sub.NextMsg(time.Until(deadline))
		if err != nil {
			break
		}
		var f struct {
			ClassUID int `json:"class_uid"`
			Info     struct {
				Title string `json:"title"`
			} `json:"finding_info"`
			Meta struct {
				Profiles []string `json:"profiles"`
			} `json:"metadata"`
			Attest []struct {
				Chain       string `json:"chain_uid"`
				Fingerprint struct {
					Value string `json:"value"`
				} `json:"fingerprint"`
			} `json:"attestation_list"`
		}
		if json.Unmarshal(m.Data, &f) != nil || f.Info.Title != "credential_read_unnamed" {
			continue
		}
		var b []byte
		if len(f.Attest) == 1 { // chain_uid is HOST:TRAIL
			_, dir, _ := strings.Cut(f.Attest[0].Chain, ":")
			b, _ = os.ReadFile(filepath.Join(dir, "audit.jsonl"))
		}
		if f.ClassUID != 2004 || len(f.Attest) != 1 || f.Attest[0].Fingerprint.Value == "" ||
			!strings.Contains(string(b), `"hash":"`+f.Attest[0].Fingerprint.Value+`"`) || !slices.Contains(f.Meta.Profiles, "record_integrity") {
			t.Errorf("the OCSF finding: %s", m.Data)
		}
		return
	}
	t.Error("no OCSF finding of the credential read on mcpsec.ocsf.>")
}
