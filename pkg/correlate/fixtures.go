package correlate

import (
	"fmt"
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
				vars := fixtureVars(fx)
				act := map[string]any{}
				for k, v := range vars {
					act[k] = v
				}
				val, _, err := r.prg.Eval(act)
				fired := err == nil && val.Value() == true
				if err != nil || fired != (kind == "fire") {
					fails = append(fails, FixtureFailure{Rule: r.Name, File: r.File, Line: r.Line, Kind: kind, Index: i, Err: err})
				}
			}
		}
	}
	return fails, st
}

// fixtureVars fills a fixture's variables over those of an empty event.
func fixtureVars(fx map[string]any) map[string]map[string]any {
	c := New(nil, Options{})
	s := c.server(&decode.Proc{Server: "fixture"})
	vars := c.baseVars(s, nil, nil, time.Unix(0, 0))
	vars["effect"] = effectVars(&decode.Effect{}, false, false)
	vars["message"] = messageVars(&decode.Message{})
	vars["tool"] = map[string]any{"name": "", "description": "", "hash": "", "changed": false,
		"previous_hash": "", "shadows": []string{}, "others": []string{}, "referenced": []string{},
		"referenced_servers": []string{}, "text": "", "server": ""}
	for name, v := range fx {
		m, ok := v.(map[string]any)
		if !ok {
			continue
		}
		base := vars[name]
		if base == nil {
			continue
		}
		merged := make(map[string]any, len(base)+len(m))
		for k, x := range base {
			merged[k] = x
		}
		for k, x := range m {
			sub, ok1 := x.(map[string]any)
			under, ok2 := base[k].(map[string]any)
			if ok1 && ok2 {
				deep := make(map[string]any, len(under)+len(sub))
				for kk, xx := range under {
					deep[kk] = xx
				}
				for kk, xx := range sub {
					deep[kk] = xx
				}
				x = deep
			}
			merged[k] = x
		}
		vars[name] = merged
	}
	return vars
}

// checkFixtures refuses fixtures that name variables or fields no event
// has: a typo would make a fixture test nothing.
func checkFixtures(f fixtures) error {
	base := fixtureVars(nil)
	for kind, list := range map[string][]map[string]any{"fire": f.Fire, "quiet": f.Quiet} {
		for i, fx := range list {
			for name, v := range fx {
				fields, ok := base[name]
				if !ok {
					return fmt.Errorf("%s fixture #%d: no variable %q (one of %v)", kind, i+1, name, ruleVars)
				}
				m, ok := v.(map[string]any)
				if !ok {
					return fmt.Errorf("%s fixture #%d: %s must be a map of fields", kind, i+1, name)
				}
				for k := range m {
					if _, ok := fields[k]; !ok {
						return fmt.Errorf("%s fixture #%d: %s has no field %q", kind, i+1, name, k)
					}
				}
			}
		}
	}
	return nil
}

// FireFixtures are the rule's fixtures that must make it fire.
func (r *Rule) FireFixtures() []map[string]any { return r.fixtures.Fire }
