package correlate

import (
	"fmt"
	"reflect"
	"sort"
	"strings"
)

// ruleVars are the variables every rule sees, in the order they are shown.
var ruleVars = []string{"server", "session", "call", "effect", "message", "tool"}

// varType is the Go type of a rule variable.
func varType(name string) (reflect.Type, bool) {
	switch name {
	case "server":
		return reflect.TypeOf(ServerVars{}), true
	case "session":
		return reflect.TypeOf(SessionVars{}), true
	case "call":
		return reflect.TypeOf(CallVars{}), true
	case "effect":
		return reflect.TypeOf(EffectVars{}), true
	case "message":
		return reflect.TypeOf(MessageVars{}), true
	case "tool":
		return reflect.TypeOf(ToolVars{}), true
	}
	return nil, false
}

// Field is one field of a rule variable, for the rule reference.
type Field struct {
	Name string // as rules write it
	Type string // CEL's: string, int, bool, list(string), map(string, dyn), or a nested variable
	Doc  string
}

// Fields lists a variable's fields (nested ones as message.http.status).
func Fields(variable string) []Field {
	t, ok := varType(variable)
	if !ok {
		return nil
	}
	var out []Field
	var walk func(prefix string, t reflect.Type)
	walk = func(prefix string, t reflect.Type) {
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			name := prefix + f.Tag.Get("cel")
			if f.Type.Kind() == reflect.Struct {
				walk(name+".", f.Type)
				continue
			}
			out = append(out, Field{Name: name, Type: celTypeName(f.Type), Doc: f.Tag.Get("doc")})
		}
	}
	walk("", t)
	return out
}

func celTypeName(t reflect.Type) string {
	switch t.Kind() {
	case reflect.String:
		return "string"
	case reflect.Bool:
		return "bool"
	case reflect.Int, reflect.Int64:
		return "int"
	case reflect.Slice:
		return "list(" + celTypeName(t.Elem()) + ")"
	case reflect.Map:
		return "map(string, dyn)"
	case reflect.Interface:
		return "dyn"
	}
	return t.String()
}

// fieldPath finds the field a reference names (server.name,
// message.http.status, call.args.path), returning its index in the
// variable's type and what follows it inside a map field; an unknown field
// is an error with the closest name.
func fieldPath(ref []string) ([]int, []string, error) {
	t, ok := varType(ref[0])
	if !ok {
		return nil, nil, fmt.Errorf("no variable %q%s (one of %s)", ref[0], closest(ref[0], ruleVars), strings.Join(ruleVars, ", "))
	}
	var idx []int
	for i, name := range ref[1:] {
		if t.Kind() == reflect.Map {
			return idx, ref[1+i:], nil // keys of a map are the data's
		}
		if t.Kind() != reflect.Struct {
			return nil, nil, fmt.Errorf("%s is a %s: it has no field %q", strings.Join(ref[:1+i], "."), celTypeName(t), name)
		}
		var names []string
		found := false
		for j := 0; j < t.NumField(); j++ {
			f := t.Field(j)
			n := f.Tag.Get("cel")
			names = append(names, n)
			if n == name {
				idx = append(idx, j)
				t, found = f.Type, true
				break
			}
		}
		if !found {
			return nil, nil, fmt.Errorf("%s has no field %q%s", strings.Join(ref[:1+i], "."), name, closest(name, names))
		}
	}
	return idx, nil, nil
}

// closest suggests the nearest of names to s, if one is near.
func closest(s string, names []string) string {
	best, bestD := "", 3
	sorted := append([]string(nil), names...)
	sort.Strings(sorted)
	for _, n := range sorted {
		if d := editDistance(s, n); d < bestD || (d == bestD && best == "") && d < 3 {
			best, bestD = n, d
		}
	}
	if best == "" {
		for _, n := range sorted { // a prefix or a fragment: tainted_by -> tainted
			if len(s) > 3 && (strings.HasPrefix(n, s) || strings.HasPrefix(s, n)) {
				return fmt.Sprintf(" (did you mean %q?)", n)
			}
		}
		return ""
	}
	return fmt.Sprintf(" (did you mean %q?)", best)
}

// editDistance is the Levenshtein distance of two short strings.
func editDistance(a, b string) int {
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

// Reference is the rule reference (the variables table of rules/README.md),
// made from the declarations so that it cannot drift from them.
func Reference() string {
	var b strings.Builder
	b.WriteString("| variable | field | type | meaning |\n|---|---|---|---|\n")
	for _, v := range ruleVars {
		for _, f := range Fields(v) {
			fmt.Fprintf(&b, "| `%s` | `%s` | %s | %s |\n", v, f.Name, f.Type, f.Doc)
		}
	}
	return b.String()
}

// fieldType is the Go type of the field a reference names (nil for a key
// inside a map field).
func fieldType(ref []string) reflect.Type {
	idx, keys, err := fieldPath(ref)
	if err != nil || len(keys) > 0 {
		return nil
	}
	t, _ := varType(ref[0])
	return t.FieldByIndex(idx).Type
}
