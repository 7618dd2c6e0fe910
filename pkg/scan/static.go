package scan

import (
	"fmt"
	"maps"
	"net/url"
	"path/filepath"
	"regexp"
	"slices"
	"strings"

	"github.com/mcpsec/sensor/pkg/correlate"
)

// Finding is one thing wrong with one server entry.
type Finding struct {
	Rule     string    `json:"rule"`
	Severity string    `json:"severity"` // critical, high, medium, low
	Client   string    `json:"client"`
	File     string    `json:"file"`
	Line     int       `json:"line,omitempty"`
	Server   string    `json:"server"`
	Title    string    `json:"title"`
	Evidence string    `json:"evidence"`
	Fix      string    `json:"fix,omitempty"`
	Advisory *Advisory `json:"advisory,omitempty"`
}

// Rule describes a kind of finding (SARIF's reportingDescriptor).
type Rule struct {
	ID, Name, Help string
}

// Rules are the kinds of finding the scan reports.
var Rules = []Rule{
	{"MCPS001", "unpinned-package", "The entry runs a package without a fixed version: whatever is published next runs next, with the client's trust."},
	{"MCPS002", "vulnerable-package", "The package's version has a published advisory."},
	{"MCPS003", "secret-in-config", "A credential is written in the client's configuration (env, args or headers) in clear."},
	{"MCPS004", "plain-http", "A remote server is reached over plain http://: its traffic and tokens can be read and changed on the way."},
	{"MCPS005", "runs-as-root", "The server is started through sudo/doas or as root: whatever it is tricked into doing, it does as root."},
	{"MCPS006", "shell-string", "The server is started through a shell command string: quoting and expansion decide what runs."},
	{"MCPS010", "tool-instructions", "A tool, resource or prompt definition carries instructions addressed to the model."},
	{"MCPS011", "hidden-text", "A definition carries text a person does not see (Unicode tags, zero-width runs, bidi controls, HTML comments)."},
	{"MCPS012", "tool-shadowing", "A definition names another server's tools: it can steer how the model uses them."},
	{"MCPS013", "name-collision", "Two servers of the same client declare a tool of the same name: the model may call the wrong one."},
	{"MCPS014", "definition-changed", "A definition differs from the one pinned at an earlier scan (a rug pull, unless expected)."},
	{"MCPS020", "startup-effect", "What the server did on start-up, before anything was asked of it, under the sensor."},
	{"MCPS021", "startup-alert", "A rule of the sensor fired while the server started."},
	{"MCPS022", "not-started", "The server could not be started or did not complete the MCP handshake in the sandbox."},
	{"MCPS030", "fleet-indicator", "The package is named by an indicator the fleet shares: another host caught it misbehaving."},
}

// RuleID gives a rule's id by name.
func RuleID(name string) string {
	for _, r := range Rules {
		if r.Name == name {
			return r.ID
		}
	}
	return ""
}

// Package is what an entry runs from a registry.
type Package struct {
	Ecosystem string // npm or pypi
	Name      string
	Version   string // "" when unpinned
	Spec      string // as written
}

var launchers = map[string]string{"npx": "npm", "bunx": "npm", "pnpx": "npm", "uvx": "pypi", "pipx": "pypi"}

// PackageOf finds the package an entry launches: npx/bunx/pnpm dlx/yarn
// dlx for npm, uvx/pipx run for PyPI.
func PackageOf(e Entry) (Package, bool) {
	exe := filepath.Base(e.Command)
	args := e.Args
	eco, ok := launchers[exe]
	if !ok && (exe == "pnpm" || exe == "yarn" || exe == "npm") && len(args) > 0 && (args[0] == "dlx" || args[0] == "exec") {
		eco, ok, args = "npm", true, args[1:]
	}
	if !ok {
		return Package{}, false
	}
	if exe == "pipx" && len(args) > 0 && args[0] == "run" {
		args = args[1:]
	}
	spec := ""
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			continue
		}
		if strings.HasPrefix(a, "-") {
			if (a == "--from" || a == "-p" || a == "--package") && i+1 < len(args) {
				spec = args[i+1]
				break
			}
			continue
		}
		spec = a
		break
	}
	if spec == "" {
		return Package{}, false
	}
	p := Package{Ecosystem: eco, Spec: spec}
	if eco == "npm" {
		at := strings.LastIndex(spec, "@")
		if at > 0 {
			p.Name, p.Version = spec[:at], spec[at+1:]
		} else {
			p.Name = spec
		}
	} else {
		name, ver, found := strings.Cut(spec, "==")
		if !found {
			name, ver, _ = strings.Cut(spec, "@")
		}
		p.Name, p.Version = name, ver
	}
	if !exactVersion.MatchString(p.Version) {
		p.Version = ""
	}
	return p, true
}

var exactVersion = regexp.MustCompile(`^v?\d+(\.\d+){0,2}([-+][0-9A-Za-z.-]+)?$`)

var secretName = regexp.MustCompile(`(?i)(token|secret|passw(or)?d|api[_-]?key|access[_-]?key|private[_-]?key|credential|auth)`)

// reference: a value that names where a secret comes from instead of
// holding it (${input:x}, ${env:X}, $X, ${X}).
var reference = regexp.MustCompile(`^\$(\{[^}]+\}|[A-Za-z_][A-Za-z0-9_]*)$`)

// Static judges an entry by what it says.
func Static(e Entry, adv *Advisories) []Finding {
	var out []Finding
	add := func(rule, sev, title, evidence, fix string) {
		out = append(out, Finding{Rule: rule, Severity: sev, Client: e.Client, File: e.File, Line: e.Line, Server: e.Name,
			Title: title, Evidence: evidence, Fix: fix})
	}
	if p, ok := PackageOf(e); ok {
		if p.Version == "" {
			add("unpinned-package", "medium", fmt.Sprintf("%s runs %s package %s with no fixed version", e.Name, p.Ecosystem, p.Name),
				fmt.Sprintf("%s %s", e.Command, strings.Join(e.Args, " ")),
				fmt.Sprintf("pin it: %s", pinned(p)))
		}
		for _, a := range adv.Match(p.Ecosystem, p.Name, p.Version) {
			f := Finding{Rule: "vulnerable-package", Severity: a.Severity, Client: e.Client, File: e.File, Line: e.Line, Server: e.Name,
				Title:    fmt.Sprintf("%s@%s has advisory %s (%s): %s", p.Name, p.Version, a.ID, strings.Join(a.Aliases, ", "), a.Summary),
				Evidence: fmt.Sprintf("%s %s (affected %s)", e.Command, strings.Join(e.Args, " "), a.Affected),
				Fix:      "upgrade to " + a.Fixed + " or later", Advisory: &a}
			out = append(out, f)
		}
	}
	for _, k := range slices.Sorted(maps.Keys(e.Env)) {
		secretIn("env "+k, k, e.Env[k], add)
	}
	for i, a := range e.Args {
		secretIn(fmt.Sprintf("args[%d]", i), "", a, add)
	}
	for _, k := range slices.Sorted(maps.Keys(e.Headers)) {
		secretIn("header "+k, k, e.Headers[k], add)
	}
	if e.URL != "" {
		if u, err := url.Parse(e.URL); err == nil && u.Scheme == "http" && !loopback(u.Hostname()) {
			add("plain-http", "high", fmt.Sprintf("%s is reached over plain HTTP", e.Name), e.URL, "use https://")
		}
	}
	exe := filepath.Base(e.Command)
	if exe == "sudo" || exe == "doas" || exe == "pkexec" {
		add("runs-as-root", "high", fmt.Sprintf("%s is started through %s", e.Name, exe), e.Command+" "+strings.Join(e.Args, " "),
			"run it as the user who runs the client; give it only the files it needs")
	}
	if sh := shells[exe]; sh && len(e.Args) >= 2 && (e.Args[0] == "-c" || e.Args[0] == "-lc" || e.Args[0] == "/c") {
		add("shell-string", "medium", fmt.Sprintf("%s is started through %s -c", e.Name, exe), e.Command+" "+strings.Join(e.Args, " "),
			"name the program and its arguments in command and args, without a shell")
	} else if strings.ContainsAny(e.Command, " |;&$`") {
		add("shell-string", "medium", fmt.Sprintf("%s's command is a shell-like string", e.Name), e.Command,
			"put the program in command and each argument in args")
	}
	return out
}

var shells = map[string]bool{"sh": true, "bash": true, "zsh": true, "dash": true, "fish": true, "cmd": true, "cmd.exe": true, "powershell": true, "pwsh": true}

func pinned(p Package) string {
	if p.Ecosystem == "npm" {
		return p.Name + "@<version>"
	}
	return p.Name + "==<version>"
}

// secretIn adds a finding when value holds a credential: a known token
// format (high) or a literal under a name that says it is one (medium).
func secretIn(where, name, value string, add func(rule, sev, title, evidence, fix string)) {
	if reference.MatchString(strings.TrimSpace(value)) || strings.Contains(value, "${input:") || strings.Contains(value, "${env:") {
		return
	}
	if kinds := correlate.Secrets(value); len(kinds) > 0 {
		add("secret-in-config", "high", fmt.Sprintf("a %s is written in clear in %s", strings.Join(kinds, ", "), where),
			where+" = "+mask(value), "keep it in the environment or the client's secret input (${input:...}) and rotate it")
		return
	}
	if name != "" && secretName.MatchString(name) && len(value) >= 12 && !strings.ContainsAny(value, " /") && !strings.HasPrefix(value, ".") && !strings.HasPrefix(value, "~") {
		add("secret-in-config", "medium", fmt.Sprintf("%s looks like a credential written in clear", where),
			where+" = "+mask(value), "keep it in the environment or the client's secret input (${input:...})")
	}
}

// FleetRefused reports an entry whose package (as written, or as the
// sensor saw it run: ran, e.g. "@scope/name@1.2.3") a fleet indicator
// names: refused (the key is "npm:@scope/name@1.2.3", the value its
// origin).
func FleetRefused(e Entry, ran string, refused map[string]string) []Finding {
	var out []Finding
	seen := map[string]bool{}
	check := func(key string) {
		if origin, ok := refused[key]; ok && !seen[key] {
			seen[key] = true
			out = append(out, Finding{Rule: "fleet-indicator", Severity: "critical", Client: e.Client, File: e.File, Line: e.Line,
				Server: e.Name, Title: fmt.Sprintf("%s runs %s, a package the fleet reported", e.Name, key), Evidence: origin,
				Fix: "remove the entry; the package was caught misbehaving on another host"})
		}
	}
	if p, ok := PackageOf(e); ok && p.Version != "" {
		check(p.Ecosystem + ":" + p.Name + "@" + p.Version)
	}
	if ran != "" {
		check("npm:" + ran)
		check("pypi:" + ran)
	}
	return out
}

// Redacted is the entry with the values of its env and headers that are
// (or look like) credentials masked: what a report may print.
func (e Entry) Redacted() Entry {
	red := func(m map[string]string) map[string]string {
		if m == nil {
			return nil
		}
		out := make(map[string]string, len(m))
		for k, v := range m {
			found := false
			secretIn("", k, v, func(string, string, string, string, string) { found = true })
			if found {
				v = mask(v)
			}
			out[k] = v
		}
		return out
	}
	e.Env, e.Headers = red(e.Env), red(e.Headers)
	args := make([]string, len(e.Args))
	for i, a := range e.Args {
		args[i] = a
		if len(correlate.Secrets(a)) > 0 {
			args[i] = mask(a)
		}
	}
	e.Args = args
	return e
}

// mask keeps the first 4 characters of a secret.
func mask(s string) string {
	if len(s) <= 8 {
		return "****"
	}
	return s[:4] + strings.Repeat("*", 8) + fmt.Sprintf(" (%d chars)", len(s))
}

func loopback(host string) bool {
	return host == "localhost" || host == "::1" || strings.HasPrefix(host, "127.")
}
