package dashboard

import (
	"bytes"
	"sync"
)

// Timeline keeps each server's last events (its messages, its effects and
// the alerts on it), as JSON, for the page's call -> effect view.
type Timeline struct {
	mu      sync.Mutex
	max     int
	servers map[string][][]byte
	touched map[string]uint64 // when each server last had an event
	seq     uint64
	// Dropped counts events pushed out of a full server's timeline.
	Dropped uint64
}

// NewTimeline keeps max events per server.
func NewTimeline(max int) *Timeline {
	return &Timeline{max: max, servers: map[string][][]byte{}, touched: map[string]uint64{}}
}

// Add appends an event (its JSON) to a server's timeline.
func (t *Timeline) Add(server string, b []byte) {
	if server == "" {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	evs := append(t.servers[server], b)
	if len(evs) > t.max {
		t.Dropped += uint64(len(evs) - t.max)
		evs = append(evs[:0:0], evs[len(evs)-t.max:]...)
	}
	t.servers[server] = evs
	t.seq++
	t.touched[server] = t.seq
	if len(t.servers) > maxServers {
		// the server quiet the longest goes (servers come and go)
		oldest, at := "", ^uint64(0)
		for s, n := range t.touched {
			if n < at {
				oldest, at = s, n
			}
		}
		t.Dropped += uint64(len(t.servers[oldest]))
		delete(t.servers, oldest)
		delete(t.touched, oldest)
	}
}

// maxServers bounds how many servers' timelines are kept.
const maxServers = 256

// JSON is a server's timeline as a JSON array, oldest first.
func (t *Timeline) JSON(server string) []byte {
	t.mu.Lock()
	defer t.mu.Unlock()
	var b bytes.Buffer
	b.WriteByte('[')
	for i, e := range t.servers[server] {
		if i > 0 {
			b.WriteByte(',')
		}
		b.Write(e)
	}
	b.WriteByte(']')
	return b.Bytes()
}
