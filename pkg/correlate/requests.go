package correlate

import (
	"encoding/json"
	"net/url"
	"path/filepath"
	"strings"
	"time"

	"github.com/mcpsec/sensor/pkg/decode"
)

// Launchers: a process that answers HTTP (MCP or not) and runs programs
// with what a request carried. The decoder reports requests that carry no
// JSON-RPC as http_request effects; the pieces of the last few are kept
// per server, and an exec whose argv holds one of them came from that
// request.

// requestMemory is how long a request's data may show up in an exec.
const requestMemory = 30 * time.Second

type inbound struct {
	at     time.Time
	line   string   // method, target and the start of the body
	pieces []string // the target's path segments and query values, the body's values
}

// request keeps an http_request's pieces (the last 16 per server).
func (s *server) request(e *decode.Effect) {
	s.requested = true
	method, rest, _ := strings.Cut(e.Detail, " ")
	target, body, _ := strings.Cut(rest, " ")
	in := inbound{at: e.Time, line: e.Detail}
	u, err := url.ParseRequestURI(target)
	if err == nil {
		// a path's segments are mostly route names (run, exec, api):
		// only those that look like a command line or data count
		for _, seg := range strings.Split(u.Path, "/") {
			if p, err := url.PathUnescape(seg); err == nil && (len(p) >= 12 || strings.ContainsAny(p, " ;|&$`\\.-")) {
				in.pieces = append(in.pieces, p)
			}
		}
		for _, vs := range u.Query() {
			in.pieces = append(in.pieces, vs...)
		}
	}
	if body != "" && method != "GET" {
		var v any
		if json.Unmarshal([]byte(body), &v) == nil {
			in.pieces = stringsIn(v, in.pieces, 0)
		} else if q, err := url.ParseQuery(body); err == nil && len(q) > 0 {
			for _, vs := range q {
				in.pieces = append(in.pieces, vs...)
			}
		} else {
			in.pieces = append(in.pieces, body)
		}
	}
	s.inbound = append(s.inbound, in)
	if len(s.inbound) > 16 {
		s.inbound = s.inbound[1:]
	}
}

// fromRequest finds the recent request whose data an exec's argv carries
// ("" if none).
func (s *server) fromRequest(e *decode.Effect) string {
	for i := len(s.inbound) - 1; i >= 0; i-- {
		in := s.inbound[i]
		if e.Time.Sub(in.at) > requestMemory {
			break
		}
		prog, args := false, false
		for _, p := range in.pieces {
			if len(p) < 2 {
				continue
			}
			if len(e.Argv) > 0 && (e.Argv[0] == p || filepath.Base(e.Argv[0]) == p || e.Path == p) {
				prog = true
			}
			// arguments must say more than a flag like -c does
			if len(p) < 3 {
				continue
			}
			for _, a := range e.Argv[min(1, len(e.Argv)):] {
				if a == p || strings.Contains(a, p) {
					args = true
				}
			}
		}
		// the request's data in the arguments, or the request naming a
		// program run with none (?command=id)
		if args || (prog && len(e.Argv) <= 1) {
			return in.line
		}
	}
	return ""
}

// sibling says whether an open is the first in a directory next to ones
// the server has been using in its calls (a confined server reading past
// a prefix check: /srv/data-private next to /srv/data), and learns the
// directory. Only opens a call's arguments named count.
func (s *server) sibling(e *decode.Effect, cl *call) bool {
	if cl == nil || e.Path == "" || e.Result < 0 {
		return false
	}
	d := filepath.Dir(e.Path)
	if s.dirs == nil {
		s.dirs = map[string]*dirUse{}
	}
	u := s.dirs[d]
	novel := false
	if u == nil {
		parent := filepath.Dir(d)
		if s.dirs[parent] == nil {
			for od, ou := range s.dirs {
				if ou.calls >= 2 && filepath.Dir(od) == parent && od != d && !strings.HasPrefix(d, od+"/") {
					novel = true
					break
				}
			}
		}
		if len(s.dirs) >= 1024 {
			return novel // bound: learn no more
		}
		u = &dirUse{}
		s.dirs[d] = u
	}
	if u.last != cl {
		u.last = cl
		u.calls++
	}
	return novel
}

// dirUse is how many calls opened files in a directory.
type dirUse struct {
	calls int
	last  *call
}
