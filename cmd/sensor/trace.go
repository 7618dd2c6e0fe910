package main

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"runtime/pprof"

	"github.com/mattn/go-isatty"
	"github.com/spf13/cobra"

	"github.com/mcpsec/sensor/pkg/config"
	"github.com/mcpsec/sensor/pkg/pipeline"
)

func newTraceCmd() *cobra.Command {
	var pids []int
	var cpuProfile string
	var cc *command
	cmd := &cobra.Command{
		Use:   "trace [flags] [-- COMMAND [ARGS...]]",
		Short: "Show the JSON-RPC messages and effects of MCP servers, live",
		Long: `trace loads the sensor and prints every JSON-RPC message of the traced servers
(direction, method, id, tool and arguments, result or error) and every effect
of their process trees (exec, open with the path the kernel really opened,
writes, unlink, rename, chmod, connect, bind, listen, accept, sendto, ptrace,
mount, ...), with timestamps and pid/tid, and the alerts the rules raise. On
exit (Ctrl-C, or the traced process ending) it prints the counters: events,
messages, drops, truncations, and what each stage of the pipeline dropped.

What it traces:
  sensor trace -- CMD ARGS...   launch CMD and trace it from its first
                                instruction. Its stdin and stdout are the
                                sensor's, so this line can stand in an MCP
                                client's "command"; the trace goes to --out,
                                or to stderr, never to stdout.
  sensor trace --pid N          attach to a running process and its
                                descendants (their streams may start
                                mid-message: the first partial line is dropped
                                and counted).
  sensor trace                  discover MCP servers on the host: any process
                                with a pipe or socket for stdin that reads an
                                MCP handshake there.

It keeps what it learns (pinned tool definitions, baselines, the audit
trail) in a throw-away directory unless --state-dir names one: a one-off
trace never changes what the daemon trusts. Every flag is also a variable
(MCPSEC_<FLAG>) and a key of --config's YAML file.

Needs root (it loads eBPF programs).`,
		Example: `  sensor trace -- npx -y @modelcontextprotocol/server-filesystem /srv/notes
  sensor trace -o json --out /tmp/trace.jsonl -- ./my-mcp-server
  sensor trace --pid 4242
  sensor trace -o json | jq 'select(.kind=="effect" and .type=="connect")'`,
		RunE: func(c *cobra.Command, args []string) error {
			return runTrace(c, cc, pids, cpuProfile, args)
		},
	}
	fl := cmd.Flags()
	fl.SetInterspersed(false)
	cc = bindConfig(cmd, config.Trace, "")
	fl.IntSliceVar(&pids, "pid", nil, "trace this running process and its descendants (repeatable)")
	fl.StringVar(&cpuProfile, "cpu-profile", "", "write a Go CPU profile of the sensor to this file (for `go tool pprof`)")
	_ = fl.MarkHidden("cpu-profile")
	return cmd
}

func runTrace(c *cobra.Command, cc *command, pids []int, cpuProfile string, args []string) error {
	dash := c.ArgsLenAtDash()
	switch {
	case dash < 0 && len(args) > 0:
		return fmt.Errorf("unexpected argument %q: put the command to trace after --", args[0])
	case dash > 0:
		return fmt.Errorf("unexpected argument %q before --", args[0])
	case dash == 0 && len(args) == 0:
		return errors.New("nothing after --: give the command to trace, or drop the -- to discover servers")
	case len(args) > 0 && len(pids) > 0:
		return errors.New("--pid and a command are exclusive: trace one or the other")
	}
	l, err := cc.load(c)
	if err != nil {
		return err
	}
	if len(args) > 0 {
		if _, err := exec.LookPath(args[0]); err != nil {
			// said alone, before anything is loaded, with the shell's exit code
			why := errors.Unwrap(err)
			var pe *fs.PathError
			if errors.As(why, &pe) {
				why = pe.Err
			}
			fmt.Fprintf(os.Stderr, "sensor: cannot start %s: %v\n", args[0], why)
			return exitError{127}
		}
	}
	for _, p := range pids {
		if err := checkPID(p); err != nil {
			return err
		}
	}
	cfg := l.Config
	log := newLog(cfg.LogLevel)
	if os.Geteuid() != 0 {
		return errors.New("sensor trace loads eBPF programs and needs root (try sudo)")
	}
	// With a command, stdout belongs to the server; the trace shares stderr
	// with it, whole lines each.
	var out io.Writer = c.OutOrStdout()
	outFile := os.Stdout
	relay := false
	if len(args) > 0 {
		out, outFile, relay = os.Stderr, os.Stderr, true
	}
	if cfg.Out != "" {
		fh, err := os.OpenFile(cfg.Out, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
		if err != nil {
			return fmt.Errorf("opening the trace file (%s %s): %w", l.Sources.Of("out"), cfg.Out, err)
		}
		defer fh.Close()
		out, outFile, relay = fh, fh, false
	}
	if cpuProfile != "" {
		pf, err := os.Create(cpuProfile)
		if err != nil {
			return fmt.Errorf("--cpu-profile: %w", err)
		}
		if err := pprof.StartCPUProfile(pf); err != nil {
			return fmt.Errorf("--cpu-profile: %w", err)
		}
		defer pprof.StopCPUProfile()
	}
	ctx, force, reload := stopOnSignals(log)
	format := cfg.Output
	if format == "auto" {
		format = map[bool]string{true: "text", false: "json"}[isatty.IsTerminal(outFile.Fd())]
	}
	p, err := pipeline.New(pipeline.Options{
		Command: config.Trace, Config: cfg, Version: version, Log: log, Force: force, Reload: reload,
		Outputs: []pipeline.Output{{Name: "output", W: out, Format: format, Only: cfg.Only, HideRuntime: cfg.HideRuntime, Filter: cfg.Filter,
			Color: cfg.Color == "always" || (cfg.Color == "auto" && isatty.IsTerminal(outFile.Fd()))}},
		Target: pipeline.Target{Command: args, PIDs: pids, Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr, RelayStderr: relay},
	})
	if err != nil {
		return err
	}
	defer p.Close()
	if r := p.Rules(); r != nil {
		log.Info("rules loaded", "rules", len(r.Rules), "from", r.Dir)
	}
	res, err := p.Run(ctx)
	if err = loadFailed(err, log); len(args) == 0 || res.ExitCode < 0 {
		return err
	}
	// A traced command's exit code is what an MCP client sees: keep it,
	// whatever else went wrong (which is reported on stderr).
	if err != nil {
		fmt.Fprintln(os.Stderr, "sensor:", err)
		if res.ExitCode == 0 {
			return exitError{1}
		}
	}
	if res.ExitCode != 0 {
		return exitError{res.ExitCode}
	}
	return nil
}
