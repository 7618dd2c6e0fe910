package correlate

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"sort"
	"strings"

	"github.com/google/jsonschema-go/jsonschema"

	"github.com/mcpsec/sensor/pkg/decode"
)

// toolSeen is a tool as the server's latest tools/list declared it.
type toolSeen struct {
	def  decode.ToolDef
	text string // every description in it
}

// toolsListed judges each tool a tools/list result declares: against the
// definition first seen for the server's identity (trust on first use,
// kept in the store), and against the tools of the other servers its
// client drives now. Those servers' tools are judged again against the new
// names too, so a description that names a tool listed later is caught.
func (c *Correlator) toolsListed(s *server, si *sessionInfo, m *decode.Message, out []*Alert) []*Alert {
	var r struct {
		Tools []json.RawMessage `json:"tools"`
	}
	if json.Unmarshal(m.Result, &r) != nil {
		return out
	}
	clear(c.toolNames)
	if si.tools == nil {
		si.tools = map[string]*decode.ToolDef{}
		si.schemas = map[string]*jsonschema.Resolved{}
	}
	listed := map[string]*toolSeen{}
	for _, raw := range r.Tools {
		var t decode.ToolDef
		if json.Unmarshal(raw, &t) != nil || t.Name == "" {
			continue
		}
		sum := sha256.Sum256(raw)
		t.Hash = hex.EncodeToString(sum[:])
		t.Raw = raw
		si.tools[t.Name] = &t
		if res := resolveSchema(t.InputSchema); res != nil {
			si.schemas[t.Name] = res
		}
		listed[t.Name] = &toolSeen{def: t, text: toolText(raw)}
	}
	if len(r.Tools) > 0 || s.tools == nil {
		s.tools, s.toolProc, s.toolsAt = listed, m.Proc, m.Time
	}
	peers := c.peers(s)
	names := make([]string, 0, len(listed))
	for n := range listed {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		t := listed[n]
		prev := c.opts.Store.seeTool(s.key(), t.def, m.Time)
		out = c.judgeTool(s, si, t, prev, peers, m, out)
	}
	// the peers' descriptions, against this server's new names
	for _, p := range peers {
		for _, pn := range sortedTools(p.tools) {
			pt := p.tools[pn]
			if len(referenced(pt.text, pn, p.tools, listed)) > 0 {
				out = c.judgeTool(p, nil, pt, "", c.peers(p), nil, out)
			}
		}
	}
	return out
}

// judgeTool runs the tool rules on one tool of s. m is the tools/list
// answer it came in (nil when a peer's listing made it worth judging again).
func (c *Correlator) judgeTool(s *server, si *sessionInfo, t *toolSeen, prev string, peers []*server, m *decode.Message, out []*Alert) []*Alert {
	others, shadows := []string{}, []string{}
	var refs, refServers []string
	for _, p := range peers {
		if p.key() == s.key() {
			continue // the same server run twice is not a peer to shadow
		}
		if _, ok := p.tools[t.def.Name]; ok {
			shadows = appendUnique(shadows, p.name())
		}
		for _, n := range sortedTools(p.tools) {
			others = appendUnique(others, n)
		}
		if r := referenced(t.text, t.def.Name, s.tools, p.tools); len(r) > 0 {
			refs = append(refs, r...)
			refServers = appendUnique(refServers, p.name())
		}
	}
	sort.Strings(others)
	now, p := s.toolsAt, s.toolProc
	if m != nil {
		now, p = m.Time, m.Proc
	}
	c.base(&c.v, s, si, nil, now)
	c.v.tool = ToolVars{Name: t.def.Name, Description: t.def.Description, Hash: t.def.Hash, Changed: prev != "" && prev != t.def.Hash,
		PreviousHash: prev, Shadows: shadows, Others: others, Referenced: nonNil(refs),
		ReferencedServers: nonNil(refServers), Text: t.text, Server: s.name()}
	if c.opts.Indicators != nil {
		c.v.tool.Indicator = c.opts.Indicators("tool_hash", t.def.Hash)
	}
	return c.judge("tool", t.def.Name, now, &p, nil, nil, m, t.def.Name, out)
}

// referenced are the tools of theirs that a description names as a word,
// except its own tool and tools its own server also declares.
func referenced(text, self string, own, theirs map[string]*toolSeen) []string {
	var out []string
	for _, n := range sortedTools(theirs) {
		if len(n) <= 3 || n == self {
			continue
		}
		if _, mine := own[n]; mine {
			continue
		}
		if containsWord(text, n) {
			out = append(out, n)
		}
	}
	return out
}

// containsWord: s holds w with no identifier character on either side.
func containsWord(s, w string) bool {
	for i := 0; ; {
		j := strings.Index(s[i:], w)
		if j < 0 {
			return false
		}
		j += i
		before := j == 0 || !identChar(s[j-1])
		after := j+len(w) == len(s) || !identChar(s[j+len(w)])
		if before && after {
			return true
		}
		i = j + 1
	}
}

func identChar(b byte) bool {
	return b == '_' || b == '-' || b >= '0' && b <= '9' || b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z'
}

func sortedTools(m map[string]*toolSeen) []string {
	out := make([]string, 0, len(m))
	for n := range m {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// toolText is every description in a tool definition (the tool's and its
// parameters'), where instructions to a model hide.
func toolText(raw json.RawMessage) string {
	var v any
	if json.Unmarshal(raw, &v) != nil {
		return ""
	}
	var parts []string
	var walk func(any, int)
	walk = func(x any, depth int) {
		if depth > 8 {
			return
		}
		switch y := x.(type) {
		case map[string]any:
			keys := make([]string, 0, len(y))
			for k := range y {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			for _, k := range keys {
				if s, ok := y[k].(string); ok && (k == "description" || k == "title") {
					parts = append(parts, s)
				} else {
					walk(y[k], depth+1)
				}
			}
		case []any:
			for _, z := range y {
				walk(z, depth+1)
			}
		}
	}
	walk(v, 0)
	return strings.Join(parts, "\n")
}

func resolveSchema(raw json.RawMessage) *jsonschema.Resolved {
	if len(raw) == 0 {
		return nil
	}
	var sch jsonschema.Schema
	if json.Unmarshal(raw, &sch) != nil {
		return nil
	}
	// no loader: a schema from an untrusted server never fetches anything
	res, err := sch.Resolve(&jsonschema.ResolveOptions{})
	if err != nil {
		return nil
	}
	return res
}

// validateArgs checks a tools/call's arguments against the tool's declared
// input schema.
func validateArgs(si *sessionInfo, m *decode.Message, args *parsedArgs) []string {
	if si == nil || m.Method != "tools/call" || si.schemas == nil {
		return nil
	}
	res := si.schemas[m.Tool]
	if res == nil {
		return nil
	}
	var v any = map[string]any{}
	switch {
	case args.ok:
		v = args.v
	case len(args.raw) >= 1<<20:
		return nil // not parsed: too big to judge
	case len(args.raw) > 0:
		return []string{"arguments are not JSON"}
	}
	if err := res.Validate(v); err != nil {
		return []string{err.Error()}
	}
	return nil
}

// ContainsWord says whether s holds w as a whole word (no identifier
// character on either side): how a description names a tool.
func ContainsWord(s, w string) bool { return containsWord(s, w) }
