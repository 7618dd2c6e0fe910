package scan

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"

	"github.com/mcpsec/sensor/pkg/correlate"
	"github.com/mcpsec/sensor/pkg/inspect"
)

// Def is a tool, resource or prompt definition a server listed.
type Def struct {
	Kind string          `json:"kind"` // tool, resource, prompt
	Name string          `json:"name"`
	Raw  json.RawMessage `json:"definition"`
	Hash string          `json:"hash"`
}

// NewDef hashes a definition (its JSON, keys sorted).
func NewDef(kind, name string, raw json.RawMessage) Def {
	var v any
	canon := raw
	if json.Unmarshal(raw, &v) == nil {
		if b, err := json.Marshal(v); err == nil {
			canon = b
		}
	}
	sum := sha256.Sum256(canon)
	return Def{Kind: kind, Name: name, Raw: raw, Hash: hex.EncodeToString(sum[:])}
}

// Listed is what a server answered to tools/list, resources/list and
// prompts/list.
type Listed struct {
	Entry Entry
	Defs  []Def
}

// instructionLabels are findings that are instructions to the model
// whatever the score.
var instructionLabels = map[string]bool{"override": true, "hide_from_user": true, "assistant_address": true,
	"urgent_tag": true, "secret_request": true}

// Definitions judges the listed definitions of the servers of one client
// together: what each says to the model, what it hides, which other
// server's tools it names, and names declared twice.
func Definitions(servers []Listed) []Finding {
	var out []Finding
	toolsOf := map[string]map[string]bool{}
	for _, s := range servers {
		m := map[string]bool{}
		for _, d := range s.Defs {
			if d.Kind == "tool" {
				m[d.Name] = true
			}
		}
		toolsOf[s.Entry.Name] = m
	}
	for _, s := range servers {
		var others []string
		for name, tools := range toolsOf {
			if name == s.Entry.Name {
				continue
			}
			for t := range tools {
				others = append(others, t)
			}
		}
		sort.Strings(others)
		for _, d := range s.Defs {
			out = append(out, judgeDef(s.Entry, d, others, toolsOf)...)
		}
	}
	// the same tool name from two servers of one client
	owners := map[string][]string{}
	for _, s := range servers {
		for t := range toolsOf[s.Entry.Name] {
			owners[t] = append(owners[t], s.Entry.Name)
		}
	}
	for _, t := range slices.Sorted(maps.Keys(owners)) {
		names := owners[t]
		if len(names) < 2 {
			continue
		}
		sort.Strings(names)
		for _, s := range servers {
			if s.Entry.Name != names[0] {
				continue
			}
			out = append(out, finding(s.Entry, "name-collision", "medium",
				fmt.Sprintf("tool %q is declared by %s", t, strings.Join(names, " and ")),
				"servers "+strings.Join(names, ", ")+" of "+s.Entry.Client, "rename or remove one of them, or keep them in separate clients"))
		}
	}
	return out
}

func judgeDef(e Entry, d Def, others []string, toolsOf map[string]map[string]bool) []Finding {
	var out []Finding
	strs := inspect.Strings(d.Raw, nil)
	rep := inspect.InspectStrings(strs, &inspect.Options{Tools: others})
	what := d.Kind + " " + d.Name
	var instr, hidden []string
	strong := false
	for _, f := range rep.Findings {
		switch f.Kind {
		case "instruction":
			instr = append(instr, f.Label+": "+quote(f.Span))
			strong = strong || instructionLabels[f.Label]
		case "hidden":
			hidden = append(hidden, f.Label+": "+quote(f.Span))
		}
	}
	if len(instr) > 0 && (strong || rep.Score >= 6) {
		out = append(out, finding(e, "tool-instructions", "high", fmt.Sprintf("%s's %s carries instructions for the model (score %d)", e.Name, what, rep.Score),
			strings.Join(instr, "; "), "do not use this server until its author explains it; report it"))
	} else if len(instr) > 0 && rep.Score >= 4 {
		out = append(out, finding(e, "tool-instructions", "medium", fmt.Sprintf("%s's %s is written as directions to the model (score %d)", e.Name, what, rep.Score),
			strings.Join(instr, "; "), "read the definition before trusting the server"))
	}
	if len(hidden) > 0 {
		out = append(out, finding(e, "hidden-text", "high", fmt.Sprintf("%s's %s hides text from people", e.Name, what),
			strings.Join(hidden, "; "), "do not use this server; the hidden text is what the model reads"))
	}
	text := strings.Join(strs, "\n")
	var named []string
	for server, tools := range toolsOf {
		if server == e.Name {
			continue
		}
		for t := range tools {
			if len(t) > 3 && !toolsOf[e.Name][t] && correlate.ContainsWord(text, t) {
				named = append(named, fmt.Sprintf("%s (of %s)", t, server))
			}
		}
	}
	if len(named) > 0 {
		sort.Strings(named)
		out = append(out, finding(e, "tool-shadowing", "high", fmt.Sprintf("%s's %s names other servers' tools", e.Name, what),
			strings.Join(named, ", "), "a server has no reason to tell the model how to use another's tools: remove it"))
	}
	return out
}

func finding(e Entry, rule, sev, title, evidence, fix string) Finding {
	return Finding{Rule: rule, Severity: sev, Client: e.Client, File: e.File, Line: e.Line, Server: e.Name,
		Title: title, Evidence: evidence, Fix: fix}
}

// quote marks text that came from a server as such.
func quote(s string) string { return "«" + s + "»" }
