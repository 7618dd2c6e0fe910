package correlate

import (
	"errors"
	"fmt"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"cel.dev/cel-go/cel"
	"go.yaml.in/yaml/v3"
)

// Exception names events a rule must not fire on, as Falco's do: the rule
// is quiet when, for one of the value tuples, every field compares true
// with its value (comps: =, !=, startswith, endswith, contains, glob, in;
// default =). A reason is required: an exception is a decision someone
// made.
type Exception struct {
	Name   string   `yaml:"name"`
	Fields []string `yaml:"fields"`
	Comps  []string `yaml:"comps"`
	Values [][]any  `yaml:"values"`
	Reason string   `yaml:"reason"`
	// Origin is where it was written (file:line).
	Origin string `yaml:"-"`
}

// UnmarshalYAML takes `fields: effect.path` and `values: [a, b]` for a
// single field too.
func (e *Exception) UnmarshalYAML(n *yaml.Node) error {
	var raw struct {
		Name   string    `yaml:"name"`
		Fields yaml.Node `yaml:"fields"`
		Comps  yaml.Node `yaml:"comps"`
		Values yaml.Node `yaml:"values"`
		Reason string    `yaml:"reason"`
	}
	if err := n.Decode(&raw); err != nil {
		return err
	}
	e.Name, e.Reason, e.Origin = raw.Name, raw.Reason, strconv.Itoa(n.Line)
	single := raw.Fields.Kind == yaml.ScalarNode
	if single {
		e.Fields = []string{raw.Fields.Value}
	} else if err := raw.Fields.Decode(&e.Fields); err != nil {
		return fmt.Errorf("exception %s: fields: %v", e.Name, err)
	}
	if raw.Comps.Kind == yaml.ScalarNode {
		e.Comps = []string{raw.Comps.Value}
	} else if raw.Comps.Kind != 0 {
		if err := raw.Comps.Decode(&e.Comps); err != nil {
			return fmt.Errorf("exception %s: comps: %v", e.Name, err)
		}
	}
	var vals []any
	if err := raw.Values.Decode(&vals); err != nil {
		return fmt.Errorf("exception %s: values: %v", e.Name, err)
	}
	for _, v := range vals {
		if t, ok := v.([]any); ok && !single {
			e.Values = append(e.Values, t)
		} else {
			e.Values = append(e.Values, []any{v})
		}
	}
	return nil
}

// cel turns the exception into the condition it adds: not any tuple.
func (e *Exception) cel() (string, error) {
	if e.Name == "" {
		return "", errors.New("an exception needs a name")
	}
	if strings.TrimSpace(e.Reason) == "" {
		return "", fmt.Errorf("exception %s: give a reason (who decided, and why)", e.Name)
	}
	if len(e.Fields) == 0 || len(e.Values) == 0 {
		return "", fmt.Errorf("exception %s: needs fields and values", e.Name)
	}
	if len(e.Comps) != 0 && len(e.Comps) != len(e.Fields) {
		return "", fmt.Errorf("exception %s: %d comps for %d fields", e.Name, len(e.Comps), len(e.Fields))
	}
	for _, f := range e.Fields {
		if _, _, err := fieldPath(strings.Split(f, ".")); err != nil {
			return "", fmt.Errorf("exception %s: %s: %v", e.Name, f, err)
		}
	}
	var any []string
	for _, tuple := range e.Values {
		if len(tuple) != len(e.Fields) {
			return "", fmt.Errorf("exception %s: a value tuple of %d for %d fields", e.Name, len(tuple), len(e.Fields))
		}
		var all []string
		for i, f := range e.Fields {
			comp := "="
			if len(e.Comps) > 0 {
				comp = e.Comps[i]
			}
			c, err := compare(f, comp, tuple[i])
			if err != nil {
				return "", fmt.Errorf("exception %s: %v", e.Name, err)
			}
			all = append(all, c)
		}
		any = append(any, "("+strings.Join(all, " && ")+")")
	}
	return "!(" + strings.Join(any, " || ") + ")", nil
}

func literal(v any) (string, error) {
	switch x := v.(type) {
	case string:
		return strconv.Quote(x), nil
	case int:
		return strconv.Itoa(x), nil
	case bool:
		return strconv.FormatBool(x), nil
	case []any:
		var parts []string
		for _, y := range x {
			s, err := literal(y)
			if err != nil {
				return "", err
			}
			parts = append(parts, s)
		}
		return "[" + strings.Join(parts, ", ") + "]", nil
	}
	return "", fmt.Errorf("value %v: a string, a number, a boolean or a list of them", v)
}

func compare(field, comp string, v any) (string, error) {
	lit, err := literal(v)
	if err != nil {
		return "", err
	}
	if t := fieldType(strings.Split(field, ".")); t != nil && t.Kind() == reflect.Slice {
		// a list field: true when one element compares true
		one, err := compare("x", comp, v)
		if err != nil {
			return "", err
		}
		return field + ".exists(x, " + one + ")", nil
	}
	switch comp {
	case "=", "==":
		return field + " == " + lit, nil
	case "!=":
		return field + " != " + lit, nil
	case "startswith":
		return field + ".startsWith(" + lit + ")", nil
	case "endswith":
		return field + ".endsWith(" + lit + ")", nil
	case "contains":
		return field + ".contains(" + lit + ")", nil
	case "glob":
		return "glob(" + field + ", [" + lit + "])", nil
	case "in":
		if !strings.HasPrefix(lit, "[") {
			lit = "[" + lit + "]"
		}
		return field + " in " + lit, nil
	}
	return "", fmt.Errorf("comp %q: use =, !=, startswith, endswith, contains, glob or in", comp)
}

// Compile builds a rule set from files (names in order, contents in srcs).
// Lists and macros may be appended to (append: true) and rules changed
// (override:) by later files; the rules are compiled once everything is
// read, so an append reaches the rules defined before it.
func Compile(names []string, srcs map[string][]byte) (*RuleSet, error) {
	items, err := parse(names, srcs)
	if err != nil {
		return nil, err
	}
	rs := &RuleSet{index: map[string]map[string][]*Rule{}, lists: map[string][]string{}, globs: &globs{}}
	env, err := newEnv(rs.globs)
	if err != nil {
		return nil, err
	}
	macros := map[string]*item{}
	rules := map[string]*item{}
	var order []string
	kinds := map[string]string{}
	origins := map[string]map[string]string{}
	for i := range items {
		it := &items[i]
		at := fmt.Sprintf("%s:%d", it.file, it.line)
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
			_, defined := kinds[it.List]
			switch {
			case it.Append && kinds[it.List] != "list":
				return nil, errf("list %s: append to a list that is not defined%s", it.List, closest(it.List, keysOfKind(kinds, "list")))
			case !it.Append && defined:
				return nil, errf("list %q: already defined as a %s (append: true adds to it)", it.List, kinds[it.List])
			}
			rs.lists[it.List] = append(rs.lists[it.List], it.Items...)
			kinds[it.List] = "list"
		case it.Macro != "":
			if !identRE.MatchString(it.Macro) {
				return nil, errf("macro %q: names are identifiers", it.Macro)
			}
			prev, defined := macros[it.Macro]
			switch {
			case it.Append && prev == nil:
				return nil, errf("macro %s: append to a macro that is not defined%s", it.Macro, closest(it.Macro, keysOfKind(kinds, "macro")))
			case it.Append:
				cp := *prev
				cp.Condition = prev.Condition + " " + it.Condition
				macros[it.Macro] = &cp
			case defined || kinds[it.Macro] != "":
				return nil, errf("macro %q: already defined as a %s (append: true adds to it)", it.Macro, kinds[it.Macro])
			default:
				macros[it.Macro] = it
				kinds[it.Macro] = "macro"
			}
		case it.Override != nil:
			base := rules[it.Rule]
			if base == nil {
				return nil, errf("override of rule %s: no such rule is defined before it%s", it.Rule, closest(it.Rule, order))
			}
			if err := applyOverride(base, it, origins[it.Rule], at); err != nil {
				return nil, errf("override of rule %s: %v", it.Rule, err)
			}
		default:
			if prev, dup := rules[it.Rule]; dup {
				return nil, errf("rule %q: already defined at %s:%d (to change it, add `override:`; see rules/README.md)", it.Rule, prev.file, prev.line)
			}
			cp := *it
			rules[it.Rule] = &cp
			order = append(order, it.Rule)
			origins[it.Rule] = map[string]string{"defined": at}
		}
	}
	defs := map[string]string{}
	for name, l := range rs.lists {
		quoted := make([]string, len(l))
		for j, s := range l {
			quoted[j] = strconv.Quote(s)
		}
		defs[name] = "[" + strings.Join(quoted, ", ") + "]"
	}
	for name, m := range macros {
		defs[name] = "(" + m.Condition + ")"
	}
	for _, name := range sortedKeys(macros) {
		m := macros[name]
		exp, err := expand(m.Condition, defs, 0)
		if err == nil {
			err = check(env, exp, m.Condition, defs)
		}
		if err != nil {
			return nil, &RuleError{File: m.file, Line: m.line, Msg: fmt.Sprintf("macro %s: %v", name, err)}
		}
	}
	for _, name := range order {
		it := rules[name]
		r, err := compileRule(env, it, defs)
		if err != nil {
			return nil, &RuleError{File: it.file, Line: it.line, Msg: fmt.Sprintf("rule %s: %v", name, err)}
		}
		r.Origins = origins[name]
		if it.Enabled != nil && !*it.Enabled {
			rs.Disabled = append(rs.Disabled, r)
			continue
		}
		rs.add(r)
	}
	if len(rs.Rules) == 0 {
		return nil, errors.New("the rule set has no enabled rules")
	}
	return rs, nil
}

// overridable are the parts an override may change, and how.
var overridable = map[string]string{"enabled": "replace", "severity": "replace", "action": "replace", "desc": "replace",
	"output": "replace", "tags": "replace append", "condition": "replace append", "exceptions": "replace append",
	"types": "replace append"}

// applyOverride changes a rule as an override entry says: each key of
// `override:` names a part and whether the entry's value replaces it or is
// appended to it.
func applyOverride(base, o *item, origin map[string]string, at string) error {
	if len(o.Override) == 0 {
		return errors.New("override: name what changes (e.g. override: {severity: replace})")
	}
	for _, part := range sortedKeys(o.Override) {
		how := o.Override[part]
		allowed, ok := overridable[part]
		if !ok {
			var parts []string
			for p := range overridable {
				parts = append(parts, p)
			}
			return fmt.Errorf("%s cannot be overridden%s", part, closest(part, parts))
		}
		if how != "replace" && how != "append" || !strings.Contains(allowed, how) {
			return fmt.Errorf("%s: %q: use %s", part, how, strings.ReplaceAll(allowed, " ", " or "))
		}
		switch part {
		case "enabled":
			base.Enabled = o.Enabled
		case "severity":
			base.Severity = o.Severity
		case "action":
			base.Action = o.Action
		case "desc":
			base.Desc = o.Desc
		case "output":
			base.Output = o.Output
		case "tags":
			base.Tags = appendOr(how, base.Tags, o.Tags)
		case "types":
			base.Types = appendOr(how, base.Types, o.Types)
		case "condition":
			if how == "append" {
				base.Condition = "(" + base.Condition + ") " + o.Condition
			} else {
				base.Condition = o.Condition
			}
		case "exceptions":
			if how == "replace" {
				base.Exceptions = nil
			}
			for _, e := range o.Exceptions {
				e.Origin = at
				base.Exceptions = append(base.Exceptions, e)
			}
		}
		origin[part] = at
	}
	return nil
}

func appendOr(how string, a, b []string) []string {
	if how == "append" {
		return append(append([]string(nil), a...), b...)
	}
	return b
}

func keysOfKind(kinds map[string]string, kind string) []string {
	var out []string
	for k, v := range kinds {
		if v == kind {
			out = append(out, k)
		}
	}
	return out
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
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
		var names []string
		for a := range actions {
			names = append(names, a)
		}
		return nil, fmt.Errorf("action %q: unknown%s", it.Action, closest(it.Action, names))
	}
	if strings.TrimSpace(it.Condition) == "" {
		return nil, errors.New("`condition:` is missing")
	}
	cond := "(" + it.Condition + ")"
	for i := range it.Exceptions {
		e := &it.Exceptions[i]
		if !strings.Contains(e.Origin, ":") {
			e.Origin = it.file + ":" + e.Origin
		}
		x, err := e.cel()
		if err != nil {
			return nil, err
		}
		cond += " && " + x
	}
	exp, err := expand(cond, defs, 0)
	if err != nil {
		return nil, err
	}
	ast, iss := env.Compile(exp)
	if iss != nil && iss.Err() != nil {
		return nil, fmt.Errorf("condition: %v", explain(iss.Err(), exp, defs))
	}
	if ast.OutputType() != cel.BoolType {
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
	switch it.Dedupe {
	case "", "event", "call", "server":
	default:
		return nil, fmt.Errorf("dedupe %q: use event, call or server", it.Dedupe)
	}
	var window time.Duration
	if it.Window != "" {
		if window, err = time.ParseDuration(it.Window); err != nil || window < 0 {
			return nil, fmt.Errorf("dedupe_window %q: a duration, e.g. 1m", it.Window)
		}
	}
	return &Rule{Dedupe: it.Dedupe, Window: window,
		Name: it.Rule, Desc: it.Desc, When: it.When, Types: it.Types, Severity: it.Severity, Tags: it.Tags,
		Output: it.Output, Action: it.Action, File: it.file, Line: it.line, Condition: it.Condition, Effective: exp,
		Exceptions: it.Exceptions, prg: prg, tmpl: tmpl, fixtures: it.Fixtures,
	}, nil
}

// check compiles a macro's condition on its own (it may be any type).
func check(env *cel.Env, exp, cond string, defs map[string]string) error {
	if _, iss := env.Compile(exp); iss != nil && iss.Err() != nil {
		return explain(iss.Err(), exp, defs)
	}
	return nil
}

var (
	undefinedFieldRE = regexp.MustCompile(`undefined field '([A-Za-z0-9_]+)'`)
	undeclaredRE     = regexp.MustCompile(`undeclared reference to '([A-Za-z0-9_]+)'`)
)

// explain turns CEL's first error into one that names what is wrong in the
// rule's own terms, with the closest name that exists.
func explain(err error, exp string, defs map[string]string) error {
	msg := err.Error()
	first := strings.SplitN(strings.TrimPrefix(msg, "ERROR: "), "\n", 2)[0]
	if m := undefinedFieldRE.FindStringSubmatch(first); m != nil {
		// find the reference in the expression to name its variable
		ref := regexp.MustCompile(`([a-z_]+(?:\.[A-Za-z0-9_]+)*)\.` + regexp.QuoteMeta(m[1]) + `\b`).FindStringSubmatch(exp)
		if ref != nil {
			if _, _, perr := fieldPath(append(strings.Split(ref[1], "."), m[1])); perr != nil {
				return perr
			}
		}
		return fmt.Errorf("no field %q", m[1])
	}
	if m := undeclaredRE.FindStringSubmatch(first); m != nil {
		names := append([]string(nil), ruleVars...)
		for d := range defs {
			names = append(names, d)
		}
		return fmt.Errorf("%q is not a variable, list or macro%s (variables: %s)", m[1], closest(m[1], names), strings.Join(ruleVars, ", "))
	}
	if i := strings.Index(first, ": "); i >= 0 && strings.HasPrefix(first, "<input>") {
		first = first[i+2:] // the position is in the expanded text: not the reader's
	}
	return errors.New(first)
}
