package correlate

import (
	"fmt"
	"net"
	"path"
	"reflect"
	"regexp"
	"strings"
	"sync"
)

// globs compiles path globs once each: `*` and `?` stay within one path
// element, `**` spans any number, and a leading `~/` stands for a home
// directory: every home on the host (/root, /home/NAME) and the homes of
// the server being judged ($HOME and its user's passwd home, wherever
// they are: a service's state directory, a container's /app). Safe for
// concurrent use.
type globs struct{ m sync.Map }

// glob is a compiled glob with its literal prefix and suffix.
type glob struct {
	re             *regexp.Regexp // the whole path (for ~/: under /root or /home/NAME)
	rest           *regexp.Regexp // ~/ patterns: what follows the home
	prefix, suffix string
	home           bool
}

func globBody(b *strings.Builder, p string) {
	for i := 0; i < len(p); i++ {
		switch c := p[i]; c {
		case '*':
			if i+1 < len(p) && p[i+1] == '*' {
				b.WriteString(".*")
				i++
			} else {
				b.WriteString("[^/]*")
			}
		case '?':
			b.WriteString("[^/]")
		default:
			b.WriteString(regexp.QuoteMeta(string(c)))
		}
	}
}

func (gs *globs) compile(pat string) *glob {
	if g, ok := gs.m.Load(pat); ok {
		return g.(*glob)
	}
	g := &glob{}
	body := pat
	var b strings.Builder
	b.WriteString("^")
	if rest, ok := strings.CutPrefix(pat, "~/"); ok {
		g.home, body = true, rest
		b.WriteString(`(?:/root|/home/[^/]+)/`)
		var r strings.Builder
		r.WriteString("^")
		globBody(&r, rest)
		r.WriteString("$")
		g.rest = regexp.MustCompile(r.String())
	} else if i := strings.IndexAny(body, "*?"); i >= 0 {
		g.prefix = body[:i]
	} else {
		g.prefix = body
	}
	globBody(&b, body)
	b.WriteString("$")
	g.re = regexp.MustCompile(b.String())
	if i := strings.LastIndexAny(body, "*?"); i >= 0 {
		g.suffix = body[i+1:]
	} else {
		g.suffix = body
	}
	gs.m.Store(pat, g)
	return g
}

// match says whether p matches one of pats; homes are the server's own.
func (gs *globs) match(p string, pats, homes []string) bool {
	if p == "" {
		return false
	}
	for _, pat := range pats {
		g := gs.compile(pat)
		// literal ends first: most paths fail there without a regexp
		if !strings.HasSuffix(p, g.suffix) || (g.prefix != "" && !strings.HasPrefix(p, g.prefix)) {
			continue
		}
		if !g.home {
			if g.re.MatchString(p) {
				return true
			}
			continue
		}
		if (strings.HasPrefix(p, "/root/") || strings.HasPrefix(p, "/home/")) && g.re.MatchString(p) {
			return true
		}
		for _, h := range homes {
			h = strings.TrimRight(h, "/")
			if h != "" && strings.HasPrefix(p, h+"/") && g.rest.MatchString(p[len(h)+1:]) {
				return true
			}
		}
	}
	return false
}

// underAny: p is one of roots or inside one (by whole path elements, so
// /srv/notes-evil is not under /srv/notes).
func underAny(p string, roots []string) bool {
	if p == "" {
		return false
	}
	p = path.Clean(p)
	for _, r := range roots {
		if r == "" {
			continue
		}
		r = path.Clean(r)
		if p == r || r == "/" || strings.HasPrefix(p, r+"/") {
			return true
		}
	}
	return false
}

// secretPatterns are the formats of private keys and of cloud and API
// tokens, written from their public descriptions. Each has a literal every
// match contains (hint, matched ignoring case when fold): a text without
// it is not searched, so the regexps run on few messages.
var secretPatterns = []struct {
	name string
	hint string
	fold bool
	re   *regexp.Regexp
}{
	{"private_key", "PRIVATE KEY", false, regexp.MustCompile(`-----BEGIN ((RSA|EC|DSA|OPENSSH|ENCRYPTED|PGP) )?PRIVATE KEY( BLOCK)?-----`)},
	{"aws_access_key_id", "A", false, regexp.MustCompile(`\b(AKIA|ASIA)[0-9A-Z]{16}\b`)},
	{"aws_secret_access_key", "aws_secret_access_key", true, regexp.MustCompile(`(?i)aws_secret_access_key\s*[=:]\s*["']?[A-Za-z0-9/+=]{40}`)},
	{"github_token", "_", false, regexp.MustCompile(`\b(gh[pousr]_[A-Za-z0-9]{36,}|github_pat_[A-Za-z0-9_]{22,})`)},
	{"gitlab_token", "glpat-", false, regexp.MustCompile(`\bglpat-[A-Za-z0-9_-]{20,}`)},
	{"slack_token", "xox", false, regexp.MustCompile(`\bxox[abposr]-[A-Za-z0-9-]{10,}`)},
	{"anthropic_key", "sk-ant-", false, regexp.MustCompile(`\bsk-ant-[A-Za-z0-9_-]{20,}`)},
	{"openai_key", "sk-", false, regexp.MustCompile(`\bsk-(proj-)?[A-Za-z0-9_-]{32,}`)},
	{"google_api_key", "AIza", false, regexp.MustCompile(`\bAIza[0-9A-Za-z_-]{35}`)},
	{"stripe_key", "k_live_", false, regexp.MustCompile(`\b[rs]k_live_[0-9A-Za-z]{24,}`)},
	{"npm_token", "npm_", false, regexp.MustCompile(`\bnpm_[A-Za-z0-9]{36}`)},
	{"jwt", "eyJ", false, regexp.MustCompile(`\beyJ[A-Za-z0-9_-]{10,}\.eyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}`)},
	{"gcp_service_account", "service_account", false, regexp.MustCompile(`"type"\s*:\s*"service_account"`)},
}

// Secrets names the kinds of secret found in s.
func Secrets(s string) []string {
	out := []string{}
	if len(s) < 16 {
		return out
	}
	for _, p := range secretPatterns {
		if !hasHint(s, p.hint, p.fold) {
			continue
		}
		if p.name == "aws_access_key_id" && !strings.Contains(s, "AKIA") && !strings.Contains(s, "ASIA") {
			continue
		}
		if p.name == "github_token" && !strings.Contains(s, "gh") {
			continue
		}
		if p.re.MatchString(s) {
			out = append(out, p.name)
		}
	}
	return out
}

// hasHint: s contains hint (ignoring ASCII case when fold).
func hasHint(s, hint string, fold bool) bool {
	if !fold {
		return strings.Contains(s, hint)
	}
	n := len(hint)
	if n == 0 {
		return true
	}
	// candidates start with the hint's first letter in either case, found
	// with IndexByte (vectorised) rather than a compare at every byte
	lo, up := hint[0], hint[0]
	if 'A' <= lo && lo <= 'Z' {
		lo += 'a' - 'A'
	}
	if 'a' <= up && up <= 'z' {
		up -= 'a' - 'A'
	}
	nextLo, nextUp := -1, -1 // the next index of each at or after i; -2: none left
	for i := 0; i+n <= len(s); {
		if nextLo != -2 && nextLo < i {
			if nextLo = strings.IndexByte(s[i:], lo); nextLo < 0 {
				nextLo = -2
			} else {
				nextLo += i
			}
		}
		if nextUp != -2 && nextUp < i {
			if nextUp = strings.IndexByte(s[i:], up); nextUp < 0 {
				nextUp = -2
			} else {
				nextUp += i
			}
		}
		switch {
		case nextLo == -2 && nextUp == -2:
			return false
		case nextLo == -2 || (nextUp != -2 && nextUp < nextLo):
			i = nextUp
		default:
			i = nextLo
		}
		if i+n <= len(s) && strings.EqualFold(s[i:i+n], hint) {
			return true
		}
		i++
	}
	return false
}

// shellMeta: s holds characters a shell gives meaning to.
func shellMeta(s string) bool {
	return strings.ContainsAny(s, ";|&`$<>\n") || strings.Contains(s, "$(")
}

// template is an output line with %var.field references (Falco's style),
// each checked against the variables' types when the rule is loaded.
type template []tmplPart

type tmplPart struct {
	text string
	ref  []string // var, field, subfield...
	idx  []int    // the field in the variable's type
	keys []string // keys inside a map field (call.args.path)
}

var refRE = regexp.MustCompile(`%([a-z_]+(?:\.[A-Za-z0-9_]+)+)`)

func parseTemplate(s string) (template, error) {
	var t template
	last := 0
	for _, m := range refRE.FindAllStringSubmatchIndex(s, -1) {
		t = append(t, tmplPart{text: s[last:m[0]]})
		ref := strings.Split(s[m[2]:m[3]], ".")
		idx, keys, err := fieldPath(ref)
		if err != nil {
			return nil, fmt.Errorf("%%%s: %v", s[m[2]:m[3]], err)
		}
		t = append(t, tmplPart{ref: ref, idx: idx, keys: keys})
		last = m[1]
	}
	t = append(t, tmplPart{text: s[last:]})
	return t, nil
}

func (t template) render(v *vars) string {
	var b strings.Builder
	for _, p := range t {
		if p.ref == nil {
			b.WriteString(p.text)
			continue
		}
		obj, _ := v.ResolveName(p.ref[0])
		var x any = reflect.ValueOf(obj).Elem().FieldByIndex(p.idx).Interface()
		for _, k := range p.keys {
			m, ok := x.(map[string]any)
			if !ok {
				x = nil
				break
			}
			x = m[k]
		}
		switch y := x.(type) {
		case nil:
			b.WriteString("<none>")
		case []string:
			b.WriteString(strings.Join(y, " "))
		default:
			fmt.Fprint(&b, y)
		}
	}
	return b.String()
}

// EgressAllowed: addr (host:port) matches an allow-list entry: a CIDR
// ("10.0.0.0/8"), an address or host name (any port), or host:port.
func EgressAllowed(addr string, allow []string) bool {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		host = addr
	}
	ip := net.ParseIP(host)
	for _, a := range allow {
		switch {
		case strings.Contains(a, "/"):
			if _, n, err := net.ParseCIDR(a); err == nil && ip != nil && n.Contains(ip) {
				return true
			}
		case strings.HasPrefix(a, "[") || strings.Count(a, ":") == 1:
			h, p, err := net.SplitHostPort(a)
			if err == nil && p == port && (h == host || (ip != nil && net.ParseIP(h).Equal(ip))) {
				return true
			}
		default:
			if a == host || (ip != nil && net.ParseIP(a).Equal(ip)) {
				return true
			}
		}
	}
	return false
}
