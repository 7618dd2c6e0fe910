package metrics

import (
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/mcpsec/sensor/pkg/posture"
)

// The endpoint carries the figures the daemon computes, and none it has
// not (no false-positive ratio before a verdict).
func TestPostureMetrics(t *testing.T) {
	m := New(func() Snapshot { return Snapshot{} })
	mttd, mttr := 2.5, 4.0
	m.AddPosture(func() (posture.Figures, error) {
		return posture.Figures{SecurityScore: 84, ThreatsDetected: 5, BlockedBy: map[string]int{"freeze": 2, "gateway_denial": 1},
			MTTDms: &mttd, MTTRms: &mttr, ComplianceStatus: "compliant"}, nil
	})
	want := `
# HELP mcpsec_posture_security_score The security score over the last 24 h (0-100; formula in pkg/posture).
# TYPE mcpsec_posture_security_score gauge
mcpsec_posture_security_score 84
# HELP mcpsec_posture_threats_blocked Threats blocked over the last 24 h, by what blocked them.
# TYPE mcpsec_posture_threats_blocked gauge
mcpsec_posture_threats_blocked{by="freeze"} 2
mcpsec_posture_threats_blocked{by="gateway_denial"} 1
mcpsec_posture_threats_blocked{by="kernel_refusal"} 0
mcpsec_posture_threats_blocked{by="kill"} 0
# HELP mcpsec_posture_mean_time_to_response_seconds Mean alert -> containment done, last 24 h.
# TYPE mcpsec_posture_mean_time_to_response_seconds gauge
mcpsec_posture_mean_time_to_response_seconds 0.004
`
	if err := testutil.GatherAndCompare(m.Registry, strings.NewReader(want), "mcpsec_posture_security_score",
		"mcpsec_posture_threats_blocked", "mcpsec_posture_mean_time_to_response_seconds"); err != nil {
		t.Fatal(err)
	}
	if n, err := testutil.GatherAndCount(m.Registry, "mcpsec_posture_false_positive_ratio"); err != nil || n != 0 {
		t.Fatalf("a false-positive ratio before any verdict: %d %v", n, err)
	}
}
