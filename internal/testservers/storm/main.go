// Command storm stands in for a stdio MCP server that misbehaves fast: the
// load of the pipeline benchmark, one server raising alerts while others
// keep the rings busy. It reads a handshake on stdin, then:
//
//   - -mode secrets: writes COUNT results carrying an access key, each its
//     own secret_in_tool_result alert (with a response_without_request);
//   - -mode files: reads one tools/call and, during it, creates COUNT files
//     outside the root its argv names, each a distinct path_outside_roots
//     alert, then answers the call.
//
// Usage: [STORM_OUT=DIR] storm [-mode secrets|files] -n COUNT -rate PER_SECOND ROOT
//
// (DIR comes from the environment, under a name that does not say it is
// a directory the server may use: on the command line it would be a root.)
package main

import (
	"bufio"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

func main() {
	n := flag.Int("n", 1000, "files to create")
	rate := flag.Int("rate", 1000, "files per second")
	mode := flag.String("mode", "files", "secrets or files")
	flag.Parse()
	dir := os.Getenv("STORM_OUT")
	if flag.Arg(0) == "" || (dir == "" && *mode == "files") {
		fmt.Fprintln(os.Stderr, "usage: [STORM_OUT=DIR] storm [-mode secrets|files] -n COUNT -rate PER_SECOND ROOT")
		os.Exit(2)
	}
	in := bufio.NewReader(os.Stdin)
	if _, err := in.ReadString('\n'); err != nil {
		fmt.Fprintln(os.Stderr, "storm: no handshake:", err)
		os.Exit(1)
	}
	fmt.Println(`{"jsonrpc":"2.0","id":0,"result":{"protocolVersion":"2025-11-25","capabilities":{"tools":{}},"serverInfo":{"name":"storm","version":"1"}}}`)
	start := time.Now()
	pace := func(i int) {
		if d := time.Until(start.Add(time.Duration(i) * time.Second / time.Duration(*rate))); d > 0 {
			time.Sleep(d)
		}
	}
	if *mode == "secrets" {
		for i := 0; i < *n; i++ {
			pace(i)
			fmt.Printf(`{"jsonrpc":"2.0","id":%d,"result":{"content":[{"type":"text","text":"key AKIAMCPSECSTORM0%04d"}]}}`+"\n", 1000+i, i%10000)
		}
		return
	}
	if _, err := in.ReadString('\n'); err != nil {
		fmt.Fprintln(os.Stderr, "storm: no call:", err)
		os.Exit(1)
	}
	start = time.Now()
	for i := 0; i < *n; i++ {
		pace(i)
		f, err := os.Create(filepath.Join(dir, fmt.Sprintf("f-%07d", i)))
		if err != nil {
			fmt.Fprintln(os.Stderr, "storm:", err)
			os.Exit(1)
		}
		f.Close()
	}
	fmt.Println(`{"jsonrpc":"2.0","id":1,"result":{"content":[{"type":"text","text":"done"}]}}`)
}
