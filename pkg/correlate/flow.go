package correlate

import (
	"hash/maphash"
	"strings"
	"time"
	"unicode/utf8"
)

// Cross-call data flow. Per client (the servers one client process drives)
// the correlator keeps fingerprints of distinctive values that arrived in
// results (secret-looking tokens, e-mail addresses, phone numbers, URLs
// and hosts, long identifiers), with where each came from. A later call
// whose arguments carry one of them is a flow: from a result, through the
// model, into another tool. Values the user supplied (seen in a request
// before any result carried them) are not indexed. The index is bounded:
// the oldest values go first, counted.

// flowLimit bounds the values kept per client; flowPerMessage the values
// taken from one message.
const (
	flowLimit      = 4096
	flowPerMessage = 256
	flowMinLen     = 8
	flowMaxLen     = 512
)

// flowValue is a value's class and text, as found.
type flowValue struct {
	class string // secret, email, phone, url, host, token
	text  string
}

// flowOrigin is where an indexed value first appeared.
type flowOrigin struct {
	class    string
	preview  string // its first characters
	server   string // printable name
	serverID string
	tool     string
	call     string // request id
	injected bool   // the result carried instructions for the model
	at       time.Time
}

// flowHit is a value of a call's arguments that came from a result.
type flowHit struct {
	origin flowOrigin
}

// flowIndex is one client's values.
type flowIndex struct {
	vals  map[uint64]flowOrigin
	user  map[uint64]struct{}
	order []uint64 // both maps' keys, oldest first
	// injection is the latest result with instructions the client was
	// given
	injection flowOrigin
}

// FlowStats counts the flow index's work.
type FlowStats struct {
	Values  uint64 `json:"flow_values_indexed"`
	Evicted uint64 `json:"flow_values_evicted"`
	Hits    uint64 `json:"flow_hits"`
	// Capped: results with more values than are taken from one message
	// (flowPerMessage); the rest of them is not followed.
	Capped uint64 `json:"flow_results_capped"`
}

type flows struct {
	seed    maphash.Seed
	clients map[string]*flowIndex
	stats   FlowStats
	scratch []flowValue
}

func newFlows() *flows {
	return &flows{seed: maphash.MakeSeed(), clients: map[string]*flowIndex{}}
}

func (f *flows) index(client string) *flowIndex {
	ix := f.clients[client]
	if ix == nil {
		if len(f.clients) >= 1024 { // bound the clients too
			for k := range f.clients {
				f.stats.Evicted += uint64(len(f.clients[k].vals))
				delete(f.clients, k)
				break
			}
		}
		ix = &flowIndex{vals: map[uint64]flowOrigin{}, user: map[uint64]struct{}{}}
		f.clients[client] = ix
	}
	return ix
}

func (f *flows) sum(v flowValue) uint64 { return maphash.String(f.seed, v.text) }

func (f *flows) add(ix *flowIndex, h uint64) {
	ix.order = append(ix.order, h)
	for len(ix.order) > flowLimit {
		old := ix.order[0]
		ix.order = ix.order[1:]
		if _, ok := ix.vals[old]; ok {
			delete(ix.vals, old)
			f.stats.Evicted++
		}
		delete(ix.user, old)
	}
}

// request notes the values of a request's arguments: those no result
// carried before are the user's own. It returns the values that did come
// from results.
func (f *flows) request(client string, strs []string, hits []flowHit) []flowHit {
	ix := f.index(client)
	f.scratch = extractValues(strs, f.scratch[:0])
	for _, v := range f.scratch {
		h := f.sum(v)
		if o, ok := ix.vals[h]; ok {
			f.stats.Hits++
			hits = append(hits, flowHit{origin: o})
			continue
		}
		if _, ok := ix.user[h]; !ok {
			ix.user[h] = struct{}{}
			f.add(ix, h)
		}
	}
	return hits
}

// result indexes the values of a result.
func (f *flows) result(client string, strs []string, o flowOrigin) {
	ix := f.index(client)
	f.scratch = extractValues(strs, f.scratch[:0])
	if len(f.scratch) >= flowPerMessage {
		f.stats.Capped++
	}
	for _, v := range f.scratch {
		h := f.sum(v)
		if _, ok := ix.user[h]; ok {
			continue
		}
		if _, ok := ix.vals[h]; ok {
			continue // the first origin stands
		}
		o.class, o.preview = v.class, preview(v.text)
		ix.vals[h] = o
		f.stats.Values++
		f.add(ix, h)
	}
}

func preview(s string) string {
	n := 0
	for i := range s {
		if n == 12 {
			return s[:i] + "…"
		}
		n++
	}
	return s
}

// extractValues appends the distinctive values of strings: whole short
// values and the tokens of longer texts.
func extractValues(strs []string, out []flowValue) []flowValue {
	for _, s := range strs {
		if len(out) >= flowPerMessage {
			break
		}
		if len(s) >= flowMinLen && len(s) <= 24 && isPhone(s) {
			out = append(out, flowValue{"phone", normalize("phone", s)})
			continue
		}
		if len(s) >= flowMinLen && len(s) <= 128 && !strings.ContainsAny(s, " \t\n") {
			if c := classify(s); c != "" {
				out = append(out, flowValue{c, normalize(c, s)})
				continue
			}
		}
		out = tokens(s, out)
	}
	return out
}

// tokens splits text at what cannot be inside a value and classifies the
// pieces.
func tokens(s string, out []flowValue) []flowValue {
	start := -1
	for i := 0; i <= len(s); i++ {
		inTok := i < len(s) && tokenByte(s[i])
		if inTok {
			if start < 0 {
				start = i
			}
			continue
		}
		if start < 0 {
			continue
		}
		a, b := start, i
		start = -1
		if b-a < flowMinLen {
			continue
		}
		for b > a && trailing(s[b-1]) {
			b--
		}
		for a < b && (s[a] == '(' || s[a] == '[' || s[a] == '{' || s[a] == '\'' || s[a] == '"') {
			a++
		}
		t := s[a:b]
		if len(t) < flowMinLen || len(t) > flowMaxLen {
			continue
		}
		if c := classify(t); c != "" {
			out = append(out, flowValue{c, normalize(c, t)})
			if len(out) >= flowPerMessage {
				return out
			}
		}
	}
	return out
}

func trailing(c byte) bool {
	switch c {
	case '.', ',', ':', ';', '!', '?', ')', ']', '}', '\'', '"':
		return true
	}
	return false
}

func tokenByte(b byte) bool {
	switch {
	case b >= 'a' && b <= 'z', b >= 'A' && b <= 'Z', b >= '0' && b <= '9', b >= 0x80:
		return true
	}
	switch b {
	case '_', '-', '.', '@', ':', '/', '+', '=', '%', '?', '&', '~', '#':
		return true
	}
	return false
}

// classify says what kind of distinctive value t is ("" if none).
func classify(t string) string {
	switch {
	case strings.HasPrefix(t, "http://") || strings.HasPrefix(t, "https://"):
		if len(t) >= 16 {
			return "url"
		}
		return ""
	case isEmail(t):
		return "email"
	case isPhone(t):
		return "phone"
	}
	letters, digits, upper, lower, other := 0, 0, 0, 0, 0
	for _, r := range t {
		switch {
		case r >= '0' && r <= '9':
			digits++
		case r >= 'a' && r <= 'z':
			letters++
			lower++
		case r >= 'A' && r <= 'Z':
			letters++
			upper++
		case r == utf8.RuneError:
			return ""
		default:
			other++
		}
	}
	n := len(t)
	switch {
	case n >= 16 && letters > 0 && digits > 0 && (upper > 0 || digits >= 4) && other*4 < n:
		return "secret"
	case isHost(t):
		return "" // hosts are too common to follow
	case n >= 12 && letters > 0 && digits > 0 && other*2 < n && !strings.Contains(t, "/"):
		return "token"
	}
	return ""
}

func isEmail(t string) bool {
	at := strings.IndexByte(t, '@')
	if at < 1 || at != strings.LastIndexByte(t, '@') {
		return false
	}
	dom := t[at+1:]
	return isHost(dom)
}

func isHost(t string) bool {
	if len(t) < 4 || strings.IndexByte(t, '.') < 1 || strings.HasSuffix(t, ".") || strings.Contains(t, "..") {
		return false
	}
	tld := t[strings.LastIndexByte(t, '.')+1:]
	if len(tld) < 2 || len(tld) > 12 {
		return false
	}
	for i := 0; i < len(tld); i++ {
		if tld[i] < 'a' || tld[i] > 'z' {
			if tld[i] < 'A' || tld[i] > 'Z' {
				return false
			}
		}
	}
	for i := 0; i < len(t); i++ {
		c := t[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '.') {
			return false
		}
	}
	// file names (report.txt, index.js) look like hosts: ask for a dot
	// before the last one, or a common top-level domain
	if strings.Count(t, ".") >= 2 {
		return true
	}
	switch strings.ToLower(tld) {
	case "com", "net", "org", "io", "dev", "ai", "co", "app", "xyz", "info", "biz", "me", "sh", "cloud", "site", "online":
		return true
	}
	return false
}

func isPhone(t string) bool {
	digits := 0
	for i := 0; i < len(t); i++ {
		c := t[i]
		switch {
		case c >= '0' && c <= '9':
			digits++
		case c == '+' && i == 0, c == '-', c == ' ', c == '(', c == ')', c == '.':
		default:
			return false
		}
	}
	return digits >= 9 && digits <= 15 && (t[0] == '+' || strings.ContainsAny(t, "-. ()"))
}

// normalize makes one value one text: e-mail addresses and hosts are
// case-insensitive, phone numbers are their digits.
func normalize(class, t string) string {
	switch class {
	case "email", "host":
		return strings.ToLower(t)
	case "phone":
		var b strings.Builder
		for i := 0; i < len(t); i++ {
			if t[i] >= '0' && t[i] <= '9' {
				b.WriteByte(t[i])
			}
		}
		return b.String()
	}
	return t
}
