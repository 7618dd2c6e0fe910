package decode

import (
	"bytes"
	"net/url"
	"strings"
)

// sseParser splits a text/event-stream body into events. Data lines are
// joined with newlines; an event's data longer than the message cap is
// reported truncated. After a gap the event in progress is dropped and the
// parser resumes at the next blank line: an event is never spliced.
type sseParser struct {
	h        *httpHalf
	line     []byte
	lineOver int // bytes of the current line beyond its buffer
	ev       sseEvent
	lastID   string // the last event ID: it carries over to later events
	data     []byte
	size     int
	hasData  bool
	resync   bool // skipping to the end of the event a gap cut
	lost     bool // the next event follows lost bytes
	started  bool // past a leading byte order mark
	skipLF   bool // the last line ended in CR: a LF right after belongs to it
}

type sseEvent struct {
	event string
	id    string
}

func newSSE(h *httpHalf) *sseParser { return &sseParser{h: h, lost: h.afterGap} }

// feed takes body bytes. Lines end in CRLF, LF or CR alone.
func (p *sseParser) feed(b []byte) {
	if !p.started {
		head := append(p.line, b...)
		if len(head) < 3 && bytes.HasPrefix(bom, head) {
			p.line = head // maybe a BOM: wait for it whole
			return
		}
		p.started = true
		p.line = nil
		b = bytes.TrimPrefix(head, bom)
	}
	for len(b) > 0 {
		if p.skipLF {
			p.skipLF = false
			if b[0] == '\n' {
				b = b[1:]
				continue
			}
		}
		i := bytes.IndexAny(b, "\r\n")
		if i < 0 {
			p.appendLine(b)
			return
		}
		p.appendLine(b[:i])
		p.skipLF = b[i] == '\r'
		p.endLine()
		b = b[i+1:]
	}
}

var bom = []byte("\xef\xbb\xbf")

// idle: no event is in progress.
func (p *sseParser) idle() bool { return !p.hasData && len(p.line) == 0 }

func (p *sseParser) appendLine(b []byte) {
	if p.resync {
		p.h.c.l.Stats.Discarded += uint64(len(b))
		return
	}
	// a data line can be as long as the message cap; other fields are short
	room := max(p.h.c.l.maxMessage+16-len(p.line), 0)
	if len(b) > room {
		p.lineOver += len(b) - room
		b = b[:room]
	}
	p.line = append(p.line, b...)
}

func (p *sseParser) endLine() {
	line := p.line
	over := p.lineOver
	p.line, p.lineOver = p.line[:0], 0
	defer func() {
		if cap(p.line) > 1<<20 {
			p.line = nil // a large event passed: do not keep its buffer
		}
	}()
	if p.resync {
		if len(line) == 0 {
			p.resync = false
		}
		return
	}
	if len(line) == 0 {
		p.dispatch()
		return
	}
	if line[0] == ':' {
		return // comment (keep-alive)
	}
	field, value := line, []byte(nil)
	if i := bytes.IndexByte(line, ':'); i >= 0 {
		field, value = line[:i], line[i+1:]
		value = bytes.TrimPrefix(value, []byte(" "))
	}
	switch string(field) {
	case "data":
		if p.hasData {
			p.data = append(p.data, '\n')
			p.size++
		}
		p.hasData = true
		p.size += len(value) + over
		room := p.h.c.l.maxMessage - len(p.data)
		if len(value) > room {
			value = value[:max(room, 0)]
		}
		p.data = append(p.data, value...)
	case "event":
		p.ev.event = string(value)
	case "id":
		if bytes.IndexByte(value, 0) < 0 { // an id with NUL is ignored
			p.lastID = string(value)
		}
	}
}

func (p *sseParser) dispatch() {
	p.ev.id = p.lastID
	if !p.hasData {
		p.ev = sseEvent{}
		p.size = 0
		return
	}
	l := p.h.c.l
	l.Stats.SSEEvents++
	if p.ev.event == "endpoint" {
		// legacy HTTP+SSE (2024-11-05): the URI the client must POST to;
		// its session parameter names the session of this stream
		p.endpoint(string(p.data))
	} else {
		if p.size > l.maxMessage {
			l.Stats.Oversized++
		}
		p.h.emit(p.data, p.size, p.size > len(p.data), p.lost, false, &p.ev)
		p.lost = false
	}
	p.data = p.data[:0]
	if cap(p.data) > 1<<20 {
		p.data = nil
	}
	p.size, p.hasData = 0, false
	p.ev = sseEvent{}
}

func (p *sseParser) endpoint(uri string) {
	ex := p.h.ex
	if ex == nil {
		return
	}
	ex.info.Transport = "sse"
	if u, err := url.Parse(strings.TrimSpace(uri)); err == nil {
		q := u.Query()
		for _, k := range []string{"sessionId", "sessionid", "session_id"} {
			if v := q.Get(k); v != "" {
				ex.session = "http:" + v
				return
			}
		}
	}
}

// gap drops the event in progress and skips to the end of it.
func (p *sseParser) gap() {
	l := p.h.c.l
	if p.hasData || len(p.line) > 0 {
		l.Stats.LostBodies++
		l.Stats.Discarded += uint64(len(p.data) + len(p.line))
		p.resync = true
	}
	p.data, p.line = p.data[:0], p.line[:0]
	p.size, p.hasData = 0, false
	p.ev = sseEvent{}
	p.lost = true
}

// end: the body ended; an event without its blank line is incomplete.
func (p *sseParser) end() {
	if p.hasData || len(p.line) > 0 {
		p.h.c.l.Stats.Discarded += uint64(len(p.data) + len(p.line))
	}
}
