package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/mcpsec/sensor/internal/testutil"
)

// waitTrace polls a trace being written for a line that pred accepts.
func waitTrace(t testing.TB, path string, pred func(line) bool) line {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(2 * time.Millisecond) {
		f, err := os.Open(path)
		if err != nil {
			continue
		}
		sc := bufio.NewScanner(f)
		sc.Buffer(make([]byte, 1<<20), 64<<20)
		for sc.Scan() {
			var l line
			if json.Unmarshal(sc.Bytes(), &l) == nil && pred(l) {
				f.Close()
				return l
			}
		}
		f.Close()
	}
	t.Fatal("the trace never showed what the test waits for")
	return nil
}

func sensorCmd(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command(bin(t, "sensor"), args...).CombinedOutput()
	if err != nil {
		t.Fatalf("sensor %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

func cgroupFrozen(t *testing.T, path string) bool {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(path, "cgroup.events"))
	if err != nil {
		t.Fatal(err)
	}
	return strings.Contains(string(b), "frozen 1")
}

// TestContainCanary: with containment enforced, a server that reads a
// canary key and sends it to a loopback listener is refused in the kernel:
// the listener gets zero bytes, the refusal is in the trace, the critical
// alert freezes the server's cgroup and snapshots it; `sensor release`
// thaws it and it answers again.
func TestContainCanary(t *testing.T) {
	home, canary := fakeHome(t)
	exfil, got := listener(t)
	state := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	ts := traceSetup{
		version: "2025-11-25", dir: home,
		env:   []string{"HOME=" + home, "EVIL_EXFIL=" + exfil},
		flags: []string{"--rules", repoRules(), "--state-dir", state, "--learn", "0", "--response", "enforce"},
	}
	s, out := tracedWith(t, ctx, ts, bin(t, "evil"), filepath.Join(home, "notes"))
	text := callText(t, ctx, s, "read_notes", map[string]any{"note": "todo"})
	if !strings.Contains(text, "MCPSEC-CANARY") {
		t.Fatalf("the tool did not read the key (the test's premise): %q", text)
	}
	select {
	case b := <-got:
		t.Fatalf("the listener received %d bytes: %q", len(b), b)
	case <-time.After(time.Second):
	}
	denied := waitTrace(t, out, func(l line) bool { return l.str("kind") == "effect" && l.str("type") == "egress_denied" })
	if denied.str("addr") != exfil || denied.obj("call").str("tool") != "read_notes" {
		t.Errorf("refusal: %v", denied)
	}
	alert := waitTrace(t, out, func(l line) bool {
		return l.str("kind") == "alert" && l.str("severity") == "critical" && l["response"] != nil
	})
	resp := alert.obj("response")
	done := strings.Join(func() []string {
		var d []string
		for _, x := range resp["done"].([]any) {
			d = append(d, x.(string))
		}
		return d
	}(), ",")
	if resp.str("mode") != "enforce" || !strings.Contains(done, "freeze") || !strings.Contains(done, "deny-egress") || !strings.Contains(done, "snapshot") {
		t.Fatalf("response: %v", resp)
	}
	cg := resp.str("cgroup")
	if !cgroupFrozen(t, cg) {
		t.Fatalf("%s is not frozen", cg)
	}
	snap, err := os.ReadFile(resp.str("snapshot"))
	if err != nil || !strings.Contains(string(snap), `"processes"`) || !strings.Contains(string(snap), "evil") {
		t.Fatalf("snapshot %s: %v", resp.str("snapshot"), err)
	}
	if strings.Contains(string(snap), "EVIL_EXFIL=") {
		t.Error("the snapshot's environment is not a map")
	}
	if resp.num("latency_ms") <= 0 {
		t.Errorf("no containment latency: %v", resp)
	}
	t.Logf("contained in %.2f ms after the offending syscall", resp.num("latency_ms"))
	// frozen: a call does not come back until release
	callDone := make(chan string, 1)
	go func() {
		r, err := s.CallTool(ctx, &mcp.CallToolParams{Name: "add", Arguments: map[string]any{"a": 2, "b": 3}})
		if err != nil || len(r.Content) == 0 {
			callDone <- "error"
			return
		}
		callDone <- r.Content[0].(*mcp.TextContent).Text
	}()
	select {
	case r := <-callDone:
		t.Fatalf("a frozen server answered: %s", r)
	case <-time.After(500 * time.Millisecond):
	}
	if list := sensorCmd(t, "contain", "--list", "--state-dir", state); !strings.Contains(list, cg) || !strings.Contains(list, "frozen, egress denied") {
		t.Errorf("contain --list:\n%s", list)
	}
	sensorCmd(t, "release", "--cgroup", cg, "--state-dir", state)
	audit, err := os.ReadFile(filepath.Join(state, "audit", "audit.jsonl"))
	if err != nil || !strings.Contains(string(audit), `"kind":"response"`) || !strings.Contains(string(audit), `"kind":"release"`) || !strings.Contains(string(audit), `"kind":"alert"`) {
		t.Errorf("audit log: %v\n%s", err, audit)
	}
	if out := sensorCmd(t, "audit", "verify", "--state-dir", state); !strings.Contains(out, "intact") {
		t.Errorf("audit verify: %s", out)
	}
	select {
	case r := <-callDone:
		if r != "5" {
			t.Fatalf("after release: %s", r)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the released server did not answer")
	}
	s.Close()
	_ = canary
}

// repoRules is the shipped rule directory (MCPSEC_BENCH_RULES: another, the
// one an older sensor binary reads, for a benchmark side by side).
func repoRules() string {
	if d := os.Getenv("MCPSEC_BENCH_RULES"); d != "" {
		return d
	}
	return filepath.Join(testutil.RepoRoot(), "rules")
}

// TestEgressAllowList: a server launched with an allow-list is refused
// outside it from its very first connect, before any alert.
func TestEgressAllowList(t *testing.T) {
	home, _ := fakeHome(t)
	exfil, got := listener(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	ts := traceSetup{
		version: "2025-11-25", dir: home,
		env:   []string{"HOME=" + home, "EVIL_EXFIL=" + exfil},
		flags: []string{"--no-rules", "--state-dir", t.TempDir(), "--learn", "0", "--response", "monitor", "--egress-allow", "10.0.0.0/8"},
	}
	s, out := tracedWith(t, ctx, ts, bin(t, "evil"), filepath.Join(home, "notes"))
	callText(t, ctx, s, "read_notes", map[string]any{"note": "x"})
	select {
	case b := <-got:
		t.Fatalf("the listener received %q", b)
	case <-time.After(time.Second):
	}
	s.Close()
	ls := readTrace(t, out)
	connects := filter(ls, func(l line) bool {
		return l.str("kind") == "effect" && l.str("type") == "connect" && l.str("addr") == exfil
	})
	denied := filter(ls, func(l line) bool { return l.str("kind") == "effect" && l.str("type") == "egress_denied" })
	if len(connects) != 1 || connects[0].str("errno") != "EPERM" {
		t.Fatalf("the first connect was not refused with EPERM: %v", connects)
	}
	if len(denied) != 1 || denied[0].str("detail") != "outside the allow-list" {
		t.Fatalf("refusals: %v", denied)
	}
}

// TestContainSurvivesRestart: a `kill -9` of the sensor leaves a contained
// server contained (frozen, egress denied: the cgroup and pinned maps hold
// it), a new sensor re-adopts it without releasing it, and only `sensor
// release` frees it.
func TestContainSurvivesRestart(t *testing.T) {
	home, _ := fakeHome(t)
	exfil, got := listener(t)
	state := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmds := make(chan *exec.Cmd, 1)
	ts := traceSetup{
		version: "2025-11-25", dir: home, cmd: cmds,
		env:   []string{"HOME=" + home, "EVIL_EXFIL=" + exfil},
		flags: []string{"--rules", repoRules(), "--state-dir", state, "--learn", "0", "--response", "enforce"},
	}
	s, out := tracedWith(t, ctx, ts, bin(t, "evil"), filepath.Join(home, "notes"))
	first := <-cmds
	callText(t, ctx, s, "read_notes", map[string]any{"note": "todo"})
	alert := waitTrace(t, out, func(l line) bool { return l.str("kind") == "alert" && l.obj("response").str("cgroup") != "" })
	cg := alert.obj("response").str("cgroup")
	server := waitTrace(t, out, func(l line) bool { return l.str("kind") == "effect" && l.str("type") == "exec" })
	pid := int(server.num("pid"))
	t.Cleanup(func() {
		_ = os.WriteFile(filepath.Join(cg, "cgroup.kill"), []byte("1"), 0)
		time.Sleep(100 * time.Millisecond)
		_ = os.Remove(cg)
	})
	if !cgroupFrozen(t, cg) {
		t.Fatal("not contained before the restart")
	}
	_ = first.Process.Kill() // kill -9
	_, _ = first.Process.Wait()
	if !cgroupFrozen(t, cg) {
		t.Fatal("the sensor's death thawed the server")
	}
	// a new sensor attaches to the contained server
	var logs lockedBuffer
	second := exec.Command(bin(t, "sensor"), "trace", "-o", "json", "--out", filepath.Join(t.TempDir(), "t2.jsonl"),
		"--pid", fmt.Sprint(pid), "--response", "enforce", "--state-dir", state, "--rules", repoRules())
	second.Stderr = &logs
	if err := second.Start(); err != nil {
		t.Fatal(err)
	}
	logs.waitFor(t, "still contained", 1)
	if list := sensorCmd(t, "contain", "--list", "--state-dir", state); !strings.Contains(list, "frozen, egress denied") {
		t.Errorf("after the restart: %s", list)
	}
	_ = second.Process.Signal(os.Interrupt)
	_ = second.Wait()
	if !cgroupFrozen(t, cg) {
		t.Fatal("the second sensor released the server when it stopped")
	}
	// the server outlived both sensors, frozen. (The SDK's client closed
	// its session when the first sensor, its command, died: once thawed
	// the server reads the end of its input and exits, so it is looked
	// for before the release.)
	if _, err := os.Stat(fmt.Sprintf("/proc/%d", pid)); err != nil {
		t.Fatalf("the server is gone: %v", err)
	}
	sensorCmd(t, "release", "--cgroup", cg, "--state-dir", state)
	if cgroupFrozen(t, cg) {
		t.Fatal("release did not thaw")
	}
	select {
	case b := <-got:
		t.Fatalf("the listener received %q", b)
	default:
	}
	s.Close()
}

// BenchmarkContainment: the latency from the offending syscall (the kernel's
// timestamp of the refused connect) to the kernel reporting the server's
// cgroup frozen, through the whole pipeline (ring, decoder, ordering,
// correlator, rules, responder), over 30 contain/release cycles of one
// traced server. Reports p50 and p99 in ms. (Its egress was refused in the
// kernel at the syscall itself: 0 bytes left.)
func BenchmarkContainment(b *testing.B) {
	if b.N > 1 {
		b.Skip("one run of 30 cycles")
	}
	home, err := os.MkdirTemp("/home", "mcpsec-bench-")
	if err != nil {
		b.Fatal(err)
	}
	defer os.RemoveAll(home)
	for _, d := range []string{".ssh", "notes"} {
		_ = os.MkdirAll(filepath.Join(home, d), 0o700)
	}
	_ = os.WriteFile(filepath.Join(home, ".ssh", "id_rsa"), []byte("-----BEGIN OPENSSH PRIVATE KEY-----\nbench\n-----END OPENSSH PRIVATE KEY-----\n"), 0o600)
	state := b.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	ts := traceSetup{
		version: "2025-11-25", dir: home,
		env:   append([]string{"HOME=" + home, "EVIL_EXFIL=127.0.0.1:9"}, strings.Fields(os.Getenv("MCPSEC_BENCH_ENV"))...),
		flags: []string{"--rules", repoRules(), "--state-dir", state, "--learn", "0", "--response", "enforce"},
	}
	s, out := tracedWith(b, ctx, ts, bin(b, "evil"), filepath.Join(home, "notes"))
	defer s.Close()
	var lat, det []float64
	seen := map[string]bool{}
	tail := &traceTail{path: out}
	for i := 0; i < 30; i++ {
		done := make(chan error, 1)
		go func() {
			_, err := s.CallTool(ctx, &mcp.CallToolParams{Name: "read_notes", Arguments: map[string]any{"note": fmt.Sprint(i)}})
			done <- err
		}()
		a := tail.wait(b, func(l line) bool {
			r := l.obj("response")
			key := fmt.Sprint(l.obj("call")["id"])
			return l.str("kind") == "alert" && r.num("latency_ms") > 0 && !seen[key]
		})
		seen[fmt.Sprint(a.obj("call")["id"])] = true
		lat = append(lat, a.obj("response").num("latency_ms"))
		det = append(det, a.obj("response").num("detect_ms"))
		if _, err := exec.Command(bin(b, "sensor"), "release", "--cgroup", a.obj("response").str("cgroup"), "--state-dir", state).CombinedOutput(); err != nil {
			b.Fatal(err)
		}
		if err := <-done; err != nil {
			b.Fatal(err)
		}
	}
	b.Logf("detection ms by cycle: %v", det)
	b.ReportMetric(orderLate(b, s, tail), "order-late")
	sort.Float64s(lat)
	sort.Float64s(det)
	b.ReportMetric(det[len(det)/2], "detect-p50-ms")
	b.ReportMetric(det[len(det)*99/100], "detect-p99-ms")
	b.ReportMetric(lat[len(lat)/2], "p50-ms")
	b.ReportMetric(lat[len(lat)*99/100], "p99-ms")
	b.ReportMetric(lat[len(lat)-1], "max-ms")
}

// TestRunTightens: `sensor run` launches a server as an MCP client would,
// stdio passed straight through. The seccomp baseline refuses escape
// syscalls; after a critical alert (command injection) the server's next
// exec is refused with EPERM, while it keeps answering other calls.
func TestRunTightens(t *testing.T) {
	testutil.RequireBPF(t)
	home, _ := fakeHome(t)
	out := filepath.Join(t.TempDir(), "run.jsonl")
	cmd := exec.Command(bin(t, "sensor"), "run", "--profile", "baseline", "--out", out, "--state-dir", t.TempDir(),
		"--rules", repoRules(), "--", bin(t, "evil"), filepath.Join(home, "notes"))
	cmd.Env = append(os.Environ(), "HOME="+home)
	var logs lockedBuffer
	cmd.Stderr = &logs
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	client := mcp.NewClient(&mcp.Implementation{Name: "e2e", Version: "1"}, nil)
	s, err := client.Connect(ctx, &mcp.CommandTransport{Command: cmd, TerminateDuration: 10 * time.Second}, &mcp.ClientSessionOptions{ProtocolVersion: "2025-11-25"})
	if err != nil {
		t.Fatalf("connecting through sensor run: %v\n%s", err, logs.String())
	}
	// an injected command runs once (the exec is what the rule sees) ...
	if got := callText(t, ctx, s, "check_host", map[string]any{"host": "127.0.0.1; echo INJECTED"}); !strings.Contains(got, "INJECTED") {
		t.Fatalf("first exec: %q", got)
	}
	logs.waitFor(t, "tightening the server", 1)
	// the seccomp baseline: unshare is refused outright
	if got := callText(t, ctx, s, "sandbox", map[string]any{}); !strings.Contains(got, "operation not permitted") {
		t.Errorf("unshare under sensor run: %q", got)
	}
	// ... and the next exec is refused, while other calls are answered
	if got := callText(t, ctx, s, "list_dir", map[string]any{"dir": "."}); got != "" && !strings.Contains(got, "operation not permitted") {
		t.Errorf("exec after tightening: %q", got)
	}
	if got := callText(t, ctx, s, "add", map[string]any{"a": 20, "b": 22}); got != "42" {
		t.Errorf("the server stopped answering: %q", got)
	}
	s.Close()
	ls := readTrace(t, out)
	rules := byRule(alerts(ls))
	if len(rules["shell_metachar_in_exec"]) == 0 {
		t.Errorf("no command-injection alert in the run's log")
	}
	var refused float64
	for _, l := range ls {
		if sc := l.obj("seccomp"); sc != nil {
			refused = sc.num("refused")
		}
	}
	if refused < 1 {
		t.Errorf("the supervisor refused nothing: %v", refused)
	}
	if !strings.Contains(logs.String(), `"syscall":"exec"`) {
		t.Errorf("no refusal logged:\n%s", logs.String())
	}
}

// TestContainConnectedSocket: a server that connected before it read the
// key sends it on that connection; the sock_addr hooks never see it, the
// egress packet filter drops it: the listener gets what was sent before the
// read, and not a byte of the key.
func TestContainConnectedSocket(t *testing.T) {
	home, canary := fakeHome(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	got := make(chan []byte, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		_ = c.SetReadDeadline(time.Now().Add(3 * time.Second))
		b, _ := io.ReadAll(c) // until the deadline: the FIN is dropped too
		got <- b
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	ts := traceSetup{
		version: "2025-11-25", dir: home,
		env: []string{"HOME=" + home, "EVIL_EXFIL=" + ln.Addr().String()},
		// no rules: no alert freezes the server; only the kernel's taint acts
		flags: []string{"--no-rules", "--state-dir", t.TempDir(), "--learn", "0", "--response", "enforce"},
	}
	s, out := tracedWith(t, ctx, ts, bin(t, "evil"), filepath.Join(home, "notes"))
	callText(t, ctx, s, "sync_notes", map[string]any{})
	b := <-got
	if strings.Contains(string(b), "MCPSEC-CANARY") || strings.Contains(string(b), "PRIVATE KEY") {
		t.Fatalf("the key left on a connection made before the taint: %q", b)
	}
	if string(b) != "hello\n" {
		t.Errorf("the listener got %q, want what was sent before the read", b)
	}
	s.Close()
	if st := stats(t, readTrace(t, out)).obj("kernel"); st.num("egress_packets_dropped") == 0 || st.num("cgroups_tainted") == 0 {
		t.Errorf("kernel counters: %v", st)
	}
	_ = canary
}

// traceTail reads a trace being written from where it left off, so waiting
// on it costs little CPU (which would otherwise be taken from the sensor).
// orderLate ends the traced session and returns the trace's count of
// events printed after a newer one (what a too-short ordering margin costs).
func orderLate(b *testing.B, s *mcp.ClientSession, tail *traceTail) float64 {
	s.Close()
	return tail.wait(b, func(l line) bool { return l.str("kind") == "stats" }).num("order_late")
}

type traceTail struct {
	path string
	off  int64
	rest []byte
}

func (tt *traceTail) wait(t testing.TB, pred func(line) bool) line {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		f, err := os.Open(tt.path)
		if err != nil {
			continue
		}
		_, _ = f.Seek(tt.off, io.SeekStart)
		b, _ := io.ReadAll(f)
		f.Close()
		tt.off += int64(len(b))
		tt.rest = append(tt.rest, b...)
		for {
			i := bytes.IndexByte(tt.rest, '\n')
			if i < 0 {
				break
			}
			ln := tt.rest[:i]
			tt.rest = tt.rest[i+1:]
			var l line
			if json.Unmarshal(ln, &l) == nil && pred(l) {
				return l
			}
		}
	}
	t.Fatal("the trace never showed what the test waits for")
	return nil
}

// TestKillOnExec: a rule whose action is kill (command injection) makes
// the kernel signal the server's cgroup at its next exec (bpf_send_signal):
// the program it starts dies before it runs, while the server itself keeps
// answering.
func TestKillOnExec(t *testing.T) {
	home, _ := fakeHome(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	ts := traceSetup{
		version: "2025-11-25", dir: home, env: []string{"HOME=" + home},
		flags: []string{"--rules", repoRules(), "--state-dir", t.TempDir(), "--learn", "0", "--response", "enforce"},
	}
	s, out := tracedWith(t, ctx, ts, bin(t, "evil"), filepath.Join(home, "notes"))
	// the injection reaches a shell (the test's premise); the kill action
	// may stop that shell before it prints, the response being that fast
	callText(t, ctx, s, "check_host", map[string]any{"host": "localhost; echo PWNED"})
	waitTrace(t, out, func(l line) bool {
		return l.str("kind") == "effect" && l.str("type") == "exec" && strings.Contains(fmt.Sprint(l["argv"]), "echo PWNED")
	})
	alert := waitTrace(t, out, func(l line) bool {
		return l.str("kind") == "alert" && l.str("rule") == "shell_metachar_in_exec" && l["response"] != nil
	})
	if done := fmt.Sprint(alert.obj("response")["done"]); !strings.Contains(done, "kill-on-exec") {
		t.Fatalf("response: %v", alert.obj("response"))
	}
	// the next program the server starts is killed at its exec
	if got := callText(t, ctx, s, "list_dir", map[string]any{"dir": "."}); strings.Contains(got, "notes") {
		t.Fatalf("ls ran after kill-on-exec: %q", got)
	}
	if got := callText(t, ctx, s, "add", map[string]any{"a": 1, "b": 2}); got != "3" {
		t.Fatalf("the server stopped answering: %q", got)
	}
	s.Close()
	if k := stats(t, readTrace(t, out)).obj("kernel"); k.num("execs_signalled") < 1 {
		t.Errorf("kernel counters: %v", k)
	}
}
