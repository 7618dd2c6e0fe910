package gateway

import (
	"io"
	"strconv"
	"strings"
	"testing"
)

// BenchmarkRoundTrip: the gateway's own work on one tools/call round trip
// (a 512-byte argument, a result of the given size): the request judged
// and passed, the result scanned and passed.
func BenchmarkRoundTrip(b *testing.B) {
	set, err := Parse("p.yaml", []byte(testPolicy))
	if err != nil {
		b.Fatal(err)
	}
	for _, n := range []int{200, 4 << 10, 64 << 10} {
		b.Run(strconv.Itoa(n)+"B", func(b *testing.B) {
			g := New(Options{Policy: set, Server: func() (Server, bool) { return Server{Key: "npm:@modelcontextprotocol/server-x"}, true }})
			g.toClient, g.toServer = io.Discard, io.Discard
			req := []byte(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"read_file","arguments":{"path":"/srv/` + strings.Repeat("a", 512) + `"}}}` + "\n")
			text := strings.Repeat("The export job finished; 3 files were written to the archive. ", n/32+1)[:n]
			resp := []byte(`{"jsonrpc":"2.0","id":1,"result":{"content":[{"type":"text","text":"` + text + `"}]}}` + "\n")
			b.SetBytes(int64(len(req) + len(resp)))
			b.ReportAllocs()
			for b.Loop() {
				g.fromClient(req, false)
				g.fromServer(resp, false)
			}
			if g.Stats.Allowed.Load() == 0 || g.Stats.Redacted.Load() != 0 {
				b.Fatalf("allowed %d redacted %d", g.Stats.Allowed.Load(), g.Stats.Redacted.Load())
			}
		})
	}
}
