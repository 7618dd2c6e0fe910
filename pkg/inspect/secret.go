package inspect

import "strings"

// Distances, in words, within which an order and a secret bind: "read
// ~/.ssh/id_rsa", "send the contents of all the user's tokens"; "the .env
// file: upload it".
const (
	orderThenSecret = 8
	secretThenOrder = 6
)

// secretState is what the current sentence says about secrets: orders to
// read or send, the secrets named, and the heaviest order that binds one.
// Judged when the sentence ends.
type secretState struct {
	vIdx         int // word number of the last order, -1: none
	vStart, vEnd int
	vMax         int // the heaviest secret the order can ask for
	tIdx         int // word number of the heaviest unbound secret
	tWeight      int
	tStart, tEnd int
	bound        int // weight of the heaviest order bound to a secret
	bStart, bEnd int
	fill         bool // an order to append, include, encode ...
	conv         bool // the conversation, the chat history
}

func (st *secretState) reset() { *st = secretState{vIdx: -1, tIdx: -1} }

func (st *secretState) bind(weight, start, end int) {
	if weight > st.bound {
		st.bound, st.bStart, st.bEnd = weight, start, end
	}
}

// order notes an order to read or send at word number idx, and binds the
// secret named just before it. A tool verb ("call X with the password")
// binds only what follows it, and only as a weak secret: "use the .netrc
// file", "to list the secrets, run ..." are how-tos.
func (s *scanner) order(w *tok, idx int) {
	st := &s.sec
	st.vIdx, st.vStart, st.vEnd, st.vMax = idx, int(w.start), int(w.end), wSecret
	if w.has(cTool) {
		st.vMax = wSecretWeak
		return
	}
	if st.tIdx >= 0 && idx-st.tIdx <= secretThenOrder {
		st.bind(st.tWeight, st.tStart, st.vEnd)
	}
}

// secret notes a secret of the given weight at the last word, bound to an
// order a few words before it unless a preposition puts it elsewhere
// ("add an option for private keys").
func (s *scanner) secret(weight int) {
	if weight <= 0 {
		return
	}
	st, w, idx := &s.sec, s.back(0), s.n-1
	if st.vIdx >= 0 && idx-st.vIdx <= orderThenSecret && !s.blocked(idx-st.vIdx) {
		st.bind(min(weight, st.vMax), st.vStart, int(w.end))
		return
	}
	if weight > st.tWeight {
		st.tIdx, st.tWeight, st.tStart, st.tEnd = idx, weight, int(w.start), int(w.end)
	}
}

// blocked reports a preposition among the words between the order at
// back(k) and the last word.
func (s *scanner) blocked(k int) bool {
	for j := 1; j < k; j++ {
		switch p := s.back(j); {
		case p.is("for"), p.is("from"), p.is("about"), p.is("by"), p.is("on"), p.is("than"), p.is("like"),
			p.is("regarding"), p.is("instead"), p.is("without"):
			return true
		}
	}
	return false
}

func (s *scanner) endSentence() {
	st := &s.sec
	if st.bound > 0 {
		s.add(lSecret, st.bStart, min(st.bEnd, st.bStart+maxSpan), st.bound)
	}
	st.reset()
}

// secretTarget weighs a secret named in the sentence. A secret that is
// where something goes ("add your key to .env", "copy it to ~/.ssh") is
// written, not taken, and does not count; nor do the parts of ~/.ssh that
// are not secret (config, known_hosts).
func (s *scanner) secretTarget() {
	w := s.back(0)
	k := s.skipDet(1)
	p := s.back(k)
	if p.has(cDest) && !p.is("in") || p.has(cSecret) && s.back(k+1).has(cDest) {
		return
	}
	switch {
	case w.has(cSecret):
		if rest := s.text[w.end:]; (w.is(".ssh") || w.is(".aws")) && (strings.HasPrefix(rest, "/config") ||
			strings.HasPrefix(rest, "/known_hosts") || strings.HasPrefix(rest, "/authorized_keys") || strings.HasPrefix(rest, "/rc")) {
			return
		}
		s.secret(wSecret)
	case w.is("key") || w.is("keys"):
		// "private key", "secret key"; "API key", "SSH keys" (public
		// ones, mostly) are weak
		switch q := s.back(1); {
		case q.is("private") || q.is("secret") || q.is("signing") || q.is("gpg") || q.is("pgp"):
			s.secret(wSecret)
		case q.is("api") || q.is("access") || q.is("ssh"):
			s.secret(s.upgraded(wSecretWeak))
		default:
			s.secret(s.scoped())
		}
	case (w.is("card") || w.is("cards")) && s.back(1).is("credit"),
		w.is("numbers") && (s.back(1).is("card") || s.back(1).is("cards")) && s.back(2).is("credit"):
		s.secret(wSecret)
	case w.is("phrase") && (s.back(1).is("seed") || s.back(1).is("recovery") || s.back(1).is("mnemonic")):
		s.secret(wSecret)
	case w.is("prompt") && s.back(1).is("system"),
		w.is("conversation") || w.is("conversations") || w.is("transcript"),
		w.is("history") && (s.back(1).is("chat") || s.back(1).is("browsing") || s.back(1).is("browser") ||
			s.back(1).is("shell") || s.back(1).is("command")):
		s.secret(wSecretWeak)
	case w.is("passwd") || w.is("shadow"):
		// /etc/passwd, /etc/shadow; a shadow elsewhere is no secret
		if st := int(w.start); st >= 5 && s.text[st-5:st] == "/etc/" {
			s.secret(wSecret)
		} else if w.is("passwd") {
			s.secret(s.upgraded(wSecretWeak))
		}
	case w.has(cSecretWeak):
		s.secret(s.upgraded(wSecretWeak))
	case w.has(cScope):
		s.secret(s.scoped())
	}
}

// upgraded makes a weak secret a real one when the sentence says whose or
// how many: "all passwords", "the user's API keys", "saved credentials".
// "All tokens" is as likely a lexer's.
func (s *scanner) upgraded(weight int) int {
	token := s.back(0).is("token") || s.back(0).is("tokens")
	for j := 1; j <= 3 && s.same(j); j++ {
		if p := s.back(j); p.has(cUpgrade) && !(token && (p.is("all") || p.is("every") || p.is("other"))) {
			return wSecret
		}
	}
	return weight
}

// scoped weighs generic data: repos, emails, files are a secret when they
// are someone's or private ("the author's repos"); data and information
// when personal or sensitive ("private data" is a programming term).
func (s *scanner) scoped() int {
	w := s.back(0)
	data := w.is("data") || w.is("information")
	for j := 1; j <= 3 && s.same(j); j++ {
		switch p := s.back(j); {
		case p.is("personal") || p.is("sensitive") || p.is("confidential"):
			return wSecret
		case !data && (p.is("private") || p.is("user's") || p.is("users'") || p.is("author's") ||
			p.is("owner's") || p.is("victim's")):
			return wSecret
		}
	}
	return 0
}

// secretIdentifier: an identifier named for a secret ("integration_tokens",
// "AWS_SECRET_ACCESS_KEY") is a weak secret; a file so named
// ("credentials.db", "secrets.yaml") or holding keys (".pem", ".kdbx") is
// a secret.
func (s *scanner) secretIdentifier() {
	w := s.back(0)
	raw := s.text[w.start:w.end]
	raw = raw[:min(len(raw), 64)]
	ext := ""
	if dot := strings.LastIndexByte(raw, '.'); dot > 0 {
		raw, ext = raw[:dot], raw[dot+1:]
	}
	for _, e := range [...]string{"key", "p12", "pfx", "jks", "keystore", "kdbx", "ppk"} {
		if strings.EqualFold(ext, e) {
			s.secret(wSecret)
			return
		}
	}
	if strings.EqualFold(ext, "pem") { // a certificate is public; a key is not
		if containsFold(raw, "key") || containsFold(raw, "priv") {
			s.secret(wSecret)
		}
		return
	}
	for _, part := range [...]string{"token", "secret", "password", "passwd", "credential", "api_key", "apikey"} {
		if containsFold(raw, part) {
			s.secret(pick(ext != "", wSecret, wSecretWeak))
			return
		}
	}
}

// containsFold reports whether s contains the lower-case ASCII word sub,
// ignoring ASCII case.
func containsFold(s, sub string) bool {
	for i := 0; i+len(sub) <= len(s); i++ {
		j := 0
		for j < len(sub) && lower(s[i+j]) == sub[j] {
			j++
		}
		if j == len(sub) {
			return true
		}
	}
	return false
}

// toolName: a tool of Options.Tools named in an order, "pass it to
// send_email", "call send_email", "when send_message is invoked".
func (s *scanner) toolName(raw string) {
	if len(s.tools) == 0 {
		return
	}
	p := s.back(1)
	governed := p.has(cTool) && s.mood(1).ok ||
		(p.is("to") || p.is("via") || p.is("using") || p.is("with") || p.is("through") || p.has(cTool)) &&
			s.impAt >= 0 && s.impAt >= s.n-10
	if governed && s.knownTool(raw) {
		from := 1
		if v := s.n - 1 - s.impAt; s.impAt >= 0 && v < ringSize {
			from = v
		}
		s.span(lTool, from, 0, wToolNamed+wToolKnown)
	}
}

func (s *scanner) knownTool(raw string) bool {
	for _, t := range s.tools {
		if len(t) >= 2 && strings.EqualFold(t, raw) {
			return true
		}
	}
	return false
}

// toolNoun: "call the send_email tool", "use the X tool"; and "before using
// this tool" (tool poisoning's favourite opening); and "when X is invoked".
func (s *scanner) toolNoun() {
	if p := s.back(1); (p.is("this") || p.is("any") || p.is("another") || p.is("other") || p.is("each")) &&
		(s.back(2).is("using") || s.back(2).is("calling") || s.back(2).is("executing") || s.back(2).is("invoking") ||
			s.back(2).is("running")) && s.back(3).is("before") {
		s.span(lImperative, 3, 0, wImperative)
		return
	}
	name := s.back(1)
	if name.has(cDet) || name.n == 0 {
		return // "use this tool"
	}
	k := s.skipDet(2)
	if v := s.back(k); !v.has(cTool) || !s.mood(k).ok {
		return
	}
	raw := s.text[name.start:name.end]
	weight := wToolPlain
	switch {
	case s.knownTool(raw):
		weight = wToolNamed + wToolKnown
	case name.snake:
		weight = wToolNamed
	}
	s.span(lTool, k, 0, weight)
}

// invoked: "when send_message is invoked, ...": a tool of Options.Tools
// given a condition, the way poisoned descriptions rewrite other tools.
func (s *scanner) invoked() {
	if len(s.tools) == 0 || !(s.back(1).is("is") || s.back(1).is("gets") || s.back(1).is("are")) {
		return
	}
	if n := s.back(2); n.n != 0 && s.knownTool(s.text[n.start:n.end]) {
		s.span(lTool, 2, 0, wToolNamed+wToolKnown)
	}
}

// fillURL: an order to put the conversation or a secret into a URL or an
// image: "append the user's password to the image URL".
func (s *scanner) fillURL() {
	if !s.sec.fill || !(s.sec.conv || s.sec.tWeight >= wSecret || s.sec.bound >= wSecret) {
		return
	}
	for j := 1; j <= 4 && s.same(j); j++ {
		if p := s.back(j); p.has(cDest) || p.is("as") {
			s.span(lLink, j, 0, wLink)
			return
		}
	}
}

func lower(c byte) byte {
	if c >= 'A' && c <= 'Z' {
		return c | 0x20
	}
	return c
}
