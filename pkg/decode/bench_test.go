package decode

import (
	"fmt"
	"strings"
	"testing"

	"github.com/mcpsec/sensor/pkg/loader"
)

// BenchmarkDecodeStdio: a stdio conversation through the whole decoder, one
// round (a tools/call request and its response, the response in 16 KiB
// chunks as the kernel sends them) per iteration. Reports bytes/s (of
// JSON-RPC), allocations per round (two messages), and messages per second.
func BenchmarkDecodeStdio(b *testing.B) {
	for _, size := range []int{200, 4 << 10, 64 << 10} {
		b.Run(fmt.Sprintf("result=%d", size), func(b *testing.B) {
			const rounds = 256
			var perRound [rounds][][]byte
			var off [2]uint64
			total := 0
			for i := 0; i < rounds; i++ {
				req := fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":"tools/call","params":{"name":"read_file","arguments":{"path":"notes/%d.txt"}}}`+"\n", i, i)
				resp := fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"result":{"content":[{"type":"text","text":%q}]}}`+"\n", i, strings.Repeat("a", size))
				perRound[i] = append(perRound[i], chunk(7, 1, loader.DirIn, loader.FilePipe, 0, off[0], req))
				for j := 0; j < len(resp); j += 16 << 10 {
					end := min(j+16<<10, len(resp))
					perRound[i] = append(perRound[i], chunk(7, 2, loader.DirOut, loader.FilePipe, 1, off[1]+uint64(j), resp[j:end]))
				}
				off[0] += uint64(len(req))
				off[1] += uint64(len(resp))
				total += len(req) + len(resp)
			}
			b.SetBytes(int64(total / rounds))
			b.ReportAllocs()
			d := NewDecoder(Options{})
			msgs := 0
			emit := func(Event) { msgs++ }
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				r := i % rounds
				if r == 0 && i > 0 {
					b.StopTimer()
					d = NewDecoder(Options{}) // the fixture's offsets start over
					b.StartTimer()
				}
				for _, rec := range perRound[r] {
					if err := d.Record(rec, emit); err != nil {
						b.Fatal(err)
					}
				}
			}
			b.StopTimer()
			if msgs != 2*b.N {
				b.Fatalf("decoded %d messages, want %d", msgs, 2*b.N)
			}
			b.ReportMetric(float64(msgs)/b.Elapsed().Seconds(), "msgs/s")
		})
	}
}
