package e2e

import (
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/mcpsec/sensor/internal/testutil"
)

// TestTraceInOrder: two servers writing 15,000 messages/s each while
// short-lived processes come and go put the payload reader tens of ms
// behind the effects on a small machine; the trace still comes out in time
// order, with no event counted late. With the former 20 ms ordering window
// this test fails (2,007 events out of order in one run).
func TestTraceInOrder(t *testing.T) {
	testutil.RequireBPF(t)
	flood := testutil.Binary(t, "./internal/testservers/flood")
	out := filepath.Join(t.TempDir(), "trace.jsonl")
	script := flood + " -n 30000 -rate 15000 & " + flood + " -n 30000 -rate 15000 & " +
		"for i in $(seq 1 2000); do cat /etc/hostname >/dev/null; done; wait"
	cmd := exec.Command(bin(t, "sensor"), "trace", "-o", "json", "--out", out, "--no-rules", "--", "/bin/sh", "-c", script)
	cmd.Stdout = nil // the floods' messages go nowhere
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%v\n%.2000s", err, b)
	}
	lines := readTrace(t, out)
	var last time.Time
	var late, msgs int
	for _, l := range lines {
		k := l.str("kind")
		if k != "message" && k != "effect" {
			continue
		}
		if k == "message" {
			msgs++
		}
		ts, _ := time.Parse(time.RFC3339Nano, l.str("ts"))
		if ts.Before(last) {
			if late++; late <= 3 {
				t.Errorf("%s at %s printed after %s", k, ts.Format(time.RFC3339Nano), last.Format(time.RFC3339Nano))
			}
			continue
		}
		last = ts
	}
	st := stats(t, lines)
	if msgs != 60000 || st.num("drops") != 0 {
		t.Fatalf("%d messages of 60000, %v drops: the load was not captured whole", msgs, st["drops"])
	}
	if late != 0 || st.num("order_late") != 0 {
		t.Errorf("%d events out of order in the trace, order_late %v", late, st["order_late"])
	}
}
