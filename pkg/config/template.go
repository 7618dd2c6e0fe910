package config

import "fmt"

// Template is a commented starting configuration for a profile.
func Template(profile string) (string, error) {
	p, err := LookupProfile(profile)
	if err != nil {
		return "", err
	}
	resp, learn := p.Response, "10m"
	if profile == "strict" {
		learn = "30m"
	}
	return fmt.Sprintf(`# MCP Security Evolution sensor: %[1]s profile.
# Every key can be overridden by MCPSEC_<KEY> (nested keys joined by _,
# e.g. MCPSEC_NATS_URL). Check with: sensor config check FILE

# baseline | enterprise | strict: how hard the sensor answers. baseline
# monitors; enterprise enforces (freeze and cut off a server at a critical
# alert); strict also cuts a server off the network at a high one.
profile: %[1]s

# Containment: off, monitor (say what would be done) or enforce (freeze,
# deny egress in the kernel, snapshot, throttle, by severity). Leave it
# out to take the profile's (%[2]s).
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

# Alerts as JSON lines, in a local file and on stdout (journald);
# alerts_format: ocsf writes OCSF Detection Findings with the audit chain.
alerts_file: /var/log/mcp-sensor/alerts.jsonl
alerts_format: json
alerts_stdout: true

# Prometheus metrics ("" turns them off).
metrics_addr: 127.0.0.1:9464

# The dashboard ("" turns it off). Its address is logged with the view
# token; the act token (contain, release, verdicts) is in the state dir.
dashboard:
  listen: 127.0.0.1:9465
  token_file: ""      # default: STATE_DIR/dashboard.token
  act_token_file: ""  # default: STATE_DIR/dashboard-act.token

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
  ocsf: false      # also each alert as an OCSF finding on mcpsec.ocsf.<host>.<severity>
  replicas: 1      # of the stream and buckets the sensor creates (3 on a three-node cluster)

# The fleet: indicators from high and critical alerts shared with the other
# hosts on the same NATS (and theirs taken: destinations refused in the
# kernel), inventories with heartbeats. Needs nats.url.
fleet:
  enabled: false
  host: ""          # default: the host name
  ttl: 720h
  quorum: 1         # distinct trusted hosts before an indicator is taken
  trust: []         # public nkeys whose reports count (default: any)
  key_file: ""      # default: STATE_DIR/fleet.nk

# Alerts in Falco's JSON shape (e.g. to Falcosidekick), and as OCSF findings.
falco_url: ""
ocsf_url: ""

# Find MCP servers host-wide by their handshake (false: only the servers
# the selectors below name).
discover: true

# Servers to trace besides those discovered by their MCP handshake:
# servers:
#   - pid: 1234
#   - unit: my-mcp-server.service
#   - command: "node */mcp-server-*"
servers: []

# Roots of particular servers (matched by identity key or name, a glob),
# besides the directories their argv, configuration files, environment and
# client name:
# server_roots:
#   - match: "npm:@acme/files-server"
#     roots: [/srv/shared]
server_roots: []
`, profile, resp, learn), nil
}
