package identity

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func write(t *testing.T, path, body string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
}

// npmTree lays out a package as npx and npm install leave it.
func npmTree(t *testing.T, name, version string) (root, bin string) {
	root = t.TempDir()
	pkg := filepath.Join(root, "node_modules", filepath.FromSlash(name))
	write(t, filepath.Join(pkg, "package.json"), `{"name":"`+name+`","version":"`+version+`","bin":{"srv":"dist/index.js"}}`)
	write(t, filepath.Join(pkg, "dist", "index.js"), "#!/usr/bin/env node\n")
	write(t, filepath.Join(pkg, "dist", "lib", "package.json"), `{"type":"module"}`) // no name: not the package
	bin = filepath.Join(root, "node_modules", ".bin", "srv")
	if err := os.MkdirAll(filepath.Dir(bin), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join("..", filepath.FromSlash(name), "dist", "index.js"), bin); err != nil {
		t.Fatal(err)
	}
	return root, bin
}

func TestNodeIdentity(t *testing.T) {
	root, bin := npmTree(t, "@modelcontextprotocol/server-filesystem", "2025.3.28")
	want := Identity{Kind: "npm", Name: "@modelcontextprotocol/server-filesystem", Version: "2025.3.28"}
	// the same package, launched three ways, is one identity
	for _, a := range []Attrs{
		{Exe: "/usr/bin/node", Argv: []string{"node", bin, "/srv/a"}},
		{Exe: "/usr/local/bin/node", Argv: []string{"node", "--no-warnings", "node_modules/.bin/srv", "/srv/b"}, Cwd: root},
		{Exe: "/usr/bin/node", Argv: []string{"node", "-r", "dotenv/config", filepath.Join(root, "node_modules/@modelcontextprotocol/server-filesystem/dist/index.js")}},
	} {
		got := Classify(a)
		if got.Kind != want.Kind || got.Name != want.Name || got.Version != want.Version {
			t.Errorf("%v: %+v, want %+v", a.Argv, got, want)
		}
		if got.Key() != "npm:@modelcontextprotocol/server-filesystem" || got.String() != "@modelcontextprotocol/server-filesystem@2025.3.28" {
			t.Errorf("key %q, name %q", got.Key(), got.String())
		}
	}
	// another package is another identity
	_, other := npmTree(t, "@modelcontextprotocol/server-memory", "0.6.3")
	if got := Classify(Attrs{Exe: "/usr/bin/node", Argv: []string{"node", other}}); got.Name != "@modelcontextprotocol/server-memory" {
		t.Errorf("memory server: %+v", got)
	}
	// a project of the user's (not in node_modules) is named by its path
	proj := t.TempDir()
	write(t, filepath.Join(proj, "package.json"), `{"name":"my-server","version":"1.0.0"}`)
	write(t, filepath.Join(proj, "index.js"), "console.log(1)\n")
	got := Classify(Attrs{Exe: "/usr/bin/node", Argv: []string{"node", "index.js"}, Cwd: proj})
	if got.Kind != "node" || got.Name != filepath.Join(proj, "index.js") || got.Hash == "" {
		t.Errorf("project: %+v", got)
	}
	if got := Classify(Attrs{Exe: "/usr/bin/node", Argv: []string{"node", "-e", "x()"}}); got.Kind != "node" || !strings.Contains(got.Name, "inline") {
		t.Errorf("node -e: %+v", got)
	}
}

func TestNpxIdentity(t *testing.T) {
	npm := t.TempDir()
	write(t, filepath.Join(npm, "lib", "node_modules", "npm", "package.json"), `{"name":"npm","version":"11.0.0"}`)
	write(t, filepath.Join(npm, "lib", "node_modules", "npm", "bin", "npx-cli.js"), "")
	cli := filepath.Join(npm, "lib", "node_modules", "npm", "bin", "npx-cli.js")
	got := Classify(Attrs{Exe: "/usr/bin/node", Argv: []string{"npx", cli, "-y", "@modelcontextprotocol/server-everything@2025.1.14", "stdio"}})
	if got.Kind != "npm" || got.Name != "@modelcontextprotocol/server-everything" || got.Version != "2025.1.14" {
		t.Errorf("npx: %+v", got)
	}
}

func TestPythonIdentity(t *testing.T) {
	venv := t.TempDir()
	sp := filepath.Join(venv, "lib", "python3.11", "site-packages")
	write(t, filepath.Join(sp, "mcp_server_fetch-2025.4.7.dist-info", "entry_points.txt"), "[console_scripts]\nmcp-server-fetch = mcp_server_fetch:main\n")
	write(t, filepath.Join(sp, "mcp_server_fetch-2025.4.7.dist-info", "RECORD"), "mcp_server_fetch/__init__.py,sha256=x,1\n")
	write(t, filepath.Join(sp, "mcp_server_fetch", "__init__.py"), "")
	write(t, filepath.Join(venv, "bin", "mcp-server-fetch"), "#!python\n")
	py := filepath.Join(venv, "bin", "python3")
	want := "mcp-server-fetch"
	for _, a := range []Attrs{
		{Exe: py, Argv: []string{py, filepath.Join(venv, "bin", "mcp-server-fetch")}}, // uvx, pipx: the console script
		{Exe: py, Argv: []string{py, "-m", "mcp_server_fetch"}},
	} {
		got := Classify(a)
		if got.Kind != "pypi" || got.Name != want || got.Version != "2025.4.7" {
			t.Errorf("%v: %+v", a.Argv, got)
		}
	}
	dir := t.TempDir()
	write(t, filepath.Join(dir, "server.py"), "print(1)\n")
	got := Classify(Attrs{Exe: "/usr/bin/python3.11", Argv: []string{"python3", "-u", "server.py"}, Cwd: dir})
	if got.Kind != "python" || got.Name != filepath.Join(dir, "server.py") || got.Hash == "" {
		t.Errorf("script: %+v", got)
	}
}

func TestGoAndBinaryIdentity(t *testing.T) {
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	got := Classify(Attrs{Exe: self, Argv: []string{self}})
	if got.Kind != "go" || !strings.HasPrefix(got.Name, "github.com/mcpsec/sensor/pkg/identity") || got.BuildID == "" {
		t.Errorf("go binary: %+v", got)
	}
	sh, _ := exec.LookPath("true")
	sh, _ = filepath.EvalSymlinks(sh)
	if got := Classify(Attrs{Exe: sh, Argv: []string{"true"}}); got.Kind != "binary" || got.Name != sh {
		t.Errorf("binary: %+v", got)
	}
}

func TestRootVars(t *testing.T) {
	for k, want := range map[string]bool{
		"ALLOWED_DIRECTORIES": true, "MCP_ROOTS": true, "WORKSPACE_DIR": true, "FILESYSTEM_ROOT": true, "DATA_DIR": true,
		"HOME": false, "PWD": false, "XDG_RUNTIME_DIR": false, "npm_config_prefix": false, "NVM_DIR": false,
		"STATE_DIRECTORY": false, "LOG_DIR": false, "SSL_CERT_DIR": false, "NODE_EXTRA_CA_CERTS": false, "CACHE_DIR": false, "PATH": false, "GOPATH": false, "TMPDIR": false,
	} {
		if rootVar(k) != want {
			t.Errorf("rootVar(%s) = %v", k, !want)
		}
	}
}
