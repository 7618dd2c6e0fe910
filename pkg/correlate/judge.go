package correlate

import (
	"encoding/binary"
	"hash/fnv"
	"strconv"
	"strings"
	"time"

	"github.com/mcpsec/sensor/pkg/decode"
)

// judge runs the rules that look at this kind and type of event on the
// variables in c.v.
func (c *Correlator) judge(when, typ string, at time.Time, p *decode.Proc,
	cl *call, e *decode.Effect, m *decode.Message, tool string, out []*Alert) []*Alert {
	if c.rules == nil {
		return out
	}
	c.cands = c.rules.candidates(when, typ, c.cands)
	if len(c.cands) == 0 {
		return out
	}
	name := c.v.server.Name
	for _, r := range c.cands {
		if r.guard != nil && !r.guard(&c.v) {
			c.stats.Guarded++
			continue
		}
		c.stats.Evaluated++
		if ok, err := r.eval(&c.v); err != nil {
			c.stats.EvalErrors[r.Name]++
			continue
		} else if !ok {
			continue
		}
		a := &Alert{Kind: "alert", Time: at, Proc: *p, ServerName: name, Rule: r.Name, Severity: r.Severity, Tags: r.Tags,
			Output: r.tmpl.render(&c.v), Why: r.Desc, Action: r.Action, Tool: tool,
			Source: r.File + ":" + itoa(r.Line)}
		if cl != nil {
			ref := cl.ref
			a.Call = &ref
			a.Ambiguous = c.v.call.Ambiguous
		}
		if e != nil {
			a.Effects = []*decode.Effect{e}
		}
		a.Evidence = c.evidenceFor(r, cl)
		if m != nil {
			a.Message = &MessageRef{Session: m.Session, Direction: m.Direction, Type: m.Type, Method: m.Method, ID: m.ID}
		}
		out = c.raiseAs(a, r.Dedupe, r.Window, out)
	}
	return out
}

// matches says whether the rule fires on v: its guard, then its condition.
func (r *Rule) matches(v *vars) (bool, error) {
	if r.guard != nil && !r.guard(v) {
		return false, nil
	}
	return r.eval(v)
}

// eval runs the rule's condition.
func (r *Rule) eval(v *vars) (bool, error) {
	val, _, err := r.prg.Eval(v)
	if err != nil {
		return false, err
	}
	b, ok := val.Value().(bool)
	return ok && b, nil
}

// raise adds an alert unless the same one was raised within the dedupe
// window (counted as suppressed).
func (c *Correlator) raise(a *Alert, out []*Alert) []*Alert { return c.raiseAs(a, "", 0, out) }

// raiseAs is raise with a rule's own idea of the same alert: by event (the
// same rule, server, call and subject; not the output: a rate in it
// changes at every event), by call, or by server alone; and its window.
func (c *Correlator) raiseAs(a *Alert, by string, window time.Duration, out []*Alert) []*Alert {
	if window <= 0 {
		window = c.opts.Dedupe
	}
	key := a.Rule + "\x00" + a.Server
	if by != "server" {
		key += "\x00" + a.Tool
		if a.Call != nil {
			key += "\x00" + a.Call.Session + string(a.Call.ID)
		}
	}
	if by == "" || by == "event" {
		for _, e := range a.Effects {
			key += "\x00" + e.Type + " " + e.Path + " " + e.Addr + " " + strings.Join(e.Argv, " ")
		}
		if m := a.Message; m != nil {
			key += "\x00" + m.Direction + m.Method + string(m.ID)
		}
	}
	if last, ok := c.recent[key]; ok && a.Time.Sub(last) < window && a.Time.Sub(last) >= 0 {
		c.stats.Suppressed++
		return out
	}
	c.recent[key] = a.Time
	if len(c.recent) >= c.sweepAt {
		// forget what is past the window; sweep again when the map has
		// doubled, so the cost stays linear
		for k, t := range c.recent {
			if a.Time.Sub(t) > max(c.opts.Dedupe, time.Minute) {
				delete(c.recent, k)
			}
		}
		c.sweepAt = max(2*len(c.recent), 4096)
	}
	c.stats.Alerts[a.Severity]++
	a.ID = alertID(key, a.Time)
	return append(out, a)
}

// alertID names an alert for verdicts and references: its dedupe key
// and kernel time, hashed (16 hex digits; the same alert read back from
// the audit trail, NATS or the alerts file carries the same id).
func alertID(key string, at time.Time) string {
	h := fnv.New64a()
	h.Write([]byte(key))
	var b [8]byte
	binary.LittleEndian.PutUint64(b[:], uint64(at.UnixNano()))
	h.Write(b[:])
	return strconv.FormatUint(h.Sum64()|1<<63, 16)
}

func itoa(n int) string {
	var b [20]byte
	i := len(b)
	if n == 0 {
		return "0"
	}
	for n > 0 {
		i--
		b[i] = byte('0' + n%10)
		n /= 10
	}
	return string(b[i:])
}

// rate counts events per second over the last minute.
type rate struct {
	buckets [60]uint32
	secs    [60]int64
}

func (r *rate) add(t time.Time) {
	s := t.Unix()
	i := s % 60
	if r.secs[i] != s {
		r.secs[i], r.buckets[i] = s, 0
	}
	r.buckets[i]++
}

// perMin is the count over the minute before now (the events' clock is the
// kernel's, shown as wall time, so now is wall time too).
func (r *rate) perMin(now time.Time) int64 {
	n := now.Unix()
	var sum int64
	for i := range r.buckets {
		if n-r.secs[i] < 60 {
			sum += int64(r.buckets[i])
		}
	}
	return sum
}
