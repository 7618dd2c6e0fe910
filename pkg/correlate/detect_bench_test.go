package correlate

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/mcpsec/sensor/pkg/decode"
)

// resultText is ordinary tool output of about n bytes: prose, a few
// identifiers, addresses and links, as a ticket or a page would hold.
func resultText(n int) string {
	var b strings.Builder
	for i := 0; b.Len() < n; i++ {
		fmt.Fprintf(&b, "Ticket ORD-%d-%05d was updated by agent%d@support.example.com on 2026-11-%02d. ", 2026, i, i%7, i%28+1)
		b.WriteString("The customer reports that the export job fails after the upgrade; see https://docs.example.com/exports/errors")
		fmt.Fprintf(&b, "?code=E%04d for details. Please check the logs and reply within two days.\n", i)
	}
	return b.String()[:n]
}

// BenchmarkResult: one tool result through the correlator with the shipped
// rules: content inspection, the flow index and the message rules.
func BenchmarkResult(b *testing.B) {
	for _, n := range []int{200, 4 << 10, 64 << 10} {
		b.Run(sizeName(n), func(b *testing.B) {
			c := New(shippedRules(b), Options{})
			res, _ := json.Marshal(map[string]any{"content": []any{map[string]any{"type": "text", "text": resultText(n)}}})
			b.SetBytes(int64(len(res)))
			b.ReportAllocs()
			var out []*Alert
			for i := 0; b.Loop(); i++ {
				id := json.RawMessage(itoa(i))
				c.Event(&decode.Message{Kind: "message", Time: t0.Add(time.Duration(i) * time.Millisecond), Proc: proc(100), Direction: "in", Session: "s",
					Type: "request", Method: "tools/call", ID: id, Tool: "get_ticket", Arguments: json.RawMessage(`{"id":"42"}`)}, out[:0])
				out = c.Event(&decode.Message{Kind: "message", Time: t0.Add(time.Duration(i)*time.Millisecond + 1), Proc: proc(100), Direction: "out", Session: "s",
					Type: "response", ID: id, Result: res, Request: &decode.RequestRef{Method: "tools/call", Tool: "get_ticket"}}, out[:0])
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "results/s")
		})
	}
}

// BenchmarkFlowIndex: indexing a result's values, and looking a call's
// arguments up, alone.
func BenchmarkFlowIndex(b *testing.B) {
	for _, n := range []int{200, 4 << 10, 64 << 10} {
		b.Run(sizeName(n), func(b *testing.B) {
			f := newFlows()
			strs := []string{resultText(n)}
			args := []string{"please send ORD-2026-00000 to agent0@support.example.com", "body text"}
			b.SetBytes(int64(n))
			b.ReportAllocs()
			var hits []flowHit
			for b.Loop() {
				f.result("c", strs, flowOrigin{server: "s", tool: "t"})
				hits = f.request("c", args, hits[:0])
			}
			if len(hits) == 0 {
				b.Fatal("no flow found")
			}
		})
	}
}

func sizeName(n int) string {
	if n >= 1<<10 {
		return itoa(n>>10) + "KiB"
	}
	return itoa(n) + "B"
}
