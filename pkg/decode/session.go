package decode

import (
	"strconv"
	"time"
)

// SessionStats counts request/response pairing.
type SessionStats struct {
	Requests  uint64 `json:"requests"`
	Responses uint64 `json:"responses"`
	Unmatched uint64 `json:"unmatched_responses"` // responses with no request seen
	Evicted   uint64 `json:"evicted_requests"`    // requests forgotten to bound memory
}

type pendingKey struct {
	session string
	dir     string // direction of the request
	id      string
}

type pendingReq struct {
	method string
	tool   string
	at     time.Time
	seq    uint64
}

// Sessions names the session of each message and pairs responses with
// their requests by (session, id), with no time-based expiry: a tool call
// may run for minutes. Memory is bounded by MaxPending requests.
type Sessions struct {
	MaxPending int
	pending    map[pendingKey]pendingReq
	latest     map[string]string // server -> its most recent stdio session
	seq        uint64
	Stats      SessionStats
}

// NewSessions returns an empty pairing table.
func NewSessions(maxPending int) *Sessions {
	return &Sessions{MaxPending: maxPending, pending: map[pendingKey]pendingReq{}, latest: map[string]string{}}
}

// stdioSession names the stdio session of a message. A stdio session is the
// conversation on the stream the server reads requests from; what the
// server writes belongs to the session it last read from.
func (s *Sessions) stdioSession(server string, k StreamKey) string {
	if k.Dir == 0 {
		id := "stdio:" + strconv.FormatUint(k.Ino, 10)
		if server != "" {
			s.latest[server] = id
		}
		return id
	}
	if id, ok := s.latest[server]; ok {
		return id
	}
	return "stdio:" + strconv.FormatUint(k.Ino, 10)
}

func opposite(dir string) string {
	if dir == "in" {
		return "out"
	}
	return "in"
}

// pair records requests and annotates responses.
func (s *Sessions) pair(m *Message) {
	if m.ID == nil || string(m.ID) == "null" {
		return
	}
	switch m.Type {
	case "request":
		s.Stats.Requests++
		s.seq++
		if len(s.pending) >= s.MaxPending {
			s.evictOldest()
		}
		s.pending[pendingKey{m.Session, m.Direction, string(m.ID)}] = pendingReq{
			method: m.Method, tool: m.Tool, at: m.Time, seq: s.seq,
		}
	case "response", "error":
		s.Stats.Responses++
		k := pendingKey{m.Session, opposite(m.Direction), string(m.ID)}
		req, ok := s.pending[k]
		if !ok {
			s.Stats.Unmatched++
			return
		}
		delete(s.pending, k)
		m.Request = &RequestRef{
			Method: req.method, Tool: req.tool,
			LatencyMS: float64(m.Time.Sub(req.at).Microseconds()) / 1000,
		}
	}
}

func (s *Sessions) evictOldest() {
	var oldest pendingKey
	min := ^uint64(0)
	for k, v := range s.pending {
		if v.seq < min {
			oldest, min = k, v.seq
		}
	}
	delete(s.pending, oldest)
	s.Stats.Evicted++
}

// Pending is the number of requests awaiting a response.
func (s *Sessions) Pending() int { return len(s.pending) }
