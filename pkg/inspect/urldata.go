package inspect

import "strings"

// urlEvidence weighs how much the path and query of a foreign URL look like
// they carry data: a placeholder for the model to fill ("{secret}",
// "<DATA>", "$SECRET"), a value that looks like a secret, a data-named
// parameter with a long value, a long encoded value.
func urlEvidence(pq string, image bool) (ev int, placeholder int) {
	if ph := hasPlaceholder(pq); ph != phNone {
		return evStrong, ph
	}
	// The fragment never reaches the server.
	if h := strings.IndexByte(pq, '#'); h >= 0 {
		pq = pq[:h]
	}
	path, query, _ := strings.Cut(pq, "?")
	for query != "" && ev < evStrong {
		var param string
		param, query, _ = cutAny(query, "&;")
		name, val, _ := strings.Cut(param, "=")
		ev = max(ev, paramEvidence(name, val, image))
	}
	for path != "" && ev < evStrong {
		var seg string
		seg, path, _ = strings.Cut(path, "/")
		switch {
		case secretLike(seg):
			ev = evStrong
		case image && encodedText(seg):
			ev = max(ev, evWeak)
		}
	}
	return ev, phNone
}

// emptyDataParam reports a data parameter left empty for someone to fill.
func emptyDataParam(pq string) bool {
	_, query, _ := strings.Cut(pq, "?")
	for query != "" {
		var param string
		param, query, _ = cutAny(query, "&;#")
		if name, val, _ := strings.Cut(param, "="); val == "" && len(name) < 32 && dataParam(strings.ToLower(name)) {
			return true
		}
	}
	return false
}

func cutAny(s, seps string) (before, after string, found bool) {
	if i := strings.IndexAny(s, seps); i >= 0 {
		return s[:i], s[i+1:], true
	}
	return s, "", false
}

// paramEvidence weighs one query parameter.
func paramEvidence(name, val string, image bool) int {
	if val == "" || len(name) > 32 {
		return evNone
	}
	var nb [32]byte
	for i := 0; i < len(name); i++ {
		nb[i] = lower(name[i])
	}
	n := string(nb[:len(name)])
	if benignParam(n) {
		return evNone
	}
	if secretLike(val) || image && upperPlaceholder(val) {
		return evStrong
	}
	long := len(val) >= 16
	switch {
	case dataParam(n):
		if long {
			return evStrong
		}
		if !image {
			return evWeak // "?secret=confetti", the model told to swap in the real one
		}
	case len(n) == 1:
		if len(val) >= 24 && base64ish(val) {
			return evStrong
		}
	case ambiguousParam(n):
		if long {
			return evWeak
		}
	}
	if len(val) >= 32 && (base64ish(val) || image && hexish(val)) {
		return evWeak // a commit hash in a link is the link's own business
	}
	return evNone
}

func dataParam(n string) bool {
	switch n {
	case "data", "secret", "secrets", "password", "pass", "passwd", "pwd", "leak", "exfil", "payload", "dump",
		"content", "contents", "conversation", "convo", "chat", "history", "creds", "credentials", "cred", "ssh",
		"cookie", "cookies", "memory", "prompt", "info", "stolen", "loot", "env", "summary",
		"context", "pii", "keys", "privatekey", "private_key":
		return true
	}
	return false
}

func ambiguousParam(n string) bool {
	switch n {
	case "token", "key", "apikey", "api_key", "auth", "access_token", "id_token", "sid", "session", "email":
		return true
	}
	return false
}

func benignParam(n string) bool {
	switch n {
	case "v", "ver", "version", "w", "h", "width", "height", "size", "style", "logo", "logocolor", "logowidth",
		"label", "labelcolor", "color", "branch", "ref", "tag", "sha", "format", "fm", "fit", "auto", "crop",
		"ixid", "ixlib", "dpr", "cs", "raw", "sanitize", "sig", "signature", "expires", "se", "sp", "sv", "sr",
		"st", "spr", "skoid", "sktid", "hl", "lang", "locale", "page", "sort", "order", "id", "cacheseconds",
		"maxage", "url", "redirect", "redirect_uri", "return_to", "next", "continue", "state", "nonce",
		"client_id", "response_type", "scope", "theme", "mode", "s", "rev", "commit", "path", "file",
		"filename", "name", "title", "alt", "type", "t":
		return true
	}
	return strings.HasPrefix(n, "utm_") || strings.HasPrefix(n, "x-amz-") || strings.HasPrefix(n, "x-goog-")
}

// hasPlaceholder finds a data-named template placeholder: {data},
// {{secret}}, <SECRET>, [CONVERSATION], $API_KEY, ${TOKEN}. "{id}",
// "{owner}" and "YOUR_API_KEY" are the docs' own templates; an encoded
// %7B...%7D is code in a playground link more often than a template.
// Placeholders: none, for data, for the conversation itself.
const (
	phNone = iota
	phData
	phConversation
)

func hasPlaceholder(u string) int {
	for k := 0; k < len(u); k++ {
		var name string
		switch c := u[k]; {
		case c == '{' || c == '<' || c == '[':
			if e := placeholderEnd(u, k); e > 0 {
				name = strings.Trim(u[k+1:e-1], "{}$ ")
			}
		case c == '$':
			e := k + 1
			if e < len(u) && u[e] == '{' {
				e++
			}
			s := e
			for e < len(u) && (u[e] >= 'A' && u[e] <= 'Z' || u[e] == '_' || u[e] >= '0' && u[e] <= '9') {
				e++
			}
			name = u[s:e]
		}
		if len(name) >= 3 && dataish(name) {
			for _, part := range [...]string{"convers", "chat", "histor", "summar", "memory", "prompt", "context"} {
				if containsFold(name, part) {
					return phConversation
				}
			}
			return phData
		}
	}
	return phNone
}

// dataish reports a placeholder name that stands for the user's data.
func dataish(name string) bool {
	if len(name) >= 4 && strings.EqualFold(name[:4], "your") || len(name) >= 3 && strings.EqualFold(name[:3], "my_") {
		return false
	}
	for _, part := range [...]string{"data", "secret", "token", "key", "pass", "cred", "convers", "chat", "histor",
		"summar", "context", "content", "info", "email", "ssh", "private", "sensitive", "personal", "leak",
		"memory", "prompt", "cookie", "address", "phone"} {
		if containsFold(name, part) {
			return true
		}
	}
	return false
}

// upperPlaceholder: a value like SECRET_HERE or CONVERSATION_SUMMARY in an
// image URL, for the model to replace.
func upperPlaceholder(v string) bool {
	if len(v) < 4 {
		return false
	}
	for i := 0; i < len(v); i++ {
		if c := v[i]; !(c >= 'A' && c <= 'Z' || c == '_') {
			return false
		}
	}
	return dataish(v) || containsFold(v, "here") || containsFold(v, "insert")
}

// secretLike reports a value shaped like a credential: provider key
// prefixes, a PEM header, an SSH public key.
func secretLike(v string) bool {
	if len(v) < 20 {
		return false
	}
	for _, p := range [...]string{"sk-", "sk_live_", "sk_test_", "rk_live_", "ghp_", "gho_", "ghu_", "ghs_", "ghr_",
		"github_pat_", "xoxb-", "xoxp-", "xoxa-", "glpat-", "AIza", "-----BEGIN", "ssh-rsa", "ssh-ed25519"} {
		if strings.HasPrefix(v, p) {
			return true
		}
	}
	if (strings.HasPrefix(v, "AKIA") || strings.HasPrefix(v, "ASIA")) && len(v) == 20 {
		return strings.Trim(v, "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567") == ""
	}
	return false
}

// base64ish: from the base64 alphabets, with upper and lower case letters
// and digits mixed (so not a word, a slug or a number). Percent escapes
// are neutral; many '+' are the spaces of an encoded sentence.
func base64ish(v string) bool {
	var up, lo, dig bool
	plus := 0
	for i := 0; i < len(v); i++ {
		switch c := v[i]; {
		case c == '%' && i+2 < len(v):
			// base64 escapes its +, / and =; any other escape is text
			if e := v[i+1 : i+3]; !strings.EqualFold(e, "2B") && !strings.EqualFold(e, "2F") && !strings.EqualFold(e, "3D") {
				return false
			}
			i += 2
		case c == '+':
			plus++
		case c >= 'A' && c <= 'Z':
			up = true
		case c >= 'a' && c <= 'z':
			lo = true
		case c >= '0' && c <= '9':
			dig = true
		case c == '+' || c == '/' || c == '=' || c == '_' || c == '-' || c == '%':
		default:
			return false
		}
	}
	return up && lo && dig && plus*16 <= len(v)
}

func hexish(v string) bool {
	for i := 0; i < len(v); i++ {
		if c := v[i] | 0x20; !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

// encodedText: a sentence percent- or plus-encoded into a URL.
func encodedText(v string) bool {
	if len(v) < 24 {
		return false
	}
	return strings.Count(v, "%20")+strings.Count(v, "+") >= 3
}
