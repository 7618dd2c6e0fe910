package pipeline

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/mcpsec/sensor/pkg/audit"
	"github.com/mcpsec/sensor/pkg/config"
	"github.com/mcpsec/sensor/pkg/contain"
	"github.com/mcpsec/sensor/pkg/correlate"
	"github.com/mcpsec/sensor/pkg/metrics"
	"github.com/mcpsec/sensor/pkg/sink"
	"github.com/mcpsec/sensor/rules"
)

// DefaultRulesDir is where a site keeps its own rules.
const DefaultRulesDir = "/etc/mcp-sensor/rules"

// LoadRules loads the built-in rules with a site's directory on top (""
// none): a file of the directory with a shipped file's name replaces it,
// the others are read after the shipped ones, in name order, and may
// change shipped rules (override:), lists and macros (append: true) and
// add exceptions, without copying them.
func LoadRules(dir string) (*correlate.RuleSet, error) {
	names, srcs, err := correlate.ReadFS(rules.Files, "built-in")
	if err != nil {
		return nil, err
	}
	label := "built-in"
	if files, _ := filepath.Glob(filepath.Join(dir, "*.yaml")); dir != "" && len(files) == 0 {
		// a site directory with nothing in it yet changes nothing
		if _, err := os.Stat(dir); err != nil {
			return nil, fmt.Errorf("the rules directory %s: %w", dir, err)
		}
		dir = ""
	}
	if dir != "" {
		site, siteSrcs, err := correlate.ReadDir(dir)
		if err != nil {
			return nil, err
		}
		replaced := map[string]string{}
		for _, f := range site {
			replaced[filepath.Base(f)] = f
		}
		var merged []string
		for _, n := range names {
			if f, ok := replaced[filepath.Base(n)]; ok {
				merged = append(merged, f)
				srcs[f] = siteSrcs[f]
				delete(replaced, filepath.Base(n))
				continue
			}
			merged = append(merged, n)
		}
		for _, f := range site {
			if _, extra := replaced[filepath.Base(f)]; extra {
				merged = append(merged, f)
				srcs[f] = siteSrcs[f]
			}
		}
		names, label = merged, dir
	}
	rs, err := correlate.Compile(names, srcs)
	if err != nil {
		return nil, err
	}
	rs.Dir = label
	return rs, nil
}

// RulesDirOf is the site's rules directory a configuration uses: its
// `rules`, or the default directory if it exists ("": the built-in rules
// alone).
func RulesDirOf(cfg config.Config) string {
	if cfg.Rules != "" {
		return cfg.Rules
	}
	if st, err := os.Stat(DefaultRulesDir); err == nil && st.IsDir() {
		return DefaultRulesDir
	}
	return ""
}

// New builds the pipeline a configuration describes: its state directory,
// rules, trust store, audit trail, outputs and containment manager. Nothing
// is loaded into the kernel until Run.
func New(o Options) (p *Pipeline, err error) {
	if o.Log == nil {
		o.Log = hclog.NewNullLogger()
	}
	cfg := o.Config
	built := &Pipeline{o: o, started: time.Now()}
	p = built
	defer func() {
		if err != nil {
			built.Close() // what was opened before the error
		}
	}()
	p.profile, p.mode = cfg.Effective()
	if err := p.openState(); err != nil {
		return nil, err
	}
	if !cfg.NoRules {
		p.rulesDir = RulesDirOf(cfg)
		if p.rules, err = LoadRules(p.rulesDir); err != nil {
			return nil, fmt.Errorf("loading the rules: %w", err)
		}
	}
	if p.store, err = correlate.OpenStore(p.stateDir); err != nil {
		return nil, fmt.Errorf("opening the trust store (state_dir): %w", err)
	}
	if p.audit, err = audit.Open(filepath.Join(p.stateDir, contain.AuditDir), 64<<20); err != nil {
		if cfg.Compliance == "strict" {
			return nil, fmt.Errorf("compliance strict: the audit trail in %s is mandatory: %w", p.stateDir, err)
		}
		o.Log.Warn("no audit trail", "error", err)
		p.audit = nil
	}
	if p.audit != nil {
		cb, _ := json.Marshal(cfg)
		if _, err := p.audit.Append("config", map[string]any{"command": o.Command, "config": json.RawMessage(cb), "version": o.Version,
			"profile": p.profile.Name, "response": p.mode}); err != nil {
			if cfg.Compliance == "strict" {
				return nil, fmt.Errorf("compliance strict: writing the audit trail: %w", err)
			}
			o.Log.Warn("the configuration was not written to the audit trail", "error", err)
		}
	}
	if cfg.NATS.URL != "" {
		n := cfg.NATS
		p.nats, err = sink.NewNATS(sink.NATSConfig{URL: n.URL, Creds: n.Creds, NKeySeed: n.NKey, CAFile: n.CA, CertFile: n.Cert,
			KeyFile: n.Key, Duplicates: n.Duplicates, Replicas: n.Replicas, Spool: filepath.Join(p.stateDir, "nats-spool.db"), Log: o.Log})
		if err != nil {
			return nil, err
		}
		p.closers = append(p.closers, func() {
			if !p.nats.Flush(5 * time.Second) {
				o.Log.Warn("alerts left in the NATS spool; the next run sends them", "pending", p.nats.Pending())
			}
			p.nats.Close()
		})
	}
	p.host, _ = os.Hostname()
	if cfg.OCSFURL != "" {
		p.ocsfHTTP = sink.NewFalco(cfg.OCSFURL)
		p.closers = append(p.closers, func() { p.ocsfHTTP.Close() })
	}
	if cfg.FalcoURL != "" {
		p.falco = sink.NewFalco(cfg.FalcoURL)
		p.closers = append(p.closers, func() { p.falco.Close() })
	}
	p.metrics = metrics.New(p.snapshot)
	p.manager = &contain.Manager{StateDir: p.stateDir}
	return p, nil
}

// openState makes the state directory; trace's default is a throw-away
// one, so a one-off experiment never changes what the daemon trusts.
func (p *Pipeline) openState() error {
	p.stateDir = p.o.Config.StateDir
	if p.stateDir == "" {
		d, err := os.MkdirTemp("", "mcp-sensor-"+p.o.Command+"-")
		if err != nil {
			return fmt.Errorf("making a throw-away state directory: %w", err)
		}
		p.stateDir, p.tmpState = d, true
		p.closers = append(p.closers, p.removeTmpState)
		return nil
	}
	if err := os.MkdirAll(p.stateDir, 0o700); err != nil {
		return fmt.Errorf("making the state directory (state_dir %s): %w", p.stateDir, err)
	}
	return nil
}

// removeTmpState removes a throw-away state directory, unless it holds
// what someone will want: forensic snapshots, or servers left contained.
func (p *Pipeline) removeTmpState() {
	keep := false
	for _, f := range []string{"forensics", contain.StateFile} {
		if _, err := os.Stat(filepath.Join(p.stateDir, f)); err == nil {
			keep = true
		}
	}
	if keep {
		p.o.Log.Warn("keeping the trace's state directory: it holds forensic snapshots or contained servers", "dir", p.stateDir)
		return
	}
	if err := os.RemoveAll(p.stateDir); err != nil && !errors.Is(err, os.ErrNotExist) {
		p.o.Log.Warn("removing the trace's state directory", "dir", p.stateDir, "error", err)
	}
}

// sensitiveGlobs are the files whose read taints a server: the rules'
// credential_paths, or the built-in list when judging with no rules.
func (p *Pipeline) sensitiveGlobs() []string {
	if l := p.rules.List("credential_paths"); l != nil {
		return l
	}
	if builtin, err := LoadRules(""); err == nil {
		return builtin.List("credential_paths")
	}
	return nil
}
