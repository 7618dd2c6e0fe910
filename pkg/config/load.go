package config

import (
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Sources says where each key's value came from: "FILE:LINE", "MCPSEC_X",
// "--flag", a seed variable, or nothing for the default.
type Sources map[string]string

// Of is where a key's value came from, for people.
func (s Sources) Of(path string) string {
	if src := s[path]; src != "" {
		return src
	}
	return "the default"
}

// Loaded is a configuration with where it came from.
type Loaded struct {
	Config
	Sources Sources
	// File is the file read ("" if none: the defaults ran).
	File string
}

// Load layers a command's configuration: its defaults, the file at path
// (a missing file is fine unless mustExist), the seed's variables, the
// MCPSEC_ variables and the flags given, then validates it. lookup reads
// the environment (os.LookupEnv).
func (b *Binding) Load(path string, mustExist bool, lookup func(string) (string, bool)) (Loaded, error) {
	l := Loaded{Config: Default(b.cmd), Sources: Sources{}}
	if path != "" {
		data, err := os.ReadFile(path)
		switch {
		case err == nil:
			if err := l.yaml(path, data); err != nil {
				return l, err
			}
			l.File = path
		case errors.Is(err, os.ErrNotExist) && !mustExist:
		case errors.Is(err, os.ErrNotExist):
			return l, fmt.Errorf("%s: no such file (sensor init --out %s writes a commented one)", path, path)
		default:
			return l, fmt.Errorf("reading %s: %w", path, err)
		}
	}
	if err := l.seed(lookup); err != nil {
		return l, err
	}
	for _, k := range Keys() {
		v, ok := lookup(k.Env)
		if !ok {
			continue
		}
		if err := k.set(&l.Config, v); err != nil {
			return l, fmt.Errorf("%s=%s: %v", k.Env, v, err)
		}
		l.Sources[k.Path] = k.Env
	}
	for name, fv := range b.flags {
		if !fv.set {
			continue
		}
		k := fv.k
		k.field(&l.Config).Set(k.field(&b.scratch))
		l.Sources[k.Path] = "--" + name
	}
	return l, l.Validate()
}

// seed maps the product brief's environment onto keys: SECURITY_PROFILE is
// the profile, THREAT_DETECTION=realtime judges with the rules (off: not),
// ADAPTIVE_DEFENSE=enabled learns baselines (disabled: not),
// COMPLIANCE_MODE=strict makes the audit trail mandatory.
func (l *Loaded) seed(lookup func(string) (string, bool)) error {
	if v, ok := lookup("SECURITY_PROFILE"); ok && v != "" {
		l.Profile, l.Sources["profile"] = v, "SECURITY_PROFILE"
	}
	if v, ok := lookup("THREAT_DETECTION"); ok && v != "" {
		switch strings.ToLower(v) {
		case "realtime", "on", "enabled":
			l.NoRules = false
		case "off", "disabled", "none":
			l.NoRules = true
		default:
			return fmt.Errorf("THREAT_DETECTION=%s: use realtime or off", v)
		}
		l.Sources["no_rules"] = "THREAT_DETECTION"
	}
	if v, ok := lookup("ADAPTIVE_DEFENSE"); ok && v != "" {
		switch strings.ToLower(v) {
		case "enabled", "on":
			if l.Learn == 0 {
				l.Learn = 10 * time.Minute
			}
		case "disabled", "off":
			l.Learn = 0
		default:
			return fmt.Errorf("ADAPTIVE_DEFENSE=%s: use enabled or disabled", v)
		}
		l.Sources["learn"] = "ADAPTIVE_DEFENSE"
	}
	if v, ok := lookup("COMPLIANCE_MODE"); ok && v != "" {
		switch strings.ToLower(v) {
		case "strict":
			l.Compliance = "strict"
		case "standard", "off", "none":
			l.Compliance = ""
		default:
			return fmt.Errorf("COMPLIANCE_MODE=%s: use strict or standard", v)
		}
		l.Sources["compliance"] = "COMPLIANCE_MODE"
	}
	return nil
}

// yaml overlays a YAML document, remembering each key's line.
func (l *Loaded) yaml(file string, data []byte) error {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return fmt.Errorf("%s: %s", file, strings.TrimPrefix(err.Error(), "yaml: "))
	}
	if len(doc.Content) == 0 {
		return nil // an empty file: the defaults
	}
	root := doc.Content[0]
	if root.Kind != yaml.MappingNode {
		return fmt.Errorf("%s:%d: the configuration is a map of keys (profile: baseline, ...)", file, root.Line)
	}
	byPath := map[string]Key{}
	for _, k := range Keys() {
		byPath[k.Path] = k
	}
	return l.mapping(file, root, "", byPath)
}

func (l *Loaded) mapping(file string, n *yaml.Node, prefix string, byPath map[string]Key) error {
	for i := 0; i+1 < len(n.Content); i += 2 {
		kn, vn := n.Content[i], n.Content[i+1]
		path := prefix + kn.Value
		at := fmt.Sprintf("%s:%d", file, kn.Line)
		if path == "servers" {
			sels, err := selectors(file, vn)
			if err != nil {
				return err
			}
			l.Servers, l.Sources[path] = sels, at
			continue
		}
		if path == "server_roots" {
			srs, err := serverRoots(file, vn)
			if err != nil {
				return err
			}
			l.ServerRoots, l.Sources[path] = srs, at
			continue
		}
		k, ok := byPath[path]
		if !ok {
			if isSection(path, byPath) && vn.Kind == yaml.MappingNode {
				if err := l.mapping(file, vn, path+".", byPath); err != nil {
					return err
				}
				continue
			}
			return fmt.Errorf("%s: unknown key %q%s", at, path, suggest(path, byPath))
		}
		var text string
		switch {
		case vn.Kind == yaml.ScalarNode && vn.Tag == "!!null":
		case vn.Kind == yaml.ScalarNode:
			text = vn.Value
		case vn.Kind == yaml.SequenceNode && k.typ == reflect.TypeOf([]string(nil)):
			var items []string
			for _, it := range vn.Content {
				if it.Kind != yaml.ScalarNode {
					return fmt.Errorf("%s:%d: %s: a list of strings", file, it.Line, path)
				}
				items = append(items, it.Value)
			}
			k.field(&l.Config).Set(reflect.ValueOf(items))
			l.Sources[path] = at
			continue
		default:
			return fmt.Errorf("%s: %s: expects a single value, e.g. %s: %s", at, path, path, k.text(&l.Config))
		}
		if err := k.set(&l.Config, text); err != nil {
			return fmt.Errorf("%s: %s: %v", at, path, err)
		}
		l.Sources[path] = at
	}
	return nil
}

func isSection(path string, byPath map[string]Key) bool {
	for p := range byPath {
		if strings.HasPrefix(p, path+".") {
			return true
		}
	}
	return false
}

// selectors reads the servers list.
func selectors(file string, n *yaml.Node) ([]Selector, error) {
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		return nil, nil
	}
	if n.Kind != yaml.SequenceNode {
		return nil, fmt.Errorf("%s:%d: servers: a list of selectors (- pid: N, - unit: NAME, - cgroup: PATH, - command: GLOB)", file, n.Line)
	}
	var out []Selector
	for _, it := range n.Content {
		if it.Kind != yaml.MappingNode {
			return nil, fmt.Errorf("%s:%d: servers: each selector is a map (- pid: 1234)", file, it.Line)
		}
		for j := 0; j+1 < len(it.Content); j += 2 {
			switch k := it.Content[j].Value; k {
			case "pid", "cgroup", "unit", "command":
			default:
				return nil, fmt.Errorf("%s:%d: servers: unknown selector %q: use pid, cgroup, unit or command", file, it.Content[j].Line, k)
			}
		}
		var s Selector
		if err := it.Decode(&s); err != nil {
			return nil, fmt.Errorf("%s:%d: servers: %s", file, it.Line, strings.TrimPrefix(err.Error(), "yaml: "))
		}
		out = append(out, s)
	}
	return out, nil
}

func serverRoots(file string, n *yaml.Node) ([]ServerRoots, error) {
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		return nil, nil
	}
	if n.Kind != yaml.SequenceNode {
		return nil, fmt.Errorf("%s:%d: server_roots: a list of {match: GLOB, roots: [DIR, ...]}", file, n.Line)
	}
	var out []ServerRoots
	for _, it := range n.Content {
		if it.Kind != yaml.MappingNode {
			return nil, fmt.Errorf("%s:%d: server_roots: each entry is a map (- match: npm:@acme/files, roots: [/srv/files])", file, it.Line)
		}
		for j := 0; j+1 < len(it.Content); j += 2 {
			if k := it.Content[j].Value; k != "match" && k != "roots" {
				return nil, fmt.Errorf("%s:%d: server_roots: unknown key %q: use match and roots", file, it.Content[j].Line, k)
			}
		}
		var s ServerRoots
		if err := it.Decode(&s); err != nil {
			return nil, fmt.Errorf("%s:%d: server_roots: %s", file, it.Line, strings.TrimPrefix(err.Error(), "yaml: "))
		}
		if s.Match == "" {
			return nil, fmt.Errorf("%s:%d: server_roots: match is missing (a server's key or name, or a glob of them)", file, it.Line)
		}
		if _, err := path.Match(s.Match, ""); err != nil {
			return nil, fmt.Errorf("%s:%d: server_roots: match %q: not a glob (%v)", file, it.Line, s.Match, err)
		}
		for _, r := range s.Roots {
			if !filepath.IsAbs(r) {
				return nil, fmt.Errorf("%s:%d: server_roots: %q: roots are absolute paths", file, it.Line, r)
			}
		}
		out = append(out, s)
	}
	return out, nil
}

// suggest names the closest known key, if one is close.
func suggest(path string, byPath map[string]Key) string {
	best, bestD := "", 3
	keys := make([]string, 0, len(byPath))
	for p := range byPath {
		keys = append(keys, p)
	}
	sort.Strings(keys)
	for _, p := range keys {
		if d := distance(path, p); d < bestD {
			best, bestD = p, d
		}
	}
	if best == "" {
		return " (sensor init prints every key)"
	}
	return fmt.Sprintf(" (did you mean %q?)", best)
}

// distance is the edit distance of two short strings.
func distance(a, b string) int {
	prev := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur := make([]int, len(b)+1)
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev = cur
	}
	return prev[len(b)]
}
