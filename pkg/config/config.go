// Package config is the sensor's one configuration type. `sensor trace`,
// `sensor run` and `sensor daemon` are three configurations of one
// pipeline, and every key of Config reaches it the same three ways,
// derived from the struct: a YAML key (nested keys for sections:
// nats.url), a flag (--nats-url) and an environment variable
// (MCPSEC_NATS_URL). Later sources win: the command's defaults, the YAML
// file, the seed's environment (SECURITY_PROFILE, THREAT_DETECTION,
// ADAPTIVE_DEFENSE, COMPLIANCE_MODE), MCPSEC_ variables, flags. Every
// value remembers where it came from, so an error names it.
package config

import (
	"time"
)

// DefaultPath is where the daemon looks for its configuration.
const DefaultPath = "/etc/mcp-sensor/config.yaml"

// DefaultStateDir is the daemon's state directory.
const DefaultStateDir = "/var/lib/mcp-sensor"

// Commands the configuration serves.
const (
	Trace   = "trace"
	Run     = "run"
	Daemon  = "daemon"
	Gateway = "gateway"
)

// Config is the whole configuration. Tags: yaml is the key; help is the
// flag's help; cmds limits the flag to some commands (the YAML key and the
// variable apply to all); flag renames the flag; short adds a one-letter
// flag.
type Config struct {
	Profile  string `yaml:"profile" help:"baseline, enterprise or strict: how hard the sensor answers (SECURITY_PROFILE too)"`
	Response string `yaml:"response" help:"containment: off, monitor (say what would be done) or enforce (freeze, deny egress in the kernel, snapshot, by severity); default: the profile's"`
	// StateDir keeps the trust store (pinned tool definitions), baselines,
	// the NATS spool and the audit trail. trace's default is a throw-away
	// directory, run's and the daemon's their own.
	StateDir    string        `yaml:"state_dir" help:"where pinned tool definitions, baselines, the NATS spool and the audit trail live (trace: a throw-away directory unless given)"`
	Rules       string        `yaml:"rules" help:"judge with the rule files of this directory (default: /etc/mcp-sensor/rules if it exists, else the built-in rules); SIGHUP or a changed file reloads them"`
	NoRules     bool          `yaml:"no_rules" help:"judge nothing (calls and effects are still linked; THREAT_DETECTION=off too)"`
	Learn       time.Duration `yaml:"learn" help:"baseline learning window per server and tool; afterwards novel effects raise anomalies (0: no baselines; ADAPTIVE_DEFENSE=disabled too)"`
	Roots       []string      `yaml:"roots" flag:"root" help:"a directory every server may use, besides those its argv, environment and client name (repeatable)"`
	EgressAllow []string      `yaml:"egress_allow" help:"destinations servers may reach: CIDR, address, host or host:port (repeatable; default: no allow-list)"`
	Compliance  string        `yaml:"compliance" help:"strict: the audit trail is mandatory, the sensor refuses to run without it (COMPLIANCE_MODE too)"`
	LogLevel    string        `yaml:"log_level" help:"log level: trace, debug, info, warn, error"`

	// What trace prints, and where.
	Output        string        `yaml:"output" short:"o" cmds:"trace,daemon" help:"output format: text, json (one JSON object per line) or auto (text on a terminal, else JSON)"`
	Policy        string        `yaml:"policy" cmds:"run,gateway" help:"the gateway's policy file: tools, arguments, resources, prompts, sampling and what results may carry (default: everything allowed, results with secrets or instructions for the model redacted; see sensor policy)"`
	Out           string        `yaml:"out" cmds:"trace,run" help:"write the trace to this file (default: stdout, or stderr when running a command; run: STATE-DIR/run-PID.jsonl)"`
	Color         string        `yaml:"color" cmds:"trace,daemon" help:"colour text output: auto (on a terminal), always, never"`
	Only          []string      `yaml:"only" cmds:"trace" help:"print only these kinds: messages, effects, alerts, servers, stats (repeatable or comma-separated; default: all but servers)"`
	HideRuntime   bool          `yaml:"hide_runtime" cmds:"trace" help:"fold the opens of libraries, the interpreter and its modules outside calls into one line"`
	Filter        string        `yaml:"filter" cmds:"trace" help:"print only events this CEL expression accepts, over the event's JSON as ev (e.g. 'ev.kind == \"alert\" || ev.type == \"connect\"')"`
	StatsInterval time.Duration `yaml:"stats_interval" cmds:"trace,daemon" help:"also print counters every interval (e.g. 10s); 0: only at the end"`

	// Capture: the kernel side and the decoder.
	CaptureMax     Size          `yaml:"capture_max" help:"payload bytes captured per syscall; the rest is counted and marked as cut"`
	MaxMessage     Size          `yaml:"max_message" help:"largest JSON-RPC message kept whole; longer ones are reported truncated"`
	PayloadRing    Size          `yaml:"payload_ring" help:"payload ring buffer size (power of two)"`
	EffectRing     Size          `yaml:"effect_ring" help:"effect ring buffer size (power of two)"`
	MaxTracked     uint32        `yaml:"max_tracked" help:"size of the kernel's tracked-process map (when full, tracking falls back to cgroups: fail closed)"`
	WakeupInterval time.Duration `yaml:"wakeup_interval" help:"while records flow, read the rings at most this often; shorter costs the traced servers more"`
	OrderWindow    time.Duration `yaml:"order_window" help:"the longest an event waits for earlier ones (a reader behind by more prints out of order, counted as order_late; 0: as decoded)"`
	NoTLS          bool          `yaml:"no_tls" help:"do not put uprobes on the OpenSSL that traced processes map (no TLS plaintext)"`
	QueueSize      int           `yaml:"queue_size" help:"events each output (and the responder) may hold before dropping, counted, what it cannot take"`

	// The daemon's outputs and control.
	AlertsFile    string `yaml:"alerts_file" cmds:"daemon" help:"alerts as JSON lines to this file (\"\": none)"`
	AlertsFormat  string `yaml:"alerts_format" cmds:"daemon" help:"the alerts file's lines: json (the sensor's alerts) or ocsf (OCSF Detection Findings, with the audit chain)"`
	AlertsStdout  bool   `yaml:"alerts_stdout" cmds:"daemon" help:"alerts as JSON lines on stdout too"`
	MetricsAddr   string `yaml:"metrics_addr" cmds:"daemon" help:"Prometheus metrics on this address (\"\": off)"`
	ControlSocket string `yaml:"control_socket" cmds:"daemon" help:"the root-only socket of sensor status, alerts, servers, contain and release"`
	FalcoURL      string `yaml:"falco_url" help:"also post alerts, in Falco's JSON shape, to this HTTP endpoint (e.g. Falcosidekick)"`
	OCSFURL       string `yaml:"ocsf_url" help:"also post alerts as OCSF Detection Findings (class 2004) to this HTTP endpoint"`
	NATS          NATS   `yaml:"nats"`
	// The Streamable HTTP gateway (sensor gateway).
	Gateway GatewayConfig `yaml:"gateway"`
	// Dashboard is the daemon's web page.
	Dashboard DashboardConfig `yaml:"dashboard"`
	// Fleet shares indicators and inventory with other hosts on NATS.
	Fleet FleetConfig `yaml:"fleet"`
	// Discover finds MCP servers host-wide by their handshake (the
	// daemon's default); off, only the servers selectors name are traced.
	Discover bool `yaml:"discover" cmds:"daemon" help:"find MCP servers host-wide by their handshake (false: only those the servers: selectors name)"`
	// Servers to trace besides those discovered (YAML only).
	Servers []Selector `yaml:"servers" noflag:"true"`
	// Roots of particular servers, besides those they declare (YAML only).
	ServerRoots []ServerRoots `yaml:"server_roots" noflag:"true"`
}

// ServerRoots gives the servers whose identity key or name matches Match
// (a glob: npm:@acme/files-server, binary:/opt/mcp/*) more roots.
type ServerRoots struct {
	Match string   `yaml:"match"`
	Roots []string `yaml:"roots"`
}

// NATS is the JetStream output.
type NATS struct {
	URL        string        `yaml:"url" help:"publish alerts to this NATS server's JetStream (mcpsec.alert.<host>.<severity>.<rule>); they wait in a spool while it is away"`
	Creds      string        `yaml:"creds" help:"NATS credentials file"`
	NKey       string        `yaml:"nkey" help:"NATS nkey seed file"`
	CA         string        `yaml:"ca" help:"NATS TLS: CA file"`
	Cert       string        `yaml:"cert" help:"NATS TLS: client certificate"`
	Key        string        `yaml:"key" help:"NATS TLS: client key"`
	Replicas   int           `yaml:"replicas" help:"replicas of the stream and buckets the sensor creates (3 on a three-node JetStream cluster)"`
	Duplicates time.Duration `yaml:"duplicates" help:"JetStream de-duplication window: longer than any outage the spool must bridge"`
	// Events also publishes every effect and message on
	// mcpsec.event.<host>.<kind> (core NATS, not spooled).
	Events bool `yaml:"events" help:"also publish every effect and message on mcpsec.event.<host>.<kind>"`
	// OCSF also publishes each alert as an OCSF Detection Finding on
	// mcpsec.ocsf.<host>.<severity> (core NATS).
	OCSF bool `yaml:"ocsf" help:"also publish each alert as an OCSF Detection Finding on mcpsec.ocsf.<host>.<severity>"`
}

// GatewayConfig is sensor gateway's: where it listens, the server it
// fronts, and who may use it.
type GatewayConfig struct {
	Listen   string   `yaml:"listen" cmds:"gateway" help:"the gateway's address (host:port)"`
	Upstream string   `yaml:"upstream" cmds:"gateway" help:"the Streamable HTTP server's MCP endpoint (http://127.0.0.1:3000/mcp)"`
	Origins  []string `yaml:"origins" cmds:"gateway" help:"Origin headers accepted, globs (a request without one passes; default: none)"`
	Hosts    []string `yaml:"hosts" cmds:"gateway" help:"Host headers accepted (default: localhost, 127.0.0.1, ::1): a foreign name is DNS rebinding"`
	Tokens   string   `yaml:"tokens" cmds:"gateway" help:"a file of TOKEN PRINCIPAL lines: bearer tokens and who they are (default: no authentication)"`
}

// DashboardConfig is the daemon's web page: where it listens and the
// tokens that open it (to look) and let a caller act (contain, release,
// verdicts).
type DashboardConfig struct {
	Listen       string `yaml:"listen" cmds:"daemon" help:"serve the dashboard on this address (loopback by default; \"\": off)"`
	TokenFile    string `yaml:"token_file" cmds:"daemon" help:"the token that opens the dashboard (default: STATE_DIR/dashboard.token, made at the first start)"`
	ActTokenFile string `yaml:"act_token_file" cmds:"daemon" help:"the token that also lets a caller contain, release and judge (default: STATE_DIR/dashboard-act.token)"`
}

// FleetConfig is the daemon's membership of a fleet of sensors sharing a
// NATS JetStream cluster.
type FleetConfig struct {
	Enabled bool          `yaml:"enabled" cmds:"daemon" help:"share indicators (from high and critical alerts) and this host's inventory with the fleet on NATS, and take theirs (needs nats.url)"`
	Host    string        `yaml:"host" cmds:"daemon" help:"this host's name in the fleet (default: the host name)"`
	TTL     time.Duration `yaml:"ttl" cmds:"daemon" help:"how long an indicator lives in the fleet's bucket"`
	Quorum  int           `yaml:"quorum" cmds:"daemon" help:"how many distinct trusted hosts must report an indicator before this host takes it (default 1)"`
	Trust   []string      `yaml:"trust" cmds:"daemon" help:"the public nkeys whose indicators are taken (default: every host's; sensor fleet key prints this host's)"`
	KeyFile string        `yaml:"key_file" cmds:"daemon" help:"this host's nkey seed, which signs its reports (default: STATE_DIR/fleet.nk, made at the first start)"`
}

// Selector names servers to trace explicitly: one field is set.
type Selector struct {
	PID     int    `yaml:"pid,omitempty"`
	Cgroup  string `yaml:"cgroup,omitempty"`
	Unit    string `yaml:"unit,omitempty"`    // a systemd unit (its cgroup)
	Command string `yaml:"command,omitempty"` // a glob over command lines of running processes
}

// Default is a command's configuration with nothing set.
func Default(cmd string) Config {
	c := Config{
		Profile: "baseline", StateDir: DefaultStateDir, Learn: 10 * time.Minute, LogLevel: "info",
		Output: "text", Color: "auto",
		CaptureMax: 32 << 20, MaxMessage: 32 << 20, PayloadRing: 32 << 20, EffectRing: 8 << 20, MaxTracked: 32768,
		WakeupInterval: 2 * time.Millisecond, OrderWindow: time.Second, QueueSize: 65536,
		AlertsFile: "/var/log/mcp-sensor/alerts.jsonl", AlertsFormat: "json", AlertsStdout: true,
		MetricsAddr: "127.0.0.1:9464", ControlSocket: "/run/mcp-sensor.sock",
		Dashboard: DashboardConfig{Listen: "127.0.0.1:9465"},
		Fleet:     FleetConfig{TTL: 30 * 24 * time.Hour, Quorum: 1},
		NATS:      NATS{Duplicates: 24 * time.Hour},
	}
	switch cmd {
	case Trace:
		// a one-off experiment must not change what the daemon trusts
		c.StateDir = ""
	case Run:
		c.StateDir = DefaultStateDir + "/run"
		c.Output = "json"
	case Daemon:
		c.StatsInterval = time.Minute
		c.Discover = true
		c.Output = "auto"
	case Gateway:
		c.StateDir = DefaultStateDir + "/gateway"
	}
	return c
}
