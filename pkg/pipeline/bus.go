package pipeline

import (
	"sync"
	"sync/atomic"
)

// Subscriber takes the pipeline's items, in order, on a goroutine of its
// own, behind a bounded queue: a slow subscriber loses what its queue
// cannot hold (counted), never anyone else's.
type Subscriber struct {
	Name string
	// Want selects items (nil: all); Alerts is the common choice.
	Want func(Item) bool
	// Handle takes a batch of items. An error counts the batch as lost
	// to that subscriber ("errors"); the subscriber says why elsewhere.
	Handle func([]Item) error
	// Close runs after the last batch.
	Close func() error
	// Queue bounds the queue (0: the pipeline's queue_size).
	Queue int
	// Batch bounds a batch (0: 256).
	Batch int
}

// Alerts selects alerts.
func Alerts(it Item) bool { return it.alert() != nil }

// Events selects effects and messages.
func Events(it Item) bool { return it.Event != nil && it.alert() == nil }

type sub struct {
	Subscriber
	q      *queue
	errors atomic.Uint64
	done   chan struct{}
}

// bus fans items out to the subscribers.
type bus struct {
	subs    []*sub
	started bool
	once    sync.Once
}

func (b *bus) add(s Subscriber, defaultQueue int) {
	if s.Queue <= 0 {
		s.Queue = defaultQueue
	}
	if s.Batch <= 0 {
		s.Batch = 256
	}
	b.subs = append(b.subs, &sub{Subscriber: s, q: newQueue(s.Queue), done: make(chan struct{})})
}

func (b *bus) start() {
	b.started = true
	for _, s := range b.subs {
		go s.run()
	}
}

func (s *sub) run() {
	defer close(s.done)
	buf := make([]Item, 0, s.Batch)
	for {
		var ok bool
		buf, ok = s.q.pop(buf[:0], s.Batch)
		if len(buf) > 0 {
			if err := s.Handle(buf); err != nil {
				s.errors.Add(uint64(len(buf)))
			}
		}
		if !ok {
			break
		}
	}
	if s.Close != nil {
		if err := s.Close(); err != nil {
			s.errors.Add(1)
		}
	}
}

// publish hands an item to every subscriber that wants it; it never
// blocks. An alert wakes them at once; other items wait for wake, which
// the publisher calls at the end of its batch.
func (b *bus) publish(it Item) {
	must := it.alert() != nil
	for _, s := range b.subs {
		if s.Want == nil || s.Want(it) {
			if must {
				s.q.push(it, true)
			} else {
				s.q.add(it, false)
			}
		}
	}
}

// wake wakes the subscribers that have items.
func (b *bus) wake() {
	for _, s := range b.subs {
		if s.q.len() > 0 {
			s.q.wake()
		}
	}
}

// close drains every subscriber and waits for them.
func (b *bus) close() {
	b.once.Do(func() {
		for _, s := range b.subs {
			s.q.close()
		}
		if !b.started {
			return
		}
		for _, s := range b.subs {
			<-s.done
		}
	})
}

func (b *bus) stats() map[string]QueueStats {
	out := map[string]QueueStats{}
	for _, s := range b.subs {
		st := s.q.stats()
		if e := s.errors.Load(); e > 0 {
			if st.Dropped == nil {
				st.Dropped = map[string]uint64{}
			}
			st.Dropped["errors"] = e
		}
		out[s.Name] = st
	}
	return out
}
