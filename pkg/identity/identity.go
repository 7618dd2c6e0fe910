// Package identity says what an MCP server is and what it runs with. Its
// identity is what it runs, not its comm: the npm package and version of a
// node server, the Python distribution or script, the Go module and build
// id, or the executable itself; stable across restarts and launch styles
// (npx, a global install, node_modules/.bin, an absolute path). Its
// attributes (argv, working directory, owner, $HOME, the directories it was
// given) are read from /proc, the same whether the sensor launched the
// server, attached to it, or discovered it by its handshake.
package identity

import (
	"strings"
)

// Identity is what a server is.
type Identity struct {
	// Kind is npm, node, pypi, python, go, script or binary.
	Kind string `json:"kind"`
	// Name is the package, module, script or executable: with Kind, the
	// key everything learned about the server is kept under.
	Name    string `json:"name"`
	Version string `json:"version,omitempty"`
	// BuildID is a Go binary's build id; Hash the SHA-256 of a binary or a
	// script (not of a shared interpreter).
	BuildID string `json:"build_id,omitempty"`
	Hash    string `json:"sha256,omitempty"`
	// Entry is the file that holds the server's code (a script, a
	// package's main file, the binary).
	Entry string `json:"entry,omitempty"`
}

// Key names the server in the trust store and the baselines: kind and name,
// without the version, so an upgrade that changes a tool is seen as a
// change (the classic rug pull ships in a new version).
func (i Identity) Key() string {
	if i.Name == "" {
		return ""
	}
	return i.Kind + ":" + i.Name
}

// String is the one printable name used everywhere: the package and its
// version, or the script or executable.
func (i Identity) String() string {
	if i.Version != "" {
		return i.Name + "@" + i.Version
	}
	return i.Name
}

// Attrs are what a server process runs with.
type Attrs struct {
	PID  int      `json:"pid"`
	Exe  string   `json:"exe"`
	Argv []string `json:"argv"`
	Cwd  string   `json:"cwd,omitempty"`
	UID  int      `json:"uid"`
	User string   `json:"user,omitempty"`
	// Home is the process's $HOME; PasswdHome its user's home in passwd.
	Home       string `json:"home,omitempty"`
	PasswdHome string `json:"passwd_home,omitempty"`
	// Roots are the directories its command line and its environment name.
	Roots []string `json:"roots,omitempty"`
	// RootsFrom says where each root came from ("argv" or the variable).
	RootsFrom map[string]string `json:"roots_from,omitempty"`
	// FromProc: read from /proc (false: rebuilt from an exec record, the
	// process having gone).
	FromProc bool `json:"from_proc"`
}

// Homes are the server's home directories: its $HOME and its user's.
func (a Attrs) Homes() []string {
	var out []string
	for _, h := range []string{a.Home, a.PasswdHome} {
		if h != "" && h != "/" && !contains(out, h) {
			out = append(out, h)
		}
	}
	return out
}

// Client is the process that drives a server over its stdio: the first
// ancestor that does not share the server's stdin (npx, npm and sh in
// between share it).
type Client struct {
	PID   int    `json:"pid"`
	Start uint64 `json:"-"`
	Exe   string `json:"exe,omitempty"`
	// Key is stable for the client's life: pid and start time.
	Key string `json:"key"`
}

// Server is a server's identity, attributes and client.
type Server struct {
	Identity Identity `json:"identity"`
	Attrs    Attrs    `json:"attrs"`
	Client   Client   `json:"client"`
}

func contains(l []string, s string) bool {
	for _, x := range l {
		if x == s {
			return true
		}
	}
	return false
}

// Command is a server's command line for people: argv joined, the
// interpreter's own path shortened to its name.
func (a Attrs) Command() string {
	if len(a.Argv) == 0 {
		return a.Exe
	}
	parts := append([]string(nil), a.Argv...)
	if i := strings.LastIndexByte(parts[0], '/'); i >= 0 {
		parts[0] = parts[0][i+1:]
	}
	return strings.Join(parts, " ")
}
