package correlate

import (
	"errors"
	"path/filepath"
	"reflect"
	"strings"

	"cel.dev/cel-go/cel"
	celcommon "cel.dev/cel-go/common"
	celast "cel.dev/cel-go/common/ast"
	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/common/types/ref"
	"cel.dev/cel-go/ext"
)

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

func newEnv(gs *globs) (*cel.Env, error) {
	// glob(path, list) is written by rules; it matches with the server's
	// homes too: glob_homes(path, list, server.homes)
	withHomes := cel.GlobalMacro("glob", 2, func(eh cel.MacroExprFactory, _ celast.Expr, args []celast.Expr) (celast.Expr, *celcommon.Error) {
		return eh.NewCall("glob_homes", args[0], args[1], eh.NewSelect(eh.NewIdent("server"), "homes")), nil
	})
	var natives []any
	opts := []cel.EnvOption{ext.Strings(), ext.Lists(), cel.Macros(withHomes)}
	for _, v := range ruleVars {
		t, _ := varType(v)
		natives = append(natives, reflect.PointerTo(t))
		opts = append(opts, cel.Variable(v, cel.ObjectType("correlate."+t.Name())))
	}
	natives = append(natives, reflect.TypeOf(&HTTPVars{}), ext.ParseStructTags(true))
	opts = append([]cel.EnvOption{ext.NativeTypes(natives...)}, opts...)
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
		cel.Function("sql_injection", cel.Overload("sql_injection_string", []*cel.Type{cel.StringType}, cel.BoolType,
			cel.UnaryBinding(func(s ref.Val) ref.Val { return types.Bool(sqlInjection(string(s.(types.String)))) }))),
		cel.Function("template_injection", cel.Overload("template_injection_string", []*cel.Type{cel.StringType}, cel.BoolType,
			cel.UnaryBinding(func(s ref.Val) ref.Val { return types.Bool(templateInjection(string(s.(types.String)))) }))),
		cel.Function("path_traversal", cel.Overload("path_traversal_string", []*cel.Type{cel.StringType}, cel.BoolType,
			cel.UnaryBinding(func(s ref.Val) ref.Val { return types.Bool(pathTraversal(string(s.(types.String)))) }))),
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
