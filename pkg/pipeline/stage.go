package pipeline

import (
	"path/filepath"

	"github.com/mcpsec/sensor/pkg/contain"
	"github.com/mcpsec/sensor/pkg/contain/respond"
	"github.com/mcpsec/sensor/pkg/correlate"
	"github.com/mcpsec/sensor/pkg/decode"
	"github.com/mcpsec/sensor/pkg/wire"
)

// stage is the responder: it takes the core's items in order, answers each
// alert with containment (which may wait on a freeze or write a snapshot),
// keeps each server's last events for snapshots, prepares servers found
// in enforce mode, and hands every item on to the subscribers. It runs on
// its own goroutine behind a bounded queue, so a freeze never holds up
// the capture.
type stage struct {
	p      *Pipeline
	q      *queue
	resp   *respond.Responder
	recent map[string][]any
	homes  map[string]bool // homes whose credential files are in the kernel's list
	done   chan struct{}
	// launched is the server the pipeline launched (in its own cgroup from
	// the start: nothing to move)
	launched *contain.Cgroup
	sens     func(dev, ino uint64) error
	// self is the sensor's own module; a server that turns out to be a
	// sensor (another one's proxy reading MCP on its stdin) is untracked
	self    string
	untrack func(info correlate.ServerInfo)
}

func newStage(p *Pipeline, cor *correlate.Correlator, size int) *stage {
	s := &stage{p: p, q: newQueue(size), recent: map[string][]any{}, homes: map[string]bool{}, done: make(chan struct{})}
	if p.mode == respond.Enforce || p.mode == respond.Monitor {
		s.resp = &respond.Responder{Mode: p.mode, Playbook: p.profile.Playbook, Manager: p.manager, Log: p.o.Log,
			StateDir: p.stateDir, Recent: s.recentOf, PauseLearning: cor.PauseLearning}
	}
	return s
}

// push is the core's output; it never blocks (alerts may overrun the
// bound, events are dropped and counted when the responder is that far
// behind). An alert wakes the responder at once; events wait for the
// core's wake at the end of its batch.
func (s *stage) push(it Item) {
	if it.alert() != nil {
		s.q.push(it, true)
		return
	}
	s.q.add(it, false)
}

// wake hands the responder what the core added.
func (s *stage) wake() { s.q.wake() }

func (s *stage) run() {
	defer close(s.done)
	buf := make([]Item, 0, 256)
	for {
		var ok bool
		buf, ok = s.q.pop(buf[:0], 256)
		for _, it := range buf {
			s.handle(it)
		}
		s.p.bus.wake()
		if !ok {
			return
		}
	}
}

func (s *stage) handle(it Item) {
	switch {
	case it.alert() != nil:
		if s.resp != nil {
			s.resp.Respond(it.alert())
		}
	case it.Server != nil:
		s.server(it.Server)
	case it.Event != nil:
		s.remember(it.Event)
	}
	s.p.bus.publish(it)
}

// close drains the queue and waits.
func (s *stage) close() {
	s.q.close()
	<-s.done
}

// remember keeps each server's last events for forensic snapshots.
func (s *stage) remember(e decode.Event) {
	if s.resp == nil || s.p.mode != respond.Enforce {
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

// recentOf runs on this stage's goroutine (from Respond).
func (s *stage) recentOf(server string) []any {
	return append([]any(nil), s.recent[server]...)
}

// server prepares a server found in enforce mode the way a launched one is
// prepared before it starts: the credential files of its homes join the
// kernel's sensitive list, and a server that shares its client's cgroup
// (every discovered stdio server) gets one of its own, whose policy
// refuses egress once it reads one of them: the taint holds in the kernel,
// whatever userspace does next, and a freeze never reaches the client.
func (s *stage) server(n *ServerNotice) {
	if n.State == "gone" {
		delete(s.recent, n.Info.ID)
		s.p.manager.Gone(n.Info.ID)
		return
	}
	// (what this sensor launched runs its helper, the sensor's binary, until it execs the server)
	if id := n.Info.Identity; s.launched == nil && s.self != "" && id.Kind == "go" && id.Name == s.self && s.untrack != nil {
		s.p.o.Log.Info("not tracking another sensor (found by what it runs)", "pid", n.Info.PID, "command", n.Info.Command)
		s.untrack(n.Info)
		return
	}
	if s.sens == nil {
		return
	}
	// the credential files of its homes join the kernel's list in every
	// mode: an open of one wakes the reader at once (detection waits for
	// no poll); only an enforce policy makes it deny egress
	var fresh []string
	for _, h := range n.Info.Homes {
		if !s.homes[h] {
			s.homes[h] = true
			fresh = append(fresh, h)
		}
	}
	if len(fresh) > 0 {
		for _, f := range contain.ExpandSensitive(s.p.sensitiveGlobs(), fresh...) {
			if err := s.sens(f.Dev, f.Ino); err != nil {
				s.p.o.Log.Warn("a credential file is not in the kernel's sensitive list", "file", f.Path, "error", err)
			}
		}
	}
	if s.p.mode != respond.Enforce || n.State != "found" || s.launched != nil {
		return
	}
	t := contain.Target{Server: n.Info.ID, Name: n.Info.Name, PID: int(n.Info.PID)}
	cg, err := s.p.manager.CgroupOf(t)
	if err != nil {
		s.p.o.Log.Warn("the server stays in its client's cgroup: its credential reads are judged, not refused in the kernel", "server", n.Info.Name, "error", err)
		return
	}
	flags := wire.CgTaintDeny
	allow, _ := respond.ParseAllow(s.p.o.Config.EgressAllow)
	if len(allow) > 0 {
		flags |= wire.CgAllowList
		for _, a := range allow {
			_ = s.p.live.Load().objs.AllowEgress(cg.ID, a.Prefix, a.Ports)
		}
	}
	if err := s.p.manager.AddFlags(cg, flags); err != nil {
		s.p.o.Log.Warn("no kernel policy for the server", "server", n.Info.Name, "cgroup", filepath.Base(cg.Path), "error", err)
		return
	}
	s.p.o.Log.Info("server in a cgroup of its own: reads of credentials deny its egress in the kernel", "server", n.Info.Name, "pid", n.Info.PID, "cgroup", cg.Path)
}
