package correlate

import (
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/mcpsec/sensor/pkg/decode"
)

// Profile is the learned behaviour of one server, or of one of its tools:
// what its effects touched during the learning window.
type Profile struct {
	// Server is the server's identity key (npm:@scope/name); Name its
	// printable name (with the version last seen).
	Server string    `json:"server"`
	Name   string    `json:"name,omitempty"`
	Tool   string    `json:"tool,omitempty"` // "" for effects outside calls
	Since  time.Time `json:"since"`
	Events int       `json:"events"`
	Paused bool      `json:"paused,omitempty"` // learning paused (by containment)
	// The dimensions, each a set of what was seen, with counts.
	Types map[string]int `json:"types"` // effect types (syscall classes)
	Paths map[string]int `json:"paths"` // path prefixes (up to three directories)
	Dests map[string]int `json:"dests"` // network destinations
	Exes  map[string]int `json:"exes"`  // executables
}

// dimension weights: how much a novel value of each says
var weights = map[string]float64{"exe": 0.8, "dest": 0.7, "type": 0.5, "path": 0.4}

// pathPrefix keeps the first three directories of a file's path.
func pathPrefix(p string) string {
	dir := filepath.Dir(p)
	parts := strings.Split(strings.Trim(dir, "/"), "/")
	if len(parts) > 3 {
		parts = parts[:3]
	}
	return "/" + strings.Join(parts, "/")
}

// dims extracts what a profile learns from an effect.
func dims(e *decode.Effect) map[string]string {
	d := map[string]string{"type": e.Type}
	switch e.Type {
	case "open", "write", "unlink", "rename", "mkdir", "rmdir", "chmod", "chown", "truncate", "link", "symlink":
		if e.Path != "" {
			d["path"] = pathPrefix(e.Path)
		}
	case "connect", "sendto":
		if e.Addr != "" {
			d["dest"] = e.Addr
		}
	case "exec":
		if e.Result == 0 {
			d["exe"] = e.Path
		}
	}
	return d
}

func (p *Profile) set(dim string) map[string]int {
	switch dim {
	case "type":
		return p.Types
	case "path":
		return p.Paths
	case "dest":
		return p.Dests
	default:
		return p.Exes
	}
}

// baseline learns an effect into its profile during the learning window,
// and afterwards raises an anomaly for what the profile never saw.
func (c *Correlator) baseline(s *server, cl *call, e *decode.Effect, out []*Alert) []*Alert {
	if e.Type == "exit" || e.Type == "fork" || e.Type == "mmap_exec" || e.Result < 0 || c.opts.Store == nil {
		return out
	}
	key := s.key()
	tool := ""
	if cl != nil && len(e.Calls) == 0 {
		tool = cl.ref.Tool
		if tool == "" {
			tool = cl.ref.Method
		}
	}
	st := c.opts.Store
	st.mu.Lock()
	pk := key + "\x00" + tool
	p := st.data.Baselines[pk]
	if p == nil {
		p = &Profile{Server: key, Name: s.name(), Tool: tool, Since: e.Time, Types: map[string]int{}, Paths: map[string]int{},
			Dests: map[string]int{}, Exes: map[string]int{}}
		st.data.Baselines[pk] = p
	}
	learning := e.Time.Sub(p.Since) < c.opts.Learn
	var novel []string
	score := 0.0
	ev := map[string]any{}
	for dim, v := range dims(e) {
		set := p.set(dim)
		if learning && !p.Paused {
			set[v]++
			st.dirty = true
			continue
		}
		if _, ok := set[v]; !ok && !learning && !(dim == "dest" && set[DestClass(v)] > 0) {
			novel = append(novel, dim)
			score += weights[dim]
			ev[dim] = v
			ev["known_"+dim] = sample(set, 8)
		}
	}
	if learning && !p.Paused {
		p.Events++
	}
	st.mu.Unlock()
	if len(novel) == 0 {
		return out
	}
	sort.Strings(novel)
	if score > 1 {
		score = 1
	}
	sev := "low"
	if score >= 0.7 {
		sev = "medium"
	}
	ev["learned_events"] = p.Events
	ev["learned_since"] = p.Since
	a := &Alert{Kind: "alert", Time: e.Time, Proc: e.Proc, Rule: "baseline_novel_" + strings.Join(novel, "_"),
		Severity: sev, Output: "novel " + strings.Join(novel, ", ") + " for " + profileName(key, tool) + ": " + describe(e),
		Why:   "the effect falls outside what this server (and tool) did during its learning window",
		Score: score, Evidence: ev, Effects: []*decode.Effect{e}, Source: "baseline"}
	if cl != nil {
		ref := cl.ref
		a.Call = &ref
	}
	return c.raise(a, out)
}

func profileName(key, tool string) string {
	if tool == "" {
		return key + " (outside calls)"
	}
	return key + " tool " + tool
}

func describe(e *decode.Effect) string {
	switch {
	case e.Path != "":
		return e.Type + " " + e.Path
	case e.Addr != "":
		return e.Type + " " + e.Addr
	}
	return e.Type
}

func sample(set map[string]int, n int) []string {
	out := make([]string, 0, min(n, len(set)))
	for k := range set {
		out = append(out, k)
	}
	sort.Strings(out)
	if len(out) > n {
		out = out[:n]
	}
	return out
}
