package decode

import (
	"fmt"
	"strings"
	"testing"

	"github.com/mcpsec/sensor/pkg/wire"
)

// decodeFixture builds `rounds` rounds of a conversation on one transport:
// a tools/call request and its response, the response in 16 KiB chunks as
// the kernel sends them. It returns the records of each round and the
// JSON-RPC bytes per round.
func decodeFixture(transport string, size, rounds int) ([][][]byte, int) {
	per := make([][][]byte, rounds)
	var off [2]uint64
	total := 0
	ftype, fdIn, fdOut, ino := wire.FilePipe, uint32(0), uint32(1), [2]uint64{1, 2}
	if transport != "stdio" {
		ftype, fdIn, fdOut, ino = wire.FileSock, 5, 5, [2]uint64{3, 3}
	}
	for i := 0; i < rounds; i++ {
		req := fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":"tools/call","params":{"name":"read_file","arguments":{"path":"notes/%d.txt"}}}`, i, i)
		resp := fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"result":{"content":[{"type":"text","text":%q}]}}`, i, strings.Repeat("a", size))
		total += len(req) + len(resp)
		switch transport {
		case "stdio":
			req, resp = req+"\n", resp+"\n"
		case "http-json":
			req, resp = post("session-1", req, "MCP-Protocol-Version: 2025-11-25"), jsonResp("", resp)
		case "http-sse":
			req, resp = post("session-1", req, "MCP-Protocol-Version: 2025-11-25"), sseResp("event: message\nid: "+fmt.Sprint(i)+"\ndata: "+resp+"\n\n")
		}
		per[i] = append(per[i], chunk(7, ino[0], wire.DirIn, ftype, fdIn, off[0], req))
		for j := 0; j < len(resp); j += 16 << 10 {
			end := min(j+16<<10, len(resp))
			per[i] = append(per[i], chunk(7, ino[1], wire.DirOut, ftype, fdOut, off[1]+uint64(j), resp[j:end]))
		}
		off[0] += uint64(len(req))
		off[1] += uint64(len(resp))
	}
	return per, total / rounds
}

// BenchmarkDecode: a conversation through the whole decoder, one round (a
// tools/call and its response) per iteration, on stdio and on Streamable
// HTTP with JSON and with SSE replies. Reports JSON-RPC bytes/s,
// allocations per round (two messages), and messages per second.
func BenchmarkDecode(b *testing.B) {
	for _, transport := range []string{"stdio", "http-json", "http-sse"} {
		for _, size := range []int{200, 4 << 10, 64 << 10} {
			b.Run(fmt.Sprintf("transport=%s/result=%d", transport, size), func(b *testing.B) {
				const rounds = 256
				perRound, bytesPerRound := decodeFixture(transport, size, rounds)
				b.SetBytes(int64(bytesPerRound))
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
}
