package gateway

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"sync"
	"sync/atomic"
	"time"
)

// Decision is one verdict, for the trace, the audit trail and metrics.
type Decision struct {
	Kind      string          `json:"kind"` // always "decision"
	Time      time.Time       `json:"ts"`
	Verdict   string          `json:"verdict"`   // allowed, denied, redacted, filtered, flagged
	Direction string          `json:"direction"` // in (to the server) or out (to the client)
	Method    string          `json:"method,omitempty"`
	Tool      string          `json:"tool,omitempty"`
	ID        json.RawMessage `json:"id,omitempty"`
	Policy    string          `json:"policy"`
	Version   string          `json:"policy_version"`
	Principal string          `json:"principal"`
	Server    string          `json:"server"`
	Reason    string          `json:"reason,omitempty"`
}

// Options configure a gateway.
type Options struct {
	Policy    *Set
	Principal Principal
	// Server says what the server is, and whether that is known yet (a
	// launched server is known once it runs: a call waits for it, up to
	// IdentifyWait); Threat is the sensor's view of it now. Either may be
	// nil.
	Server       func() (Server, bool)
	IdentifyWait time.Duration
	Threat       func() Threat
	// Pins says whether a tool's definition (by the SHA-256 of its JSON)
	// differs from the one pinned for the server: such a tool is kept from
	// the model, and its calls refused, until a person approves it (nil:
	// no pins).
	Pins Pins
	// Decide is told every decision on a call and every denial,
	// redaction and filtering (nil: none).
	Decide func(Decision)
	// MaxMessage bounds a message: a longer one cannot be judged, so it
	// does not pass (counted; a request is answered with an error when its
	// id can be read).
	MaxMessage int
}

// Pins are the pinned tool definitions (correlate.Store).
type Pins interface {
	Changed(server, tool, hash string) bool
	// Unapproved: the tool's last definition seen differs from its pin
	// and no one approved it (a rug pull seen before this session).
	Unapproved(server, tool string) bool
}

// Stats count what the gateway did.
type Stats struct {
	Allowed  atomic.Uint64
	Denied   atomic.Uint64
	Redacted atomic.Uint64
	Filtered atomic.Uint64
	Invalid  atomic.Uint64 // client lines that are not JSON-RPC, dropped
	// ServerInvalid: server lines the gateway cannot read as JSON-RPC,
	// dropped
	ServerInvalid atomic.Uint64
	Oversized     atomic.Uint64
	Answered      atomic.Uint64 // calls answered with an error because the server was contained
}

// Gateway proxies one client and one server over stdio.
type Gateway struct {
	o        Options
	Stats    Stats
	cmu, smu sync.Mutex // serialise writes to the client, to the server
	toClient io.Writer
	toServer io.Writer
	mu       sync.Mutex
	pending  map[string]pending // the client's requests in flight, by id
	answered map[string]bool    // ids answered by the gateway: the server's late answer is dropped
	contain  string
	changed  map[string]bool // tools whose definition changed since pinned, from the last tools/list
}

type pending struct {
	method, tool string
	id           json.RawMessage
}

// New makes a gateway.
func New(o Options) *Gateway {
	if o.Policy == nil {
		o.Policy = Default()
	}
	if o.MaxMessage <= 0 {
		o.MaxMessage = 32 << 20
	}
	if o.IdentifyWait <= 0 {
		o.IdentifyWait = 2 * time.Second
	}
	return &Gateway{o: o, pending: map[string]pending{}, answered: map[string]bool{}, changed: map[string]bool{}}
}

// Run proxies until the server's output ends: client lines are judged and
// passed to the server, server lines to the client. The server's input is
// closed when the client's ends.
func (g *Gateway) Run(clientIn io.Reader, clientOut io.Writer, serverIn io.WriteCloser, serverOut io.Reader) error {
	// what goes to the server is queued: the server's output is read on,
	// whatever the server's input holds (a server blocked writing, with
	// its input full, must not block the gateway's reading it)
	q := newQueue(serverIn)
	g.toClient, g.toServer = clientOut, q
	go func() {
		_ = lines(clientIn, g.o.MaxMessage, g.fromClient)
		q.close()
	}()
	err := lines(serverOut, g.o.MaxMessage, g.fromServer)
	if errors.Is(err, io.EOF) {
		return nil
	}
	return err
}

// queue writes to w from a goroutine of its own, in order.
type queue struct {
	mu     sync.Mutex
	cond   *sync.Cond
	bufs   [][]byte
	closed bool
}

func newQueue(w io.WriteCloser) *queue {
	q := &queue{}
	q.cond = sync.NewCond(&q.mu)
	go func() {
		for {
			q.mu.Lock()
			for len(q.bufs) == 0 && !q.closed {
				q.cond.Wait()
			}
			bufs := q.bufs
			q.bufs = nil
			done := q.closed
			q.mu.Unlock()
			for _, b := range bufs {
				_, _ = w.Write(b)
			}
			if done && len(bufs) == 0 {
				_ = w.Close()
				return
			}
		}
	}()
	return q
}

// Write queues a copy of b.
func (q *queue) Write(b []byte) (int, error) {
	q.mu.Lock()
	q.bufs = append(q.bufs, bytes.Clone(b))
	q.mu.Unlock()
	q.cond.Signal()
	return len(b), nil
}

// close closes w once what is queued is written.
func (q *queue) close() {
	q.mu.Lock()
	q.closed = true
	q.mu.Unlock()
	q.cond.Signal()
}

// lines calls f with each line of r (its newline included, if any), and
// with nil and too-long set for a line longer than max (skipped).
func lines(r io.Reader, max int, f func(line []byte, tooLong bool)) error {
	br := bufio.NewReaderSize(r, 64<<10)
	var long []byte
	over := false
	for {
		frag, err := br.ReadSlice('\n')
		switch {
		case errors.Is(err, bufio.ErrBufferFull):
			if !over {
				long = append(long, frag...)
				if len(long) > max {
					over, long = true, long[:0]
				}
			}
			continue
		case len(frag) > 0 || len(long) > 0:
			if over {
				f(nil, true)
			} else if len(long) > 0 {
				long = append(long, frag...)
				if len(long) > max {
					f(nil, true)
				} else {
					f(long, false)
				}
			} else {
				f(frag, false)
			}
			long, over = long[:0], false
		}
		if err != nil {
			return err
		}
	}
}

func (g *Gateway) write(toClient bool, b []byte) {
	mu, w := &g.smu, g.toServer
	if toClient {
		mu, w = &g.cmu, g.toClient
	}
	mu.Lock()
	defer mu.Unlock()
	if len(b) > 0 && b[len(b)-1] != '\n' {
		b = append(b, '\n')
	}
	_, _ = w.Write(b)
}

// policy is the policy for the server, and who it is; wait says to wait
// for the server to be known. No policy covering the server is a policy
// that allows nothing.
func (g *Gateway) policy(wait bool) (*Policy, Server) {
	var srv Server
	if g.o.Server != nil {
		var known bool
		srv, known = g.o.Server()
		for deadline := time.Now().Add(g.o.IdentifyWait); wait && !known && time.Now().Before(deadline); {
			time.Sleep(5 * time.Millisecond)
			srv, known = g.o.Server()
		}
	}
	if p := g.o.Policy.For(srv); p != nil {
		return p, srv
	}
	return denyAll(), srv
}

// denyAll is what applies to a server no policy covers.
func denyAll() *Policy {
	return &Policy{ID: "(no policy covers this server)", Tools: Lists{Deny: []string{"*"}}, Prompts: Lists{Deny: []string{"*"}},
		Resources: Resources{Read: []string{"\x00"}, Subscribe: []string{"\x00"}}}
}

func (g *Gateway) threat() Threat {
	var t Threat
	if g.o.Threat != nil {
		t = g.o.Threat()
	}
	g.mu.Lock()
	t.Contained = g.contain
	g.mu.Unlock()
	return t
}

func (g *Gateway) decide(d Decision) {
	switch d.Verdict {
	case "allowed":
		g.Stats.Allowed.Add(1)
	case "denied":
		g.Stats.Denied.Add(1)
	case "redacted":
		g.Stats.Redacted.Add(1)
	case "filtered":
		g.Stats.Filtered.Add(1)
	}
	if g.o.Decide == nil {
		return
	}
	d.Kind, d.Time = "decision", time.Now()
	d.Version, d.Principal = g.o.Policy.Version, g.o.Principal.String()
	if d.Policy == "" {
		d.Policy = "(none)"
	}
	g.o.Decide(d)
}

// Contain makes every call in flight, and every later one, get an error
// saying why, until Release.
func (g *Gateway) Contain(reason string) {
	g.mu.Lock()
	g.contain = reason
	var ps []pending
	for k, p := range g.pending {
		if callMethod(p.method) && len(p.id) > 0 {
			ps = append(ps, p)
			g.answered[k] = true
			delete(g.pending, k)
		}
	}
	g.mu.Unlock()
	for _, p := range ps {
		g.Stats.Answered.Add(1)
		g.write(true, errorReply(p.id, codeContained, "mcp-sensor: the server is contained: "+reason, nil))
	}
}

// Release lets calls flow again.
func (g *Gateway) Release() {
	g.mu.Lock()
	g.contain = ""
	g.mu.Unlock()
}

func callMethod(m string) bool {
	return m == "tools/call" || m == "resources/read" || m == "prompts/get" || m == "resources/subscribe"
}

// JSON-RPC error codes of the gateway (the implementation-defined range).
const (
	codeDenied    = -32001
	codeContained = -32002
	codeInvalid   = -32600
)

func errorReply(id json.RawMessage, code int, msg string, data any) []byte {
	e := map[string]any{"code": code, "message": msg}
	if data != nil {
		e["data"] = data
	}
	b, _ := json.Marshal(map[string]any{"jsonrpc": "2.0", "id": id, "error": e})
	return b
}

// isBatch: the line is a JSON array.
func isBatch(line []byte) bool {
	t := bytes.TrimLeft(line, " \t\r\n")
	return len(t) > 0 && t[0] == '['
}

func blank(line []byte) bool { return len(bytes.TrimSpace(line)) == 0 }
