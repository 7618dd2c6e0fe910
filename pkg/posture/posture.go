// Package posture computes the security posture figures (threats
// detected and blocked, the false-positive rate, mean times to detect and
// to respond, the security score) from a host's history: the alerts,
// responses, verdicts and gateway decisions of its audit trail. The same
// figures feed `sensor status`, the metrics endpoint and the MCP face's
// mcpsec://posture.
package posture

import (
	"math"
	"slices"
	"time"
)

// Alert is what the figures need of an alert.
type Alert struct {
	ID       string
	Time     time.Time // the offending event (kernel clock)
	Rule     string
	Severity string
	Server   string
	// DetectMS: offending syscall -> alert; RespondMS: alert -> the
	// freeze the kernel reported (0: none); both from kernel time.
	DetectMS  float64
	RespondMS float64
	// Done is what containment carried out; Refused: the kernel refused
	// the offending effect (an egress_denied effect).
	Done    []string
	Refused bool
}

// Verdict is an analyst's judgement of an alert.
type Verdict struct {
	AlertID string
	Time    time.Time
	True    bool // a true positive
	By      string
	Reason  string
}

// History is what happened on a host.
type History struct {
	Alerts   []Alert
	Verdicts []Verdict
	// Denials are the times the gateway refused a message.
	Denials []time.Time
	// Settings: the audit trail verified, rules loaded, containment
	// enforced (not monitor only).
	ChainVerified bool
	RulesLoaded   bool
	Enforcing     bool
}

// Figures are the posture over a period.
type Figures struct {
	From             time.Time      `json:"from"`
	To               time.Time      `json:"to"`
	ThreatsDetected  int            `json:"threats_detected"`
	BySeverity       map[string]int `json:"by_severity"`
	ThreatsBlocked   int            `json:"threats_blocked"`
	BlockedBy        map[string]int `json:"blocked_by"` // kernel_refusal, gateway_denial, freeze, kill
	Verdicts         int            `json:"verdicts"`
	FalsePositives   int            `json:"false_positives"`
	FalsePosRate     *float64       `json:"false_positive_rate"` // null until an analyst judged an alert
	MTTDms           *float64       `json:"mean_time_to_detection_ms"`
	MTTRms           *float64       `json:"mean_time_to_response_ms"`
	SecurityScore    int            `json:"security_score"`
	ComplianceStatus string         `json:"compliance_status"` // compliant, partial, non_compliant
	ScoreWhy         []string       `json:"score_deductions,omitempty"`
}

// Weights of an open threat in the score, by severity.
var weights = map[string]float64{"critical": 20, "high": 10, "medium": 3, "low": 1}

// Compute the figures of the period [from, to).
//
// The security score starts at 100 and loses:
//   - for each alert of the period that no analyst judged false: its
//     severity's weight (critical 20, high 10, medium 3, low 1), a quarter
//     of it when the threat was blocked (refused in the kernel, frozen or
//     killed); at most 60 in all;
//   - 20 when the audit trail does not verify, 20 when no rules are
//     loaded, 10 when containment only monitors;
//   - 5 when the mean time to response is over one second.
//
// It is never below 0. Compliance is "non_compliant" with a broken trail
// or no rules, "partial" when containment only monitors, else "compliant".
func Compute(h History, from, to time.Time) Figures {
	f := Figures{From: from, To: to, BySeverity: map[string]int{}, BlockedBy: map[string]int{}}
	falseIDs := map[string]bool{}
	judged := map[string]bool{}
	// the last verdict on an alert wins (an analyst may change their mind)
	vs := slices.Clone(h.Verdicts)
	slices.SortStableFunc(vs, func(a, b Verdict) int { return a.Time.Compare(b.Time) })
	for _, v := range vs {
		judged[v.AlertID] = true
		falseIDs[v.AlertID] = !v.True
	}
	var detect, respond []float64
	penalty := 0.0
	for _, a := range h.Alerts {
		if a.Time.Before(from) || !a.Time.Before(to) {
			continue
		}
		f.ThreatsDetected++
		f.BySeverity[a.Severity]++
		if judged[a.ID] {
			f.Verdicts++
			if falseIDs[a.ID] {
				f.FalsePositives++
			}
		}
		if a.DetectMS > 0 {
			detect = append(detect, a.DetectMS)
		}
		if a.RespondMS > 0 {
			respond = append(respond, a.RespondMS)
		}
		by := blockedBy(a)
		if by != "" {
			f.ThreatsBlocked++
			f.BlockedBy[by]++
		}
		if falseIDs[a.ID] {
			continue
		}
		w := weights[a.Severity]
		if by != "" {
			w /= 4
		}
		penalty += w
	}
	for _, d := range h.Denials {
		if !d.Before(from) && d.Before(to) {
			f.ThreatsDetected++
			f.ThreatsBlocked++
			f.BlockedBy["gateway_denial"]++
		}
	}
	if f.Verdicts > 0 {
		r := float64(f.FalsePositives) / float64(f.Verdicts)
		f.FalsePosRate = &r
	}
	f.MTTDms = mean(detect)
	f.MTTRms = mean(respond)
	score := 100.0
	deduct := func(n float64, why string) {
		if n > 0 {
			score -= n
			f.ScoreWhy = append(f.ScoreWhy, why)
		}
	}
	deduct(math.Min(penalty, 60), "open threats")
	if !h.ChainVerified {
		deduct(20, "the audit trail does not verify")
	}
	if !h.RulesLoaded {
		deduct(20, "no rules are loaded")
	}
	if !h.Enforcing {
		deduct(10, "containment only monitors")
	}
	if f.MTTRms != nil && *f.MTTRms > 1000 {
		deduct(5, "mean time to response over 1 s")
	}
	f.SecurityScore = int(math.Max(0, math.Round(score)))
	f.ComplianceStatus = Status(h.ChainVerified, h.RulesLoaded, h.Enforcing)
	return f
}

// Status is the compliance status of a host's settings: "non_compliant"
// with a broken audit trail or no rules, "partial" when containment only
// monitors, else "compliant".
func Status(chainVerified, rulesLoaded, enforcing bool) string {
	switch {
	case !chainVerified || !rulesLoaded:
		return "non_compliant"
	case !enforcing:
		return "partial"
	}
	return "compliant"
}

// Daily is the figures of each of the last days calendar days (UTC) up to
// now, oldest first.
func Daily(h History, days int, now time.Time) []Figures {
	end := now.UTC().Truncate(24 * time.Hour).Add(24 * time.Hour)
	out := make([]Figures, 0, days)
	for i := days; i > 0; i-- {
		to := end.Add(-time.Duration(i-1) * 24 * time.Hour)
		out = append(out, Compute(h, to.Add(-24*time.Hour), to))
	}
	return out
}

// blockedBy says what stopped an alert's threat: the kernel refused the
// effect, or containment froze or killed the server ("" if nothing).
func blockedBy(a Alert) string {
	switch {
	case a.Refused:
		return "kernel_refusal"
	case slices.Contains(a.Done, "kill"):
		return "kill"
	case slices.Contains(a.Done, "freeze"):
		return "freeze"
	}
	return ""
}

func mean(xs []float64) *float64 {
	if len(xs) == 0 {
		return nil
	}
	s := 0.0
	for _, x := range xs {
		s += x
	}
	m := s / float64(len(xs))
	return &m
}
