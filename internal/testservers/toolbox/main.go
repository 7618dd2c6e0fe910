// Command toolbox is an MCP server for the sensor's end-to-end tests, built
// with the official Go SDK and served over stdio. Its tools do real things
// (read files under its root, dial TCP, return large results) so the trace
// can be checked against what really happened.
//
// Usage: toolbox [-http ADDR [-json] [-stateless] | -sse ADDR] ROOT
//
// With -http it serves the Streamable HTTP transport at /mcp (-json: JSON
// replies instead of SSE streams), with -sse the legacy HTTP+SSE transport
// of 2024-11-05 at /sse; it then prints "LISTENING host:port" on stdout.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

type readArgs struct {
	Path string `json:"path" jsonschema:"file to read, relative to the server's root"`
}

type connectArgs struct {
	Addr    string `json:"addr" jsonschema:"host:port to dial over TCP"`
	Payload string `json:"payload" jsonschema:"bytes to send"`
}

type bigArgs struct {
	Bytes int `json:"bytes" jsonschema:"size of the text to return"`
}

type echoArgs struct {
	Text string `json:"text"`
}

type sleepArgs struct {
	Ms int `json:"ms"`
}

func text(s string) *mcp.CallToolResult {
	return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: s}}}
}

func main() {
	httpAddr := flag.String("http", "", "serve Streamable HTTP at /mcp on this address")
	sseAddr := flag.String("sse", "", "serve the legacy HTTP+SSE transport at /sse on this address")
	jsonReplies := flag.Bool("json", false, "Streamable HTTP: answer POSTs with application/json")
	stateless := flag.Bool("stateless", false, "Streamable HTTP: no sessions")
	flag.Parse()
	root := "."
	if flag.NArg() > 0 {
		root = flag.Arg(0)
	}
	s := newServer(root)
	switch {
	case *httpAddr != "":
		h := mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return s },
			&mcp.StreamableHTTPOptions{JSONResponse: *jsonReplies, Stateless: *stateless})
		serve(*httpAddr, "/mcp", h)
	case *sseAddr != "":
		serve(*sseAddr, "/sse", mcp.NewSSEHandler(func(*http.Request) *mcp.Server { return s }, nil))
	default:
		if err := s.Run(context.Background(), &mcp.StdioTransport{}); err != nil {
			log.Printf("toolbox: %v", err)
		}
	}
}

func serve(addr, path string, h http.Handler) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		log.Fatalf("toolbox: %v", err)
	}
	mux := http.NewServeMux()
	mux.Handle(path, h)
	fmt.Printf("LISTENING %s\n", ln.Addr())
	log.Fatal(http.Serve(ln, mux))
}

func newServer(root string) *mcp.Server {
	s := mcp.NewServer(&mcp.Implementation{Name: "toolbox", Version: "1.0.0"}, nil)
	mcp.AddTool(s, &mcp.Tool{Name: "read_file", Description: "Read a file under the root"},
		func(ctx context.Context, _ *mcp.CallToolRequest, a readArgs) (*mcp.CallToolResult, any, error) {
			b, err := os.ReadFile(filepath.Join(root, a.Path))
			if err != nil {
				return nil, nil, err
			}
			return text(string(b)), nil, nil
		})
	mcp.AddTool(s, &mcp.Tool{Name: "connect", Description: "Send bytes to a TCP address and return the reply"},
		func(ctx context.Context, _ *mcp.CallToolRequest, a connectArgs) (*mcp.CallToolResult, any, error) {
			c, err := net.DialTimeout("tcp", a.Addr, 5*time.Second)
			if err != nil {
				return nil, nil, err
			}
			defer c.Close()
			if _, err := io.WriteString(c, a.Payload); err != nil {
				return nil, nil, err
			}
			_ = c.(*net.TCPConn).CloseWrite()
			_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
			reply, _ := io.ReadAll(io.LimitReader(c, 4096))
			return text(fmt.Sprintf("sent %d bytes, got %q", len(a.Payload), reply)), nil, nil
		})
	mcp.AddTool(s, &mcp.Tool{Name: "big", Description: "Return a text of the given size"},
		func(ctx context.Context, _ *mcp.CallToolRequest, a bigArgs) (*mcp.CallToolResult, any, error) {
			return text(strings.Repeat("x", a.Bytes)), nil, nil
		})
	mcp.AddTool(s, &mcp.Tool{Name: "echo", Description: "Return the text"},
		func(ctx context.Context, _ *mcp.CallToolRequest, a echoArgs) (*mcp.CallToolResult, any, error) {
			return text(a.Text), nil, nil
		})
	mcp.AddTool(s, &mcp.Tool{Name: "sleep", Description: "Wait, then answer"},
		func(ctx context.Context, _ *mcp.CallToolRequest, a sleepArgs) (*mcp.CallToolResult, any, error) {
			select {
			case <-time.After(time.Duration(a.Ms) * time.Millisecond):
			case <-ctx.Done():
				return nil, nil, ctx.Err()
			}
			return text("slept"), nil, nil
		})
	mcp.AddTool(s, &mcp.Tool{Name: "noise", Description: "Write a line that is not JSON to stdout (a misbehaving server), then answer"},
		func(ctx context.Context, _ *mcp.CallToolRequest, a echoArgs) (*mcp.CallToolResult, any, error) {
			fmt.Fprintln(os.Stdout, "debug: this line is not JSON-RPC")
			return text("noisy"), nil, nil
		})
	return s
}
