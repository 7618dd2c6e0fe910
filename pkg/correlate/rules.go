package correlate

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"cel.dev/cel-go/cel"
	celcommon "cel.dev/cel-go/common"
	celast "cel.dev/cel-go/common/ast"
	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/common/types/ref"
	"cel.dev/cel-go/ext"
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
	prg      cel.Program
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
}

// item is one entry of a rule file: a list, a macro or a rule.
type item struct {
	List      string   `yaml:"list"`
	Items     []string `yaml:"items"`
	Macro     string   `yaml:"macro"`
	Condition string   `yaml:"condition"`
	Rule      string   `yaml:"rule"`
	Desc      string   `yaml:"desc"`
	When      string   `yaml:"when"`
	Types     []string `yaml:"types"`
	Severity  string   `yaml:"severity"`
	Tags      []string `yaml:"tags"`
	Output    string   `yaml:"output"`
	Action    string   `yaml:"action"`
	Enabled   *bool    `yaml:"enabled"`
	Fixtures  fixtures `yaml:"fixtures"`
	file      string
	line      int
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
	files, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if err != nil {
		return nil, err
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("%s: no *.yaml rule files", dir)
	}
	sort.Strings(files)
	srcs := map[string][]byte{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		srcs[f] = b
	}
	rs, err := Compile(files, srcs)
	if err != nil {
		return nil, err
	}
	rs.Dir = dir
	return rs, nil
}

// Compile builds a rule set from files (names in order, contents in srcs).
func Compile(names []string, srcs map[string][]byte) (*RuleSet, error) {
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
			var it item
			if err := n.Decode(&it); err != nil {
				return nil, &RuleError{File: name, Line: n.Line, Msg: yamlMsg(err)}
			}
			it.file, it.line = name, n.Line
			items = append(items, it)
		}
	}
	rs := &RuleSet{index: map[string]map[string][]*Rule{}, lists: map[string][]string{}, globs: &globs{}}
	env, err := newEnv(rs.globs)
	if err != nil {
		return nil, err
	}
	defs := map[string]string{} // list and macro names -> CEL text
	kinds := map[string]string{}
	seen := map[string]*item{}
	for i := range items {
		it := &items[i]
		errf := func(format string, a ...any) error {
			return &RuleError{File: it.file, Line: it.line, Msg: fmt.Sprintf(format, a...)}
		}
		n := 0
		for _, s := range []string{it.List, it.Macro, it.Rule} {
			if s != "" {
				n++
			}
		}
		if n != 1 {
			return nil, errf("each entry is exactly one of `list:`, `macro:` or `rule:`")
		}
		switch {
		case it.List != "":
			if !identRE.MatchString(it.List) {
				return nil, errf("list %q: names are identifiers", it.List)
			}
			if _, dup := defs[it.List]; dup {
				return nil, errf("list %q: already defined as a %s", it.List, kinds[it.List])
			}
			quoted := make([]string, len(it.Items))
			for j, s := range it.Items {
				quoted[j] = strconv.Quote(s)
			}
			defs[it.List], kinds[it.List] = "["+strings.Join(quoted, ", ")+"]", "list"
			rs.lists[it.List] = it.Items
		case it.Macro != "":
			if !identRE.MatchString(it.Macro) {
				return nil, errf("macro %q: names are identifiers", it.Macro)
			}
			if _, dup := defs[it.Macro]; dup {
				return nil, errf("macro %q: already defined as a %s", it.Macro, kinds[it.Macro])
			}
			exp, err := expand(it.Condition, defs, 0)
			if err != nil {
				return nil, errf("macro %s: %v", it.Macro, err)
			}
			if _, iss := env.Compile(exp); iss != nil && iss.Err() != nil {
				return nil, errf("macro %s: %v", it.Macro, iss.Err())
			}
			defs[it.Macro], kinds[it.Macro] = "("+exp+")", "macro"
		default:
			if prev, dup := seen[it.Rule]; dup {
				return nil, errf("rule %q: already defined at %s:%d", it.Rule, prev.file, prev.line)
			}
			seen[it.Rule] = it
			if it.Enabled != nil && !*it.Enabled {
				continue
			}
			r, err := compileRule(env, it, defs)
			if err != nil {
				return nil, errf("rule %s: %v", it.Rule, err)
			}
			rs.add(r)
		}
	}
	if len(rs.Rules) == 0 {
		return nil, errors.New("the rule set has no enabled rules")
	}
	return rs, nil
}

var identRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

func yamlMsg(err error) string {
	return strings.TrimPrefix(err.Error(), "yaml: ")
}

func compileRule(env *cel.Env, it *item, defs map[string]string) (*Rule, error) {
	switch it.When {
	case "effect", "message", "tool":
	case "":
		return nil, errors.New("`when:` is missing (effect, message or tool)")
	default:
		return nil, fmt.Errorf("when: %q: must be effect, message or tool", it.When)
	}
	if SeverityRank(it.Severity) < 0 {
		return nil, fmt.Errorf("severity %q: must be one of %s", it.Severity, strings.Join(severities, ", "))
	}
	if !actions[it.Action] {
		return nil, fmt.Errorf("action %q: unknown", it.Action)
	}
	if strings.TrimSpace(it.Condition) == "" {
		return nil, errors.New("`condition:` is missing")
	}
	exp, err := expand(it.Condition, defs, 0)
	if err != nil {
		return nil, err
	}
	ast, iss := env.Compile(exp)
	if iss != nil && iss.Err() != nil {
		return nil, fmt.Errorf("condition: %v", iss.Err())
	}
	if ast.OutputType() != cel.BoolType && ast.OutputType() != cel.DynType {
		return nil, fmt.Errorf("condition: is a %v, not a bool", ast.OutputType())
	}
	prg, err := env.Program(ast, cel.EvalOptions(cel.OptOptimize), cel.CostLimit(1_000_000))
	if err != nil {
		return nil, fmt.Errorf("condition: %v", err)
	}
	tmpl, err := parseTemplate(it.Output)
	if err != nil {
		return nil, fmt.Errorf("output: %v", err)
	}
	if err := checkFixtures(it.Fixtures); err != nil {
		return nil, err
	}
	return &Rule{
		Name: it.Rule, Desc: it.Desc, When: it.When, Types: it.Types, Severity: it.Severity, Tags: it.Tags,
		Output: it.Output, Action: it.Action, File: it.file, Line: it.line, prg: prg, tmpl: tmpl, fixtures: it.Fixtures,
	}, nil
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

// expand replaces list and macro names in a condition with their CEL text.
// Names inside string literals and after a dot (fields) are left alone.
func expand(cond string, defs map[string]string, depth int) (string, error) {
	if depth > 16 {
		return "", errors.New("macros nest too deep (a cycle?)")
	}
	var b strings.Builder
	for i := 0; i < len(cond); {
		c := cond[i]
		switch {
		case c == '"' || c == '\'':
			j := i + 1
			for j < len(cond) && cond[j] != c {
				if cond[j] == '\\' {
					j++
				}
				j++
			}
			if j >= len(cond) {
				return "", errors.New("unterminated string")
			}
			b.WriteString(cond[i : j+1])
			i = j + 1
		case c == '_' || c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z':
			j := i
			for j < len(cond) && (cond[j] == '_' || cond[j] >= 'A' && cond[j] <= 'Z' || cond[j] >= 'a' && cond[j] <= 'z' || cond[j] >= '0' && cond[j] <= '9') {
				j++
			}
			word := cond[i:j]
			prev := strings.TrimRight(cond[:i], " \t\n")
			if def, ok := defs[word]; ok && !strings.HasSuffix(prev, ".") {
				exp, err := expand(def, defs, depth+1)
				if err != nil {
					return "", err
				}
				b.WriteString(exp)
			} else {
				b.WriteString(word)
			}
			i = j
		default:
			b.WriteByte(c)
			i++
		}
	}
	return b.String(), nil
}

// Variables every rule sees; their fields are listed in rules/README.md.
var ruleVars = []string{"server", "session", "call", "effect", "message", "tool"}

func newEnv(gs *globs) (*cel.Env, error) {
	// glob(path, list) is written by rules; it matches with the server's
	// homes too: glob_homes(path, list, server.homes)
	withHomes := cel.GlobalMacro("glob", 2, func(eh cel.MacroExprFactory, _ celast.Expr, args []celast.Expr) (celast.Expr, *celcommon.Error) {
		return eh.NewCall("glob_homes", args[0], args[1], eh.NewSelect(eh.NewIdent("server"), "homes")), nil
	})
	opts := []cel.EnvOption{ext.Strings(), ext.Lists(), cel.Macros(withHomes)}
	for _, v := range ruleVars {
		opts = append(opts, cel.Variable(v, cel.MapType(cel.StringType, cel.DynType)))
	}
	strList := cel.ListType(cel.StringType)
	opts = append(opts,
		cel.Function("glob_homes", cel.Overload("glob_homes_string_list_list", []*cel.Type{cel.StringType, strList, cel.DynType}, cel.BoolType,
			cel.FunctionBinding(func(a ...ref.Val) ref.Val {
				return types.Bool(gs.match(string(a[0].(types.String)), strs(a[1]), strs(a[2])))
			}))),
		cel.Function("under", cel.Overload("under_string_list", []*cel.Type{cel.StringType, strList}, cel.BoolType,
			cel.BinaryBinding(func(p, l ref.Val) ref.Val { return types.Bool(underAny(string(p.(types.String)), strs(l))) }))),
		cel.Function("secrets", cel.Overload("secrets_string", []*cel.Type{cel.StringType}, strList,
			cel.UnaryBinding(func(s ref.Val) ref.Val {
				return types.NewStringList(types.DefaultTypeAdapter, Secrets(string(s.(types.String))))
			}))),
		cel.Function("shell_meta", cel.Overload("shell_meta_string", []*cel.Type{cel.StringType}, cel.BoolType,
			cel.UnaryBinding(func(s ref.Val) ref.Val { return types.Bool(shellMeta(string(s.(types.String)))) }))),
		cel.Function("base", cel.Overload("base_string", []*cel.Type{cel.StringType}, cel.StringType,
			cel.UnaryBinding(func(s ref.Val) ref.Val { return types.String(filepath.Base(string(s.(types.String)))) }))),
		cel.Function("egress_allowed", cel.Overload("egress_allowed_string_list", []*cel.Type{cel.StringType, strList}, cel.BoolType,
			cel.BinaryBinding(func(a, l ref.Val) ref.Val { return types.Bool(EgressAllowed(string(a.(types.String)), strs(l))) }))),
		cel.Function("any_in", cel.Overload("any_in_list_list", []*cel.Type{strList, strList}, cel.BoolType,
			cel.BinaryBinding(func(a, b ref.Val) ref.Val { return types.Bool(anyIn(strs(a), strs(b))) }))),
	)
	return cel.NewEnv(opts...)
}

// strs converts a CEL list of strings; non-strings are skipped.
func strs(v ref.Val) []string {
	var out []string
	switch l := v.Value().(type) {
	case []string:
		return l
	case []any:
		for _, x := range l {
			if s, ok := x.(string); ok {
				out = append(out, s)
			}
		}
		return out
	}
	if lister, ok := v.(interface {
		Size() ref.Val
		Get(ref.Val) ref.Val
	}); ok {
		n, _ := lister.Size().(types.Int)
		for i := types.Int(0); i < n; i++ {
			if s, ok := lister.Get(i).(types.String); ok {
				out = append(out, string(s))
			}
		}
	}
	return out
}

func anyIn(a, b []string) bool {
	for _, x := range a {
		for _, y := range b {
			if x == y {
				return true
			}
		}
	}
	return false
}

// LoadFS reads and compiles every *.yaml file at the top of fsys (the
// shipped, embedded set); name labels it in errors.
func LoadFS(fsys fs.FS, name string) (*RuleSet, error) {
	files, err := fs.Glob(fsys, "*.yaml")
	if err != nil {
		return nil, err
	}
	sort.Strings(files)
	srcs := map[string][]byte{}
	var names []string
	for _, f := range files {
		b, err := fs.ReadFile(fsys, f)
		if err != nil {
			return nil, err
		}
		n := name + "/" + f
		names = append(names, n)
		srcs[n] = b
	}
	rs, err := Compile(names, srcs)
	if err != nil {
		return nil, err
	}
	rs.Dir = name
	return rs, nil
}
