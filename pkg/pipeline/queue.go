package pipeline

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/mcpsec/sensor/pkg/correlate"
	"github.com/mcpsec/sensor/pkg/decode"
)

// Item is what flows from the correlator to the subscribers, in order: an
// event (an effect, a message, or an alert with containment's answer), a
// server found, identified or gone, or a stats snapshot.
type Item struct {
	Event  decode.Event
	Server *ServerNotice
	Stats  *Stats
}

// ServerNotice says a server was found, identified again or is gone.
type ServerNotice struct {
	State string // found, identified, gone
	Time  time.Time
	Info  correlate.ServerInfo
}

// alert is the item's alert, if it is one.
func (it Item) alert() *correlate.Alert {
	a, _ := it.Event.(*correlate.Alert)
	return a
}

// queue is a bounded FIFO between two goroutines. Push never blocks: what
// does not fit is dropped and counted. Alerts (must) may overrun the bound
// by as much again before they are dropped, so a flood of events cannot
// push an alert out.
type queue struct {
	mu     sync.Mutex
	items  []Item
	head   int
	n      int
	cap    int
	closed bool
	ready  chan struct{} // signalled when items arrive or the queue closes
	// counters
	pushed, popped atomic.Uint64
	dropped        atomic.Uint64 // full
	droppedMust    atomic.Uint64 // alerts dropped: past twice the bound
	highWater      atomic.Int64
}

func newQueue(capacity int) *queue {
	return &queue{items: make([]Item, min(256, 2*capacity)), cap: capacity, ready: make(chan struct{}, 1)}
}

// grow doubles the ring (up to twice the bound, the most alerts may
// take): memory follows what waits, not the bound (65,536 items by
// default, 4 MiB per queue preallocated).
func (q *queue) grow() {
	items := make([]Item, min(2*len(q.items), 2*q.cap))
	for i := 0; i < q.n; i++ {
		items[i] = q.items[(q.head+i)%len(q.items)]
	}
	q.items, q.head = items, 0
}

// push adds an item and wakes the consumer; it returns false if the item
// was dropped.
func (q *queue) push(it Item, must bool) bool {
	if !q.add(it, must) {
		return false
	}
	q.wake()
	return true
}

// wake tells a waiting consumer that items are there. A producer that adds
// a batch of items calls it once at the end: a consumer woken at each item
// takes them one at a time, and every wake-up is a thread switch.
func (q *queue) wake() {
	select {
	case q.ready <- struct{}{}:
	default:
	}
}

// add adds an item without waking the consumer: the producer must call
// wake before it waits for more work.
func (q *queue) add(it Item, must bool) bool {
	q.mu.Lock()
	limit := q.cap
	if must {
		limit = 2 * q.cap
	}
	if q.closed || q.n >= limit {
		q.mu.Unlock()
		if must {
			q.droppedMust.Add(1)
		} else {
			q.dropped.Add(1)
		}
		return false
	}
	if q.n == len(q.items) {
		q.grow()
	}
	q.items[(q.head+q.n)%len(q.items)] = it
	q.n++
	if int64(q.n) > q.highWater.Load() {
		q.highWater.Store(int64(q.n))
	}
	q.mu.Unlock()
	q.pushed.Add(1)
	return true
}

// pop waits for items and moves up to max of them into buf. It returns
// false once the queue is closed and empty.
func (q *queue) pop(buf []Item, max int) ([]Item, bool) {
	for {
		q.mu.Lock()
		if q.n > 0 {
			for q.n > 0 && len(buf) < max {
				i := q.head % len(q.items)
				buf = append(buf, q.items[i])
				q.items[i] = Item{}
				q.head = (q.head + 1) % len(q.items)
				q.n--
			}
			q.mu.Unlock()
			q.popped.Add(uint64(len(buf)))
			return buf, true
		}
		if q.closed {
			q.mu.Unlock()
			return buf, false
		}
		q.mu.Unlock()
		<-q.ready
	}
}

// close lets the consumer drain what is queued, then stop.
func (q *queue) close() {
	q.mu.Lock()
	q.closed = true
	q.mu.Unlock()
	select {
	case q.ready <- struct{}{}:
	default:
	}
}

func (q *queue) len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.n
}

// QueueStats is one queue's counters.
type QueueStats struct {
	Capacity  int    `json:"capacity"`
	Queued    int    `json:"queued"`
	HighWater int64  `json:"high_water"`
	Delivered uint64 `json:"delivered"`
	// Dropped by cause: "full" (events the queue had no room for),
	// "full_alerts" (alerts past twice the bound), "errors" (items the
	// subscriber failed on).
	Dropped map[string]uint64 `json:"dropped,omitempty"`
}

func (q *queue) stats() QueueStats {
	s := QueueStats{Capacity: q.cap, Queued: q.len(), HighWater: q.highWater.Load(), Delivered: q.popped.Load()}
	if d := q.dropped.Load(); d > 0 {
		s.Dropped = map[string]uint64{"full": d}
	}
	if d := q.droppedMust.Load(); d > 0 {
		if s.Dropped == nil {
			s.Dropped = map[string]uint64{}
		}
		s.Dropped["full_alerts"] = d
	}
	return s
}
