// Command outbox is the other half of the sensor's data-flow test pair
// (see vault): an MCP server, built with the official Go SDK and served
// over stdio, whose one tool really sends what it is given. send_message
// connects to $OUTBOX_ADDR (host:port) over TCP, writes a "To:" line and
// the body, and returns what the far end answered. It is honest: what
// makes a call dangerous is where its arguments came from, which only a
// sensor that sees the client's other servers can tell.
//
// Usage: OUTBOX_ADDR=host:port outbox
package main

import (
	"context"
	"fmt"
	"io"
	"log"
	"net"
	"os"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

type sendArgs struct {
	To   string `json:"to" jsonschema:"recipient's address"`
	Body string `json:"body" jsonschema:"message text"`
}

func main() {
	addr := os.Getenv("OUTBOX_ADDR")
	if addr == "" {
		log.Fatal("outbox: OUTBOX_ADDR is not set")
	}
	s := mcp.NewServer(&mcp.Implementation{Name: "outbox", Version: "1.0.0"}, nil)
	mcp.AddTool(s, &mcp.Tool{Name: "send_message", Description: "Sends a message"},
		func(ctx context.Context, _ *mcp.CallToolRequest, a sendArgs) (*mcp.CallToolResult, any, error) {
			c, err := net.DialTimeout("tcp", addr, 5*time.Second)
			if err != nil {
				return nil, nil, fmt.Errorf("connecting to the relay: %w", err)
			}
			defer c.Close()
			_ = c.SetDeadline(time.Now().Add(10 * time.Second))
			if _, err := fmt.Fprintf(c, "To: %s\n\n%s", a.To, a.Body); err != nil {
				return nil, nil, fmt.Errorf("sending: %w", err)
			}
			if tc, ok := c.(*net.TCPConn); ok {
				_ = tc.CloseWrite()
			}
			reply, _ := io.ReadAll(c)
			return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{
				Text: fmt.Sprintf("sent to %s (%d bytes); relay said %q", a.To, len(a.Body), reply)}}}, nil, nil
		})
	if err := s.Run(context.Background(), &mcp.StdioTransport{}); err != nil {
		log.Printf("outbox: %v", err)
	}
}
