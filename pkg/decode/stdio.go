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
	// are given up on after a window of this clock (Splitter.Expire).
	TS uint64
	// Skipped bytes follow Data that no piece will carry; Cause says why
	// ("cap", "fault", "bypass"). The reassembler jumps over them.
	Skipped uint64
	Cause   string
	// Attached: the stream was picked up mid-life (--pid), so its first
	// bytes may be the tail of a message.
	Attached bool
	// Meta is returned with each line that starts in this piece.
	Meta any
	// PID of the process that read or wrote it: a stream idle when its
	// last user exits is forgotten.
	PID uint32
}

// Line is one complete NDJSON line.
type Line struct {
	Key  StreamKey
	Data []byte
	Meta any // of the piece the line started in
	// AfterGap: bytes were lost right before this line (or the stream was
	// attached mid-life). It is only emitted if it parses as JSON on its own.
	AfterGap bool
	// Truncated: the line exceeded the message cap; Data holds its start.
	Truncated bool
	// Size is the line's full length, including bytes cut by the cap.
	Size int
}

// LineStats counts what the line splitter saw and lost, per cause.
type LineStats struct {
	Lines          uint64 `json:"lines"`
	Gaps           uint64 `json:"gaps"`            // places where bytes were missing
	GapBytes       uint64 `json:"gap_bytes"`       // bytes known missing
	DiscardedBytes uint64 `json:"discarded_bytes"` // bytes thrown away resynchronising after a gap
	Oversized      uint64 `json:"oversized"`       // lines longer than the message cap
	Reordered      uint64 `json:"reordered"`       // pieces that arrived ahead of their predecessor
	Resets         uint64 `json:"resets"`          // stream offsets that restarted at 0 (state evicted in the kernel)
	Late           uint64 `json:"late"`            // pieces that arrived after their bytes were declared lost
	LateBytes      uint64 `json:"late_bytes"`
	Evicted        uint64 `json:"evicted_streams"` // streams dropped to bound memory
}

// Splitter reassembles each stream's pieces in offset order and splits them
// into lines. Memory is bounded: MaxLine per stream for the partial line,
// MaxPending pieces held out of order, MaxStreams streams.
type Splitter struct {
	MaxLine    int
	MaxPending int
	MaxStreams int
	streams    map[StreamKey]*lineStream
	tick       uint64
	waiting    int // streams holding pieces out of order
	Stats      LineStats
}

type lineStream struct {
	key      StreamKey
	next     uint64
	started  bool
	buf      []byte
	bufMeta  any
	resync   bool // discarding until the next newline
	afterGap bool // the next line follows lost bytes
	oversize int  // bytes of the current line beyond MaxLine
	pending  []Piece
	since    uint64 // TS of the piece that started the wait
	used     uint64
	lastPID  uint32
}

// NewSplitter returns a splitter with the given per-line cap.
func NewSplitter(maxLine int) *Splitter {
	return &Splitter{MaxLine: maxLine, MaxPending: 64, MaxStreams: 4096, streams: map[StreamKey]*lineStream{}}
}

// Feed adds a piece of stream k and appends the lines it completes to out.
// Every stream starts at offset 0: the kernel numbers a stream's bytes from
// the first syscall it captures.
func (s *Splitter) Feed(k StreamKey, p Piece, out []Line) []Line {
	st := s.stream(k)
	if !st.started {
		st.started = true
		st.afterGap = p.Attached
	}
	if p.PID != 0 {
		st.lastPID = p.PID
	}
	switch {
	case p.Off == st.next:
		out = s.apply(st, p, out)
		out = s.drain(st, out)
	case p.Off > st.next:
		s.Stats.Reordered++
		if len(st.pending) == 0 {
			s.waiting++
			st.since = p.TS
		}
		st.pending = insertPiece(st.pending, clonePiece(p))
		if len(st.pending) > s.MaxPending {
			out = s.giveUp(st, out)
		}
	case p.Off == 0:
		// The offset restarted: the kernel lost this stream's state (LRU
		// eviction) and numbers it from 0 again. Start over, cleanly.
		s.Stats.Resets++
		out = s.dropPartial(st, out)
		st.next = 0
		if len(st.pending) > 0 {
			st.pending = nil
			s.waiting--
		}
		out = s.apply(st, p, out)
	default:
		// Bytes already declared lost (the wait for them expired): too
		// late to use without splicing. Counted, dropped.
		s.Stats.Late++
		s.Stats.LateBytes += uint64(len(p.Data))
	}
	return out
}

// giveUp declares missing the bytes a stream waits for, and applies the
// pieces it held after that gap.
func (s *Splitter) giveUp(st *lineStream, out []Line) []Line {
	for len(st.pending) > 0 {
		out = s.skipTo(st, st.pending[0].Off, out)
		out = s.drain(st, out)
	}
	return out
}

// drain applies the held pieces that are now contiguous.
func (s *Splitter) drain(st *lineStream, out []Line) []Line {
	if len(st.pending) == 0 {
		return out
	}
	for len(st.pending) > 0 && st.pending[0].Off <= st.next {
		q := st.pending[0]
		st.pending = st.pending[1:]
		out = s.apply(st, trimTo(q, st.next), out)
	}
	if len(st.pending) == 0 {
		s.waiting--
	}
	return out
}

// Expire gives up on streams that have waited longer than window (in the
// pieces' clock) for a missing piece: it was dropped, not delayed. A piece
// out of order is one written by another CPU at nearly the same time, so a
// short window suffices.
func (s *Splitter) Expire(now, window uint64, out []Line) []Line {
	if s.waiting == 0 {
		return out
	}
	for _, st := range s.streams {
		if len(st.pending) > 0 && now > st.since+window {
			out = s.giveUp(st, out)
		}
	}
	return out
}

// Flush gives up on every missing piece. Call it at the end.
func (s *Splitter) Flush(out []Line) []Line {
	for _, st := range s.streams {
		if len(st.pending) > 0 {
			out = s.giveUp(st, out)
		}
	}
	return out
}

// Close forgets a stream: a partial line is counted as discarded.
func (s *Splitter) Close(k StreamKey) {
	if st, ok := s.streams[k]; ok {
		s.Stats.DiscardedBytes += uint64(len(st.buf))
		if len(st.pending) > 0 {
			s.waiting--
		}
		delete(s.streams, k)
	}
}

// CloseAll forgets every stream (at the end of a trace).
func (s *Splitter) CloseAll() {
	for k := range s.streams {
		s.Close(k)
	}
}

// ProcessExited releases the buffers of idle streams whose last user was
// pid. The streams themselves stay (a few words each, bounded by MaxStreams):
// another process sharing the pipe may go on at the next offset.
func (s *Splitter) ProcessExited(pid uint32) {
	for _, st := range s.streams {
		if st.lastPID == pid && len(st.buf) == 0 {
			st.buf = nil
		}
	}
}

func (s *Splitter) stream(k StreamKey) *lineStream {
	s.tick++
	st, ok := s.streams[k]
	if !ok {
		if len(s.streams) >= s.MaxStreams {
			s.evictOldest()
		}
		st = &lineStream{key: k}
		s.streams[k] = st
	}
	st.used = s.tick
	return st
}

func (s *Splitter) evictOldest() {
	var oldest StreamKey
	var min uint64 = ^uint64(0)
	for k, st := range s.streams {
		if st.used < min {
			oldest, min = k, st.used
		}
	}
	s.Stats.Evicted++
	s.Close(oldest)
}

// skipTo marks bytes [st.next, off) as lost.
func (s *Splitter) skipTo(st *lineStream, off uint64, out []Line) []Line {
	if off <= st.next {
		return out
	}
	s.Stats.Gaps++
	s.Stats.GapBytes += off - st.next
	out = s.dropPartial(st, out)
	st.next = off
	return out
}

// dropPartial abandons the line in progress: what follows the gap belongs
// to it, so the stream resynchronises at the next newline.
func (s *Splitter) dropPartial(st *lineStream, out []Line) []Line {
	if len(st.buf) > 0 || st.oversize > 0 {
		s.Stats.DiscardedBytes += uint64(len(st.buf))
		st.buf = st.buf[:0]
		st.oversize = 0
		st.resync = true
	}
	// If the gap fell on a line boundary, the next line is whole; it is
	// kept only if it parses on its own (see Line.AfterGap).
	st.afterGap = true
	return out
}

func (s *Splitter) apply(st *lineStream, p Piece, out []Line) []Line {
	data := p.Data
	for len(data) > 0 {
		i := bytes.IndexByte(data, '\n')
		if i < 0 {
			out = s.appendPartial(st, data, p.Meta, out)
			break
		}
		out = s.appendPartial(st, data[:i], p.Meta, out)
		out = s.endLine(st, out)
		data = data[i+1:]
	}
	st.next = p.Off + uint64(len(p.Data))
	if p.Skipped > 0 {
		out = s.skipTo(st, st.next+p.Skipped, out)
	}
	return out
}

func (s *Splitter) appendPartial(st *lineStream, b []byte, meta any, out []Line) []Line {
	if st.resync {
		s.Stats.DiscardedBytes += uint64(len(b))
		return out
	}
	if len(st.buf) == 0 && st.oversize == 0 {
		st.bufMeta = meta
	}
	room := s.MaxLine - len(st.buf)
	if len(b) > room {
		st.buf = append(st.buf, b[:max(room, 0)]...)
		st.oversize += len(b) - max(room, 0)
		return out
	}
	st.buf = append(st.buf, b...)
	return out
}

func (s *Splitter) endLine(st *lineStream, out []Line) []Line {
	if st.resync {
		// the newline that ends the fragment: resume after it
		st.resync = false
		return out
	}
	line := bytes.TrimRight(st.buf, "\r")
	if len(line) > 0 || st.oversize > 0 {
		s.Stats.Lines++
		l := Line{Key: st.key, Data: bytes.Clone(line), Meta: st.bufMeta, AfterGap: st.afterGap, Size: len(st.buf) + st.oversize}
		if st.oversize > 0 {
			s.Stats.Oversized++
			l.Truncated = true
		}
		out = append(out, l)
		st.afterGap = false
	}
	st.buf = st.buf[:0]
	if cap(st.buf) > 1<<20 {
		st.buf = nil // a large message passed: do not keep its buffer per stream
	}
	st.oversize = 0
	st.bufMeta = nil
	return out
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
