package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/mcpsec/sensor/pkg/config"
	"github.com/mcpsec/sensor/pkg/control"
	"github.com/mcpsec/sensor/pkg/inspect"
	"github.com/mcpsec/sensor/pkg/pipeline"
)

// newStatusCmds are the daemon's clients for people: status, alerts (and
// alerts verdict), servers.
func newStatusCmds() []*cobra.Command {
	sockFlag := func(c *cobra.Command, p *string) {
		c.Flags().StringVar(p, "socket", config.Default(config.Daemon).ControlSocket, "the daemon's control socket")
	}
	var s1, s2, s3, out1, out2 string
	var follow bool
	var last int
	var q ThreatQuery
	status := &cobra.Command{Use: "status [-o json]", Short: "Show the daemon's state: servers, alerts, containment, losses, posture", Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			var st map[string]any
			if err := control.Call(s1, control.Request{Cmd: "status"}, func(b []byte) error { return json.Unmarshal(b, &st) }); err != nil {
				return err
			}
			var pos Posture
			perr := control.Ask(s1, "posture", nil, &pos)
			if out1 == "json" {
				if perr == nil {
					st["posture"] = pos
				}
				b, _ := json.MarshalIndent(st, "", "  ")
				fmt.Fprintln(c.OutOrStdout(), string(b))
				return nil
			}
			var hour []Threat
			_ = control.Ask(s1, "threats", ThreatQuery{Since: "1h", Limit: 100000}, &hour)
			return statusText(c.OutOrStdout(), st, pos, perr, hour)
		}}
	sockFlag(status, &s1)
	status.Flags().StringVarP(&out1, "output", "o", "text", "text or json (every counter)")
	alerts := &cobra.Command{Use: "alerts [--follow] [--since 1h] [--severity high] [--rule R] [--server S]",
		Short: "Print the daemon's alerts, newest last (text for people, -o json for lines of JSON)", Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			if out2 != "text" && out2 != "json" {
				return fmt.Errorf("--output %s: use text or json", out2)
			}
			if follow {
				return control.Call(s2, control.Request{Cmd: "alerts", Follow: true, Last: last}, func(b []byte) error {
					_, err := fmt.Fprintln(c.OutOrStdout(), string(b))
					return err
				})
			}
			q.Limit = last
			var ts []Threat
			if err := control.Ask(s2, "threats", q, &ts); err != nil {
				return err
			}
			for _, t := range ts {
				if out2 == "json" {
					b, _ := json.Marshal(t.Alert)
					fmt.Fprintln(c.OutOrStdout(), string(b))
					continue
				}
				fmt.Fprintln(c.OutOrStdout(), threatLine(t))
			}
			return nil
		}}
	sockFlag(alerts, &s2)
	fl := alerts.Flags()
	fl.BoolVarP(&follow, "follow", "f", false, "keep printing new alerts (JSON lines)")
	fl.IntVar(&last, "last", 100, "how many alerts at most")
	fl.StringVar(&q.Since, "since", "", "only alerts this recent (e.g. 30m, 1h, 24h)")
	fl.StringVar(&q.Severity, "severity", "", "only alerts at or above this severity (low, medium, high, critical)")
	fl.StringVar(&q.Rule, "rule", "", "only this rule's alerts")
	fl.StringVar(&q.Server, "server", "", "only alerts on this server (its name, with or without the version)")
	fl.StringVar(&q.Technique, "technique", "", "only alerts tagged with this ATT&CK technique (T1552 matches T1552.001)")
	fl.StringVarP(&out2, "output", "o", "text", "text or json")
	alerts.AddCommand(newVerdictCmd(sockFlag))
	servers := &cobra.Command{Use: "servers", Short: "List the MCP servers the daemon follows", Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			return control.Call(s3, control.Request{Cmd: "servers"}, func(b []byte) error {
				var v any
				_ = json.Unmarshal(b, &v)
				out, _ := json.MarshalIndent(v, "", "  ")
				fmt.Fprintln(c.OutOrStdout(), string(out))
				return nil
			})
		}}
	sockFlag(servers, &s3)
	return []*cobra.Command{status, alerts, servers}
}

func newVerdictCmd(sockFlag func(*cobra.Command, *string)) *cobra.Command {
	var sock string
	var args VerdictArgs
	cmd := &cobra.Command{Use: "verdict ID true|false --reason TEXT [--except]",
		Short: "Judge an alert: true (a real threat) or false (a false positive)",
		Long: `verdict records an analyst's judgement of an alert in the audit trail; the
posture's false-positive rate is computed from these. With --except, a false
verdict also writes an exception to the site's rules directory
(zz-verdicts.yaml): the same rule is quiet for the same server (and, for a
call, the same tool) from the next reload on, which follows at once.`,
		Args: cobra.ExactArgs(2),
		RunE: func(c *cobra.Command, a []string) error {
			args.AlertID, args.Verdict = a[0], a[1]
			if args.Verdict != "true" && args.Verdict != "false" {
				return fmt.Errorf("%q: say true (a real threat) or false (a false positive)", args.Verdict)
			}
			if strings.TrimSpace(args.Reason) == "" {
				return errors.New("--reason is required: who decided, and why")
			}
			var v struct {
				Result string `json:"result"`
			}
			if err := control.Ask(sock, "verdict", args, &v); err != nil {
				return err
			}
			fmt.Fprintln(c.OutOrStdout(), v.Result)
			return nil
		}}
	sockFlag(cmd, &sock)
	cmd.Flags().StringVar(&args.Reason, "reason", "", "why (recorded in the audit trail)")
	cmd.Flags().BoolVar(&args.Except, "except", false, "with false: quiet this rule for this server (and tool) from now on")
	return cmd
}

// threatLine is one alert for a person.
func threatLine(t Threat) string {
	a := t.Alert
	line := fmt.Sprintf("%s %-8s %s %-28s %s", a.Time.Local().Format("2006-01-02 15:04:05"), strings.ToUpper(a.Severity), a.ID, a.Rule, inspect.Escape(a.Output, 300))
	if r := a.Response; r != nil && len(r.Done) > 0 {
		line += " [" + strings.Join(r.Done, ", ") + "]"
	}
	if t.Verdict != "" {
		line += " (" + t.Verdict + ")"
	}
	return line
}

// statusText is `sensor status` for people.
func statusText(w io.Writer, st map[string]any, pos Posture, perr error, hour []Threat) error {
	b := &strings.Builder{}
	ready := "starting"
	if r, _ := st["ready"].(bool); r {
		ready = "ready"
	}
	since, _ := time.Parse(time.RFC3339Nano, fmt.Sprint(st["since"]))
	fmt.Fprintf(b, "sensor %v: %s, up %s, profile %v, response %v, %v rules\n", st["version"], ready,
		time.Since(since).Round(time.Second), st["profile"], st["response"], st["rules"])
	var stats pipeline.Stats
	if raw, err := json.Marshal(st["stats"]); err == nil {
		_ = json.Unmarshal(raw, &stats)
	}
	fmt.Fprintf(b, "servers: %d followed\n", stats.Servers)
	sev := map[string]int{}
	for _, t := range hour {
		sev[t.Alert.Severity]++
	}
	fmt.Fprintf(b, "alerts, last hour: %d critical, %d high, %d medium, %d low\n", sev["critical"], sev["high"], sev["medium"], sev["low"])
	dropped := uint64(0)
	var where []string
	for name, q := range stats.Queues {
		n := uint64(0)
		for _, d := range q.Dropped {
			n += d
		}
		if n > 0 {
			dropped += n
			where = append(where, fmt.Sprintf("%s %d", name, n))
		}
	}
	sort.Strings(where)
	loss := fmt.Sprintf("losses: %d kernel drops, %d truncated, %d queue drops", stats.Drops, stats.Cut, dropped)
	if len(where) > 0 {
		loss += " (" + strings.Join(where, ", ") + ")"
	}
	if stats.AuditErrors+stats.NATSErrors > 0 {
		loss += fmt.Sprintf(", %d alerts not in the audit trail, %d not spooled for NATS", stats.AuditErrors, stats.NATSErrors)
	}
	fmt.Fprintln(b, loss)
	if perr != nil {
		fmt.Fprintf(b, "posture: unavailable (%v)\n", perr)
	} else {
		f := pos.Now
		fmt.Fprintf(b, "posture, last 24 h: score %d, %s; %d threats detected, %d blocked %v; MTTD %s, MTTR %s; false positives %s\n",
			f.SecurityScore, f.ComplianceStatus, f.ThreatsDetected, f.ThreatsBlocked, f.BlockedBy, ms(f.MTTDms), ms(f.MTTRms), rate(f.FalsePosRate, f.Verdicts))
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func ms(p *float64) string {
	if p == nil {
		return "-"
	}
	return fmt.Sprintf("%.1f ms", *p)
}

func rate(p *float64, n int) string {
	if p == nil {
		return "- (no verdicts)"
	}
	return fmt.Sprintf("%.0f%% of %d judged", *p*100, n)
}
