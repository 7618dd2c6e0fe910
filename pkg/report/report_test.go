package report

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mcpsec/sensor/pkg/audit"
)

// history writes a trail with a run, an attack answered by containment,
// a verdict, a rule reload and a release.
func history(t *testing.T) (string, time.Time) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "audit")
	l, err := audit.Open(dir, 0)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	for _, e := range []audit.Entry{
		{Kind: "config", Data: map[string]any{"command": "daemon"}},
		{Kind: "alert", Data: map[string]any{"id": "8000000000000001", "ts": now, "rule": "credential_read_then_egress", "severity": "critical",
			"response": map[string]any{"mode": "enforce", "done": []string{"freeze", "deny-egress", "snapshot"}, "snapshot": "/x.json"}}},
		{Kind: "verdict", Data: map[string]any{"alert_id": "8000000000000001", "verdict": "true", "by": "uid 0"}},
		{Kind: "rules", Data: map[string]any{"why": "SIGHUP"}},
		{Kind: "release", Data: map[string]any{"action": "release", "cgroup": "mcp-sensor/x", "by": "uid 0"}},
	} {
		if _, err := l.Append(e.Kind, e.Data); err != nil {
			t.Fatal(err)
		}
	}
	return dir, now
}

func state(dir string, now time.Time) State {
	return State{AuditDir: dir, Response: "enforce", Policy: "/etc/mcp-sensor/policy.yaml", Learn: 10 * time.Minute,
		Rules: map[string]bool{"credential_read_then_egress": true, "egress_outside_allowlist": true, "tool_description_instructions": true,
			"tool_definition_changed": true, "tool_cross_server_reference": true, "shell_spawned": true, "secret_in_tool_result": true,
			"data_flow_to_outbound": true},
		From: now.Add(-time.Hour), To: now.Add(time.Minute), Generated: now}
}

func statuses(c *Compliance) map[string]string {
	m := map[string]string{}
	for _, r := range c.Requirements {
		m[r.ID] = r.Status
	}
	return m
}

func TestEveryFrameworkLoads(t *testing.T) {
	names, err := Frameworks()
	if err != nil || len(names) != 4 {
		t.Fatalf("frameworks %v %v", names, err)
	}
	for _, n := range names {
		if _, err := LoadFramework(n); err != nil {
			t.Error(err)
		}
	}
	if _, err := LoadFramework("pci"); err == nil || !strings.Contains(err.Error(), "use gdpr, iso27001, nist-csf, soc2") {
		t.Errorf("an unknown framework: %v", err)
	}
}

// With its evidence every requirement the sensor can evidence passes; a
// requirement fails when its evidence is removed, and says how to fix it.
func TestRequirementsFollowTheirEvidence(t *testing.T) {
	dir, now := history(t)
	f, _ := LoadFramework("soc2")
	c, err := Evaluate(f, state(dir, now))
	if err != nil {
		t.Fatal(err)
	}
	s := statuses(c)
	if c.Summary["FAIL"] != 0 || s["CC7.5"] != "MANUAL" || s["CC7.4"] != "PASS" || !c.Audit.Verified {
		t.Fatalf("with all evidence: %v %+v", s, c.Summary)
	}
	// containment off: the response requirements fail, with the fix
	st := state(dir, now)
	st.Response = "monitor"
	c, _ = Evaluate(f, st)
	if s := statuses(c); s["CC6.6"] != "FAIL" || s["CC7.4"] != "FAIL" || s["CC7.3"] != "PASS" {
		t.Fatalf("monitor only: %v", s)
	}
	if !strings.Contains(strings.Join(c.Requirements[2].Fix, " "), "response: enforce") {
		t.Errorf("the fix: %v", c.Requirements[2].Fix)
	}
	// a rule disabled
	st = state(dir, now)
	st.Rules["tool_definition_changed"] = false
	c, _ = Evaluate(f, st)
	if s := statuses(c); s["CC6.8"] != "FAIL" || s["CC8.1"] != "FAIL" {
		t.Fatalf("a rule disabled: %v", s)
	}
	// the trail edited: its requirements fail and the report says so
	b, _ := os.ReadFile(filepath.Join(dir, audit.File))
	_ = os.WriteFile(filepath.Join(dir, audit.File), bytes.Replace(b, []byte(`"critical"`), []byte(`"low"`), 1), 0o600)
	c, _ = Evaluate(f, state(dir, now))
	if s := statuses(c); s["CC4.1"] != "FAIL" || c.Audit.Verified {
		t.Fatalf("a broken trail: %v", s)
	}
	var html, mdown bytes.Buffer
	if err := c.WriteHTML(&html); err != nil || !strings.Contains(html.String(), "DOES NOT VERIFY") || !strings.Contains(html.String(), `class="FAIL"`) {
		t.Fatalf("HTML: %v\n%.500s", err, html.String())
	}
	if err := c.WriteMarkdown(&mdown); err != nil || !strings.Contains(mdown.String(), "| **CC4.1**") {
		t.Fatalf("Markdown: %v\n%s", err, mdown.String())
	}
}

// No alert in the period: there was nothing to judge, but nothing was
// contained either.
func TestQuietPeriod(t *testing.T) {
	dir, now := history(t)
	st := state(dir, now)
	st.From, st.To = now.Add(time.Hour), now.Add(2*time.Hour)
	f, _ := LoadFramework("nist-csf")
	c, _ := Evaluate(f, st)
	s := statuses(c)
	if s["DE.AE-02"] != "PASS" || s["RS.MI-01"] != "FAIL" || s["PR.PS-04"] != "FAIL" {
		t.Fatalf("a quiet period: %v", s)
	}
}

func TestIncidentSummary(t *testing.T) {
	dir, now := history(t)
	var b bytes.Buffer
	if err := WriteIncidents(&b, dir, now.Add(-24*time.Hour), now); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{"CRITICAL", "credential_read_then_egress", "1 threats detected, 1 blocked", "1 judged"} {
		if !strings.Contains(out, want) {
			t.Errorf("summary lacks %q:\n%s", want, out)
		}
	}
}
