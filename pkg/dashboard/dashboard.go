// Package dashboard is the daemon's web page: live alerts (server-sent
// events), the threat landscape, the servers with each one's call ->
// effect timeline, the incidents, the posture and compliance, and the
// actions (contain, release, verdicts) for a caller holding the act
// token. The page is static files embedded in the binary (no build step,
// no framework); it reads JSON from /api and writes every value with
// textContent, so nothing a monitored server wrote can run in it.
package dashboard

import (
	"crypto/subtle"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

//go:embed assets
var assets embed.FS

// Ask answers one of the daemon's commands (the control socket's: status,
// servers, threats, posture, compliance, intel, analyze, incidents,
// contain, release, kill, verdict) with its arguments; by names the
// caller for the audit trail.
type Ask func(cmd string, args json.RawMessage, by string) (any, error)

// readCmds may be asked with the view token; actCmds need the act token.
var (
	readCmds = map[string]bool{"status": true, "servers": true, "threats": true, "posture": true, "compliance": true,
		"intel": true, "analyze": true, "incidents": true}
	actCmds = map[string]bool{"contain": true, "release": true, "kill": true, "verdict": true}
)

// Options configure a dashboard.
type Options struct {
	Ask      Ask
	Token    string // opens the page
	ActToken string // also lets the caller act
	// Hosts are the Host headers accepted (a foreign one is DNS rebinding).
	Hosts []string
}

// Dashboard serves the page and keeps what it shows live.
type Dashboard struct {
	o        Options
	timeline *Timeline
	mu       sync.Mutex
	clients  map[chan []byte]bool
	// Dropped counts live alerts a slow page missed.
	Dropped atomic.Uint64
}

// New makes a dashboard.
func New(o Options) (*Dashboard, error) {
	if len(o.Token) < 16 || len(o.ActToken) < 16 {
		return nil, errors.New("the dashboard's tokens must be at least 16 characters")
	}
	if o.Token == o.ActToken {
		return nil, errors.New("the dashboard's view and act tokens must differ")
	}
	return &Dashboard{o: o, timeline: NewTimeline(400), clients: map[chan []byte]bool{}}, nil
}

// Timeline is what the page shows of each server's calls and effects.
func (d *Dashboard) Timeline() *Timeline { return d.timeline }

// Alert sends an alert to the pages open now (and keeps it in its
// server's timeline).
func (d *Dashboard) Alert(server string, a any) {
	b, err := json.Marshal(a)
	if err != nil {
		return
	}
	d.timeline.Add(server, b)
	d.mu.Lock()
	defer d.mu.Unlock()
	for ch := range d.clients {
		select {
		case ch <- b:
		default:
			d.Dropped.Add(1)
		}
	}
}

// Handler is the dashboard's HTTP handler.
func (d *Dashboard) Handler() http.Handler {
	mux := http.NewServeMux()
	static, _ := fs.Sub(assets, "assets")
	files := http.FileServerFS(static)
	mux.Handle("GET /", files)
	mux.HandleFunc("GET /api/live", d.live)
	mux.HandleFunc("GET /api/timeline", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(d.timeline.JSON(r.URL.Query().Get("server")))
	})
	mux.HandleFunc("GET /api/whoami", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, map[string]any{"act": d.role(r) == "act", "dropped_live": d.Dropped.Load()})
	})
	mux.HandleFunc("GET /api/{cmd}", d.read)
	mux.HandleFunc("POST /api/{cmd}", d.act)
	return d.guard(mux)
}

// guard checks the Host header on everything, and the token on /api: a
// Bearer header (the page keeps the token in its tab's sessionStorage,
// taken from the address's fragment, never a cookie: cookies are shared
// with every port of the host), or ?token= for the live stream (an
// EventSource cannot send headers). The page's static files hold nothing
// and are served to anyone the Host check lets in.
func (d *Dashboard) guard(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !d.hostOK(r.Host) {
			http.Error(w, "unexpected Host header (DNS rebinding?)", http.StatusForbidden)
			return
		}
		w.Header().Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; connect-src 'self'")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		w.Header().Set("X-Frame-Options", "DENY")
		w.Header().Set("Referrer-Policy", "no-referrer")
		if strings.HasPrefix(r.URL.Path, "/api/") && d.role(r) == "" {
			w.Header().Set("WWW-Authenticate", "Bearer")
			http.Error(w, "open the address the daemon logged (it carries the token), or send Authorization: Bearer TOKEN", http.StatusUnauthorized)
			return
		}
		next.ServeHTTP(w, r)
	})
}

func (d *Dashboard) hostOK(host string) bool {
	h, _, err := net.SplitHostPort(host)
	if err != nil {
		h = host
	}
	h = strings.Trim(h, "[]")
	if h == "localhost" || h == "127.0.0.1" || h == "::1" {
		return true
	}
	for _, a := range d.o.Hosts {
		if strings.EqualFold(a, h) {
			return true
		}
	}
	return false
}

func (d *Dashboard) roleOf(t string) string {
	switch {
	case subtle.ConstantTimeCompare([]byte(t), []byte(d.o.ActToken)) == 1:
		return "act"
	case subtle.ConstantTimeCompare([]byte(t), []byte(d.o.Token)) == 1:
		return "view"
	}
	return ""
}

// role is what the request's token allows: "act", "view" or "".
func (d *Dashboard) role(r *http.Request) string {
	if t, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok {
		return d.roleOf(t)
	}
	if t := r.URL.Query().Get("token"); t != "" && r.Method == http.MethodGet {
		return d.roleOf(t)
	}
	return ""
}

func (d *Dashboard) read(w http.ResponseWriter, r *http.Request) {
	cmd := r.PathValue("cmd")
	if !readCmds[cmd] {
		http.Error(w, fmt.Sprintf("no %q here", cmd), http.StatusNotFound)
		return
	}
	args := map[string]any{}
	for k, v := range r.URL.Query() {
		if k == "limit" {
			var n int
			_, _ = fmt.Sscan(v[0], &n)
			args[k] = n
			continue
		}
		args[k] = v[0]
	}
	b, _ := json.Marshal(args)
	v, err := d.o.Ask(cmd, b, "dashboard")
	if err != nil {
		writeError(w, err, http.StatusBadRequest)
		return
	}
	writeJSON(w, v)
}

func (d *Dashboard) act(w http.ResponseWriter, r *http.Request) {
	cmd := r.PathValue("cmd")
	if !actCmds[cmd] {
		http.Error(w, fmt.Sprintf("no %q here", cmd), http.StatusNotFound)
		return
	}
	if d.role(r) != "act" {
		writeError(w, errors.New("refused: this page may look, not act (open it with the act token)"), http.StatusForbidden)
		return
	}
	// a cross-site form cannot carry JSON with this header
	if !strings.HasPrefix(r.Header.Get("Content-Type"), "application/json") {
		writeError(w, errors.New("send JSON (Content-Type: application/json)"), http.StatusUnsupportedMediaType)
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, 64<<10))
	if err != nil {
		writeError(w, err, http.StatusBadRequest)
		return
	}
	v, err := d.o.Ask(cmd, body, "dashboard")
	if err != nil {
		writeError(w, err, http.StatusBadRequest)
		return
	}
	writeJSON(w, v)
}

// live streams alerts as server-sent events.
func (d *Dashboard) live(w http.ResponseWriter, r *http.Request) {
	fl, ok := w.(http.Flusher)
	if !ok {
		http.Error(w, "streaming unsupported", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-store")
	ch := make(chan []byte, 256)
	d.mu.Lock()
	d.clients[ch] = true
	d.mu.Unlock()
	defer func() {
		d.mu.Lock()
		delete(d.clients, ch)
		d.mu.Unlock()
	}()
	fmt.Fprint(w, ": connected\n\n")
	fl.Flush()
	ping := time.NewTicker(15 * time.Second)
	defer ping.Stop()
	for {
		select {
		case <-r.Context().Done():
			return
		case b := <-ch:
			fmt.Fprintf(w, "event: alert\ndata: %s\n\n", b)
			fl.Flush()
		case <-ping.C:
			fmt.Fprint(w, ": ping\n\n")
			fl.Flush()
		}
	}
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, err error, code int) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": err.Error()})
}
