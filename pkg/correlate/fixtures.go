package correlate

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/mcpsec/sensor/pkg/decode"
)

// FixtureFailure is a fixture whose outcome was not the one its rule file
// promised.
type FixtureFailure struct {
	Rule  string
	File  string
	Line  int
	Kind  string // "fire" or "quiet"
	Index int
	Err   error // evaluation error, if any
}

func (f FixtureFailure) String() string {
	what := "did not fire"
	if f.Kind == "quiet" {
		what = "fired"
	}
	if f.Err != nil {
		what = "failed: " + f.Err.Error()
	}
	return fmt.Sprintf("%s:%d: rule %s: %s fixture #%d %s", f.File, f.Line, f.Rule, f.Kind, f.Index+1, what)
}

// FixtureStats sums a fixture run.
type FixtureStats struct {
	Rules, Fire, Quiet, Untested int
}

// Test runs every rule's fixtures: each `fire` fixture must make the rule
// fire, each `quiet` one must not. A fixture gives the variables of one
// event (server, session, call, effect, message, tool); what it leaves out
// takes the value an event without it would have.
func (rs *RuleSet) Test() ([]FixtureFailure, FixtureStats) {
	var fails []FixtureFailure
	st := FixtureStats{Rules: len(rs.Rules)}
	for _, r := range rs.Rules {
		if len(r.fixtures.Fire) == 0 {
			st.Untested++
		}
		for kind, list := range map[string][]map[string]any{"fire": r.fixtures.Fire, "quiet": r.fixtures.Quiet} {
			for i, fx := range list {
				if kind == "fire" {
					st.Fire++
				} else {
					st.Quiet++
				}
				v, err := fixtureVars(fx)
				fired := false
				if err == nil {
					fired, err = r.matches(v)
				}
				if err != nil || fired != (kind == "fire") {
					fails = append(fails, FixtureFailure{Rule: r.Name, File: r.File, Line: r.Line, Kind: kind, Index: i, Err: err})
				}
			}
		}
	}
	return fails, st
}

// fixtureVars fills a fixture's variables over those of an empty event;
// a variable or field no event has is an error (a typo would make the
// fixture test nothing).
func fixtureVars(fx map[string]any) (*vars, error) {
	c := New(nil, Options{})
	s := c.server(&decode.Proc{Server: "fixture"})
	v := &vars{}
	c.base(v, s, nil, nil, time.Unix(0, 0))
	for _, name := range sortedKeys(fx) {
		m, ok := fx[name].(map[string]any)
		if !ok {
			if _, known := varType(name); !known {
				_, _, err := fieldPath([]string{name})
				return nil, err
			}
			return nil, fmt.Errorf("%s must be a map of fields", name)
		}
		obj, ok := v.ResolveName(name)
		if !ok {
			_, _, err := fieldPath([]string{name})
			return nil, err
		}
		for k, x := range m {
			if sub, ok := x.(map[string]any); ok {
				for kk := range sub {
					if _, _, err := fieldPath([]string{name, k, kk}); err != nil {
						return nil, err
					}
				}
			} else if _, _, err := fieldPath([]string{name, k}); err != nil {
				return nil, err
			}
		}
		b, err := json.Marshal(m)
		if err != nil {
			return nil, err
		}
		if err := json.Unmarshal(b, obj); err != nil {
			var te *json.UnmarshalTypeError
			if errors.As(err, &te) {
				return nil, fmt.Errorf("%s.%s: a %s, not a %s", name, te.Field, celTypeName(te.Type), te.Value)
			}
			return nil, fmt.Errorf("%s: %v", name, strings.TrimPrefix(err.Error(), "json: "))
		}
	}
	// what an event derives from its arguments, unless the fixture says
	if cm, _ := fx["call"].(map[string]any); cm["languages"] == nil {
		v.call.Languages = nonNil(languages(v.call.ArgStrings))
	}
	if mm, _ := fx["message"].(map[string]any); mm["languages"] == nil {
		v.message.Languages = nonNil(languages(v.message.ArgStrings))
	}
	return v, nil
}

// checkFixtures refuses fixtures that name variables or fields no event
// has, or give a field a value of the wrong type.
func checkFixtures(f fixtures) error {
	for kind, list := range map[string][]map[string]any{"fire": f.Fire, "quiet": f.Quiet} {
		for i, fx := range list {
			if _, err := fixtureVars(fx); err != nil {
				return fmt.Errorf("%s fixture #%d: %v", kind, i+1, err)
			}
		}
	}
	return nil
}

// FireFixtures are the rule's fixtures that must make it fire.
func (r *Rule) FireFixtures() []map[string]any { return r.fixtures.Fire }
