// Package config is the sensor's configuration: one YAML file (default
// /etc/mcp-sensor/config.yaml), environment overrides MCPSEC_<KEY>, and an
// embedded default so the daemon runs with no file at all (alerts as JSON
// lines on stdout and in a local file, no NATS).
package config

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/caarlos0/env/v11"
	"go.yaml.in/yaml/v3"
)

// DefaultPath is where the daemon looks for its configuration.
const DefaultPath = "/etc/mcp-sensor/config.yaml"

// Config is the whole configuration. Every key has an environment
// override: MCPSEC_ and the key in upper case, nested keys joined by "_"
// (MCPSEC_NATS_URL).
type Config struct {
	Profile       string        `yaml:"profile" env:"PROFILE"`               // baseline | enterprise | strict
	Response      string        `yaml:"response" env:"RESPONSE"`             // off | monitor | enforce
	StateDir      string        `yaml:"state_dir" env:"STATE_DIR"`           // tool store, baselines, spool, audit trail
	Rules         string        `yaml:"rules" env:"RULES"`                   // rule directory ("": built-in)
	Learn         time.Duration `yaml:"learn" env:"LEARN"`                   // baseline window (0: off)
	Roots         []string      `yaml:"roots" env:"ROOTS"`                   // directories every server may use
	EgressAllow   []string      `yaml:"egress_allow" env:"EGRESS_ALLOW"`     // CIDRs, addresses, host:port
	LogLevel      string        `yaml:"log_level" env:"LOG_LEVEL"`           // trace | debug | info | warn | error
	AlertsFile    string        `yaml:"alerts_file" env:"ALERTS_FILE"`       // alerts as JSON lines ("": none)
	AlertsStdout  bool          `yaml:"alerts_stdout" env:"ALERTS_STDOUT"`   // alerts as JSON lines on stdout too
	MetricsAddr   string        `yaml:"metrics_addr" env:"METRICS_ADDR"`     // Prometheus ("": off)
	ControlSocket string        `yaml:"control_socket" env:"CONTROL_SOCKET"` // the CLI's root-only socket
	FalcoURL      string        `yaml:"falco_url" env:"FALCO_URL"`           // Falco-shaped HTTP output
	NATS          NATS          `yaml:"nats" envPrefix:"NATS_"`
	Servers       []Selector    `yaml:"servers"` // explicit selectors besides discovery
}

// NATS is the JetStream output.
type NATS struct {
	URL        string        `yaml:"url" env:"URL"`
	Creds      string        `yaml:"creds" env:"CREDS"`
	NKey       string        `yaml:"nkey" env:"NKEY"`
	CA         string        `yaml:"ca" env:"CA"`
	Cert       string        `yaml:"cert" env:"CERT"`
	Key        string        `yaml:"key" env:"KEY"`
	Duplicates time.Duration `yaml:"duplicates" env:"DUPLICATES"`
	// Events also publishes every effect and message on
	// mcpsec.event.<host>.<kind> (core NATS, not spooled).
	Events bool `yaml:"events" env:"EVENTS"`
}

// Selector names servers to trace explicitly: one field is set.
type Selector struct {
	PID     int    `yaml:"pid,omitempty"`
	Cgroup  string `yaml:"cgroup,omitempty"`
	Unit    string `yaml:"unit,omitempty"`    // a systemd unit (its cgroup)
	Command string `yaml:"command,omitempty"` // a glob over command lines of running processes
}

// Default is the configuration with no file.
func Default() Config {
	return Config{
		Profile: "baseline", Response: "monitor", StateDir: "/var/lib/mcp-sensor", Learn: 10 * time.Minute,
		LogLevel: "info", AlertsFile: "/var/log/mcp-sensor/alerts.jsonl", AlertsStdout: true,
		MetricsAddr: "127.0.0.1:9464", ControlSocket: "/run/mcp-sensor.sock",
		NATS: NATS{Duplicates: 24 * time.Hour},
	}
}

// Load reads path over the defaults (a missing default path is no error:
// the embedded default runs), then the environment, and validates.
func Load(path string, mustExist bool) (Config, error) {
	c := Default()
	b, err := os.ReadFile(path)
	switch {
	case err == nil:
		dec := yaml.NewDecoder(bytes.NewReader(b))
		dec.KnownFields(true)
		if err := dec.Decode(&c); err != nil && !errors.Is(err, errEOF) && err.Error() != "EOF" {
			return c, fmt.Errorf("%s: %s", path, strings.TrimPrefix(err.Error(), "yaml: "))
		}
	case os.IsNotExist(err) && !mustExist:
	default:
		return c, err
	}
	if err := env.ParseWithOptions(&c, env.Options{Prefix: "MCPSEC_"}); err != nil {
		return c, fmt.Errorf("environment: %w", err)
	}
	return c, c.Validate()
}

var errEOF = errors.New("EOF")

// Validate checks every key.
func (c *Config) Validate() error {
	var errs []error
	bad := func(key, format string, a ...any) { errs = append(errs, fmt.Errorf(key+": "+format, a...)) }
	switch c.Profile {
	case "baseline", "enterprise", "strict":
	default:
		bad("profile", "%q: must be baseline, enterprise or strict", c.Profile)
	}
	switch c.Response {
	case "off", "monitor", "enforce":
	default:
		bad("response", "%q: must be off, monitor or enforce", c.Response)
	}
	switch c.LogLevel {
	case "trace", "debug", "info", "warn", "error":
	default:
		bad("log_level", "%q: must be trace, debug, info, warn or error", c.LogLevel)
	}
	if c.Learn < 0 {
		bad("learn", "%v: must not be negative", c.Learn)
	}
	if !filepath.IsAbs(c.StateDir) {
		bad("state_dir", "%q: must be an absolute path", c.StateDir)
	}
	for _, r := range c.Roots {
		if !filepath.IsAbs(r) {
			bad("roots", "%q: must be an absolute path", r)
		}
	}
	if c.MetricsAddr != "" {
		if _, _, err := net.SplitHostPort(c.MetricsAddr); err != nil {
			bad("metrics_addr", "%q: %v", c.MetricsAddr, err)
		}
	}
	for _, u := range []struct{ key, v string }{{"nats.url", c.NATS.URL}, {"falco_url", c.FalcoURL}} {
		if u.v == "" {
			continue
		}
		if p, err := url.Parse(u.v); err != nil || p.Scheme == "" || p.Host == "" {
			bad(u.key, "%q: not a URL", u.v)
		}
	}
	for _, f := range []struct{ key, v string }{{"nats.creds", c.NATS.Creds}, {"nats.nkey", c.NATS.NKey}, {"nats.ca", c.NATS.CA}, {"nats.cert", c.NATS.Cert}, {"nats.key", c.NATS.Key}} {
		if f.v != "" {
			if _, err := os.Stat(f.v); err != nil {
				bad(f.key, "%v", err)
			}
		}
	}
	if (c.NATS.Cert == "") != (c.NATS.Key == "") {
		bad("nats", "cert and key go together")
	}
	for i, s := range c.Servers {
		n := 0
		for _, set := range []bool{s.PID != 0, s.Cgroup != "", s.Unit != "", s.Command != ""} {
			if set {
				n++
			}
		}
		if n != 1 {
			bad(fmt.Sprintf("servers[%d]", i), "give exactly one of pid, cgroup, unit, command")
		}
	}
	return errors.Join(errs...)
}

// Template is a commented starting configuration for a profile.
func Template(profile string) (string, error) {
	resp, learn := "monitor", "10m"
	switch profile {
	case "baseline":
	case "enterprise":
		resp = "enforce"
	case "strict":
		resp, learn = "enforce", "30m"
	default:
		return "", fmt.Errorf("profile %q: must be baseline, enterprise or strict", profile)
	}
	return fmt.Sprintf(`# MCP Security Evolution sensor: %[1]s profile.
# Every key can be overridden by MCPSEC_<KEY> (nested keys joined by _,
# e.g. MCPSEC_NATS_URL). Check with: sensor config check FILE

# baseline | enterprise | strict: how hard the sensor answers.
profile: %[1]s

# Containment: off, monitor (say what would be done) or enforce (freeze,
# deny egress in the kernel, snapshot, throttle, by severity).
response: %[2]s

# Tool definitions (trust on first use), baselines, the NATS spool and the
# audit trail live here.
state_dir: /var/lib/mcp-sensor

# A rule directory of your own ("" judges with the built-in rules).
rules: ""

# Baselines learn for this long per server and tool, then novel effects
# raise anomalies (0: no baselines).
learn: %[3]s

# Directories every server may use (besides its argv and its client's
# roots), and destinations it may reach (CIDRs, addresses, host:port).
roots: []
egress_allow: []

log_level: info

# Alerts as JSON lines, in a local file and on stdout (journald).
alerts_file: /var/log/mcp-sensor/alerts.jsonl
alerts_stdout: true

# Prometheus metrics ("" turns them off).
metrics_addr: 127.0.0.1:9464

# The root-only socket of sensor status, alerts, servers, contain, release.
control_socket: /run/mcp-sensor.sock

# Alerts to your SOC on NATS JetStream (mcpsec.alert.<host>.<severity>.<rule>).
# While NATS is away they wait in a spool and go out in order when it is back.
nats:
  url: ""
  creds: ""        # credentials file
  nkey: ""         # nkey seed file
  ca: ""           # TLS
  cert: ""
  key: ""
  duplicates: 24h  # JetStream de-duplication window: longer than any outage
  events: false    # also every effect and message on mcpsec.event.<host>.<kind>

# Alerts in Falco's JSON shape (e.g. to Falcosidekick).
falco_url: ""

# Servers to trace besides those discovered by their MCP handshake:
# servers:
#   - pid: 1234
#   - unit: my-mcp-server.service
#   - command: "node */mcp-server-*"
servers: []
`, profile, resp, learn), nil
}
