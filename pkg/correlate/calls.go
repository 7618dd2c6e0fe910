package correlate

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/mcpsec/sensor/internal/jsonscan"
	"github.com/mcpsec/sensor/pkg/decode"
)

// call is a request in flight.
type call struct {
	ref     decode.CallRef
	args    map[string]any
	strs    []string // every string in the arguments
	start   time.Time
	effects int
	// flows: values of its arguments that came from results; injection:
	// the result with instructions its client was given before it;
	// outbound: its tool sends what it is given somewhere.
	flows     []flowHit
	injection *flowOrigin
	outbound  bool
	langs     []string // the tool languages its arguments inject into (lang.go)
}

func callKey(session string, id json.RawMessage) string { return session + "\x00" + string(id) }

// callMethods are the requests whose handling is a "call" effects belong to.
var callMethods = map[string]bool{"tools/call": true, "resources/read": true, "prompts/get": true,
	"resources/subscribe": true, "completion/complete": true}

func (s *server) open(m *decode.Message, args *parsedArgs) *call {
	ref := decode.CallRef{Session: m.Session, ID: m.ID, Method: m.Method, Tool: m.Tool}
	cl := &call{ref: ref, start: m.Time}
	if m.Method != "tools/call" {
		args = parseArgs(m.Params) // what a resources/read or prompts/get names
	}
	if args.ok {
		cl.args, _ = args.v.(map[string]any)
		cl.strs = args.strs()
		cl.langs = languages(cl.strs)
	}
	k := callKey(m.Session, m.ID)
	if _, ok := s.calls[k]; !ok {
		s.order = append(s.order, k)
	}
	s.calls[k] = cl
	for len(s.order) > 256 { // a client that never gets answers: bound it
		delete(s.calls, s.order[0])
		s.order = s.order[1:]
	}
	return cl
}

func (s *server) close(k string) {
	if _, ok := s.calls[k]; !ok {
		return
	}
	delete(s.calls, k)
	for i, x := range s.order {
		if x == k {
			s.order = append(s.order[:i], s.order[i+1:]...)
			break
		}
	}
}

// parsedArgs are a request's arguments, parsed once.
type parsedArgs struct {
	raw  []byte
	v    any
	ok   bool // parsed: present, JSON and under 1 MiB
	strv []string
}

func parseArgs(raw []byte) *parsedArgs {
	a := &parsedArgs{raw: raw}
	if len(raw) > 0 && len(raw) < 1<<20 {
		a.v, a.ok = jsonscan.Value(raw)
	}
	return a
}

// strs are the strings in the arguments (computed once).
func (a *parsedArgs) strs() []string {
	if a.ok && a.strv == nil {
		a.strv = nonNil(stringsIn(a.v, nil, 0))
	}
	return a.strv
}

// stringsIn collects the strings of a JSON value (bounded).
func stringsIn(v any, out []string, depth int) []string {
	if depth > 8 || len(out) > 256 {
		return out
	}
	switch x := v.(type) {
	case string:
		out = append(out, x)
	case []any:
		for _, y := range x {
			out = stringsIn(y, out, depth+1)
		}
	case map[string]any:
		for _, y := range x {
			out = stringsIn(y, out, depth+1)
		}
	}
	return out
}

// addClientRoots takes the directories of a roots/list answer.
func (s *server) addClientRoots(result json.RawMessage) {
	var r struct {
		Roots []struct {
			URI string `json:"uri"`
		} `json:"roots"`
	}
	if json.Unmarshal(result, &r) != nil {
		return
	}
	for _, x := range r.Roots {
		if p, ok := strings.CutPrefix(x.URI, "file://"); ok && p != "" {
			s.roots = appendUnique(s.roots, filepath.Clean(p))
		}
	}
}

func appendUnique(l []string, v string) []string {
	for _, x := range l {
		if x == v {
			return l
		}
	}
	return append(l, v)
}

func dirExists(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.IsDir()
}

// attribute finds the calls in flight an effect belongs to.
func (s *server) attribute(e *decode.Effect) ([]*call, bool) {
	if len(s.calls) == 0 || e.Type == "exit" {
		return nil, false
	}
	var named []*call
	for _, k := range s.order {
		if cl := s.calls[k]; mentions(cl.strs, e) {
			named = append(named, cl)
		}
	}
	if len(named) > 0 {
		return named, true
	}
	all := make([]*call, 0, len(s.order))
	for _, k := range s.order {
		all = append(all, s.calls[k])
	}
	return all, false
}

// mentions: one of a call's argument strings names what the effect
// touched: the path (or its last elements), an argv element, the address.
func mentions(args []string, e *decode.Effect) bool {
	for _, a := range args {
		if len(a) < 2 {
			continue
		}
		switch {
		case e.Path != "" && (e.Path == a || strings.HasSuffix(e.Path, "/"+strings.TrimPrefix(a, "./")) || e.Raw == a):
			return true
		case e.To != "" && strings.HasSuffix(e.To, "/"+strings.TrimPrefix(a, "./")):
			return true
		case e.Addr != "" && len(a) > 3 && strings.Contains(e.Addr, a):
			return true
		}
		for _, x := range e.Argv[min(1, len(e.Argv)):] {
			if x == a || (len(a) > 3 && strings.Contains(x, a)) {
				return true
			}
		}
	}
	return false
}
