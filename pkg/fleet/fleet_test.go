package fleet

import (
	"context"
	"fmt"
	"net"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/mcpsec/sensor/pkg/correlate"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
)

func freePort(t testing.TB) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// cluster starts three JetStream servers routed to each other and returns
// them with their client URLs.
func cluster(t testing.TB) ([]*server.Server, []string) {
	t.Helper()
	cports := []int{freePort(t), freePort(t), freePort(t)}
	var routes []string
	for _, p := range cports {
		routes = append(routes, fmt.Sprintf("nats://127.0.0.1:%d", p))
	}
	var srvs []*server.Server
	var urls []string
	for i := range 3 {
		o := &server.Options{ServerName: fmt.Sprintf("n%d", i), Host: "127.0.0.1", Port: freePort(t), JetStream: true,
			StoreDir: filepath.Join(t.TempDir(), "js"), NoLog: true, NoSigs: true}
		o.Cluster.Name, o.Cluster.Host, o.Cluster.Port = "fleet", "127.0.0.1", cports[i]
		o.Routes = server.RoutesFromStr(strings.Join(routes, ","))
		s, err := server.NewServer(o)
		if err != nil {
			t.Fatal(err)
		}
		go s.Start()
		srvs = append(srvs, s)
		urls = append(urls, s.ClientURL())
	}
	for _, s := range srvs {
		if !s.ReadyForConnections(10 * time.Second) {
			t.Fatal("a cluster node did not start")
		}
		t.Cleanup(s.Shutdown)
	}
	// JetStream needs its meta leader before buckets can be made
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if slices.ContainsFunc(srvs, func(s *server.Server) bool { return s.JetStreamIsLeader() }) {
			return srvs, urls
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatal("the cluster elected no JetStream leader")
	return nil, nil
}

// member joins the fleet as host, connected first to url (then the others).
func member(t testing.TB, host string, urls []string, first int, trust Trust) *Fleet {
	t.Helper()
	order := append([]string{urls[first]}, slices.Delete(slices.Clone(urls), first, first+1)...)
	nc, err := nats.Connect(strings.Join(order, ","), nats.DontRandomize(), nats.MaxReconnects(-1), nats.ReconnectWait(100*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var f *Fleet
	for {
		f, err = Open(ctx, nc, Options{Host: host, Replicas: 3, Trust: trust, KeyFile: filepath.Join(t.TempDir(), host+".nk")})
		if err == nil || ctx.Err() != nil {
			break
		}
		time.Sleep(100 * time.Millisecond) // the cluster is still settling
	}
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// seen collects what a member took into force and out of it.
type seen struct {
	mu  sync.Mutex
	in  map[string]time.Time
	out map[string]string
}

func watch(t testing.TB, f *Fleet) *seen {
	s := &seen{in: map[string]time.Time{}, out: map[string]string{}}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	if err := f.Watch(ctx, func(c Change) {
		s.mu.Lock()
		defer s.mu.Unlock()
		if c.Add {
			if _, ok := s.in[c.Indicator.Value]; !ok {
				s.in[c.Indicator.Value] = time.Now()
			}
			delete(s.out, c.Indicator.Value)
		} else {
			s.out[c.Indicator.Value] = c.Why
			delete(s.in, c.Indicator.Value)
		}
	}); err != nil {
		t.Fatal(err)
	}
	return s
}

func (s *seen) wait(t testing.TB, value string, in bool, within time.Duration) time.Time {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		s.mu.Lock()
		at, ok := s.in[value]
		s.mu.Unlock()
		if ok == in {
			return at
		}
		if !time.Now().Before(deadline) {
			break
		}
		time.Sleep(time.Millisecond)
	}
	t.Fatalf("%s: in force %v not reached within %v", value, in, within)
	return time.Time{}
}

// A host's indicator reaches the others within a second; one from a key
// they do not trust is ignored; a quorum waits for a second host; a
// withdrawal takes it out everywhere; a node killed in the middle loses
// and duplicates nothing.
func TestFleetSharesIndicators(t *testing.T) {
	srvs, urls := cluster(t)
	a := member(t, "host-a", urls, 0, Trust{})
	d := member(t, "host-d", urls, 0, Trust{}) // a host nobody listed
	b := member(t, "host-b", urls, 1, Trust{Keys: []string{a.PublicKey()}})
	c := member(t, "host-c", urls, 2, Trust{Keys: []string{a.PublicKey(), b.PublicKey()}, Quorum: 2})
	sb, sc := watch(t, b), watch(t, c)
	ctx := context.Background()

	start := time.Now()
	if err := a.Report(ctx, Destination, "127.0.0.1:45999", "credential_read_then_egress", "critical", "a1"); err != nil {
		t.Fatal(err)
	}
	if lag := sb.wait(t, "127.0.0.1:45999", true, time.Second).Sub(start); lag > time.Second {
		t.Fatalf("B took %v", lag)
	}
	// C needs two trusted hosts: not yet
	time.Sleep(200 * time.Millisecond)
	sc.wait(t, "127.0.0.1:45999", false, 0)
	if err := b.Report(ctx, Destination, "127.0.0.1:45999", "credential_read_then_egress", "critical", "b1"); err != nil {
		t.Fatal(err)
	}
	sc.wait(t, "127.0.0.1:45999", true, time.Second)
	in, ok := c.Lookup(Destination, "127.0.0.1:45999")
	if !ok || len(in.Reports) != 2 || in.FirstHost != "host-a" || !strings.Contains(in.Origin(), "host-a") {
		t.Fatalf("C's indicator: %+v", in)
	}
	// an untrusted key's indicator is ignored by B and C
	if err := d.Report(ctx, Destination, "10.9.9.9:443", "credential_read_then_egress", "critical", "d1"); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	sb.wait(t, "10.9.9.9:443", false, 0)
	if b.Ignored.Load() == 0 {
		t.Error("B did not count the untrusted indicator as ignored")
	}
	// a node dies: reports, withdrawals and heartbeats go on, once each
	srvs[1].Shutdown()
	srvs[1].WaitForShutdown()
	for _, m := range []*Fleet{a, b, c} {
		if err := m.Heartbeat(ctx, Inventory{Version: "test"}); err != nil {
			t.Fatalf("heartbeat with a node down: %v", err)
		}
	}
	reported := time.Now()
	if err := a.Report(ctx, Package, "npm:evil-mcp@1.0.0", "tool_description_instructions", "high", "a2"); err != nil {
		t.Fatal(err)
	}
	at := sb.wait(t, "npm:evil-mcp@1.0.0", true, 30*time.Second)
	t.Logf("with a node down, B took the new indicator after %v", at.Sub(reported))
	// an analyst's false verdict on A withdraws it fleet-wide
	if err := a.Withdraw(ctx, Destination, "127.0.0.1:45999", "false positive: the test's own listener"); err != nil {
		t.Fatal(err)
	}
	if e, err := a.ioc.Get(ctx, KeyOf(Destination, "127.0.0.1:45999")); err == nil {
		t.Logf("after the withdrawal: %s", e.Value())
	} else {
		t.Logf("after the withdrawal: %v", err)
	}
	sb.wait(t, "127.0.0.1:45999", false, 5*time.Second)
	sc.wait(t, "127.0.0.1:45999", false, 5*time.Second)
	all, err := All(ctx, connect(t, urls[2]))
	if err != nil {
		t.Fatal(err)
	}
	keys := map[string]int{}
	for _, in := range all {
		keys[in.Type+" "+in.Value]++
	}
	if len(all) != 3 || keys["destination 127.0.0.1:45999"] != 1 {
		t.Fatalf("indicators in the bucket: %v", keys)
	}
	invs, err := Inventories(ctx, connect(t, urls[0]))
	if err != nil || len(invs) != 3 {
		t.Fatalf("inventories: %d %v", len(invs), err)
	}
}

func connect(t testing.TB, url string) *nats.Conn {
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	return nc
}

// BenchmarkPropagation: a report on one host to the watch of another, on
// a three-node cluster (p50 and p99 over the runs).
func BenchmarkPropagation(b *testing.B) {
	_, urls := cluster(b)
	a := member(b, "host-a", urls, 0, Trust{})
	c := member(b, "host-c", urls, 2, Trust{})
	sc := watch(b, c)
	var lags []time.Duration
	b.ResetTimer()
	for i := range b.N {
		v := fmt.Sprintf("10.0.%d.%d:443", i/250, i%250)
		start := time.Now()
		if err := a.Report(context.Background(), Destination, v, "r", "high", ""); err != nil {
			b.Fatal(err)
		}
		lags = append(lags, sc.wait(b, v, true, 5*time.Second).Sub(start))
	}
	slices.Sort(lags)
	b.ReportMetric(float64(lags[len(lags)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(lags[len(lags)*99/100].Microseconds())/1000, "p99-ms")
}

// BenchmarkIdleWatch: what watching the indicators costs an idle host (the
// process, which here also runs the three NATS nodes): CPU per second
// with and without the watch, and requests per second it makes.
func BenchmarkIdleWatch(b *testing.B) {
	_, urls := cluster(b)
	m := member(b, "host-a", urls, 0, Trust{})
	cpu := func() time.Duration {
		var ru syscall.Rusage
		_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
		return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	const span = 5 * time.Second
	measure := func() (time.Duration, uint64) {
		c0, r0 := cpu(), m.nc.Stats().OutMsgs
		time.Sleep(span)
		return cpu() - c0, m.nc.Stats().OutMsgs - r0
	}
	for range b.N {
		idle, _ := measure()
		ctx, cancel := context.WithCancel(context.Background())
		if err := m.Watch(ctx, func(Change) {}); err != nil {
			b.Fatal(err)
		}
		watching, msgs := measure()
		cancel()
		b.ReportMetric(float64(idle.Microseconds())/span.Seconds()/1000, "idle-cpu-ms/s")
		b.ReportMetric(float64(watching.Microseconds())/span.Seconds()/1000, "watching-cpu-ms/s")
		b.ReportMetric(float64(msgs)/span.Seconds(), "requests/s")
	}
}

// Two hosts' learned profiles of one server merge into one summary (the
// union of their sets); a third host gets it from its watch.
func TestSharedBaselines(t *testing.T) {
	_, urls := cluster(t)
	a := member(t, "host-a", urls, 0, Trust{})
	b := member(t, "host-b", urls, 1, Trust{})
	c := member(t, "host-c", urls, 2, Trust{})
	ctx := context.Background()
	got := make(chan correlate.Summary, 16)
	if err := c.WatchBaselines(ctx, func(sm correlate.Summary) { got <- sm }); err != nil {
		t.Fatal(err)
	}
	sa := correlate.Summary{Server: "npm:notes", Tool: "read", Events: 5, Types: map[string]int{"open": 5}, Paths: map[string]int{"/srv/notes": 5}}
	sb := correlate.Summary{Server: "npm:notes", Tool: "read", Events: 3, Types: map[string]int{"open": 2, "connect": 1}, Dests: map[string]int{"class:private:5432": 1}}
	if err := a.ShareBaselines(ctx, []correlate.Summary{sa}); err != nil {
		t.Fatal(err)
	}
	if err := b.ShareBaselines(ctx, []correlate.Summary{sb}); err != nil {
		t.Fatal(err)
	}
	if err := a.ShareBaselines(ctx, []correlate.Summary{sa}); err != nil || a.Shared.Load() != 1 {
		t.Fatalf("an unchanged summary written again: %v %d", err, a.Shared.Load())
	}
	deadline := time.After(5 * time.Second)
	for {
		select {
		case sm := <-got:
			if len(sm.Hosts) == 2 && sm.Types["connect"] == 1 && sm.Types["open"] == 5 && sm.Paths["/srv/notes"] == 5 && sm.Dests["class:private:5432"] == 1 {
				return
			}
		case <-deadline:
			t.Fatal("the merged summary never reached host C")
		}
	}
}
