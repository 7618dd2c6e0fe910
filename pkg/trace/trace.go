// Package trace runs a live investigation: load the sensor, track a command,
// a running process or the MCP servers it discovers, and print every
// JSON-RPC message and effect until the traced process ends or the context
// is cancelled, then the counters.
package trace

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/mcpsec/sensor/pkg/audit"
	"github.com/mcpsec/sensor/pkg/contain"
	"github.com/mcpsec/sensor/pkg/contain/respond"
	"github.com/mcpsec/sensor/pkg/correlate"
	"github.com/mcpsec/sensor/pkg/decode"
	"github.com/mcpsec/sensor/pkg/loader"
	"github.com/mcpsec/sensor/pkg/metrics"
	"github.com/mcpsec/sensor/pkg/sink"
)

// DefaultOrderWindow bounds how long an event waits for earlier ones. In
// the normal course events go out as soon as the rings' watermark passes
// them (a few ms); the window only matters when a reader falls behind: a
// backlog shorter than it still comes out in order, so calls and their
// effects are still linked right. Measured: two servers writing 40,000
// msg/s on 2 vCPUs put the payload reader up to 950 ms behind; with a
// 20 ms window a third of the events came out of order, with 1 s none.
const DefaultOrderWindow = time.Second

// Options says what to trace and how to print it.
type Options struct {
	Loader loader.Config
	Decode decode.Options
	Format string // "text" or "json"
	Color  bool
	Out    io.Writer
	// PIDs are traced with their descendants. Command, if set, is launched
	// with Stdin/Stdout/Stderr and traced from its first instruction. With
	// neither, the sensor discovers MCP servers host-wide.
	PIDs    []int
	Command []string
	Stdin   io.Reader
	Stdout  io.Writer
	Stderr  io.Writer
	// RelayStderr passes the command's stderr through the trace output line
	// by line: set it when both go to the same file, so neither splits the
	// other's lines.
	RelayStderr bool
	// Force, when closed, kills a stopping command at once instead of
	// waiting out its grace period (a second Ctrl-C).
	Force <-chan struct{}
	// StatsEvery prints a stats line periodically (0: only at the end).
	StatsEvery time.Duration
	// OrderWindow holds events at most this long to print them in time order
	// (0: print as decoded); DefaultOrderWindow if unsure.
	OrderWindow time.Duration
	// NoTLS leaves OpenSSL alone: no uprobes, no TLS plaintext.
	NoTLS bool
	// Rules judge events (nil: none; calls and effects are still linked).
	// LoadRules, if set, reloads them on Reload and when RulesDir changes;
	// a set that fails to load leaves the old one active.
	Rules     *correlate.RuleSet
	LoadRules func() (*correlate.RuleSet, error)
	RulesDir  string
	Reload    <-chan struct{}
	Correlate correlate.Options
	// Response is the containment mode: "" or "off" (none), "monitor" (say
	// what would be done), "enforce" (do it). StateDir gets forensic
	// snapshots and the list of contained servers.
	Response string
	StateDir string
	// Sensitive are the globs of files whose read taints a launched server
	// (enforce mode); default: the rules' credential_paths list.
	Sensitive []string
	// Launch, if set, adjusts the command before it starts (extra files);
	// Started runs once it has (it may block the wait for it briefly).
	// OnAlert sees every alert after containment's answer.
	// Cgroups are tracked by id: processes that fork in them later are
	// traced (their current processes go in PIDs).
	Cgroups []uint64
	// Discover finds servers by their MCP handshake even when PIDs are
	// given (the daemon: explicit selectors and discovery).
	Discover bool
	// OnlyAlerts prints alerts and stats, not every message and effect.
	OnlyAlerts bool
	// Ready is called once tracing runs, with a handle on the session.
	Ready func(Handle)
	// Metrics, if set, counts alerts and latencies.
	Metrics *metrics.Metrics
	// NATS, if set, gets every alert (JetStream, spooled).
	NATS  *sink.NATS
	Falco *sink.Falco // gets every alert in Falco's shape
	// NATSEvents also publishes every effect and message on NATS.
	NATSEvents bool
	Launch     func(*exec.Cmd)
	Started    func(*exec.Cmd) error
	OnAlert    func(*correlate.Alert)
	Log        hclog.Logger
}

// Result is how a trace ended.
type Result struct {
	// ExitCode of the launched command (128+signal if killed, 127 if it
	// could not be started), -1 if there was none.
	ExitCode int
	Stats    Stats
}

// session is one run of the tracer.
type session struct {
	o         Options
	objs      *loader.Objects
	rd        *loader.Reader
	dec       *decode.Decoder
	ord       *orderer
	clock     decode.Clock
	cor       *correlate.Correlator
	audit     *audit.Log
	auditErrs uint64
	natsErrs  uint64
	holding   chan struct{} // the orderer began holding events
	alerts    []*correlate.Alert
	resp      *respond.Responder
	recent    map[string][]any // per server: its last events, for snapshots
	tls       *tlsWatcher
	w         Writer
	sink      *Sink
	roots     []int // processes tracked at the start, with their trees
	stop      context.CancelFunc
	werr      error
	failed    bool
}

// Run traces until the command or the traced processes end, or ctx is done.
func Run(ctx context.Context, o Options) (Result, error) {
	res := Result{ExitCode: -1}
	if o.Log == nil {
		o.Log = hclog.NewNullLogger()
	}
	s := &session{o: o, sink: NewSink(o.Out)}
	w, err := NewWriter(o.Format, s.sink, o.Color)
	if err != nil {
		return res, err
	}
	s.w = w
	ctx, s.stop = context.WithCancel(ctx)
	defer s.stop()

	discover := (len(o.PIDs) == 0 && len(o.Command) == 0) || o.Discover
	o.Loader.SelfPID = uint32(os.Getpid())
	o.Loader.Discover = discover
	if s.objs, err = loader.Load(o.Loader); err != nil {
		return res, err
	}
	defer s.objs.Close()

	// Readers first, then maps, then hooks (DESIGN.md, "Loader order").
	if s.rd, err = s.objs.NewReader(); err != nil {
		return res, err
	}
	s.dec = decode.NewDecoder(o.Decode)
	s.clock = o.Decode.Clock
	if s.clock.Offset == 0 {
		s.clock = decode.NewClock()
	}
	s.cor = correlate.New(o.Rules, o.Correlate)
	if o.StateDir != "" {
		if s.audit, err = audit.Open(filepath.Join(o.StateDir, contain.AuditDir), 64<<20); err != nil {
			return res, fmt.Errorf("the audit trail: %w", err)
		}
	}
	s.recent = map[string][]any{}
	if o.Response == respond.Enforce || o.Response == respond.Monitor {
		s.resp = &respond.Responder{Mode: o.Response, Objs: s.objs, Log: o.Log, StateDir: o.StateDir,
			Recent: s.recentOf, PauseLearning: s.cor.PauseLearning}
	}
	s.ord = newOrderer(o.OrderWindow, 100000, s.judge)
	s.holding = make(chan struct{}, 1)
	s.ord.onHold = func() {
		select {
		case s.holding <- struct{}{}:
		default:
		}
	}
	go s.reloadRules(ctx)
	emit := s.ord.push
	if !o.NoTLS {
		s.tls = newTLSWatcher(s.objs, o.Log)
		defer s.tls.close()
		emit = func(e decode.Event) {
			s.tls.event(e)
			s.ord.push(e)
		}
	}
	s.rd.Run(func(b []byte) {
		if err := s.dec.Record(b, emit); err != nil {
			o.Log.Debug("bad record", "error", err)
		}
		s.releaseHeld()
	})

	cg, err := s.track()
	if err != nil {
		s.rd.Close()
		return res, err
	}
	if cg != nil {
		defer func() {
			_ = s.objs.DeletePolicy(cg.ID)
			if err := contain.Unthrottle(cg); err != nil {
				o.Log.Warn("leaving a v1 throttling cgroup behind", "error", err)
			}
			if err := cg.Remove(2 * time.Second); err != nil {
				o.Log.Warn("leaving the trace cgroup behind", "error", err)
			}
		}()
	}
	if err := s.objs.Attach(); err != nil {
		s.rd.Close()
		return res, err
	}
	if len(o.PIDs) > 0 {
		// children forked between the first walk and attach
		if err := trackTrees(s.objs, o.PIDs); err != nil {
			o.Log.Warn("re-walking process trees", "error", err)
		}
	}
	if s.tls != nil {
		for _, root := range s.roots {
			_ = walkTree(root, func(pid int) error { s.tls.watch(uint32(pid)); return nil })
		}
	}
	s.announce(cg)
	s.readopt()
	if o.Ready != nil {
		o.Ready(Handle{Stats: s.stats, Servers: s.cor.Servers})
	}

	stopped := make(chan struct{})
	done := make(chan struct{})
	go s.periodic(stopped, done)

	switch {
	case len(o.Command) > 0:
		res.ExitCode, err = runCommand(ctx, o, cg, s.sink)
	case len(o.PIDs) > 0 && !o.Discover:
		err = waitPIDs(ctx, o.PIDs)
	default:
		<-ctx.Done()
	}
	close(stopped)
	<-done

	// No record after the hooks are gone; read what is in the rings, stop
	// the readers, and only then flush what the decoder and orderer hold.
	if s.tls != nil {
		s.tls.close() // before the uprobes go: it may be adding some
	}
	derr := s.objs.Detach()
	s.rd.Drain(20*time.Millisecond, 5*time.Second)
	cerr := s.rd.Close()
	s.rd.Do(func() { // Handle.Stats may be reading meanwhile
		s.dec.Flush(s.ord.push)
		s.ord.flush()
	})
	if err := s.o.Correlate.Store.Save(); err != nil {
		o.Log.Warn("the tool and baseline store was not saved", "error", err)
	}
	if s.o.NATS != nil && s.o.NATS.Stats().Connected {
		// alerts of the last moments: sent now if NATS is there (what is
		// not stays in the spool for the next run, and the stats say so)
		s.o.NATS.Flush(3 * time.Second)
	}
	res.Stats = s.stats()
	if e := s.w.Stats(&res.Stats); e != nil {
		s.writeFailed(e)
	}
	if e := s.w.Flush(); e != nil {
		s.writeFailed(e)
	}
	return res, errors.Join(err, derr, cerr, s.werr)
}

// track fills the tracking maps for what o asks to trace.
func (s *session) track() (*contain.Cgroup, error) {
	o := s.o
	switch {
	case len(o.Command) > 0:
		cg, err := contain.Create(fmt.Sprintf("trace-%d", os.Getpid()))
		if err != nil {
			return nil, fmt.Errorf("a command is traced from its first instruction through a cgroup of its own: %w", err)
		}
		if err := s.objs.TrackCgroup(cg.ID); err != nil {
			cg.Remove(0)
			return nil, err
		}
		if err := s.enforceFromStart(cg); err != nil {
			cg.Remove(0)
			return nil, err
		}
		return cg, nil
	case len(o.PIDs) > 0 && !o.Discover:
		s.roots = o.PIDs
		return nil, trackTrees(s.objs, o.PIDs)
	case len(o.PIDs) > 0:
		if err := trackTrees(s.objs, o.PIDs); err != nil {
			return nil, err
		}
		s.roots = append(s.roots, o.PIDs...)
	}
	for _, id := range o.Cgroups {
		if err := s.objs.TrackCgroup(id); err != nil {
			return nil, err
		}
	}
	for pid, cmd := range existingServers(os.Getpid()) {
		o.Log.Info("tracking a running process that looks like an MCP server (it started before the sensor: matched by its command line, not its initialize)", "pid", pid, "cmd", cmd)
		if err := trackTrees(s.objs, []int{pid}); err != nil {
			o.Log.Warn("could not track", "pid", pid, "error", err)
			continue
		}
		s.roots = append(s.roots, pid)
	}
	return nil, nil
}

func (s *session) announce(cg *contain.Cgroup) {
	switch {
	case len(s.o.Command) > 0:
		s.o.Log.Info("tracing", "command", s.o.Command, "cgroup", cg.Path)
	case len(s.o.PIDs) > 0:
		s.o.Log.Info("tracing", "pids", s.o.PIDs)
	default:
		s.o.Log.Info("tracing: discovering MCP servers (new processes with a pipe or socket for stdin that read an MCP handshake there)")
	}
}

// judge links an event to its call, prints it, then the alerts it raised
// with containment's answer.
func (s *session) judge(e decode.Event) {
	s.alerts = s.cor.Event(e, s.alerts[:0])
	if s.o.NATS != nil && s.o.NATSEvents {
		switch v := e.(type) {
		case *decode.Effect:
			s.o.NATS.Event("effect", v)
		case *decode.Message:
			s.o.NATS.Event("message", v)
		}
	}
	s.remember(e)
	s.print(e)
	for _, a := range s.alerts {
		if s.resp != nil {
			s.resp.Respond(a)
		}
		if s.o.OnAlert != nil {
			s.o.OnAlert(a)
		}
		if s.o.Falco != nil {
			s.o.Falco.Publish(a)
		}
		if s.o.Metrics != nil {
			var detect, contained time.Duration
			var done []string
			if r := a.Response; r != nil {
				detect = time.Duration(r.DetectMS * float64(time.Millisecond))
				contained = time.Duration(r.LatencyMS * float64(time.Millisecond))
				done = r.Done
			}
			s.o.Metrics.Alert(a.Rule, a.Severity, detect, contained, done)
		}
		if s.o.NATS != nil {
			if err := s.o.NATS.Publish(a.Severity, a.Rule, a); err != nil {
				s.o.Log.Warn("an alert was not spooled for NATS", "rule", a.Rule, "error", err)
				s.natsErrs++
			}
		}
		if s.audit != nil {
			if _, err := s.audit.Append("alert", a); err != nil {
				s.o.Log.Warn("an alert was not written to the audit trail", "rule", a.Rule, "error", err)
				s.auditErrs++
			}
		}
		s.print(a)
	}
}

// remember keeps each server's last events for forensic snapshots.
func (s *session) remember(e decode.Event) {
	if s.resp == nil {
		return
	}
	var server string
	switch v := e.(type) {
	case *decode.Effect:
		server = v.Server
	case *decode.Message:
		server = v.Server
	default:
		return
	}
	r := append(s.recent[server], e)
	if len(r) > 128 {
		r = r[len(r)-128:]
	}
	s.recent[server] = r
}

// recentOf runs under the reader's lock (from judge).
func (s *session) recentOf(server string) []any {
	return append([]any(nil), s.recent[server]...)
}

// reloadRules swaps in a new rule set on Reload (SIGHUP) and when a file of
// the rule directory changes; a set that does not load leaves the old one.
func (s *session) reloadRules(ctx context.Context) {
	if s.o.LoadRules == nil {
		return
	}
	poll := time.NewTicker(2 * time.Second)
	defer poll.Stop()
	last := dirStamp(s.o.RulesDir)
	for {
		why := ""
		select {
		case <-ctx.Done():
			return
		case <-s.o.Reload:
			why = "SIGHUP"
		case <-poll.C:
			st := dirStamp(s.o.RulesDir)
			if st == last {
				continue
			}
			last, why = st, "a rule file changed"
		}
		rs, err := s.o.LoadRules()
		if err != nil {
			s.o.Log.Error("rules not reloaded; the previous set stays active", "why", why, "error", err)
			continue
		}
		s.cor.SetRules(rs)
		s.o.Log.Info("rules reloaded", "why", why, "rules", len(rs.Rules), "dir", rs.Dir)
		if s.audit != nil {
			_, _ = s.audit.Append("rules", map[string]any{"why": why, "rules": len(rs.Rules), "dir": rs.Dir})
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

// print writes an event. It runs under the reader's lock, or after the
// readers stopped.
func (s *session) print(e decode.Event) {
	if s.failed {
		return
	}
	if _, isAlert := e.(*correlate.Alert); s.o.OnlyAlerts && !isAlert {
		return
	}
	if err := s.w.Event(e); err != nil {
		s.writeFailed(err)
	}
}

// writeFailed stops writing after the first error. A traced command keeps
// running (it is someone's MCP server); other modes stop.
func (s *session) writeFailed(err error) {
	if s.failed {
		return
	}
	s.failed = true
	s.werr = fmt.Errorf("writing the trace: %w", err)
	s.o.Log.Error("cannot write the trace; no more events will be printed", "error", err)
	if len(s.o.Command) == 0 {
		s.stop()
	}
}

func (s *session) periodic(stopped, done chan struct{}) {
	defer close(done)
	flush := time.NewTicker(50 * time.Millisecond)
	defer flush.Stop()
	save := time.NewTicker(5 * time.Second)
	defer save.Stop()
	// events held for ordering go out as soon as the rings' watermark
	// passes them: an alert, and containment, wait on it. The ticker runs
	// fast only while events are held (the orderer says when some are):
	// every 250 µs took the alert-to-ack p50 from 6.0-7.0 ms to 5.2-5.5 ms,
	// against a 1 ms tick.
	const fast, slow = 250 * time.Microsecond, 100 * time.Millisecond
	release := time.NewTicker(slow)
	defer release.Stop()
	ticking := false
	var statsC <-chan time.Time
	if s.o.StatsEvery > 0 {
		t := time.NewTicker(s.o.StatsEvery)
		defer t.Stop()
		statsC = t.C
	}
	for {
		select {
		case <-stopped:
			return
		case <-flush.C:
			empty := s.rd.Empty()
			s.rd.Do(func() {
				if empty { // a missing piece still in a ring is late, not lost
					s.dec.Tick(decode.BootNow(), s.ord.push)
				}
				s.ord.tick(s.clock.Wall(decode.BootNow()))
				if err := s.w.Flush(); err != nil {
					s.writeFailed(err)
				}
			})
		case <-s.holding:
			if !ticking {
				release.Reset(fast)
				ticking = true
			}
			s.rd.Do(s.releaseHeld) // the watermark's first look, now
		case <-release.C:
			if s.ord.held() {
				s.rd.Do(s.releaseHeld)
			} else if ticking {
				release.Reset(slow)
				ticking = false
			}
		case <-save.C:
			if err := s.o.Correlate.Store.Save(); err != nil {
				s.o.Log.Warn("the tool and baseline store was not saved", "error", err)
			}
		case <-statsC:
			st := s.stats()
			s.rd.Do(func() {
				if err := s.w.Stats(&st); err != nil {
					s.writeFailed(err)
				}
			})
		}
	}
}

func (s *session) stats() Stats {
	st := Stats{Kind: "stats", Time: time.Now(), PID: os.Getpid(), TID: os.Getpid()}
	s.rd.Do(func() { st.Decoder = s.dec.Stats() })
	k, err := s.objs.Counters()
	if err != nil {
		st.KernelError = err.Error()
	}
	st.Kernel = k
	st.Correlate = s.cor.Stats()
	st.RingFill = s.rd.Fill()
	s.rd.Do(func() { st.AuditErrors, st.NATSErrors, st.OrderLate = s.auditErrs, s.natsErrs, s.ord.late })
	if s.o.NATS != nil {
		ns := s.o.NATS.Stats()
		st.NATS = &ns
	}
	if s.o.Falco != nil {
		fs := s.o.Falco.Stats()
		st.Falco = &fs
	}
	if s.tls != nil {
		st.TLSFiles = s.tls.Attached()
	}
	st.Effects = st.Decoder.Effects
	st.Messages = st.Decoder.MessagesIn + st.Decoder.MessagesOut
	st.Events = st.Effects + st.Messages
	drops, cut := loader.Losses(k)
	st.Drops = drops
	st.Cut = cut + st.Decoder.Truncated
	return st
}

// trackTrees tracks each pid and its descendants as one server per pid;
// the sensor itself is never tracked.
func trackTrees(objs *loader.Objects, pids []int) error {
	self := os.Getpid()
	for _, root := range pids {
		start, err := procStart(root)
		if err != nil {
			return fmt.Errorf("process %d: %w", root, err)
		}
		srv := loader.Server{PID: uint32(root), Start: start}
		err = walkTree(root, func(pid int) error {
			if pid == self {
				return nil
			}
			st, err := procStart(pid)
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

// enforceFromStart puts the egress hooks on the sensor's cgroups and sets
// the launched command's policy before it runs: its allow-list holds from
// the first connect, and in enforce mode a read of a sensitive file denies
// it egress in the kernel at once, before any alert.
func (s *session) enforceFromStart(cg *contain.Cgroup) error {
	o := s.o
	if s.resp != nil {
		s.resp.Default = cg
	}
	flags := uint64(0)
	if o.Response == respond.Enforce {
		flags |= loader.CgTaintDeny
		globs := o.Sensitive
		if globs == nil {
			globs = o.Rules.List("credential_paths")
		}
		files := contain.ExpandSensitive(globs)
		for _, f := range files {
			if err := s.objs.AddSensitive(f.Dev, f.Ino); err != nil {
				return fmt.Errorf("marking %s sensitive: %w", f.Path, err)
			}
		}
		o.Log.Info("containment: reads of these files deny egress at once", "files", len(files))
	}
	allow, skipped := respond.ParseAllow(o.Correlate.EgressAllow)
	if len(skipped) > 0 {
		o.Log.Warn("egress allow-list entries the kernel cannot enforce (host names): the rules still judge them", "entries", skipped)
	}
	if len(allow) > 0 { // host names alone would block everything, DNS too
		flags |= loader.CgAllowList
		for _, a := range allow {
			if err := s.objs.AllowEgress(cg.ID, a.Prefix, a.Ports); err != nil {
				return fmt.Errorf("egress allow-list: %w", err)
			}
		}
	}
	if flags == 0 {
		return nil
	}
	if err := s.objs.AttachEgress(filepath.Dir(cg.Path)); err != nil {
		return err
	}
	return s.objs.SetPolicy(cg.ID, flags)
}

// readopt reports the servers an earlier sensor contained: their freeze
// (in the cgroup) and egress policy (in pinned maps) hold without it, and
// this sensor does not release them; only `sensor release` does.
func (s *session) readopt() {
	recs, err := contain.ReadState(s.o.StateDir)
	if err != nil {
		s.o.Log.Warn("the containment state file is unreadable", "error", err)
		return
	}
	for _, r := range recs {
		cg, err := contain.Open(r.Cgroup)
		if err != nil {
			continue // gone since
		}
		frozen, _ := cg.Frozen()
		p, _ := s.objs.GetPolicy(cg.ID)
		cg.Close()
		s.o.Log.Warn("a contained server is still contained (release it with `sensor release`)",
			"cgroup", r.Cgroup, "server", r.Server, "since", r.Since, "frozen", frozen, "egress_denied", p.Flags&loader.CgQuarantine != 0)
	}
}

// orderMargin is how far behind its time a record may reach its ring: its
// time is taken before the path walk and the copy, and the program may be
// preempted in between (syscall tracepoints may fault since 6.14). A record
// later than that is printed out of order and counted (order_late).
// Measured with 2 x 15,000 msg/s and 2,000 short processes on 2 vCPUs: no
// late event at 1 ms, as at 2 ms; 1 ms less of it took the alert-to-ack p50
// from 5.2-5.7 to 4.5-4.9 ms. Past the machine's capacity both margins
// print late events alike (the readers fall behind by more than the window).
const orderMargin = time.Millisecond

// releaseHeld lets out the events no later one can precede: none older
// than the rings' watermark can still come (less a margin for records
// written at the same moment on two CPUs), so they need not wait out the
// window, and none waits longer than it. It runs under the reader's lock:
// after each record, and on a timer when the rings are quiet.
func (s *session) releaseHeld() {
	if !s.ord.held() || s.o.OrderWindow <= 0 {
		return
	}
	// all in the kernel's clock: the wall clock may be slewed meanwhile
	now := decode.BootNow()
	before := s.rd.Watermark(now)
	// less a margin: a record's time is taken before it is written, a path
	// walk or a busy CPU apart, so a ring is not strictly in time order
	if m := uint64(orderMargin); before > m {
		before -= m
	}
	if floor := now - uint64(s.o.OrderWindow); floor > before {
		before = floor
	}
	s.ord.release(s.clock.Wall(before))
}

// Handle reads a running session's counters and servers.
type Handle struct {
	Stats   func() Stats
	Servers func() []correlate.ServerInfo
}
