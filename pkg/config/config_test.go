package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestLoad(t *testing.T) {
	// no file: the embedded default
	c, err := Load(filepath.Join(t.TempDir(), "none.yaml"), false)
	if err != nil || c.Response != "monitor" || c.MetricsAddr != "127.0.0.1:9464" {
		t.Fatalf("%+v %v", c, err)
	}
	if _, err := Load(filepath.Join(t.TempDir(), "none.yaml"), true); err == nil {
		t.Error("a missing file that must exist was accepted")
	}
	// every profile's template loads and validates
	for _, p := range []string{"baseline", "enterprise", "strict"} {
		tpl, err := Template(p)
		if err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(t.TempDir(), "c.yaml")
		os.WriteFile(path, []byte(tpl), 0o600)
		c, err := Load(path, true)
		if err != nil || c.Profile != p {
			t.Fatalf("%s template: %+v %v", p, c, err)
		}
	}
	// environment overrides, nested too
	path := filepath.Join(t.TempDir(), "c.yaml")
	os.WriteFile(path, []byte("response: enforce\nnats:\n  url: nats://a:4222\n"), 0o600)
	t.Setenv("MCPSEC_NATS_URL", "nats://b:4222")
	t.Setenv("MCPSEC_LEARN", "1m")
	c, err = Load(path, true)
	if err != nil || c.NATS.URL != "nats://b:4222" || c.Learn != time.Minute || c.Response != "enforce" {
		t.Fatalf("%+v %v", c, err)
	}
}

func TestBadConfig(t *testing.T) {
	for src, want := range map[string]string{
		"respons: enforce\n":                  "field respons not found",
		"response: always\n":                  `response: "always"`,
		"learn: soon\n":                       "time.Duration",
		"metrics_addr: nowhere\n":             "metrics_addr",
		"servers:\n  - pid: 1\n    unit: x\n": "servers[0]",
		"nats:\n  url: '::'\n":                "nats.url",
	} {
		path := filepath.Join(t.TempDir(), "c.yaml")
		os.WriteFile(path, []byte(src), 0o600)
		if _, err := Load(path, true); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: %v, want %q", src, err, want)
		}
	}
}
