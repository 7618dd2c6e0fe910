package correlate

import (
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"cel.dev/cel-go/cel"
)

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
	popts, metered := programOptions(env, ast)
	prg, err := env.Program(ast, popts...)
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
		Exceptions: it.Exceptions, prg: prg, metered: metered, guard: guardOf(ast.NativeRep()), tmpl: tmpl, fixtures: it.Fixtures,
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
