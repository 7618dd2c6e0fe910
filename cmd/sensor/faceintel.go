package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/mcpsec/sensor/pkg/audit"
	"github.com/mcpsec/sensor/pkg/contain"
	"github.com/mcpsec/sensor/pkg/contain/harden"
	"github.com/mcpsec/sensor/pkg/control"
	"github.com/mcpsec/sensor/pkg/correlate"
	"github.com/mcpsec/sensor/pkg/gateway"
	"github.com/mcpsec/sensor/pkg/posture"
	"github.com/mcpsec/sensor/pkg/scan"
)

// ServerArgs name a server: its printable name, the name without its
// version, or its identity key.
type ServerArgs struct {
	Server string `json:"server"`
	Write  bool   `json:"write,omitempty"` // harden: write the files
	Dir    string `json:"dir,omitempty"`   // harden: where (default /etc/mcp-sensor/harden/NAME)
}

func serverArgs(req control.Request) (ServerArgs, error) {
	var a ServerArgs
	if err := json.Unmarshal(req.Args, &a); err != nil || strings.TrimSpace(a.Server) == "" {
		return a, errors.New("name the server (its name as `sensor servers` shows it, with or without the version, or its key)")
	}
	return a, nil
}

// matches: a server info is the one named s.
func matches(si correlate.ServerInfo, s string) bool {
	p := correlate.Profile{Server: si.Identity.Key(), Name: si.Name}
	if p.Is(s) || si.ID == s {
		return true
	}
	return si.Identity.Name == s
}

// Analysis is what "analyze" answers.
type Analysis struct {
	Server     string                          `json:"server"`
	Key        string                          `json:"key,omitempty"`
	Running    []correlate.ServerInfo          `json:"running"`
	Tools      map[string]correlate.ToolRecord `json:"pinned_tools,omitempty"`
	Baseline   []*correlate.Profile            `json:"baseline,omitempty"`
	Alerts     map[string]int                  `json:"alerts_by_rule"`
	Recent     []Threat                        `json:"recent_alerts,omitempty"`
	Advisories []scan.Advisory                 `json:"advisories,omitempty"`
	Findings   []scan.Finding                  `json:"config_findings,omitempty"`
}

func (f *face) analyze(req control.Request, _ uint32) (any, error) {
	args, err := serverArgs(req)
	if err != nil {
		return nil, err
	}
	an := Analysis{Server: args.Server, Alerts: map[string]int{}, Running: []correlate.ServerInfo{}}
	if h := f.current(); h != nil {
		for _, si := range h.Servers() {
			if matches(si, args.Server) {
				an.Running = append(an.Running, si)
				an.Key = si.Identity.Key()
			}
		}
	}
	st := f.p.Pins()
	for k, p := range st.Export(args.Server) {
		an.Baseline = append(an.Baseline, p)
		if an.Key == "" {
			an.Key = strings.SplitN(k, "\x00", 2)[0]
		}
	}
	sort.Slice(an.Baseline, func(i, j int) bool { return an.Baseline[i].Tool < an.Baseline[j].Tool })
	if an.Key == "" {
		an.Key = args.Server
	}
	an.Tools = st.Tools()[an.Key]
	alerts, _, err := f.alertsFrom(func(a *correlate.Alert) bool { return serverIs(a, args.Server) })
	if err != nil {
		return nil, err
	}
	for _, a := range alerts {
		an.Alerts[a.Rule]++
	}
	for _, a := range alerts[max(0, len(alerts)-10):] {
		an.Recent = append(an.Recent, Threat{Class: a.Class(), Techniques: a.Techniques(), Alert: a})
	}
	adv, _ := scan.ShippedAdvisories()
	for _, si := range an.Running {
		eco := map[string]string{"npm": "npm", "pypi": "pypi"}[si.Identity.Kind]
		if eco != "" {
			an.Advisories = append(an.Advisories, adv.Match(eco, si.Identity.Name, si.Identity.Version)...)
		}
	}
	// what the host's client configurations say about it
	for _, home := range hostHomes() {
		for _, src := range scan.Known(home, "") {
			es, _ := scan.Parse(src)
			for _, e := range es {
				p, _ := scan.PackageOf(e)
				if e.Name == args.Server || (p.Name != "" && (p.Name == args.Server || strings.HasSuffix(an.Key, ":"+p.Name))) {
					an.Findings = append(an.Findings, scan.Static(e, adv)...)
				}
			}
		}
	}
	if len(an.Running) == 0 && len(an.Baseline) == 0 && len(an.Tools) == 0 && len(alerts) == 0 && len(an.Findings) == 0 {
		return nil, fmt.Errorf("the sensor knows nothing of a server %q (`sensor servers` lists the running ones)", args.Server)
	}
	return an, nil
}

// Hardening is what "harden" answers.
type Hardening struct {
	Server  string   `json:"server"`
	Seccomp any      `json:"seccomp"`
	DropIn  string   `json:"systemd_dropin"`
	Policy  string   `json:"gateway_policy"`
	Written []string `json:"written,omitempty"`
	DryRun  bool     `json:"dry_run"`
}

func (f *face) harden(req control.Request, uid uint32) (any, error) {
	args, err := serverArgs(req)
	if err != nil {
		return nil, err
	}
	st := f.p.Pins()
	exp := st.Export(args.Server)
	keys := make([]string, 0, len(exp))
	for k := range exp {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var profiles []*correlate.Profile
	key := ""
	for _, k := range keys {
		profiles = append(profiles, exp[k])
		key = exp[k].Server
	}
	if len(profiles) == 0 {
		return nil, fmt.Errorf("no baseline for %q yet: the sensor learns one while the server runs (`sensor baseline export` lists them)", args.Server)
	}
	hp, err := harden.Make(args.Server, profiles)
	if err != nil {
		return nil, err
	}
	pol, err := policyFor(key, st.Tools()[key])
	if err != nil {
		return nil, err
	}
	out := Hardening{Server: args.Server, Seccomp: hp.Seccomp, DropIn: hp.DropIn, Policy: pol, DryRun: !args.Write}
	if !args.Write {
		return out, nil
	}
	dir := args.Dir
	if dir == "" {
		dir = filepath.Join("/etc/mcp-sensor/harden", contain.Slug(args.Server))
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("making %s: %w", dir, err)
	}
	sc, _ := json.MarshalIndent(hp.Seccomp, "", "  ")
	for name, b := range map[string][]byte{"seccomp.json": append(sc, '\n'), "hardening.conf": []byte(hp.DropIn), "policy.yaml": []byte(pol)} {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			return nil, fmt.Errorf("writing %s: %w", p, err)
		}
		out.Written = append(out.Written, p)
	}
	sort.Strings(out.Written)
	auditAction(f.p.StateDir(), "harden", "", args.Server, fmt.Sprint("uid ", uid), nil)
	return out, nil
}

// policyFor is a gateway policy that lets the server be asked for the
// tools it has (as pinned) and nothing else, never to sample, with
// secrets and instructions taken out of its results, and no tool at all
// once it read a credential.
func policyFor(key string, tools map[string]correlate.ToolRecord) (string, error) {
	names := make([]string, 0, len(tools))
	for n := range tools {
		names = append(names, n)
	}
	sort.Strings(names)
	no := false
	f := gateway.File{Version: "harden-" + time.Now().UTC().Format("20060102"), Policies: []gateway.Policy{{
		ID: contain.Slug(key), Servers: []string{key}, Tools: gateway.Lists{Allow: names}, Sampling: &no,
		Results: gateway.Results{Secrets: "redact", Instructions: "redact"},
		When:    []gateway.Narrowing{{Condition: "server.tainted", DenyTools: []string{"*"}, Reason: "it read a credential"}},
	}}}
	if len(names) == 0 {
		f.Policies[0].Tools.Allow = []string{"-"} // nothing pinned: nothing allowed
	}
	b, err := yaml.Marshal(f)
	if err != nil {
		return "", err
	}
	if _, err := gateway.Parse("generated policy", b); err != nil {
		return "", fmt.Errorf("the generated policy does not load: %w", err)
	}
	return "# generated by the sensor from the pinned tools of " + key + "\n" + string(b), nil
}

// Intel is what "intel" answers: the patterns the rules know, and what
// this host has seen.
type Intel struct {
	Patterns   []Pattern      `json:"attack_patterns"`
	Dests      map[string]int `json:"destinations"`
	ToolHashes []ToolHash     `json:"tool_definition_hashes"`
	Packages   map[string]int `json:"packages"`
}

// Pattern is a rule as threat intelligence.
type Pattern struct {
	Rule       string   `json:"rule"`
	Class      string   `json:"class"`
	Severity   string   `json:"severity"`
	Techniques []string `json:"techniques,omitempty"`
	What       string   `json:"description"`
}

// ToolHash is a tool definition an alert was about.
type ToolHash struct {
	Server string `json:"server"`
	Tool   string `json:"tool"`
	Hash   string `json:"hash"`
	Rule   string `json:"rule"`
}

func (f *face) intel(control.Request, uint32) (any, error) {
	in := Intel{Dests: map[string]int{}, Packages: map[string]int{}, ToolHashes: []ToolHash{}}
	if rs := f.p.Rules(); rs != nil {
		for _, r := range rs.Rules {
			a := &correlate.Alert{Source: r.File}
			in.Patterns = append(in.Patterns, Pattern{Rule: r.Name, Class: a.Class(), Severity: r.Severity, Techniques: correlate.Techniques(r.Tags), What: r.Desc})
		}
	}
	tools := f.p.Pins().Tools()
	seen := map[string]bool{}
	_, _, err := f.alertsFrom(func(a *correlate.Alert) bool {
		if severityRank[a.Severity] >= severityRank["high"] && a.ServerName != "" {
			in.Packages[a.ServerName]++
		}
		for _, e := range a.Effects {
			if e.Addr != "" && (e.Type == "connect" || e.Type == "egress_denied" || e.Type == "sendto") {
				in.Dests[e.Addr]++
			}
		}
		if a.Tool != "" && len(a.Effects) == 0 {
			for key, m := range tools {
				if r, ok := m[a.Tool]; ok && strings.HasSuffix(key, ":"+strings.SplitN(strings.TrimPrefix(a.ServerName, "@"), "@", 2)[0]) {
					k := key + a.Tool + r.Hash
					if !seen[k] {
						seen[k] = true
						in.ToolHashes = append(in.ToolHashes, ToolHash{Server: a.ServerName, Tool: a.Tool, Hash: r.Hash, Rule: a.Rule})
					}
				}
			}
		}
		return false
	})
	return in, err
}

// Compliance is what "compliance" answers until the reports land: the
// audit trail's verified state and the posture's compliance status.
type Compliance struct {
	Verified bool      `json:"audit_trail_verified"`
	Records  uint64    `json:"records"`
	Problem  string    `json:"problem,omitempty"`
	From     time.Time `json:"from,omitzero"`
	To       time.Time `json:"to,omitzero"`
	Status   string    `json:"compliance_status"`
	Rules    int       `json:"rules_loaded"`
	Mode     string    `json:"response"`
}

func (f *face) compliance(control.Request, uint32) (any, error) {
	c := Compliance{Mode: f.mode}
	n, err := audit.Verify(f.auditDir())
	c.Records, c.Verified = n, err == nil
	if err != nil {
		c.Problem = err.Error()
	}
	_ = audit.Walk(f.auditDir(), func(r *audit.Record) error {
		if c.From.IsZero() {
			c.From = r.Time
		}
		c.To = r.Time
		return nil
	})
	if rs := f.p.Rules(); rs != nil {
		c.Rules = len(rs.Rules)
	}
	// the trail verified above: read once, not again through history
	rules, enforcing := f.settings()
	c.Status = posture.Status(c.Verified, rules, enforcing)
	return c, nil
}
