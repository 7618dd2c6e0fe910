package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/mcpsec/sensor/pkg/control"
	"github.com/mcpsec/sensor/pkg/correlate"
	"github.com/mcpsec/sensor/pkg/pipeline"
	"github.com/mcpsec/sensor/pkg/posture"
)

// VerdictArgs are what `sensor alerts verdict` sends.
type VerdictArgs struct {
	AlertID string `json:"alert_id"`
	Verdict string `json:"verdict"` // true or false
	Reason  string `json:"reason"`
	// Except, with a false verdict, writes a scoped exception (this rule,
	// this server and, for a call, this tool) to the site's rules.
	Except bool `json:"except,omitempty"`
}

// exceptionsFile is where verdicts' exceptions go in the site's rules
// directory (read after the shipped files).
const exceptionsFile = "zz-verdicts.yaml"

func (f *face) verdict(req control.Request, uid uint32) (any, error) {
	var v VerdictArgs
	if err := json.Unmarshal(req.Args, &v); err != nil {
		return nil, fmt.Errorf("verdict: %w", err)
	}
	if v.Verdict != "true" && v.Verdict != "false" {
		return nil, fmt.Errorf("verdict %q: say true (a real threat) or false (a false positive)", v.Verdict)
	}
	if strings.TrimSpace(v.Reason) == "" {
		return nil, errors.New("a verdict needs a reason (--reason): who decided, and why")
	}
	if v.Except && v.Verdict != "false" {
		return nil, errors.New("--except goes with a false verdict: an exception quiets a false positive")
	}
	found, _, err := f.alertsFrom(func(a *correlate.Alert) bool { return a.ID == v.AlertID })
	if err != nil {
		return nil, err
	}
	if len(found) == 0 {
		return nil, fmt.Errorf("no alert %q in the audit trail (`sensor alerts` shows their ids)", v.AlertID)
	}
	a := found[0]
	rec := posture.VerdictRecord{AlertID: a.ID, Verdict: v.Verdict, Rule: a.Rule, Server: a.ServerName,
		By: fmt.Sprint("uid ", uid), Reason: v.Reason}
	if v.Except {
		if a.Source == "baseline" || a.ServerName == "" {
			return nil, fmt.Errorf("alert %s (%s) has no rule and server to scope an exception to: reset the baseline instead", a.ID, a.Rule)
		}
		f.exceptions.Lock()
		file, err := writeException(f.p.SiteRulesDir(), a, rec.By, v.Reason)
		f.exceptions.Unlock()
		if err != nil {
			return nil, err
		}
		rec.Exception = file
		f.reload()
	}
	if v.Verdict == "false" && f.member != nil {
		if h := f.current(); h != nil {
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			rec.Withdrawn = f.member.withdraw(ctx, a, f.p, *h, v.Reason)
			cancel()
		}
	}
	if err := f.p.Audit("verdict", []any{rec}); err != nil {
		return nil, fmt.Errorf("recording the verdict in the audit trail: %w", err)
	}
	msg := fmt.Sprintf("alert %s (%s on %s) judged %s", a.ID, a.Rule, a.ServerName, map[string]string{"true": "a true positive", "false": "a false positive"}[v.Verdict])
	if rec.Exception != "" {
		msg += "; exception written to " + rec.Exception
	}
	if len(rec.Withdrawn) > 0 {
		msg += "; withdrawn from the fleet: " + strings.Join(rec.Withdrawn, ", ")
	}
	return map[string]any{"result": msg, "verdict": rec}, nil
}

// overrideEntry is a rule override carrying one exception, in the format
// of the site's rules (rules/README.md).
type overrideEntry struct {
	Rule       string            `yaml:"rule"`
	Override   map[string]string `yaml:"override"`
	Exceptions []exceptionEntry  `yaml:"exceptions"`
}

type exceptionEntry struct {
	Name   string     `yaml:"name"`
	Fields []string   `yaml:"fields"`
	Values [][]string `yaml:"values"`
	Reason string     `yaml:"reason"`
}

// writeException appends to the site's verdict file an exception of the
// alert's rule for its server (and its call's tool), checks that the
// rules still load with it, and undoes it if they do not.
func writeException(dir string, a *correlate.Alert, by, reason string) (string, error) {
	ex := exceptionEntry{Name: "verdict_" + a.ID, Fields: []string{"server.name"}, Values: [][]string{{a.ServerName}},
		Reason: fmt.Sprintf("false positive (alert %s, %s, %s): %s", a.ID, by, time.Now().UTC().Format(time.DateOnly), reason)}
	if a.Call != nil && a.Call.Tool != "" {
		ex.Fields = append(ex.Fields, "call.tool")
		ex.Values[0] = append(ex.Values[0], a.Call.Tool)
	}
	entry := []overrideEntry{{Rule: a.Rule, Override: map[string]string{"exceptions": "append"}, Exceptions: []exceptionEntry{ex}}}
	b, err := yaml.Marshal(entry)
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("making the rules directory %s: %w", dir, err)
	}
	path := filepath.Join(dir, exceptionsFile)
	old, err := os.ReadFile(path)
	if err != nil && !os.IsNotExist(err) {
		return "", fmt.Errorf("reading %s: %w", path, err)
	}
	head := "# Exceptions written by analysts' false-positive verdicts (sensor alerts verdict ID false --except).\n"
	if len(old) > 0 {
		head = ""
	}
	next := append(append(old, head...), b...)
	if err := os.WriteFile(path, next, 0o644); err != nil {
		return "", fmt.Errorf("writing %s: %w", path, err)
	}
	if _, err := pipeline.LoadRules(dir); err != nil {
		if len(old) == 0 {
			_ = os.Remove(path)
		} else {
			_ = os.WriteFile(path, old, 0o644)
		}
		return "", fmt.Errorf("the exception was not written: the rules would not load with it: %w", err)
	}
	return path, nil
}
