package gateway

import (
	"fmt"
	"path"
	"strings"

	"cel.dev/cel-go/cel"
	"github.com/mcpsec/sensor/pkg/correlate"
)

// Server is what the gateway knows of the server behind it.
type Server struct {
	Key     string // identity key: npm:@scope/name, binary:/path, ...
	Name    string // printable name
	Command string
}

// Principal is the client on the other side: for stdio, the client process
// as the kernel sees it.
type Principal struct {
	UID int
	Exe string
}

// String names the principal in decisions.
func (p Principal) String() string { return fmt.Sprintf("uid=%d exe=%s", p.UID, p.Exe) }

// Threat is the sensor's view of the server now.
type Threat struct {
	Tainted   bool   // it read a credential file
	Severity  string // the highest alert severity so far ("" none)
	Alerts    int
	Contained string // why it is contained ("" not)
}

func (t Threat) vars() map[string]any {
	return map[string]any{"tainted": t.Tainted, "severity": t.Severity, "alerts": int64(t.Alerts),
		"severity_rank": int64(correlate.SeverityRank(t.Severity)), "contained": t.Contained != ""}
}

// For is the first policy whose servers match srv (nil: none does, and
// nothing is allowed).
func (s *Set) For(srv Server) *Policy {
	for _, p := range s.Policies {
		if len(p.Servers) == 0 {
			return p
		}
		for _, g := range p.Servers {
			if glob(g, srv.Key) || glob(g, srv.Name) || glob(g, srv.Command) {
				return p
			}
		}
	}
	return nil
}

// glob matches like path.Match, with "**" crossing "/" and a bare "*"
// matching anything.
func glob(pat, s string) bool {
	if s == "" {
		return false
	}
	if pat == "*" || pat == "**" || pat == s {
		return true
	}
	if strings.Contains(pat, "**") {
		pre, post, _ := strings.Cut(pat, "**")
		if !strings.HasPrefix(s, pre) {
			return false
		}
		rest := s[len(pre):]
		for i := 0; i <= len(rest); i++ {
			if glob(post, rest[i:]) || (post == "" && i == len(rest)) {
				return true
			}
		}
		return false
	}
	ok, _ := path.Match(pat, s)
	return ok
}

func anyGlob(pats []string, s string) bool {
	for _, p := range pats {
		if glob(p, s) {
			return true
		}
	}
	return false
}

// allows: deny wins; an empty allow list is every name.
func (l Lists) allows(name string) bool {
	if anyGlob(l.Deny, name) {
		return false
	}
	return len(l.Allow) == 0 || anyGlob(l.Allow, name)
}

// Admits says whether the principal may use the servers of p.
func (p *Policy) Admits(pr Principal) (bool, string) {
	if p.Principals == nil {
		return true, ""
	}
	if len(p.Principals.UIDs) > 0 {
		ok := false
		for _, u := range p.Principals.UIDs {
			ok = ok || u == pr.UID
		}
		if !ok {
			return false, fmt.Sprintf("client uid %d is not among the principals", pr.UID)
		}
	}
	if len(p.Principals.Exes) > 0 && !anyGlob(p.Principals.Exes, pr.Exe) {
		return false, fmt.Sprintf("client %s is not among the principals", pr.Exe)
	}
	return true, ""
}

// ToolListed says whether a tool may be shown to the model at all.
func (p *Policy) ToolListed(name string) bool { return p.Tools.allows(name) }

// Tool decides a tools/call: the tool, its arguments, and what the threat
// narrows.
func (p *Policy) Tool(name string, args func() map[string]any, th Threat) (bool, string) {
	if !p.Tools.allows(name) {
		return false, fmt.Sprintf("tool %q is not allowed", name)
	}
	if th.Contained != "" {
		return false, "the server is contained: " + th.Contained
	}
	if len(p.When) > 0 {
		tv := map[string]any{"server": th.vars(), "args": map[string]any{}, "tool": name}
		for _, n := range p.When {
			// a condition that cannot be evaluated narrows: it may be
			// what should have held
			if anyGlob(n.DenyTools, name) && evalOr(n.prg, tv, true) {
				r := n.Reason
				if r == "" {
					r = "the server's state: " + n.Condition
				}
				return false, fmt.Sprintf("tool %q: %s", name, r)
			}
		}
	}
	var a map[string]any
	for _, c := range p.Arguments {
		if !glob(c.Tool, name) {
			continue
		}
		if a == nil && args != nil {
			a = args()
		}
		if a == nil {
			a = map[string]any{}
		}
		if !eval(c.prg, map[string]any{"args": a, "tool": name, "server": th.vars()}) {
			r := c.Reason
			if r == "" {
				r = "arguments fail " + c.Condition
			}
			return false, fmt.Sprintf("tool %q: %s", name, r)
		}
	}
	return true, ""
}

// eval runs a condition; an error (a missing argument) is false: what
// cannot be shown to pass does not.
func eval(prg cel.Program, vars map[string]any) bool { return evalOr(prg, vars, false) }

func evalOr(prg cel.Program, vars map[string]any, onError bool) bool {
	v, _, err := prg.Eval(vars)
	if err != nil {
		return onError
	}
	b, ok := v.Value().(bool)
	if !ok {
		return onError
	}
	return b
}

// Resource decides a resources/read or resources/subscribe.
func (p *Policy) Resource(uri string, subscribe bool) (bool, string) {
	pats := p.Resources.Read
	what := "read"
	if subscribe {
		pats, what = p.Resources.Subscribe, "subscribe to"
	}
	if len(pats) == 0 {
		return true, ""
	}
	// a URI that climbs or hides its path cannot be matched honestly
	if strings.Contains(uri, "%") || strings.Contains(uri, "/../") || strings.HasSuffix(uri, "/..") || strings.Contains(uri, "/./") || strings.Contains(uri, "\\") {
		return false, fmt.Sprintf("may not %s %s (a URI with dot segments or escapes)", what, uri)
	}
	if anyGlob(pats, uri) {
		return true, ""
	}
	return false, fmt.Sprintf("may not %s %s", what, uri)
}

// Prompt decides a prompts/get.
func (p *Policy) Prompt(name string) (bool, string) {
	if p.Prompts.allows(name) {
		return true, ""
	}
	return false, fmt.Sprintf("prompt %q is not allowed", name)
}

// ServerRequest decides a server's request to the client (sampling,
// elicitation).
func (p *Policy) ServerRequest(method string) (bool, string) {
	switch method {
	case "sampling/createMessage":
		if p.Sampling != nil && !*p.Sampling {
			return false, "the server may not ask the client's model (sampling: false)"
		}
	case "elicitation/create":
		if p.Elicitation != nil && !*p.Elicitation {
			return false, "the server may not ask the user (elicitation: false)"
		}
	}
	return true, ""
}
