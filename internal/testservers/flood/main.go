// Command flood writes JSON-RPC notifications to stdout as fast as asked,
// one write per message like a real server: the load for the capture
// benchmark.
//
// With -handshake it first reads one line on stdin (an MCP initialize), so
// that the sensor discovers it as a server.
//
// Usage: flood -n COUNT [-rate PER_SECOND] [-size BYTES] [-handshake]
package main

import (
	"bufio"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"
)

func main() {
	n := flag.Int("n", 1000, "messages to write")
	rate := flag.Int("rate", 0, "messages per second (0: as fast as possible)")
	size := flag.Int("size", 200, "approximate bytes per message")
	handshake := flag.Bool("handshake", false, "read one line on stdin first")
	flag.Parse()
	if *handshake {
		if _, err := bufio.NewReader(os.Stdin).ReadString('\n'); err != nil {
			fmt.Fprintln(os.Stderr, "flood: no handshake:", err)
			os.Exit(1)
		}
	}
	pad := strings.Repeat("p", max(*size-100, 1))
	// one write(2) per message, as servers write them
	start := time.Now()
	for i := 0; i < *n; i++ {
		if *rate > 0 {
			due := start.Add(time.Duration(i) * time.Second / time.Duration(*rate))
			if d := time.Until(due); d > 0 {
				time.Sleep(d)
			}
		}
		msg := fmt.Sprintf(`{"jsonrpc":"2.0","method":"notifications/progress","params":{"progressToken":%d,"progress":%d,"message":"%s"}}`+"\n", i, i, pad)
		if _, err := os.Stdout.WriteString(msg); err != nil {
			fmt.Fprintln(os.Stderr, "flood:", err)
			os.Exit(1)
		}
	}
}
