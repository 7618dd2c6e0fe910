package decode

import (
	"bytes"
)

// Line is one framed message: an NDJSON line, an HTTP body or an SSE
// event's data.
type Line struct {
	Key  StreamKey
	Data []byte
	Meta any // of the piece the line started in
	// Joined: the first line of a stream picked up mid-life (--pid).
	Joined bool
	// AfterGap: bytes were lost right before this line (or the stream was
	// attached mid-life). It is only emitted if it parses as JSON on its own.
	AfterGap bool
	// Truncated: the line exceeded the message cap; Data holds its start.
	Truncated bool
	// Size is the line's full length, including bytes cut by the cap.
	Size int
	// Lost: bytes inside it were lost (an HTTP body cut by a gap); Data
	// holds what came before the gap.
	Lost bool
	// HTTP is set on bodies and events of the HTTP transports, with the
	// session their exchange belongs to.
	HTTP    *HTTPInfo
	session string
	// Request: a whole request the process received (its body, perhaps
	// empty, in Data): reported as an http_request effect unless it is
	// JSON-RPC.
	Request bool
}

// LineStats counts what the line splitter saw and lost, per cause.
type LineStats struct {
	Lines uint64 `json:"lines"`
	ReasmStats
	DiscardedBytes uint64 `json:"discarded_bytes"` // bytes thrown away resynchronising after a gap
	Oversized      uint64 `json:"oversized"`       // lines longer than the message cap
}

// Splitter reassembles each stream's pieces in offset order and splits them
// into lines. Memory is bounded: MaxLine per stream for the partial line,
// and the Reassembler's bounds.
type Splitter struct {
	Reassembler
	MaxLine int
	Stats   LineStats
	out     []Line // lines completed by the current call
}

type lineStream struct {
	s        *Splitter
	key      StreamKey
	buf      []byte
	bufMeta  any
	resync   bool // discarding until the next newline
	afterGap bool // the next line follows lost bytes
	joined   bool // the next line is the first of a stream joined mid-life
	oversize int  // bytes of the current line beyond MaxLine
}

// NewSplitter returns a splitter with the given per-line cap.
func NewSplitter(maxLine int) *Splitter {
	s := &Splitter{MaxLine: maxLine}
	s.Reassembler = newReassembler(&s.Stats.ReasmStats, func(k StreamKey) consumer {
		return &lineStream{s: s, key: k}
	})
	return s
}

// Feed adds a piece of stream k and appends the lines it completes to out.
func (s *Splitter) Feed(k StreamKey, p Piece, out []Line) []Line {
	s.out = out
	s.feed(k, p)
	return s.take()
}

// Expire gives up on streams that have waited longer than window for a
// missing piece, and appends the lines that follow to out.
func (s *Splitter) Expire(now, window uint64, out []Line) []Line {
	s.out = out
	s.expire(now, window)
	return s.take()
}

// Flush gives up on every missing piece. Call it at the end.
func (s *Splitter) Flush(out []Line) []Line {
	s.out = out
	s.flush()
	return s.take()
}

// Close forgets a stream: a partial line is counted as discarded.
func (s *Splitter) Close(k StreamKey) { s.closeStream(k) }

// CloseAll forgets every stream (at the end of a trace).
func (s *Splitter) CloseAll() { s.closeAll() }

// ProcessExited releases the buffers of idle streams whose last user was pid.
func (s *Splitter) ProcessExited(pid uint32) { s.processExited(pid) }

func (s *Splitter) take() []Line {
	out := s.out
	s.out = nil
	return out
}

func (l *lineStream) close() { l.s.Stats.DiscardedBytes += uint64(len(l.buf)) }

func (l *lineStream) idle() bool {
	if len(l.buf) == 0 {
		l.buf = nil
		return true
	}
	return false
}

func (l *lineStream) restart() { l.gap(0) }

// join: the stream was picked up mid-life; its first line may be the end
// of one whose start came before the sensor (dropped, counted apart).
func (l *lineStream) join() {
	l.gap(0)
	l.joined = true
}

// gap abandons the line in progress: what follows the gap belongs to it, so
// the stream resynchronises at the next newline. If the gap fell on a line
// boundary the next line is whole; it is kept only if it parses on its own
// (see Line.AfterGap).
func (l *lineStream) gap(uint64) {
	if len(l.buf) > 0 || l.oversize > 0 {
		l.s.Stats.DiscardedBytes += uint64(len(l.buf))
		l.buf = l.buf[:0]
		l.oversize = 0
		l.resync = true
	}
	l.afterGap = true
}

func (l *lineStream) data(b []byte, meta any) {
	for len(b) > 0 {
		i := bytes.IndexByte(b, '\n')
		if i < 0 {
			l.appendPartial(b, meta)
			return
		}
		l.appendPartial(b[:i], meta)
		l.endLine()
		b = b[i+1:]
	}
}

func (l *lineStream) appendPartial(b []byte, meta any) {
	if l.resync {
		l.s.Stats.DiscardedBytes += uint64(len(b))
		return
	}
	if len(l.buf) == 0 && l.oversize == 0 {
		l.bufMeta = meta
	}
	room := l.s.MaxLine - len(l.buf)
	if len(b) > room {
		l.buf = append(l.buf, b[:max(room, 0)]...)
		l.oversize += len(b) - max(room, 0)
		return
	}
	l.buf = append(l.buf, b...)
}

func (l *lineStream) endLine() {
	if l.resync {
		// the newline that ends the fragment: resume after it
		l.resync = false
		return
	}
	line := bytes.TrimRight(l.buf, "\r")
	if len(line) > 0 || l.oversize > 0 {
		l.s.Stats.Lines++
		out := Line{Key: l.key, Data: bytes.Clone(line), Meta: l.bufMeta, AfterGap: l.afterGap && !l.joined, Joined: l.joined,
			Size: len(l.buf) + l.oversize}
		if l.oversize > 0 {
			l.s.Stats.Oversized++
			out.Truncated = true
		}
		l.s.out = append(l.s.out, out)
		l.afterGap, l.joined = false, false
	}
	l.buf = l.buf[:0]
	if cap(l.buf) > 1<<20 {
		l.buf = nil // a large message passed: do not keep its buffer per stream
	}
	l.oversize = 0
	l.bufMeta = nil
}
