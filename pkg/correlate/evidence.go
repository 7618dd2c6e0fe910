package correlate

import (
	"strings"

	"github.com/mcpsec/sensor/pkg/inspect"
)

// evidence is what an event's alerts show besides the event: the content
// report of a message, the request an exec came from.
type evidence struct {
	content    inspect.Report
	hasContent bool
	request    string
}

// evidenceFor is what an alert of rule r shows of the event being judged:
// the parts its condition looks at.
func (c *Correlator) evidenceFor(r *Rule, cl *call) map[string]any {
	cond := r.Effective
	var ev map[string]any
	put := func(k string, v any) {
		if ev == nil {
			ev = map[string]any{}
		}
		ev[k] = v
	}
	if c.ev.hasContent && strings.Contains(cond, "content_") && c.ev.content.Score > 0 {
		put("score", c.ev.content.Score)
		put("labels", c.ev.content.Labels())
		put("spans", c.ev.content.Evidence())
	}
	if cl != nil && len(cl.flows) > 0 && strings.Contains(cond, "flow") {
		// show the flow that came from instructions, if one did
		o := cl.flows[0].origin
		for _, h := range cl.flows {
			if h.origin.injected {
				o = h.origin
				break
			}
		}
		put("value", o.preview)
		put("class", o.class)
		put("from", map[string]any{"server": o.server, "tool": o.tool, "call": o.call})
		put("to", map[string]any{"server": c.v.server.Name, "tool": cl.ref.Tool, "call": string(cl.ref.ID)})
		// instructions in the value's own result, or in one the client
		// was given before the call
		put("origin_instructions", o.injected || cl.injection != nil)
		if len(cl.flows) > 1 {
			put("flows", len(cl.flows))
		}
		if inj := cl.injection; inj != nil {
			put("instructions_from", map[string]any{"server": inj.server, "tool": inj.tool, "call": inj.call})
		}
	}
	if c.ev.request != "" && strings.Contains(cond, "request") {
		put("request", c.ev.request)
	}
	args := c.v.call.ArgStrings
	if len(args) == 0 {
		args = c.v.message.ArgStrings
	}
	for _, l := range []struct {
		fn, lang string
		f        func(string) bool
	}{{"sql_injection(", "sql", sqlInjection}, {"template_injection(", "template", templateInjection}, {"path_traversal(", "path", pathTraversal}} {
		if strings.Contains(cond, l.fn) || strings.Contains(cond, `"`+l.lang+`" in `) {
			if a := firstMatching(args, l.f); a != "" {
				put("language", l.lang)
				put("argument", a)
				break
			}
		}
	}
	return ev
}
