package decode

import (
	"bytes"
	"github.com/mcpsec/sensor/pkg/wire"
	"net/url"
	"strconv"
	"strings"
)

// HTTPInfo is what the HTTP transport said about a message: the exchange
// it travelled in and the MCP headers, kept with the message so rules can
// check them (an Origin that does not belong, a header that contradicts
// the body).
type HTTPInfo struct {
	// Transport is "streamable-http", or "sse" for the legacy HTTP+SSE
	// transport of 2024-11-05.
	Transport string `json:"transport"`
	Method    string `json:"method,omitempty"` // of the request
	Target    string `json:"target,omitempty"` // request-target (path and query)
	Status    int    `json:"status,omitempty"` // of the response, on server-sent messages
	Host      string `json:"host,omitempty"`
	Origin    string `json:"origin,omitempty"`
	// SessionID is the Mcp-Session-Id of the exchange: the request's, or
	// the one the response assigned (initialize).
	SessionID       string `json:"session_id,omitempty"`
	ProtocolVersion string `json:"protocol_version,omitempty"` // MCP-Protocol-Version header
	McpMethod       string `json:"mcp_method,omitempty"`       // Mcp-Method header (2026-07-28)
	McpName         string `json:"mcp_name,omitempty"`         // Mcp-Name header (2026-07-28)
	ContentType     string `json:"content_type,omitempty"`
	Event           string `json:"event,omitempty"`         // SSE event type
	EventID         string `json:"event_id,omitempty"`      // SSE id:
	LastEventID     string `json:"last_event_id,omitempty"` // Last-Event-ID (a resumed stream)
}

// HTTPStats counts what the HTTP/1.1 and SSE layers saw and lost.
type HTTPStats struct {
	ReasmStats
	Connections uint64 `json:"connections"`
	Requests    uint64 `json:"requests"`
	Responses   uint64 `json:"responses"`
	SSEEvents   uint64 `json:"sse_events"`
	// NotHTTP: bytes on sockets that do not carry HTTP/1.1 (TLS
	// ciphertext, HTTP/2, other protocols).
	NotHTTPBytes uint64 `json:"not_http_bytes"`
	TLSBytes     uint64 `json:"tls_ciphertext_bytes"`
	Malformed    uint64 `json:"malformed"`       // heads or chunk lines that did not parse
	Resyncs      uint64 `json:"resyncs"`         // times the parser searched for the next message after a loss
	Discarded    uint64 `json:"discarded_bytes"` // bytes skipped while resynchronising
	// LostBodies: bodies or SSE events that lost bytes to a gap; what came
	// before the gap is reported truncated, never spliced.
	LostBodies uint64 `json:"lost_bodies"`
	Oversized  uint64 `json:"oversized"`    // bodies or events longer than the message cap
	NonJSON    uint64 `json:"non_json"`     // bodies or events that were not JSON-RPC
	Unpaired   uint64 `json:"unpaired"`     // responses whose request was not seen
	Upgrades   uint64 `json:"upgraded"`     // connections switched to another protocol (101)
	Terminated uint64 `json:"sessions_end"` // DELETEs that ended a session
}

// httpLayer decodes the HTTP/1.1 carried by sockets: each socket inode is
// one connection with two directions, reassembled separately.
type httpLayer struct {
	Reassembler
	maxMessage int
	Stats      HTTPStats
	conns      map[uint64]*httpConn
	out        []Line
	ended      []string // sessions a DELETE ended
	seq        uint64
}

func newHTTPLayer(maxMessage int) *httpLayer {
	h := &httpLayer{maxMessage: maxMessage, conns: map[uint64]*httpConn{}}
	h.Reassembler = newReassembler(&h.Stats.ReasmStats, func(k StreamKey) consumer {
		c := h.conns[k.Ino]
		if c == nil {
			h.Stats.Connections++
			c = &httpConn{l: h, ino: k.Ino}
			h.conns[k.Ino] = c
		}
		half := &httpHalf{c: c, key: k}
		c.halves[k.Dir&1] = half
		return half
	})
	return h
}

func (h *httpLayer) take() []Line {
	out := h.out
	h.out = nil
	return out
}

// httpConn is one connection: the requests whose responses have not begun,
// in order (HTTP/1.1 answers a connection's requests in order).
type httpConn struct {
	l      *httpLayer
	ino    uint64
	halves [2]*httpHalf
	queue  []*exchange
	gen    uint64 // restarts of the request direction
}

// exchange is one request and what is known of it.
type exchange struct {
	info    HTTPInfo
	session string // the session its messages belong to (see sessionOf)
	head    bool   // HEAD: the response has no body
	gen     uint64 // the connection's generation when the request came
}

func (c *httpConn) closeHalf(dir uint8) {
	c.halves[dir&1] = nil
	if c.halves[0] == nil && c.halves[1] == nil {
		delete(c.l.conns, c.ino)
	}
}

type httpState uint8

const (
	hsStart     httpState = iota // nothing yet: find out what the stream carries
	hsHead                       // reading a start line and headers
	hsBody                       // Content-Length body: remain bytes left
	hsChunkSize                  // reading a chunk-size line
	hsChunkData                  // chunk data: remain bytes left
	hsChunkEnd                   // the CRLF after chunk data
	hsTrailer                    // trailer lines after the last chunk
	hsToClose                    // body delimited by the connection's end
	hsSeek                       // lost framing: looking for the next start line
	hsIgnore                     // not HTTP/1.1: counted, not decoded
)

// httpHalf parses one direction of a connection: requests, or responses.
type httpHalf struct {
	c        *httpConn
	key      StreamKey
	state    httpState
	known    bool // what the half carries is known
	requests bool // carries requests (else responses)
	resynced bool // responses: found again after a loss
	buf      []byte
	remain   uint64
	meta     any
	afterGap bool
	ex       *exchange // the exchange whose message is being read
	status   int
	sse      *sseParser // the body is an event stream
	body     []byte
	bodySize int
	bodyCut  bool // bytes of the body were lost: body holds what came before
}

const maxHead = 64 << 10

var methods = []string{"GET ", "POST ", "DELETE ", "PUT ", "HEAD ", "OPTIONS ", "PATCH ", "CONNECT ", "TRACE "}

// startKind says whether b begins an HTTP request (1), a response (2), may
// still become one with more bytes (0), or cannot be either (-1).
func startKind(b []byte) int {
	if bytes.HasPrefix(b, []byte("HTTP/1.")) {
		return 2
	}
	if len(b) < 7 && bytes.HasPrefix([]byte("HTTP/1."), b) {
		return 0
	}
	for _, m := range methods {
		if bytes.HasPrefix(b, []byte(m)) {
			return 1
		}
		if len(b) < len(m) && bytes.HasPrefix([]byte(m), b) {
			return 0
		}
	}
	return -1
}

func (h *httpHalf) data(b []byte, meta any) {
	h.meta = meta
	l := h.c.l
	for len(b) > 0 {
		switch h.state {
		case hsStart:
			h.buf = append(h.buf, b...)
			b = nil
			switch startKind(h.buf) {
			case 0:
				if len(h.buf) > 16 {
					h.ignore()
				}
			case 1, 2:
				h.known, h.requests = true, startKind(h.buf) == 1
				b, h.buf = h.buf, nil
				h.state = hsHead
			default:
				h.ignore()
			}
		case hsIgnore:
			l.Stats.NotHTTPBytes += uint64(len(b))
			return
		case hsSeek:
			b = h.seek(b)
		case hsHead:
			b = h.readHead(b)
		case hsBody, hsChunkData:
			n := uint64(len(b))
			if n > h.remain {
				n = h.remain
			}
			h.bodyBytes(b[:n])
			h.remain -= n
			b = b[n:]
			if h.remain == 0 {
				if h.state == hsBody {
					h.endBody()
				} else {
					h.state = hsChunkEnd
					h.remain = 2
				}
			}
		case hsChunkEnd:
			for len(b) > 0 && h.remain > 0 {
				c := b[0]
				b = b[1:]
				if c == '\n' {
					h.remain = 0
				} else if c != '\r' {
					h.malformed()
					break
				}
			}
			if h.state == hsChunkEnd && h.remain == 0 {
				h.state = hsChunkSize
			}
		case hsChunkSize, hsTrailer:
			i := bytes.IndexByte(b, '\n')
			if i < 0 {
				h.buf = append(h.buf, b...)
				b = nil
				if len(h.buf) > 4096 {
					h.malformed()
				}
				continue
			}
			h.buf = append(h.buf, b[:i]...)
			b = b[i+1:]
			line := bytes.TrimRight(h.buf, "\r")
			h.buf = h.buf[:0]
			if h.state == hsTrailer {
				if len(line) == 0 {
					h.endBody()
				}
				continue
			}
			if j := bytes.IndexByte(line, ';'); j >= 0 {
				line = line[:j] // chunk extensions
			}
			size, err := strconv.ParseUint(string(bytes.TrimSpace(line)), 16, 63)
			if err != nil {
				h.malformed()
				continue
			}
			if size == 0 {
				h.state = hsTrailer
			} else {
				h.state, h.remain = hsChunkData, size
			}
		case hsToClose:
			h.bodyBytes(b)
			b = nil
		}
	}
}

func (h *httpHalf) ignore() {
	l := h.c.l
	if len(h.buf) > 0 && h.buf[0] == 0x16 {
		l.Stats.TLSBytes += uint64(len(h.buf))
	} else {
		l.Stats.NotHTTPBytes += uint64(len(h.buf))
	}
	h.buf = nil
	h.state = hsIgnore
}

// malformed: the framing cannot be trusted any more.
func (h *httpHalf) malformed() {
	h.c.l.Stats.Malformed++
	h.lose()
}

// lose abandons the message in progress and searches for the next start
// line. What was read of a body is reported truncated.
func (h *httpHalf) lose() {
	h.c.l.Stats.Resyncs++
	if h.state == hsBody || h.state == hsChunkData || h.state == hsChunkSize || h.state == hsChunkEnd || h.state == hsToClose || h.state == hsTrailer {
		h.bodyGap()
		h.endBody()
	}
	h.c.l.Stats.Discarded += uint64(len(h.buf))
	h.buf = h.buf[:0]
	h.state = hsSeek
	h.afterGap = true
	h.resynced = !h.requests
}

// seek discards bytes up to a start line of this half's kind (anywhere:
// a body need not end with a newline), and returns what follows.
func (h *httpHalf) seek(b []byte) []byte {
	h.buf = append(h.buf, b...)
	l := h.c.l
	for i := 0; i < len(h.buf); i++ {
		c := h.buf[i]
		if c != 'G' && c != 'P' && c != 'D' && c != 'H' && c != 'O' && c != 'C' && c != 'T' {
			continue
		}
		switch k := startLine(h.buf[i:]); {
		case k == 0:
			// may be one: keep it and wait for more
			l.Stats.Discarded += uint64(i)
			h.buf = append(h.buf[:0], h.buf[i:]...)
			if len(h.buf) > 256 {
				l.Stats.Discarded += uint64(len(h.buf))
				h.buf = h.buf[:0]
			}
			return nil
		case k > 0 && (!h.known || (k == 1) == h.requests):
			h.known, h.requests = true, k == 1
			l.Stats.Discarded += uint64(i)
			rest := bytes.Clone(h.buf[i:])
			h.buf = h.buf[:0]
			h.state = hsHead
			return rest
		}
	}
	l.Stats.Discarded += uint64(len(h.buf))
	h.buf = h.buf[:0]
	return nil
}

// startLine says whether b begins with a whole request line (1) or status
// line (2), may still with more bytes (0), or does not (-1).
func startLine(b []byte) int {
	k := startKind(b)
	if k <= 0 {
		return k
	}
	end := bytes.IndexByte(b, '\n')
	if end < 0 {
		if len(b) > 256 {
			return -1
		}
		return 0
	}
	line := bytes.TrimSuffix(b[:end], []byte("\r"))
	if k == 1 {
		parts := bytes.Split(line, []byte(" "))
		if len(parts) == 3 && len(parts[1]) > 0 && (string(parts[2]) == "HTTP/1.1" || string(parts[2]) == "HTTP/1.0") {
			return 1
		}
		return -1
	}
	if len(line) >= 12 && line[8] == ' ' && isDigits(line[9:12]) {
		return 2
	}
	return -1
}

func isDigits(b []byte) bool {
	for _, c := range b {
		if c < '0' || c > '9' {
			return false
		}
	}
	return len(b) > 0
}

func (h *httpHalf) readHead(b []byte) []byte {
	from := max(len(h.buf)-3, 0)
	h.buf = append(h.buf, b...)
	i := bytes.Index(h.buf[from:], []byte("\r\n\r\n"))
	if i < 0 {
		if len(h.buf) > maxHead {
			h.malformed()
		}
		return nil
	}
	end := from + i + 4
	rest := bytes.Clone(h.buf[end:])
	head := h.buf[:end]
	if !h.parseHead(head) {
		h.buf = h.buf[:0]
		h.malformed()
		return rest
	}
	h.buf = h.buf[:0]
	if cap(h.buf) > maxHead {
		h.buf = nil
	}
	return rest
}

// header returns the value of the first header named name (lower case).
func header(lines [][]byte, name string) string {
	for _, ln := range lines {
		i := bytes.IndexByte(ln, ':')
		if i <= 0 || i != len(name) {
			continue
		}
		if strings.EqualFold(string(ln[:i]), name) {
			return string(bytes.TrimSpace(ln[i+1:]))
		}
	}
	return ""
}

func (h *httpHalf) parseHead(head []byte) bool {
	lines := bytes.Split(bytes.TrimRight(head, "\r\n"), []byte("\r\n"))
	start := lines[0]
	hdrs := lines[1:]
	h.body, h.bodySize, h.bodyCut, h.sse = h.body[:0], 0, false, nil
	l := h.c.l
	var length int64 = -1
	if cl := header(hdrs, "content-length"); cl != "" {
		n, err := strconv.ParseInt(cl, 10, 64)
		if err != nil || n < 0 {
			return false
		}
		length = n
	}
	chunked := strings.Contains(strings.ToLower(header(hdrs, "transfer-encoding")), "chunked")
	ctype := header(hdrs, "content-type")
	if h.requests {
		parts := bytes.SplitN(start, []byte(" "), 3)
		if len(parts) != 3 || !bytes.HasPrefix(parts[2], []byte("HTTP/1.")) {
			return false
		}
		l.Stats.Requests++
		ex := &exchange{info: HTTPInfo{
			Transport: "streamable-http", Method: string(parts[0]), Target: string(parts[1]),
			Host: header(hdrs, "host"), Origin: header(hdrs, "origin"),
			SessionID:       header(hdrs, "mcp-session-id"),
			ProtocolVersion: header(hdrs, "mcp-protocol-version"),
			McpMethod:       header(hdrs, "mcp-method"), McpName: header(hdrs, "mcp-name"),
			ContentType: ctype, LastEventID: header(hdrs, "last-event-id"),
		}}
		ex.head = ex.info.Method == "HEAD"
		ex.gen = h.c.gen
		l.seq++
		ex.session = sessionOf(&ex.info, h.c.ino, l.seq)
		h.c.queue = append(h.c.queue, ex)
		if len(h.c.queue) > 64 { // a peer that never answers: bound the queue
			h.c.queue = h.c.queue[1:]
		}
		h.ex = ex
		switch {
		case chunked:
			h.state = hsChunkSize
		case length > 0:
			h.state, h.remain = hsBody, uint64(length)
		default:
			h.endBody()
		}
		return true
	}
	parts := bytes.SplitN(start, []byte(" "), 3)
	if len(parts) < 2 {
		return false
	}
	status, err := strconv.Atoi(string(parts[1]))
	if err != nil || status < 100 || status > 999 {
		return false
	}
	if status >= 100 && status < 200 && status != 101 {
		h.state = hsHead // 100 Continue and friends: the real response follows
		return true
	}
	l.Stats.Responses++
	var ex *exchange
	if h.resynced && len(h.c.queue) > 1 {
		// responses were lost with the gap: the one found after it
		// answers the latest request (MCP clients do not pipeline)
		l.Stats.Unpaired += uint64(len(h.c.queue) - 1)
		h.c.queue = h.c.queue[len(h.c.queue)-1:]
	}
	h.resynced = false
	if len(h.c.queue) > 0 {
		ex = h.c.queue[0]
		h.c.queue = h.c.queue[1:]
	} else {
		// its request was not seen (lost, or before we attached)
		l.Stats.Unpaired++
		l.seq++
		ex = &exchange{info: HTTPInfo{Transport: "streamable-http"}}
		ex.session = sessionOf(&ex.info, h.c.ino, l.seq)
	}
	// the response's messages carry the request's headers and its own
	info := ex.info
	info.Status = status
	info.ContentType = ctype
	info.LastEventID = ""
	if sid := header(hdrs, "mcp-session-id"); sid != "" && info.SessionID == "" {
		info.SessionID = sid
	}
	h.ex = &exchange{info: info, session: ex.session}
	h.status = status
	if ex.info.Method == "DELETE" && ex.info.SessionID != "" && status >= 200 && status < 300 {
		// the client ended the session, and the server agreed
		l.Stats.Terminated++
		l.ended = append(l.ended, ex.session)
	}
	if status == 101 {
		// another protocol (a WebSocket) on both halves from here
		l.Stats.Upgrades++
		h.state = hsIgnore
		if o := h.c.halves[(h.key.Dir+1)&1]; o != nil {
			o.state, o.buf = hsIgnore, nil
		}
		return true
	}
	if strings.HasPrefix(strings.ToLower(ctype), "text/event-stream") {
		h.sse = newSSE(h)
	}
	switch {
	case ex.head || status == 204 || status == 304:
		h.endBody()
	case chunked:
		h.state = hsChunkSize
	case length >= 0:
		if length == 0 {
			h.endBody()
		} else {
			h.state, h.remain = hsBody, uint64(length)
		}
	default:
		h.state = hsToClose
	}
	return true
}

// sessionOf names the session of an exchange: its Mcp-Session-Id, or the
// legacy transport's session query parameter; failing both (stateless
// servers, the initialize request) the exchange itself, so that request
// ids, which repeat across exchanges, still pair exactly.
func sessionOf(info *HTTPInfo, ino, seq uint64) string {
	if info.SessionID != "" {
		return "http:" + info.SessionID
	}
	if i := strings.IndexByte(info.Target, '?'); i >= 0 {
		if q, err := url.ParseQuery(info.Target[i+1:]); err == nil {
			for _, k := range []string{"sessionId", "sessionid", "session_id"} {
				if v := q.Get(k); v != "" {
					info.Transport = "sse"
					return "http:" + v
				}
			}
		}
	}
	return "http:" + strconv.FormatUint(ino, 10) + "#" + strconv.FormatUint(seq, 10)
}

func (h *httpHalf) bodyBytes(b []byte) {
	if h.sse != nil {
		h.sse.feed(b)
		return
	}
	h.bodySize += len(b)
	if h.bodyCut {
		return
	}
	room := h.c.l.maxMessage - len(h.body)
	if len(b) > room {
		b = b[:max(room, 0)]
	}
	h.body = append(h.body, b...)
}

// bodyGap: bytes of the current body are lost.
func (h *httpHalf) bodyGap() {
	if h.sse != nil {
		h.sse.gap()
		return
	}
	if !h.bodyCut {
		h.bodyCut = true
		h.c.l.Stats.LostBodies++
	}
}

func (h *httpHalf) endBody() {
	if h.sse != nil {
		h.sse.end()
		h.sse = nil
		h.afterGap = false
	} else if h.bodySize > 0 || (h.requests && h.key.Dir == wire.DirIn) {
		truncated := h.bodyCut || h.bodySize > len(h.body)
		if h.bodySize > h.c.l.maxMessage {
			h.c.l.Stats.Oversized++
		}
		h.emit(h.body, h.bodySize, truncated, h.afterGap, h.bodyCut, nil)
		h.afterGap = false
	}
	h.body = h.body[:0]
	if cap(h.body) > 1<<20 {
		h.body = nil
	}
	h.bodySize, h.bodyCut = 0, false
	h.state = hsHead
	h.remain = 0
	h.afterGap = false
}

// emit hands a body or an event's data to the decoder as one frame.
func (h *httpHalf) emit(data []byte, size int, truncated, afterGap, lost bool, ev *sseEvent) {
	if h.ex == nil {
		return
	}
	info := h.ex.info
	if ev != nil {
		info.Event, info.EventID = ev.event, ev.id
	}
	h.c.l.out = append(h.c.l.out, Line{
		Key: h.key, Data: bytes.Clone(data), Meta: h.meta, AfterGap: afterGap,
		Truncated: truncated, Lost: lost, Size: size, HTTP: &info, session: h.ex.session,
		Request: h.requests && h.key.Dir == wire.DirIn && ev == nil,
	})
}

// gap: n bytes of this direction are missing. Inside a body of known
// length the framing survives (the kernel says exactly how many bytes are
// missing); anywhere else the parser searches for the next start line.
func (h *httpHalf) gap(n uint64) {
	switch h.state {
	case hsStart, hsSeek:
		// what was held (the start of a start line, perhaps) cannot be
		// joined to what follows the gap
		h.c.l.Stats.Discarded += uint64(len(h.buf))
		h.buf = h.buf[:0]
		h.state = hsSeek
		h.afterGap = true
	case hsIgnore:
		h.afterGap = true
	case hsBody, hsChunkData:
		if n > h.remain {
			h.lose()
			return
		}
		h.bodyGap()
		h.remain -= n
		if h.remain == 0 {
			if h.state == hsBody {
				h.endBody()
			} else {
				h.state, h.remain = hsChunkEnd, 2
			}
		}
	case hsToClose:
		h.bodyGap()
	default:
		h.lose()
	}
}

// restart: the stream began again (a reused SSL*, or kernel state lost):
// a body delimited by the connection's end is complete; anything else in
// progress is lost.
func (h *httpHalf) restart() {
	switch {
	case h.state == hsToClose:
		h.endBody()
	case h.state != hsHead && h.state != hsStart && h.state != hsIgnore || len(h.buf) > 0:
		h.lose()
	}
	h.c.l.Stats.Discarded += uint64(len(h.buf))
	h.buf = h.buf[:0]
	wasRequests := h.known && h.requests
	h.state, h.known, h.afterGap, h.resynced = hsStart, false, false, false
	// requests of the old stream will not be answered on the new one; a
	// request the new stream already carried (its half restarted first)
	// will be
	if wasRequests {
		h.c.gen++
		h.c.queue = nil
		return
	}
	q := h.c.queue[:0]
	for _, ex := range h.c.queue {
		if ex.gen == h.c.gen {
			q = append(q, ex)
		}
	}
	h.c.queue = q
}

func (h *httpHalf) close() {
	if h.state == hsToClose {
		h.endBody() // the connection's end delimits the body
	} else if len(h.buf) > 0 || h.bodySize > 0 {
		h.c.l.Stats.Discarded += uint64(len(h.buf) + len(h.body))
	}
	h.c.closeHalf(h.key.Dir)
}

func (h *httpHalf) idle() bool {
	if h.sse != nil && !h.sse.idle() {
		return false
	}
	if len(h.buf) == 0 && h.bodySize == 0 {
		h.buf, h.body = nil, nil
		return true
	}
	return false
}
