package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nkeys"

	"github.com/mcpsec/sensor/internal/testutil"
	"github.com/mcpsec/sensor/pkg/contain"
	"github.com/mcpsec/sensor/pkg/fleet"
	"github.com/mcpsec/sensor/pkg/loader"
)

// natsCluster starts three routed JetStream servers.
func natsCluster(t *testing.T) ([]*server.Server, []string) {
	t.Helper()
	free := func() int {
		l, _ := net.Listen("tcp", "127.0.0.1:0")
		defer l.Close()
		return l.Addr().(*net.TCPAddr).Port
	}
	cports := []int{free(), free(), free()}
	var routes []string
	for _, p := range cports {
		routes = append(routes, fmt.Sprintf("nats://127.0.0.1:%d", p))
	}
	var srvs []*server.Server
	var urls []string
	for i := range 3 {
		o := &server.Options{ServerName: fmt.Sprintf("n%d", i), Host: "127.0.0.1", Port: free(), JetStream: true,
			StoreDir: filepath.Join(t.TempDir(), "js"), NoLog: true, NoSigs: true}
		o.Cluster.Name, o.Cluster.Host, o.Cluster.Port = "e2e", "127.0.0.1", cports[i]
		o.Routes = server.RoutesFromStr(strings.Join(routes, ","))
		s, err := server.NewServer(o)
		if err != nil {
			t.Fatal(err)
		}
		go s.Start()
		t.Cleanup(s.Shutdown)
		srvs = append(srvs, s)
		urls = append(urls, s.ClientURL())
	}
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if slices.ContainsFunc(srvs, func(s *server.Server) bool { return s.JetStreamIsLeader() }) {
			return srvs, urls
		}
	}
	t.Fatal("the cluster elected no JetStream leader")
	return nil, nil
}

type fleetHost struct {
	name string
	d    *daemon
	cg   *contain.Cgroup // its malicious server's
	cg2  *contain.Cgroup // another server's (a cgroup traces as one server)
	pub  string
}

// logTime finds the time of the first log line of a daemon that matches re.
func (h *fleetHost) logTime(t *testing.T, re string, within time.Duration) time.Time {
	t.Helper()
	rx := regexp.MustCompile(re)
	for deadline := time.Now().Add(within); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		h.d.logs.mu.Lock()
		text := h.d.logs.b.String()
		h.d.logs.mu.Unlock()
		for _, l := range strings.Split(text, "\n") {
			if rx.MatchString(l) {
				var v struct {
					TS time.Time `json:"@timestamp"`
				}
				_ = json.Unmarshal([]byte(l), &v)
				return v.TS
			}
		}
	}
	t.Fatalf("%s never logged %s", h.name, re)
	return time.Time{}
}

// startEvil starts the malicious-by-design server in a host's cgroup and
// connects a client to it.
func (h *fleetHost) startEvil(t *testing.T, ctx context.Context, exfil string) (*mcp.ClientSession, *exec.Cmd) {
	t.Helper()
	home, _ := fakeHome(t)
	cmd := exec.Command(bin(t, "evil"), filepath.Join(home, "notes"))
	cmd.Env = append(os.Environ(), "HOME="+home, "EVIL_EXFIL="+exfil)
	cmd.SysProcAttr = &syscall.SysProcAttr{UseCgroupFD: true, CgroupFD: h.cg.FD()}
	s, err := mcp.NewClient(&mcp.Implementation{Name: "e2e", Version: "1"}, nil).Connect(ctx, &mcp.CommandTransport{Command: cmd}, nil)
	if err != nil {
		t.Fatal(err)
	}
	// SIGKILL first: a frozen server does not answer a polite close
	t.Cleanup(func() { _ = cmd.Process.Kill(); s.Close() })
	if _, err := s.ListTools(ctx, nil); err != nil {
		t.Fatal(err)
	}
	return s, cmd
}

// TestFleet: three sensors (their own state, sockets and servers' cgroups)
// share a three-node JetStream cluster. Host A catches our malicious
// server exfiltrating to a loopback listener; hosts B and C hold the
// indicator within a second; with one node killed, the same server started
// on B is refused in the kernel at its first connect, and B's alert names
// the indicator's origin; an indicator signed by a key nobody trusts is
// ignored; A's false-positive verdict withdraws it from B and C; the
// inventory has each host once.
func TestFleet(t *testing.T) {
	testutil.RequireBPF(t)
	srvs, urls := natsCluster(t)
	var bytesIn, conns atomic.Int64
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conns.Add(1)
			go func() {
				b := make([]byte, 4096)
				for {
					n, err := c.Read(b)
					bytesIn.Add(int64(n))
					if err != nil {
						c.Close()
						return
					}
				}
			}()
		}
	}()
	exfil := ln.Addr().String()
	// the kernel's deny map is pinned: what this test's indicators put in
	// it must not outlive the test (other tests' listeners are on loopback)
	t.Cleanup(func() { clearPinnedDeny(t) })
	dir := t.TempDir()
	var hosts []*fleetHost
	var pubs []string
	for _, name := range []string{"a", "b", "c"} {
		kp, _ := nkeys.CreateServer()
		seed, _ := kp.Seed()
		pub, _ := kp.PublicKey()
		_ = os.WriteFile(filepath.Join(dir, name+".nk"), seed, 0o600)
		pubs = append(pubs, pub)
		h := &fleetHost{name: "host-" + name, pub: pub}
		for i, p := range []**contain.Cgroup{&h.cg, &h.cg2} {
			cg, err := contain.Create(fmt.Sprintf("e2e-fleet-%s%d-%d", name, i, os.Getpid()))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = cg.Kill(); _ = cg.Remove(5 * time.Second) })
			*p = cg
		}
		hosts = append(hosts, h)
	}
	for i, h := range hosts {
		order := append([]string{urls[i]}, slices.Delete(slices.Clone(urls), i, i+1)...)
		root, _ := contain.Cgroup2Root()
		rel, _ := filepath.Rel(root, h.cg.Path)
		rel2, _ := filepath.Rel(root, h.cg2.Path)
		profile, learn := "baseline", "1s" // B and C only monitor: the kernel refuses what the fleet names all the same
		if i == 0 {
			profile, learn = "enterprise", "10m"
		}
		h.d = startDaemon(t, fmt.Sprintf(`profile: %s
learn: %s
discover: false
dashboard:
  listen: ""
servers:
  - cgroup: %s
  - cgroup: %s
nats:
  url: %s
  replicas: 3
fleet:
  enabled: true
  host: %s
  key_file: %s
  trust: [%s]
`, profile, learn, rel, rel2, strings.Join(order, ","), h.name, filepath.Join(dir, h.name[5:]+".nk"), strings.Join(pubs, ", ")))
	}
	for _, h := range hosts {
		h.logTime(t, `"@message":"fleet: joined"`, 30*time.Second)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Second)
	defer cancel()

	// host A: the attack
	a, b, c := hosts[0], hosts[1], hosts[2]
	sa, _ := a.startEvil(t, ctx, exfil)
	go func() {
		cctx, ccancel := context.WithTimeout(ctx, 5*time.Second)
		defer ccancel()
		_, _ = sa.CallTool(cctx, &mcp.CallToolParams{Name: "read_notes", Arguments: map[string]any{"note": "todo"}})
	}()
	alert := a.d.waitAlert(t, "credential_read_then_egress", "critical")
	detected, _ := time.Parse(time.RFC3339Nano, alert.str("ts"))
	value := regexp.QuoteMeta(exfil)
	onB := b.logTime(t, `fleet indicator: destination.*"denied":true.*"value":"`+value, 10*time.Second)
	onC := c.logTime(t, `fleet indicator: destination.*"denied":true.*"value":"`+value, 10*time.Second)
	t.Logf("detection on A -> kernel map updated: B %v, C %v", onB.Sub(detected).Round(time.Millisecond), onC.Sub(detected).Round(time.Millisecond))
	if onB.Sub(detected) > time.Second || onC.Sub(detected) > time.Second {
		t.Errorf("the indicator took more than 1 s: B %v, C %v", onB.Sub(detected), onC.Sub(detected))
	}

	// MCPSEC_FLEET_RUNS=30: more attacks on A, each to a listener of its
	// own, for the propagation figures (detection on A -> C's kernel map)
	if n, _ := strconv.Atoi(os.Getenv("MCPSEC_FLEET_RUNS")); n > 1 {
		lags := []time.Duration{onC.Sub(detected)}
		for i := 1; i < n; i++ {
			// the last attack froze A's cgroup: release it first
			sensorCmd(t, "release", "--socket", a.d.sock, "--cgroup", a.cg.Path)
			l, _ := net.Listen("tcp", "127.0.0.1:0")
			s, _ := a.startEvil(t, ctx, l.Addr().String())
			go func() {
				cctx, ccancel := context.WithTimeout(ctx, 5*time.Second)
				defer ccancel()
				_, _ = s.CallTool(cctx, &mcp.CallToolParams{Name: "read_notes", Arguments: map[string]any{"note": "todo"}})
			}()
			v := regexp.QuoteMeta(l.Addr().String())
			at := a.logTime(t, `fleet: indicator reported.*"value":"`+v, 15*time.Second)
			var det time.Time
			for _, al := range a.d.alertLines(t) {
				if al.str("rule") == "credential_read_then_egress" && strings.Contains(al.str("output"), l.Addr().String()) {
					det, _ = time.Parse(time.RFC3339Nano, al.str("ts"))
				}
			}
			if det.IsZero() {
				det = at
			}
			lags = append(lags, c.logTime(t, `fleet indicator: destination.*"denied":true.*"value":"`+v, 10*time.Second).Sub(det))
			l.Close()
		}
		slices.Sort(lags)
		t.Logf("detection on A -> C's kernel map over %d runs: p50 %v, p99 %v, max %v", len(lags),
			lags[len(lags)/2].Round(time.Millisecond), lags[len(lags)*99/100].Round(time.Millisecond), lags[len(lags)-1].Round(time.Millisecond))
	}

	// B keeps what is in force for sensor scan (which judges without NATS)
	if b, err := os.ReadFile(filepath.Join(b.d.state, fleet.InForceFile)); err != nil || !strings.Contains(string(b), exfil) {
		t.Errorf("B's %s: %v\n%s", fleet.InForceFile, err, b)
	}

	// a node dies; the same server started on B is refused at its first connect
	srvs[1].Shutdown()
	srvs[1].WaitForShutdown()
	conns.Store(0) // what A's server sent before it was caught is A's story
	bytesIn.Store(0)
	sb, _ := b.startEvil(t, ctx, exfil)
	cctx, ccancel := context.WithTimeout(ctx, 10*time.Second) // an answer is not what is tested
	res, err := sb.CallTool(cctx, &mcp.CallToolParams{Name: "sync_notes", Arguments: map[string]any{}})
	ccancel()
	if err == nil && !res.IsError {
		t.Logf("sync_notes on B answered: %v", res.Content)
	}
	ind := b.d.waitAlert(t, "egress_fleet_indicator", "high")
	if out := ind.str("output"); !strings.Contains(out, "host-a") || !strings.Contains(out, exfil) {
		t.Errorf("B's alert does not name the indicator's origin: %s", out)
	}
	if n := bytesIn.Load(); n != 0 || conns.Load() != 0 {
		t.Errorf("the listener got %d connection(s), %d bytes from B's server", conns.Load(), n)
	}

	// an indicator from a key nobody listed is ignored
	kp, _ := nkeys.CreateServer()
	seed, _ := kp.Seed()
	_ = os.WriteFile(filepath.Join(dir, "d.nk"), seed, 0o600)
	nc, err := nats.Connect(strings.Join([]string{urls[0], urls[2]}, ","))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	d, err := fleet.Open(ctx, nc, fleet.Options{Host: "host-d", Replicas: 3, KeyFile: filepath.Join(dir, "d.nk")})
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Report(ctx, fleet.Destination, "192.0.2.77:443", "credential_read_then_egress", "critical", "d1"); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Second)
	for _, h := range []*fleetHost{b, c} {
		h.d.logs.mu.Lock()
		applied := strings.Contains(h.d.logs.b.String(), `"value":"192.0.2.77:443"`)
		h.d.logs.mu.Unlock()
		if applied {
			t.Errorf("%s took an indicator from an untrusted key", h.name)
		}
	}

	// A's analyst: a false positive; B and C drop it
	sensorCmd(t, "alerts", "verdict", alert.str("id"), "false", "--reason", "e2e: the test's own listener", "--socket", a.d.sock)
	b.logTime(t, `fleet indicator: destination.*"denied":false.*"value":"`+value, 10*time.Second)
	c.logTime(t, `fleet indicator: destination.*"denied":false.*"value":"`+value, 10*time.Second)

	// what B learned of a benign server (in a second, here) seeds C, which
	// never ran it: no blank learning window there. The malicious server's
	// behaviour, flagged by alerts, is not shared as normal.
	home, _ := fakeHome(t)
	tb := exec.Command(bin(t, "toolbox"), home)
	tb.SysProcAttr = &syscall.SysProcAttr{UseCgroupFD: true, CgroupFD: b.cg2.FD()}
	ts, err := mcp.NewClient(&mcp.Implementation{Name: "e2e", Version: "1"}, nil).Connect(ctx, &mcp.CommandTransport{Command: tb}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ts.Close()
	if _, err := ts.ListTools(ctx, nil); err != nil {
		t.Fatal(err)
	}
	_ = os.WriteFile(filepath.Join(home, "todo.txt"), []byte("milk\n"), 0o644)
	if _, err := ts.CallTool(ctx, &mcp.CallToolParams{Name: "read_file", Arguments: map[string]any{"path": "todo.txt"}}); err != nil {
		t.Fatal(err)
	}
	c.logTime(t, `"@message":"fleet: baseline seeded".*"from":\["host-b"\].*"server":"go:github.com/mcpsec/sensor/internal/testservers/toolbox"`, 40*time.Second)
	c.d.logs.mu.Lock()
	poisoned := strings.Contains(c.d.logs.b.String(), `"server":"go:github.com/mcpsec/sensor/internal/testservers/evil"`)
	c.d.logs.mu.Unlock()
	if poisoned {
		t.Error("the malicious server's behaviour was shared as a baseline")
	}

	// the inventory: each host once
	var invs []fleet.Inventory
	cfg := filepath.Join(filepath.Dir(a.d.state), "config.yaml")
	if err := json.Unmarshal([]byte(sensorCmd(t, "fleet", "status", "-o", "json", "--config", cfg)), &invs); err != nil {
		t.Fatal(err)
	}
	seen := map[string]int{}
	for _, in := range invs {
		seen[in.Host]++
	}
	if len(invs) != 3 || seen["host-a"] != 1 || seen["host-b"] != 1 || seen["host-c"] != 1 {
		t.Errorf("the fleet's inventory: %v", seen)
	}
	list := sensorCmd(t, "fleet", "indicators", "--config", cfg)
	if !strings.Contains(list, exfil) || !strings.Contains(list, "WITHDRAWN by host-a") || !strings.Contains(list, "192.0.2.77:443") {
		t.Errorf("fleet indicators:\n%s", list)
	}
}

// clearPinnedDeny empties the pinned egress_deny map.
func clearPinnedDeny(t *testing.T) {
	m, err := ebpf.LoadPinnedMap(filepath.Join(loader.PinDir, "egress_deny"), nil)
	if err != nil {
		return
	}
	defer m.Close()
	var keys [][]byte
	var k []byte
	var v []byte
	it := m.Iterate()
	for it.Next(&k, &v) {
		keys = append(keys, slices.Clone(k))
	}
	for _, key := range keys {
		if err := m.Delete(key); err != nil {
			t.Errorf("clearing the deny map: %v", err)
		}
	}
}
