package correlate

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"time"

	"cel.dev/cel-go/cel"
	"go.yaml.in/yaml/v3"
)

// Severities, lowest first.
var severities = []string{"low", "medium", "high", "critical"}

// SeverityRank orders severities; -1 for an unknown one.
func SeverityRank(s string) int {
	for i, v := range severities {
		if v == s {
			return i
		}
	}
	return -1
}

// Actions a rule may ask for (carried out by containment; the correlator
// only reports them).
var actions = map[string]bool{"": true, "log": true, "alert": true, "monitor": true, "throttle": true,
	"contain": true, "freeze": true, "kill": true, "stop": true, "deny-egress": true, "deny-exec": true}

// Rule is one compiled rule.
type Rule struct {
	Name     string
	Desc     string
	When     string   // "effect", "message" or "tool"
	Types    []string // effect types or message methods it looks at; empty: all
	Severity string
	Tags     []string
	Output   string
	Action   string
	File     string
	Line     int
	// Condition is the rule's condition as written (with its overrides'
	// appends); Effective is what runs: lists and macros expanded, and the
	// exceptions.
	Condition  string
	Effective  string
	Exceptions []Exception
	// Origins says where each part came from: "defined" and every part an
	// override changed, as file:line.
	Origins map[string]string
	// Dedupe says what makes two of its alerts the same within Window:
	// "event" (the same call and subject: the default), "call" or
	// "server" (a rate rule: once per server per window).
	Dedupe   string
	Window   time.Duration
	prg      cel.Program
	guard    guard // nil: always evaluate
	metered  bool  // its cost is counted as it runs (see programOptions)
	tmpl     template
	fixtures fixtures
}

type fixtures struct {
	Fire  []map[string]any `yaml:"fire"`
	Quiet []map[string]any `yaml:"quiet"`
}

// RuleSet is a validated, compiled set of rules.
type RuleSet struct {
	Rules []*Rule
	Dir   string
	lists map[string][]string
	globs *globs
	// by event kind, then type ("" for rules that look at every type)
	index map[string]map[string][]*Rule
	// Disabled are rules turned off (by enabled: false, or an override).
	Disabled []*Rule
}

// item is one entry of a rule file: a list, a macro or a rule, or an
// override of one defined before.
type item struct {
	List       string            `yaml:"list"`
	Items      []string          `yaml:"items"`
	Macro      string            `yaml:"macro"`
	Condition  string            `yaml:"condition"`
	Rule       string            `yaml:"rule"`
	Desc       string            `yaml:"desc"`
	When       string            `yaml:"when"`
	Types      []string          `yaml:"types"`
	Severity   string            `yaml:"severity"`
	Tags       []string          `yaml:"tags"`
	Output     string            `yaml:"output"`
	Action     string            `yaml:"action"`
	Enabled    *bool             `yaml:"enabled"`
	Append     bool              `yaml:"append"`
	Override   map[string]string `yaml:"override"`
	Exceptions []Exception       `yaml:"exceptions"`
	Fixtures   fixtures          `yaml:"fixtures"`
	Dedupe     string            `yaml:"dedupe"`
	Window     string            `yaml:"dedupe_window"`
	file       string
	line       int
}

// RuleError names the file and line of a problem in a rule set.
type RuleError struct {
	File string
	Line int
	Msg  string
}

func (e *RuleError) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Msg)
	}
	return fmt.Sprintf("%s: %s", e.File, e.Msg)
}

// LoadDir reads and compiles every *.yaml file of dir (in name order: a
// later file may use an earlier file's lists and macros). Any error fails
// the whole set, so a reload never swaps in half a rule set.
func LoadDir(dir string) (*RuleSet, error) {
	names, srcs, err := ReadDir(dir)
	if err != nil {
		return nil, err
	}
	rs, err := Compile(names, srcs)
	if err != nil {
		return nil, err
	}
	rs.Dir = dir
	return rs, nil
}

// ReadDir reads the *.yaml files of a directory, in name order.
func ReadDir(dir string) ([]string, map[string][]byte, error) {
	files, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if err != nil {
		return nil, nil, err
	}
	if len(files) == 0 {
		return nil, nil, fmt.Errorf("%s: no *.yaml rule files", dir)
	}
	sort.Strings(files)
	srcs := map[string][]byte{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, nil, err
		}
		srcs[f] = b
	}
	return files, srcs, nil
}

// ReadFS reads the *.yaml files at the top of fsys (the shipped set), in
// name order; name labels them in errors.
func ReadFS(fsys fs.FS, name string) ([]string, map[string][]byte, error) {
	files, err := fs.Glob(fsys, "*.yaml")
	if err != nil {
		return nil, nil, err
	}
	sort.Strings(files)
	srcs := map[string][]byte{}
	var names []string
	for _, f := range files {
		b, err := fs.ReadFile(fsys, f)
		if err != nil {
			return nil, nil, err
		}
		n := name + "/" + f
		names = append(names, n)
		srcs[n] = b
	}
	return names, srcs, nil
}

// LoadFS reads and compiles every *.yaml file at the top of fsys (the
// shipped, embedded set); name labels it in errors.
func LoadFS(fsys fs.FS, name string) (*RuleSet, error) {
	names, srcs, err := ReadFS(fsys, name)
	if err != nil {
		return nil, err
	}
	rs, err := Compile(names, srcs)
	if err != nil {
		return nil, err
	}
	rs.Dir = name
	return rs, nil
}

// parse reads the entries of the rule files, in order.
func parse(names []string, srcs map[string][]byte) ([]item, error) {
	var items []item
	for _, name := range names {
		var doc yaml.Node
		if err := yaml.Unmarshal(srcs[name], &doc); err != nil {
			return nil, &RuleError{File: name, Msg: yamlMsg(err)}
		}
		if len(doc.Content) == 0 {
			continue
		}
		seq := doc.Content[0]
		if seq.Kind != yaml.SequenceNode {
			return nil, &RuleError{File: name, Line: seq.Line, Msg: "a rule file is a list of `list:`, `macro:` and `rule:` entries"}
		}
		for _, n := range seq.Content {
			if err := knownKeys(n); err != nil {
				return nil, &RuleError{File: name, Line: n.Line, Msg: err.Error()}
			}
			var it item
			if err := n.Decode(&it); err != nil {
				return nil, &RuleError{File: name, Line: n.Line, Msg: yamlMsg(err)}
			}
			it.file, it.line = name, n.Line
			items = append(items, it)
		}
	}
	return items, nil
}

var itemKeys = []string{"list", "items", "macro", "condition", "rule", "desc", "when", "types", "severity", "tags", "output",
	"action", "enabled", "append", "override", "exceptions", "fixtures", "dedupe", "dedupe_window"}

// knownKeys refuses an entry key no entry has, naming the closest.
func knownKeys(n *yaml.Node) error {
	if n.Kind != yaml.MappingNode {
		return errors.New("each entry is a map: `- rule: name`, `- list: name`, `- macro: name`")
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k := n.Content[i].Value
		ok := false
		for _, x := range itemKeys {
			ok = ok || x == k
		}
		if !ok {
			return fmt.Errorf("unknown key %q%s", k, closest(k, itemKeys))
		}
	}
	return nil
}

var identRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

func yamlMsg(err error) string {
	return strings.TrimPrefix(err.Error(), "yaml: ")
}

func (rs *RuleSet) add(r *Rule) {
	rs.Rules = append(rs.Rules, r)
	m := rs.index[r.When]
	if m == nil {
		m = map[string][]*Rule{}
		rs.index[r.When] = m
	}
	if len(r.Types) == 0 {
		m[""] = append(m[""], r)
	}
	for _, t := range r.Types {
		m[t] = append(m[t], r)
	}
}

// Rule returns a rule of the set by name (enabled or not).
func (rs *RuleSet) Rule(name string) (*Rule, bool) {
	for _, r := range append(append([]*Rule(nil), rs.Rules...), rs.Disabled...) {
		if r.Name == name {
			return r, true
		}
	}
	return nil, false
}

// Names lists every rule's name, enabled or not.
func (rs *RuleSet) Names() []string {
	var out []string
	for _, r := range append(append([]*Rule(nil), rs.Rules...), rs.Disabled...) {
		out = append(out, r.Name)
	}
	return out
}

// Match says whether path matches one of the globs of a list the rule
// files define; homes are the server's own (see globs).
func (rs *RuleSet) Match(path, list string, homes []string) bool {
	if rs == nil {
		return false
	}
	return rs.globs.match(path, rs.lists[list], homes)
}

// List returns a list the rule files define (the correlator taints a
// server that reads a file of `credential_paths`).
func (rs *RuleSet) List(name string) []string {
	if rs == nil {
		return nil
	}
	return rs.lists[name]
}

// candidates are the rules that look at events of this kind and type.
func (rs *RuleSet) candidates(when, typ string, out []*Rule) []*Rule {
	m := rs.index[when]
	out = append(out[:0], m[""]...)
	return append(out, m[typ]...)
}

// looksAt says whether any rule looks at events of this kind and type: an
// event no rule looks at is not even given its variables.
func (rs *RuleSet) looksAt(when, typ string) bool {
	if rs == nil {
		return false
	}
	m := rs.index[when]
	return len(m[""]) > 0 || len(m[typ]) > 0
}
