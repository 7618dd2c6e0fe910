// Package decode turns the kernel's raw records into meaning: effects, and
// the JSON-RPC messages of each server's streams. It is pure Go, driven by
// bytes, so everything here is tested and fuzzed without a kernel.
package decode

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/mcpsec/sensor/pkg/wire"
)

// Event is an *Effect, a *Message, or an event built on them (an alert).
type Event interface {
	// EventTime is when it happened (the kernel's clock, as wall time).
	EventTime() time.Time
}

// EventTime is when the kernel saw the effect.
func (e *Effect) EventTime() time.Time { return e.Time }

// EventTime is when the kernel saw the message's last byte.
func (m *Message) EventTime() time.Time { return m.Time }

// Options bound the decoder.
type Options struct {
	// MaxMessage is the largest message kept whole, in bytes; longer ones are
	// reported truncated and counted.
	MaxMessage int
	// MaxPending bounds requests awaiting a response.
	MaxPending int
	Clock      Clock
}

// DefaultMaxMessage is the default message cap: a 16 MiB resource in its
// JSON-RPC envelope, with room to spare.
const DefaultMaxMessage = 32 << 20

// DefaultOptions keeps messages up to DefaultMaxMessage.
func DefaultOptions() Options {
	return Options{MaxMessage: DefaultMaxMessage, MaxPending: 65536, Clock: NewClock()}
}

// Stats counts what the decoder saw, kept and lost.
type Stats struct {
	Records     uint64 `json:"records"`
	BadRecords  uint64 `json:"bad_records"`
	Effects     uint64 `json:"effects"`
	Chunks      uint64 `json:"chunks"`
	ChunkBytes  uint64 `json:"chunk_bytes"`
	MessagesIn  uint64 `json:"messages_in"`
	MessagesOut uint64 `json:"messages_out"`
	// NonJSON lines on stdio streams: not JSON, or JSON but not JSON-RPC.
	NonJSON uint64 `json:"non_json_lines"`
	// Fragments: lines right after a gap that did not parse on their own,
	// dropped rather than risk a spliced message.
	Fragments uint64 `json:"gap_fragments"`
	// JoinedPartial: the first line of a stream joined mid-life (--pid) was
	// the end of a message sent before: dropped, and not a loss.
	JoinedPartial uint64 `json:"joined_partial_lines,omitempty"`
	Truncated     uint64 `json:"truncated_messages"`
	// HTTPRequests: requests received that carried no JSON-RPC, reported
	// as http_request effects.
	HTTPRequests uint64 `json:"http_requests_other"`
	// Bytes on pipes other than stdio (stderr, a child's pipes).
	PipeBytes uint64       `json:"pipe_bytes_undecoded"`
	Lines     LineStats    `json:"lines"`
	HTTP      HTTPStats    `json:"http"`
	Sessions  SessionStats `json:"sessions"`
}

// Decoder turns records into events. Not safe for concurrent use.
type Decoder struct {
	opts  Options
	split *Splitter
	http  *httpLayer
	mcp   map[uint64]bool // stdio streams that carried JSON-RPC
	sess  *Sessions
	stats Stats
	eff   wire.Effect
	chunk wire.Chunk
	lines []Line
	// exits waits before forgetting a process: effects and payloads come
	// from different rings, so the last chunks of a process can be decoded
	// after its exit.
	exits []exited
}

type exited struct {
	pid uint32
	ts  uint64
}

// forgetAfter is how long after its exit a process's state is forgotten.
const forgetAfter = uint64(2 * time.Second)

// NewDecoder returns a decoder with the given options.
func NewDecoder(o Options) *Decoder {
	if o.MaxMessage <= 0 {
		o.MaxMessage = DefaultMaxMessage
	}
	if o.MaxPending <= 0 {
		o.MaxPending = 65536
	}
	return &Decoder{opts: o, split: NewSplitter(o.MaxMessage), http: newHTTPLayer(o.MaxMessage), sess: NewSessions(o.MaxPending), mcp: map[uint64]bool{}}
}

// chunkMeta travels with a piece to the lines that start in it.
type chunkMeta struct {
	ts    uint64
	proc  Proc
	ftype uint8
}

// Record decodes one raw ring-buffer record, calling emit for each event.
func (d *Decoder) Record(b []byte, emit func(Event)) error {
	d.stats.Records++
	cls, err := wire.RecordClass(b)
	if err != nil {
		d.stats.BadRecords++
		return err
	}
	switch cls {
	case wire.ClassEffect:
		if err := wire.ParseEffect(b, &d.eff); err != nil {
			d.stats.BadRecords++
			return err
		}
		e, err := decodeEffect(d.opts.Clock, &d.eff)
		if err != nil {
			d.stats.BadRecords++
			return err
		}
		d.stats.Effects++
		if e.Type == "exit" {
			d.exits = append(d.exits, exited{e.PID, d.eff.H.Ts})
		}
		emit(e)
	case wire.ClassChunk:
		if err := wire.ParseChunk(b, &d.chunk); err != nil {
			d.stats.BadRecords++
			return err
		}
		d.feedChunk(&d.chunk, emit)
	default:
		d.stats.BadRecords++
		return fmt.Errorf("unknown record class %d", cls)
	}
	return nil
}

// isStdio: a server reads requests on fd 0 and writes on fd 1, be they
// pipes or the socketpair a Node client hands its child. Other pipes
// (stderr, a child's pipes) are not decoded; other sockets carry HTTP.
func isStdio(c *wire.Chunk) bool {
	return (c.Dir == wire.DirIn && c.Fd == 0) || (c.Dir == wire.DirOut && c.Fd == 1)
}

func (d *Decoder) feedChunk(c *wire.Chunk, emit func(Event)) {
	d.stats.Chunks++
	d.stats.ChunkBytes += uint64(len(c.Data))
	k := StreamKey{Ino: c.Ino, Dir: c.Dir}
	p := Piece{
		Off: c.Off, Data: c.Data, Skipped: uint64(c.Skipped), TS: c.H.Ts, PID: c.H.Tgid,
		Attached: c.Cflags&wire.ChunkAttached != 0,
		Meta:     &chunkMeta{ts: c.H.Ts, proc: procOf(&c.H), ftype: c.Ftype},
	}
	switch {
	case isStdio(c):
		if c.Dir == wire.DirIn {
			d.sess.sawInput(c.H.Tgid, c.Ino)
		}
		d.lines = d.split.Feed(k, p, d.lines[:0])
		d.lines = d.split.Expire(c.H.Ts, ReorderWindow, d.lines)
	case c.Ftype == wire.FileSock || c.Ftype == wire.FileTLS:
		d.http.out = d.lines[:0]
		d.http.feed(k, p)
		d.http.expire(c.H.Ts, ReorderWindow)
		d.lines = d.http.take()
	default:
		d.stats.PipeBytes += uint64(len(c.Data))
		return
	}
	d.emitLines(emit)
}

func (d *Decoder) emitLines(emit func(Event)) {
	for _, l := range d.lines {
		d.emitLine(l, emit)
	}
	for _, s := range d.http.ended {
		d.sess.end(s)
	}
	d.http.ended = d.http.ended[:0]
}

// forget drops what the decoder kept for processes that ended a while
// before now (boot ns).
func (d *Decoder) forget(now uint64) {
	n := 0
	for _, x := range d.exits {
		if now < x.ts+forgetAfter {
			break
		}
		d.split.ProcessExited(x.pid)
		d.http.processExited(x.pid)
		d.sess.processExited(x.pid)
		n++
	}
	d.exits = d.exits[n:]
}

// ReorderWindow is how long (kernel clock, ns) a stream waits for a piece
// that another CPU wrote at the same time before declaring it lost.
const ReorderWindow = 50 * uint64(time.Millisecond)

// Tick gives up on pieces missing for longer than the reorder window at
// boot-clock time now. Call it only when the rings are empty: a piece still
// in a ring is late, not lost.
func (d *Decoder) Tick(now uint64, emit func(Event)) {
	d.forget(now)
	d.lines = d.split.Expire(now, ReorderWindow, d.lines[:0])
	d.http.out = d.lines
	d.http.expire(now, ReorderWindow)
	d.lines = d.http.take()
	d.emitLines(emit)
}

// Flush gives up waiting for every out-of-order piece and emits what follows
// the gaps; partial lines left are counted as discarded. Call it at the end.
func (d *Decoder) Flush(emit func(Event)) {
	d.lines = d.split.Flush(d.lines[:0])
	d.http.out = d.lines
	d.http.flush()
	d.http.closeAll() // a body delimited by its connection's end completes
	d.lines = d.http.take()
	d.emitLines(emit)
	d.split.CloseAll()
}

// acceptable says whether a line may be parsed as a message: a line after a
// gap or cut at the cap is only a message if what we have of it begins like
// one, so a fragment is never passed off as a message.
func acceptable(l Line) bool {
	b := bytes.TrimLeft(l.Data, " \t")
	if len(b) == 0 || (b[0] != '{' && b[0] != '[') {
		return false
	}
	return !l.Truncated || bytes.Contains(b, []byte(`"jsonrpc"`))
}

func (d *Decoder) emitLine(l Line, emit func(Event)) {
	k := l.Key
	meta, _ := l.Meta.(*chunkMeta)
	var msgs []Message
	if l.Request && (len(l.Data) == 0 || !acceptable(l) || !bytes.Contains(l.Data, []byte(`"jsonrpc"`))) {
		// not MCP: what the process was asked is an effect, not a
		// protocol violation
		d.request(l, meta, emit)
		if len(l.Data) > 0 {
			d.stats.NonJSON++
		}
		return
	}
	if !acceptable(l) {
		if !d.dropLine(l) {
			return
		}
		msgs = []Message{invalid(l)}
	} else if l.Truncated {
		d.stats.Truncated++
		msgs = []Message{parsePartial(l.Data)}
		msgs[0].Size = l.Size
	} else {
		var err error
		if msgs, err = parseLine(l.Data); err != nil {
			if !d.dropLine(l) {
				return
			}
			msgs = []Message{invalid(l)}
		}
	}
	if l.HTTP == nil && msgs[0].Type != "invalid" && !d.mcp[k.Ino] {
		if len(d.mcp) >= 65536 {
			clear(d.mcp) // bound: forgetting only makes later junk uncounted as invalid
		}
		d.mcp[k.Ino] = true
	}
	for i := range msgs {
		m := &msgs[i]
		m.AfterGap, m.Joined = l.AfterGap, l.Joined
		if meta != nil {
			m.Time = d.opts.Clock.Wall(meta.ts)
			m.Proc = meta.proc
			kind := "pipe"
			switch meta.ftype {
			case wire.FileSock:
				kind = "socket"
			case wire.FileTLS:
				kind = "tls"
			}
			m.Stream = kind + ":" + strconv.FormatUint(k.Ino, 10)
		} else {
			m.Time = time.Now()
		}
		m.Direction = "in"
		if k.Dir == wire.DirOut {
			m.Direction = "out"
			d.stats.MessagesOut++
		} else {
			d.stats.MessagesIn++
		}
		if l.HTTP != nil {
			m.HTTP = l.HTTP
			m.Session = l.session
		} else {
			m.Session = d.sess.stdioSession(m.ServerPID, m.PID, k)
		}
		d.sess.pair(m)
		emit(m)
	}
}

// request reports an HTTP request a process received that carries no
// JSON-RPC (a health check, a page, a launcher's command): an http_request
// effect, its method and target, and the start of its body. Requests that
// carry MCP's headers (a session's GET stream) are MCP's own.
func (d *Decoder) request(l Line, meta *chunkMeta, emit func(Event)) {
	h := l.HTTP
	if h == nil || meta == nil || h.SessionID != "" || h.ProtocolVersion != "" {
		return
	}
	d.stats.HTTPRequests++
	detail := h.Method + " " + h.Target
	if len(l.Data) > 0 {
		body := l.Data
		if len(body) > requestPreview {
			body = body[:requestPreview]
		}
		detail += " " + strings.ToValidUTF8(string(body), "\ufffd")
	}
	e := &Effect{Kind: "effect", Time: d.opts.Clock.Wall(meta.ts), Proc: meta.proc, Type: "http_request",
		Detail: detail, Truncated: len(l.Data) > requestPreview || l.Truncated}
	emit(e)
}

// requestPreview is how much of a request's body an http_request keeps.
const requestPreview = 1024

// dropLine counts a line that is not a JSON-RPC message, and says whether
// to report it as an invalid message: a whole line on stdio, or a body or
// event that claimed to be JSON, is a protocol violation worth a rule; a
// fragment after a gap, or a plain-text HTTP body, is not.
func (d *Decoder) dropLine(l Line) bool {
	if l.Joined {
		d.stats.JoinedPartial++ // the end of a message sent before the sensor joined
		return false
	}
	if l.AfterGap || l.Lost {
		d.stats.Fragments++
		return false
	}
	d.stats.NonJSON++
	if l.HTTP == nil {
		// only on a stream that carried JSON-RPC: a child's own stdout
		// (ls run by a tool) is fd 1 too, and none of MCP's business
		return d.mcp[l.Key.Ino]
	}
	ct := strings.ToLower(l.HTTP.ContentType)
	return strings.Contains(ct, "json") || strings.Contains(ct, "event-stream")
}

// invalidPreview is how much of an invalid line a message keeps.
const invalidPreview = 256

func invalid(l Line) Message {
	raw := l.Data
	if len(raw) > invalidPreview {
		raw = raw[:invalidPreview]
	}
	return Message{Kind: "message", Type: "invalid", Raw: strings.ToValidUTF8(string(raw), "\ufffd"), Size: l.Size, Truncated: l.Truncated}
}

// Stats returns the counters so far.
func (d *Decoder) Stats() Stats {
	s := d.stats
	s.Lines = d.split.Stats
	s.HTTP = d.http.Stats
	s.Sessions = d.sess.Stats
	return s
}

// Compact returns a message's JSON with params/result elided past limit
// bytes, for one-line text output.
func Compact(raw json.RawMessage, limit int) string {
	if len(raw) == 0 {
		return ""
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, raw); err != nil {
		buf.Reset()
		buf.Write(raw)
	}
	s := buf.String()
	if limit > 0 && len(s) > limit {
		cut := limit
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		return s[:cut] + fmt.Sprintf("…(%d bytes)", len(s))
	}
	return s
}
