package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/spf13/cobra"

	"github.com/mcpsec/sensor/pkg/config"
	"github.com/mcpsec/sensor/pkg/contain"
	"github.com/mcpsec/sensor/pkg/correlate"
	"github.com/mcpsec/sensor/pkg/gateway"
	"github.com/mcpsec/sensor/pkg/pipeline"
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

func newRunCmd() *cobra.Command {
	var allowUnprotected bool
	var cc *command
	cmd := &cobra.Command{
		Use:   "run [flags] [--] COMMAND [ARGS...]",
		Short: "Launch an MCP server under the sensor: seccomp, its own cgroup, rules that tighten it at run time",
		Long: `run is what an MCP client's "mcpServers" entry starts instead of the server:

  "command": "sensor", "args": ["run", "--", "npx", "-y", "some-mcp-server"]

The server's stdio passes through a gateway that enforces a policy (--policy
FILE; see sensor policy): a request the policy refuses is answered with a
JSON-RPC error naming the policy and the reason and never reaches the server;
tools/list, resources/list and prompts/list show only what is allowed; results
carrying secrets or instructions for the model are redacted (the built-in
policy) or withheld; a frozen server's calls are answered with an error at
once. Everything allowed passes byte for byte. A server that reads a
credential file is refused the network in the kernel, in every profile, and
still answers. It runs in a cgroup of
its own, under a seccomp filter that refuses escape syscalls (ptrace, mount,
unshare, setns, module loading, bpf, kexec, keyctl, io_uring, ...), and a
user-notification filter on exec and connect answered by this process: after
an alert at or above the profile's severity, the server's next exec (and, in
the strict profile, connect) is refused with EPERM while it keeps answering
other calls. The trace (messages, effects, alerts) goes to --out.

Profiles (--profile, or SECURITY_PROFILE) mean what they mean everywhere:
baseline (monitor; tighten on critical), enterprise (containment enforced;
tighten on high), strict (enforced; tighten on medium, connects too).
THREAT_DETECTION=realtime (the default) judges with the rules;
ADAPTIVE_DEFENSE=enabled learns baselines and alerts on anomalies;
COMPLIANCE_MODE=strict requires the audit trail to be writable.

Without root it cannot load the sensor: it refuses to start the server
unprotected unless --allow-unprotected (then only the seccomp baseline holds).
If this process dies, the server's supervised syscalls fail: fail-closed.`,
		Args: cobra.ArbitraryArgs,
		RunE: func(c *cobra.Command, args []string) error {
			if len(args) == 0 {
				return errors.New("give the server's command: sensor run -- COMMAND [ARGS...]")
			}
			l, err := cc.load(c)
			if err != nil {
				return err
			}
			return runServer(c, l, args, allowUnprotected)
		},
	}
	fl := cmd.Flags()
	fl.SetInterspersed(false)
	cc = bindConfig(cmd, config.Run, "")
	fl.BoolVar(&allowUnprotected, "allow-unprotected", false, "without root, run the server under the seccomp baseline only instead of refusing")
	return cmd
}

// runServer launches the server under the pipeline and the seccomp
// supervisor, and exits with its exit code.
func runServer(c *cobra.Command, l config.Loaded, args []string, allowUnprotected bool) error {
	cfg := l.Config
	log := hclog.New(&hclog.LoggerOptions{Name: "sensor", Level: hclog.LevelFromString(cfg.LogLevel), Output: os.Stderr, JSONFormat: true})
	prof, mode := cfg.Effective()
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
	if cfg.Out == "" {
		cfg.Out = filepath.Join(cfg.StateDir, fmt.Sprintf("run-%d.jsonl", os.Getpid()))
	}
	if err := os.MkdirAll(filepath.Dir(cfg.Out), 0o700); err != nil {
		return fmt.Errorf("making the trace's directory: %w", err)
	}
	fh, err := os.OpenFile(cfg.Out, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		if cfg.Compliance == "strict" {
			return fmt.Errorf("compliance strict: the trace %s is not writable: %w", cfg.Out, err)
		}
		return fmt.Errorf("opening the trace (%s %s): %w", l.Sources.Of("out"), cfg.Out, err)
	}
	defer fh.Close()
	parent, child, err := socketpair()
	if err != nil {
		return err
	}
	defer parent.Close()
	// the gateway sits between the client's stdio and the server's
	set := gateway.Default()
	if cfg.Policy != "" {
		if set, err = gateway.Load(cfg.Policy); err != nil {
			return fmt.Errorf("%s: %w", l.Sources.Of("policy"), err)
		}
	}
	sinR, sinW, err := blockingPipe()
	if err != nil {
		return fmt.Errorf("making the server's stdin: %w", err)
	}
	soutR, soutW, err := blockingPipe()
	if err != nil {
		return fmt.Errorf("making the server's stdout: %w", err)
	}
	view := &serverView{command: strings.Join(args, " "), self: self}
	var g *gateway.Gateway
	gwDone := make(chan error, 1)
	var sup *contain.Supervisor
	var supMu sync.Mutex
	ctx, force, reload := stopOnSignals(log)
	p, err := pipeline.New(pipeline.Options{
		Command: config.Run, Config: cfg, Version: version, Log: log, Force: force, Reload: reload,
		Outputs: []pipeline.Output{{Name: "output", W: fh, Format: "json"}},
		Target: pipeline.Target{
			Command: append([]string{self, helperArg, "supervise", "--"}, args...),
			Stdin:   sinR, Stdout: soutW, Stderr: os.Stderr,
			Launch: func(cmd *exec.Cmd) { cmd.ExtraFiles = []*os.File{child} },
			Started: func(cmd *exec.Cmd) error {
				child.Close()
				sinR.Close()
				soutW.Close()
				view.mu.Lock()
				view.pid = cmd.Process.Pid
				view.mu.Unlock()
				go func() { gwDone <- g.Run(os.Stdin, os.Stdout, sinW, soutR) }()
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
		},
	})
	if err != nil {
		return err
	}
	defer p.Close()
	dec := newDecisions(p, log)
	g = wireGateway(p, set, view, int(cfg.MaxMessage), dec, log)
	p.Subscribe(pipeline.OnAlert("tighten", func(a *correlate.Alert) {
		supMu.Lock()
		s := sup
		supMu.Unlock()
		if s == nil {
			return
		}
		if correlate.SeverityRank(a.Severity) >= correlate.SeverityRank(prof.TightenAt) || a.Action == "kill" || a.Action == "deny-exec" {
			if e, _ := s.Tightened(); !e {
				log.Warn("tightening the server: its next exec is refused", "rule", a.Rule, "severity", a.Severity, "profile", prof.Name)
			}
			s.Tighten(true, prof.TightenConnects)
		}
	}))
	log.Info("running the server under the sensor", "profile", prof.Name, "response", mode, "trace", cfg.Out,
		"policy", set.Source, "policy_version", set.Version)
	res, err := p.Run(ctx)
	select { // the server's last answers still on their way to the client
	case <-gwDone:
	case <-time.After(2 * time.Second):
	}
	dec.close()
	gs := &g.Stats
	b, _ := json.Marshal(map[string]any{"kind": "stats", "ts": time.Now(), "pid": os.Getpid(), "tid": os.Getpid(), "server": "",
		"gateway": map[string]uint64{"allowed": gs.Allowed.Load(), "denied": gs.Denied.Load(), "redacted": gs.Redacted.Load(),
			"filtered": gs.Filtered.Load(), "invalid": gs.Invalid.Load(), "oversized": gs.Oversized.Load(), "answered_contained": gs.Answered.Load(),
			"decisions_not_audited": dec.dropped.Load() + dec.failed.Load()}})
	fmt.Fprintln(fh, string(b))
	if sup != nil {
		b, _ := json.Marshal(map[string]any{"kind": "stats", "ts": time.Now(), "pid": os.Getpid(), "tid": os.Getpid(), "server": "",
			"seccomp": map[string]uint64{"allowed": sup.Allowed.Load(), "refused": sup.Refused.Load()}})
		fmt.Fprintln(fh, string(b))
		sup.Close()
	}
	err = loadFailed(err, log)
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
}

// blockingPipe is a pipe whose ends block: the gateway's reads wake its
// thread straight from the kernel, not through Go's poller and scheduler
// (a few hundred µs less per round trip on a busy host).
func blockingPipe() (*os.File, *os.File, error) {
	var fds [2]int
	if err := syscall.Pipe2(fds[:], syscall.O_CLOEXEC); err != nil {
		return nil, nil, err
	}
	return os.NewFile(uintptr(fds[0]), "pipe-r"), os.NewFile(uintptr(fds[1]), "pipe-w"), nil
}

func socketpair() (*os.File, *os.File, error) {
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, nil, err
	}
	return os.NewFile(uintptr(fds[0]), "supervisor"), os.NewFile(uintptr(fds[1]), "helper"), nil
}
