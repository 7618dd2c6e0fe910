package decode

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"strconv"
	"time"
)

// SessionStats counts request/response pairing.
type SessionStats struct {
	Requests  uint64 `json:"requests"`
	Responses uint64 `json:"responses"`
	Unmatched uint64 `json:"unmatched_responses"` // responses with no request seen
	Cancelled uint64 `json:"cancelled"`           // requests closed by notifications/cancelled
	Evicted   uint64 `json:"evicted_requests"`    // requests forgotten to bound memory
	// Sessions forgotten to bound memory (their negotiated version and
	// tool list), and sessions ended by the client (HTTP DELETE).
	EvictedSessions uint64 `json:"evicted_sessions"`
	Ended           uint64 `json:"ended_sessions"`
}

// ToolDef is a tool as a server declared it in a tools/list result.
type ToolDef struct {
	Name        string          `json:"name"`
	Description string          `json:"description,omitempty"`
	InputSchema json.RawMessage `json:"inputSchema,omitempty"`
	// Hash is the SHA-256 of the definition's JSON as the server sent it:
	// a changed definition (a rug pull) changes it.
	Hash string `json:"hash"`
	// Raw is the definition as the server sent it (not encoded).
	Raw json.RawMessage `json:"-"`
}

// sessionState is what is kept per session.
type sessionState struct {
	version string
	tools   map[string]ToolDef
	seq     uint64
}

type stateRef struct {
	name string
	seq  uint64
}

type pendingKey struct {
	session string
	dir     string // direction of the request
	id      string
}

type pendingReq struct {
	method string
	tool   string
	id     json.RawMessage
	token  string // _meta.progressToken, if the request asked for progress
	at     time.Time
	seq    uint64
}

type tokenKey struct {
	session string
	token   string
}

type queued struct {
	key pendingKey
	seq uint64
}

// Sessions names the session of each message and pairs responses with
// their requests by (session, id), with no time-based expiry: a tool call
// may run for minutes. Memory is bounded by MaxPending requests; the oldest
// open request is evicted first, in O(1).
type Sessions struct {
	MaxPending int
	pending    map[pendingKey]pendingReq
	order      []queued          // requests by age; entries whose seq no longer matches are stale
	input      map[uint32]uint64 // pid -> inode of the stdin it reads requests from
	latest     map[uint32]string // server root pid -> its most recent stdio session
	// MaxSessions bounds the per-session state; the oldest is forgotten.
	MaxSessions int
	state       map[string]*sessionState
	stateOrder  []stateRef // sessions by age; stale refs (ended, re-created) skipped
	stateSeq    uint64
	progress    map[tokenKey]pendingKey // progress tokens of pending requests
	seq         uint64
	Stats       SessionStats
}

// NewSessions returns an empty pairing table.
func NewSessions(maxPending int) *Sessions {
	return &Sessions{
		MaxPending: maxPending, pending: map[pendingKey]pendingReq{},
		input: map[uint32]uint64{}, latest: map[uint32]string{},
		MaxSessions: 4096, state: map[string]*sessionState{}, progress: map[tokenKey]pendingKey{},
	}
}

// sawInput records that pid reads its requests from stdin inode ino.
func (s *Sessions) sawInput(pid uint32, ino uint64) { s.input[pid] = ino }

func (s *Sessions) processExited(pid uint32) {
	delete(s.input, pid)
	delete(s.latest, pid) // if pid was a server's root
}

// stdioSession names the stdio session of a message: the conversation on
// the stream the server reads requests from. What a process writes belongs
// to the session of its own stdin; failing that (it has not read yet), to
// its server's latest session.
func (s *Sessions) stdioSession(server, pid uint32, k StreamKey) string {
	if k.Dir == 0 {
		id := "stdio:" + strconv.FormatUint(k.Ino, 10)
		if server != 0 {
			s.latest[server] = id
		}
		return id
	}
	if ino, ok := s.input[pid]; ok {
		return "stdio:" + strconv.FormatUint(ino, 10)
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

// session returns the state of a session, creating it if create.
func (s *Sessions) session(name string, create bool) *sessionState {
	st := s.state[name]
	if st != nil || !create {
		return st
	}
	for len(s.state) >= s.MaxSessions && len(s.stateOrder) > 0 {
		old := s.stateOrder[0]
		s.stateOrder = s.stateOrder[1:]
		if st, ok := s.state[old.name]; ok && st.seq == old.seq {
			delete(s.state, old.name)
			s.Stats.EvictedSessions++
		}
	}
	s.stateSeq++
	st = &sessionState{seq: s.stateSeq}
	s.state[name] = st
	s.stateOrder = append(s.stateOrder, stateRef{name, s.stateSeq})
	if len(s.stateOrder) > 2*len(s.state)+64 {
		// mostly stale (ended sessions): keep the live refs only
		live := s.stateOrder[:0]
		for _, r := range s.stateOrder {
			if st, ok := s.state[r.name]; ok && st.seq == r.seq {
				live = append(live, r)
			}
		}
		s.stateOrder = live
	}
	return st
}

// end forgets a session its client ended.
func (s *Sessions) end(name string) {
	delete(s.state, name)
	s.Stats.Ended++
}

// Version returns a session's negotiated protocol version.
func (s *Sessions) Version(session string) string {
	if st := s.state[session]; st != nil {
		return st.version
	}
	return ""
}

// Tools returns the tools a session's server declared, by name.
func (s *Sessions) Tools(session string) map[string]ToolDef {
	if st := s.state[session]; st != nil {
		return st.tools
	}
	return nil
}

const metaVersionKey = "io.modelcontextprotocol/protocolVersion"

// version sets m.ProtocolVersion: the request's own _meta (2026-07-28),
// the session's negotiated version, or the HTTP header.
func (s *Sessions) version(m *Message) {
	if len(m.Params) > 0 && bytes.Contains(m.Params, []byte(metaVersionKey)) {
		var p struct {
			Meta map[string]json.RawMessage `json:"_meta"`
		}
		if json.Unmarshal(m.Params, &p) == nil {
			var v string
			if json.Unmarshal(p.Meta[metaVersionKey], &v) == nil && v != "" {
				m.ProtocolVersion = v
				return
			}
		}
	}
	if v := s.Version(m.Session); v != "" {
		m.ProtocolVersion = v
	} else if m.HTTP != nil {
		m.ProtocolVersion = m.HTTP.ProtocolVersion
	}
}

// learn keeps what a response says about its session: the negotiated
// version (initialize) and the declared tools (tools/list).
func (s *Sessions) learn(m *Message, method string) {
	if len(m.Result) == 0 {
		return
	}
	if bytes.Contains(m.Result, []byte(`"inputRequests"`)) {
		m.InputRequired = true
	}
	switch method {
	case "initialize":
		var r struct {
			ProtocolVersion string `json:"protocolVersion"`
		}
		if json.Unmarshal(m.Result, &r) != nil || r.ProtocolVersion == "" {
			return
		}
		m.ProtocolVersion = r.ProtocolVersion
		s.session(m.Session, true).version = r.ProtocolVersion
		if m.HTTP != nil && m.HTTP.SessionID != "" {
			// later exchanges carry the session id the response assigned
			s.session("http:"+m.HTTP.SessionID, true).version = r.ProtocolVersion
		}
	case "tools/list":
		var r struct {
			Tools []json.RawMessage `json:"tools"`
		}
		if json.Unmarshal(m.Result, &r) != nil {
			return
		}
		st := s.session(m.Session, true)
		if st.tools == nil {
			st.tools = map[string]ToolDef{}
		}
		for _, raw := range r.Tools {
			var t ToolDef
			if json.Unmarshal(raw, &t) != nil || t.Name == "" {
				continue
			}
			sum := sha256.Sum256(raw)
			t.Hash = hex.EncodeToString(sum[:])
			st.tools[t.Name] = t
		}
	}
}

// pair records requests, closes cancelled ones and annotates responses.
func (s *Sessions) pair(m *Message) {
	s.version(m)
	switch m.Method {
	case "notifications/cancelled":
		s.cancel(m)
		return
	case "notifications/progress":
		s.progressOf(m)
		return
	}
	if m.ID == nil || string(m.ID) == "null" {
		return
	}
	switch m.Type {
	case "request":
		s.Stats.Requests++
		s.seq++
		for len(s.pending) >= s.MaxPending {
			s.evictOldest()
		}
		k := pendingKey{m.Session, m.Direction, string(m.ID)}
		req := pendingReq{method: m.Method, tool: m.Tool, id: m.ID, at: m.Time, seq: s.seq}
		if _, dup := s.pending[k]; dup {
			m.DuplicateID = true
		}
		s.forget(k)
		if tok := progressToken(m.Params, true); tok != "" {
			req.token = tok
			s.progress[tokenKey{m.Session, tok}] = k
		}
		s.pending[k] = req
		s.order = append(s.order, queued{k, s.seq})
	case "response", "error":
		s.Stats.Responses++
		k := pendingKey{m.Session, opposite(m.Direction), string(m.ID)}
		req, ok := s.pending[k]
		if !ok {
			s.Stats.Unmatched++
			m.Unmatched = true
			return
		}
		s.forget(k)
		m.Request = &RequestRef{
			Method: req.method, Tool: req.tool,
			LatencyMS: float64(m.Time.Sub(req.at).Microseconds()) / 1000,
		}
		s.learn(m, req.method)
	}
	s.compact()
}

// cancel closes the request a notifications/cancelled names. The canceller
// is the requester, so the request went the same direction.
func (s *Sessions) cancel(m *Message) {
	var p struct {
		RequestID json.RawMessage `json:"requestId"`
	}
	if json.Unmarshal(m.Params, &p) != nil || p.RequestID == nil {
		return
	}
	k := pendingKey{m.Session, m.Direction, string(p.RequestID)}
	if _, ok := s.pending[k]; ok {
		s.forget(k)
		s.Stats.Cancelled++
	}
}

// forget drops a pending request and its progress token.
func (s *Sessions) forget(k pendingKey) {
	if req, ok := s.pending[k]; ok {
		if req.token != "" {
			delete(s.progress, tokenKey{k.session, req.token})
		}
		delete(s.pending, k)
	}
}

// progressToken returns the progress token of a request's params._meta
// (inMeta) or of a progress notification's params, as raw JSON.
func progressToken(params json.RawMessage, inMeta bool) string {
	if len(params) == 0 || !bytes.Contains(params, []byte(`"progressToken"`)) {
		return ""
	}
	var p struct {
		Token json.RawMessage `json:"progressToken"`
		Meta  struct {
			Token json.RawMessage `json:"progressToken"`
		} `json:"_meta"`
	}
	if json.Unmarshal(params, &p) != nil {
		return ""
	}
	if inMeta {
		return string(p.Meta.Token)
	}
	return string(p.Token)
}

// progressOf points a progress notification at the request it reports on.
// Progress goes the other way from the request.
func (s *Sessions) progressOf(m *Message) {
	tok := progressToken(m.Params, false)
	if tok == "" {
		return
	}
	k, ok := s.progress[tokenKey{m.Session, tok}]
	if !ok || k.dir != opposite(m.Direction) {
		return
	}
	req := s.pending[k]
	m.Request = &RequestRef{Method: req.method, Tool: req.tool, ID: req.id,
		LatencyMS: float64(m.Time.Sub(req.at).Microseconds()) / 1000}
}

func (s *Sessions) evictOldest() {
	for len(s.order) > 0 {
		q := s.order[0]
		s.order = s.order[1:]
		if req, ok := s.pending[q.key]; ok && req.seq == q.seq {
			s.forget(q.key)
			s.Stats.Evicted++
			return
		}
	}
}

// compact drops answered requests from the front of the age queue, and
// reallocates it when mostly stale, so it stays proportional to pending.
func (s *Sessions) compact() {
	for len(s.order) > 0 {
		q := s.order[0]
		if req, ok := s.pending[q.key]; ok && req.seq == q.seq {
			break
		}
		s.order = s.order[1:]
	}
	if len(s.order) > 1024 && len(s.order) > 4*len(s.pending) {
		live := make([]queued, 0, len(s.pending))
		for _, q := range s.order {
			if req, ok := s.pending[q.key]; ok && req.seq == q.seq {
				live = append(live, q)
			}
		}
		s.order = live
	}
}

// Pending is the number of requests awaiting a response.
func (s *Sessions) Pending() int { return len(s.pending) }
