// Package decode turns the kernel's raw records into meaning: effects, and
// the JSON-RPC messages of each server's streams. It is pure Go, driven by
// bytes, so everything here is tested and fuzzed without a kernel.
package decode

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/mcpsec/sensor/pkg/loader"
)

// Event is an *Effect or a *Message.
type Event interface{ isEvent() }

func (*Effect) isEvent()  {}
func (*Message) isEvent() {}

// Options bound the decoder.
type Options struct {
	// MaxMessage is the largest message kept whole, in bytes; longer ones are
	// reported truncated and counted.
	MaxMessage int
	// MaxPending bounds requests awaiting a response.
	MaxPending int
	Clock      Clock
}

// DefaultOptions keeps messages up to 16 MiB.
func DefaultOptions() Options {
	return Options{MaxMessage: 16 << 20, MaxPending: 65536, Clock: NewClock()}
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
	Truncated uint64 `json:"truncated_messages"`
	// SocketBytes were read or written on network sockets, which this
	// decoder does not parse yet (HTTP transports).
	SocketBytes uint64       `json:"socket_bytes_undecoded"`
	Lines       LineStats    `json:"lines"`
	Sessions    SessionStats `json:"sessions"`
}

// Decoder turns records into events. Not safe for concurrent use.
type Decoder struct {
	opts    Options
	split   *Splitter
	sess    *Sessions
	stdio   map[uint64]bool // socket inode -> carries stdio
	stats   Stats
	eff     loader.Effect
	chunk   loader.Chunk
	lines   []Line
	pending []Event
}

// NewDecoder returns a decoder with the given options.
func NewDecoder(o Options) *Decoder {
	if o.MaxMessage <= 0 {
		o.MaxMessage = 16 << 20
	}
	if o.MaxPending <= 0 {
		o.MaxPending = 65536
	}
	return &Decoder{
		opts: o, split: NewSplitter(o.MaxMessage), sess: NewSessions(o.MaxPending),
		stdio: map[uint64]bool{},
	}
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
	cls, err := loader.RecordClass(b)
	if err != nil {
		d.stats.BadRecords++
		return err
	}
	switch cls {
	case loader.ClassEffect:
		if err := loader.ParseEffect(b, &d.eff); err != nil {
			d.stats.BadRecords++
			return err
		}
		e, err := decodeEffect(d.opts.Clock, &d.eff)
		if err != nil {
			d.stats.BadRecords++
			return err
		}
		d.stats.Effects++
		emit(e)
	case loader.ClassChunk:
		if err := loader.ParseChunk(b, &d.chunk); err != nil {
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

func (d *Decoder) feedChunk(c *loader.Chunk, emit func(Event)) {
	d.stats.Chunks++
	d.stats.ChunkBytes += uint64(len(c.Data))
	if c.Ftype == loader.FileSock && !d.stdio[c.Ino] {
		if c.Fd > 1 {
			d.stats.SocketBytes += uint64(len(c.Data))
			return
		}
		// a socket on fd 0 or 1: the socketpair a Node client hands its child
		d.stdio[c.Ino] = true
	}
	k := StreamKey{Ino: c.Ino, Dir: c.Dir}
	p := Piece{
		Off: c.Off, Data: c.Data, Skipped: uint64(c.Skipped), TS: c.H.Ts,
		Attached: c.Cflags&loader.ChunkAttached != 0,
		Meta:     &chunkMeta{ts: c.H.Ts, proc: procOf(&c.H), ftype: c.Ftype},
	}
	switch {
	case c.Cflags&loader.ChunkCap != 0:
		p.Cause = "cap"
	case c.Cflags&loader.ChunkFault != 0:
		p.Cause = "fault"
	case c.Cflags&loader.ChunkBypass != 0:
		p.Cause = "bypass"
	}
	d.lines = d.split.Feed(k, p, d.lines[:0])
	d.lines = d.split.Expire(c.H.Ts, ReorderWindow, d.lines)
	for _, l := range d.lines {
		d.emitLine(l, emit)
	}
}

// ReorderWindow is how long (kernel clock, ns) a stream waits for a piece
// that another CPU wrote at the same time before declaring it lost.
const ReorderWindow = 50 * uint64(time.Millisecond)

// Tick gives up on pieces that have been missing for longer than the
// reorder window at boot-clock time now; call it when records are quiet.
func (d *Decoder) Tick(now uint64, emit func(Event)) {
	d.lines = d.split.Expire(now, ReorderWindow, d.lines[:0])
	for _, l := range d.lines {
		d.emitLine(l, emit)
	}
}

// Flush gives up waiting for every out-of-order piece (call it at the end)
// and emits what follows the gaps.
func (d *Decoder) Flush(emit func(Event)) {
	d.lines = d.split.Flush(d.lines[:0])
	for _, l := range d.lines {
		d.emitLine(l, emit)
	}
}

func (d *Decoder) emitLine(l Line, emit func(Event)) {
	k := l.Key
	meta, _ := l.Meta.(*chunkMeta)
	var msgs []Message
	if l.Truncated {
		d.stats.Truncated++
		m := parsePartial(l.Data)
		msgs = []Message{m}
	} else {
		var err error
		msgs, err = parseLine(l.Data)
		if err != nil {
			if l.AfterGap {
				d.stats.Fragments++
			} else {
				d.stats.NonJSON++
			}
			return
		}
	}
	for i := range msgs {
		m := &msgs[i]
		m.Size = l.Size
		if len(msgs) > 1 {
			m.Size = len(m.Params) + len(m.Result) // approximate per item
		}
		m.AfterGap = l.AfterGap
		if meta != nil {
			m.Time = d.opts.Clock.Wall(meta.ts)
			m.Proc = meta.proc
			kind := "pipe"
			if meta.ftype == loader.FileSock {
				kind = "socket"
			}
			m.Stream = kind + ":" + strconv.FormatUint(k.Ino, 10)
		} else {
			m.Time = time.Now()
		}
		m.Direction = "in"
		if k.Dir == loader.DirOut {
			m.Direction = "out"
			d.stats.MessagesOut++
		} else {
			d.stats.MessagesIn++
		}
		m.Session = d.sess.stdioSession(m.Server, k)
		d.sess.pair(m)
		emit(m)
	}
}

// Stats returns the counters so far.
func (d *Decoder) Stats() Stats {
	s := d.stats
	s.Lines = d.split.Stats
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
		return s[:limit] + fmt.Sprintf("…(%d bytes)", len(s))
	}
	return s
}
