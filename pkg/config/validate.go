package config

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Validate checks every key; each error names where the value came from.
func (l *Loaded) Validate() error {
	var errs []error
	c := &l.Config
	bad := func(key, format string, a ...any) {
		errs = append(errs, fmt.Errorf("%s: %s: %s", l.Sources.Of(key), key, fmt.Sprintf(format, a...)))
	}
	oneOf := func(key, v string, allowed ...string) {
		for _, a := range allowed {
			if v == a {
				return
			}
		}
		bad(key, "%q: use %s", v, strings.Join(allowed, ", "))
	}
	if _, err := LookupProfile(c.Profile); err != nil {
		bad("profile", "%v", err)
	}
	if c.Response != "" {
		oneOf("response", c.Response, "off", "monitor", "enforce")
	}
	oneOf("log_level", c.LogLevel, "trace", "debug", "info", "warn", "error")
	oneOf("output", c.Output, "text", "json", "auto")
	for _, k := range c.Only {
		oneOf("only", k, "messages", "effects", "alerts", "servers", "stats")
	}
	oneOf("color", c.Color, "auto", "always", "never")
	if c.Compliance != "" {
		oneOf("compliance", c.Compliance, "strict")
	}
	if c.Learn < 0 {
		bad("learn", "%v: must not be negative (0 turns baselines off)", c.Learn)
	}
	if c.StatsInterval < 0 {
		bad("stats_interval", "%v: must not be negative", c.StatsInterval)
	}
	if c.OrderWindow < 0 || c.OrderWindow > 10*time.Second {
		bad("order_window", "%v: must be between 0 and 10s", c.OrderWindow)
	}
	if c.WakeupInterval <= 0 || c.WakeupInterval > time.Second {
		bad("wakeup_interval", "%v: must be between 1ns and 1s, e.g. 2ms", c.WakeupInterval)
	}
	if c.CaptureMax > 1<<30 {
		bad("capture_max", "%v: at most 1GiB", c.CaptureMax)
	}
	if c.MaxMessage > 1<<30 {
		bad("max_message", "%v: at most 1GiB", c.MaxMessage)
	}
	for _, r := range []struct {
		key string
		v   Size
	}{{"payload_ring", c.PayloadRing}, {"effect_ring", c.EffectRing}} {
		if r.v < 4096 || r.v&(r.v-1) != 0 || r.v > 1<<30 {
			bad(r.key, "%v: must be a power of two between 4KiB and 1GiB, e.g. 8MiB", r.v)
		}
	}
	if c.MaxTracked == 0 {
		bad("max_tracked", "must be at least 1")
	}
	if c.QueueSize < 16 {
		bad("queue_size", "%d: at least 16", c.QueueSize)
	}
	if c.StateDir != "" && !filepath.IsAbs(c.StateDir) {
		bad("state_dir", "%q: must be an absolute path", c.StateDir)
	}
	for _, r := range c.Roots {
		if !filepath.IsAbs(r) {
			bad("roots", "%q: must be an absolute path", r)
		}
	}
	if c.AlertsFormat != "" && c.AlertsFormat != "json" && c.AlertsFormat != "ocsf" {
		bad("alerts_format", "%q: use json or ocsf", c.AlertsFormat)
	}
	if c.Fleet.Enabled && c.NATS.URL == "" {
		bad("fleet.enabled", "the fleet shares through NATS: set nats.url too")
	}
	if c.Fleet.Quorum < 0 {
		bad("fleet.quorum", "%d: must be 1 or more", c.Fleet.Quorum)
	}
	if c.Fleet.Quorum > 1 && len(c.Fleet.Trust) < c.Fleet.Quorum {
		bad("fleet.quorum", "%d distinct hosts needs fleet.trust to list at least %d keys: anyone can make keys", c.Fleet.Quorum, c.Fleet.Quorum)
	}
	if c.Dashboard.Listen != "" {
		if _, _, err := net.SplitHostPort(c.Dashboard.Listen); err != nil {
			bad("dashboard.listen", "%q: not host:port, e.g. 127.0.0.1:9465", c.Dashboard.Listen)
		}
	}
	if c.MetricsAddr != "" {
		if _, _, err := net.SplitHostPort(c.MetricsAddr); err != nil {
			bad("metrics_addr", "%q: not host:port, e.g. 127.0.0.1:9464", c.MetricsAddr)
		}
	}
	for _, u := range []struct{ key, v string }{{"nats.url", c.NATS.URL}, {"falco_url", c.FalcoURL}} {
		if u.v == "" {
			continue
		}
		if p, err := url.Parse(u.v); err != nil || p.Scheme == "" || p.Host == "" {
			bad(u.key, "%q: not a URL, e.g. nats://127.0.0.1:4222", u.v)
		}
	}
	for _, f := range []struct{ key, v string }{{"nats.creds", c.NATS.Creds}, {"nats.nkey", c.NATS.NKey}, {"nats.ca", c.NATS.CA}, {"nats.cert", c.NATS.Cert}, {"nats.key", c.NATS.Key}} {
		if f.v != "" {
			if _, err := os.Stat(f.v); err != nil {
				bad(f.key, "%q: no such file", f.v)
			}
		}
	}
	if (c.NATS.Cert == "") != (c.NATS.Key == "") {
		bad("nats.cert", "nats.cert and nats.key go together")
	}
	if (c.Gateway.Listen == "") != (c.Gateway.Upstream == "") {
		bad("gateway.listen", "gateway.listen and gateway.upstream go together (the gateway's address, and the server's MCP endpoint)")
	}
	for i, s := range c.Servers {
		n := 0
		for _, set := range []bool{s.PID != 0, s.Cgroup != "", s.Unit != "", s.Command != ""} {
			if set {
				n++
			}
		}
		if n != 1 {
			bad("servers", "servers[%d]: give exactly one of pid, cgroup, unit, command", i)
		}
	}
	return errors.Join(errs...)
}
