// Package control is the daemon's control API: a root-only unix socket
// (the caller is checked with SO_PEERCRED) speaking JSON lines, used by
// `sensor status`, `sensor alerts [--follow]` and `sensor servers`.
package control

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// Request is what a client sends: one JSON line.
type Request struct {
	Cmd    string `json:"cmd"` // status, alerts, servers, contain, release
	Follow bool   `json:"follow,omitempty"`
	Last   int    `json:"last,omitempty"` // alerts: how many recent ones (default 100)
	// contain, release: the server, by cgroup or pid
	Cgroup string `json:"cgroup,omitempty"`
	PID    int    `json:"pid,omitempty"`
	// Reason is why someone acts (contain, release, kill): audited.
	Reason string `json:"reason,omitempty"`
	// ServersOnly: the action may name only an MCP server the daemon
	// follows, by pid (the dashboard's and the MCP face's requests), never
	// any process or cgroup of the host.
	ServersOnly bool `json:"servers_only,omitempty"`
	// Args are the arguments of the other commands (Handlers.More).
	Args json.RawMessage `json:"args,omitempty"`
}

// Handlers answer requests.
type Handlers struct {
	Status  func() any
	Servers func() any
	// Contain and Release act on a server; uid is the caller's.
	Contain func(req Request, uid uint32) (any, error)
	Release func(req Request, uid uint32) (any, error)
	// More are the other commands, by name (posture, verdict, analyze,
	// ...): each answers one JSON value.
	More map[string]func(req Request, uid uint32) (any, error)
}

// Server serves the socket and keeps the recent alerts for `alerts`.
type Server struct {
	ln      net.Listener
	h       Handlers
	mu      sync.Mutex
	recent  []json.RawMessage
	follow  map[chan json.RawMessage]bool
	Dropped uint64 // alerts a slow follower missed
	maxKeep int
}

// Listen creates the socket at path, owned by root, mode 0600.
func Listen(path string, h Handlers) (*Server, error) {
	_ = os.Remove(path) // a stale socket from a dead daemon
	old := unix.Umask(0o077)
	ln, err := net.Listen("unix", path)
	unix.Umask(old)
	if err != nil {
		return nil, fmt.Errorf("control socket %s: %w", path, err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		ln.Close()
		return nil, err
	}
	s := &Server{ln: ln, h: h, follow: map[chan json.RawMessage]bool{}, maxKeep: 1000}
	go s.serve()
	return s, nil
}

// Alert records an alert for `alerts` and the followers.
func (s *Server) Alert(a any) {
	b, err := json.Marshal(a)
	if err != nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.recent = append(s.recent, b)
	if len(s.recent) > s.maxKeep {
		s.recent = s.recent[len(s.recent)-s.maxKeep:]
	}
	for ch := range s.follow {
		select {
		case ch <- b:
		default:
			s.Dropped++
		}
	}
}

// Close stops serving and removes the socket.
func (s *Server) Close() error {
	path := s.ln.Addr().String()
	err := s.ln.Close()
	_ = os.Remove(path)
	return err
}

func (s *Server) serve() {
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return
		}
		go s.handle(c.(*net.UnixConn))
	}
}

// peerUID is the uid of the process at the other end.
func peerUID(c *net.UnixConn) (uint32, error) {
	raw, err := c.SyscallConn()
	if err != nil {
		return 0, err
	}
	var cred *unix.Ucred
	var cerr error
	err = raw.Control(func(fd uintptr) { cred, cerr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED) })
	if err != nil {
		return 0, err
	}
	if cerr != nil {
		return 0, cerr
	}
	return cred.Uid, nil
}

func (s *Server) handle(c *net.UnixConn) {
	defer c.Close()
	enc := json.NewEncoder(c)
	uid, err := peerUID(c)
	if err != nil || uid != 0 {
		_ = enc.Encode(map[string]string{"error": "the control socket answers root only"})
		return
	}
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	var req Request
	if err := json.NewDecoder(bufio.NewReader(c)).Decode(&req); err != nil {
		_ = enc.Encode(map[string]string{"error": "bad request: " + err.Error()})
		return
	}
	_ = c.SetReadDeadline(time.Time{})
	switch req.Cmd {
	case "status":
		_ = enc.Encode(s.h.Status())
	case "servers":
		_ = enc.Encode(s.h.Servers())
	case "contain", "release":
		act := s.h.Contain
		if req.Cmd == "release" {
			act = s.h.Release
		}
		if act == nil {
			_ = enc.Encode(map[string]string{"error": req.Cmd + " is not served here"})
			return
		}
		v, err := act(req, uid)
		if err != nil {
			_ = enc.Encode(map[string]string{"error": err.Error()})
			return
		}
		_ = enc.Encode(v)
	case "alerts":
		n := req.Last
		if n <= 0 {
			n = 100
		}
		ch := make(chan json.RawMessage, 256)
		s.mu.Lock()
		recent := append([]json.RawMessage(nil), s.recent[max(0, len(s.recent)-n):]...)
		if req.Follow {
			s.follow[ch] = true
		}
		s.mu.Unlock()
		for _, a := range recent {
			if _, err := c.Write(append(a, '\n')); err != nil {
				return
			}
		}
		if !req.Follow {
			return
		}
		defer func() {
			s.mu.Lock()
			delete(s.follow, ch)
			s.mu.Unlock()
		}()
		for a := range ch {
			if _, err := c.Write(append(a, '\n')); err != nil {
				return
			}
		}
	default:
		fn := s.h.More[req.Cmd]
		if fn == nil {
			_ = enc.Encode(map[string]string{"error": fmt.Sprintf("unknown command %q (is the daemon older than this sensor?)", req.Cmd)})
			return
		}
		v, err := fn(req, uid)
		if err != nil {
			_ = enc.Encode(map[string]string{"error": err.Error()})
			return
		}
		_ = enc.Encode(v)
	}
}

// Ask sends a request whose answer is one JSON value and decodes it into
// out.
func Ask(path, cmd string, args, out any) error {
	req := Request{Cmd: cmd}
	if args != nil {
		b, err := json.Marshal(args)
		if err != nil {
			return err
		}
		req.Args = b
	}
	return Call(path, req, func(b []byte) error { return json.Unmarshal(b, out) })
}

// Call sends a request to the socket at path and calls line for each line
// of the answer, until it ends (or forever, when following).
func Call(path string, req Request, line func([]byte) error) error {
	c, err := net.Dial("unix", path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) || errors.Is(err, unix.ECONNREFUSED) {
			return fmt.Errorf("no daemon listening on %s (is `sensor daemon` running?)", path)
		}
		return err
	}
	defer c.Close()
	if err := json.NewEncoder(c).Encode(req); err != nil {
		return err
	}
	sc := bufio.NewScanner(c)
	sc.Buffer(make([]byte, 64<<10), 64<<20)
	for sc.Scan() {
		var e struct {
			Error string `json:"error"`
		}
		if json.Unmarshal(sc.Bytes(), &e) == nil && e.Error != "" {
			return errors.New(e.Error)
		}
		if err := line(sc.Bytes()); err != nil {
			return err
		}
	}
	return sc.Err()
}
