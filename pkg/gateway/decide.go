package gateway

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
)

// fromClient judges a line from the client: each request the policy
// refuses is answered here and never reaches the server; the rest passes
// unchanged (a batch loses only its refused members).
func (g *Gateway) fromClient(line []byte, tooLong bool) {
	if tooLong {
		g.Stats.Oversized.Add(1)
		g.decide(Decision{Verdict: "denied", Direction: "in", Reason: "a message longer than the gateway's limit cannot be judged"})
		return
	}
	if blank(line) {
		g.write(false, line)
		return
	}
	if i := bytes.IndexByte(line, '\r'); i >= 0 && i != len(line)-2 {
		// a lone CR ends a line for some servers (Python's text
		// streams): one line here could be several there
		g.write(true, g.invalid(line))
		return
	}
	fwd, reply := g.JudgeClient(line)
	if reply != nil {
		g.write(true, reply)
	}
	if fwd != nil {
		g.write(false, fwd)
	}
}

// JudgeClient decides a message (or a batch) from the client: what goes on
// to the server (nil: nothing) and what the client is answered here (nil:
// nothing). An allowed message goes on as it came.
func (g *Gateway) JudgeClient(line []byte) (fwd, reply []byte) {
	return judgeLine(line, func(e []byte) ([]byte, []byte) {
		ok, r := g.clientMessage(e)
		if ok {
			return e, r
		}
		return nil, r
	}, func() ([]byte, []byte) { return nil, g.invalid(line) })
}

// judgeLine judges a message, or each member of a batch, with one: what
// goes on (the line as it came when nothing in it was refused or changed,
// else the batch of what is left) and what goes back (a batch of answers
// for a batch). A batch that does not parse is invalid's.
func judgeLine(line []byte, one func([]byte) (out, back []byte), invalid func() (out, back []byte)) (out, back []byte) {
	if !isBatch(line) {
		return one(line)
	}
	var elems []json.RawMessage
	if json.Unmarshal(line, &elems) != nil || len(elems) == 0 {
		return invalid()
	}
	changed := false
	var keep, backs []json.RawMessage
	for _, e := range elems {
		o, b := one(e)
		changed = changed || o == nil || !bytes.Equal(o, e)
		if o != nil {
			keep = append(keep, o)
		}
		if b != nil {
			backs = append(backs, b)
		}
	}
	if len(backs) > 0 {
		back, _ = json.Marshal(backs)
	}
	switch {
	case !changed:
		out = line
	case len(keep) > 0:
		out, _ = json.Marshal(keep)
	}
	return out, back
}

// invalid drops a client line that is not JSON-RPC: a server's lenient
// parser could read in it what the gateway did not.
func (g *Gateway) invalid(line []byte) []byte {
	g.Stats.Invalid.Add(1)
	g.decide(Decision{Verdict: "denied", Direction: "in", Reason: "not a JSON-RPC message"})
	return errorReply(json.RawMessage("null"), codeInvalid, "mcp-sensor: not a JSON-RPC message", nil)
}

// clientMessage decides one message: pass it on, and/or answer it.
func (g *Gateway) clientMessage(raw []byte) (bool, []byte) {
	m, ok := parseMessage(raw)
	if !ok || (m.Method == "" && !m.HasID) || (m.HasID && idKey(m.ID) == "") {
		return false, g.invalid(raw)
	}
	if m.Method == "notifications/cancelled" {
		var c struct {
			RequestID json.RawMessage `json:"requestId"`
		}
		if json.Unmarshal(m.Params, &c) == nil {
			g.mu.Lock()
			delete(g.pending, idKey(c.RequestID))
			g.mu.Unlock()
		}
	}
	if !m.request() && !callMethod(m.Method) {
		return true, nil // notifications and the client's answers pass
	}
	if !callMethod(m.Method) {
		// the protocol's own requests (initialize, ping, lists: filtered
		// on the way back) pass
		g.track(m.ID, m.Method, "")
		return true, nil
	}
	pol, srv := g.policy(true)
	d := Decision{Direction: "in", Method: m.Method, ID: m.ID, Server: srv.Name}
	deny := func(code int, reason string) (bool, []byte) {
		d.Verdict, d.Reason = "denied", reason
		g.decide(d)
		if !m.HasID {
			return false, nil // a call sent as a notification: refused, nobody to answer
		}
		return false, errorReply(m.ID, code, "mcp-sensor: denied by policy "+d.Policy+": "+reason,
			map[string]any{"policy": d.Policy, "policy_version": g.o.Policy.Version, "reason": reason})
	}
	d.Policy = pol.ID
	if ok, why := pol.Admits(g.o.Principal); !ok {
		return deny(codeDenied, why)
	}
	th := g.threat()
	p, clear := parseParams(m.Params)
	if !clear {
		return deny(codeDenied, "its params repeat a field or spell one in other case: servers would read it differently")
	}
	var why string
	switch m.Method {
	case "tools/call":
		d.Tool = p.Name
		ok, why = pol.Tool(p.Name, argsOf(p.Args), th)
		g.mu.Lock()
		rugged := g.changed[p.Name]
		g.mu.Unlock()
		// a call made before (or without) any tools/list in this session
		// is held to the pins as well
		rugged = rugged || (g.o.Pins != nil && g.o.Pins.Unapproved(srv.Key, p.Name))
		if ok && rugged {
			ok, why = false, fmt.Sprintf("tool %q changed since it was pinned: review it with `sensor tools diff --server %s`, approve it with `sensor tools approve`", p.Name, srv.Key)
		}
	case "resources/read", "resources/subscribe":
		d.Tool = p.URI
		ok, why = pol.Resource(p.URI, m.Method == "resources/subscribe")
	case "prompts/get":
		d.Tool = p.Name
		ok, why = pol.Prompt(p.Name)
	}
	if ok && th.Contained != "" {
		return deny(codeContained, "the server is contained: "+th.Contained)
	}
	if !ok {
		code := codeDenied
		if th.Contained != "" {
			code = codeContained
		}
		return deny(code, why)
	}
	if !g.track(m.ID, m.Method, d.Tool) {
		return deny(codeContained, "the server is contained: "+g.threat().Contained)
	}
	d.Verdict = "allowed"
	g.decide(d)
	return true, nil
}

// track remembers a request in flight, for its answer; false if the server
// was contained meanwhile (a call must not slip past Contain).
func (g *Gateway) track(id json.RawMessage, method, tool string) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.contain != "" && callMethod(method) {
		return false
	}
	if len(id) == 0 {
		return true
	}
	k := idKey(id)
	delete(g.answered, k)
	if len(g.pending) >= 4096 { // a client that never gets answers: forget one (its answer is judged by its shape)
		for old := range g.pending {
			delete(g.pending, old)
			break
		}
	}
	g.pending[k] = pending{method: method, tool: tool, id: id}
	return true
}

// fromServer passes a line from the server to the client: lists are
// filtered by the policy, results scanned, the server's requests to the
// client judged (a refused one is answered here).
func (g *Gateway) fromServer(line []byte, tooLong bool) {
	if tooLong {
		g.Stats.Oversized.Add(1)
		g.decide(Decision{Verdict: "denied", Direction: "out", Reason: "a message longer than the gateway's limit cannot be judged"})
		return
	}
	if blank(line) {
		g.write(true, line)
		return
	}
	out, back := g.JudgeServer(line)
	if back != nil {
		g.write(false, back)
	}
	if out != nil {
		g.write(true, out)
	}
}

// JudgeServer decides a message (or a batch) from the server: what goes on
// to the client (nil: nothing), and what the server is answered here.
func (g *Gateway) JudgeServer(line []byte) (out, back []byte) {
	return judgeLine(line, g.serverMessage, func() ([]byte, []byte) {
		// as for one message: what the gateway cannot read, a client's
		// lenient parser might; dropped, counted
		g.Stats.ServerInvalid.Add(1)
		g.decide(Decision{Verdict: "denied", Direction: "out", Reason: "not a JSON-RPC batch the gateway can judge"})
		return nil, nil
	})
}

// serverMessage decides one message from the server: what goes to the
// client (nil: nothing), and what goes back to the server.
func (g *Gateway) serverMessage(raw []byte) ([]byte, []byte) {
	m, ok := parseMessage(raw)
	if !ok || (m.HasID && idKey(m.ID) == "") {
		// not JSON-RPC as the gateway reads it: a client's more lenient
		// parser could read a list or a result in it; dropped, counted
		g.Stats.ServerInvalid.Add(1)
		g.decide(Decision{Verdict: "denied", Direction: "out", Reason: "not a JSON-RPC message the gateway can judge"})
		return nil, nil
	}
	pol, srv := g.policy(false)
	if m.request() {
		if ok, why := pol.ServerRequest(m.Method); !ok {
			g.decide(Decision{Verdict: "denied", Direction: "out", Method: m.Method, ID: m.ID, Policy: pol.ID, Server: srv.Name, Reason: why})
			return nil, errorReply(m.ID, codeDenied, "mcp-sensor: denied by policy "+pol.ID+": "+why, nil)
		}
		return raw, nil
	}
	if m.Method != "" || !m.HasID {
		return raw, nil // notifications
	}
	k := idKey(m.ID)
	g.mu.Lock()
	p, ok := g.pending[k]
	delete(g.pending, k)
	late := g.answered[k]
	delete(g.answered, k)
	g.mu.Unlock()
	if late {
		return nil, nil // the client had its answer from the gateway
	}
	if len(m.Result) == 0 {
		return raw, nil
	}
	if !ok {
		// an answer to no request the gateway knows: judged by its shape
		p = pending{method: shapeOf(m.Result)}
	}
	d := Decision{Direction: "out", Method: p.method, Tool: p.tool, ID: m.ID, Policy: pol.ID, Server: srv.Name}
	switch p.method {
	case "tools/list", "resources/list", "prompts/list", "resources/templates/list":
		// pins first, on the bytes the server sent (what the pins hash)
		res, rugged := m.Result, []string(nil)
		if p.method == "tools/list" && g.o.Pins != nil {
			var fine []string
			res, rugged, fine = unpinned(g.o.Pins, srv.Key, res)
			g.mu.Lock() // a page says nothing of the tools of other pages
			for _, t := range fine {
				delete(g.changed, t)
			}
			for _, t := range rugged {
				g.changed[t] = true
			}
			g.mu.Unlock()
			if len(rugged) > 0 {
				g.decide(Decision{Verdict: "filtered", Direction: "out", Method: p.method, ID: m.ID, Policy: pol.ID, Server: srv.Name,
					Reason: "changed since pinned, until approved: " + strings.Join(rugged, ", ")})
			}
		}
		res, n := filterList(pol, p.method, res)
		n += len(rugged)
		if n == 0 {
			return raw, nil
		}
		d.Verdict, d.Reason = "filtered", plural(n, "entry", "entries")+" the policy does not allow"
		g.decide(d)
		return replaceResult(m, res), nil
	case "tools/call", "resources/read", "prompts/get":
		res, verdict, why := scanResult(pol, m.Result)
		switch verdict {
		case "":
			return raw, nil
		case "denied":
			d.Verdict, d.Reason = "denied", why
			g.decide(d)
			return errorReply(m.ID, codeDenied, "mcp-sensor: result withheld by policy "+pol.ID+": "+why, nil), nil
		case "flagged":
			d.Verdict, d.Reason = "flagged", why
			g.decide(d)
			return raw, nil
		}
		d.Verdict, d.Reason = "redacted", why
		g.decide(d)
		return replaceResult(m, res), nil
	}
	return raw, nil
}

// shapeOf names the method whose result this looks like: a list, or else
// a result to scan.
func shapeOf(result json.RawMessage) string {
	var obj map[string]json.RawMessage
	_ = json.Unmarshal(result, &obj)
	for _, k := range []struct{ key, method string }{{"tools", "tools/list"}, {"resources", "resources/list"}, {"prompts", "prompts/list"}} {
		if _, ok := obj[k.key]; ok {
			return k.method
		}
	}
	return "tools/call"
}

// replaceResult re-encodes a response with a new result.
func replaceResult(m message, res json.RawMessage) []byte {
	b, _ := json.Marshal(map[string]any{"jsonrpc": "2.0", "id": m.ID, "result": res})
	return b
}

func plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return strconv.Itoa(n) + " " + many
}
