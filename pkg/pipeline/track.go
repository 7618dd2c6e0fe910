package pipeline

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/mcpsec/sensor/pkg/config"
	"github.com/mcpsec/sensor/pkg/contain"
	"github.com/mcpsec/sensor/pkg/contain/respond"
	"github.com/mcpsec/sensor/pkg/correlate"
	"github.com/mcpsec/sensor/pkg/identity"
	"github.com/mcpsec/sensor/pkg/loader"
	"github.com/mcpsec/sensor/pkg/proc"
	"github.com/mcpsec/sensor/pkg/wire"
)

// procRoot is the host's /proc.
const procRoot = proc.Host

// track fills the tracking maps for what the target asks to trace.
func (p *Pipeline) track(r *running) (*contain.Cgroup, error) {
	t := p.o.Target
	switch {
	case len(t.Command) > 0:
		cg, err := contain.Create(launchCgroupName(p.o.Command, t.Command))
		if err != nil {
			return nil, fmt.Errorf("a command is traced from its first instruction through a cgroup of its own: %w", err)
		}
		if err := r.objs.TrackCgroup(cg.ID); err != nil {
			_ = cg.Remove(0)
			return nil, err
		}
		if err := p.enforceFromStart(r, cg); err != nil {
			_ = cg.Remove(0)
			return nil, err
		}
		r.stage.launched = cg
		p.manager.Launched(cg)
		return cg, nil
	case len(t.PIDs) > 0:
		if err := trackTrees(r.objs, t.PIDs); err != nil {
			return nil, err
		}
		r.roots = append(r.roots, t.PIDs...)
	}
	for _, id := range t.Cgroups {
		if err := r.objs.TrackCgroup(id); err != nil {
			return nil, err
		}
	}
	if t.Discover || (len(t.PIDs) == 0 && len(t.Cgroups) == 0) {
		p.watchRunning(r)
	}
	return nil, nil
}

// watchRunning makes every running process that could be a stdio MCP
// server (its stdin and stdout are pipes or sockets) a candidate: it
// becomes a server when it reads MCP on its stdin, as one launched after
// the sensor does at its handshake. Evidence only: what a command line
// says is never taken for it. The sensor's own processes (by pid, and by
// the binary they run) are left out.
func (p *Pipeline) watchRunning(r *running) {
	self := os.Getpid()
	exeDev, exeIno, _ := proc.FileID("/proc/self/exe")
	tracked := map[int]bool{}
	for _, pid := range r.roots {
		for _, x := range procRoot.Tree(pid) {
			tracked[x] = true
		}
	}
	n := 0
	for _, pid := range procRoot.Pids() {
		if pid == self || pid <= 2 || tracked[pid] || procRoot.SameExe(pid, exeDev, exeIno) {
			continue
		}
		in, err0 := procRoot.FD(pid, 0)
		out, err1 := procRoot.FD(pid, 1)
		if err0 != nil || err1 != nil || in.Kind == "" || out.Kind == "" {
			continue
		}
		start, err := procRoot.Start(pid)
		if err != nil {
			continue
		}
		if err := r.objs.AddCandidate(uint32(pid), start); err == nil {
			n++
		}
	}
	p.o.Log.Info("watching running processes whose stdio could carry MCP: each becomes a server when it reads MCP there", "processes", n)
}

// launchCgroupName names a launched command's cgroup by what it runs.
func launchCgroupName(cmd string, argv []string) string {
	exe, err := exec.LookPath(argv[0])
	if err != nil {
		exe = argv[0]
	}
	if abs, err := filepath.Abs(exe); err == nil {
		exe = abs
	}
	wd, _ := os.Getwd()
	id := identity.Classify(identity.Attrs{Exe: exe, Argv: argv, Cwd: wd})
	return fmt.Sprintf("%s-%s-%d", cmd, contain.Slug(id.String()), os.Getpid())
}

func (p *Pipeline) announce(cg *contain.Cgroup) {
	t := p.o.Target
	switch {
	case len(t.Command) > 0:
		p.o.Log.Info("tracing", "command", t.Command, "cgroup", cg.Path, "state_dir", p.stateDir, "response", p.mode)
	case len(t.PIDs) > 0 && !t.Discover:
		p.o.Log.Info("tracing", "pids", t.PIDs, "response", p.mode)
	default:
		p.o.Log.Info("tracing: discovering MCP servers (processes whose stdio carries an MCP handshake)", "response", p.mode)
	}
}

// trackTrees tracks each pid and its descendants as one server per pid;
// the sensor itself is never tracked.
func trackTrees(objs *loader.Objects, pids []int) error {
	self := os.Getpid()
	for _, root := range pids {
		start, err := procRoot.Start(root)
		if err != nil {
			return fmt.Errorf("process %d: %w", root, err)
		}
		srv := loader.Server{PID: uint32(root), Start: start}
		err = procRoot.Walk(root, func(pid int) error {
			if pid == self {
				return nil
			}
			st, err := procRoot.Start(pid)
			if err != nil {
				return nil // it exited during the walk
			}
			return objs.TrackPID(uint32(pid), st, srv, true)
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// enforceFromStart sets the launched command's policy before it runs: its
// allow-list holds from the first connect, and in enforce mode a read of
// a sensitive file (the credential files of every home on the host and of
// the command's own $HOME) denies it egress in the kernel at once, before
// any alert.
func (p *Pipeline) enforceFromStart(r *running, cg *contain.Cgroup) error {
	o := p.o
	flags := uint64(0)
	files := contain.ExpandSensitive(p.sensitiveGlobs(), os.Getenv("HOME"))
	for _, f := range files {
		if err := r.objs.AddSensitive(f.Dev, f.Ino); err != nil {
			return fmt.Errorf("marking %s sensitive: %w", f.Path, err)
		}
	}
	// sensor run keeps credentials home in every profile: the server
	// that read one is refused the network, and still answers its calls
	if p.mode == respond.Enforce || o.Command == config.Run {
		flags |= wire.CgTaintDeny
		o.Log.Info("containment: reads of these files deny egress at once", "files", len(files))
	}
	if o.Target.Quarantine {
		flags |= wire.CgQuarantine
	}
	allow, skipped := respond.ParseAllow(o.Config.EgressAllow)
	if len(skipped) > 0 {
		o.Log.Warn("egress allow-list entries the kernel cannot enforce (host names): the rules still judge them", "entries", skipped)
	}
	if len(allow) > 0 { // host names alone would block everything, DNS too
		flags |= wire.CgAllowList
		for _, a := range allow {
			if err := r.objs.AllowEgress(cg.ID, a.Prefix, a.Ports); err != nil {
				return fmt.Errorf("egress allow-list: %w", err)
			}
		}
	}
	if flags == 0 {
		return nil
	}
	return p.manager.AddFlags(cg, flags)
}

// readopt reports the servers an earlier sensor contained: their freeze
// (in the cgroup) and egress policy (in pinned maps) hold without it, and
// this sensor does not release them; only `sensor release` does.
func (p *Pipeline) readopt() {
	list, err := p.manager.List()
	if err != nil {
		p.o.Log.Warn("the contained servers cannot be listed", "error", err)
		return
	}
	for _, c := range list {
		if c.Gone {
			continue
		}
		args := []any{"cgroup", c.Cgroup, "frozen", c.Frozen, "egress", c.Egress}
		if c.Name != "" {
			args = append(args, "server", c.Name)
		}
		if !c.Since.IsZero() {
			args = append(args, "since", c.Since)
		}
		p.o.Log.Warn("a contained server is still contained (release it with `sensor release`)", args...)
	}
}

// reloadRules swaps in a new rule set on Reload (SIGHUP) and when a file of
// the rule directory changes; a set that does not load leaves the old one.
func (p *Pipeline) reloadRules(ctx context.Context, cor *correlate.Correlator) {
	if p.rules == nil {
		return
	}
	poll := time.NewTicker(2 * time.Second)
	defer poll.Stop()
	dir := p.rulesDir
	last := dirStamp(dir)
	for {
		why := ""
		if dir == "" && !p.o.Config.NoRules {
			// the site's directory made since (an analyst's verdict
			// wrote an exception there) is read from now on
			dir = RulesDirOf(p.o.Config)
		}
		select {
		case <-ctx.Done():
			return
		case <-p.o.Reload:
			why = "SIGHUP"
		case <-poll.C:
			st := dirStamp(dir)
			if st == last {
				continue
			}
			last, why = st, "a rule file changed"
		}
		rs, err := LoadRules(dir)
		if err != nil {
			p.o.Log.Error("rules not reloaded; the previous set stays active", "why", why, "error", err)
			continue
		}
		cor.SetRules(rs)
		p.o.Log.Info("rules reloaded", "why", why, "rules", len(rs.Rules), "dir", rs.Dir)
		if p.audit != nil {
			if _, err := p.audit.Append("rules", map[string]any{"why": why, "rules": len(rs.Rules), "dir": rs.Dir}); err != nil {
				p.o.Log.Warn("the rule reload was not written to the audit trail", "error", err)
			}
		}
	}
}

// dirStamp summarises the names, sizes and times of a directory's rule files.
func dirStamp(dir string) string {
	if dir == "" {
		return ""
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return "error: " + err.Error()
	}
	var b strings.Builder
	for _, e := range ents {
		if info, err := e.Info(); err == nil && strings.HasSuffix(e.Name(), ".yaml") {
			fmt.Fprintf(&b, "%s %d %d\n", e.Name(), info.Size(), info.ModTime().UnixNano())
		}
	}
	return b.String()
}
