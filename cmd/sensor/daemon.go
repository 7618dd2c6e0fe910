package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/mattn/go-isatty"
	"github.com/spf13/cobra"

	"github.com/mcpsec/sensor/pkg/config"
	"github.com/mcpsec/sensor/pkg/contain"
	"github.com/mcpsec/sensor/pkg/control"
	"github.com/mcpsec/sensor/pkg/correlate"
	"github.com/mcpsec/sensor/pkg/pipeline"
	"github.com/mcpsec/sensor/pkg/proc"
	"github.com/mcpsec/sensor/pkg/sink"
)

func newDaemonCmd() *cobra.Command {
	var cc *command
	cmd := &cobra.Command{
		Use:   "daemon [--config FILE]",
		Short: "Run the sensor as a service: discover, trace, judge, contain and report",
		Long: `daemon is the long-running service (see packaging/mcp-sensor.service). It
discovers MCP servers on the host (processes whose stdio carries an MCP
handshake, plus the config's explicit selectors), traces them, judges them
with the rules and baselines, contains them by the profile's response, and
reports alerts: JSON lines on stdout and in the alerts file, NATS JetStream,
Falco-shaped HTTP, the audit trail, Prometheus metrics. It answers
"sensor status", "sensor alerts" and "sensor servers" on its control socket.
With no configuration file it runs on the built-in default.

Every key of the configuration file is also a flag and an MCPSEC_ variable;
flags win over variables, variables over the file.

SIGTERM or SIGINT stops it; SIGHUP reloads the rules.`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			l, err := cc.load(c)
			if err != nil {
				return err
			}
			return runDaemon(c, l)
		},
	}
	cc = bindConfig(cmd, config.Daemon, config.DefaultPath)
	return cmd
}

func runDaemon(c *cobra.Command, l config.Loaded) error {
	cfg := l.Config
	log := newLog(cfg.LogLevel)
	if os.Geteuid() != 0 {
		return errors.New("sensor daemon loads eBPF programs and needs root")
	}
	source := l.File
	if source == "" {
		source = "built-in default (no " + config.DefaultPath + ")"
	}
	prof, mode := cfg.Effective()
	log.Info("starting", "version", version, "config", source, "profile", prof.Name, "response", mode,
		"state_dir", cfg.StateDir, "alerts_file", cfg.AlertsFile, "nats", cfg.NATS.URL != "")
	// alerts on stdout: lines a person reads on a terminal (servers found
	// and gone, alerts, containment), JSON lines otherwise (journald); the
	// alerts file is JSON lines
	var outs []pipeline.Output
	if cfg.AlertsStdout {
		tty := isatty.IsTerminal(os.Stdout.Fd())
		format := cfg.Output
		if format == "auto" {
			format = map[bool]string{true: "text", false: "json"}[tty]
		}
		only := []string{"alerts", "stats"}
		if format == "text" {
			only = []string{"alerts", "servers"}
		}
		outs = append(outs, pipeline.Output{Name: "stdout", W: c.OutOrStdout(), Format: format, Only: only,
			Color: cfg.Color == "always" || (cfg.Color == "auto" && tty)})
	}
	var ocsfFile io.Writer
	if cfg.AlertsFile != "" {
		if err := os.MkdirAll(filepath.Dir(cfg.AlertsFile), 0o750); err != nil {
			return fmt.Errorf("making the alerts file's directory (alerts_file from %s): %w", l.Sources.Of("alerts_file"), err)
		}
		fh, err := os.OpenFile(cfg.AlertsFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
		if err != nil {
			return fmt.Errorf("opening the alerts file (alerts_file from %s): %w", l.Sources.Of("alerts_file"), err)
		}
		defer fh.Close()
		if cfg.AlertsFormat == "ocsf" {
			ocsfFile = fh // written with each alert's audit record
		} else {
			outs = append(outs, pipeline.Output{Name: "alerts_file", W: fh, Format: "json", Only: []string{"alerts"}})
		}
	}
	pids, cgroups := resolveSelectors(cfg.Servers, log)
	ctx, force, sighup := stopOnSignals(log)
	// rules are read again on SIGHUP and when a verdict writes an exception
	reload := make(chan struct{}, 1)
	askReload := func() {
		select {
		case reload <- struct{}{}:
		default:
		}
	}
	go func() {
		for range sighup {
			askReload()
		}
	}()
	var handle struct {
		sync.Mutex
		h *pipeline.Handle
	}
	current := func() *pipeline.Handle {
		handle.Lock()
		defer handle.Unlock()
		return handle.h
	}
	started := time.Now()
	var mem *member
	var indicators func(typ, value string) string
	if cfg.Fleet.Enabled {
		mem = newMember(cfg, log)
		indicators = mem.indicators
	}
	var p *pipeline.Pipeline
	p, err := pipeline.New(pipeline.Options{
		Command: config.Daemon, Config: cfg, Outputs: outs, Version: version, Log: log, OCSFLines: ocsfFile, Indicators: indicators,
		Force: force, Reload: reload,
		Target: pipeline.Target{PIDs: pids, Cgroups: cgroups, Discover: cfg.Discover},
		Ready: func(h pipeline.Handle) {
			handle.Lock()
			handle.h = &h
			handle.Unlock()
			log.Info("ready", "control", cfg.ControlSocket)
			sdNotify("READY=1")
			if p.NATS() != nil {
				go heartbeats(ctx, p.NATS(), h, started)
			}
			if mem != nil {
				go mem.run(ctx, p, h)
			}
		},
	})
	if err != nil {
		return err
	}
	defer p.Close()
	var metAddr string
	if cfg.MetricsAddr != "" {
		a, err := p.Metrics().Serve(ctx, cfg.MetricsAddr)
		if err != nil {
			return fmt.Errorf("serving metrics (metrics_addr %s from %s): %w", cfg.MetricsAddr, l.Sources.Of("metrics_addr"), err)
		}
		metAddr = a.String()
		log.Info("metrics", "addr", "http://"+metAddr+"/metrics")
	}
	rules := 0
	if r := p.Rules(); r != nil {
		rules = len(r.Rules)
	}
	fc := &face{p: p, cfg: cfg, current: current, reload: askReload, mode: mode, member: mem}
	if mem != nil {
		p.Subscribe(pipeline.OnAlert("fleet", mem.alert))
	}
	p.Metrics().AddPosture(fc.last24h)
	handlers := control.Handlers{
		More: fc.commands(),
		Status: func() any {
			h := current()
			st := map[string]any{"ready": h != nil, "version": version, "pid": os.Getpid(), "since": started,
				"profile": prof.Name, "response": mode, "rules": rules, "metrics": metAddr, "state_dir": p.StateDir()}
			if h != nil {
				s := h.Stats()
				st["stats"] = s
				st["servers"] = s.Servers
			}
			if mem != nil {
				st["fleet"] = mem.stats()
			}
			return st
		},
		Contain: func(req control.Request, uid uint32) (any, error) {
			h := current()
			if h == nil {
				return nil, errors.New("the daemon is not ready yet")
			}
			t, err := targetOf(*h, req)
			if err != nil {
				return nil, err
			}
			by := byWhom(req, uid)
			ct, at, err := h.Contain(t, by)
			auditAction(p.StateDir(), "contain", ct.Cgroup, ct.Name, by, err)
			if err != nil {
				return nil, err
			}
			return map[string]any{"result": fmt.Sprintf("contained %s (%s, frozen at %s, egress %s)", ct.Cgroup, nameOr(ct.Name, t),
				at.Format(time.RFC3339Nano), ct.Egress), "contained": ct}, nil
		},
		Release: func(req control.Request, uid uint32) (any, error) {
			h := current()
			if h == nil {
				return nil, errors.New("the daemon is not ready yet")
			}
			if req.ServersOnly {
				if _, err := targetOf(*h, req); err != nil {
					return nil, err
				}
			}
			path := req.Cgroup
			if path == "" && req.PID > 0 {
				rel, err := contain.CgroupOfPID(proc.Host, req.PID)
				if err != nil {
					return nil, fmt.Errorf("--pid %d: %w", req.PID, err)
				}
				path = strings.TrimPrefix(rel, "/")
			}
			by := byWhom(req, uid)
			err := h.Release(path, by)
			auditAction(p.StateDir(), "release", path, "", by, err)
			if err != nil {
				return nil, err
			}
			return map[string]string{"result": "released " + path}, nil
		},
		Servers: func() any {
			h := current()
			if h == nil {
				return []any{}
			}
			return h.Servers()
		},
	}
	ctl, err := control.Listen(cfg.ControlSocket, handlers)
	if err != nil {
		return err
	}
	defer ctl.Close()
	if cfg.Dashboard.Listen != "" {
		dash, err := startDashboard(ctx, cfg, p, handlers, log)
		if err != nil {
			return err
		}
		if dash != nil {
			p.Subscribe(dashboardSubscriber(dash))
		}
	}
	p.Subscribe(pipeline.OnAlert("control", func(a *correlate.Alert) { ctl.Alert(a) }))
	if len(outs) == 0 || outs[0].Format != "text" {
		// no lines for people on stdout: servers found and gone go to the log
		p.Subscribe(pipeline.Subscriber{Name: "servers_log", Want: func(it pipeline.Item) bool { return it.Server != nil },
			Handle: func(items []pipeline.Item) error {
				for _, it := range items {
					s := it.Server.Info
					log.Info("server "+it.Server.State, "server", s.Name, "pid", s.PID, "command", s.Command, "roots", s.Roots)
				}
				return nil
			}})
	}
	if cfg.Gateway.Listen != "" {
		// the Streamable HTTP gateway of the configuration's gateway
		// section, its decisions in the daemon's audit trail
		dec := newDecisions(p, log)
		defer dec.close()
		go func() {
			if err := serveGateway(ctx, l, dec.add, log); err != nil {
				log.Error("the gateway stopped", "error", err)
			}
		}()
	}
	_, err = p.Run(ctx)
	sdNotify("STOPPING=1")
	return loadFailed(err, log)
}

// targetOf is the server a request names, by pid (its tree's root) or
// cgroup. A request that may name only servers (the dashboard's, the MCP
// face's) is refused for anything else.
func targetOf(h pipeline.Handle, req control.Request) (contain.Target, error) {
	t := contain.Target{PID: req.PID, Cgroup: req.Cgroup}
	if req.PID > 0 {
		if s, ok := h.ServerOf(req.PID); ok {
			t.Server, t.Name, t.PID = s.ID, s.Name, int(s.PID)
		}
	}
	if req.ServersOnly && (t.Server == "" || req.Cgroup != "") {
		return t, fmt.Errorf("refused: pid %d is not an MCP server the daemon follows (this caller may act on those only)", req.PID)
	}
	return t, nil
}

// byWhom names who acts: the caller's uid, and their reason.
func byWhom(req control.Request, uid uint32) string {
	by := fmt.Sprint("uid ", uid)
	if r := strings.TrimSpace(req.Reason); r != "" {
		by += " (" + r + ")"
	}
	return by
}

func nameOr(name string, t contain.Target) string {
	if name != "" {
		return name
	}
	if t.PID > 0 {
		return fmt.Sprint("pid ", t.PID)
	}
	return t.Cgroup
}

// auditAction records a containment action someone asked for.
func auditAction(stateDir, action, cgroup, name, by string, err error) {
	ev := contain.AuditEvent{Action: action, Cgroup: cgroup, Server: name, By: by}
	if err != nil {
		ev.Errors = []string{err.Error()}
	}
	_ = contain.Audit(stateDir, ev)
}

// sdNotify tells systemd (Type=notify) where the daemon is.
func sdNotify(state string) {
	sock := os.Getenv("NOTIFY_SOCKET")
	if sock == "" {
		return
	}
	if sock[0] == '@' {
		sock = "\x00" + sock[1:]
	}
	c, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		return
	}
	defer c.Close()
	_, _ = c.Write([]byte(state))
}

// controlClient commands: status, alerts, servers.
// resolveSelectors turns the configuration's explicit selectors into the
// processes to trace now and the cgroups whose future processes are traced.
func resolveSelectors(sels []config.Selector, log hclog.Logger) ([]int, []uint64) {
	var pids []int
	var cgroups []uint64
	addCgroup := func(path string) {
		cg, err := contain.Open(path)
		if err != nil {
			log.Warn("server selector: no such cgroup", "cgroup", path, "error", err)
			return
		}
		defer cg.Close()
		cgroups = append(cgroups, cg.ID)
		procs, _ := cg.Procs()
		pids = append(pids, procs...)
	}
	for _, sel := range sels {
		switch {
		case sel.PID != 0:
			pids = append(pids, sel.PID)
		case sel.Cgroup != "":
			addCgroup(sel.Cgroup)
		case sel.Unit != "":
			root, err := contain.Cgroup2Root()
			if err != nil {
				log.Warn("server selector: no cgroup2", "unit", sel.Unit, "error", err)
				continue
			}
			found := false
			for _, slice := range []string{"system.slice", "user.slice", ""} {
				p := filepath.Join(root, slice, sel.Unit)
				if st, err := os.Stat(p); err == nil && st.IsDir() {
					addCgroup(p)
					found = true
					break
				}
			}
			if !found {
				log.Warn("server selector: the unit has no cgroup (not running?)", "unit", sel.Unit)
			}
		case sel.Command != "":
			ents, _ := os.ReadDir("/proc")
			for _, e := range ents {
				pid, err := strconv.Atoi(e.Name())
				if err != nil || pid == os.Getpid() {
					continue
				}
				b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
				if err != nil || len(b) == 0 {
					continue
				}
				cmdline := strings.TrimRight(strings.ReplaceAll(string(b), "\x00", " "), " ")
				if ok, _ := filepath.Match(sel.Command, cmdline); ok {
					pids = append(pids, pid)
				}
			}
		}
	}
	return pids, cgroups
}

// heartbeats tells the SOC the sensor is alive, every 30 s.
func heartbeats(ctx context.Context, ns *sink.NATS, h pipeline.Handle, started time.Time) {
	t := time.NewTicker(30 * time.Second)
	defer t.Stop()
	for {
		st := h.Stats()
		_ = ns.Heartbeat(map[string]any{"ts": time.Now(), "version": version, "since": started,
			"servers": st.Servers, "events": st.Events, "drops": st.Drops, "alerts": st.Correlate.Alerts})
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
