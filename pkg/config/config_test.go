package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"
)

func env(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

func load(t *testing.T, cmd, yaml string, vars map[string]string, args ...string) (Loaded, error) {
	t.Helper()
	path := ""
	if yaml != "" {
		path = filepath.Join(t.TempDir(), "c.yaml")
		if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	fs := pflag.NewFlagSet(cmd, pflag.ContinueOnError)
	b := Bind(cmd, fs)
	if err := fs.Parse(args); err != nil {
		return Loaded{}, err
	}
	return b.Load(path, yaml != "", env(vars))
}

// TestLayers: defaults < file < seed variables < MCPSEC_ variables < flags,
// and each value knows its source.
func TestLayers(t *testing.T) {
	l, err := load(t, Daemon, "", nil)
	if err != nil || l.MetricsAddr != "127.0.0.1:9464" || l.StateDir != DefaultStateDir {
		t.Fatalf("defaults: %+v %v", l.Config, err)
	}
	if _, mode := l.Effective(); mode != "monitor" {
		t.Errorf("baseline's response: %s", mode)
	}
	l, err = load(t, Daemon, "profile: enterprise\nnats:\n  url: nats://a:4222\nlearn: 2m\nroots: [/srv/a]\n",
		map[string]string{"MCPSEC_NATS_URL": "nats://b:4222", "ADAPTIVE_DEFENSE": "disabled", "MCPSEC_ROOTS": "/x,/y"},
		"--learn", "5m")
	if err != nil {
		t.Fatal(err)
	}
	if l.NATS.URL != "nats://b:4222" || l.Learn != 5*time.Minute || strings.Join(l.Roots, ",") != "/x,/y" {
		t.Errorf("layers: %+v", l.Config)
	}
	l2, err := load(t, Daemon, "server_roots:\n  - match: \"npm:@acme/*\"\n    roots: [/srv/shared, /srv/b]\n", nil)
	if err != nil || len(l2.ServerRoots) != 1 || l2.ServerRoots[0].Match != "npm:@acme/*" || strings.Join(l2.ServerRoots[0].Roots, ",") != "/srv/shared,/srv/b" {
		t.Errorf("server_roots: %+v %v", l2.ServerRoots, err)
	}
	if p, mode := l.Effective(); p.Name != "enterprise" || mode != "enforce" {
		t.Errorf("the daemon honours the profile: %s %s", p.Name, mode)
	}
	for key, want := range map[string]string{"profile": ":1", "nats.url": "MCPSEC_NATS_URL", "learn": "--learn", "roots": "MCPSEC_ROOTS", "log_level": "the default"} {
		if got := l.Sources.Of(key); !strings.HasSuffix(got, want) {
			t.Errorf("source of %s: %q, want ...%q", key, got, want)
		}
	}
	// the seed's environment
	l, err = load(t, Run, "", map[string]string{"SECURITY_PROFILE": "strict", "THREAT_DETECTION": "off", "COMPLIANCE_MODE": "strict"})
	if err != nil || l.Profile != "strict" || !l.NoRules || l.Compliance != "strict" {
		t.Fatalf("seed: %+v %v", l.Config, err)
	}
	if p, mode := l.Effective(); mode != "enforce" || !p.TightenConnects || p.TightenAt != "medium" {
		t.Errorf("strict: %+v %s", p, mode)
	}
	// MCPSEC_PROFILE wins over SECURITY_PROFILE, an explicit response over the profile's
	l, _ = load(t, Run, "", map[string]string{"SECURITY_PROFILE": "strict", "MCPSEC_PROFILE": "baseline", "MCPSEC_RESPONSE": "off"})
	if _, mode := l.Effective(); l.Profile != "baseline" || mode != "off" {
		t.Errorf("precedence: %s %s", l.Profile, mode)
	}
	// trace keeps no state unless told
	if l, _ := load(t, Trace, "", nil); l.StateDir != "" {
		t.Errorf("trace's state dir: %q", l.StateDir)
	}
	if l, _ := load(t, Trace, "", map[string]string{"MCPSEC_STATE_DIR": "/tmp/s"}); l.StateDir != "/tmp/s" {
		t.Errorf("trace's state dir when given: %q", l.StateDir)
	}
	// repeated list flags add up; sizes and bools parse
	l, err = load(t, Trace, "", nil, "--root", "/a", "--root", "/b", "--capture-max", "64KiB", "--no-tls", "-o", "json")
	if err != nil || strings.Join(l.Roots, ",") != "/a,/b" || l.CaptureMax != 64<<10 || !l.NoTLS || l.Output != "json" {
		t.Errorf("flags: %+v %v", l.Config, err)
	}
}

// TestTemplates: every profile's commented template loads as written.
func TestTemplates(t *testing.T) {
	for _, p := range ProfileNames() {
		tpl, err := Template(p)
		if err != nil {
			t.Fatal(err)
		}
		l, err := load(t, Daemon, tpl, nil)
		if err != nil || l.Profile != p {
			t.Fatalf("%s template: %+v %v", p, l.Config, err)
		}
	}
}

// TestBadConfig: every mistake names its source and what is accepted.
func TestBadConfig(t *testing.T) {
	for _, tc := range []struct {
		yaml string
		vars map[string]string
		args []string
		want string
	}{
		{yaml: "profile: baseline\nrespons: enforce\n", want: `c.yaml:2: unknown key "respons" (did you mean "response"?)`},
		{yaml: "response: always\n", want: `c.yaml:1: response: "always": use off, monitor, enforce`},
		{yaml: "learn: ten minutes\n", want: `c.yaml:1: learn: "ten minutes" is not a duration: write it like 500ms, 10m or 1h30m`},
		{yaml: "metrics_addr: nowhere\n", want: `c.yaml:1: metrics_addr: "nowhere": not host:port`},
		{yaml: "servers:\n  - pid: 1\n    unit: x\n", want: "servers[0]: give exactly one of"},
		{yaml: "servers:\n  - pids: 1\n", want: `c.yaml:2: servers: unknown selector "pids"`},
		{yaml: "server_roots:\n  - match: npm:x\n    roots: [rel/dir]\n", want: `c.yaml:2: server_roots: "rel/dir": roots are absolute paths`},
		{yaml: "server_roots:\n  - roots: [/srv]\n", want: `c.yaml:2: server_roots: match is missing`},
		{yaml: "server_roots:\n  - match: x\n    dirs: [/srv]\n", want: `c.yaml:3: server_roots: unknown key "dirs": use match and roots`},
		{yaml: "nats:\n  url: '::'\n", want: `c.yaml:2: nats.url: "::": not a URL`},
		{yaml: "nats:\n  uri: x\n", want: `unknown key "nats.uri" (did you mean "nats.url"?)`},
		{yaml: "payload_ring: 3MiB\n", want: "c.yaml:1: payload_ring: 3MiB: must be a power of two"},
		{vars: map[string]string{"MCPSEC_RESPONSE": "loud"}, want: `MCPSEC_RESPONSE: response: "loud": use off, monitor, enforce`},
		{vars: map[string]string{"MCPSEC_LEARN": "soon"}, want: `MCPSEC_LEARN=soon: "soon" is not a duration`},
		{vars: map[string]string{"SECURITY_PROFILE": "paranoid"}, want: `SECURITY_PROFILE: profile: "paranoid" is not a profile`},
		{args: []string{"--order-window", "1m"}, want: "--order-window: order_window: 1m0s: must be between 0 and 10s"},
		{args: []string{"--capture-max", "lots"}, want: `"lots" is not a size`},
	} {
		_, err := load(t, Trace, tc.yaml, tc.vars, tc.args...)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q %v %v: %v, want %q", tc.yaml, tc.vars, tc.args, err, tc.want)
		}
	}
}

// TestKeys: every key has a YAML path, a flag (unless YAML-only) and an
// MCPSEC_ variable derived from the one struct.
func TestKeys(t *testing.T) {
	seen := map[string]bool{}
	for _, k := range Keys() {
		if seen[k.Flag] && k.Flag != "" {
			t.Errorf("flag %s twice", k.Flag)
		}
		seen[k.Flag] = true
		if k.Env != EnvPrefix+strings.ToUpper(strings.ReplaceAll(k.Path, ".", "_")) {
			t.Errorf("%s: variable %s", k.Path, k.Env)
		}
	}
	for _, want := range []string{"nats-url", "root", "state-dir", "capture-max", "response"} {
		if !seen[want] {
			t.Errorf("no flag %s", want)
		}
	}
}

func TestSize(t *testing.T) {
	for in, want := range map[string]Size{"4096": 4096, "64KiB": 64 << 10, "16MiB": 16 << 20, "1GiB": 1 << 30, "2M": 2 << 20, " 8 KB": 8 << 10} {
		got, err := ParseSize(in)
		if err != nil || got != want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "0", "-1", "12XB", "MiB", "99999999999999999999GiB"} {
		if _, err := ParseSize(bad); err == nil {
			t.Errorf("ParseSize(%q) accepted", bad)
		}
	}
	if Size(16<<20).String() != "16MiB" || Size(1000).String() != "1000" {
		t.Errorf("String: %s %s", Size(16<<20), Size(1000))
	}
}
