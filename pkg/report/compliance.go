// Package report writes the reports people read after the fact: the
// compliance report of a framework (each requirement PASS, FAIL or MANUAL
// with its evidence, from the audit trail, the configuration and the
// rules) and the incident summary.
package report

import (
	"encoding/json"
	"fmt"
	"io/fs"
	"slices"
	"sort"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/mcpsec/sensor/compliance"
	"github.com/mcpsec/sensor/pkg/audit"
)

// Framework is a framework file.
type Framework struct {
	Name         string        `yaml:"framework"`
	Title        string        `yaml:"title"`
	Scope        string        `yaml:"scope"`
	Requirements []Requirement `yaml:"requirements"`
}

// Requirement is a requirement and the evidence that satisfies it.
type Requirement struct {
	ID       string  `yaml:"id"`
	Title    string  `yaml:"title"`
	Evidence []Check `yaml:"evidence"`
}

// Check is one piece of evidence a requirement asks for.
type Check struct {
	Check    string   `yaml:"check"`
	Rules    []string `yaml:"rules"`
	Key      string   `yaml:"key"`
	Kind     string   `yaml:"kind"`
	Why      string   `yaml:"why"`
	Fix      string   `yaml:"fix"`
	Optional bool     `yaml:"optional"`
}

// Frameworks lists the shipped frameworks by name.
func Frameworks() ([]string, error) {
	names, err := fs.Glob(compliance.Frameworks, "*.yaml")
	for i, n := range names {
		names[i] = strings.TrimSuffix(n, ".yaml")
	}
	return names, err
}

// LoadFramework reads a shipped framework.
func LoadFramework(name string) (*Framework, error) {
	b, err := compliance.Frameworks.ReadFile(name + ".yaml")
	if err != nil {
		names, _ := Frameworks()
		return nil, fmt.Errorf("no framework %q: use %s", name, strings.Join(names, ", "))
	}
	var f Framework
	if err := yaml.Unmarshal(b, &f); err != nil {
		return nil, fmt.Errorf("compliance/%s.yaml: %v", name, err)
	}
	for _, r := range f.Requirements {
		for _, c := range r.Evidence {
			if _, ok := checks[c.Check]; !ok {
				return nil, fmt.Errorf("compliance/%s.yaml: %s: no check %q", name, r.ID, c.Check)
			}
		}
	}
	return &f, nil
}

// State is what the evidence is read from.
type State struct {
	AuditDir string
	// Settings of the daemon (its configuration, effective).
	Response  string // enforce or monitor
	Policy    string
	Learn     time.Duration
	RulesDir  string
	Rules     map[string]bool // rule -> enabled
	From, To  time.Time
	Generated time.Time
}

// Result is a requirement judged.
type Result struct {
	ID       string   `json:"id"`
	Title    string   `json:"title"`
	Status   string   `json:"status"` // PASS, FAIL, MANUAL
	Evidence []string `json:"evidence"`
	Fix      []string `json:"fix,omitempty"`
}

// Compliance is a compliance report.
type Compliance struct {
	Framework string    `json:"framework"`
	Title     string    `json:"title"`
	Scope     string    `json:"scope"`
	From      time.Time `json:"from"`
	To        time.Time `json:"to"`
	Generated time.Time `json:"generated"`
	Audit     struct {
		Verified bool   `json:"verified"`
		Records  uint64 `json:"records"`
		Problem  string `json:"problem,omitempty"`
		First    string `json:"first_record,omitempty"`
		Last     string `json:"last_record,omitempty"`
	} `json:"audit_trail"`
	Summary      map[string]int `json:"summary"`
	Requirements []Result       `json:"requirements"`
}

// facts are what the checks read, gathered once.
type facts struct {
	st       State
	chainErr error
	records  uint64
	kinds    map[string]int // records of each kind in the period
	verdicts int
	critical []string // critical alerts of the period without a response carried out
	frozen   int      // responses that froze or killed
	snaps    int
}

// Evaluate judges a framework's requirements on a host's state.
func Evaluate(f *Framework, st State) (*Compliance, error) {
	fa := &facts{st: st, kinds: map[string]int{}}
	fa.records, fa.chainErr = audit.Verify(st.AuditDir)
	c := &Compliance{Framework: f.Name, Title: f.Title, Scope: f.Scope, From: st.From, To: st.To, Generated: st.Generated, Summary: map[string]int{}}
	err := audit.Walk(st.AuditDir, func(r *audit.Record) error {
		if c.Audit.First == "" {
			c.Audit.First = r.Time.Format(time.RFC3339)
		}
		c.Audit.Last = r.Time.Format(time.RFC3339)
		if r.Time.Before(st.From) || r.Time.After(st.To) {
			return nil
		}
		fa.kinds[r.Kind]++
		switch r.Kind {
		case "verdict":
			fa.verdicts++
		case "contain":
			fa.frozen++
		case "alert":
			var a struct {
				ID       string `json:"id"`
				Severity string `json:"severity"`
				Response *struct {
					Mode     string   `json:"mode"`
					Done     []string `json:"done"`
					Snapshot string   `json:"snapshot"`
				} `json:"response"`
			}
			if json.Unmarshal(r.Data, &a) != nil {
				return nil
			}
			answered := a.Response != nil && a.Response.Mode == "enforce" && len(a.Response.Done) > 0
			if a.Severity == "critical" && !answered {
				fa.critical = append(fa.critical, a.ID)
			}
			if answered && (slices.Contains(a.Response.Done, "freeze") || slices.Contains(a.Response.Done, "kill")) {
				fa.frozen++
			}
			if a.Response != nil && a.Response.Snapshot != "" {
				fa.snaps++
			}
		}
		return nil
	})
	if err != nil && fa.chainErr == nil {
		fa.chainErr = err
	}
	c.Audit.Verified, c.Audit.Records = fa.chainErr == nil, fa.records
	if fa.chainErr != nil {
		c.Audit.Problem = fa.chainErr.Error()
	}
	for _, r := range f.Requirements {
		res := Result{ID: r.ID, Title: r.Title, Status: "PASS"}
		manual := false
		for _, ch := range r.Evidence {
			ok, ev, fix := checks[ch.Check](fa, ch)
			switch {
			case ch.Check == "manual":
				manual = true
				res.Evidence = append(res.Evidence, ev)
			case ok:
				res.Evidence = append(res.Evidence, ev)
			case ch.Optional:
				res.Evidence = append(res.Evidence, ev)
			default:
				res.Status = "FAIL"
				res.Evidence = append(res.Evidence, ev)
				if ch.Fix != "" {
					fix = ch.Fix
				}
				res.Fix = append(res.Fix, fix)
			}
		}
		if manual && res.Status == "PASS" {
			res.Status = "MANUAL"
		}
		c.Summary[res.Status]++
		c.Requirements = append(c.Requirements, res)
	}
	return c, nil
}

// checks are the kinds of evidence: each says whether it holds, what it
// saw, and what would make it hold.
var checks = map[string]func(fa *facts, c Check) (ok bool, evidence, fix string){
	"audit_chain": func(fa *facts, _ Check) (bool, string, string) {
		if fa.chainErr != nil {
			return false, "the audit trail does not verify: " + fa.chainErr.Error(),
				"investigate the edit or cut the verification names (sensor audit verify); keep the trail on storage the sensor alone writes"
		}
		return true, fmt.Sprintf("the audit trail's hash chain verifies: %d records", fa.records), ""
	},
	"ran_in_period": func(fa *facts, _ Check) (bool, string, string) {
		if n := fa.kinds["config"]; n > 0 {
			return true, fmt.Sprintf("the sensor ran in the period: %d start(s) recorded with their configuration", n), ""
		}
		return false, "no start of the sensor is recorded in the period", "run the daemon (systemctl enable --now mcp-sensor)"
	},
	"enforcing": func(fa *facts, _ Check) (bool, string, string) {
		if fa.st.Response == "enforce" {
			return true, "containment is enforced (response: enforce)", ""
		}
		return false, fmt.Sprintf("containment only %s (response: %s)", map[string]string{"monitor": "monitors", "off": "is off"}[fa.st.Response], fa.st.Response),
			"set `response: enforce` or `profile: enterprise`"
	},
	"learning": func(fa *facts, _ Check) (bool, string, string) {
		if fa.st.Learn > 0 {
			return true, fmt.Sprintf("each server's behaviour is learned (learn: %s) and departures from it are alerts", fa.st.Learn), ""
		}
		return false, "baselines are off (learn: 0)", "set `learn:` to a duration, e.g. 10m"
	},
	"rules_enabled": func(fa *facts, c Check) (bool, string, string) {
		var missing []string
		for _, r := range c.Rules {
			if !fa.st.Rules[r] {
				missing = append(missing, r)
			}
		}
		if len(missing) > 0 {
			return false, "rules not enabled: " + strings.Join(missing, ", "), "enable them (an override with `enabled: true` in the site's rules, or remove the one that disables them)"
		}
		return true, "rules enabled: " + strings.Join(c.Rules, ", "), ""
	},
	"config_set": func(fa *facts, c Check) (bool, string, string) {
		v := map[string]string{"policy": fa.st.Policy}[c.Key]
		if v == "" {
			return false, fmt.Sprintf("`%s` is not set", c.Key), fmt.Sprintf("set `%s:`", c.Key)
		}
		return true, fmt.Sprintf("`%s` is %s", c.Key, v), ""
	},
	"records_in_period": func(fa *facts, c Check) (bool, string, string) {
		if n := fa.kinds[c.Kind]; n > 0 {
			return true, fmt.Sprintf("%d %q record(s) in the audit trail in the period", n, c.Kind), ""
		}
		return false, fmt.Sprintf("no %q record in the audit trail in the period", c.Kind), "the evidence appears when the sensor does this; nothing to configure"
	},
	"verdicts_in_period": func(fa *facts, _ Check) (bool, string, string) {
		if fa.verdicts > 0 {
			return true, fmt.Sprintf("%d alert(s) judged by an analyst in the period", fa.verdicts), ""
		}
		if fa.kinds["alert"] == 0 {
			return true, "no alert in the period to judge", ""
		}
		return false, fmt.Sprintf("%d alert(s) in the period, none judged", fa.kinds["alert"]), "judge them: sensor alerts verdict ID true|false --reason TEXT"
	},
	"critical_answered": func(fa *facts, _ Check) (bool, string, string) {
		if len(fa.critical) > 0 {
			return false, fmt.Sprintf("%d critical alert(s) not answered by containment: %s", len(fa.critical), strings.Join(first(fa.critical, 5), ", ")),
				"enforce containment (response: enforce) so critical alerts freeze the server"
		}
		return true, "every critical alert of the period was answered by containment", ""
	},
	"contained_in_period": func(fa *facts, _ Check) (bool, string, string) {
		if fa.frozen > 0 {
			return true, fmt.Sprintf("containment exercised: %d server(s) frozen, killed or contained in the period", fa.frozen), ""
		}
		return false, "containment was not exercised in the period", "contain a test server (sensor contain --pid N, then sensor release) to show the response works"
	},
	"snapshots_in_period": func(fa *facts, _ Check) (bool, string, string) {
		if fa.snaps > 0 {
			return true, fmt.Sprintf("%d forensic snapshot(s) taken with containment", fa.snaps), ""
		}
		return false, "no forensic snapshot in the period", "enforce containment: critical alerts snapshot the server's last events"
	},
	"manual": func(_ *facts, c Check) (bool, string, string) {
		return false, "a person must judge this: " + c.Why, ""
	},
}

func first(xs []string, n int) []string {
	out := slices.Clone(xs)
	sort.Strings(out)
	if len(out) > n {
		return append(out[:n], "…")
	}
	return out
}
