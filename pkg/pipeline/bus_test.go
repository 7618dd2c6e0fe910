package pipeline

import (
	"sync"
	"testing"
	"time"

	"github.com/mcpsec/sensor/pkg/correlate"
	"github.com/mcpsec/sensor/pkg/decode"
)

func effectItem(i int) Item {
	return Item{Event: &decode.Effect{Kind: "effect", Type: "open", Result: int64(i)}}
}

func alertItem(i int) Item {
	return Item{Event: &correlate.Alert{Kind: "alert", Rule: "r", Score: float64(i)}}
}

// TestQueueBounds: a full queue drops events and counts them; alerts may
// overrun the bound by as much again before they are dropped; what went
// in comes out in order.
func TestQueueBounds(t *testing.T) {
	q := newQueue(4)
	for i := 0; i < 6; i++ {
		q.push(effectItem(i), false)
	}
	for i := 0; i < 6; i++ {
		q.push(alertItem(i), true)
	}
	st := q.stats()
	if st.Queued != 8 || st.Dropped["full"] != 2 || st.Dropped["full_alerts"] != 2 || st.HighWater != 8 {
		t.Fatalf("%+v", st)
	}
	got, ok := q.pop(nil, 100)
	if !ok || len(got) != 8 {
		t.Fatalf("popped %d, %v", len(got), ok)
	}
	for i, it := range got[:4] {
		if it.Event.(*decode.Effect).Result != int64(i) {
			t.Errorf("item %d out of order", i)
		}
	}
	for i, it := range got[4:] {
		if it.alert().Score != float64(i) {
			t.Errorf("alert %d out of order", i)
		}
	}
	q.close()
	if _, ok := q.pop(nil, 1); ok {
		t.Error("a closed, empty queue still gives")
	}
	if q.push(effectItem(9), false) || q.stats().Dropped["full"] != 3 {
		t.Error("a closed queue took an item, or did not count it")
	}
}

// TestQueueGrows: the ring starts small and grows as items wait, wrapped
// or not, keeping their order, up to its bound.
func TestQueueGrows(t *testing.T) {
	q := newQueue(1000)
	next, want := 0, 0
	check := func(n int) {
		got, _ := q.pop(nil, n)
		for _, it := range got {
			if r := int(it.Event.(*decode.Effect).Result); r != want {
				t.Fatalf("item %d came out as %d", want, r)
			}
			want++
		}
	}
	for _, step := range []struct{ push, pop int }{{300, 100}, {500, 250}, {700, 0}} {
		for i := 0; i < step.push; i++ {
			q.push(effectItem(next), false)
			next++
		}
		check(step.pop)
	}
	if st := q.stats(); st.Queued != 1000 || st.Dropped["full"] != 150 || len(q.items) != 1024 {
		t.Fatalf("%+v, ring of %d", st, len(q.items))
	}
	check(2000)
	if want != 1350 {
		t.Fatalf("%d items came out, want 1350", want)
	}
}

// TestBusSlowSubscriber: a subscriber that cannot keep up loses what its
// own queue cannot hold (counted); the others get everything, in order;
// close drains every queue before it returns.
func TestBusSlowSubscriber(t *testing.T) {
	var b bus
	var mu sync.Mutex
	var fast, alerts []int
	slowGot := 0
	release := make(chan struct{})
	b.add(Subscriber{Name: "fast", Handle: func(items []Item) error {
		mu.Lock()
		defer mu.Unlock()
		for _, it := range items {
			if e, ok := it.Event.(*decode.Effect); ok {
				fast = append(fast, int(e.Result))
			}
		}
		return nil
	}}, 100000)
	b.add(Subscriber{Name: "alerts", Want: Alerts, Handle: func(items []Item) error {
		mu.Lock()
		defer mu.Unlock()
		for _, it := range items {
			alerts = append(alerts, int(it.alert().Score))
		}
		return nil
	}}, 100000)
	b.add(Subscriber{Name: "slow", Queue: 16, Handle: func(items []Item) error {
		<-release
		mu.Lock()
		slowGot += len(items)
		mu.Unlock()
		return nil
	}}, 100000)
	b.start()
	start := time.Now()
	for i := 0; i < 10000; i++ {
		b.publish(effectItem(i))
		if i%100 == 0 {
			b.publish(alertItem(i / 100))
		}
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("publishing waited on the slow subscriber: %v", d)
	}
	close(release)
	b.close()
	st := b.stats()
	if len(fast) != 10000 || st["fast"].Dropped != nil {
		t.Errorf("fast subscriber: %d items, %+v", len(fast), st["fast"])
	}
	for i, v := range fast {
		if v != i {
			t.Fatalf("fast subscriber: item %d is %d", i, v)
		}
	}
	if len(alerts) != 100 || alerts[99] != 99 {
		t.Errorf("alerts subscriber: %v", alerts)
	}
	sl := st["slow"]
	if sl.Dropped["full"] == 0 || uint64(slowGot)+sl.Dropped["full"]+sl.Dropped["full_alerts"] != 10100 {
		t.Errorf("slow subscriber: got %d, %+v", slowGot, sl)
	}
}
