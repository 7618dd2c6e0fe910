package correlate

import (
	"path"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/google/jsonschema-go/jsonschema"

	"github.com/mcpsec/sensor/pkg/decode"
	"github.com/mcpsec/sensor/pkg/identity"
)

// Resolver says what the server a process belongs to is: its identity,
// attributes and client, read from /proc (identity.Resolver on Linux).
type Resolver interface {
	Resolve(pid int) (identity.Server, error)
}

// server is what is known of one server (a tracked root and its tree).
type server struct {
	id    string // the instance: root pid and start time
	pid   uint32
	comm  string
	ident identity.Server
	// identPID is the process the identity was read from: the root at
	// first, then the process that speaks MCP (npx's grandchild).
	identPID uint32
	speaker  uint32
	// roots are the configured roots, those the server's command lines
	// and environment name, and its client's roots/list answers.
	roots      []string
	homes      []string
	execs      map[uint32]execRec // exec records of the tree, when /proc has nothing
	calls      map[string]*call   // by session + id
	order      []string           // call keys, oldest first
	exes       map[string]bool    // basenames exec'd so far
	sessions   map[string]*sessionInfo
	tools      map[string]*toolSeen // the latest tools/list, by name
	toolProc   decode.Proc          // who listed them, and when
	toolsAt    time.Time
	http       bool
	listens    bool
	taint      string // the credential file read, if any
	callsTotal uint64
	callRate   rate
	forkRate   rate
	openRate   rate
	execRate   rate
	started    bool // a call was seen
	requested  bool // an HTTP request with no JSON-RPC was seen
	inbound    []inbound
	dirs       map[string]*dirUse // directories named opens of calls used
}

type execRec struct {
	exe  string
	argv []string
}

type sessionInfo struct {
	version   string
	transport string
	tools     map[string]*decode.ToolDef
	schemas   map[string]*jsonschema.Resolved
}

// key names the server in the trust store and the baselines: its
// identity, or its comm while it has none.
func (s *server) key() string {
	if k := s.ident.Identity.Key(); k != "" {
		return k
	}
	return s.comm
}

// name is the server's printable name.
func (s *server) name() string {
	if n := s.ident.Identity.String(); n != "" {
		return n
	}
	return s.comm
}

func (c *Correlator) server(p *decode.Proc) *server {
	s := c.servers[p.Server]
	if s == nil {
		s = &server{id: p.Server, pid: p.ServerPID, comm: p.Comm, calls: map[string]*call{},
			exes: map[string]bool{}, sessions: map[string]*sessionInfo{}, execs: map[uint32]execRec{}}
		s.roots = append(s.roots, c.opts.Roots...)
		c.servers[p.Server] = s
		c.identify(s, s.pid)
	}
	return s
}

// identify reads what the server is from process pid of its tree; when
// /proc has nothing (the process is gone), from its exec record.
func (c *Correlator) identify(s *server, pid uint32) {
	if pid == 0 {
		return
	}
	if c.opts.Resolver != nil {
		if srv, err := c.opts.Resolver.Resolve(int(pid)); err == nil {
			c.adopt(s, pid, srv)
			return
		}
		c.stats.Unresolved++
	}
	if ex, ok := s.execs[pid]; ok {
		a := identity.Attrs{PID: int(pid), Exe: ex.exe, Argv: ex.argv, UID: -1}
		for _, arg := range ex.argv[min(1, len(ex.argv)):] {
			if filepath.IsAbs(arg) && dirExists(arg) {
				a.Roots = appendUnique(a.Roots, filepath.Clean(arg))
			}
		}
		c.adopt(s, pid, identity.Server{Identity: identity.Classify(a), Attrs: a})
	}
}

// Notice says a server was found, identified again (its identity, roots
// or client changed) or is gone.
type Notice struct {
	State string    // found, identified, gone
	Time  time.Time // of the event that told
	Info  ServerInfo
}

// notice keeps a notice for TakeNotices (the last 1024 when nobody takes them).
func (c *Correlator) notice(n Notice) {
	if len(c.notices) >= 1024 {
		c.notices = append(c.notices[:0], c.notices[1:]...)
	}
	c.notices = append(c.notices, n)
}

// TakeNotices appends the notices since the last call to out.
func (c *Correlator) TakeNotices(out []Notice) []Notice {
	out = append(out, c.notices...)
	c.notices = c.notices[:0]
	return out
}

// Server describes one server the correlator follows (ok false if none
// by that id).
func (c *Correlator) Server(id string) (ServerInfo, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.servers[id]
	if s == nil {
		return ServerInfo{}, false
	}
	return s.info(), true
}

// adopt takes a resolved server: its identity, the roots and homes it
// adds, and its place among its client's servers.
func (c *Correlator) adopt(s *server, pid uint32, srv identity.Server) {
	state := "identified"
	if s.identPID == 0 {
		state = "found"
	}
	before := s.name() + "\x00" + strings.Join(s.roots, "\x00")
	defer func() {
		// a server identified again is news only if what it is changed
		if state == "found" || s.name()+"\x00"+strings.Join(s.roots, "\x00") != before {
			c.notice(Notice{State: state, Time: c.now, Info: s.info()})
		}
	}()
	s.identPID = pid
	if srv.Identity.Key() != "" {
		s.ident.Identity = srv.Identity
	}
	s.ident.Attrs = srv.Attrs
	for _, r := range srv.Attrs.Roots {
		s.roots = appendUnique(s.roots, r)
	}
	for _, sr := range c.opts.ServerRoots {
		if ok, _ := path.Match(sr.Match, s.key()); ok || sr.Match == s.key() || sr.Match == s.name() {
			for _, r := range sr.Roots {
				s.roots = appendUnique(s.roots, r)
			}
		} else if ok, _ := path.Match(sr.Match, s.name()); ok {
			for _, r := range sr.Roots {
				s.roots = appendUnique(s.roots, r)
			}
		}
	}
	for _, h := range srv.Attrs.Homes() {
		s.homes = appendUnique(s.homes, h)
	}
	if srv.Client.Key != "" && srv.Client.Key != s.ident.Client.Key {
		c.leaveClient(s)
		clear(c.toolNames)
		s.ident.Client = srv.Client
		if c.clients[srv.Client.Key] == nil {
			c.clients[srv.Client.Key] = map[string]*server{}
		}
		c.clients[srv.Client.Key][s.id] = s
	}
}

func (c *Correlator) leaveClient(s *server) {
	if k := s.ident.Client.Key; k != "" {
		delete(c.clients[k], s.id)
		if len(c.clients[k]) == 0 {
			delete(c.clients, k)
		}
	}
}

// peers are the other live servers of the server's client (those with no
// known client are peers of each other).
func (c *Correlator) peers(s *server) []*server {
	var out []*server
	if k := s.ident.Client.Key; k != "" {
		for _, p := range c.clients[k] {
			if p != s {
				out = append(out, p)
			}
		}
	} else {
		for _, p := range c.servers {
			if p != s && p.ident.Client.Key == "" {
				out = append(out, p)
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].id < out[j].id })
	return out
}

// Forget drops a server the sensor stopped tracking.
func (c *Correlator) Forget(id string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if s := c.servers[id]; s != nil {
		c.leaveClient(s)
		delete(c.servers, id)
	}
}

// gone forgets a server whose root exited.
func (c *Correlator) gone(s *server) {
	c.notice(Notice{State: "gone", Time: c.now, Info: s.info()})
	c.leaveClient(s)
	delete(c.servers, s.id)
}

// ServerInfo describes a server the correlator follows.
type ServerInfo struct {
	ID       string            `json:"server"`
	Name     string            `json:"name"`
	Identity identity.Identity `json:"identity"`
	PID      uint32            `json:"pid"`
	Speaker  uint32            `json:"mcp_pid,omitempty"` // the process that reads its requests
	Comm     string            `json:"comm"`
	Command  string            `json:"command,omitempty"`
	Exe      string            `json:"exe,omitempty"`
	Argv     []string          `json:"argv,omitempty"`
	Cwd      string            `json:"cwd,omitempty"`
	User     string            `json:"user,omitempty"`
	UID      int               `json:"uid"`
	Homes    []string          `json:"homes,omitempty"`
	Roots    []string          `json:"roots,omitempty"`
	Client   *identity.Client  `json:"client,omitempty"`
	Calls    uint64            `json:"calls"`
	Inflight int               `json:"calls_in_flight"`
	Sessions int               `json:"sessions"`
	Tools    []string          `json:"tools,omitempty"`
	Tainted  string            `json:"tainted_by,omitempty"`
	HTTP     bool              `json:"http,omitempty"`
}

// Servers lists the servers followed now.
func (c *Correlator) Servers() []ServerInfo {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]ServerInfo, 0, len(c.servers))
	for _, s := range c.servers {
		out = append(out, s.info())
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

func (s *server) info() ServerInfo {
	a := s.ident.Attrs
	si := ServerInfo{ID: s.id, Name: s.name(), Identity: s.ident.Identity, PID: s.pid, Comm: s.comm,
		Command: a.Command(), Exe: a.Exe, Argv: a.Argv, Cwd: a.Cwd, User: a.User, UID: a.UID, Homes: s.homes,
		Roots: s.roots, Calls: s.callsTotal, Inflight: len(s.calls), Sessions: len(s.sessions), Tainted: s.taint, HTTP: s.http,
		Speaker: s.speaker}
	if s.ident.Client.Key != "" {
		cl := s.ident.Client
		si.Client = &cl
	}
	for n := range s.tools {
		si.Tools = append(si.Tools, n)
	}
	sort.Strings(si.Tools)
	return si
}

// ServerName is the printable name of a server the correlator follows
// ("" if it follows none by that id).
func (c *Correlator) ServerName(id string) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if s := c.servers[id]; s != nil {
		return s.name()
	}
	return ""
}

// PauseLearning stops the baselines of a server (by id) from learning, as
// containment's "enhanced monitoring" asks.
func (c *Correlator) PauseLearning(serverID string) {
	c.mu.Lock()
	key := ""
	if s := c.servers[serverID]; s != nil {
		key = s.key()
	}
	c.mu.Unlock()
	if key != "" && c.opts.Store != nil {
		c.opts.Store.pause(key)
	}
}
