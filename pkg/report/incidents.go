package report

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/mcpsec/sensor/pkg/audit"
	"github.com/mcpsec/sensor/pkg/posture"
)

// WriteIncidents writes what a person wants after a night: the alerts of
// the period by server and rule, the incidents (detection -> response ->
// release) with their latencies, the verdicts, and the posture.
func WriteIncidents(w io.Writer, auditDir string, since, now time.Time) error {
	h, err := posture.FromAudit(auditDir)
	if err != nil {
		return fmt.Errorf("reading the audit trail: %w", err)
	}
	_, verr := audit.Verify(auditDir)
	h.ChainVerified, h.RulesLoaded, h.Enforcing = verr == nil, true, true
	inc, err := posture.Incidents(auditDir, since)
	if err != nil {
		return err
	}
	b := &strings.Builder{}
	fmt.Fprintf(b, "Incidents since %s (%s ago)\n\n", since.Local().Format("2006-01-02 15:04"), now.Sub(since).Round(time.Minute))
	type key struct{ server, rule, sev string }
	counts := map[key]int{}
	firstAt := map[key]time.Time{}
	for _, a := range h.Alerts {
		if a.Time.Before(since) {
			continue
		}
		k := key{a.Server, a.Rule, a.Severity}
		if counts[k] == 0 {
			firstAt[k] = a.Time
		}
		counts[k]++
	}
	keys := make([]key, 0, len(counts))
	for k := range counts {
		keys = append(keys, k)
	}
	rank := map[string]int{"critical": 0, "high": 1, "medium": 2, "low": 3}
	sort.Slice(keys, func(i, j int) bool {
		if rank[keys[i].sev] != rank[keys[j].sev] {
			return rank[keys[i].sev] < rank[keys[j].sev]
		}
		return firstAt[keys[i]].Before(firstAt[keys[j]])
	})
	if len(keys) == 0 {
		b.WriteString("No alerts.\n")
	}
	for _, k := range keys {
		fmt.Fprintf(b, "  %-8s %-32s %4d× on %s (first %s)\n", strings.ToUpper(k.sev), k.rule, counts[k], k.server, firstAt[k].Local().Format("15:04:05"))
	}
	if len(inc) > 0 {
		b.WriteString("\nContained:\n")
	}
	for _, i := range inc {
		rel := "still contained"
		if !i.ReleasedAt.IsZero() {
			rel = fmt.Sprintf("released %s by %s", i.ReleasedAt.Local().Format("15:04:05"), i.ReleasedBy)
		}
		fmt.Fprintf(b, "  %s %s on %s: detected in %.1f ms, %s %.1f ms later; %s\n", i.Time.Local().Format("15:04:05"), i.Rule, i.Server,
			i.DetectMS, strings.Join(i.Done, "+"), i.RespondMS, rel)
	}
	f := posture.Compute(h, since, now.Add(time.Second))
	fmt.Fprintf(b, "\n%d threats detected, %d blocked %v; %d judged (%d false positives)", f.ThreatsDetected, f.ThreatsBlocked, f.BlockedBy, f.Verdicts, f.FalsePositives)
	if f.MTTDms != nil {
		fmt.Fprintf(b, "; mean time to detection %.1f ms", *f.MTTDms)
	}
	if f.MTTRms != nil {
		fmt.Fprintf(b, ", to response %.1f ms", *f.MTTRms)
	}
	b.WriteString(".\n")
	if verr != nil {
		fmt.Fprintf(b, "\nTHE AUDIT TRAIL DOES NOT VERIFY: %v\n", verr)
	}
	_, err = io.WriteString(w, b.String())
	return err
}
