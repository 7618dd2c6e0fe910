package gateway

import (
	"bufio"
	"bytes"
	"crypto/subtle"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
)

// HTTPOptions configure the gateway in front of a Streamable HTTP server.
type HTTPOptions struct {
	Options
	// Upstream is the server's MCP endpoint.
	Upstream *url.URL
	// Hosts are the Host headers accepted (DNS rebinding: a page on a
	// foreign name that resolves to 127.0.0.1 sends its own); empty: the
	// listen address's host, localhost and 127.0.0.1.
	Hosts []string
	// Origins are the Origin headers accepted (a request without one,
	// from a client that is not a browser, passes); empty: none.
	Origins []string
	// Tokens map bearer tokens to principals' names; empty: no
	// authentication (the principal is the peer address).
	Tokens map[string]string
	Client *http.Client
}

// HTTPGateway is a reverse proxy that judges each message as the stdio
// gateway does, one core per MCP session; a session is bound to the
// principal that created it.
type HTTPGateway struct {
	o        HTTPOptions
	mu       sync.Mutex
	sessions map[string]*httpSession
}

type httpSession struct {
	g         *Gateway
	principal string
}

// NewHTTP makes an HTTP gateway.
func NewHTTP(o HTTPOptions) *HTTPGateway {
	if o.Client == nil {
		o.Client = &http.Client{}
	}
	if o.Policy == nil {
		o.Policy = Default()
	}
	return &HTTPGateway{o: o, sessions: map[string]*httpSession{}}
}

func (h *HTTPGateway) refuse(w http.ResponseWriter, status int, why string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(errorReply(nil, codeDenied, "mcp-sensor: "+why, nil))
}

func (h *HTTPGateway) hostOK(r *http.Request) bool {
	host := r.Host
	if hh, _, err := net.SplitHostPort(host); err == nil {
		host = hh
	}
	hosts := h.o.Hosts
	if len(hosts) == 0 {
		hosts = []string{"localhost", "127.0.0.1", "::1", "[::1]"}
	}
	for _, a := range hosts {
		if strings.EqualFold(a, host) || strings.EqualFold(a, r.Host) {
			return true
		}
	}
	return false
}

// principal is who is asking: a bearer token's principal, or the peer.
func (h *HTTPGateway) principal(r *http.Request) (string, bool) {
	if len(h.o.Tokens) == 0 {
		host, _, _ := net.SplitHostPort(r.RemoteAddr)
		return "peer " + host, true
	}
	tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok {
		return "", false
	}
	for t, p := range h.o.Tokens {
		if subtle.ConstantTimeCompare([]byte(t), []byte(tok)) == 1 {
			return p, true
		}
	}
	return "", false
}

// core is the session's gateway; a request without a session id (the
// initialize) gets a fresh one, kept once the server names the session.
func (h *HTTPGateway) core(sid, principal string) (*Gateway, string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if sid != "" {
		s := h.sessions[sid]
		switch {
		case s == nil:
			// a session this gateway did not see created has no
			// principal to check: the client starts a new one
			return nil, "unknown"
		case s.principal != principal:
			return nil, "other"
		}
		return s.g, ""
	}
	if len(h.sessions) >= 65536 {
		return nil, "full"
	}
	o := h.o.Options
	o.Principal = Principal{UID: -1, Exe: principal}
	return New(o), ""
}

func (h *HTTPGateway) unbind(sid string) {
	h.mu.Lock()
	delete(h.sessions, sid)
	h.mu.Unlock()
}

func (h *HTTPGateway) bind(sid, principal string, g *Gateway) {
	if sid == "" {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, ok := h.sessions[sid]; !ok && len(h.sessions) < 65536 {
		h.sessions[sid] = &httpSession{g: g, principal: principal}
	}
}

// ServeHTTP checks the request's Host, Origin, principal and session, judges
// a POSTed message, and passes the server's answer (JSON or an event
// stream) through the same core.
func (h *HTTPGateway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !h.hostOK(r) {
		h.refuse(w, http.StatusForbidden, "Host "+r.Host+" is not this gateway's (DNS rebinding?)")
		return
	}
	if o := r.Header.Get("Origin"); o != "" && !anyGlob(h.o.Origins, o) {
		h.refuse(w, http.StatusForbidden, "Origin "+o+" is not allowed")
		return
	}
	who, ok := h.principal(r)
	if !ok {
		h.refuse(w, http.StatusUnauthorized, "a bearer token is required")
		return
	}
	sid := r.Header.Get("Mcp-Session-Id")
	g, why := h.core(sid, who)
	switch why {
	case "unknown":
		h.refuse(w, http.StatusNotFound, "session "+sid+" is not known to this gateway: start a new one")
		return
	case "other":
		h.refuse(w, http.StatusForbidden, "session "+sid+" belongs to another principal")
		return
	case "full":
		h.refuse(w, http.StatusServiceUnavailable, "too many sessions")
		return
	}
	if ct := strings.ToLower(r.Header.Get("Content-Type")); r.Method == http.MethodPost &&
		(!strings.HasPrefix(ct, "application/json") || (strings.Contains(ct, "charset") && !strings.Contains(ct, "charset=utf-8"))) {
		// the gateway reads UTF-8 JSON: a server must read the same
		h.refuse(w, http.StatusUnsupportedMediaType, "a request is application/json in UTF-8")
		return
	}
	var body []byte
	if r.Method == http.MethodPost {
		b, err := io.ReadAll(io.LimitReader(r.Body, int64(g.o.MaxMessage)+1))
		if err != nil {
			h.refuse(w, http.StatusBadRequest, "reading the request: "+err.Error())
			return
		}
		if len(b) > g.o.MaxMessage {
			g.Stats.Oversized.Add(1)
			h.refuse(w, http.StatusRequestEntityTooLarge, "a message longer than the gateway's limit cannot be judged")
			return
		}
		if bytes.IndexByte(b, '\r') >= 0 && !json.Valid(b) {
			h.refuse(w, http.StatusBadRequest, "not JSON")
			return
		}
		fwd, reply := g.JudgeClient(bytes.TrimSpace(b))
		if fwd != nil && !headersMatch(r, fwd) {
			h.refuse(w, http.StatusBadRequest, "Mcp-Method or Mcp-Name differs from the message")
			return
		}
		if fwd == nil || (reply != nil && isBatch(b)) {
			// refused (a batch wholly: an HTTP exchange answers once)
			if reply == nil {
				w.WriteHeader(http.StatusAccepted)
				return
			}
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write(reply)
			return
		}
		body = fwd
	}
	// the request's path and query as they are (the legacy SSE transport
	// posts to the path its endpoint event named)
	target := *h.o.Upstream
	if r.URL.Path != "" && r.URL.Path != "/" {
		target.Path, target.RawPath = r.URL.Path, r.URL.RawPath
	}
	target.RawQuery = r.URL.RawQuery
	req, err := http.NewRequestWithContext(r.Context(), r.Method, target.String(), bytes.NewReader(body))
	if err != nil {
		h.refuse(w, http.StatusBadGateway, err.Error())
		return
	}
	for _, k := range []string{"Accept", "Mcp-Session-Id", "Mcp-Protocol-Version", "Last-Event-Id", "Mcp-Method", "Mcp-Name"} {
		if v := r.Header.Get(k); v != "" {
			req.Header.Set(k, v)
		}
	}
	if r.Method == http.MethodPost {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := h.o.Client.Do(req)
	if err != nil {
		h.refuse(w, http.StatusBadGateway, "the server: "+err.Error())
		return
	}
	defer resp.Body.Close()
	if s := resp.Header.Get("Mcp-Session-Id"); s != "" {
		h.bind(s, who, g)
	}
	if sid != "" && (r.Method == http.MethodDelete && resp.StatusCode < 300 || resp.StatusCode == http.StatusNotFound) {
		h.unbind(sid) // ended, or gone upstream
	}
	for _, k := range []string{"Content-Type", "Mcp-Session-Id", "Mcp-Protocol-Version", "Cache-Control"} {
		if v := resp.Header.Get(k); v != "" {
			w.Header().Set(k, v)
		}
	}
	ct := strings.ToLower(resp.Header.Get("Content-Type"))
	switch {
	case strings.HasPrefix(ct, "text/event-stream"):
		w.WriteHeader(resp.StatusCode)
		h.events(w, resp.Body, g)
	case strings.HasPrefix(ct, "application/json"):
		b, err := io.ReadAll(io.LimitReader(resp.Body, int64(g.o.MaxMessage)+1))
		if err != nil || len(b) > g.o.MaxMessage {
			h.refuse(w, http.StatusBadGateway, "the server's answer could not be read whole")
			return
		}
		out, _ := g.JudgeServer(bytes.TrimSpace(b))
		w.Header().Del("Content-Length")
		w.WriteHeader(resp.StatusCode)
		_, _ = w.Write(out)
	default:
		// another type: a client may still read JSON in it; judged as
		// JSON, or refused
		b, err := io.ReadAll(io.LimitReader(resp.Body, int64(g.o.MaxMessage)+1))
		if err != nil || len(b) > g.o.MaxMessage {
			h.refuse(w, http.StatusBadGateway, "the server's answer could not be read whole")
			return
		}
		if len(bytes.TrimSpace(b)) == 0 {
			w.WriteHeader(resp.StatusCode)
			return
		}
		out, _ := g.JudgeServer(bytes.TrimSpace(b))
		if out == nil {
			h.refuse(w, http.StatusBadGateway, "the server answered with "+ct+" the gateway cannot judge")
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(resp.StatusCode)
		_, _ = w.Write(out)
	}
}

// headersMatch: the 2026-07-28 Mcp-Method and Mcp-Name headers, if any,
// say what the (single) message says.
func headersMatch(r *http.Request, body []byte) bool {
	hm, hn := r.Header.Get("Mcp-Method"), r.Header.Get("Mcp-Name")
	if (hm == "" && hn == "") || isBatch(body) {
		return true
	}
	m, ok := parseMessage(body)
	if !ok {
		return false
	}
	p, _ := parseParams(m.Params)
	name := p.Name
	if name == "" {
		name = p.URI
	}
	return (hm == "" || hm == m.Method) && (hn == "" || hn == name)
}

// events passes an event stream on, event by event, each message judged
// (a message the gateway withholds leaves its event out).
func (h *HTTPGateway) events(w http.ResponseWriter, body io.Reader, g *Gateway) {
	fl, _ := w.(http.Flusher)
	br := bufio.NewReaderSize(body, 64<<10)
	var ev []string
	var data []string
	size, over := 0, false
	flush := func() {
		if over {
			// an event longer than the limit cannot be judged: left out
			g.Stats.Oversized.Add(1)
			g.decide(Decision{Verdict: "denied", Direction: "out", Reason: "an event longer than the gateway's limit cannot be judged"})
			ev, data, size, over = ev[:0], data[:0], 0, false
			return
		}
		if len(ev) == 0 && len(data) == 0 {
			return
		}
		var b strings.Builder
		for _, l := range ev {
			b.WriteString(l + "\n")
		}
		if len(data) > 0 {
			out, _ := g.JudgeServer([]byte(strings.Join(data, "\n")))
			if out != nil {
				for _, l := range strings.Split(string(out), "\n") {
					b.WriteString("data: " + l + "\n")
				}
			}
		}
		b.WriteString("\n")
		_, _ = io.WriteString(w, b.String())
		if fl != nil {
			fl.Flush()
		}
		ev, data, size = ev[:0], data[:0], 0
	}
	for {
		line, err := br.ReadString('\n')
		// a line ends at LF, CRLF or a lone CR, as clients read it
		line = strings.TrimSuffix(strings.TrimSuffix(line, "\n"), "\r")
		for _, l := range strings.Split(line, "\r") {
			switch {
			case l == "" && (err == nil || line != ""):
				flush()
			case strings.HasPrefix(l, "data:"):
				if size += len(l); size > g.o.MaxMessage {
					over, data = true, data[:0]
				} else if !over {
					data = append(data, strings.TrimPrefix(strings.TrimPrefix(l, "data:"), " "))
				}
			case l != "":
				if size += len(l); size > g.o.MaxMessage {
					over = true
				} else {
					ev = append(ev, l)
				}
			}
		}
		if err != nil {
			flush()
			return
		}
	}
}
