package correlate

import (
	"errors"
	"fmt"
	"reflect"
	"strconv"
	"strings"

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
