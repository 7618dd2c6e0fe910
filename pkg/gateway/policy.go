// Package gateway sits on the wire between an MCP client and a server and
// decides, message by message, what may pass: a policy (YAML, CEL
// conditions) says which tools, resources and prompts a server may be
// asked for, which arguments are acceptable, whether the server may ask
// the client to sample or elicit, what its results may carry, and how the
// sensor's view of the server (tainted by a credential read, alerts so far,
// contained) narrows all of it. A denied request is answered with a
// JSON-RPC error naming the policy and the reason; the server never sees
// it. Everything allowed passes byte for byte.
package gateway

import (
	"errors"
	"fmt"
	"os"
	"path"
	"strings"

	"cel.dev/cel-go/cel"
	"cel.dev/cel-go/ext"
	"go.yaml.in/yaml/v3"
)

// File is a policy file as written.
type File struct {
	// Version is the policy's version, recorded with every decision.
	Version  string   `yaml:"version"`
	Policies []Policy `yaml:"policies"`
}

// Policy is what one set of servers may be asked, and may answer.
type Policy struct {
	ID string `yaml:"id"`
	// Servers are globs over a server's identity key, name or command
	// (default: every server).
	Servers []string `yaml:"servers"`
	// Principals, if set, are the clients allowed to use these servers at
	// all (for stdio: the client process's uid and executable).
	Principals *Principals `yaml:"principals"`
	Tools      Lists       `yaml:"tools"`
	// Arguments constrain the arguments of the tools they name (CEL over
	// args, the call's arguments, and tool).
	Arguments []Constraint `yaml:"arguments"`
	Resources Resources    `yaml:"resources"`
	Prompts   Lists        `yaml:"prompts"`
	// Sampling and Elicitation: may the server ask the client's model, or
	// its user (default: yes).
	Sampling    *bool   `yaml:"sampling"`
	Elicitation *bool   `yaml:"elicitation"`
	Results     Results `yaml:"results"`
	// When narrows what is allowed by the sensor's view of the server
	// (CEL over server.tainted, server.severity, server.alerts).
	When []Narrowing `yaml:"when"`
	line int
}

// Principals are the clients a policy admits.
type Principals struct {
	UIDs []int    `yaml:"uids"`
	Exes []string `yaml:"exes"` // globs
}

// Lists allow and deny names by glob; deny wins; an empty allow is "*".
type Lists struct {
	Allow []string `yaml:"allow"`
	Deny  []string `yaml:"deny"`
}

// Resources say which URIs may be read and subscribed to (globs; "**"
// crosses "/"); empty: any.
type Resources struct {
	Read      []string `yaml:"read"`
	Subscribe []string `yaml:"subscribe"`
}

// Results say what happens to a result that carries secrets or
// instructions for the model: "redact" (the content item is replaced),
// "deny" (the client gets an error instead) or "alert" (passed, alerted).
type Results struct {
	Secrets      string `yaml:"secrets"`
	Instructions string `yaml:"instructions"`
	// MinScore is the instruction score (pkg/inspect, 0-20) acted on
	// (default 6: what result_instructions calls high).
	MinScore int `yaml:"min_score"`
}

// Constraint is a CEL condition the arguments of some tools must meet.
type Constraint struct {
	Tool      string `yaml:"tool"` // a glob
	Condition string `yaml:"condition"`
	Reason    string `yaml:"reason"`
	prg       cel.Program
}

// Narrowing denies tools while its condition holds of the server.
type Narrowing struct {
	Condition string   `yaml:"condition"`
	DenyTools []string `yaml:"deny_tools"`
	Reason    string   `yaml:"reason"`
	prg       cel.Program
}

// Set is a loaded, compiled policy file.
type Set struct {
	Source   string // the file, or "built-in"
	Version  string
	Policies []*Policy
}

// Default is the policy with no file: every tool, resource and prompt, and
// results that carry secrets or instructions for the model redacted.
func Default() *Set {
	return &Set{Source: "built-in", Version: "built-in", Policies: []*Policy{
		{ID: "default", Results: Results{Secrets: "redact", Instructions: "redact"}},
	}}
}

// Load reads and compiles a policy file.
func Load(file string) (*Set, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("reading the policy: %w", err)
	}
	return Parse(file, b)
}

// Parse compiles a policy file's text; errors name the file and line.
func Parse(file string, b []byte) (*Set, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(b, &doc); err != nil {
		return nil, fmt.Errorf("%s: %s", file, strings.TrimPrefix(err.Error(), "yaml: "))
	}
	var f File
	if len(doc.Content) == 0 {
		return nil, fmt.Errorf("%s: empty: a policy file has a version and a list of policies", file)
	}
	dec := doc.Content[0]
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("%s: %s", file, strings.TrimPrefix(err.Error(), "yaml: "))
	}
	if err := knownKeys(file, dec); err != nil {
		return nil, err
	}
	env, err := cel.NewEnv(ext.Strings(), ext.Lists(),
		cel.Variable("args", cel.MapType(cel.StringType, cel.DynType)), cel.Variable("tool", cel.StringType),
		cel.Variable("server", cel.MapType(cel.StringType, cel.DynType)))
	if err != nil {
		return nil, fmt.Errorf("making the policy's CEL environment: %w", err)
	}
	s := &Set{Source: file, Version: f.Version}
	lines := policyLines(dec)
	seen := map[string]bool{}
	for i := range f.Policies {
		p := &f.Policies[i]
		if i < len(lines) {
			p.line = lines[i]
		}
		at := fmt.Sprintf("%s:%d", file, p.line)
		if p.ID == "" {
			return nil, fmt.Errorf("%s: a policy needs an id (it names the policy in every decision)", at)
		}
		if seen[p.ID] {
			return nil, fmt.Errorf("%s: policy %q is defined twice", at, p.ID)
		}
		seen[p.ID] = true
		if err := p.check(); err != nil {
			return nil, fmt.Errorf("%s: policy %s: %w", at, p.ID, err)
		}
		for j := range p.Arguments {
			c := &p.Arguments[j]
			if c.prg, err = compile(env, c.Condition); err != nil {
				return nil, fmt.Errorf("%s: policy %s: arguments[%d] (%s): %w", at, p.ID, j, c.Tool, err)
			}
		}
		for j := range p.When {
			n := &p.When[j]
			if n.prg, err = compile(env, n.Condition); err != nil {
				return nil, fmt.Errorf("%s: policy %s: when[%d]: %w", at, p.ID, j, err)
			}
		}
		s.Policies = append(s.Policies, p)
	}
	if len(s.Policies) == 0 {
		return nil, fmt.Errorf("%s: no policies: add at least one (- id: default)", file)
	}
	return s, nil
}

func (p *Policy) check() error {
	for _, r := range []struct{ key, v string }{{"results.secrets", p.Results.Secrets}, {"results.instructions", p.Results.Instructions}} {
		switch r.v {
		case "", "redact", "deny", "alert":
		default:
			return fmt.Errorf("%s: %q: use redact, deny or alert", r.key, r.v)
		}
	}
	globs := append(append(append(append([]string{}, p.Servers...), p.Tools.Allow...), p.Tools.Deny...), p.Prompts.Allow...)
	globs = append(append(append(globs, p.Prompts.Deny...), p.Resources.Read...), p.Resources.Subscribe...)
	if p.Principals != nil {
		globs = append(globs, p.Principals.Exes...)
	}
	for _, n := range p.When {
		globs = append(globs, n.DenyTools...)
	}
	for _, a := range p.Arguments {
		if a.Tool == "" || a.Condition == "" {
			return errors.New("arguments: each constraint needs a tool and a condition")
		}
		globs = append(globs, a.Tool)
	}
	for _, g := range globs {
		if _, err := path.Match(g, ""); err != nil {
			return fmt.Errorf("%q is not a glob: %v", g, err)
		}
	}
	return nil
}

func compile(env *cel.Env, cond string) (cel.Program, error) {
	ast, iss := env.Compile(cond)
	if iss.Err() != nil {
		return nil, fmt.Errorf("condition: %s", strings.ReplaceAll(iss.Err().Error(), "\n", " "))
	}
	if t := ast.OutputType(); t != cel.BoolType && t != cel.DynType {
		return nil, fmt.Errorf("condition: %q is a %s, not a bool", cond, ast.OutputType())
	}
	return env.Program(ast, cel.EvalOptions(cel.OptOptimize), cel.CostLimit(1_000_000))
}

// policyLines are the lines the policies begin on.
func policyLines(root *yaml.Node) []int {
	var out []int
	for i := 0; i+1 < len(root.Content); i += 2 {
		if root.Content[i].Value == "policies" && root.Content[i+1].Kind == yaml.SequenceNode {
			for _, it := range root.Content[i+1].Content {
				out = append(out, it.Line)
			}
		}
	}
	return out
}

// knownKeys refuses keys no policy has (a typo would silently allow).
func knownKeys(file string, root *yaml.Node) error {
	allowed := map[string][]string{
		"":            {"version", "policies"},
		"policy":      {"id", "servers", "principals", "tools", "arguments", "resources", "prompts", "sampling", "elicitation", "results", "when"},
		"principals":  {"uids", "exes"},
		"tools":       {"allow", "deny"},
		"prompts":     {"allow", "deny"},
		"resources":   {"read", "subscribe"},
		"results":     {"secrets", "instructions", "min_score"},
		"arguments[]": {"tool", "condition", "reason"},
		"when[]":      {"condition", "deny_tools", "reason"},
	}
	var walk func(n *yaml.Node, kind string) error
	walk = func(n *yaml.Node, kind string) error {
		if n.Kind != yaml.MappingNode {
			return nil
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			ok := false
			for _, a := range allowed[kind] {
				ok = ok || a == k.Value
			}
			if !ok {
				return fmt.Errorf("%s:%d: unknown key %q (known here: %s)", file, k.Line, k.Value, strings.Join(allowed[kind], ", "))
			}
			switch {
			case kind == "" && k.Value == "policies" && v.Kind == yaml.SequenceNode:
				for _, it := range v.Content {
					if err := walk(it, "policy"); err != nil {
						return err
					}
				}
			case kind == "policy" && (k.Value == "arguments" || k.Value == "when") && v.Kind == yaml.SequenceNode:
				for _, it := range v.Content {
					if err := walk(it, k.Value+"[]"); err != nil {
						return err
					}
				}
			case kind == "policy":
				if _, sub := allowed[k.Value]; sub {
					if err := walk(v, k.Value); err != nil {
						return err
					}
				}
			}
		}
		return nil
	}
	return walk(root, "")
}
