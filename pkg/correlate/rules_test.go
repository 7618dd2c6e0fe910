package correlate

import (
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
		{"- rule: x\n  when: effect\n  condition: 'true'\n  severity: low\n  output: '%efect.path'\n", "unknown variable"},
		{"- rule: x\n  when: effect\n  condition: 'true'\n  severity: low\n  fixtures:\n    fire:\n      - {effect: {pth: /x}}\n", `no field "pth"`},
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
