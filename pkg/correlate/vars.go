package correlate

import (
	"net"
	"strconv"
	"strings"
	"time"

	"cel.dev/cel-go/interpreter"

	"github.com/mcpsec/sensor/pkg/decode"
)

// The variables rules see. They are Go types declared to CEL (ext.NativeTypes),
// so a rule naming a field that does not exist, or comparing it with the
// wrong type, is refused when it is loaded, with its file and line; the
// doc tags are the rule reference in rules/README.md (`sensor rules fields`).

// ServerVars is `server`.
type ServerVars struct {
	ID            string   `cel:"id" json:"id" doc:"the instance: root pid and start time"`
	Name          string   `cel:"name" json:"name" doc:"the printable name: package and version, script or executable"`
	Key           string   `cel:"key" json:"key" doc:"the identity everything learned is kept under: npm:@scope/name, pypi:name, go:module, node:/path/script.js, binary:/path"`
	Kind          string   `cel:"kind" json:"kind" doc:"npm, node, pypi, python, go, script or binary"`
	Version       string   `cel:"version" json:"version" doc:"the package's version"`
	PID           int64    `cel:"pid" json:"pid" doc:"the root process"`
	Comm          string   `cel:"comm" json:"comm" doc:"the root's command name"`
	Exe           string   `cel:"exe" json:"exe" doc:"the executable of the process that speaks MCP"`
	Argv          []string `cel:"argv" json:"argv" doc:"its command line"`
	Cwd           string   `cel:"cwd" json:"cwd" doc:"its working directory"`
	UID           int64    `cel:"uid" json:"uid" doc:"its real user id (-1: unknown)"`
	User          string   `cel:"user" json:"user" doc:"its user's name"`
	Homes         []string `cel:"homes" json:"homes" doc:"its $HOME and its user's passwd home"`
	Client        string   `cel:"client" json:"client" doc:"the process driving it over its stdio (pid-start)"`
	Roots         []string `cel:"roots" json:"roots" doc:"from --root, the directories its argv and its confinement variables name, its client's roots/list answer"`
	EgressAllow   []string `cel:"egress_allow" json:"egress_allow" doc:"the egress allow-list (egress_allow)"`
	Inflight      int64    `cel:"inflight" json:"inflight" doc:"calls in flight"`
	CallsPerMin   int64    `cel:"calls_per_min" json:"calls_per_min" doc:"calls in the last minute"`
	ForksPerMin   int64    `cel:"forks_per_min" json:"forks_per_min" doc:"forks in the last minute"`
	OpensPerMin   int64    `cel:"opens_per_min" json:"opens_per_min" doc:"opens in the last minute"`
	ExecsPerMin   int64    `cel:"execs_per_min" json:"execs_per_min" doc:"execs in the last minute"`
	Tainted       bool     `cel:"tainted" json:"tainted" doc:"it read a file of credential_paths"`
	TaintPath     string   `cel:"taint_path" json:"taint_path" doc:"the file that tainted it"`
	Listening     bool     `cel:"listening" json:"listening" doc:"it listens on a socket"`
	HTTP          bool     `cel:"http" json:"http" doc:"it speaks MCP over HTTP"`
	NetworkFacing bool     `cel:"network_facing" json:"network_facing" doc:"it listens or speaks HTTP"`
	Started       bool     `cel:"started" json:"started" doc:"a call was seen"`
	Startup       bool     `cel:"startup" json:"startup" doc:"it has not been asked anything yet: no call, no HTTP request"`
}

// SessionVars is `session`.
type SessionVars struct {
	ID              string `cel:"id" json:"id" doc:"the session of the call"`
	ProtocolVersion string `cel:"protocol_version" json:"protocol_version" doc:"the version negotiated"`
	Transport       string `cel:"transport" json:"transport" doc:"stdio, streamable-http or sse"`
}

// CallVars is `call`: the call the event belongs to.
type CallVars struct {
	Active       bool           `cel:"active" json:"active" doc:"the event belongs to a call in flight"`
	ID           string         `cel:"id" json:"id" doc:"the request id (raw JSON)"`
	Method       string         `cel:"method" json:"method" doc:"tools/call, resources/read, prompts/get, ..."`
	Tool         string         `cel:"tool" json:"tool" doc:"the tool called"`
	Session      string         `cel:"session" json:"session" doc:"its session"`
	Args         map[string]any `cel:"args" json:"args" doc:"its arguments (a map)"`
	ArgStrings   []string       `cel:"arg_strings" json:"arg_strings" doc:"every string in the arguments"`
	Ambiguous    bool           `cel:"ambiguous" json:"ambiguous" doc:"several calls in flight, none named by the effect"`
	ElapsedMS    int64          `cel:"elapsed_ms" json:"elapsed_ms" doc:"ms since the request"`
	Flows        []string       `cel:"flows" json:"flows" doc:"values of its arguments that first came in a result: class, server, tool and call of each"`
	FlowClasses  []string       `cel:"flow_classes" json:"flow_classes" doc:"their classes: secret, email, phone, url, token"`
	FlowInjected bool           `cel:"flow_injected" json:"flow_injected" doc:"a flow, and its client was given instructions in a result within 10 minutes"`
	Outbound     bool           `cel:"outbound" json:"outbound" doc:"its tool sends what it is given (its name or description says send, post, create, write, ...)"`
	Languages    []string       `cel:"languages" json:"languages" doc:"the languages whose injection markers its arguments carry: sql, template, path, shell (sql_injection(), template_injection(), path_traversal(), shell_meta())"`
}

// EffectVars is `effect`.
type EffectVars struct {
	Type     string   `cel:"type" json:"type" doc:"exec, open, write, connect, ... (the JSON contract's types)"`
	Path     string   `cel:"path" json:"path" doc:"the path, resolved by the kernel for opens and fd-based calls"`
	Raw      string   `cel:"raw" json:"raw" doc:"the path as the process passed it"`
	To       string   `cel:"to" json:"to" doc:"rename: the new path"`
	Target   string   `cel:"target" json:"target" doc:"link, symlink: what the link points to"`
	Argv     []string `cel:"argv" json:"argv" doc:"exec: the command line"`
	Addr     string   `cel:"addr" json:"addr" doc:"the address: 127.0.0.1:80, [::1]:80, a unix path"`
	Host     string   `cel:"host" json:"host" doc:"the address's host"`
	Port     int64    `cel:"port" json:"port" doc:"the address's port"`
	Local    string   `cel:"local" json:"local" doc:"accept: the local address"`
	Socket   string   `cel:"socket" json:"socket" doc:"tcp, udp, unix, ..."`
	Flags    string   `cel:"flags" json:"flags" doc:"open flags, clone flags"`
	Access   string   `cel:"access" json:"access" doc:"read, write or read-write"`
	Mode     string   `cel:"mode" json:"mode" doc:"file mode"`
	Result   int64    `cel:"result" json:"result" doc:"the syscall's result"`
	Errno    string   `cel:"errno" json:"errno" doc:"its error name (ENOENT, EPERM, ...)"`
	PID      int64    `cel:"pid" json:"pid" doc:"the process"`
	TID      int64    `cel:"tid" json:"tid" doc:"the thread"`
	Comm     string   `cel:"comm" json:"comm" doc:"the process's command name"`
	Detail   string   `cel:"detail" json:"detail" doc:"what else the kernel said (ptrace request, uid=...)"`
	Named    bool     `cel:"named" json:"named" doc:"the call's arguments name what it touched"`
	NovelExe bool     `cel:"novel_exe" json:"novel_exe" doc:"the first time this server runs this program"`
	Loopback bool     `cel:"loopback" json:"loopback" doc:"the address stays on the host"`
	External bool     `cel:"external" json:"external" doc:"the address leaves the host"`
	// launchers and confinement
	FromRequest bool   `cel:"from_request" json:"from_request" doc:"exec: its argv carries data of an HTTP request (not MCP) the server received in the last 30 s"`
	Request     string `cel:"request" json:"request" doc:"exec: that request's method, target and body's start"`
	Sibling     bool   `cel:"sibling" json:"sibling" doc:"open: the first in a directory next to one the server's calls used at least twice"`
	Indicator   string `cel:"indicator" json:"indicator" doc:"connect, sendto, egress_denied: the fleet indicator naming the address (its origin), \"\" if none"`
}

// HTTPVars is `message.http`: the exchange a message came in.
type HTTPVars struct {
	Transport       string `cel:"transport" json:"transport" doc:"streamable-http or sse"`
	Method          string `cel:"method" json:"method" doc:"the HTTP method"`
	Target          string `cel:"target" json:"target" doc:"the request target"`
	Status          int64  `cel:"status" json:"status" doc:"the response status"`
	Host            string `cel:"host" json:"host" doc:"the Host header"`
	Origin          string `cel:"origin" json:"origin" doc:"the Origin header"`
	SessionID       string `cel:"session_id" json:"session_id" doc:"Mcp-Session-Id"`
	ProtocolVersion string `cel:"protocol_version" json:"protocol_version" doc:"MCP-Protocol-Version"`
	McpMethod       string `cel:"mcp_method" json:"mcp_method" doc:"Mcp-Method"`
	McpName         string `cel:"mcp_name" json:"mcp_name" doc:"Mcp-Name"`
}

// MessageVars is `message`.
type MessageVars struct {
	Direction       string   `cel:"direction" json:"direction" doc:"in (to the server) or out"`
	Type            string   `cel:"type" json:"type" doc:"request, notification, response, error or invalid"`
	Method          string   `cel:"method" json:"method" doc:"the method"`
	ID              string   `cel:"id" json:"id" doc:"the id (raw JSON)"`
	Tool            string   `cel:"tool" json:"tool" doc:"tools/call: the tool"`
	Size            int64    `cel:"size" json:"size" doc:"bytes"`
	Truncated       bool     `cel:"truncated" json:"truncated" doc:"cut at the message cap"`
	Batch           int64    `cel:"batch" json:"batch" doc:"its batch's size (0: none)"`
	ProtocolVersion string   `cel:"protocol_version" json:"protocol_version" doc:"the version it names"`
	DuplicateID     bool     `cel:"duplicate_id" json:"duplicate_id" doc:"its id is in flight already"`
	Unmatched       bool     `cel:"unmatched" json:"unmatched" doc:"a response with no request"`
	Raw             string   `cel:"raw" json:"raw" doc:"an invalid line's start"`
	Session         string   `cel:"session" json:"session" doc:"its session"`
	SchemaErrors    []string `cel:"schema_errors" json:"schema_errors" doc:"what the tool's input schema refuses in the arguments"`
	ArgStrings      []string `cel:"arg_strings" json:"arg_strings" doc:"every string in the arguments"`
	Text            string   `cel:"text" json:"text" doc:"params in, result out (256 KiB at most)"`
	RequestMethod   string   `cel:"request_method" json:"request_method" doc:"a response: its request's method"`
	RequestTool     string   `cel:"request_tool" json:"request_tool" doc:"a response: its request's tool"`
	HTTP            HTTPVars `cel:"http" json:"http" doc:"the HTTP exchange (see message.http)"`
	ContentScore    int64    `cel:"content_score" json:"content_score" doc:"out: what the server wrote for the model (a result, a sampling or elicitation request) scored for instructions, hidden text and exfiltration links (0-20)"`
	ContentLabels   []string `cel:"content_labels" json:"content_labels" doc:"out: what was found: override, urgent_tag, hide_from_user, tool_directive, unicode_tags, markdown_image_exfil, ..."`
	Flows           []string `cel:"flows" json:"flows" doc:"in, tools/call: values of the arguments that first came in a result"`
	FlowClasses     []string `cel:"flow_classes" json:"flow_classes" doc:"in, tools/call: their classes: secret, email, phone, url, token"`
	FlowInjected    bool     `cel:"flow_injected" json:"flow_injected" doc:"in, tools/call: a flow, and the client was given instructions in a result within 10 minutes"`
	Outbound        bool     `cel:"outbound" json:"outbound" doc:"in, tools/call: the tool sends what it is given (name or description: send, post, create, write, ...)"`
	Languages       []string `cel:"languages" json:"languages" doc:"in, a call: the languages whose injection markers its arguments carry: sql, template, path, shell"`
}

// ToolVars is `tool`: a tool a tools/list answer declares.
type ToolVars struct {
	Name              string   `cel:"name" json:"name" doc:"its name"`
	Indicator         string   `cel:"indicator" json:"indicator" doc:"the fleet indicator naming its definition's hash (its origin), \"\" if none"`
	Description       string   `cel:"description" json:"description" doc:"its description"`
	Text              string   `cel:"text" json:"text" doc:"every description and title in the definition"`
	Hash              string   `cel:"hash" json:"hash" doc:"SHA-256 of the definition"`
	Changed           bool     `cel:"changed" json:"changed" doc:"differs from the definition first pinned for the server's identity"`
	PreviousHash      string   `cel:"previous_hash" json:"previous_hash" doc:"the pinned definition's hash"`
	Shadows           []string `cel:"shadows" json:"shadows" doc:"the other servers of the same client declaring the name"`
	Others            []string `cel:"others" json:"others" doc:"their tool names"`
	Referenced        []string `cel:"referenced" json:"referenced" doc:"those of their tools the text names as whole words"`
	ReferencedServers []string `cel:"referenced_servers" json:"referenced_servers" doc:"the servers of those tools"`
	Server            string   `cel:"server" json:"server" doc:"the server's name"`
}

// vars are the variables of one evaluation; one set is reused per
// correlator (and nothing in them is kept past the evaluation).
type vars struct {
	server  ServerVars
	session SessionVars
	call    CallVars
	effect  EffectVars
	message MessageVars
	tool    ToolVars
}

// ResolveName and Parent make vars a CEL activation without a map.
func (v *vars) ResolveName(name string) (any, bool) {
	switch name {
	case "server":
		return &v.server, true
	case "session":
		return &v.session, true
	case "call":
		return &v.call, true
	case "effect":
		return &v.effect, true
	case "message":
		return &v.message, true
	case "tool":
		return &v.tool, true
	}
	return nil, false
}

// Parent is none: the variables are all there is.
func (v *vars) Parent() interpreter.Activation { return nil }

func nonNil(l []string) []string {
	if l == nil {
		return []string{}
	}
	return l
}

var emptyArgs = map[string]any{}

// base fills the server, session and call variables of an event and
// empties the others.
func (c *Correlator) base(v *vars, s *server, si *sessionInfo, cl *call, now time.Time) {
	a := s.ident.Attrs
	id := s.ident.Identity
	v.server = ServerVars{
		ID: s.id, Name: s.name(), Key: s.key(), Kind: id.Kind, Version: id.Version,
		PID: int64(s.pid), Comm: s.comm, Exe: a.Exe, Argv: nonNil(a.Argv), Cwd: a.Cwd,
		UID: int64(a.UID), User: a.User, Homes: nonNil(s.homes), Client: s.ident.Client.Key,
		Roots: nonNil(s.roots), EgressAllow: nonNil(c.opts.EgressAllow), Inflight: int64(len(s.calls)),
		CallsPerMin: s.callRate.perMin(now), ForksPerMin: s.forkRate.perMin(now),
		OpensPerMin: s.openRate.perMin(now), ExecsPerMin: s.execRate.perMin(now),
		Tainted: s.taint != "", TaintPath: s.taint, Listening: s.listens, HTTP: s.http,
		NetworkFacing: s.http || s.listens, Started: s.started, Startup: !s.started && !s.requested,
	}
	v.session = SessionVars{}
	if si != nil {
		v.session.ProtocolVersion, v.session.Transport = si.version, si.transport
	}
	v.call = CallVars{Args: emptyArgs, ArgStrings: []string{}, Flows: []string{}, FlowClasses: []string{}, Languages: []string{}}
	if cl != nil {
		v.session.ID = cl.ref.Session
		v.call = CallVars{Active: true, ID: string(cl.ref.ID), Tool: cl.ref.Tool, Method: cl.ref.Method, Session: cl.ref.Session,
			Args: emptyArgs, ArgStrings: nonNil(cl.strs), ElapsedMS: int64(now.Sub(cl.start) / time.Millisecond)}
		if cl.args != nil {
			v.call.Args = cl.args
		}
		v.call.Flows, v.call.FlowClasses, v.call.FlowInjected = flowVars(cl)
		v.call.Outbound = cl.outbound
		v.call.Languages = nonNil(cl.langs)
	}
	v.effect = EffectVars{Argv: []string{}}
	v.message = MessageVars{SchemaErrors: []string{}, ArgStrings: []string{}, ContentLabels: []string{}, Flows: []string{}, FlowClasses: []string{}, Languages: []string{}}
	v.tool = ToolVars{Shadows: []string{}, Others: []string{}, Referenced: []string{}, ReferencedServers: []string{}}
}

func effectVars(e *decode.Effect, named, novel bool) EffectVars {
	host, port := splitAddr(e.Addr)
	return EffectVars{
		Type: e.Type, Path: e.Path, Raw: e.Raw, To: e.To, Target: e.Target, Argv: nonNil(e.Argv),
		Addr: e.Addr, Host: host, Port: int64(port), Local: e.Local, Socket: e.Socket,
		Flags: e.Flags, Access: e.Access, Mode: e.Mode, Result: e.Result, Errno: e.Errno,
		PID: int64(e.PID), TID: int64(e.TID), Comm: e.Comm, Detail: e.Detail,
		Named: named, NovelExe: novel, Loopback: isLoopback(e.Addr, host),
		External: host != "" && !isLoopback(e.Addr, host) && !strings.HasPrefix(e.Addr, "/") && !strings.HasPrefix(e.Addr, "@"),
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

func messageVars(m *decode.Message, args *parsedArgs) MessageVars {
	v := MessageVars{
		Direction: m.Direction, Type: m.Type, Method: m.Method, ID: string(m.ID), Tool: m.Tool,
		Size: int64(m.Size), Truncated: m.Truncated, Batch: int64(m.Batch),
		ProtocolVersion: m.ProtocolVersion, DuplicateID: m.DuplicateID, Unmatched: m.Unmatched,
		Raw: m.Raw, Session: m.Session, SchemaErrors: []string{}, ArgStrings: []string{},
		ContentLabels: []string{}, Flows: []string{}, FlowClasses: []string{}, Languages: []string{},
	}
	if m.Request != nil {
		v.RequestMethod, v.RequestTool = m.Request.Method, m.Request.Tool
	}
	if args.ok {
		v.ArgStrings = args.strs()
	}
	// the text secrets and instructions are looked for in (bounded)
	text := m.Params
	if m.Direction == "out" {
		text = m.Result
	}
	if len(text) > 256<<10 {
		text = text[:256<<10]
	}
	v.Text = string(text)
	if h := m.HTTP; h != nil {
		v.HTTP = HTTPVars{Transport: h.Transport, Method: h.Method, Target: h.Target,
			Status: int64(h.Status), Host: h.Host, Origin: h.Origin, SessionID: h.SessionID,
			ProtocolVersion: h.ProtocolVersion, McpMethod: h.McpMethod, McpName: h.McpName}
	}
	return v
}
