package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/mcpsec/sensor/pkg/config"
	"github.com/mcpsec/sensor/pkg/correlate"
	"github.com/mcpsec/sensor/pkg/decode"
	"github.com/mcpsec/sensor/pkg/pipeline"
	"github.com/mcpsec/sensor/pkg/scan"
)

// sandboxHome is the throw-away $HOME, inside the sandbox's own /tmp.
const sandboxHome = "/tmp/mcpsec-scan-home"

// scanLive starts each stdio server once, in the sandbox, under the
// sensor, and judges what it listed with the other servers of its client.
func scanLive(r *scan.Report, o scanOpts, adv *scan.Advisories, refused map[string]string) error {
	pins, err := scan.OpenPins(filepath.Join(o.stateDir, "pins.json"))
	if err != nil {
		return err
	}
	self, err := os.Executable()
	if err != nil {
		return fmt.Errorf("finding the sensor's own binary: %w", err)
	}
	type ran struct {
		live scan.Live
		defs []scan.Def
	}
	done := map[string]*ran{}
	groups := map[string][]scan.Listed{}
	var order []string
	for _, e := range r.Entries {
		g := e.Client + "\x00" + e.File + "\x00" + e.Project
		if _, ok := groups[g]; !ok {
			order = append(order, g)
			groups[g] = nil
		}
		if !e.Stdio() {
			continue
		}
		k := runKey(e)
		x := done[k]
		if x == nil {
			fmt.Fprintf(os.Stderr, "sensor scan: starting %s (%s) in the sandbox...\n", e.Name, e.Client)
			l, defs, alerts := runSandboxed(self, e, o)
			x = &ran{live: l, defs: defs}
			done[k] = x
			r.Live = append(r.Live, l)
			if !l.Started {
				r.Findings = append(r.Findings, scan.Finding{Rule: "not-started", Severity: "low", Client: e.Client, File: e.File, Line: e.Line,
					Server: e.Name, Title: e.Name + " did not start in the sandbox", Evidence: l.Error,
					Fix: "check the command; a package not in the local cache cannot be fetched in the sandbox (its egress is refused)"})
			}
			r.Findings = append(r.Findings, startupFindings(e, l, alerts)...)
			if id := l.Identity; id != "" {
				r.Findings = append(r.Findings, identityAdvisories(e, id, adv)...)
				r.Findings = append(r.Findings, scan.FleetRefused(e, id, refused)...)
			}
		}
		if x.live.Started {
			listed := scan.Listed{Entry: e, Defs: x.defs}
			groups[g] = append(groups[g], listed)
			r.Findings = append(r.Findings, pins.Check(listed, o.repin, time.Now())...)
		}
	}
	for _, g := range order {
		r.Findings = append(r.Findings, scan.Definitions(groups[g])...)
	}
	return pins.Save()
}

func runKey(e scan.Entry) string {
	b, _ := json.Marshal([]any{e.Command, e.Args, e.Env, e.Cwd, e.Project})
	return string(b)
}

// runSandboxed runs one server under a pipeline of its own, in the
// sandbox, lists what it offers and collects what it did meanwhile.
func runSandboxed(self string, e scan.Entry, o scanOpts) (l scan.Live, defs []scan.Def, alerts []*correlate.Alert) {
	l = scan.Live{Server: e.Name, Client: e.Client}
	start := time.Now()
	defer func() { l.Seconds = math.Round(time.Since(start).Seconds()*10) / 10 }()
	// the server runs as whoever owns the file that names it: another
	// user's configuration never runs as root
	uid, gid := 0, 0
	if st, err := os.Stat(e.File); err == nil {
		if sys, ok := st.Sys().(*syscall.Stat_t); ok {
			uid, gid = int(sys.Uid), int(sys.Gid)
		}
	}
	// its package caches are its owner's
	realHome := os.Getenv("HOME")
	if u, err := user.LookupId(strconv.Itoa(uid)); err == nil && uid != 0 {
		realHome = u.HomeDir
	}
	if realHome == "" {
		realHome = "/root"
	}
	cwd := firstNonEmpty(e.Cwd, e.Project)
	keep := append([]string{}, o.keep...)
	for _, d := range []string{cwd, filepath.Join(realHome, ".npm"), filepath.Join(realHome, ".cache/uv"), filepath.Join(realHome, ".local/share/uv")} {
		if d != "" && underHidden(d) {
			keep = append(keep, d)
		}
	}
	if exe, err := exec.LookPath(e.Command); err == nil && underHidden(exe) {
		// its installation (~/.nvm/versions/node/vX/bin/node: vX), or the
		// file alone when it lies right in a hidden directory (/tmp/x)
		keep = append(keep, installDir(exe))
	}
	env := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + sandboxHome, "USER=" + os.Getenv("USER"), "LANG=C.UTF-8",
		"npm_config_cache=" + filepath.Join(realHome, ".npm"), "npm_config_prefer_offline=true", "npm_config_update_notifier=false",
		"npm_config_logs_max=0", "NO_UPDATE_NOTIFIER=1", "UV_OFFLINE=1", "UV_CACHE_DIR=" + filepath.Join(realHome, ".cache/uv")}
	if cwd != "" {
		env = append(env, "MCPSEC_SANDBOX_CWD="+cwd)
	}
	for _, k := range slices.Sorted(maps.Keys(e.Env)) {
		if strings.HasPrefix(k, "LD_") {
			continue // the dynamic loader's: never into the helper, nor the server
		}
		env = append(env, k+"="+e.Env[k])
	}

	inR, inW, err1 := os.Pipe()
	outR, outW, err2 := os.Pipe()
	if err := errors.Join(err1, err2); err != nil {
		l.Error = err.Error()
		return l, nil, nil
	}
	var stderr bytes.Buffer
	col := &collector{self: self}
	cfg := config.Default(config.Trace)
	cfg.StateDir = ""
	ctx, cancel := context.WithTimeout(context.Background(), o.timeout+10*time.Second)
	defer cancel()
	ready := make(chan struct{})
	p, err := pipeline.New(pipeline.Options{Command: config.Trace, Config: cfg, Version: version,
		Target: pipeline.Target{Command: sandboxCommand(self, sandboxHome, uid, gid, keep, append([]string{e.Command}, e.Args...)),
			Stdin: inR, Stdout: outW, Stderr: &limitedBuffer{b: &stderr, max: 8 << 10}, Quarantine: true,
			Launch: func(cmd *exec.Cmd) {
				cmd.Env = env
				cmd.SysProcAttr.Cloneflags |= syscall.CLONE_NEWNS
			}},
		Ready: func(pipeline.Handle) { close(ready) },
	})
	if err != nil {
		l.Error = err.Error()
		return l, nil, nil
	}
	defer p.Close()
	p.Subscribe(pipeline.Subscriber{Name: "scan", Handle: col.handle})
	runDone := make(chan error, 1)
	go func() {
		_, err := p.Run(ctx)
		inR.Close()
		outW.Close()
		runDone <- err
	}()
	select {
	case <-ready:
		defs, l.Tools, l.Resource, l.Prompts, err = listAll(ctx, o.timeout, inW, outR)
		if err != nil {
			l.Error = err.Error()
			if s := strings.TrimSpace(stderr.String()); s != "" {
				l.Error += ": " + lastLine(s)
			}
		} else {
			l.Started = true
		}
		time.Sleep(cfg.OrderWindow + 200*time.Millisecond) // the effects still in the ordering window
	case err := <-runDone:
		l.Error = fmt.Sprint("the sensor stopped: ", err)
		return l, nil, nil
	}
	cancel()
	inW.Close()
	if err := <-runDone; err != nil && l.Error == "" && !errors.Is(err, context.Canceled) {
		l.Error = err.Error()
	}
	outR.Close()
	l.Identity = col.identity
	l.Files, l.Processes, l.Connects = col.summary()
	alerts = col.alerts
	for _, a := range alerts {
		l.Alerts = append(l.Alerts, a.Rule+" ("+a.Severity+")")
	}
	return l, defs, alerts
}

// listAll completes the handshake and reads the three lists.
func listAll(ctx context.Context, timeout time.Duration, w *os.File, r *os.File) (defs []scan.Def, tools, resources, prompts []string, err error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	client := mcp.NewClient(&mcp.Implementation{Name: "mcpsec-scan", Version: version}, nil)
	sess, err := client.Connect(ctx, &mcp.IOTransport{Reader: r, Writer: w}, nil)
	if err != nil {
		return nil, nil, nil, nil, fmt.Errorf("no MCP handshake within %s: %w", timeout, err)
	}
	defer sess.Close()
	caps := sess.InitializeResult().Capabilities
	add := func(kind, name string, v any) {
		b, _ := json.Marshal(v)
		defs = append(defs, scan.NewDef(kind, name, b))
	}
	if caps == nil || caps.Tools != nil {
		for t, err := range sess.Tools(ctx, nil) {
			if err != nil {
				return defs, tools, resources, prompts, fmt.Errorf("tools/list: %w", err)
			}
			tools = append(tools, t.Name)
			add("tool", t.Name, t)
		}
	}
	if caps != nil && caps.Resources != nil {
		for res, err := range sess.Resources(ctx, nil) {
			if err != nil {
				break
			}
			resources = append(resources, res.URI)
			add("resource", res.URI, res)
		}
	}
	if caps != nil && caps.Prompts != nil {
		for pr, err := range sess.Prompts(ctx, nil) {
			if err != nil {
				break
			}
			prompts = append(prompts, pr.Name)
			add("prompt", pr.Name, pr)
		}
	}
	return defs, tools, resources, prompts, nil
}

// installDir is what to keep visible for an executable in a hidden
// directory: the directory above its bin/, its own directory, or itself.
func installDir(exe string) string {
	dir := filepath.Dir(exe)
	// never a home itself (/home/alice/bin/srv must not show /home/alice)
	shown := func(d string) bool {
		return !slices.Contains(hiddenDirs, d) && !slices.Contains(hiddenDirs, filepath.Dir(d))
	}
	if filepath.Base(dir) == "bin" && shown(filepath.Dir(dir)) {
		return filepath.Dir(dir)
	}
	if shown(dir) {
		return dir
	}
	return exe
}

// collector keeps what a sandboxed server did. The sandbox helper's own
// work (its mounts, before it execs the server) is not the server's.
type collector struct {
	mu       sync.Mutex
	self     string // the sensor's binary: the helper runs it
	helper   uint32 // the helper's pid, until it execs the server
	execed   bool
	opens    map[string]bool
	execs    map[string]bool
	connects map[string]bool
	alerts   []*correlate.Alert
	identity string
}

func (c *collector) handle(items []pipeline.Item) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.opens == nil {
		c.opens, c.execs, c.connects = map[string]bool{}, map[string]bool{}, map[string]bool{}
	}
	for _, it := range items {
		if n := it.Server; n != nil && n.Info.Identity.Name != "" && !strings.HasSuffix(n.Info.Identity.Name, "/cmd/sensor") {
			c.identity = n.Info.Name
		}
		switch v := it.Event.(type) {
		case *correlate.Alert:
			if v.Tool != "" && len(v.Effects) == 0 {
				continue // tool rules: the scan judges definitions itself
			}
			if !c.execed && (c.helper == 0 || v.PID == c.helper) {
				continue
			}
			c.alerts = append(c.alerts, v)
		case *decode.Effect:
			if !c.execed {
				// the launch (a fork in the scan) and the helper, from its
				// exec of the sensor's binary to its exec of the server
				if v.Type == "exec" && v.Path == c.self {
					c.helper = v.PID
					continue
				}
				if c.helper == 0 || v.PID != c.helper {
					continue
				}
				if c.execed = v.Type == "exec"; !c.execed {
					continue
				}
			}
			switch v.Type {
			case "open":
				if notable(v.Path) {
					p := v.Path
					if v.Errno != "" {
						p += " (" + v.Errno + ")"
					}
					c.opens[p] = true
				}
			case "exec":
				if len(v.Argv) > 0 {
					c.execs[strings.Join(v.Argv, " ")] = true
				}
			case "connect", "egress_denied", "sendto":
				if v.Addr != "" && !strings.HasPrefix(v.Addr, "family") {
					c.connects[v.Addr] = true
				}
			}
		}
	}
	return nil
}

func (c *collector) summary() (opens, execs, connects []string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Sorted(maps.Keys(c.opens)), slices.Sorted(maps.Keys(c.execs)), slices.Sorted(maps.Keys(c.connects))
}

// notable leaves out what every program opens (libraries, the runtime's
// own files, /proc and /dev) and the package's code.
func notable(p string) bool {
	for _, pre := range []string{"/usr/", "/lib", "/etc/ld.so", "/proc/", "/sys/", "/dev/", "/etc/ssl/", "/etc/localtime", "/etc/nsswitch", "/etc/passwd", "/etc/host", "/etc/resolv", "/etc/gai"} {
		if strings.HasPrefix(p, pre) {
			return false
		}
	}
	return !strings.Contains(p, "/node_modules/") && !strings.Contains(p, "/site-packages/") && !strings.Contains(p, "/.npm/") &&
		p != "" && !strings.HasPrefix(p, sandboxHome+"/.npm")
}

// startupFindings report what a server did before it was asked anything:
// the connections it tried (refused) and the processes it ran, once per
// entry, and the sensor's alerts.
func startupFindings(e scan.Entry, l scan.Live, alerts []*correlate.Alert) []scan.Finding {
	var out []scan.Finding
	f := func(sev, title, evidence string) {
		out = append(out, scan.Finding{Rule: "startup-effect", Severity: sev, Client: e.Client, File: e.File, Line: e.Line,
			Server: e.Name, Title: title, Evidence: evidence})
	}
	if len(l.Connects) > 0 {
		f("medium", fmt.Sprintf("%s tried %d connection(s) on start-up, before any call", e.Name, len(l.Connects)), strings.Join(l.Connects, ", "))
	}
	var runs []string
	for _, p := range l.Processes {
		if !launcherProcess(p) && !strings.HasPrefix(p, e.Command+" ") && p != e.Command {
			runs = append(runs, p)
		}
	}
	var homeReads []string
	for _, p := range l.Files {
		if homeFile(strings.SplitN(p, " (", 2)[0], firstNonEmpty(e.Cwd, e.Project)) {
			homeReads = append(homeReads, p)
		}
	}
	if len(homeReads) > 0 {
		f("medium", fmt.Sprintf("%s opened %d file(s) in a home on start-up, before any call", e.Name, len(homeReads)), strings.Join(homeReads, ", "))
	}
	if len(runs) > 0 {
		f("low", fmt.Sprintf("%s ran %d program(s) on start-up", e.Name, len(runs)), strings.Join(runs, "; "))
	}
	for _, a := range alerts {
		out = append(out, scan.Finding{Rule: "startup-alert", Severity: a.Severity, Client: e.Client, File: e.File, Line: e.Line,
			Server: e.Name, Title: fmt.Sprintf("%s: %s", a.Rule, a.Why), Evidence: a.Output})
	}
	return out
}

// homeFile: p is in a home (the real ones, hidden in the sandbox, or the
// throw-away one) and is not the package managers' own (their rc files
// and caches) nor in the server's project.
func homeFile(p, project string) bool {
	if project != "" && strings.HasPrefix(p, project+"/") {
		return false
	}
	rest := ""
	for _, h := range []string{sandboxHome, "/root", "/home"} {
		if r, ok := strings.CutPrefix(p, h+"/"); ok {
			rest = r
			if h == "/home" {
				_, rest, _ = strings.Cut(r, "/")
			}
			break
		}
	}
	if rest == "" {
		return false
	}
	for _, own := range []string{".npmrc", ".npm/", ".yarnrc", ".cache/", ".local/", ".config/npm", ".config/yarn", ".config/pnpm", ".nvm/", "node_modules/", ".node_repl_history", ".pnpm"} {
		if strings.HasPrefix(rest, own) || rest == strings.TrimSuffix(own, "/") {
			return false
		}
	}
	return true
}

// launcherProcess: the package managers and runtimes a server is started
// through (npx -> npm exec -> sh -> node) are not its own doing.
func launcherProcess(argv string) bool {
	exe := filepath.Base(strings.Fields(argv + " x")[0])
	switch exe {
	case "node", "npm", "npx", "sh", "env", "uv", "uvx", "python", "python3", "bun", "bunx", "pnpm":
		return true
	}
	return strings.HasPrefix(exe, "mcp-server") || strings.HasPrefix(exe, "python3.")
}

// identityAdvisories judges the version the sensor saw the server run
// (a package launched by path or unpinned has one only then).
func identityAdvisories(e scan.Entry, id string, adv *scan.Advisories) []scan.Finding {
	if p, ok := scan.PackageOf(e); ok && p.Version != "" {
		return nil // judged from the entry already
	}
	at := strings.LastIndex(id, "@")
	if at <= 0 {
		return nil
	}
	name, ver := id[:at], id[at+1:]
	var out []scan.Finding
	for _, eco := range []string{"npm", "pypi"} {
		for _, a := range adv.Match(eco, name, ver) {
			a := a
			out = append(out, scan.Finding{Rule: "vulnerable-package", Severity: a.Severity, Client: e.Client, File: e.File, Line: e.Line,
				Server: e.Name, Title: fmt.Sprintf("%s@%s (as run) has advisory %s (%s): %s", name, ver, a.ID, strings.Join(a.Aliases, ", "), a.Summary),
				Evidence: "the sensor identified the running server as " + id, Fix: "upgrade to " + a.Fixed + " or later", Advisory: &a})
		}
	}
	return out
}

func firstNonEmpty(s ...string) string {
	for _, x := range s {
		if x != "" {
			return x
		}
	}
	return ""
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}

// limitedBuffer keeps the first max bytes written (a server's stderr).
type limitedBuffer struct {
	mu  sync.Mutex
	b   *bytes.Buffer
	max int
}

func (l *limitedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if room := l.max - l.b.Len(); room > 0 {
		l.b.Write(p[:min(len(p), room)])
	}
	return len(p), nil
}
