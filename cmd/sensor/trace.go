package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/pprof"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/mattn/go-isatty"
	"github.com/spf13/cobra"

	"github.com/mcpsec/sensor/pkg/correlate"
	"github.com/mcpsec/sensor/pkg/decode"
	"github.com/mcpsec/sensor/pkg/loader"
	"github.com/mcpsec/sensor/pkg/sink"
	"github.com/mcpsec/sensor/pkg/trace"
	"github.com/mcpsec/sensor/rules"
)

type traceFlags struct {
	natsURL, natsCreds, natsNKey, natsCA, natsCert, natsKey string
	falcoURL                                                string
	response                                                string
	rules                                                   string
	noRules                                                 bool
	roots                                                   []string
	egress                                                  []string
	stateDir                                                string
	learn                                                   time.Duration
	pids                                                    []int
	output                                                  string
	out                                                     string
	color                                                   string
	captureMax                                              uint64
	maxMessage                                              uint64
	payloadRing                                             uint64
	effectRing                                              uint64
	maxTracked                                              uint32
	statsEvery                                              time.Duration
	wakeup                                                  time.Duration
	order                                                   time.Duration
	noTLS                                                   bool
	logLevel                                                string
	cpuProfile                                              string
}

func newTraceCmd() *cobra.Command {
	f := &traceFlags{}
	cmd := &cobra.Command{
		Use:   "trace [flags] [-- COMMAND [ARGS...]]",
		Short: "Show the JSON-RPC messages and effects of MCP servers, live",
		Long: `trace loads the sensor and prints every JSON-RPC message of the traced servers
(direction, method, id, tool and arguments, result or error) and every effect
of their process trees (exec, open with the path the kernel really opened,
writes, unlink, rename, chmod, connect, bind, listen, accept, sendto, ptrace,
mount, ...), with timestamps and pid/tid. On exit (Ctrl-C, or the traced
process ending) it prints the counters: events, messages, drops, truncations.

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
  sensor trace                  discover MCP servers on the host: any new
                                process with a pipe or socket for stdin that
                                reads a JSON-RPC message there, plus running
                                processes whose command line names MCP.

Needs root (it loads eBPF programs).`,
		Example: `  sensor trace -- npx -y @modelcontextprotocol/server-filesystem /srv/notes
  sensor trace -o json --out /tmp/trace.jsonl -- ./my-mcp-server
  sensor trace --pid 4242
  sensor trace -o json | jq 'select(.kind=="effect" and .type=="connect")'`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := applyEnv(cmd); err != nil {
				return err
			}
			return runTrace(cmd, f, args)
		},
	}
	fl := cmd.Flags()
	fl.SetInterspersed(false)
	fl.IntSliceVar(&f.pids, "pid", nil, "trace this running process and its descendants (repeatable)")
	fl.StringVarP(&f.output, "output", "o", "text", "output format: text or json (one JSON object per line)")
	fl.StringVar(&f.out, "out", "", "write the trace to this file (default: stdout, or stderr when running a command)")
	fl.StringVar(&f.color, "color", "auto", "colour text output: auto (on a terminal), always, never")
	fl.Var(newSize(&f.captureMax, loader.DefaultConfig().CaptureCap), "capture-max", "payload bytes captured per syscall; the rest is counted and marked as cut")
	fl.Var(newSize(&f.maxMessage, decode.DefaultMaxMessage), "max-message", "largest JSON-RPC message kept whole; longer ones are reported truncated")
	fl.Var(newSize(&f.payloadRing, 32<<20), "payload-ring", "payload ring buffer size (power of two)")
	fl.Var(newSize(&f.effectRing, 8<<20), "effect-ring", "effect ring buffer size (power of two)")
	fl.Uint32Var(&f.maxTracked, "max-tracked", 32768, "size of the kernel's tracked-process map (when full, tracking falls back to cgroups: fail closed)")
	fl.DurationVar(&f.wakeup, "wakeup-interval", 2*time.Millisecond, "while records flow, read the rings at most this often (a record waits at most about this long); shorter costs the traced servers more")
	fl.BoolVar(&f.noTLS, "no-tls", false, "do not put uprobes on the OpenSSL that traced processes map (no TLS plaintext)")
	fl.StringVar(&f.rules, "rules", "", "judge events with the rule files of this directory (default: "+defaultRulesDir+" if it exists, else the built-in rules); SIGHUP or a changed file reloads them")
	fl.BoolVar(&f.noRules, "no-rules", false, "judge nothing (calls and effects are still linked)")
	fl.StringSliceVar(&f.roots, "root", nil, "a directory every server may use, besides those its argv and its client name (repeatable)")
	fl.StringSliceVar(&f.egress, "egress-allow", nil, "destinations servers may reach: CIDR, address, host or host:port (repeatable; default: no allow-list)")
	fl.StringVar(&f.stateDir, "state-dir", "/var/lib/mcp-sensor", "where first-seen tool definitions and baselines are kept across runs (\"\": in memory)")
	fl.StringVar(&f.natsURL, "nats-url", "", "publish alerts to this NATS server's JetStream (subjects mcpsec.alert.<host>.<severity>.<rule>); they wait in a spool while it is away")
	fl.StringVar(&f.falcoURL, "falco-url", "", "also post alerts, in Falco's JSON shape, to this HTTP endpoint (e.g. Falcosidekick)")
	fl.StringVar(&f.natsCreds, "nats-creds", "", "NATS credentials file")
	fl.StringVar(&f.natsNKey, "nats-nkey", "", "NATS nkey seed file")
	fl.StringVar(&f.natsCA, "nats-ca", "", "NATS TLS: CA file")
	fl.StringVar(&f.natsCert, "nats-cert", "", "NATS TLS: client certificate")
	fl.StringVar(&f.natsKey, "nats-key", "", "NATS TLS: client key")
	fl.StringVar(&f.response, "response", "monitor", "containment: off, monitor (say what would be done) or enforce (freeze, deny egress in the kernel, snapshot, by severity)")
	fl.DurationVar(&f.learn, "learn", 10*time.Minute, "baseline learning window per server and tool; afterwards novel effects raise anomalies (0: no baselines)")
	fl.DurationVar(&f.order, "order-window", trace.DefaultOrderWindow, "the longest an event waits for earlier ones (a reader behind by more prints out of order, counted as order_late; 0: as decoded)")
	fl.DurationVar(&f.statsEvery, "stats-interval", 0, "also print counters every interval (e.g. 10s); 0: only at the end")
	fl.StringVar(&f.logLevel, "log-level", "info", "log level: trace, debug, info, warn, error")
	fl.StringVar(&f.cpuProfile, "cpu-profile", "", "write a Go CPU profile of the sensor to this file (for `go tool pprof`)")
	_ = fl.MarkHidden("cpu-profile")
	return cmd
}

func runTrace(cmd *cobra.Command, f *traceFlags, args []string) error {
	dash := cmd.ArgsLenAtDash()
	if dash < 0 && len(args) > 0 {
		return fmt.Errorf("unexpected argument %q: put the command to trace after --", args[0])
	}
	if dash > 0 {
		return fmt.Errorf("unexpected argument %q before --", args[0])
	}
	if dash == 0 && len(args) == 0 {
		return errors.New("nothing after --: give the command to trace, or drop the -- to discover servers")
	}
	if len(args) > 0 && len(f.pids) > 0 {
		return errors.New("--pid and a command are exclusive: trace one or the other")
	}
	if f.color != "auto" && f.color != "always" && f.color != "never" {
		return fmt.Errorf("--color %q: must be auto, always or never", f.color)
	}
	if hclog.LevelFromString(f.logLevel) == hclog.NoLevel {
		return fmt.Errorf("--log-level %q: must be trace, debug, info, warn or error", f.logLevel)
	}
	if f.statsEvery < 0 {
		return fmt.Errorf("--stats-interval %v: must not be negative", f.statsEvery)
	}
	if f.output != "text" && f.output != "json" {
		return fmt.Errorf("--output %q: must be text or json", f.output)
	}
	for _, p := range f.pids {
		if err := checkPID(p); err != nil {
			return err
		}
	}
	if f.order < 0 || f.order > 10*time.Second {
		return fmt.Errorf("--order-window %v: must be between 0 and 10s", f.order)
	}
	if f.wakeup <= 0 || f.wakeup > time.Second {
		return fmt.Errorf("--wakeup-interval %v: must be between 1ns and 1s", f.wakeup)
	}
	if f.captureMax > 1<<30 || f.maxMessage > 1<<30 {
		return errors.New("--capture-max and --max-message are limited to 1GiB")
	}
	for name, v := range map[string]uint64{"--payload-ring": f.payloadRing, "--effect-ring": f.effectRing} {
		if v < 4096 || v&(v-1) != 0 || v > 1<<30 {
			return fmt.Errorf("%s %s: must be a power of two between 4KiB and 1GiB", name, formatSize(v))
		}
	}

	logOut := os.Stderr
	log := hclog.New(&hclog.LoggerOptions{
		Name: "sensor", Level: hclog.LevelFromString(f.logLevel), Output: logOut,
		JSONFormat: !isatty.IsTerminal(logOut.Fd()),
	})
	if os.Geteuid() != 0 {
		return errors.New("sensor trace loads eBPF programs and needs root (try sudo)")
	}

	// With a command, stdout belongs to the server; the trace shares stderr
	// with it, whole lines each.
	var out io.Writer = cmd.OutOrStdout()
	outFile := os.Stdout
	relay := false
	if len(args) > 0 {
		out, outFile, relay = os.Stderr, os.Stderr, true
	}
	if f.out != "" {
		fh, err := os.OpenFile(f.out, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
		if err != nil {
			return fmt.Errorf("opening --out: %w", err)
		}
		defer fh.Close()
		out, outFile, relay = fh, fh, false
	}
	color := f.color == "always" || (f.color == "auto" && isatty.IsTerminal(outFile.Fd()))

	lc := loader.DefaultConfig()
	lc.CaptureCap = f.captureMax
	lc.PayloadRing = uint32(f.payloadRing)
	lc.EffectRing = uint32(f.effectRing)
	lc.MaxTracked = f.maxTracked
	lc.WakeupInterval = f.wakeup
	dc := decode.DefaultOptions()
	dc.MaxMessage = int(f.maxMessage)

	if f.cpuProfile != "" {
		pf, err := os.Create(f.cpuProfile)
		if err != nil {
			return fmt.Errorf("--cpu-profile: %w", err)
		}
		if err := pprof.StartCPUProfile(pf); err != nil {
			return fmt.Errorf("--cpu-profile: %w", err)
		}
		defer pprof.StopCPUProfile()
	}
	switch f.response {
	case "off", "monitor", "enforce":
	default:
		return fmt.Errorf("--response %q: must be off, monitor or enforce", f.response)
	}
	co := correlate.Options{Roots: f.roots, EgressAllow: f.egress, Learn: f.learn}
	if f.learn < 0 {
		return fmt.Errorf("--learn %v: must not be negative", f.learn)
	}
	for _, r := range f.roots {
		if !filepath.IsAbs(r) {
			return fmt.Errorf("--root %q: must be an absolute path", r)
		}
	}
	store, err := correlate.OpenStore(f.stateDir)
	if err != nil {
		return fmt.Errorf("--state-dir: %w", err)
	}
	co.Store = store
	var rs *correlate.RuleSet
	var loadRules func() (*correlate.RuleSet, error)
	rulesDir := ""
	if !f.noRules {
		rulesDir = f.rules
		if rulesDir == "" {
			if st, err := os.Stat(defaultRulesDir); err == nil && st.IsDir() {
				rulesDir = defaultRulesDir
			}
		}
		loadRules = func() (*correlate.RuleSet, error) { return loadRulesFrom(rulesDir) }
		if rs, err = loadRules(); err != nil {
			return fmt.Errorf("rules: %w", err)
		}
		log.Info("rules loaded", "rules", len(rs.Rules), "from", rs.Dir)
	}
	var ns *sink.NATS
	if f.natsURL != "" {
		if err := os.MkdirAll(f.stateDir, 0o700); err != nil {
			return err
		}
		ns, err = sink.NewNATS(sink.NATSConfig{URL: f.natsURL, Creds: f.natsCreds, NKeySeed: f.natsNKey,
			CAFile: f.natsCA, CertFile: f.natsCert, KeyFile: f.natsKey,
			Spool: filepath.Join(f.stateDir, "nats-spool.db"), Log: log})
		if err != nil {
			return err
		}
		defer func() {
			if !ns.Flush(5 * time.Second) {
				log.Warn("alerts left in the NATS spool; the next run sends them", "pending", ns.Pending())
			}
			ns.Close()
		}()
	}
	var falco *sink.Falco
	if f.falcoURL != "" {
		falco = sink.NewFalco(f.falcoURL)
		defer falco.Close()
	}
	ctx, force, reload := stopOnSignals(log)
	res, err := trace.Run(ctx, trace.Options{
		Loader: lc, Decode: dc, Format: f.output, Color: color, Out: out,
		PIDs: f.pids, Command: args, Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr,
		RelayStderr: relay, Force: force, StatsEvery: f.statsEvery, OrderWindow: f.order, NoTLS: f.noTLS, Log: log,
		Rules: rs, LoadRules: loadRules, RulesDir: rulesDir, Reload: reload, Correlate: co,
		Response: f.response, StateDir: f.stateDir, Sensitive: sensitiveGlobs(rs), NATS: ns, Falco: falco,
	})
	var le *loader.LoadError
	if errors.As(err, &le) {
		// say which kernel feature is missing, if one is
		for _, m := range loader.Missing(loader.Probe()) {
			log.Error("this kernel lacks a required feature", "feature", m.Name, "detail", m.Detail)
		}
		return fmt.Errorf("%w (see `sensor probe`)", err)
	}
	if len(args) == 0 || res.ExitCode < 0 {
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

// stopOnSignals cancels the context on the first SIGINT or SIGTERM (stop
// tracing, stop a traced command gracefully) and closes force on the second
// (kill the command now). SIGHUP asks for the rules to be reloaded.
func stopOnSignals(log hclog.Logger) (context.Context, <-chan struct{}, <-chan struct{}) {
	ctx, cancel := context.WithCancel(context.Background())
	force := make(chan struct{})
	reload := make(chan struct{}, 1)
	sigs := make(chan os.Signal, 2)
	hup := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	signal.Notify(hup, syscall.SIGHUP)
	go func() {
		for range hup {
			select {
			case reload <- struct{}{}:
			default:
			}
		}
	}()
	go func() {
		sig := <-sigs
		log.Info("stopping", "signal", sig.String())
		cancel()
		<-sigs
		log.Info("second signal: killing the traced command now")
		close(force)
	}()
	return ctx, force, reload
}

// defaultRulesDir is where a site keeps its own rules.
const defaultRulesDir = "/etc/mcp-sensor/rules"

// loadRulesFrom loads a rule directory, or the built-in set for "".
func loadRulesFrom(dir string) (*correlate.RuleSet, error) {
	if dir == "" {
		return correlate.LoadFS(rules.Files, "built-in")
	}
	return correlate.LoadDir(dir)
}

// checkPID accepts a running process, by its process id (not a thread's),
// other than the sensor itself.
func checkPID(p int) error {
	if p <= 0 {
		return fmt.Errorf("--pid %d: not a process id", p)
	}
	if p == os.Getpid() {
		return fmt.Errorf("--pid %d: that is the sensor itself", p)
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p))
	if err != nil {
		return fmt.Errorf("--pid %d: no such process", p)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "Tgid:"); ok && strings.TrimSpace(v) != strconv.Itoa(p) {
			return fmt.Errorf("--pid %d: a thread of process %s; give the process id", p, strings.TrimSpace(v))
		}
	}
	return nil
}

// sensitiveGlobs are the files whose read taints a server: the rules'
// credential_paths, or the built-in list when judging with no rules.
func sensitiveGlobs(rs *correlate.RuleSet) []string {
	if l := rs.List("credential_paths"); l != nil {
		return l
	}
	if builtin, err := loadRulesFrom(""); err == nil {
		return builtin.List("credential_paths")
	}
	return nil
}
