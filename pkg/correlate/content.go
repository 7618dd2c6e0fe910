package correlate

import (
	"sort"
	"strings"
	"time"

	"github.com/mcpsec/sensor/pkg/decode"
	"github.com/mcpsec/sensor/pkg/inspect"
)

// What a server sends the model is inspected for instructions aimed at it,
// hidden text and exfiltration links (pkg/inspect); what a result carries
// is indexed for the client's later calls (flow.go).

// injectionMemory is how long a result with instructions taints what its
// client sends afterwards.
const injectionMemory = 10 * time.Minute

// inspected are the messages a server writes for the model: results of
// calls, and its own requests to the client (sampling, elicitation).
func inspected(m *decode.Message) []byte {
	if m.Direction != "out" {
		return nil
	}
	switch {
	case (m.Type == "response") && m.Request != nil && callMethods[m.Request.Method]:
		return m.Result
	case m.Type == "request" && (m.Method == "sampling/createMessage" || m.Method == "elicitation/create"):
		return m.Params
	}
	return nil
}

// clientKey names the client a server's flows are kept under: its client
// process, or the server itself when its client is not known.
func clientKey(s *server) string {
	if k := s.ident.Client.Key; k != "" {
		return k
	}
	return "server:" + s.id
}

// clientTools are the tool names of the other servers of a server's
// client (what a directive in its results should not name).
func (c *Correlator) clientTools(s *server) []string {
	k := clientKey(s)
	if t, ok := c.toolNames[k]; ok {
		return t
	}
	// the server's own tools are what its own documentation names; a
	// directive naming another server's tool is the one that hijacks
	var names []string
	for _, p := range c.peers(s) {
		for n := range p.tools {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	if len(c.toolNames) > 4096 {
		clear(c.toolNames)
	}
	c.toolNames[k] = names
	return names
}

// content inspects what a server sends the model and indexes the values
// of a result; the report goes to the message's variables.
func (c *Correlator) content(s *server, m *decode.Message, cl *call) {
	raw := inspected(m)
	if len(raw) == 0 {
		return
	}
	// one walk of the JSON for the inspection and the flow index
	c.strs = inspect.Strings(raw, c.strs[:0])
	rep := inspect.InspectStrings(c.strs, &inspect.Options{Tools: c.clientTools(s)})
	c.ev.content = rep
	c.ev.hasContent = true
	k := clientKey(s)
	ix := c.flows.index(k)
	o := flowOrigin{server: s.name(), serverID: s.id, injected: rep.Score >= 3, at: m.Time}
	if m.Request != nil {
		o.tool = m.Request.Tool
		if o.tool == "" {
			o.tool = m.Request.Method
		}
	}
	o.call = string(m.ID)
	if o.injected {
		ix.injection = o
	}
	if cl != nil || m.Type == "response" {
		c.flows.result(k, c.strs, o)
	}
}

// callFlows finds the values of a request's arguments that came from
// results, and whether the client was given instructions before.
func (c *Correlator) callFlows(s *server, cl *call, now time.Time) {
	k := clientKey(s)
	cl.flows = c.flows.request(k, cl.strs, cl.flows[:0])
	ix := c.flows.index(k)
	if len(cl.flows) > 0 && !ix.injection.at.IsZero() && now.Sub(ix.injection.at) < injectionMemory {
		inj := ix.injection
		cl.injection = &inj
	}
	cl.outbound = outboundTool(s, cl.ref.Tool)
}

// flowVars describes a call's flows for the rules.
func flowVars(cl *call) (descs, classes []string, injected bool) {
	descs, classes = []string{}, []string{}
	for _, h := range cl.flows {
		o := h.origin
		descs = append(descs, o.class+" from "+o.server+" "+o.tool+" (call "+o.call+")")
		classes = appendUnique(classes, o.class)
		injected = injected || o.injected
	}
	return descs, classes, injected || cl.injection != nil
}

// outboundWords, in a tool's name or the start of its description, say
// that the tool sends what it is given somewhere.
var outboundWords = map[string]bool{
	"send": true, "sends": true, "post": true, "posts": true, "submit": true, "submits": true, "create": true, "creates": true,
	"publish": true, "publishes": true, "block": true, "write": true, "writes": true, "email": true, "mail": true,
	"message": true, "upload": true, "uploads": true, "share": true, "shares": true, "forward": true, "forwards": true,
	"notify": true, "comment": true, "tweet": true, "reply": true, "invite": true, "transfer": true, "webhook": true,
	"sms": true, "dm": true, "push": true, "pay": true,
}

// outboundTool says whether a tool of s sends data out, by its name or
// the first words of its description.
func outboundTool(s *server, tool string) bool {
	for _, w := range words(tool) {
		if outboundWords[w] {
			return true
		}
	}
	if t := s.tools[tool]; t != nil {
		d := t.def.Description
		if i := strings.IndexAny(d, ".\n"); i > 0 {
			d = d[:i]
		}
		ws := words(d)
		for _, w := range ws[:min(len(ws), 4)] {
			if outboundWords[w] {
				return true
			}
		}
	}
	return false
}

// words splits a name (snake, kebab, camel case) or a sentence into
// lower-case words.
func words(s string) []string {
	var out []string
	start := -1
	for i := 0; i <= len(s); i++ {
		var ch byte
		if i < len(s) {
			ch = s[i]
		}
		isLetter := ch >= 'a' && ch <= 'z' || ch >= 'A' && ch <= 'Z'
		upper := ch >= 'A' && ch <= 'Z'
		if start >= 0 && (!isLetter || (upper && i > start && s[i-1] >= 'a' && s[i-1] <= 'z')) {
			out = append(out, strings.ToLower(s[start:i]))
			start = -1
		}
		if isLetter && start < 0 {
			start = i
		}
	}
	return out
}
