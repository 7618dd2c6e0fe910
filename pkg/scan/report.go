package scan

import (
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/mcpsec/sensor/pkg/inspect"
)

// Live is what a server did when the scan started it under the sensor.
type Live struct {
	Server   string   `json:"server"`
	Client   string   `json:"client"`
	Started  bool     `json:"started"`
	Error    string   `json:"error,omitempty"`
	Identity string   `json:"identity,omitempty"`
	Tools    []string `json:"tools,omitempty"`
	Resource []string `json:"resources,omitempty"`
	Prompts  []string `json:"prompts,omitempty"`
	// What it did before it was asked anything but the lists.
	Files     []string `json:"files_opened,omitempty"`
	Processes []string `json:"processes_run,omitempty"`
	Connects  []string `json:"connections_tried,omitempty"` // each refused in the sandbox
	Alerts    []string `json:"alerts,omitempty"`
	Seconds   float64  `json:"seconds"`
}

// Report is a scan's result.
type Report struct {
	Time       time.Time `json:"time"`
	Advisories string    `json:"advisories"` // source and date of the list
	Files      []Source  `json:"files"`
	Entries    []Entry   `json:"servers"`
	Live       []Live    `json:"live,omitempty"`
	Findings   []Finding `json:"findings"`
	// Errors are files that could not be read.
	Errors []string `json:"errors,omitempty"`
}

var severities = map[string]int{"info": 0, "low": 1, "medium": 2, "high": 3, "critical": 4}

// SeverityRank orders severities (unknown: -1).
func SeverityRank(s string) int {
	if r, ok := severities[s]; ok {
		return r
	}
	return -1
}

// Finish masks the credentials the entries hold, sorts the findings,
// worst first, and drops repeats: a finding is reported once per file,
// server, rule and title.
func (r *Report) Finish() {
	for i, e := range r.Entries {
		r.Entries[i] = e.Redacted()
	}
	seen := map[string]bool{}
	out := r.Findings[:0]
	for _, f := range r.Findings {
		k := f.Rule + "\x00" + f.File + "\x00" + f.Server + "\x00" + f.Title
		if seen[k] {
			continue
		}
		seen[k] = true
		out = append(out, f)
	}
	sort.SliceStable(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if SeverityRank(a.Severity) != SeverityRank(b.Severity) {
			return SeverityRank(a.Severity) > SeverityRank(b.Severity)
		}
		if a.Server != b.Server {
			return a.Server < b.Server
		}
		return a.Rule < b.Rule
	})
	r.Findings = out
	if r.Findings == nil {
		r.Findings = []Finding{}
	}
}

// Worst is the highest severity found ("" with no findings).
func (r *Report) Worst() string {
	w := ""
	for _, f := range r.Findings {
		if SeverityRank(f.Severity) > SeverityRank(w) {
			w = f.Severity
		}
	}
	return w
}

// WriteJSON writes the report as one JSON document.
func (r *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// WriteText writes the report for a person.
func (r *Report) WriteText(w io.Writer) error {
	b := &strings.Builder{}
	fmt.Fprintf(b, "Scanned %d configuration file(s), %d server(s); advisories: %s\n", len(r.Files), len(r.Entries), r.Advisories)
	for _, f := range r.Files {
		fmt.Fprintf(b, "  %-14s %s\n", f.Client, f.Path)
	}
	for _, e := range r.Errors {
		fmt.Fprintf(b, "  ! %s\n", e)
	}
	if len(r.Live) > 0 {
		b.WriteString("\nStarted in the sandbox (own cgroup, egress refused in the kernel, a throw-away home):\n")
		for _, l := range r.Live {
			if !l.Started {
				fmt.Fprintf(b, "  %s (%s): not started: %s\n", l.Server, l.Client, l.Error)
				continue
			}
			fmt.Fprintf(b, "  %s (%s) %s: %d tools, %d resources, %d prompts in %.1fs\n", l.Server, l.Client, l.Identity,
				len(l.Tools), len(l.Resource), len(l.Prompts), l.Seconds)
			list := func(what string, xs []string) {
				if len(xs) == 0 {
					return
				}
				shown := xs
				if len(shown) > 8 {
					shown = shown[:8]
				}
				fmt.Fprintf(b, "      %s: %s", what, strings.Join(shown, ", "))
				if len(xs) > len(shown) {
					fmt.Fprintf(b, " (+%d more)", len(xs)-len(shown))
				}
				b.WriteByte('\n')
			}
			list("opened", l.Files)
			list("ran", l.Processes)
			list("tried to connect (refused)", l.Connects)
			list("alerts", l.Alerts)
		}
	}
	if len(r.Findings) == 0 {
		b.WriteString("\nNo findings.\n")
	} else {
		counts := map[string]int{}
		for _, f := range r.Findings {
			counts[f.Severity]++
		}
		fmt.Fprintf(b, "\n%d finding(s): %d critical, %d high, %d medium, %d low\n", len(r.Findings),
			counts["critical"], counts["high"], counts["medium"], counts["low"])
		for _, f := range r.Findings {
			loc := f.File
			if f.Line > 0 {
				loc += fmt.Sprintf(":%d", f.Line)
			}
			fmt.Fprintf(b, "\n%-8s %s [%s %s]\n         %s (%s)\n         evidence: %s\n", strings.ToUpper(f.Severity), f.Title,
				RuleID(f.Rule), f.Rule, loc, f.Client, clean(f.Evidence))
			if f.Fix != "" {
				fmt.Fprintf(b, "         fix: %s\n", f.Fix)
			}
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// clean escapes what a terminal would act on or hide (control and
// invisible characters from a server's text).
func clean(s string) string { return inspect.Escape(s, 0) }
