// Package correlate links each server's tool calls to the effects they
// really caused, and judges calls, effects, messages and tool definitions
// with rules (CEL, in rules/*.yaml) and learned baselines, emitting alerts.
//
// Events come in time order (the kernel's clock). A request opens a call
// in its server; effects of the server's process tree are attributed to
// the calls in flight: to the one whose arguments name what the effect
// touched, else to the only one, else to all of them, marked ambiguous.
// A server is known by its identity (what it runs: see pkg/identity),
// read when it is first seen, when its root execs and from the process
// that first speaks MCP for it; what is learned about it (pinned tool
// definitions, baselines) is kept under that identity.
package correlate

import (
	"encoding/json"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/mcpsec/sensor/pkg/decode"
)

// Alert is a rule's or a baseline's verdict on an event.
type Alert struct {
	Kind string `json:"kind"` // always "alert"
	// ID names the alert (for verdicts); unique on its host.
	ID   string    `json:"id"`
	Time time.Time `json:"ts"`
	decode.Proc
	// ServerName is the server's printable name (its identity).
	ServerName string   `json:"server_name,omitempty"`
	Rule       string   `json:"rule"`
	Severity   string   `json:"severity"`
	Tags       []string `json:"tags,omitempty"`
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

// Class is the alert's class: the rule file it comes from (exfiltration,
// injection, poisoning, escape, ...), or "anomaly" for the baselines.
func (a *Alert) Class() string {
	if a.Source == "baseline" {
		return "anomaly"
	}
	base := path.Base(strings.SplitN(a.Source, ":", 2)[0])
	return strings.TrimSuffix(strings.TrimPrefix(base, "00-"), path.Ext(base))
}

// Techniques are the alert's tags that are MITRE ATT&CK technique ids
// (T1552, T1552.001).
func (a *Alert) Techniques() []string { return Techniques(a.Tags) }

// Techniques keeps the ATT&CK technique ids among tags.
func Techniques(tags []string) []string {
	var out []string
	for _, t := range tags {
		if len(t) > 1 && t[0] == 'T' && t[1] >= '0' && t[1] <= '9' {
			out = append(out, t)
		}
	}
	return out
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
	// its argv and environment name and its client's roots/list answer.
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
	// Resolver reads what a server is from /proc; nil: from exec records
	// only.
	Resolver Resolver
	// ServerRoots give particular servers more roots: Match is a glob over
	// the identity key or the name.
	ServerRoots []ServerRoots
	// Indicators names the fleet indicator of a type (destination,
	// tool_hash) and value, "" if none is in force.
	Indicators func(typ, value string) string
}

// ServerRoots are roots of the servers Match names.
type ServerRoots struct {
	Match string
	Roots []string
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
	// Evaluated: conditions run; Guarded: rules passed over because
	// their guard (see guard.go) said they could not match.
	Evaluated uint64 `json:"rules_evaluated"`
	Guarded   uint64 `json:"rules_guarded"`
	Reloads   uint64 `json:"rule_reloads"`
	FlowStats
	Rules int `json:"rules"`
	// Unresolved: servers whose process was gone from /proc when the
	// sensor looked (known from exec records only).
	Unresolved uint64 `json:"servers_unresolved,omitempty"`
}

// Correlator is fed events in time order. Not safe for concurrent use,
// except SetRules, Stats, Servers, ServerName and PauseLearning.
type Correlator struct {
	opts    Options
	mu      sync.Mutex // guards everything against the calls above
	rules   *RuleSet
	servers map[string]*server
	clients map[string]map[string]*server // client key -> its servers
	stats   Stats
	recent  map[string]time.Time // dedupe keys -> last alert
	sweepAt int
	cands   []*Rule
	notices []Notice
	v       vars      // the variables of the event being judged
	ev      evidence  // what the event's alerts show besides
	now     time.Time // its time
	flows   *flows
	// toolNames caches each client's tool names (emptied when a
	// tools/list or a server's client changes)
	toolNames map[string][]string
	strs      []string
}

// New returns a correlator judging with rules (nil: attribution and
// baselines only).
func New(rules *RuleSet, o Options) *Correlator {
	if o.Dedupe == 0 {
		o.Dedupe = 5 * time.Second
	}
	c := &Correlator{opts: o, rules: rules, servers: map[string]*server{}, clients: map[string]map[string]*server{},
		recent: map[string]time.Time{}, sweepAt: 4096, flows: newFlows(), toolNames: map[string][]string{},
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
	s.FlowStats = c.flows.stats
	return s
}

func copyMap(m map[string]uint64) map[string]uint64 {
	out := make(map[string]uint64, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// Event judges one event and returns the alerts it raised (appended to out).
// It may annotate the event (an effect's call).
func (c *Correlator) Event(e decode.Event, out []*Alert) []*Alert {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.stats.Events++
	c.now = e.EventTime()
	switch v := e.(type) {
	case *decode.Effect:
		return c.effect(v, out)
	case *decode.Message:
		return c.message(v, out)
	}
	return out
}

func (c *Correlator) message(m *decode.Message, out []*Alert) []*Alert {
	s := c.server(&m.Proc)
	if s.speaker == 0 && m.Direction == "in" {
		// the process that reads the client's messages is the server
		// proper (npx's grandchild, not npx): what it runs is what the
		// server is
		s.speaker = m.PID
		if m.PID != s.identPID {
			c.identify(s, m.PID)
		}
	}
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
	// a tools/call's arguments, parsed once for the call, the variables
	// and the schema
	args := parseArgs(m.Arguments)
	var cl *call
	switch {
	case m.Direction == "in" && m.Type == "request" && callMethods[m.Method]:
		cl = s.open(m, args)
		c.callFlows(s, cl, m.Time)
		c.stats.Calls++
		s.callsTotal++
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
	typ := m.Method
	if typ == "" {
		typ = m.Type
	}
	c.ev = evidence{}
	c.content(s, m, cl)
	if !c.rules.looksAt("message", typ) {
		return out
	}
	c.base(&c.v, s, si, cl, m.Time)
	c.v.message = messageVars(m, args)
	if c.ev.hasContent {
		c.v.message.ContentScore = int64(c.ev.content.Score)
		c.v.message.ContentLabels = nonNil(c.ev.content.Labels())
	}
	if cl != nil && m.Direction == "in" {
		c.v.message.Flows, c.v.message.FlowClasses, c.v.message.FlowInjected = flowVars(cl)
		c.v.message.Outbound = cl.outbound
		c.v.message.Languages = nonNil(cl.langs)
	}
	if cl != nil {
		if errs := validateArgs(si, m, args); len(errs) > 0 {
			c.v.message.SchemaErrors = errs
		}
	}
	return c.judge("message", typ, m.Time, &m.Proc, cl, nil, m, "", out)
}

func (c *Correlator) effect(e *decode.Effect, out []*Alert) []*Alert {
	s := c.server(&e.Proc)
	switch e.Type {
	case "exec":
		if e.Result == 0 {
			if len(s.execs) < 256 {
				s.execs[e.PID] = execRec{exe: e.Path, argv: e.Argv}
			}
			if e.PID == s.pid {
				// the server's own command: what it runs now
				s.comm = e.Comm
				c.identify(s, e.PID)
			}
		}
		s.execRate.add(e.Time)
	case "discover":
		c.identify(s, e.PID)
	case "fork":
		s.forkRate.add(e.Time)
	case "open", "write":
		s.openRate.add(e.Time)
	case "listen", "bind":
		s.listens = s.listens || e.Type == "listen"
	case "http_request":
		s.request(e)
	case "exit":
		if e.PID == s.pid {
			defer c.gone(s)
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
	novel := false
	if e.Type == "exec" && e.Result == 0 {
		b := filepath.Base(e.Path)
		novel = !s.exes[b]
		s.exes[b] = true
	}
	c.ev = evidence{}
	sibling := e.Type == "open" && named && s.sibling(e, cl)
	if c.rules.looksAt("effect", e.Type) {
		c.base(&c.v, s, si, cl, e.Time)
		c.v.call.Ambiguous = cl != nil && len(calls) > 1
		c.v.effect = effectVars(e, named, novel)
		c.v.effect.Sibling = sibling
		if c.opts.Indicators != nil && e.Addr != "" && (e.Type == "connect" || e.Type == "sendto" || e.Type == "egress_denied") {
			c.v.effect.Indicator = c.opts.Indicators("destination", e.Addr)
		}
		if e.Type == "exec" && e.Result == 0 && len(s.inbound) > 0 {
			c.ev.request = s.fromRequest(e)
			c.v.effect.FromRequest, c.v.effect.Request = c.ev.request != "", c.ev.request
		}
		out = c.judge("effect", e.Type, e.Time, &e.Proc, cl, e, nil, "", out)
	}
	// taint after judging: the read itself is judged on its own
	if e.Type == "open" && e.Result >= 0 && c.rules.Match(e.Path, "credential_paths", s.homes) {
		s.taint = e.Path
	}
	if c.opts.Learn > 0 {
		out = c.baseline(s, cl, e, out)
	}
	return out
}
