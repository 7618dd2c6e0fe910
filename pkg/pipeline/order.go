package pipeline

import (
	"container/heap"
	"sync/atomic"
	"time"

	"github.com/mcpsec/sensor/pkg/decode"
)

// orderer puts events from the two rings (effects, payloads) back in time
// order before they are printed. Each ring is read in order, but the two
// interleave only roughly, and a message is stamped with the time its first
// byte was read, yet complete only at its last. An event is held until
// events `window` newer have been seen, or the clock has moved past it by
// `window`; max bounds the memory held.
type orderer struct {
	h      eventHeap
	n      atomic.Int64 // len(h), for held() without the lock
	window time.Duration
	max    int
	newest time.Time
	out    func(decode.Event)
	seq    uint64
	// lastOut is the newest time released; late counts events released
	// after a newer one: a message whose bytes took longer than the
	// window to arrive whole, or a record the watermark's margin missed
	lastOut time.Time
	late    uint64
	// onHold, if set, is called when events begin to be held
	onHold func()
}

type held struct {
	t   time.Time
	seq uint64 // arrival order breaks ties
	e   decode.Event
}

type eventHeap []held

func (h eventHeap) Len() int { return len(h) }
func (h eventHeap) Less(i, j int) bool {
	if h[i].t.Equal(h[j].t) {
		return h[i].seq < h[j].seq
	}
	return h[i].t.Before(h[j].t)
}
func (h eventHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *eventHeap) Push(x any)   { *h = append(*h, x.(held)) }
func (h *eventHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

func newOrderer(window time.Duration, max int, out func(decode.Event)) *orderer {
	return &orderer{window: window, max: max, out: out}
}

func eventTime(e decode.Event) time.Time { return e.EventTime() }

// push adds an event and releases what is old enough.
func (o *orderer) push(e decode.Event) {
	if o.window <= 0 {
		o.out(e)
		return
	}
	t := eventTime(e)
	o.seq++
	if o.h.Len() == 0 && o.onHold != nil {
		o.onHold()
	}
	heap.Push(&o.h, held{t: t, seq: o.seq, e: e})
	defer func() { o.n.Store(int64(o.h.Len())) }()
	if t.After(o.newest) {
		o.newest = t
	}
	o.release(o.newest.Add(-o.window))
	for o.h.Len() > o.max {
		o.emit(heap.Pop(&o.h).(held))
	}
}

// tick releases events the wall clock has left behind by a window.
func (o *orderer) tick(now time.Time) { o.release(now.Add(-o.window)) }

// held says whether events wait (read without the lock: a hint only).
func (o *orderer) held() bool { return o.n.Load() > 0 }

func (o *orderer) release(before time.Time) {
	defer func() { o.n.Store(int64(o.h.Len())) }()
	for o.h.Len() > 0 && o.h[0].t.Before(before) {
		o.emit(heap.Pop(&o.h).(held))
	}
}

func (o *orderer) emit(h held) {
	if h.t.Before(o.lastOut) {
		o.late++
	} else {
		o.lastOut = h.t
	}
	o.out(h.e)
}

// flush releases everything.
func (o *orderer) flush() {
	for o.h.Len() > 0 {
		o.emit(heap.Pop(&o.h).(held))
	}
}
