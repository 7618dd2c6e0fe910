package decode

import (
	"bytes"
	"sort"
)

// StreamKey names one direction of a byte channel: the pipe or socket inode,
// and whether the server read (DirIn) or wrote (DirOut) the bytes.
type StreamKey struct {
	Ino uint64
	Dir uint8
}

// Piece is a run of stream bytes as the kernel delivered them.
type Piece struct {
	Off  uint64
	Data []byte
	// TS is when the kernel produced it (boot ns): pieces held out of order
	// are given up on after a window of this clock (Expire).
	TS uint64
	// Skipped bytes follow Data that no piece will carry. The reassembler
	// jumps over them and tells the consumer exactly how many were lost.
	Skipped uint64
	// Attached: the stream was picked up mid-life (--pid), so its first
	// bytes may be the middle of a message.
	Attached bool
	// Meta is handed to the consumer with the piece's bytes.
	Meta any
	// PID of the process that read or wrote it: a stream idle when its
	// last user exits is forgotten.
	PID uint32
}

// ReasmStats counts what stream reassembly saw and lost, per cause.
type ReasmStats struct {
	Gaps      uint64 `json:"gaps"`      // places where bytes were missing
	GapBytes  uint64 `json:"gap_bytes"` // bytes known missing
	Reordered uint64 `json:"reordered"` // pieces that arrived ahead of their predecessor
	Resets    uint64 `json:"resets"`    // stream offsets that restarted at 0 (state evicted in the kernel)
	Late      uint64 `json:"late"`      // pieces that arrived after their bytes were declared lost
	LateBytes uint64 `json:"late_bytes"`
	// Streams forgotten to bound memory (least recently used first):
	// Evicted ones held partial data, which is lost; Retired ones were
	// idle (a closed connection, a finished process), so nothing is lost.
	Evicted uint64 `json:"evicted_streams"`
	Retired uint64 `json:"retired_streams"`
}

// consumer takes one stream's bytes in order from a Reassembler.
// joiner is a consumer that tells a stream picked up mid-life from one
// that lost bytes: nothing was lost from the reader's point of view.
type joiner interface{ join() }

type consumer interface {
	// data: the next bytes of the stream, contiguous with what came before
	// (or with the gap just announced).
	data(b []byte, meta any)
	// gap: n bytes are missing before the next data. n is 0 when the
	// stream was picked up mid-life.
	gap(n uint64)
	// restart: the offsets began again at 0 (the kernel lost the stream's
	// state); what was in progress is abandoned.
	restart()
	// close: the stream is forgotten; partial state is abandoned.
	close()
	// idle reports whether the consumer holds no partial data, and
	// releases its buffers if so.
	idle() bool
}

// Reassembler puts each stream's pieces in offset order and hands the bytes
// to the stream's consumer, announcing every gap with its exact size.
// Memory is bounded: MaxPending pieces held out of order per stream,
// MaxStreams streams (the least recently used is evicted).
type Reassembler struct {
	MaxPending int
	MaxStreams int
	counts     *ReasmStats
	open       func(StreamKey) consumer
	streams    map[StreamKey]*rstream
	tick       uint64
	waiting    int // streams holding pieces out of order
}

type rstream struct {
	key     StreamKey
	next    uint64
	started bool
	pending []Piece
	since   uint64 // TS of the piece that started the wait
	used    uint64
	lastPID uint32
	c       consumer
}

func newReassembler(counts *ReasmStats, open func(StreamKey) consumer) Reassembler {
	return Reassembler{MaxPending: 64, MaxStreams: 4096, counts: counts, open: open, streams: map[StreamKey]*rstream{}}
}

// feed adds a piece of stream k. Every stream starts at offset 0: the kernel
// numbers a stream's bytes from the first syscall it captures.
func (r *Reassembler) feed(k StreamKey, p Piece) {
	st := r.stream(k)
	if !st.started {
		st.started = true
		if p.Attached {
			if j, ok := st.c.(joiner); ok {
				j.join()
			} else {
				st.c.gap(0)
			}
		}
	}
	if p.PID != 0 {
		st.lastPID = p.PID
	}
	switch {
	case p.Off == st.next:
		r.apply(st, p)
		r.drain(st)
	case p.Off > st.next:
		r.counts.Reordered++
		if len(st.pending) == 0 {
			r.waiting++
			st.since = p.TS
		}
		st.pending = insertPiece(st.pending, clonePiece(p))
		if len(st.pending) > r.MaxPending {
			r.giveUp(st)
		}
	case p.Off == 0:
		// The offset restarted: the kernel lost this stream's state (LRU
		// eviction) and numbers it from 0 again. Start over, cleanly.
		r.counts.Resets++
		st.c.restart()
		st.next = 0
		if len(st.pending) > 0 {
			st.pending = nil
			r.waiting--
		}
		r.apply(st, p)
	default:
		// Bytes already declared lost (the wait for them expired): too
		// late to use without splicing. Counted, dropped.
		r.counts.Late++
		r.counts.LateBytes += uint64(len(p.Data))
	}
}

// giveUp declares missing the bytes a stream waits for, and applies the
// pieces it held after that gap.
func (r *Reassembler) giveUp(st *rstream) {
	for len(st.pending) > 0 {
		r.skipTo(st, st.pending[0].Off)
		r.drain(st)
	}
}

// drain applies the held pieces that are now contiguous.
func (r *Reassembler) drain(st *rstream) {
	if len(st.pending) == 0 {
		return
	}
	for len(st.pending) > 0 && st.pending[0].Off <= st.next {
		q := st.pending[0]
		st.pending = st.pending[1:]
		r.apply(st, trimTo(q, st.next))
	}
	if len(st.pending) == 0 {
		r.waiting--
	}
}

// expire gives up on streams that have waited longer than window (in the
// pieces' clock) for a missing piece: it was dropped, not delayed. A piece
// out of order is one written by another CPU at nearly the same time, so a
// short window suffices.
func (r *Reassembler) expire(now, window uint64) {
	if r.waiting == 0 {
		return
	}
	for _, st := range r.streams {
		if len(st.pending) > 0 && now > st.since+window {
			r.giveUp(st)
		}
	}
}

// flush gives up on every missing piece. Call it at the end.
func (r *Reassembler) flush() {
	if r.waiting == 0 {
		return
	}
	for _, st := range r.streams {
		if len(st.pending) > 0 {
			r.giveUp(st)
		}
	}
}

// closeStream forgets a stream.
func (r *Reassembler) closeStream(k StreamKey) {
	if st, ok := r.streams[k]; ok {
		st.c.close()
		if len(st.pending) > 0 {
			r.waiting--
		}
		delete(r.streams, k)
	}
}

// closeAll forgets every stream (at the end of a trace).
func (r *Reassembler) closeAll() {
	for k := range r.streams {
		r.closeStream(k)
	}
}

// processExited releases the buffers of idle streams whose last user was
// pid. The streams themselves stay (a few words each, bounded by
// MaxStreams): another process sharing the channel may go on at the next
// offset.
func (r *Reassembler) processExited(pid uint32) {
	for _, st := range r.streams {
		if st.lastPID == pid {
			st.c.idle()
		}
	}
}

func (r *Reassembler) stream(k StreamKey) *rstream {
	r.tick++
	st, ok := r.streams[k]
	if !ok {
		if len(r.streams) >= r.MaxStreams {
			r.evictOldest()
		}
		st = &rstream{key: k, c: r.open(k)}
		r.streams[k] = st
	}
	st.used = r.tick
	return st
}

func (r *Reassembler) evictOldest() {
	var oldest *rstream
	for _, st := range r.streams {
		if oldest == nil || st.used < oldest.used {
			oldest = st
		}
	}
	if oldest.c.idle() && len(oldest.pending) == 0 {
		r.counts.Retired++
	} else {
		r.counts.Evicted++
	}
	r.closeStream(oldest.key)
}

// skipTo marks bytes [st.next, off) as lost.
func (r *Reassembler) skipTo(st *rstream, off uint64) {
	if off <= st.next {
		return
	}
	r.counts.Gaps++
	r.counts.GapBytes += off - st.next
	st.c.gap(off - st.next)
	st.next = off
}

func (r *Reassembler) apply(st *rstream, p Piece) {
	if len(p.Data) > 0 {
		st.c.data(p.Data, p.Meta)
	}
	st.next = p.Off + uint64(len(p.Data))
	if p.Skipped > 0 {
		r.skipTo(st, st.next+p.Skipped)
	}
}

func clonePiece(p Piece) Piece {
	p.Data = bytes.Clone(p.Data)
	return p
}

func insertPiece(ps []Piece, p Piece) []Piece {
	i := sort.Search(len(ps), func(i int) bool { return ps[i].Off > p.Off })
	ps = append(ps, Piece{})
	copy(ps[i+1:], ps[i:])
	ps[i] = p
	return ps
}

// trimTo drops the part of p before off (already applied).
func trimTo(p Piece, off uint64) Piece {
	if p.Off >= off {
		return p
	}
	d := off - p.Off
	if d >= uint64(len(p.Data)) {
		rest := d - uint64(len(p.Data))
		p.Data = nil
		if rest >= p.Skipped {
			p.Skipped = 0
		} else {
			p.Skipped -= rest
		}
	} else {
		p.Data = p.Data[d:]
	}
	p.Off = off
	return p
}
