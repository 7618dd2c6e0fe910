package gateway

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

type none struct{}

// upstream is a real Streamable HTTP MCP server (the Go SDK's).
func upstream(t *testing.T, jsonResponse bool) *httptest.Server {
	s := mcp.NewServer(&mcp.Implementation{Name: "up", Version: "1"}, nil)
	text := func(s string) *mcp.CallToolResult {
		return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: s}}}
	}
	mcp.AddTool(s, &mcp.Tool{Name: "read_file", Description: "Read a file"}, func(context.Context, *mcp.CallToolRequest, none) (*mcp.CallToolResult, any, error) {
		return text("contents"), nil, nil
	})
	mcp.AddTool(s, &mcp.Tool{Name: "write_file", Description: "Write a file"}, func(context.Context, *mcp.CallToolRequest, none) (*mcp.CallToolResult, any, error) {
		return text("written"), nil, nil
	})
	mcp.AddTool(s, &mcp.Tool{Name: "get_config", Description: "Get the config"}, func(context.Context, *mcp.CallToolRequest, none) (*mcp.CallToolResult, any, error) {
		return text("aws_secret: AKIAIOSFODNN7EXAMPLE"), nil, nil
	})
	h := mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return s }, &mcp.StreamableHTTPOptions{JSONResponse: jsonResponse})
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv
}

type bearer struct {
	tok string
	rt  http.RoundTripper
}

func (b bearer) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+b.tok)
	return b.rt.RoundTrip(r)
}

func front(t *testing.T, up *httptest.Server) *httptest.Server {
	set, err := Parse("p.yaml", []byte("version: h1\npolicies:\n  - id: http\n    servers: [\"http:**\"]\n    tools: {deny: [write_file]}\n"))
	if err != nil {
		t.Fatal(err)
	}
	u, _ := url.Parse(up.URL)
	h := NewHTTP(HTTPOptions{Options: Options{Policy: set, Server: func() (Server, bool) { return Server{Key: "http:" + up.URL}, true }},
		Upstream: u, Origins: []string{"https://app.example"}, Tokens: map[string]string{"tok-a": "alice", "tok-b": "bob"}})
	gw := httptest.NewServer(h)
	t.Cleanup(gw.Close)
	return gw
}

// TestHTTPGateway: the policy holds in front of a Streamable HTTP server,
// with JSON and with event-stream answers: a denied tool is not listed and
// its call refused, a secret in a result redacted; a foreign Origin, a
// missing token and a session replayed by another principal are refused.
func TestHTTPGateway(t *testing.T) {
	for _, jsonResp := range []bool{true, false} {
		name := "sse"
		if jsonResp {
			name = "json"
		}
		t.Run(name, func(t *testing.T) {
			gw := front(t, upstream(t, jsonResp))
			ctx := context.Background()
			c := mcp.NewClient(&mcp.Implementation{Name: "c", Version: "1"}, nil)
			s, err := c.Connect(ctx, &mcp.StreamableClientTransport{Endpoint: gw.URL, HTTPClient: &http.Client{Transport: bearer{"tok-a", http.DefaultTransport}}}, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			tools, err := s.ListTools(ctx, nil)
			if err != nil {
				t.Fatal(err)
			}
			var names []string
			for _, tl := range tools.Tools {
				names = append(names, tl.Name)
			}
			if strings.Contains(strings.Join(names, " "), "write_file") || !strings.Contains(strings.Join(names, " "), "read_file") {
				t.Fatalf("tools through the gateway: %v", names)
			}
			if _, err := s.CallTool(ctx, &mcp.CallToolParams{Name: "write_file"}); err == nil || !strings.Contains(err.Error(), "policy http") {
				t.Fatalf("write_file: %v", err)
			}
			res, err := s.CallTool(ctx, &mcp.CallToolParams{Name: "get_config"})
			if err != nil {
				t.Fatal(err)
			}
			if txt := res.Content[0].(*mcp.TextContent).Text; strings.Contains(txt, "AKIA") {
				t.Fatalf("the secret passed: %q", txt)
			}
			if res, err := s.CallTool(ctx, &mcp.CallToolParams{Name: "read_file"}); err != nil || res.Content[0].(*mcp.TextContent).Text != "contents" {
				t.Fatalf("read_file: %v %v", res, err)
			}
			// another principal with alice's session
			post := func(tok, origin, sid string) int {
				req, _ := http.NewRequest("POST", gw.URL, strings.NewReader(`{"jsonrpc":"2.0","id":9,"method":"tools/call","params":{"name":"read_file"}}`))
				req.Header.Set("Content-Type", "application/json")
				req.Header.Set("Accept", "application/json, text/event-stream")
				if tok != "" {
					req.Header.Set("Authorization", "Bearer "+tok)
				}
				if origin != "" {
					req.Header.Set("Origin", origin)
				}
				req.Header.Set("Mcp-Session-Id", sid)
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				return resp.StatusCode
			}
			sid := s.ID()
			if code := post("tok-b", "", sid); code != http.StatusForbidden {
				t.Errorf("bob replaying alice's session: %d", code)
			}
			if code := post("tok-a", "https://evil.example", sid); code != http.StatusForbidden {
				t.Errorf("a foreign Origin: %d", code)
			}
			if code := post("", "", sid); code != http.StatusUnauthorized {
				t.Errorf("no token: %d", code)
			}
			if code := post("tok-a", "https://app.example", sid); code != http.StatusOK {
				t.Errorf("alice, her session, an allowed Origin: %d", code)
			}
		})
	}
}
