package gateway

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"strconv"
	"strings"

	"github.com/mcpsec/sensor/pkg/correlate"
	"github.com/mcpsec/sensor/pkg/inspect"
)

// filterList removes from a list result what the policy does not allow,
// so that a denied tool is invisible to the model. It returns the new
// result and how many entries went.
func filterList(pol *Policy, method string, result json.RawMessage) (json.RawMessage, int) {
	key, field := "tools", "name"
	allowed := func(v string) bool { return pol.ToolListed(v) }
	switch method {
	case "resources/list":
		key, field = "resources", "uri"
		allowed = func(v string) bool { ok, _ := pol.Resource(v, false); return ok }
	case "prompts/list":
		key = "prompts"
		allowed = func(v string) bool { ok, _ := pol.Prompt(v); return ok }
	case "resources/templates/list":
		return result, 0 // a template names no one resource
	}
	var obj map[string]json.RawMessage
	if json.Unmarshal(result, &obj) != nil {
		return result, 0
	}
	var items []json.RawMessage
	if json.Unmarshal(obj[key], &items) != nil {
		return result, 0
	}
	keep := items[:0:0]
	for _, it := range items {
		if v, ok := itemName(it, field); ok && allowed(v) {
			keep = append(keep, it)
		}
	}
	if len(keep) == len(items) {
		return result, 0
	}
	b, _ := json.Marshal(keep)
	obj[key] = b
	out, _ := json.Marshal(obj)
	return out, len(items) - len(keep)
}

// unpinned removes from a tools/list result the tools whose definition
// differs from the pinned one, and names them.
func unpinned(pins Pins, server string, result json.RawMessage) (json.RawMessage, []string, []string) {
	var obj map[string]json.RawMessage
	if server == "" || json.Unmarshal(result, &obj) != nil {
		return result, nil, nil
	}
	var items []json.RawMessage
	if json.Unmarshal(obj["tools"], &items) != nil {
		return result, nil, nil
	}
	var keep []json.RawMessage
	var out, fine []string
	for _, it := range items {
		name, ok := itemName(it, "name")
		sum := sha256.Sum256(it)
		if !ok || pins.Changed(server, name, hex.EncodeToString(sum[:])) {
			out = append(out, name)
			continue
		}
		fine = append(fine, name)
		keep = append(keep, it)
	}
	if len(out) == 0 {
		return result, nil, fine
	}
	if keep == nil {
		keep = []json.RawMessage{}
	}
	obj["tools"], _ = json.Marshal(keep)
	b, _ := json.Marshal(obj)
	return b, out, fine
}

// scanResult looks for secrets and instructions for the model in the text
// of a result (tool content, resource contents, prompt messages) and acts
// as the policy says: the verdict is "" (clean), "redacted", "denied" or
// "flagged" (passed, alerted).
func scanResult(pol *Policy, result json.RawMessage) (json.RawMessage, string, string) {
	s := scan{pol: pol, minScore: pol.Results.MinScore}
	if s.minScore <= 0 {
		s.minScore = 6
	}
	// most results are clean: judge their strings without the tree
	clean := true
	for _, t := range inspect.Strings(result, nil) {
		if _, act := s.judge(t); act != "" {
			clean = false
			break
		}
	}
	if clean {
		return result, "", ""
	}
	var v any
	dec := json.NewDecoder(bytes.NewReader(result))
	dec.UseNumber()
	if dec.Decode(&v) != nil {
		return result, "", ""
	}
	s.walk(v, 0)
	if obj, ok := v.(map[string]any); ok {
		if sc, ok := obj["structuredContent"]; ok {
			b, _ := json.Marshal(sc)
			if what, act := s.judge(strings.Join(inspect.Strings(b, nil), "\n")); act != "" {
				s.act(act, what)
				if act == "redact" {
					delete(obj, "structuredContent")
				}
			}
		}
	}
	switch {
	case s.deny:
		return result, "denied", strings.Join(s.why, "; ")
	case s.redacted:
		out, _ := json.Marshal(v)
		return out, "redacted", strings.Join(s.why, "; ")
	case len(s.why) > 0:
		return result, "flagged", strings.Join(s.why, "; ")
	}
	return result, "", ""
}

type scan struct {
	pol            *Policy
	minScore       int
	deny, redacted bool
	why            []string
}

// walk judges every string of the result (a text, a description, a
// name), redacting in place; a result too deep to walk is withheld.
func (s *scan) walk(v any, depth int) {
	if depth > 64 {
		s.act("deny", "a result nested too deep to scan")
		return
	}
	switch x := v.(type) {
	case map[string]any:
		for k, y := range x {
			if k != "structuredContent" {
				x[k] = s.value(y, depth)
			}
		}
	case []any:
		for i, y := range x {
			x[i] = s.value(y, depth)
		}
	}
}

// value is v judged: a string, redacted if the policy says so; anything
// else walked.
func (s *scan) value(v any, depth int) any {
	t, ok := v.(string)
	if !ok {
		s.walk(v, depth+1)
		return v
	}
	what, act := s.judge(t)
	if act != "" {
		s.act(act, what)
		if act == "redact" {
			return "[mcp-sensor: redacted by policy " + s.pol.ID + ": " + what + "]"
		}
	}
	return t
}

// judge says what a text carries and what the policy does about it
// ("" nothing).
func (s *scan) judge(t string) (string, string) {
	var what []string
	act := ""
	if kinds := correlate.Secrets(t); len(kinds) > 0 {
		what = append(what, "secrets ("+strings.Join(kinds, ", ")+")")
		act = stronger(act, action(s.pol.Results.Secrets))
	}
	if r := inspect.Inspect(t, nil); r.Score >= s.minScore {
		what = append(what, "instructions for the model ("+strings.Join(r.Labels(), ", ")+", score "+strconv.Itoa(r.Score)+")")
		act = stronger(act, action(s.pol.Results.Instructions))
	}
	return strings.Join(what, " and "), act
}

func (s *scan) act(act, what string) {
	s.why = append(s.why, what)
	switch act {
	case "deny":
		s.deny = true
	case "redact":
		s.redacted = true
	}
}

// action is a results setting; unset means redact (protective).
func action(a string) string {
	if a == "" {
		return "redact"
	}
	return a
}

func stronger(a, b string) string {
	rank := map[string]int{"": 0, "alert": 1, "redact": 2, "deny": 3}
	if rank[b] > rank[a] {
		return b
	}
	return a
}
