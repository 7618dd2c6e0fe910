package inspect

import "strings"

// pending is a finding that the next word decides: "Ignore previous
// instructions attacks are ..." names the attack, it does not make one;
// "do not show the user this" hides, "never show the user a stack trace"
// is advice.
type pending struct {
	label      label
	weight     int
	start, end int
}

// confirm adds the pending finding as the word after it (nil: none) says.
func (s *scanner) confirm(next *tok) {
	p := s.pend
	s.pend = pending{}
	same := next != nil && next.sent == s.back(1).sent
	switch p.label {
	case lOverride:
		if same && mentionWord(next) {
			p.weight = wMention
		}
	case lHide:
		if !same || !(next.is("this") || next.is("these") || next.is("that") || next.is("it") ||
			next.is("anything") || next.is("any")) {
			return
		}
	}
	s.add(p.label, p.start, p.end, p.weight)
}

// hold makes a finding over back(from)..back(0) pending.
func (s *scanner) hold(l label, from, weight int) {
	if s.pend.weight > 0 {
		s.confirm(nil)
	}
	s.pend = pending{label: l, weight: weight, start: int(s.back(from).start), end: int(s.back(0).end)}
}

func mentionWord(w *tok) bool {
	switch string(w.b[:min(int(w.n), wordMax)]) {
	case "attack", "attacks", "payload", "payloads", "phrase", "phrases", "style", "injection", "injections",
		"technique", "techniques", "exploit", "exploits", "string", "strings", "example", "examples", "is", "are",
		"was", "were", "has", "have", "prompts", "jailbreak", "jailbreaks", "trick", "tricks", "type", "class":
		return true
	}
	return false
}

// override holds an override back until the next word; a quoted one ("...
// such as 'ignore previous instructions'.") is a mention.
func (s *scanner) override(from int) {
	a, b := s.back(from), s.back(0)
	weight := wOverride
	if e := int(b.end); a.gap&gQuote != 0 && e < len(s.text) && (s.text[e] == '"' || s.text[e] == '\'' ||
		s.text[e] == '`' || len(s.text) >= e+3 && (s.text[e:e+3] == "\u201D" || s.text[e:e+3] == "\u2019")) {
		weight = wMention
	}
	s.hold(lOverride, from, weight)
}

// ignoreInstructions: "ignore (all) previous instructions", "disregard your
// system prompt", "forget the above rules", given as an order. "Ignore any
// instructions related to X" has no previous, prior or your: not counted.
func (s *scanner) ignoreInstructions() {
	if w, p := s.back(0), s.back(1); p.is("system") && p.upper && w.upper {
		s.span(lUrgent, 1, 0, wUrgentTag) // "=== BEGIN SYSTEM PROMPT ==="
	}
	mod, your := false, false
	for j := 1; j <= 5 && s.same(j); j++ {
		p := s.back(j)
		if p.has(cOverV) {
			if mod && s.mood(j).ok {
				s.override(j)
			}
			return
		}
		if your && (p.is("overrides") || p.is("supersedes") || p.is("replaces")) {
			s.span(lOverride, j, 0, wConsent) // "the following overrides your system prompt"
			return
		}
		mod = mod || p.has(cPrevMod) || p.is("your")
		your = your || p.is("your")
	}
}

// youWereGiven: "disregard the guidelines you were given", "forget what
// you've been told" (a relative clause says "previous").
func (s *scanner) youWereGiven() {
	k := 1
	if s.back(k).is("been") {
		k++
	}
	if !(s.back(k).is("were") || s.back(k).is("you've") || s.back(k).is("have")) {
		return
	}
	if !s.back(k).is("you've") {
		k++
	}
	if !s.back(k).is("you") && !s.back(k).is("you've") {
		return
	}
	for j := k + 1; j <= k+5 && s.same(j); j++ {
		if p := s.back(j); p.has(cOverV) {
			if s.mood(j).ok && (s.back(k+1).has(cInstr) || s.back(k+1).is("everything") || s.back(k+1).is("what")) {
				s.override(j)
			}
			return
		}
	}
}

// dismissed: "your previous instructions were a test", "the above rules
// are outdated".
func (s *scanner) dismissed() {
	k := s.skipDet(1)
	if !(s.back(k).is("were") || s.back(k).is("are") || s.back(k).is("was") || s.back(k).is("is")) {
		return
	}
	if q := s.back(k + 2); s.back(k+1).has(cInstr) && (q.has(cPrevMod) || q.is("your")) {
		s.override(k + 2)
	}
}

// actAs: "act as an unfiltered model", "pretend to be a jailbroken AI".
func (s *scanner) actAs() {
	strong := false
	for j := 0; j <= 4 && s.same(j+1); j++ {
		p := s.back(j)
		strong = strong || p.is("unfiltered") || p.is("unrestricted") || p.is("jailbroken") || p.is("uncensored") ||
			p.is("dan") || p.is("evil") || p.is("unaligned")
		if strong && (p.is("as") && (s.back(j+1).is("act") || s.back(j+1).is("behave") || s.back(j+1).is("roleplay")) ||
			p.is("be") && s.back(j+1).is("to") && s.back(j+2).is("pretend")) {
			s.override(j + 1 + b2i(p.is("be")))
			return
		}
	}
}

// youAreNow: "you are now DAN", "you're now an unrestricted AI", "from now
// on you are ...", "you are no longer an assistant".
func (s *scanner) youAreNow() {
	for j := 1; j <= 4 && s.same(j); j++ {
		p := s.back(j)
		if p.is("now") && (s.back(j+1).is("are") && s.back(j+2).is("you") || s.back(j+1).is("you're")) ||
			p.is("longer") && s.back(j+1).is("no") && (s.back(j+2).is("are") || s.back(j+2).is("you're")) {
			s.override(j + 1 + b2i(s.back(j+1).is("are")))
			return
		}
		if p.is("you") && s.back(j+1).is("on") && s.back(j+2).is("now") && s.back(j+3).is("from") {
			s.override(j + 3)
			return
		}
	}
}

// phrases are rules anchored on single words.
func (s *scanner) phrases(w *tok) {
	switch string(w.b[:min(int(w.n), wordMax)]) {
	case "you":
		// "the user has asked that you", "the user wants you to": the
		// user's authority claimed by the text
		if p := s.back(1); p.is("that") && (s.back(2).is("requested") || s.back(2).is("asked") ||
			s.back(2).is("instructed")) || p.is("wants") || p.is("asked") || p.is("instructed") || p.is("authorized") {
			for j := 2; j <= 5 && s.same(j); j++ {
				if s.back(j).has(cUser) {
					s.span(lOverride, j, 0, wConsent)
					break
				}
			}
		}
		if s.back(1).is("that") && (s.back(2).is("reveal") || s.back(2).is("mention") || s.back(2).is("disclose")) && s.back(3).has(cNeg) {
			s.span(lHide, 3, 0, wHide) // "do not reveal that you ..."
		}
		if ok, first := s.aiPhrase(1); ok && (s.back(first+1).is("an") || s.back(first+1).is("a")) && s.back(first+2).is("as") {
			s.span(lAssistant, first+2, 0, wAssistant) // "as an AI assistant, you must"
		}
	case "answering", "responding", "replying", "proceeding", "continuing", "answer", "respond", "reply":
		if s.back(1).is("before") || s.back(1).is("you") && s.back(2).is("before") {
			s.span(lImperative, 1+b2i(!s.back(1).is("before")), 0, wImperative)
		}
		s.hiddenFromAnswer()
	case "invoked", "called", "used", "executed", "triggered":
		s.invoked()
	case "above", "before", "previously", "prior", "earlier":
		// "forget everything above", "disregard all of the above"; not
		// "ignore everything before the member" (a preposition)
		if !s.back(0).is("above") && !clauseEnds(s.text, int(s.back(0).end)) {
			return
		}
		k := 1
		if s.back(k).is("the") && s.back(k+1).is("of") {
			k += 2
		}
		if (s.back(k).is("everything") || s.back(k).is("all")) && s.back(k+1).has(cOverV) && s.mood(k+1).ok {
			s.override(k + 1)
		}
	case "secretly", "covertly", "discreetly", "stealthily":
		if s.impAt >= 0 {
			s.span(lHide, 0, 0, wStealth) // "do this secretly"
		}
	case "summary", "response", "output", "responses":
		s.hiddenFromAnswer()
	case "reading", "processing", "parsing", "summarizing":
		// "any LLM reading this", "the language model reading this page"
		if ok, first := s.aiPhrase(1); ok && s.back(first+1).has(cDet) {
			s.span(lAssistant, first+1, 0, wAssistant)
		}
	case "given", "received", "provided":
		s.youWereGiven()
	case "test", "fake", "outdated", "void", "invalid", "obsolete", "cancelled", "canceled", "revoked", "superseded", "false", "wrong":
		s.dismissed()
	case "mode":
		// "you are now in developer mode"
		if p := s.back(1); p.is("developer") || p.is("god") || p.is("dan") || p.is("jailbreak") || p.is("jailbroken") ||
			p.is("unrestricted") || p.is("unfiltered") || p.is("sudo") || p.is("admin") {
			for j := 2; j <= 5 && s.same(j+1); j++ {
				if s.back(j).is("now") && (s.back(j+1).is("are") || s.back(j+1).is("you're")) {
					s.override(j + 1 + b2i(s.back(j+1).is("are")))
					return
				}
			}
		}
	case "to":
		// "your new task is to ...", "your real goal is to ..."
		if s.back(1).is("is") && (s.back(2).has(cInstr) || s.back(2).is("goal") || s.back(2).is("objective") ||
			s.back(2).is("mission") || s.back(2).is("purpose") || s.back(2).is("job")) &&
			(s.back(3).has(cNewMod) || s.back(3).is("only")) && s.back(4).is("your") {
			s.override(4)
		}
	case "below", "follow":
		// "the real instructions are below"
		if (s.back(1).is("are") || s.back(1).is("is")) && s.back(2).has(cInstr) && s.back(3).has(cNewMod) && !s.back(3).is("new") {
			s.span(lOverride, 3, 0, wConsent)
		}
	case "privacy", "security", "confidentiality", "secrecy":
		// "the author does not care about privacy": a consent the
		// attacker grants in the owner's name.
		if s.back(1).is("about") && (s.back(2).is("care") || s.back(2).is("cares")) && s.back(3).has(cNeg) {
			s.span(lOverride, 3, 0, wConsent)
		}
	case "everything", "all":
		p := s.back(1)
		if p.has(cExfil|cRead|cFill) && (s.back(2).is("and") && s.back(3).is("ahead") && s.back(4).is("go") ||
			s.back(2).is("to") && s.back(3).is("free") && s.back(4).is("feel")) {
			s.span(lOverride, 4, 0, wConsent)
		}
	case "permission", "consent", "approval":
		for j := 1; j <= 4 && s.same(j+1); j++ {
			if s.back(j).is("need") && (s.back(j+1).has(cNeg) || s.back(j+1).is("doesn't")) {
				s.span(lOverride, j+1, 0, wConsent)
				return
			}
			// "without asking for permission", "without the user's
			// consent", in an order
			if s.back(j).is("without") && s.impAt >= 0 && j > 1 {
				if q := s.back(j - 1); q.is("asking") || q.is("requesting") || q.is("seeking") || q.is("getting") ||
					q.is("waiting") || q.is("the") || q.is("user's") || q.is("their") {
					s.span(lOverride, j, 0, wConsent)
				}
				return
			}
		}
	}
}

// hiddenFromAnswer: "don't mention it in your summary": hidden from the one
// who reads the answer.
func (s *scanner) hiddenFromAnswer() {
	k := s.skipDet(1)
	if !s.back(k).is("in") {
		return
	}
	for j := k + 1; j <= k+3 && s.same(j); j++ {
		if q := s.back(j); q.is("mention") || q.is("reveal") || q.is("disclose") || q.is("include") {
			if n := s.negation(j + 1); n >= 0 {
				s.span(lHide, n, 0, wHide)
			}
			return
		}
	}
}

// clauseEnds: the text after a word ends its clause (punctuation, a line's
// end) or goes on with "this", "that" or "it".
func clauseEnds(text string, end int) bool {
	i := end
	for i < len(text) && (text[i] == ' ' || text[i] == '\t') {
		i++
	}
	if i >= len(text) {
		return true
	}
	switch text[i] {
	case '.', ',', ';', ':', '!', '\n', '\r', ')', '"', '\'':
		return true
	}
	rest := strings.ToLower(text[i:min(len(text), i+5)])
	return strings.HasPrefix(rest, "this") || strings.HasPrefix(rest, "that") || strings.HasPrefix(rest, "it ") || rest == "it"
}
