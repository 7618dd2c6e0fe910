package correlate

import (
	"encoding/json"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/mcpsec/sensor/pkg/decode"
)

// baseVars are the server, session and call variables of an event.
func (c *Correlator) baseVars(s *server, si *sessionInfo, cl *call, now time.Time) map[string]map[string]any {
	a := s.ident.Attrs
	id := s.ident.Identity
	srv := map[string]any{
		"id": s.id, "name": s.name(), "key": s.key(), "kind": id.Kind, "version": id.Version,
		"pid": int64(s.pid), "comm": s.comm, "exe": a.Exe, "argv": nonNil(a.Argv), "cwd": a.Cwd,
		"uid": int64(a.UID), "user": a.User, "homes": nonNil(s.homes), "client": s.ident.Client.Key,
		"roots": nonNil(s.roots), "egress_allow": nonNil(c.opts.EgressAllow), "inflight": int64(len(s.calls)),
		"calls_per_min": s.callRate.perMin(now), "forks_per_min": s.forkRate.perMin(now),
		"opens_per_min": s.openRate.perMin(now), "execs_per_min": s.execRate.perMin(now),
		"tainted": s.taint != "", "taint_path": s.taint, "listening": s.listens, "http": s.http,
		"network_facing": s.http || s.listens, "started": s.started,
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

func nonNil(l []string) []string {
	if l == nil {
		return []string{}
	}
	return l
}

var (
	emptyEffect  = map[string]any{"type": ""}
	emptyMessage = map[string]any{"type": ""}
	emptyTool    = map[string]any{"name": ""}
)

func effectVars(e *decode.Effect, named, novel bool) map[string]any {
	host, port := splitAddr(e.Addr)
	return map[string]any{
		"type": e.Type, "path": e.Path, "raw": e.Raw, "to": e.To, "target": e.Target, "argv": nonNil(e.Argv),
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

func messageVars(m *decode.Message) map[string]any {
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
