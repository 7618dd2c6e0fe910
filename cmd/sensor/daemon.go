package main

import (
	"context"
	"encoding/json"
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

	"github.com/mcpsec/sensor/pkg/audit"
	"github.com/mcpsec/sensor/pkg/config"
	"github.com/mcpsec/sensor/pkg/contain"
	"github.com/mcpsec/sensor/pkg/control"
	"github.com/mcpsec/sensor/pkg/correlate"
	"github.com/mcpsec/sensor/pkg/decode"
	"github.com/mcpsec/sensor/pkg/loader"
	"github.com/mcpsec/sensor/pkg/metrics"
	"github.com/mcpsec/sensor/pkg/sink"
	"github.com/mcpsec/sensor/pkg/trace"
)

func newDaemonCmd() *cobra.Command {
	var cfgPath string
	var over config.Config
	cmd := &cobra.Command{
		Use:   "daemon [--config FILE]",
		Short: "Run the sensor as a service: discover, trace, judge, contain and report",
		Long: `daemon is the long-running service (see packaging/mcp-sensor.service). It
discovers MCP servers on the host (processes whose stdio carries an MCP
handshake, plus the config's explicit selectors), traces them, judges them
with the rules and baselines, contains them by the configured response, and
reports alerts: JSON lines on stdout and in the alerts file, NATS JetStream,
Falco-shaped HTTP, the audit trail, Prometheus metrics. It answers
"sensor status", "sensor alerts" and "sensor servers" on its control socket.
With no configuration file it runs on the built-in default.

SIGTERM or SIGINT stops it; SIGHUP reloads the rules.`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			cfg, err := config.Load(cfgPath, c.Flags().Changed("config"))
			if err != nil {
				return err
			}
			// flags win over the file and the environment
			fl := c.Flags()
			set := func(name string, dst, src any) {
				if !fl.Changed(name) {
					return
				}
				switch d := dst.(type) {
				case *string:
					*d = *src.(*string)
				case *time.Duration:
					*d = *src.(*time.Duration)
				case *[]string:
					*d = *src.(*[]string)
				}
			}
			set("profile", &cfg.Profile, &over.Profile)
			set("response", &cfg.Response, &over.Response)
			set("state-dir", &cfg.StateDir, &over.StateDir)
			set("rules", &cfg.Rules, &over.Rules)
			set("learn", &cfg.Learn, &over.Learn)
			set("log-level", &cfg.LogLevel, &over.LogLevel)
			set("alerts-file", &cfg.AlertsFile, &over.AlertsFile)
			set("metrics-addr", &cfg.MetricsAddr, &over.MetricsAddr)
			set("control-socket", &cfg.ControlSocket, &over.ControlSocket)
			set("falco-url", &cfg.FalcoURL, &over.FalcoURL)
			set("nats-url", &cfg.NATS.URL, &over.NATS.URL)
			set("root", &cfg.Roots, &over.Roots)
			set("egress-allow", &cfg.EgressAllow, &over.EgressAllow)
			if err := cfg.Validate(); err != nil {
				return err
			}
			return runDaemon(c, cfg, cfgPath)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&cfgPath, "config", config.DefaultPath, "configuration file")
	// every key of the file has a flag (and MCPSEC_<KEY> in the environment)
	fl.StringVar(&over.Profile, "profile", "", "profile: baseline, enterprise or strict")
	fl.StringVar(&over.Response, "response", "", "containment: off, monitor or enforce")
	fl.StringVar(&over.StateDir, "state-dir", "", "state directory")
	fl.StringVar(&over.Rules, "rules", "", "rule directory (\"\": built-in)")
	fl.DurationVar(&over.Learn, "learn", 0, "baseline learning window")
	fl.StringVar(&over.LogLevel, "log-level", "", "log level")
	fl.StringVar(&over.AlertsFile, "alerts-file", "", "alerts as JSON lines to this file")
	fl.StringVar(&over.MetricsAddr, "metrics-addr", "", "Prometheus address (\"\": off)")
	fl.StringVar(&over.ControlSocket, "control-socket", "", "the control socket")
	fl.StringVar(&over.FalcoURL, "falco-url", "", "Falco-shaped HTTP output")
	fl.StringVar(&over.NATS.URL, "nats-url", "", "NATS server for alerts")
	fl.StringSliceVar(&over.Roots, "root", nil, "directories every server may use")
	fl.StringSliceVar(&over.EgressAllow, "egress-allow", nil, "destinations servers may reach")
	return cmd
}

func runDaemon(c *cobra.Command, cfg config.Config, cfgPath string) error {
	log := hclog.New(&hclog.LoggerOptions{Name: "sensor", Level: hclog.LevelFromString(cfg.LogLevel), Output: os.Stderr,
		JSONFormat: !isatty.IsTerminal(os.Stderr.Fd())})
	if os.Geteuid() != 0 {
		return errors.New("sensor daemon loads eBPF programs and needs root")
	}
	source := cfgPath
	if _, err := os.Stat(cfgPath); err != nil {
		source = "built-in default (no " + cfgPath + ")"
	}
	log.Info("starting", "version", version, "config", source, "profile", cfg.Profile, "response", cfg.Response,
		"state_dir", cfg.StateDir, "alerts_file", cfg.AlertsFile, "nats", cfg.NATS.URL != "")
	if err := os.MkdirAll(cfg.StateDir, 0o700); err != nil {
		return err
	}
	// alerts: JSON lines on stdout (journald) and in the alerts file
	var outs []io.Writer
	if cfg.AlertsStdout {
		outs = append(outs, c.OutOrStdout())
	}
	if cfg.AlertsFile != "" {
		if err := os.MkdirAll(filepath.Dir(cfg.AlertsFile), 0o750); err != nil {
			return err
		}
		fh, err := os.OpenFile(cfg.AlertsFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
		if err != nil {
			return fmt.Errorf("alerts_file: %w", err)
		}
		defer fh.Close()
		outs = append(outs, fh)
	}
	load := func() (*correlate.RuleSet, error) { return loadRulesFrom(cfg.Rules) }
	rs, err := load()
	if err != nil {
		return fmt.Errorf("rules: %w", err)
	}
	store, err := correlate.OpenStore(cfg.StateDir)
	if err != nil {
		return err
	}
	var ns *sink.NATS
	if cfg.NATS.URL != "" {
		ns, err = sink.NewNATS(sink.NATSConfig{URL: cfg.NATS.URL, Creds: cfg.NATS.Creds, NKeySeed: cfg.NATS.NKey,
			CAFile: cfg.NATS.CA, CertFile: cfg.NATS.Cert, KeyFile: cfg.NATS.Key, Duplicates: cfg.NATS.Duplicates,
			Spool: filepath.Join(cfg.StateDir, "nats-spool.db"), Log: log})
		if err != nil {
			return err
		}
		defer func() {
			ns.Flush(5 * time.Second)
			ns.Close()
		}()
	}
	var falco *sink.Falco
	if cfg.FalcoURL != "" {
		falco = sink.NewFalco(cfg.FalcoURL)
		defer falco.Close()
	}
	pids, cgroups := resolveSelectors(cfg.Servers, log)

	ctx, force, reload := stopOnSignals(log)
	var handle struct {
		sync.Mutex
		h *trace.Handle
	}
	snap := func() metrics.Snapshot {
		handle.Lock()
		h := handle.h
		handle.Unlock()
		if h == nil {
			return metrics.Snapshot{}
		}
		st := h.Stats()
		d := st.Decoder
		ms := metrics.Snapshot{Effects: st.Effects, Messages: st.Messages, Kernel: st.Kernel, Servers: len(h.Servers()), RingFill: st.RingFill,
			Decoder: map[string]uint64{"non_json": d.NonJSON, "gap_fragments": d.Fragments, "truncated": d.Truncated,
				"gap_bytes": d.Lines.GapBytes + d.HTTP.GapBytes, "lost_bodies": d.HTTP.LostBodies, "order_late": st.OrderLate}}
		if st.NATS != nil {
			ms.NATSPending, ms.NATSPublished = st.NATS.Pending, st.NATS.Published
		}
		return ms
	}
	met := metrics.New(snap)
	var metAddr string
	if cfg.MetricsAddr != "" {
		a, err := met.Serve(ctx, cfg.MetricsAddr)
		if err != nil {
			return fmt.Errorf("metrics_addr: %w", err)
		}
		metAddr = a.String()
		log.Info("metrics", "addr", "http://"+metAddr+"/metrics")
	}
	started := time.Now()
	// the configuration in force goes to the audit trail
	if cb, err := json.Marshal(cfg); err == nil {
		if l, err := audit.Open(filepath.Join(cfg.StateDir, contain.AuditDir), 64<<20); err == nil {
			if _, err := l.Append("config", map[string]any{"config": json.RawMessage(cb), "version": version}); err != nil {
				log.Warn("the configuration was not written to the audit trail", "error", err)
			}
		}
	}
	var ctl *control.Server
	ctl, err = control.Listen(cfg.ControlSocket, control.Handlers{
		Status: func() any {
			handle.Lock()
			h := handle.h
			handle.Unlock()
			st := map[string]any{"ready": h != nil, "version": version, "pid": os.Getpid(), "since": started,
				"profile": cfg.Profile, "response": cfg.Response, "rules": len(rs.Rules), "metrics": metAddr}
			if h != nil {
				s := h.Stats()
				st["stats"] = s
				st["servers"] = len(h.Servers())
			}
			return st
		},
		Contain: func(req control.Request, uid uint32) (any, error) {
			var out strings.Builder
			err := containServer(&out, &containFlags{cgroup: req.Cgroup, pid: req.PID, stateDir: cfg.StateDir})
			return map[string]string{"result": strings.TrimSpace(out.String())}, err
		},
		Release: func(req control.Request, uid uint32) (any, error) {
			var out strings.Builder
			err := releaseServer(&out, &containFlags{cgroup: req.Cgroup, pid: req.PID, stateDir: cfg.StateDir})
			return map[string]string{"result": strings.TrimSpace(out.String())}, err
		},
		Servers: func() any {
			handle.Lock()
			h := handle.h
			handle.Unlock()
			if h == nil {
				return []any{}
			}
			return h.Servers()
		},
	})
	if err != nil {
		return err
	}
	defer ctl.Close()
	lc := loader.DefaultConfig()
	res, err := trace.Run(ctx, trace.Options{
		Loader: lc, Decode: decode.DefaultOptions(), Format: "json", Out: io.MultiWriter(outs...),
		PIDs: pids, Cgroups: cgroups, Discover: true, OnlyAlerts: true, Force: force, StatsEvery: time.Minute,
		OrderWindow: trace.DefaultOrderWindow, Log: log,
		Rules: rs, LoadRules: load, RulesDir: cfg.Rules, Reload: reload,
		Correlate: correlate.Options{Store: store, Learn: cfg.Learn, Roots: cfg.Roots, EgressAllow: cfg.EgressAllow},
		Response:  cfg.Response, StateDir: cfg.StateDir, Sensitive: sensitiveGlobs(rs),
		NATS: ns, NATSEvents: cfg.NATS.Events, Falco: falco, Metrics: met,
		OnAlert: func(a *correlate.Alert) { ctl.Alert(a) },
		Ready: func(h trace.Handle) {
			handle.Lock()
			handle.h = &h
			handle.Unlock()
			log.Info("ready", "control", cfg.ControlSocket)
			sdNotify("READY=1")
			if ns != nil {
				go heartbeats(ctx, ns, h, started)
			}
		},
	})
	_ = res
	sdNotify("STOPPING=1")
	return err
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
func newStatusCmds() []*cobra.Command {
	sockFlag := func(c *cobra.Command, p *string) {
		c.Flags().StringVar(p, "socket", config.Default().ControlSocket, "the daemon's control socket")
	}
	var s1, s2, s3 string
	var follow bool
	var last int
	status := &cobra.Command{Use: "status", Short: "Show the daemon's state and counters", Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			return control.Call(s1, control.Request{Cmd: "status"}, func(b []byte) error {
				var v any
				_ = json.Unmarshal(b, &v)
				out, _ := json.MarshalIndent(v, "", "  ")
				fmt.Fprintln(c.OutOrStdout(), string(out))
				return nil
			})
		}}
	sockFlag(status, &s1)
	alerts := &cobra.Command{Use: "alerts [--follow]", Short: "Print the daemon's recent alerts (JSON lines)", Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			return control.Call(s2, control.Request{Cmd: "alerts", Follow: follow, Last: last}, func(b []byte) error {
				_, err := fmt.Fprintln(c.OutOrStdout(), string(b))
				return err
			})
		}}
	sockFlag(alerts, &s2)
	alerts.Flags().BoolVarP(&follow, "follow", "f", false, "keep printing new alerts")
	alerts.Flags().IntVar(&last, "last", 100, "how many recent alerts")
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
func heartbeats(ctx context.Context, ns *sink.NATS, h trace.Handle, started time.Time) {
	t := time.NewTicker(30 * time.Second)
	defer t.Stop()
	for {
		st := h.Stats()
		_ = ns.Heartbeat(map[string]any{"ts": time.Now(), "version": version, "since": started,
			"servers": len(h.Servers()), "events": st.Events, "drops": st.Drops, "alerts": st.Correlate.Alerts})
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
