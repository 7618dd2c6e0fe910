package pipeline

import (
	"context"
	"errors"
	"io"
	"net/netip"
	"os"
	"runtime/debug"
	"sync/atomic"
	"time"

	"github.com/mcpsec/sensor/pkg/contain"
	"github.com/mcpsec/sensor/pkg/correlate"
	"github.com/mcpsec/sensor/pkg/decode"
	"github.com/mcpsec/sensor/pkg/identity"
	"github.com/mcpsec/sensor/pkg/loader"
)

// running is what a pipeline holds while it runs.
type running struct {
	objs  *loader.Objects
	rd    *loader.Reader
	dec   *decode.Decoder
	cor   *correlate.Correlator
	core  *core
	stage *stage
	tls   *tlsWatcher
	outs  []*outputSub
	roots []int // processes tracked at the start, with their trees
	stop  context.CancelFunc
	ready atomic.Bool
}

// Run traces until the launched command or the attached processes end, or
// ctx is done, then drains every stage in order and prints the counters.
func (p *Pipeline) Run(ctx context.Context) (Result, error) {
	res := Result{ExitCode: -1}
	o, cfg := p.o, p.o.Config
	ctx, stop := context.WithCancel(ctx)
	defer stop()
	r := &running{stop: stop}
	var err error
	for _, out := range o.Outputs {
		s, err := newOutputSub(out, p.rules)
		if err != nil {
			return res, err
		}
		name := out.Name
		s.onFail = func(err error) {
			o.Log.Error("cannot write; no more events will be printed there", "output", name, "error", err)
			if len(o.Target.Command) == 0 {
				stop()
			}
		}
		r.outs = append(r.outs, s)
	}
	var sink *Sink
	if len(r.outs) > 0 {
		sink = r.outs[0].sink
	} else {
		sink = NewSink(io.Discard)
	}

	t := o.Target
	lc := loader.DefaultConfig()
	lc.SelfPID = uint32(os.Getpid())
	lc.Discover = t.Discover || (len(t.Command) == 0 && len(t.PIDs) == 0 && len(t.Cgroups) == 0)
	lc.CaptureCap, lc.PayloadRing, lc.EffectRing = uint64(cfg.CaptureMax), uint32(cfg.PayloadRing), uint32(cfg.EffectRing)
	lc.MaxTracked, lc.WakeupInterval = cfg.MaxTracked, cfg.WakeupInterval
	if r.objs, err = loader.Load(lc); err != nil {
		return res, err
	}
	defer r.objs.Close()
	p.manager.Policies = r.objs.Policies()
	p.manager.Hook = r.objs.AttachEgress

	// Readers first, then maps, then hooks (DESIGN.md, "Loader order").
	if r.rd, err = r.objs.NewReader(); err != nil {
		return res, err
	}
	dopts := decode.DefaultOptions()
	dopts.MaxMessage = int(cfg.MaxMessage)
	r.dec = decode.NewDecoder(dopts)
	var srs []correlate.ServerRoots
	for _, sr := range cfg.ServerRoots {
		srs = append(srs, correlate.ServerRoots{Match: sr.Match, Roots: sr.Roots})
	}
	r.cor = correlate.New(p.rules, correlate.Options{Roots: cfg.Roots, EgressAllow: cfg.EgressAllow, Store: p.store, Indicators: p.o.Indicators,
		Learn: cfg.Learn, Resolver: identity.NewResolver(), ServerRoots: srs})
	r.stage = newStage(p, r.cor, cfg.QueueSize)
	r.stage.sens = r.objs.AddSensitive
	if bi, ok := debug.ReadBuildInfo(); ok {
		r.stage.self = bi.Path
	}
	r.stage.untrack = func(info correlate.ServerInfo) {
		for _, pid := range procRoot.Tree(int(info.PID)) {
			_ = r.objs.Untrack(uint32(pid))
		}
		r.cor.Forget(info.ID)
	}
	for _, s := range p.subscribers(r.outs) {
		p.bus.add(s, cfg.QueueSize)
	}
	p.live.Store(r)
	if !cfg.NoTLS {
		r.tls = newTLSWatcher(r.objs, o.Log)
		defer r.tls.close()
	}
	r.core = newCore(r.rd, r.dec, dopts.Clock, r.cor, cfg.OrderWindow, r.tls, r.stage.push, r.stage.wake, o.Log)
	r.rd.Run()
	go r.core.run()
	go p.reloadRules(ctx, r.cor)

	cg, err := p.track(r)
	// the responder and the subscribers start once tracking is set (what
	// the responder reads of it is written above); nothing comes before
	// the hooks are attached
	p.bus.start()
	go r.stage.run()
	fail := func(err error) (Result, error) {
		_ = p.shutdown(r)
		p.bus.close()
		return res, err
	}
	if err != nil {
		return fail(err)
	}
	if cg != nil {
		defer p.dropLaunchCgroup(r, cg)
	}
	if err := r.objs.Attach(); err != nil {
		return fail(err)
	}
	if len(t.PIDs) > 0 {
		// children forked between the first walk and attach
		if err := trackTrees(r.objs, t.PIDs); err != nil {
			o.Log.Warn("re-walking process trees", "error", err)
		}
	}
	if r.tls != nil {
		for _, root := range r.roots {
			_ = procRoot.Walk(root, func(pid int) error { r.tls.watch(uint32(pid)); return nil })
		}
	}
	p.announce(cg)
	p.readopt()
	r.ready.Store(true)
	if o.Ready != nil {
		o.Ready(p.handle())
	}

	periodic := make(chan struct{})
	periodicDone := make(chan struct{})
	go p.periodic(periodic, periodicDone)

	switch {
	case len(t.Command) > 0:
		res.ExitCode, err = runCommand(ctx, p.o, cg, sink)
	case len(t.PIDs) > 0 && !t.Discover:
		err = waitPIDs(ctx, t.PIDs)
	default:
		<-ctx.Done()
	}
	close(periodic)
	<-periodicDone
	serr := p.shutdown(r)
	res.Stats = p.stats()
	var ns *NotStartedError
	if !errors.As(err, &ns) {
		// a command that could not start: its error alone, no counters
		p.bus.publish(Item{Stats: &res.Stats})
	}
	p.bus.close()
	for _, out := range r.outs {
		err = errors.Join(err, out.error())
	}
	return res, errors.Join(err, serr)
}

// shutdown stops the hooks, reads what is left in the rings, and drains
// the stages in order: readers, core (flushing the decoder and the
// orderer), responder. Subscribers are drained by the caller.
func (p *Pipeline) shutdown(r *running) error {
	if r.tls != nil {
		r.tls.close() // before the uprobes go: it may be adding some
	}
	derr := r.objs.Detach()
	r.rd.Drain(20*time.Millisecond, 5*time.Second)
	cerr := r.rd.Close()
	<-r.core.done
	r.stage.close()
	if err := p.store.Save(); err != nil {
		p.o.Log.Warn("the tool and baseline store was not saved", "error", err)
	}
	if p.nats != nil && p.nats.Stats().Connected {
		// alerts of the last moments: sent now if NATS is there (what is
		// not stays in the spool for the next run, and the stats say so)
		p.nats.Flush(3 * time.Second)
	}
	return errors.Join(derr, cerr)
}

// periodic saves the store and publishes stats lines, until stopped.
func (p *Pipeline) periodic(stopped, done chan struct{}) {
	defer close(done)
	save := time.NewTicker(5 * time.Second)
	defer save.Stop()
	var statsC <-chan time.Time
	if every := p.o.Config.StatsInterval; every > 0 {
		t := time.NewTicker(every)
		defer t.Stop()
		statsC = t.C
	}
	for {
		select {
		case <-stopped:
			return
		case <-save.C:
			if err := p.store.Save(); err != nil {
				p.o.Log.Warn("the tool and baseline store was not saved", "error", err)
			}
		case <-statsC:
			st := p.stats()
			p.bus.publish(Item{Stats: &st})
			p.bus.wake()
		}
	}
}

func (p *Pipeline) handle() Handle {
	r := p.live.Load()
	return Handle{
		Stats:   p.stats,
		Servers: r.cor.Servers,
		Contain: p.manager.Contain,
		Release: func(cgroup, by string) error { return p.manager.Release(cgroup) },
		DenyEgress: func(prefix netip.Prefix, ports []uint16, deny bool) error {
			if err := p.manager.EnsureHooks(); err != nil {
				return err
			}
			if deny {
				return r.objs.DenyEgress(0, prefix, ports)
			}
			return r.objs.UndenyEgress(0, prefix)
		},
		ClearDenied: r.objs.ClearDenied,
		ServerOf: func(pid int) (correlate.ServerInfo, bool) {
			for _, s := range r.cor.Servers() {
				if int(s.PID) == pid || int(s.Speaker) == pid {
					return s, true
				}
			}
			// a process of a server's tree
			for a, n := pid, 0; a > 1 && n < 64; a, n = procRoot.PPID(a), n+1 {
				for _, s := range r.cor.Servers() {
					if int(s.PID) == a {
						return s, true
					}
				}
			}
			return correlate.ServerInfo{}, false
		},
	}
}

// dropLaunchCgroup removes the launched command's cgroup and its policy.
func (p *Pipeline) dropLaunchCgroup(r *running, cg *contain.Cgroup) {
	_ = r.objs.DeletePolicy(cg.ID)
	if err := contain.Unthrottle(cg); err != nil {
		p.o.Log.Warn("leaving a v1 throttling cgroup behind", "error", err)
	}
	if err := cg.Remove(2 * time.Second); err != nil {
		p.o.Log.Warn("leaving the launch cgroup behind", "error", err)
	}
}
