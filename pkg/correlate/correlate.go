// Package correlate links each server's tool calls to the effects they
// really caused, and judges calls, effects, messages and tool definitions
// with rules (CEL, in rules/*.yaml) and learned baselines, emitting alerts.
//
// Events come in time order (the kernel's clock). A request opens a call
// in its server; effects of the server's process tree are attributed to
// the calls in flight: to the one whose arguments name what the effect
// touched, else to the only one, else to all of them, marked ambiguous.
package correlate

import (
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/google/jsonschema-go/jsonschema"

	"github.com/mcpsec/sensor/pkg/decode"
)

// Alert is a rule's or a baseline's verdict on an event.
type Alert struct {
	Kind string    `json:"kind"` // always "alert"
	Time time.Time `json:"ts"`
	decode.Proc
	Rule     string   `json:"rule"`
	Severity string   `json:"severity"`
	Tags     []string `json:"tags,omitempty"`
	// Output is the rule's output template filled in; Why is its
	// description.
	Output string `json:"output"`
	Why    string `json:"why"`
	Action string `json:"action,omitempty"`
	// Call is the tool call the event belongs to; Effects are the effects
	// that caused the alert; Message the message that did.
	Call      *decode.CallRef  `json:"call,omitempty"`
	Ambiguous bool             `json:"ambiguous,omitempty"`
	Effects   []*decode.Effect `json:"effects,omitempty"`
	Message   *MessageRef      `json:"message,omitempty"`
	Tool      string           `json:"tool,omitempty"` // tool rules: the tool judged
	// Score and Evidence: baseline anomalies.
	Score    float64        `json:"score,omitempty"`
	Evidence map[string]any `json:"evidence,omitempty"`
	Source   string         `json:"source"` // file:line of the rule, or "baseline"
	// Response is what containment did about it (or, in monitor mode,
	// would have done).
	Response *Response `json:"response,omitempty"`
}

// Response is containment's answer to an alert.
type Response struct {
	Mode     string   `json:"mode"`               // "enforce" or "monitor"
	Actions  []string `json:"actions"`            // what the playbook (or the rule) asks
	Done     []string `json:"done,omitempty"`     // what was carried out
	Errors   []string `json:"errors,omitempty"`   // what could not be
	Cgroup   string   `json:"cgroup,omitempty"`   // the server's cgroup
	Snapshot string   `json:"snapshot,omitempty"` // forensic snapshot file
	// FrozenAt and LatencyMS: when the kernel reported the cgroup frozen,
	// and how long after the offending event.
	FrozenAt  time.Time `json:"frozen_at,omitzero"`
	LatencyMS float64   `json:"latency_ms,omitempty"`
	// DetectMS: from the offending syscall to the responder (detection).
	DetectMS float64 `json:"detect_ms,omitempty"`
}

// EventTime is when the event that raised the alert happened.
func (a *Alert) EventTime() time.Time { return a.Time }

// MessageRef names the message an alert is about.
type MessageRef struct {
	Session   string          `json:"session,omitempty"`
	Direction string          `json:"direction"`
	Type      string          `json:"type"`
	Method    string          `json:"method,omitempty"`
	ID        json.RawMessage `json:"id,omitempty"`
}

// Options configure a correlator.
type Options struct {
	// Roots are directories every server is allowed to use, besides those
	// its argv names and its client's roots/list answer.
	Roots []string
	// EgressAllow lists destinations servers may reach (CIDRs, hosts,
	// host:port); empty: no allow-list.
	EgressAllow []string
	// Store keeps tool definitions and baselines across restarts; nil:
	// in memory only.
	Store *Store
	// Learn is the baseline learning window, from a profile's first effect
	// (0: baselines off).
	Learn time.Duration
	// Dedupe suppresses an alert identical to one raised this recently.
	Dedupe time.Duration
}

// Stats counts what the correlator did.
type Stats struct {
	Events     uint64            `json:"events"`
	Calls      uint64            `json:"calls"`
	Attributed uint64            `json:"attributed_effects"`
	Ambiguous  uint64            `json:"ambiguous_effects"`
	Unowned    uint64            `json:"effects_outside_calls"`
	Alerts     map[string]uint64 `json:"alerts_by_severity"`
	Suppressed uint64            `json:"alerts_suppressed"`
	EvalErrors map[string]uint64 `json:"eval_errors,omitempty"`
	Reloads    uint64            `json:"rule_reloads"`
	Rules      int               `json:"rules"`
}

// Correlator is fed events in time order. Not safe for concurrent use,
// except SetRules and Stats.
type Correlator struct {
	opts    Options
	mu      sync.Mutex // guards rules and stats against SetRules/Stats
	rules   *RuleSet
	servers map[string]*server
	stats   Stats
	recent  map[string]time.Time // dedupe keys -> last alert
	sweepAt int
	cands   []*Rule
	vars    map[string]map[string]any
}

// New returns a correlator judging with rules (nil: attribution and
// baselines only).
func New(rules *RuleSet, o Options) *Correlator {
	if o.Dedupe == 0 {
		o.Dedupe = 5 * time.Second
	}
	c := &Correlator{opts: o, rules: rules, servers: map[string]*server{}, recent: map[string]time.Time{}, sweepAt: 4096,
		stats: Stats{Alerts: map[string]uint64{}, EvalErrors: map[string]uint64{}}}
	if rules != nil {
		c.stats.Rules = len(rules.Rules)
	}
	return c
}

// SetRules swaps in a new, already validated rule set.
func (c *Correlator) SetRules(rs *RuleSet) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.rules = rs
	c.stats.Reloads++
	c.stats.Rules = len(rs.Rules)
}

// Stats returns the counters so far.
func (c *Correlator) Stats() Stats {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.stats
	s.Alerts = copyMap(c.stats.Alerts)
	s.EvalErrors = copyMap(c.stats.EvalErrors)
	return s
}

func copyMap(m map[string]uint64) map[string]uint64 {
	out := make(map[string]uint64, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// call is a request in flight.
type call struct {
	ref     decode.CallRef
	args    map[string]any
	strs    []string // every string in the arguments
	start   time.Time
	effects int
}

// server is what is known of one server (a tracked root and its tree).
type server struct {
	id       string
	key      string // stable across restarts: executable and arguments
	pid      uint32
	comm     string
	exe      string
	argv     []string
	roots    []string
	calls    map[string]*call // by session + id
	order    []string         // call keys, oldest first
	execs    map[string]bool  // basenames exec'd so far
	sessions map[string]*sessionInfo
	http     bool
	listens  bool
	taint    string // the credential file read, if any
	tainted  time.Time
	callRate rate
	forkRate rate
	openRate rate
	execRate rate
	started  bool // a call was seen
}

type sessionInfo struct {
	version   string
	transport string
	tools     map[string]*decode.ToolDef
	schemas   map[string]*jsonschema.Resolved
}

func (c *Correlator) server(p *decode.Proc) *server {
	s := c.servers[p.Server]
	if s == nil {
		s = &server{id: p.Server, pid: p.ServerPID, comm: p.Comm, calls: map[string]*call{},
			execs: map[string]bool{}, sessions: map[string]*sessionInfo{}}
		s.roots = append(s.roots, c.opts.Roots...)
		c.servers[p.Server] = s
	}
	return s
}

// Event judges one event and returns the alerts it raised (appended to out).
// It may annotate the event (an effect's call).
func (c *Correlator) Event(e decode.Event, out []*Alert) []*Alert {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.stats.Events++
	switch v := e.(type) {
	case *decode.Effect:
		return c.effect(v, out)
	case *decode.Message:
		return c.message(v, out)
	}
	return out
}

func callKey(session string, id json.RawMessage) string { return session + "\x00" + string(id) }

// tracked methods: requests whose handling is a "call" effects belong to
var callMethods = map[string]bool{"tools/call": true, "resources/read": true, "prompts/get": true,
	"resources/subscribe": true, "completion/complete": true}

func (c *Correlator) message(m *decode.Message, out []*Alert) []*Alert {
	s := c.server(&m.Proc)
	si := s.sessions[m.Session]
	if si == nil {
		si = &sessionInfo{transport: "stdio"}
		if m.HTTP != nil {
			si.transport = m.HTTP.Transport
			s.http = true
		}
		s.sessions[m.Session] = si
		if len(s.sessions) > 1024 { // bound: forget the rest but this one
			for k := range s.sessions {
				if k != m.Session {
					delete(s.sessions, k)
					break
				}
			}
		}
	}
	if m.ProtocolVersion != "" {
		si.version = m.ProtocolVersion
	}
	var cl *call
	switch {
	case m.Direction == "in" && m.Type == "request" && callMethods[m.Method]:
		cl = s.open(m)
		c.stats.Calls++
		s.callRate.add(m.Time)
		s.started = true
	case m.Direction == "in" && m.Method == "notifications/cancelled":
		var p struct {
			RequestID json.RawMessage `json:"requestId"`
		}
		if json.Unmarshal(m.Params, &p) == nil {
			s.close(callKey(m.Session, p.RequestID))
		}
	case m.Direction == "out" && (m.Type == "response" || m.Type == "error") && m.Request != nil:
		k := callKey(m.Session, m.ID)
		cl = s.calls[k]
		if m.Request.Method == "tools/list" && len(m.Result) > 0 {
			out = c.toolsListed(s, si, m, out)
		}
		defer s.close(k)
	case m.Direction == "in" && m.Request != nil && m.Request.Method == "roots/list":
		s.addClientRoots(m.Result)
	}
	vars := c.baseVars(s, si, cl, m.Time)
	vars["message"] = messageVars(m, si)
	if cl != nil {
		if errs := validateArgs(si, m); len(errs) > 0 {
			vars["message"]["schema_errors"] = errs
		}
	}
	typ := m.Method
	if typ == "" {
		typ = m.Type
	}
	return c.judge("message", typ, vars, m.Time, &m.Proc, cl, nil, m, "", out)
}

func (s *server) open(m *decode.Message) *call {
	ref := decode.CallRef{Session: m.Session, ID: m.ID, Method: m.Method, Tool: m.Tool}
	cl := &call{ref: ref, start: m.Time}
	var args any
	raw := m.Arguments
	if m.Method != "tools/call" {
		raw = m.Params
	}
	if len(raw) > 0 && len(raw) < 1<<20 && json.Unmarshal(raw, &args) == nil {
		cl.args, _ = args.(map[string]any)
		cl.strs = stringsIn(args, cl.strs, 0)
	}
	k := callKey(m.Session, m.ID)
	if _, ok := s.calls[k]; !ok {
		s.order = append(s.order, k)
	}
	s.calls[k] = cl
	for len(s.order) > 256 { // a client that never gets answers: bound it
		delete(s.calls, s.order[0])
		s.order = s.order[1:]
	}
	return cl
}

func (s *server) close(k string) {
	if _, ok := s.calls[k]; !ok {
		return
	}
	delete(s.calls, k)
	for i, x := range s.order {
		if x == k {
			s.order = append(s.order[:i], s.order[i+1:]...)
			break
		}
	}
}

// stringsIn collects the strings of a JSON value (bounded).
func stringsIn(v any, out []string, depth int) []string {
	if depth > 8 || len(out) > 256 {
		return out
	}
	switch x := v.(type) {
	case string:
		out = append(out, x)
	case []any:
		for _, y := range x {
			out = stringsIn(y, out, depth+1)
		}
	case map[string]any:
		for _, y := range x {
			out = stringsIn(y, out, depth+1)
		}
	}
	return out
}

// addClientRoots takes the directories of a roots/list answer.
func (s *server) addClientRoots(result json.RawMessage) {
	var r struct {
		Roots []struct {
			URI string `json:"uri"`
		} `json:"roots"`
	}
	if json.Unmarshal(result, &r) != nil {
		return
	}
	for _, x := range r.Roots {
		if p, ok := strings.CutPrefix(x.URI, "file://"); ok && p != "" {
			s.roots = appendUnique(s.roots, filepath.Clean(p))
		}
	}
}

func appendUnique(l []string, v string) []string {
	for _, x := range l {
		if x == v {
			return l
		}
	}
	return append(l, v)
}

func (c *Correlator) effect(e *decode.Effect, out []*Alert) []*Alert {
	s := c.server(&e.Proc)
	switch e.Type {
	case "exec":
		if e.PID == s.pid && e.Result == 0 {
			// the server's own command: its identity and the roots its argv names
			s.exe, s.argv, s.comm = e.Path, e.Argv, e.Comm
			s.key = serverKey(e.Path, e.Argv)
			for _, a := range e.Argv[min(1, len(e.Argv)):] {
				if st, err := os.Stat(a); err == nil && st.IsDir() && filepath.IsAbs(a) {
					s.roots = appendUnique(s.roots, filepath.Clean(a))
				}
			}
		}
		s.execRate.add(e.Time)
	case "fork":
		s.forkRate.add(e.Time)
	case "open", "write":
		s.openRate.add(e.Time)
	case "listen", "bind":
		s.listens = s.listens || e.Type == "listen"
	case "exit":
		if e.PID == s.pid {
			defer delete(c.servers, s.id)
		}
	}
	calls, named := s.attribute(e)
	switch {
	case len(calls) == 0:
		c.stats.Unowned++
	case len(calls) > 1:
		c.stats.Ambiguous++
	default:
		c.stats.Attributed++
	}
	var cl *call
	if len(calls) > 0 {
		cl = calls[0]
		e.Call = &cl.ref
		e.Named = named
		if len(calls) > 1 {
			e.Ambiguous = true
			for _, x := range calls {
				e.Calls = append(e.Calls, x.ref)
			}
		}
		for _, x := range calls {
			x.effects++
		}
	}
	si := (*sessionInfo)(nil)
	if cl != nil {
		si = s.sessions[cl.ref.Session]
	}
	vars := c.baseVars(s, si, cl, e.Time)
	if cl != nil && len(calls) > 1 {
		vars["call"]["ambiguous"] = true
	}
	novel := false
	if e.Type == "exec" && e.Result == 0 {
		b := filepath.Base(e.Path)
		novel = !s.execs[b]
		s.execs[b] = true
	}
	vars["effect"] = effectVars(e, named, novel)
	out = c.judge("effect", e.Type, vars, e.Time, &e.Proc, cl, e, nil, "", out)
	// taint after judging: the read itself is judged on its own
	if (e.Type == "open") && e.Result >= 0 && c.rules != nil && globAny(e.Path, c.rules.List("credential_paths")) {
		s.taint, s.tainted = e.Path, e.Time
	}
	if c.opts.Learn > 0 {
		out = c.baseline(s, cl, e, out)
	}
	return out
}

// serverKey names a server across restarts: its executable and arguments.
func serverKey(exe string, argv []string) string {
	return exe + " " + strings.Join(argv[min(1, len(argv)):], " ")
}

// attribute finds the calls in flight an effect belongs to.
func (s *server) attribute(e *decode.Effect) ([]*call, bool) {
	if len(s.calls) == 0 || e.Type == "exit" {
		return nil, false
	}
	var named []*call
	for _, k := range s.order {
		if cl := s.calls[k]; mentions(cl.strs, e) {
			named = append(named, cl)
		}
	}
	if len(named) > 0 {
		return named, true
	}
	all := make([]*call, 0, len(s.order))
	for _, k := range s.order {
		all = append(all, s.calls[k])
	}
	return all, false
}

// mentions: one of a call's argument strings names what the effect
// touched: the path (or its last elements), an argv element, the address.
func mentions(args []string, e *decode.Effect) bool {
	for _, a := range args {
		if len(a) < 2 {
			continue
		}
		switch {
		case e.Path != "" && (e.Path == a || strings.HasSuffix(e.Path, "/"+strings.TrimPrefix(a, "./")) || e.Raw == a):
			return true
		case e.To != "" && strings.HasSuffix(e.To, "/"+strings.TrimPrefix(a, "./")):
			return true
		case e.Addr != "" && len(a) > 3 && strings.Contains(e.Addr, a):
			return true
		}
		for _, x := range e.Argv[min(1, len(e.Argv)):] {
			if x == a || (len(a) > 3 && strings.Contains(x, a)) {
				return true
			}
		}
	}
	return false
}

// baseVars are the server, session and call variables of an event.
func (c *Correlator) baseVars(s *server, si *sessionInfo, cl *call, now time.Time) map[string]map[string]any {
	srv := map[string]any{
		"id": s.id, "key": s.key, "pid": int64(s.pid), "comm": s.comm, "exe": s.exe, "argv": s.argv,
		"roots": s.roots, "egress_allow": c.opts.EgressAllow, "inflight": int64(len(s.calls)),
		"calls_per_min": s.callRate.perMin(now), "forks_per_min": s.forkRate.perMin(now),
		"opens_per_min": s.openRate.perMin(now), "execs_per_min": s.execRate.perMin(now),
		"tainted": s.taint != "", "taint_path": s.taint, "listening": s.listens, "http": s.http,
		"network_facing": s.http || s.listens, "started": s.started,
	}
	if srv["argv"] == nil {
		srv["argv"] = []string{}
	}
	if s.roots == nil {
		srv["roots"] = []string{}
	}
	if c.opts.EgressAllow == nil {
		srv["egress_allow"] = []string{}
	}
	sess := map[string]any{"id": "", "protocol_version": "", "transport": ""}
	if si != nil {
		sess["protocol_version"], sess["transport"] = si.version, si.transport
	}
	cv := map[string]any{"active": false, "id": "", "tool": "", "method": "", "session": "",
		"args": map[string]any{}, "arg_strings": []string{}, "ambiguous": false, "elapsed_ms": int64(0)}
	if cl != nil {
		sess["id"] = cl.ref.Session
		cv["active"], cv["id"], cv["tool"], cv["method"], cv["session"] = true, string(cl.ref.ID), cl.ref.Tool, cl.ref.Method, cl.ref.Session
		if cl.args != nil {
			cv["args"] = cl.args
		}
		if cl.strs != nil {
			cv["arg_strings"] = cl.strs
		}
		cv["elapsed_ms"] = int64(now.Sub(cl.start) / time.Millisecond)
	}
	return map[string]map[string]any{"server": srv, "session": sess, "call": cv,
		"effect": emptyEffect, "message": emptyMessage, "tool": emptyTool}
}

var (
	emptyEffect  = map[string]any{"type": ""}
	emptyMessage = map[string]any{"type": ""}
	emptyTool    = map[string]any{"name": ""}
)

func effectVars(e *decode.Effect, named, novel bool) map[string]any {
	host, port := splitAddr(e.Addr)
	argv := e.Argv
	if argv == nil {
		argv = []string{}
	}
	return map[string]any{
		"type": e.Type, "path": e.Path, "raw": e.Raw, "to": e.To, "target": e.Target, "argv": argv,
		"addr": e.Addr, "host": host, "port": int64(port), "local": e.Local, "socket": e.Socket,
		"flags": e.Flags, "access": e.Access, "mode": e.Mode, "result": e.Result, "errno": e.Errno,
		"pid": int64(e.PID), "tid": int64(e.TID), "comm": e.Comm, "detail": e.Detail,
		"named": named, "novel_exe": novel, "loopback": isLoopback(e.Addr, host),
		"external": host != "" && !isLoopback(e.Addr, host) && !strings.HasPrefix(e.Addr, "/") && !strings.HasPrefix(e.Addr, "@"),
	}
}

func splitAddr(a string) (string, int) {
	if a == "" || strings.HasPrefix(a, "/") || strings.HasPrefix(a, "@") {
		return "", 0
	}
	h, p, err := net.SplitHostPort(a)
	if err != nil {
		return a, 0
	}
	n, _ := strconv.Atoi(p)
	return h, n
}

func isLoopback(addr, host string) bool {
	if strings.HasPrefix(addr, "/") || strings.HasPrefix(addr, "@") {
		return true // unix sockets stay on the host
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func messageVars(m *decode.Message, si *sessionInfo) map[string]any {
	v := map[string]any{
		"direction": m.Direction, "type": m.Type, "method": m.Method, "id": string(m.ID), "tool": m.Tool,
		"size": int64(m.Size), "truncated": m.Truncated, "batch": int64(m.Batch),
		"protocol_version": m.ProtocolVersion, "duplicate_id": m.DuplicateID, "unmatched": m.Unmatched,
		"raw": m.Raw, "session": m.Session, "schema_errors": []string{}, "arg_strings": []string{},
		"text": "", "request_method": "", "request_tool": "",
	}
	if m.Request != nil {
		v["request_method"], v["request_tool"] = m.Request.Method, m.Request.Tool
	}
	if len(m.Arguments) > 0 && len(m.Arguments) < 1<<20 {
		var args any
		if json.Unmarshal(m.Arguments, &args) == nil {
			v["arg_strings"] = stringsIn(args, nil, 0)
		}
	}
	// the text secrets and instructions are looked for in (bounded)
	text := m.Params
	if m.Direction == "out" {
		text = m.Result
	}
	if len(text) > 256<<10 {
		text = text[:256<<10]
	}
	v["text"] = string(text)
	h := m.HTTP
	if h == nil {
		h = &decode.HTTPInfo{}
	}
	v["http"] = map[string]any{"transport": h.Transport, "method": h.Method, "target": h.Target,
		"status": int64(h.Status), "host": h.Host, "origin": h.Origin, "session_id": h.SessionID,
		"protocol_version": h.ProtocolVersion, "mcp_method": h.McpMethod, "mcp_name": h.McpName}
	return v
}

// PauseLearning stops the baselines of a server (by id) from learning, as
// containment's "enhanced monitoring" asks.
func (c *Correlator) PauseLearning(serverID string) {
	c.mu.Lock()
	s := c.servers[serverID]
	c.mu.Unlock()
	if s == nil || c.opts.Store == nil {
		return
	}
	key := s.key
	if key == "" {
		key = s.comm
	}
	st := c.opts.Store
	st.mu.Lock()
	defer st.mu.Unlock()
	for _, p := range st.data.Baselines {
		if p.Server == key && !p.Paused {
			p.Paused = true
			st.dirty = true
		}
	}
}

// ServerInfo describes a server the correlator follows.
type ServerInfo struct {
	ID       string   `json:"server"`
	PID      uint32   `json:"pid"`
	Comm     string   `json:"comm"`
	Exe      string   `json:"exe,omitempty"`
	Argv     []string `json:"argv,omitempty"`
	Roots    []string `json:"roots,omitempty"`
	Inflight int      `json:"calls_in_flight"`
	Sessions int      `json:"sessions"`
	Tainted  string   `json:"tainted_by,omitempty"`
	HTTP     bool     `json:"http,omitempty"`
}

// Servers lists the servers followed now.
func (c *Correlator) Servers() []ServerInfo {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]ServerInfo, 0, len(c.servers))
	for _, s := range c.servers {
		out = append(out, ServerInfo{ID: s.id, PID: s.pid, Comm: s.comm, Exe: s.exe, Argv: s.argv, Roots: s.roots,
			Inflight: len(s.calls), Sessions: len(s.sessions), Tainted: s.taint, HTTP: s.http})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}
