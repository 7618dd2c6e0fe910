package correlate

import (
	"reflect"
	"unicode/utf8"
	"unsafe"

	celast "cel.dev/cel-go/common/ast"
	"cel.dev/cel-go/common/types"
)

// A guard is a rule's cheap necessary condition: what its condition says,
// at its top level, about plain fields (message.type == "request",
// message.direction == "in", server.calls_per_min > 600, message.truncated,
// message.method in [...]), read straight from the variables in Go. A rule
// whose guard is false cannot match, so its CEL program is not run: most
// rules look at one kind of message, and each evaluation costs a
// microsecond or more. The guard is derived from the compiled condition, so
// it cannot disagree with it; whatever it cannot read is left to CEL.
type guard func(v *vars) bool

// guardOf derives the guard of a checked condition, or nil (always run).
func guardOf(a *celast.AST) guard {
	g, _ := guardExpr(a.Expr())
	return g
}

// guardExpr returns a necessary condition of e (nil: none found) and
// whether it is also sufficient (exact), which negation and disjunction
// need.
func guardExpr(e celast.Expr) (guard, bool) {
	switch e.Kind() {
	case celast.SelectKind:
		if f := field(e, reflect.Bool); f != nil {
			return f.boolean, true
		}
		return nil, false
	case celast.CallKind:
	default:
		return nil, false
	}
	c := e.AsCall()
	args := c.Args()
	switch c.FunctionName() {
	case "_&&_":
		a, ea := guardExpr(args[0])
		b, eb := guardExpr(args[1])
		switch {
		case a == nil && b == nil:
			return nil, false
		case a == nil:
			return b, false
		case b == nil:
			return a, false
		}
		return func(v *vars) bool { return a(v) && b(v) }, ea && eb
	case "_||_":
		a, ea := guardExpr(args[0])
		b, eb := guardExpr(args[1])
		if a == nil || b == nil {
			return nil, false
		}
		return func(v *vars) bool { return a(v) || b(v) }, ea && eb
	case "!_":
		if a, exact := guardExpr(args[0]); a != nil && exact {
			return func(v *vars) bool { return !a(v) }, true
		}
		return nil, false
	case "@in":
		return inGuard(args[0], args[1])
	case "_==_", "_!=_", "_<_", "_<=_", "_>_", "_>=_":
		return compareGuard(c.FunctionName(), args[0], args[1])
	}
	return nil, false
}

// inGuard: a string field in a list of string literals.
func inGuard(x, list celast.Expr) (guard, bool) {
	f := field(x, reflect.String)
	if f == nil || list.Kind() != celast.ListKind {
		return nil, false
	}
	set := map[string]bool{}
	for _, el := range list.AsList().Elements() {
		s, ok := litOf(el).(types.String)
		if !ok {
			return nil, false
		}
		set[string(s)] = true
	}
	return func(v *vars) bool { return set[f.str(v)] }, true
}

// compareGuard: a field (or size(list field)) compared with a literal, on
// either side.
func compareGuard(op string, l, r celast.Expr) (guard, bool) {
	if litOf(l) != nil { // "in" == message.direction, 600 < server.calls_per_min
		l, r = r, l
		op = flip(op)
	}
	switch x := litOf(r).(type) {
	case types.String:
		f := field(l, reflect.String)
		if f == nil || (op != "_==_" && op != "_!=_") {
			return nil, false
		}
		s, eq := string(x), op == "_==_"
		return func(v *vars) bool { return (f.str(v) == s) == eq }, true
	case types.Bool:
		f := field(l, reflect.Bool)
		if f == nil || (op != "_==_" && op != "_!=_") {
			return nil, false
		}
		want := bool(x) == (op == "_==_")
		return func(v *vars) bool { return f.boolean(v) == want }, true
	case types.Int:
		get := intOf(l)
		if get == nil {
			return nil, false
		}
		n := int64(x)
		switch op {
		case "_==_":
			return func(v *vars) bool { return get(v) == n }, true
		case "_!=_":
			return func(v *vars) bool { return get(v) != n }, true
		case "_<_":
			return func(v *vars) bool { return get(v) < n }, true
		case "_<=_":
			return func(v *vars) bool { return get(v) <= n }, true
		case "_>_":
			return func(v *vars) bool { return get(v) > n }, true
		case "_>=_":
			return func(v *vars) bool { return get(v) >= n }, true
		}
	}
	return nil, false
}

// flip is the operator with its operands swapped.
func flip(op string) string {
	switch op {
	case "_<_":
		return "_>_"
	case "_<=_":
		return "_>=_"
	case "_>_":
		return "_<_"
	case "_>=_":
		return "_<=_"
	}
	return op
}

// litOf is e's value if e is a literal, else nil.
func litOf(e celast.Expr) any {
	if e.Kind() != celast.LiteralKind {
		return nil
	}
	return e.AsLiteral()
}

// intOf reads an int field, or size() of a list or string field.
func intOf(e celast.Expr) func(v *vars) int64 {
	if f := field(e, reflect.Int64); f != nil {
		return f.integer
	}
	if e.Kind() != celast.CallKind || e.AsCall().FunctionName() != "size" {
		return nil
	}
	c := e.AsCall()
	x := c.Target()
	if !c.IsMemberFunction() {
		if len(c.Args()) != 1 {
			return nil
		}
		x = c.Args()[0]
	}
	if f := field(x, reflect.Slice); f != nil {
		return func(v *vars) int64 { return int64(len(f.list(v))) }
	}
	if f := field(x, reflect.String); f != nil {
		// CEL's size of a string counts code points, not bytes
		return func(v *vars) int64 { return int64(utf8.RuneCountInString(f.str(v))) }
	}
	return nil
}

// fieldRef is a plain field of a rule variable, read at its offset in the
// variables: the kind is checked once, when the guard is made, so a read
// is a load, not a walk through reflect.
type fieldRef struct {
	root string  // the variable
	off  uintptr // the field's offset in it
}

// field resolves a select chain from a rule variable (message.http.status)
// to a field of the kind wanted (an int field's kind is Int64, a list's
// Slice of strings); nil if e is anything else.
func field(e celast.Expr, want reflect.Kind) *fieldRef {
	var names []string
	for e.Kind() == celast.SelectKind {
		s := e.AsSelect()
		if s.IsTestOnly() {
			return nil
		}
		names = append([]string{s.FieldName()}, names...)
		e = s.Operand()
	}
	if e.Kind() != celast.IdentKind || len(names) == 0 {
		return nil
	}
	root := e.AsIdent()
	idx, rest, err := fieldPath(append([]string{root}, names...))
	if err != nil || len(rest) > 0 {
		return nil
	}
	t, _ := varType(root)
	var off uintptr
	for _, i := range idx {
		f := t.Field(i)
		off += f.Offset
		t = f.Type
	}
	switch k := t.Kind(); {
	case k == want && k == reflect.String, k == want && k == reflect.Bool:
	case want == reflect.Int64 && k == reflect.Int64:
	case want == reflect.Slice && k == reflect.Slice && t.Elem().Kind() == reflect.String:
	default:
		return nil
	}
	return &fieldRef{root: root, off: off}
}

// at is the field's address in v.
func (f *fieldRef) at(v *vars) unsafe.Pointer {
	var p unsafe.Pointer
	switch f.root {
	case "server":
		p = unsafe.Pointer(&v.server)
	case "session":
		p = unsafe.Pointer(&v.session)
	case "call":
		p = unsafe.Pointer(&v.call)
	case "effect":
		p = unsafe.Pointer(&v.effect)
	case "message":
		p = unsafe.Pointer(&v.message)
	case "tool":
		p = unsafe.Pointer(&v.tool)
	}
	return unsafe.Add(p, f.off)
}

func (f *fieldRef) str(v *vars) string    { return *(*string)(f.at(v)) }
func (f *fieldRef) boolean(v *vars) bool  { return *(*bool)(f.at(v)) }
func (f *fieldRef) integer(v *vars) int64 { return *(*int64)(f.at(v)) }
func (f *fieldRef) list(v *vars) []string { return *(*[]string)(f.at(v)) }
