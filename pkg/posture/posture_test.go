package posture

import (
	"math"
	"path/filepath"
	"testing"
	"time"

	"github.com/mcpsec/sensor/pkg/audit"
)

var t0 = time.Date(2026, 11, 30, 10, 0, 0, 0, time.UTC)

func healthy() History { return History{ChainVerified: true, RulesLoaded: true, Enforcing: true} }

func TestScoreOfAQuietWellRunHost(t *testing.T) {
	f := Compute(healthy(), t0, t0.Add(time.Hour))
	if f.SecurityScore != 100 || f.ComplianceStatus != "compliant" || f.FalsePosRate != nil || f.MTTDms != nil {
		t.Fatalf("quiet host: %+v", f)
	}
}

func TestScoreDeductions(t *testing.T) {
	h := healthy()
	h.Alerts = []Alert{
		{ID: "a", Time: t0, Severity: "critical", DetectMS: 2, RespondMS: 4, Done: []string{"freeze", "deny-egress"}}, // 20/4 = 5
		{ID: "b", Time: t0.Add(time.Minute), Severity: "high", DetectMS: 4},                                           // 10
		{ID: "c", Time: t0.Add(2 * time.Minute), Severity: "medium", Refused: true},                                   // 3/4
		{ID: "d", Time: t0.Add(3 * time.Minute), Severity: "high"},                                                    // judged false: 0
		{ID: "e", Time: t0.Add(-time.Hour), Severity: "critical"},                                                     // before the period
	}
	h.Verdicts = []Verdict{{AlertID: "d", True: false, Time: t0.Add(5 * time.Minute)}, {AlertID: "a", True: true, Time: t0.Add(5 * time.Minute)}}
	h.Denials = []time.Time{t0.Add(10 * time.Minute)}
	f := Compute(h, t0, t0.Add(time.Hour))
	if f.ThreatsDetected != 5 || f.ThreatsBlocked != 3 {
		t.Fatalf("detected %d blocked %d, want 5 and 3", f.ThreatsDetected, f.ThreatsBlocked)
	}
	if f.BlockedBy["freeze"] != 1 || f.BlockedBy["kernel_refusal"] != 1 || f.BlockedBy["gateway_denial"] != 1 {
		t.Fatalf("blocked by %v", f.BlockedBy)
	}
	if f.Verdicts != 2 || f.FalsePositives != 1 || f.FalsePosRate == nil || *f.FalsePosRate != 0.5 {
		t.Fatalf("verdicts %d, false %d, rate %v", f.Verdicts, f.FalsePositives, f.FalsePosRate)
	}
	if *f.MTTDms != 3 || *f.MTTRms != 4 {
		t.Fatalf("MTTD %v MTTR %v, want 3 and 4", *f.MTTDms, *f.MTTRms)
	}
	// 100 - (5 + 10 + 0.75) = 84.25
	if f.SecurityScore != 84 {
		t.Fatalf("score %d (%v), want 84", f.SecurityScore, f.ScoreWhy)
	}
	// the analyst changes their mind on d: it counts again
	h.Verdicts = append(h.Verdicts, Verdict{AlertID: "d", True: true, Time: t0.Add(20 * time.Minute)})
	if g := Compute(h, t0, t0.Add(time.Hour)); g.SecurityScore != 74 || g.FalsePositives != 0 {
		t.Fatalf("after the second verdict: score %d, false %d; want 74, 0", g.SecurityScore, g.FalsePositives)
	}
}

func TestScoreFloorsAndSettings(t *testing.T) {
	h := History{} // trail broken, no rules, monitor only
	for i := range 10 {
		h.Alerts = append(h.Alerts, Alert{ID: string(rune('a' + i)), Time: t0, Severity: "critical", RespondMS: 1500})
	}
	f := Compute(h, t0, t0.Add(time.Hour))
	// 100 - 60 (capped) - 20 - 20 - 10 - 5 < 0
	if f.SecurityScore != 0 || f.ComplianceStatus != "non_compliant" || len(f.ScoreWhy) != 5 {
		t.Fatalf("%d %s %v", f.SecurityScore, f.ComplianceStatus, f.ScoreWhy)
	}
	h = healthy()
	h.Enforcing = false
	if f := Compute(h, t0, t0.Add(time.Hour)); f.SecurityScore != 90 || f.ComplianceStatus != "partial" {
		t.Fatalf("monitor only: %d %s", f.SecurityScore, f.ComplianceStatus)
	}
}

func TestDaily(t *testing.T) {
	h := healthy()
	h.Alerts = []Alert{{ID: "x", Time: t0.Add(-24 * time.Hour), Severity: "high"}, {ID: "y", Time: t0, Severity: "low"}}
	days := Daily(h, 3, t0)
	if len(days) != 3 || days[0].ThreatsDetected != 0 || days[1].ThreatsDetected != 1 || days[2].ThreatsDetected != 1 {
		t.Fatalf("days: %d %d %d", days[0].ThreatsDetected, days[1].ThreatsDetected, days[2].ThreatsDetected)
	}
	if days[1].SecurityScore != 90 || days[2].SecurityScore != 99 {
		t.Fatalf("scores %d %d", days[1].SecurityScore, days[2].SecurityScore)
	}
}

// The history read back from a real trail gives the alert's own latencies.
func TestFromAudit(t *testing.T) {
	dir := t.TempDir()
	l, err := audit.Open(filepath.Join(dir, "audit"), 0)
	if err != nil {
		t.Fatal(err)
	}
	alert := map[string]any{"kind": "alert", "id": "8000000000000001", "ts": t0, "rule": "r", "severity": "critical",
		"effects":  []any{map[string]any{"kind": "effect", "type": "egress_denied"}},
		"response": map[string]any{"done": []string{"freeze"}, "latency_ms": 3.5, "detect_ms": 1.25}}
	if _, err := l.Append("alert", alert); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Append("verdict", VerdictRecord{AlertID: "8000000000000001", Verdict: "false", By: "uid 0"}); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Append("decision", []map[string]any{{"verdict": "denied", "ts": t0}, {"verdict": "allowed", "ts": t0}}); err != nil {
		t.Fatal(err)
	}
	h, err := FromAudit(filepath.Join(dir, "audit"))
	if err != nil {
		t.Fatal(err)
	}
	if len(h.Alerts) != 1 || !h.Alerts[0].Refused || h.Alerts[0].RespondMS != 2.25 || h.Alerts[0].DetectMS != 1.25 {
		t.Fatalf("alerts %+v", h.Alerts)
	}
	if len(h.Verdicts) != 1 || h.Verdicts[0].True || len(h.Denials) != 1 {
		t.Fatalf("verdicts %+v denials %v", h.Verdicts, h.Denials)
	}
	f := Compute(h, t0, t0.Add(time.Second))
	if math.Abs(*f.MTTRms-2.25) > 1e-9 || *f.MTTDms != 1.25 || *f.FalsePosRate != 1 {
		t.Fatalf("%+v", f)
	}
}
