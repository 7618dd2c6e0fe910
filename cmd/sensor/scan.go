package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/mcpsec/sensor/pkg/fleet"
	"github.com/mcpsec/sensor/pkg/scan"
)

type scanOpts struct {
	homes      []string
	dir        string
	static     bool
	timeout    time.Duration
	output     string
	out        string
	failOn     string
	advisories string
	repin      bool
	stateDir   string
	keep       []string
	fleetFile  string
}

func newScanCmd() *cobra.Command {
	var o scanOpts
	cmd := &cobra.Command{
		Use:   "scan [flags] [FILE...]",
		Short: "Judge the MCP servers your clients' configuration files launch, offline",
		Long: `scan finds the MCP client configurations on this host (Claude Desktop, Claude
Code's ~/.claude.json and a project's .mcp.json, Cursor, Windsurf, VS Code,
Gemini CLI, Codex, Zed; or the FILEs given) and judges every server entry.
Nothing leaves the host: no account, no cloud.

  static       unpinned packages, versions with published advisories (a
               shipped list; --advisories FILE for a newer one), secrets
               written in env, args or headers, plain http:// URLs, servers
               started through sudo or a shell string
  live         (root) each stdio server is started under the sensor in a
               sandbox: its own cgroup with every connection refused in the
               kernel, a mount namespace where the homes, /tmp and the
               sensor's state are empty (its project and the package
               caches are visible read-only), a throw-away $HOME, a time
               limit. The scan completes the handshake, reads tools/list,
               resources/list and prompts/list, and reports what the server
               did on start-up: files opened, processes run, connections
               tried.
  definitions  instructions aimed at the model, hidden text, descriptions
               naming other servers' tools, the same tool name from two
               servers of a client; definitions are pinned, so a later
               scan reports a change (a rug pull)

Exit status: 0 when no finding is at or above --fail-on, else 10 + the worst
severity's rank (11 low, 12 medium, 13 high, 14 critical); 1 on an error.`,
		Example: `  sensor scan
  sensor scan --static -o json ~/.cursor/mcp.json
  sensor scan -o sarif --out scan.sarif --fail-on medium`,
		RunE: func(c *cobra.Command, files []string) error { return runScan(c, o, files) },
	}
	fl := cmd.Flags()
	fl.StringSliceVar(&o.homes, "home", nil, "look for client configurations in this home (repeatable; default: /root and every /home/NAME)")
	fl.StringVar(&o.dir, "project", ".", "look for project files (.mcp.json, .vscode/mcp.json, ...) in this directory")
	fl.BoolVar(&o.static, "static", false, "judge the files only: start no server")
	fl.DurationVar(&o.timeout, "timeout", 30*time.Second, "how long a server may take to start and list")
	fl.StringVarP(&o.output, "output", "o", "text", "text, json or sarif")
	fl.StringVar(&o.out, "out", "", "write the report to this file (default: stdout)")
	fl.StringVar(&o.failOn, "fail-on", "high", "exit non-zero for a finding at or above this severity: low, medium, high, critical or none")
	fl.StringVar(&o.advisories, "advisories", "", "judge versions with this advisory list (the format of the shipped one) instead")
	fl.BoolVar(&o.repin, "repin", false, "take the definitions listed now as the pinned ones")
	fl.StringVar(&o.stateDir, "state-dir", "/var/lib/mcp-sensor/scan", "where the scan keeps its pins")
	fl.StringSliceVar(&o.keep, "keep", nil, "another directory servers may read in the sandbox (repeatable)")
	fl.StringVar(&o.fleetFile, "fleet-indicators", "/var/lib/mcp-sensor/"+fleet.InForceFile, "the fleet's indicators in force (the daemon keeps them there): packages named are refused")
	return cmd
}

func runScan(c *cobra.Command, o scanOpts, files []string) error {
	switch o.output {
	case "text", "json", "sarif":
	default:
		return fmt.Errorf("--output %s: use text, json or sarif", o.output)
	}
	failRank := 99
	if o.failOn != "none" {
		if failRank = scan.SeverityRank(o.failOn); failRank < 1 {
			return fmt.Errorf("--fail-on %s: use low, medium, high, critical or none", o.failOn)
		}
	}
	adv, err := scan.ShippedAdvisories()
	if o.advisories != "" {
		adv, err = scan.LoadAdvisories(o.advisories)
	}
	if err != nil {
		return fmt.Errorf("--advisories: %w", err)
	}
	live := !o.static
	if live && os.Geteuid() != 0 {
		fmt.Fprintln(os.Stderr, "sensor scan: not root: judging the files only (the live part loads eBPF programs; --static says so)")
		live = false
	}
	r := &scan.Report{Time: time.Now().UTC(), Advisories: adv.Source + " (updated " + adv.Updated + ")"}
	var srcs []scan.Source
	if len(files) > 0 {
		for _, f := range files {
			srcs = append(srcs, scan.Source{Client: scan.Guess(f), Path: f})
		}
	} else {
		homes := o.homes
		if len(homes) == 0 {
			homes = hostHomes()
		}
		dir, _ := filepath.Abs(o.dir)
		seen := map[string]bool{}
		for i, h := range homes {
			d := ""
			if i == 0 {
				d = dir
			}
			for _, s := range scan.Known(h, d) {
				if !seen[s.Path] {
					seen[s.Path] = true
					srcs = append(srcs, s)
				}
			}
		}
	}
	refused := map[string]string{}
	ins, err := fleet.ReadInForce(o.fleetFile)
	if err != nil {
		return fmt.Errorf("--fleet-indicators: %w", err)
	}
	for _, in := range ins {
		if in.Type == fleet.Package {
			refused[in.Value] = in.Origin()
		}
	}
	for _, s := range srcs {
		es, err := scan.Parse(s)
		if err != nil {
			if len(files) > 0 {
				return fmt.Errorf("reading %s: %w", s.Path, err)
			}
			r.Errors = append(r.Errors, err.Error())
			continue
		}
		r.Files = append(r.Files, s)
		r.Entries = append(r.Entries, es...)
		for _, e := range es {
			r.Findings = append(r.Findings, scan.Static(e, adv)...)
			r.Findings = append(r.Findings, scan.FleetRefused(e, "", refused)...)
		}
	}
	if live {
		if err := scanLive(r, o, adv, refused); err != nil {
			return err
		}
	}
	r.Finish()
	var w io.Writer = c.OutOrStdout()
	if o.out != "" {
		fh, err := os.OpenFile(o.out, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
		if err != nil {
			return fmt.Errorf("--out %s: %w", o.out, err)
		}
		defer fh.Close()
		w = fh
	}
	switch o.output {
	case "json":
		err = r.WriteJSON(w)
	case "sarif":
		err = r.WriteSARIF(w, version)
	default:
		err = r.WriteText(w)
	}
	if err != nil {
		return err
	}
	if worst := scan.SeverityRank(r.Worst()); worst >= failRank {
		return exitError{10 + worst}
	}
	return nil
}

// hostHomes are /root and every /home/NAME.
func hostHomes() []string {
	out := []string{"/root"}
	if h := os.Getenv("HOME"); h != "" && h != "/root" {
		out = append([]string{h}, out...)
	}
	ents, _ := os.ReadDir("/home")
	for _, e := range ents {
		if e.IsDir() && !strings.HasPrefix(e.Name(), ".") {
			out = append(out, filepath.Join("/home", e.Name()))
		}
	}
	return out
}
