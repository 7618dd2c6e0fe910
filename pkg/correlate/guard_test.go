package correlate

import (
	"fmt"
	"testing"
	"time"

	"github.com/mcpsec/sensor/rules"
)

// A guard is a necessary condition: on every fixture of every shipped rule
// (each rule tried on all fixtures of its kind, the others' included), a
// condition that holds has a guard that holds. And the guards do their job:
// most message rules have one, and on a tools/call request only the rules
// that could match it are run.
func TestGuards(t *testing.T) {
	rs, err := LoadFS(rules.Files, "rules")
	if err != nil {
		t.Fatal(err)
	}
	byWhen := map[string][]map[string]any{}
	for _, r := range rs.Rules {
		byWhen[r.When] = append(append(byWhen[r.When], r.fixtures.Fire...), r.fixtures.Quiet...)
	}
	guarded, message := 0, 0
	for _, r := range rs.Rules {
		if r.When == "message" {
			message++
			if r.guard != nil {
				guarded++
			}
		}
		if r.guard == nil {
			continue
		}
		for i, fx := range byWhen[r.When] {
			v, err := fixtureVars(fx)
			if err != nil {
				t.Fatal(err)
			}
			ok, err := r.eval(v)
			if err == nil && ok && !r.guard(v) {
				t.Errorf("%s: the condition holds on %s fixture %d (%v), its guard does not", r.Name, r.When, i, fx)
			}
		}
	}
	if guarded*4 < message*3 {
		t.Errorf("%d of %d message rules have a guard, want at least 3 in 4", guarded, message)
	}
	v, err := fixtureVars(map[string]any{"message": map[string]any{"direction": "in", "type": "request", "method": "tools/call"}})
	if err != nil {
		t.Fatal(err)
	}
	var run []string
	for _, r := range rs.candidates("message", "tools/call", nil) {
		if r.guard == nil || r.guard(v) {
			run = append(run, r.Name)
		}
	}
	if len(run) > 3 {
		t.Errorf("a plain tools/call request runs %d conditions (%v), want at most 3", len(run), run)
	}
	t.Logf("%d of %d message rules guarded; a tools/call request runs %v", guarded, message, run)
}

// Each form a guard reads, and what it must leave to CEL.
func TestGuardForms(t *testing.T) {
	env, err := newEnv(&globs{})
	if err != nil {
		t.Fatal(err)
	}
	v := &vars{}
	v.message = MessageVars{Direction: "in", Type: "request", Method: "tools/call", Truncated: true, SchemaErrors: []string{"x"}}
	v.server.CallsPerMin = 700
	for _, tc := range []struct {
		cond         string
		guarded, got bool
	}{
		{`message.direction == "in"`, true, true},
		{`"out" == message.direction`, true, false},
		{`message.type != "request"`, true, false},
		{`message.truncated`, true, true},
		{`!message.truncated`, true, false},
		{`message.truncated == false`, true, false},
		{`message.method in ["tools/call", "ping"]`, true, true},
		{`!(message.method in ["ping"])`, true, true},
		{`server.calls_per_min > 600`, true, true},
		{`600 < server.calls_per_min`, true, true},
		{`server.calls_per_min <= 600`, true, false},
		{`size(message.schema_errors) > 0`, true, true},
		{`message.schema_errors.size() == 0`, true, false},
		{`message.type == "request" || message.type == "notification"`, true, true},
		{`message.type == "error" || message.text.contains("x")`, false, false},
		{`message.direction == "out" && message.text.contains("x")`, true, false},
		{`!(message.direction == "in" && message.text.contains("x"))`, false, false},
		{`message.text.contains("x")`, false, false},
	} {
		a, iss := env.Compile(tc.cond)
		if iss != nil && iss.Err() != nil {
			t.Fatalf("%s: %v", tc.cond, iss.Err())
		}
		g := guardOf(a.NativeRep())
		if (g != nil) != tc.guarded {
			t.Errorf("%s: guarded %v, want %v", tc.cond, g != nil, tc.guarded)
			continue
		}
		if g != nil && g(v) != tc.got {
			t.Errorf("%s: guard says %v, want %v", tc.cond, g(v), tc.got)
		}
	}
}

// A condition that could pass the cost limit is metered and stopped there
// (an evaluation error, counted); one that cannot is not metered.
func TestCostMetering(t *testing.T) {
	src := `- rule: cheap
  when: message
  condition: message.direction == "in" && message.method == "tools/call"
  severity: low
- rule: nested
  when: message
  condition: server.argv.exists(a, server.argv.exists(b, server.argv.exists(c, a + b + c == "never")))
  severity: low
`
	rs, err := Compile([]string{"x.yaml"}, map[string][]byte{"x.yaml": []byte(src)})
	if err != nil {
		t.Fatal(err)
	}
	cheap, _ := rs.Rule("cheap")
	nested, _ := rs.Rule("nested")
	if cheap.metered || !nested.metered {
		t.Fatalf("metered: cheap %v (want false), nested %v (want true)", cheap.metered, nested.metered)
	}
	v := &vars{}
	for i := 0; i < 300; i++ {
		v.server.Argv = append(v.server.Argv, fmt.Sprint(i))
	}
	start := time.Now()
	if _, err := nested.eval(v); err == nil {
		t.Fatal("27 million iterations ran to the end: no cost limit")
	}
	t.Logf("stopped after %v", time.Since(start))
}
