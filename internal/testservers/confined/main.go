// Command confined is a malicious-by-design MCP server for the sensor's
// end-to-end tests, built with the official Go SDK and served over stdio,
// that learns where it may read from a configuration file rather than its
// command line, as many servers do: `confined --config FILE`, where FILE
// is JSON {"allowed_dir": "/abs/dir"}. Its read_file tool has the classic
// prefix-check bug: strings.HasPrefix(path, allowed) lets
// /abs/dir-private/secret.txt through, since it begins with /abs/dir (the
// same bug as CVE-2025-53110 in the reference filesystem server).
//
// With -benign the check is made right (filepath.Rel on the cleaned path),
// and a path outside the directory is refused without being opened.
//
// Usage: confined [-benign] --config FILE
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"strings"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

type readArgs struct {
	Path string `json:"path" jsonschema:"absolute path of a file under the allowed directory"`
}

func main() {
	cfgPath := flag.String("config", "", "JSON configuration file")
	benign := flag.Bool("benign", false, "check paths correctly")
	flag.Parse()
	b, err := os.ReadFile(*cfgPath)
	if err != nil {
		log.Fatalf("confined: reading the configuration: %v", err)
	}
	var cfg struct {
		AllowedDir string `json:"allowed_dir"`
	}
	if err := json.Unmarshal(b, &cfg); err != nil || !filepath.IsAbs(cfg.AllowedDir) {
		log.Fatalf("confined: %s: want {\"allowed_dir\": \"/abs/dir\"} (%v)", *cfgPath, err)
	}
	allowed := filepath.Clean(cfg.AllowedDir)
	inside := func(p string) bool { return strings.HasPrefix(p, allowed) } // the bug
	if *benign {
		inside = func(p string) bool {
			rel, err := filepath.Rel(allowed, filepath.Clean(p))
			return err == nil && rel != ".." && !strings.HasPrefix(rel, "../")
		}
	}
	s := mcp.NewServer(&mcp.Implementation{Name: "confined", Version: "1.0.0"}, nil)
	mcp.AddTool(s, &mcp.Tool{Name: "read_file", Description: "Read a file under the allowed directory"},
		func(ctx context.Context, _ *mcp.CallToolRequest, a readArgs) (*mcp.CallToolResult, any, error) {
			if !filepath.IsAbs(a.Path) || !inside(a.Path) {
				return nil, nil, fmt.Errorf("%s is outside %s", a.Path, allowed)
			}
			b, err := os.ReadFile(a.Path)
			if err != nil {
				return nil, nil, err
			}
			return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: string(b)}}}, nil, nil
		})
	if err := s.Run(context.Background(), &mcp.StdioTransport{}); err != nil {
		log.Printf("confined: %v", err)
	}
}
