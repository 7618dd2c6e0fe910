package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/spf13/cobra"

	"github.com/mcpsec/sensor/pkg/contain"
	"github.com/mcpsec/sensor/pkg/correlate"
	"github.com/mcpsec/sensor/pkg/decode"
	"github.com/mcpsec/sensor/pkg/loader"
	"github.com/mcpsec/sensor/pkg/trace"
)

// helperArg names the launch helper: `sensor run` re-executes itself with it
// so the seccomp filters are installed between fork and exec, which Go
// cannot do in the child of a fork.
const helperArg = "__seccomp-exec"

func init() {
	if len(os.Args) > 1 && os.Args[1] == helperArg {
		// the filters go on this thread, which then execs
		runtime.LockOSThread()
	}
}

// runHelper installs the filters, hands the listener to `sensor run` on fd
// 3, and execs the server. It never returns on success.
func runHelper(args []string) int {
	supervise := len(args) > 0 && args[0] == "supervise"
	if len(args) < 2 || args[1] != "--" || len(args) < 3 {
		fmt.Fprintln(os.Stderr, "sensor: the launch helper is started by `sensor run` only")
		return 2
	}
	argv := args[2:]
	path, err := exec.LookPath(argv[0])
	if err != nil {
		fmt.Fprintf(os.Stderr, "sensor run: %v\n", err)
		return 127
	}
	fd, err := contain.InstallFilters(supervise)
	if err != nil {
		fmt.Fprintf(os.Stderr, "sensor run: %v\n", err)
		return 126
	}
	if supervise {
		sock := os.NewFile(3, "supervisor")
		if err := contain.SendFD(sock, fd); err != nil {
			fmt.Fprintf(os.Stderr, "sensor run: handing over the seccomp listener: %v\n", err)
			return 126
		}
		sock.Close()
		syscall.Close(fd)
	}
	err = syscall.Exec(path, argv, os.Environ())
	fmt.Fprintf(os.Stderr, "sensor run: exec %s: %v\n", path, err)
	return 126
}

// profiles of `sensor run`: at which severity an alert tightens the server
// (its next exec is refused), and whether connects are refused too.
var runProfiles = map[string]struct {
	tightenAt string
	connects  bool
	response  string
}{
	"baseline":   {"critical", false, "monitor"},
	"enterprise": {"high", false, "enforce"},
	"strict":     {"medium", true, "enforce"},
}

func newRunCmd() *cobra.Command {
	var profile, out, stateDir, rulesDir string
	var allowUnprotected bool
	cmd := &cobra.Command{
		Use:   "run [--profile P] -- COMMAND [ARGS...]",
		Short: "Launch an MCP server under the sensor: seccomp, its own cgroup, rules that tighten it at run time",
		Long: `run is what an MCP client's "mcpServers" entry starts instead of the server:

  "command": "sensor", "args": ["run", "--", "npx", "-y", "some-mcp-server"]

The server's stdio passes straight through (no proxy). It runs in a cgroup of
its own, under a seccomp filter that refuses escape syscalls (ptrace, mount,
unshare, setns, module loading, bpf, kexec, keyctl, io_uring, ...), and a
user-notification filter on exec and connect answered by this process: after
an alert at or above the profile's severity, the server's next exec (and, in
the strict profile, connect) is refused with EPERM while it keeps answering
other calls. The trace (messages, effects, alerts) goes to --out.

Profiles (--profile, or SECURITY_PROFILE): baseline (tighten on critical),
enterprise (tighten on high; containment enforced), strict (tighten on medium,
connects too). THREAT_DETECTION=realtime (the default) judges with the rules;
ADAPTIVE_DEFENSE=enabled learns baselines and alerts on anomalies;
COMPLIANCE_MODE=strict requires the audit log (--out) to be writable.

Without root it cannot load the sensor: it refuses to start the server
unprotected unless --allow-unprotected (then only the seccomp baseline holds).
If this process dies, the server's supervised syscalls fail: fail-closed.`,
		Args: cobra.ArbitraryArgs,
		RunE: func(c *cobra.Command, args []string) error {
			if c.ArgsLenAtDash() != 0 || len(args) == 0 {
				return errors.New("give the server's command after --")
			}
			if err := applyEnv(c); err != nil {
				return err
			}
			if v := os.Getenv("SECURITY_PROFILE"); v != "" && !c.Flags().Changed("profile") {
				profile = v
			}
			prof, ok := runProfiles[profile]
			if !ok {
				return fmt.Errorf("--profile %q: must be baseline, enterprise or strict", profile)
			}
			log := hclog.New(&hclog.LoggerOptions{Name: "sensor", Level: hclog.Info, Output: os.Stderr, JSONFormat: true})
			self, err := os.Executable()
			if err != nil {
				return err
			}
			if os.Geteuid() != 0 {
				if !allowUnprotected {
					return errors.New("sensor run needs root to load the sensor (and there is no daemon to register with); refusing to start the server unprotected (--allow-unprotected runs it under the seccomp baseline only)")
				}
				log.Warn("running unprotected: the seccomp baseline only, no tracing, no tightening")
				hc := exec.Command(self, append([]string{helperArg, "baseline", "--"}, args...)...)
				hc.Stdin, hc.Stdout, hc.Stderr = os.Stdin, os.Stdout, os.Stderr
				if err := hc.Run(); err != nil {
					var ee *exec.ExitError
					if errors.As(err, &ee) {
						return exitError{ee.ExitCode()}
					}
					return err
				}
				return nil
			}
			if out == "" {
				out = filepath.Join(stateDir, fmt.Sprintf("run-%d.jsonl", os.Getpid()))
			}
			if err := os.MkdirAll(filepath.Dir(out), 0o700); err != nil {
				return err
			}
			fh, err := os.OpenFile(out, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
			if err != nil {
				if os.Getenv("COMPLIANCE_MODE") == "strict" {
					return fmt.Errorf("COMPLIANCE_MODE=strict: the audit log %s is not writable: %w", out, err)
				}
				return err
			}
			defer fh.Close()
			var rs *correlate.RuleSet
			var load func() (*correlate.RuleSet, error)
			if td := os.Getenv("THREAT_DETECTION"); td == "" || td == "realtime" {
				load = func() (*correlate.RuleSet, error) { return loadRulesFrom(rulesDir) }
				if rs, err = load(); err != nil {
					return err
				}
			}
			learn := time.Duration(0)
			if os.Getenv("ADAPTIVE_DEFENSE") == "enabled" {
				learn = 10 * time.Minute
			}
			store, err := correlate.OpenStore(stateDir)
			if err != nil {
				return err
			}
			parent, child, err := socketpair()
			if err != nil {
				return err
			}
			defer parent.Close()
			var sup *contain.Supervisor
			var supMu sync.Mutex
			lc := loader.DefaultConfig()
			ctx, force, reload := stopOnSignals(log)
			res, err := trace.Run(ctx, trace.Options{
				Loader: lc, Decode: decode.DefaultOptions(), Format: "json", Out: fh,
				Command: append([]string{self, helperArg, "supervise", "--"}, args...),
				Stdin:   os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr, Force: force,
				OrderWindow: trace.DefaultOrderWindow, Log: log,
				Rules: rs, LoadRules: load, RulesDir: rulesDir, Reload: reload,
				Correlate: correlate.Options{Store: store, Learn: learn},
				Response:  prof.response, StateDir: stateDir, Sensitive: sensitiveGlobs(rs),
				Launch: func(cmd *exec.Cmd) { cmd.ExtraFiles = []*os.File{child} },
				Started: func(*exec.Cmd) error {
					child.Close()
					fd, err := contain.RecvFD(parent)
					if err != nil {
						return fmt.Errorf("the launch helper did not hand over its seccomp listener: %w", err)
					}
					s := contain.NewSupervisor(fd)
					s.OnRefused = func(pid uint32, what string) {
						log.Warn("refused", "syscall", what, "pid", pid, "why", "the server was tightened after an alert")
					}
					supMu.Lock()
					sup = s
					supMu.Unlock()
					return nil
				},
				OnAlert: func(a *correlate.Alert) {
					supMu.Lock()
					s := sup
					supMu.Unlock()
					if s == nil {
						return
					}
					if correlate.SeverityRank(a.Severity) >= correlate.SeverityRank(prof.tightenAt) || a.Action == "kill" || a.Action == "deny-exec" {
						if e, _ := s.Tightened(); !e {
							log.Warn("tightening the server: its next exec is refused", "rule", a.Rule, "severity", a.Severity)
						}
						s.Tighten(true, prof.connects)
					}
				},
			})
			if sup != nil {
				b, _ := json.Marshal(map[string]any{"kind": "stats", "ts": time.Now(), "pid": os.Getpid(), "tid": os.Getpid(), "server": "",
					"seccomp": map[string]uint64{"allowed": sup.Allowed.Load(), "refused": sup.Refused.Load()}})
				fmt.Fprintln(fh, string(b))
				sup.Close()
			}
			var le *loader.LoadError
			if errors.As(err, &le) {
				return fmt.Errorf("%w (see `sensor probe`)", err)
			}
			if err != nil {
				fmt.Fprintln(os.Stderr, "sensor:", err)
			}
			if res.ExitCode > 0 {
				return exitError{res.ExitCode}
			}
			if err != nil && res.ExitCode < 0 {
				return err
			}
			return nil
		},
	}
	fl := cmd.Flags()
	fl.SetInterspersed(false)
	fl.StringVar(&profile, "profile", "baseline", "baseline, enterprise or strict (or SECURITY_PROFILE)")
	fl.StringVar(&out, "out", "", "the trace and audit log, JSON lines (default: STATE-DIR/run-PID.jsonl)")
	fl.StringVar(&stateDir, "state-dir", "/var/lib/mcp-sensor", "state directory (tool definitions, baselines, containment)")
	fl.StringVar(&rulesDir, "rules", "", "rule directory (default: the built-in rules)")
	fl.BoolVar(&allowUnprotected, "allow-unprotected", false, "without root, run the server under the seccomp baseline only instead of refusing")
	return cmd
}

func socketpair() (*os.File, *os.File, error) {
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, nil, err
	}
	return os.NewFile(uintptr(fds[0]), "supervisor"), os.NewFile(uintptr(fds[1]), "helper"), nil
}
