// Package scan judges the MCP servers that clients' configuration files
// name, before (or without) running them: where the files are, what each
// entry says (static findings: unpinned or vulnerable packages, secrets,
// plain HTTP, root, shell strings), and what the servers' tool definitions
// say once listed (instructions for the model, hidden text, shadowing,
// collisions). Running the servers under the sensor is the command's job;
// this package judges what it is given and writes text, JSON and SARIF.
package scan

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/BurntSushi/toml"
	"github.com/tailscale/hujson"
)

// Entry is one server of one client's configuration.
type Entry struct {
	Client  string            `json:"client"`
	File    string            `json:"file"`
	Line    int               `json:"line,omitempty"` // where its name is written
	Name    string            `json:"name"`
	Command string            `json:"command,omitempty"`
	Args    []string          `json:"args,omitempty"`
	Env     map[string]string `json:"env,omitempty"`
	URL     string            `json:"url,omitempty"`
	Headers map[string]string `json:"headers,omitempty"`
	Cwd     string            `json:"cwd,omitempty"`
	// Project is the project a Claude Code entry belongs to (its
	// ~/.claude.json "projects" key), or the directory of a project file.
	Project string `json:"project,omitempty"`
}

// Stdio says the entry launches a process (rather than naming a URL).
func (e Entry) Stdio() bool { return e.Command != "" }

// Source is a configuration file of a client.
type Source struct {
	Client string
	Path   string
	// Project is the directory of a project's file (.mcp.json, ...).
	Project string
}

// Known lists the configuration files the clients keep under home, and
// the project files in dir (the current directory), that exist.
func Known(home, dir string) []Source {
	cands := []Source{
		{Client: "claude-desktop", Path: filepath.Join(home, ".config/Claude/claude_desktop_config.json")},
		{Client: "claude-desktop", Path: filepath.Join(home, "Library/Application Support/Claude/claude_desktop_config.json")},
		{Client: "claude-code", Path: filepath.Join(home, ".claude.json")},
		{Client: "claude-code", Path: filepath.Join(home, ".claude/settings.json")},
		{Client: "cursor", Path: filepath.Join(home, ".cursor/mcp.json")},
		{Client: "windsurf", Path: filepath.Join(home, ".codeium/windsurf/mcp_config.json")},
		{Client: "vscode", Path: filepath.Join(home, ".config/Code/User/mcp.json")},
		{Client: "vscode", Path: filepath.Join(home, ".config/Code/User/settings.json")},
		{Client: "gemini-cli", Path: filepath.Join(home, ".gemini/settings.json")},
		{Client: "codex", Path: filepath.Join(home, ".codex/config.toml")},
		{Client: "zed", Path: filepath.Join(home, ".config/zed/settings.json")},
	}
	if dir != "" {
		cands = append(cands,
			Source{"claude-code", filepath.Join(dir, ".mcp.json"), dir},
			Source{"cursor", filepath.Join(dir, ".cursor/mcp.json"), dir},
			Source{"vscode", filepath.Join(dir, ".vscode/mcp.json"), dir},
			Source{"gemini-cli", filepath.Join(dir, ".gemini/settings.json"), dir})
	}
	var out []Source
	seen := map[string]bool{}
	for _, c := range cands {
		if st, err := os.Stat(c.Path); err == nil && st.Mode().IsRegular() && !seen[c.Path] {
			seen[c.Path] = true
			out = append(out, c)
		}
	}
	return out
}

// Guess names the client of a file given by hand from its name.
func Guess(path string) string {
	switch b := filepath.Base(path); {
	case b == "claude_desktop_config.json":
		return "claude-desktop"
	case b == ".claude.json" || b == ".mcp.json":
		return "claude-code"
	case strings.HasSuffix(b, ".toml"):
		return "codex"
	case strings.Contains(path, ".vscode") || strings.Contains(path, "/Code/"):
		return "vscode"
	case strings.Contains(path, ".cursor"):
		return "cursor"
	case strings.Contains(path, "windsurf"):
		return "windsurf"
	case strings.Contains(path, ".gemini"):
		return "gemini-cli"
	}
	return "file"
}

// rawServer is a server entry as the JSON clients write it.
type rawServer struct {
	Command   string            `json:"command" toml:"command"`
	Args      []string          `json:"args" toml:"args"`
	Env       map[string]string `json:"env" toml:"env"`
	URL       string            `json:"url" toml:"url"`
	ServerURL string            `json:"serverUrl"` // windsurf
	HTTPURL   string            `json:"httpUrl"`   // gemini
	Headers   map[string]string `json:"headers" toml:"http_headers"`
	Cwd       string            `json:"cwd" toml:"cwd"`
}

// Parse reads the server entries of a client's configuration file. JSON
// with comments and trailing commas is accepted (VS Code writes them).
func Parse(src Source) ([]Entry, error) {
	b, err := os.ReadFile(src.Path)
	if err != nil {
		return nil, err
	}
	groups := map[string]map[string]rawServer{} // project ("" for the file's own) -> servers
	if strings.HasSuffix(src.Path, ".toml") {
		var doc struct {
			Servers map[string]rawServer `toml:"mcp_servers"`
		}
		if _, err := toml.Decode(string(b), &doc); err != nil {
			return nil, fmt.Errorf("%s: %v", src.Path, err)
		}
		groups[""] = doc.Servers
	} else {
		std, err := hujson.Standardize(bytes.Clone(b))
		if err != nil {
			return nil, fmt.Errorf("%s: not JSON: %v", src.Path, err)
		}
		var doc struct {
			MCPServers     map[string]rawServer       `json:"mcpServers"`
			Servers        map[string]rawServer       `json:"servers"`         // vscode mcp.json
			ContextServers map[string]json.RawMessage `json:"context_servers"` // zed
			MCP            *struct {
				Servers map[string]rawServer `json:"servers"`
			} `json:"mcp"` // vscode settings.json
			Projects map[string]struct {
				MCPServers map[string]rawServer `json:"mcpServers"`
			} `json:"projects"` // claude code
		}
		if err := json.Unmarshal(std, &doc); err != nil {
			return nil, fmt.Errorf("%s: %v", src.Path, err)
		}
		own := map[string]rawServer{}
		for _, m := range []map[string]rawServer{doc.MCPServers, doc.Servers} {
			for k, v := range m {
				own[k] = v
			}
		}
		if doc.MCP != nil {
			for k, v := range doc.MCP.Servers {
				own[k] = v
			}
		}
		for k, raw := range doc.ContextServers {
			var z struct {
				Command json.RawMessage `json:"command"`
				rawServer
			}
			if json.Unmarshal(raw, &z) != nil {
				continue
			}
			// zed writes command as {path, args, env} or as a string
			var nested struct {
				Path string            `json:"path"`
				Args []string          `json:"args"`
				Env  map[string]string `json:"env"`
			}
			if json.Unmarshal(z.Command, &nested) == nil && nested.Path != "" {
				z.rawServer.Command, z.rawServer.Args, z.rawServer.Env = nested.Path, nested.Args, nested.Env
			} else {
				_ = json.Unmarshal(z.Command, &z.rawServer.Command)
			}
			own[k] = z.rawServer
		}
		groups[""] = own
		for p, v := range doc.Projects {
			groups[p] = v.MCPServers
		}
	}
	project := src.Project
	if project == "" && filepath.Base(src.Path) == ".mcp.json" {
		project = filepath.Dir(src.Path)
	}
	var out []Entry
	for p, servers := range groups {
		for name, r := range servers {
			e := Entry{Client: src.Client, File: src.Path, Name: name, Command: r.Command, Args: r.Args, Env: r.Env,
				URL: firstOf(r.URL, r.ServerURL, r.HTTPURL), Headers: r.Headers, Cwd: r.Cwd, Project: firstOf(p, project)}
			e.Line = lineOf(b, name)
			out = append(out, e)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Project != out[j].Project {
			return out[i].Project < out[j].Project
		}
		return out[i].Name < out[j].Name
	})
	return out, nil
}

func firstOf(s ...string) string {
	for _, x := range s {
		if x != "" {
			return x
		}
	}
	return ""
}

// lineOf is the line where a server's name is first written as a key.
func lineOf(b []byte, name string) int {
	for _, pat := range []string{`"` + name + `"`, "mcp_servers." + name, "mcp_servers.\"" + name} {
		if i := bytes.Index(b, []byte(pat)); i >= 0 {
			return 1 + bytes.Count(b[:i], []byte("\n"))
		}
	}
	return 0
}
