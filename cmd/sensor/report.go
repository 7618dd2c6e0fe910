package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/mcpsec/sensor/pkg/config"
	"github.com/mcpsec/sensor/pkg/contain"
	"github.com/mcpsec/sensor/pkg/pipeline"
	"github.com/mcpsec/sensor/pkg/report"
)

func newReportCmd() *cobra.Command {
	var cfgPath, stateDir, since, output, out, framework string
	cmd := &cobra.Command{Use: "report", Short: "Reports from the daemon's audit trail: compliance, incidents"}
	state := func(c *cobra.Command, defSince string) {
		c.Flags().StringVar(&cfgPath, "config", config.DefaultPath, "the daemon's configuration (its state directory, rules and response)")
		c.Flags().StringVar(&stateDir, "state-dir", "", "the daemon's state directory (default: the configuration's)")
		c.Flags().StringVar(&since, "since", defSince, "the period: this long back from now (e.g. 24h, 30d)")
	}
	comp := &cobra.Command{Use: "compliance --framework soc2|iso27001|nist-csf|gdpr [--since 30d] [-o html|json|md]",
		Short: "Each requirement of a framework PASS, FAIL or MANUAL, with its evidence and, for FAIL, the fix",
		Long: `compliance judges a framework's requirements (compliance/*.yaml in the repository:
requirement id -> the evidence that satisfies it) on what the daemon can show:
its audit trail over the period (verified first: the report states the
result), its configuration and its rules. A requirement the sensor cannot
evidence is MANUAL, never PASS.`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			if framework == "" {
				names, _ := report.Frameworks()
				return fmt.Errorf("--framework is required: %s", strings.Join(names, ", "))
			}
			f, err := report.LoadFramework(framework)
			if err != nil {
				return fmt.Errorf("--framework: %w", err)
			}
			switch output {
			case "html", "json", "md":
			default:
				return fmt.Errorf("--output %s: use html, json or md", output)
			}
			d, err := period(since)
			if err != nil {
				return err
			}
			st, err := complianceState(c, cfgPath, stateDir)
			if err != nil {
				return err
			}
			st.Generated = time.Now().UTC()
			st.To, st.From = st.Generated, st.Generated.Add(-d)
			rep, err := report.Evaluate(f, st)
			if err != nil {
				return err
			}
			w, closeOut, err := outFile(c, out)
			if err != nil {
				return err
			}
			defer closeOut()
			switch output {
			case "json":
				return rep.WriteJSON(w)
			case "md":
				return rep.WriteMarkdown(w)
			}
			return rep.WriteHTML(w)
		}}
	state(comp, "30d")
	comp.Flags().StringVar(&framework, "framework", "", "soc2, iso27001, nist-csf or gdpr")
	comp.Flags().StringVarP(&output, "output", "o", "html", "html, json or md")
	comp.Flags().StringVar(&out, "out", "", "write the report to this file (default: stdout)")
	inc := &cobra.Command{Use: "incidents [--since 24h]", Short: "What happened: alerts by server and rule, containment, verdicts, posture",
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			d, err := period(since)
			if err != nil {
				return err
			}
			_, dir, err := daemonState(c, cfgPath, stateDir) // the trail alone: no rules to compile
			if err != nil {
				return err
			}
			now := time.Now()
			return report.WriteIncidents(c.OutOrStdout(), dir, now.Add(-d), now)
		}}
	state(inc, "24h")
	cmd.AddCommand(comp, inc)
	return cmd
}

// period reads --since: a Go duration, or a number of days (30d).
func period(s string) (time.Duration, error) {
	if n, ok := strings.CutSuffix(s, "d"); ok {
		if days, err := strconv.Atoi(n); err == nil && days > 0 {
			return time.Duration(days) * 24 * time.Hour, nil
		}
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("--since %s: write it like 24h, 90m or 30d", s)
	}
	return d, nil
}

// daemonState reads the daemon's configuration and finds its audit trail.
func daemonState(c *cobra.Command, cfgPath, stateDir string) (config.Config, string, error) {
	explicit := c.Flags().Changed("config")
	l, err := config.Bind(config.Daemon, pflag.NewFlagSet("report", pflag.ContinueOnError)).Load(cfgPath, explicit, os.LookupEnv)
	if err != nil {
		return l.Config, "", err
	}
	if stateDir == "" {
		stateDir = l.Config.StateDir
	}
	dir := filepath.Join(stateDir, contain.AuditDir)
	if _, err := os.Stat(dir); err != nil {
		return l.Config, "", fmt.Errorf("no audit trail in %s (--state-dir names the daemon's state directory)", stateDir)
	}
	return l.Config, dir, nil
}

// complianceState reads the daemon's configuration and rules.
func complianceState(c *cobra.Command, cfgPath, stateDir string) (report.State, error) {
	cfg, dir, err := daemonState(c, cfgPath, stateDir)
	if err != nil {
		return report.State{}, err
	}
	_, mode := cfg.Effective()
	st := report.State{AuditDir: dir, Response: mode, Policy: cfg.Policy, Learn: cfg.Learn, Rules: map[string]bool{}}
	if !cfg.NoRules {
		rs, err := pipeline.LoadRules(pipeline.RulesDirOf(cfg))
		if err != nil {
			return st, fmt.Errorf("loading the rules: %w", err)
		}
		for _, r := range rs.Rules {
			st.Rules[r.Name] = true
		}
	}
	return st, nil
}

// outFile is --out's file, or the command's output.
func outFile(c *cobra.Command, path string) (io.Writer, func(), error) {
	if path == "" {
		return c.OutOrStdout(), func() {}, nil
	}
	fh, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		return nil, nil, fmt.Errorf("--out: %w", err)
	}
	return fh, func() { fh.Close() }, nil
}
