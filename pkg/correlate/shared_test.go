package correlate

import (
	"testing"
	"time"

	"github.com/mcpsec/sensor/pkg/decode"
)

// A host that learned a server shares it as a summary (destinations as
// classes); another host, seeded with it, starts learned: what the fleet
// saw is quiet from the first event, a novel effect is not.
func TestSharedBaseline(t *testing.T) {
	a, _ := OpenStore(t.TempDir())
	ca := New(nil, Options{Store: a, Learn: time.Minute})
	ca.Event(&decode.Effect{Kind: "effect", Time: t0, Proc: proc(100), Type: "exec", Path: "/usr/bin/srv", Argv: []string{"srv"}}, nil)
	ca.Event(callReq(time.Second, "s", 1, "read_file", `{"path":"a"}`), nil)
	ca.Event(open(2*time.Second, "/srv/data/a.txt"), nil)
	ca.Event(&decode.Effect{Kind: "effect", Time: t0.Add(3 * time.Second), Proc: proc(101), Type: "connect", Addr: "10.1.2.3:5432"}, nil)
	ca.Event(callResp(4*time.Second, "s", 1, "read_file"), nil)
	if got := a.Learned(time.Minute, t0.Add(30*time.Second)); len(got) != 0 {
		t.Fatalf("shared before its window ended: %+v", got)
	}
	sums := a.Learned(time.Minute, t0.Add(2*time.Minute))
	var rf *Summary
	for i := range sums {
		if sums[i].Tool == "read_file" {
			rf = &sums[i]
		}
	}
	if rf == nil || rf.Dests["class:private:5432"] != 1 || rf.Paths["/srv/data"] != 1 {
		t.Fatalf("summaries: %+v", sums)
	}
	for d := range rf.Dests {
		if d == "10.1.2.3:5432" {
			t.Fatal("an address left the host")
		}
	}
	// host B, seeded: no learning window
	b, _ := OpenStore(t.TempDir())
	for _, sm := range sums {
		sm.Hosts = []string{"host-a"}
		if !b.Seed(sm) {
			t.Fatal("not seeded")
		}
	}
	if b.Seed(sums[0]) {
		t.Fatal("a profile of its own is not replaced")
	}
	cb := New(nil, Options{Store: b, Learn: time.Minute})
	cb.Event(&decode.Effect{Kind: "effect", Time: t0, Proc: proc(100), Type: "exec", Path: "/usr/bin/srv", Argv: []string{"srv"}}, nil)
	cb.Event(callReq(time.Second, "s", 1, "read_file", `{"path":"b"}`), nil)
	if out := cb.Event(open(2*time.Second, "/srv/data/b.txt"), nil); len(out) != 0 {
		t.Fatalf("a path the fleet saw: %+v", out)
	}
	if out := cb.Event(&decode.Effect{Kind: "effect", Time: t0.Add(3 * time.Second), Proc: proc(101), Type: "connect", Addr: "10.9.9.9:5432"}, nil); len(out) != 0 {
		t.Fatalf("a destination of a class the fleet saw: %+v", out)
	}
	out := cb.Event(&decode.Effect{Kind: "effect", Time: t0.Add(4 * time.Second), Proc: proc(101), Type: "connect", Addr: "203.0.113.9:443"}, nil)
	if len(out) != 1 || out[0].Rule != "baseline_novel_dest" {
		t.Fatalf("a novel destination on the seeded host, from its first minute: %+v", out)
	}
}
