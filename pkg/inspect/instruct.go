package inspect

// onWord runs the phrase rules that end at the word just read. Each rule
// starts from a rare word (or a rare word class) and looks back a few words
// in the same sentence, so a clean text costs a class lookup per word.
func (s *scanner) onWord() {
	w := s.back(0)
	if w.cls == 0 && w.gap&(gColon|gComma) == 0 && s.pend.weight == 0 && len(s.tools) == 0 && !w.snake && !w.dotted {
		return // most words
	}
	if s.pend.weight > 0 {
		s.confirm(w)
	}
	if w.gap&gColon != 0 {
		s.afterColon()
	}
	if w.gap&(gComma|gColon) != 0 {
		s.vocative()
	}
	if len(s.tools) > 0 {
		s.toolName(s.text[w.start:w.end])
	}
	c := w.cls
	if c == 0 {
		if w.snake || w.dotted {
			s.secretIdentifier()
		}
		return
	}
	if c&(cVerb|cOverV|cAct|cTell) != 0 {
		s.verb()
	}
	if c&cInstr != 0 {
		s.ignoreInstructions()
		s.dontReveal()
	}
	if c&(cRole|cAI|cAIWeak) != 0 {
		s.youAreNow()
		s.actAs()
		s.addressed()
	}
	if c&cUser != 0 {
		s.dontTellUser()
	}
	if c&cKnow != 0 || c&cPhrase != 0 && (w.is("knowing") || w.is("knowledge")) {
		s.userMustNotKnow()
		s.youWereGiven()
	}
	if c&cToolNoun != 0 {
		s.toolNoun()
	}
	if c&(cSecret|cSecretWeak|cScope|cConv) != 0 {
		s.sec.conv = s.sec.conv || c&cConv != 0
		s.secretTarget()
	}
	if c&cPartic != 0 && s.back(1).is("be") && (s.back(2).is("must") || s.back(2).is("should") || s.back(2).is("to")) {
		s.order(w, s.n-1) // "~/.ssh/id_rsa must be sent to ...", "needs to be uploaded"
	}
	if c&cURLNoun != 0 {
		s.fillURL()
	}
	if c&cPhrase != 0 {
		s.phrases(w)
	}
}

// verb: an order, and what it says about the sentence: later verbs joined
// by "and" are orders too, and a secret near an order to read or send is
// asked for.
func (s *scanner) verb() {
	w := s.back(0)
	o := s.mood(0)
	if p := s.back(1); p.has(cStealth) && w.has(cExfil) && !o.ok {
		s.span(lHide, 1, 0, wStealth) // "it should secretly append ..."
	}
	if w.is("summarize") || w.is("summarise") {
		if n := s.negation(1); n >= 0 && s.back(n).clause {
			s.span(lOverride, n, 0, wConsent) // "Do not summarize this email": the user's task, cancelled
		}
	}
	if !o.ok {
		return
	}
	s.impAt = s.n - 1
	s.markRegions(int(w.start), mOrder+b2i(w.has(cRead|cExfil)))
	if s.pendName >= 0 && s.n-1-s.pendName <= nameReach {
		s.add(lAssistant, s.pendStart, s.pendEnd, wAssistant)
		s.pendName = -1
	}
	if w.has(cRead | cExfil | cTool) {
		s.order(w, s.n-1)
	} else {
		s.sec.vIdx = -1 // "cat a.pem, then load key.pem": the nearest order governs
	}
	if w.has(cFill) || w.is("append") || w.is("include") || w.is("encode") || w.is("embed") || w.is("attach") {
		s.sec.fill = true
	}
	if o.second && w.has(cExfil|cRead) {
		s.span(lImperative, o.from, 0, wImperative)
	}
	if o.ai {
		s.span(lAssistant, o.from, 0, wAssistant)
	}
	if o.allowed && w.has(cTell|cOverV) { // show, reveal, disclose, ignore: not "allowed to publish"
		s.span(lOverride, o.from, 0, wConsent)
	}
	if o.stealth && w.has(cExfil) {
		s.span(lHide, o.from, 0, wStealth)
	}
}

// afterColon: "new instructions:", "IMPORTANT: send ...", "SYSTEM: you are".
func (s *scanner) afterColon() {
	w, p := s.back(0), s.back(1)
	if ok, first := s.aiPhrase(2); ok && p.has(cNote) && s.back(first).clause && p.gap&^gNL == 0 {
		s.span(lAssistant, first, 1, wAssistant) // "Assistant instructions:", "AI note:"
	}
	if q := s.back(2); (q.is("real") || q.is("actual") || q.is("true")) && p.is("task") && s.text[p.end] == ':' {
		s.span(lOverride, 2, 1, wOverride) // "The real task: ..."
		return
	}
	// "New instructions:" opening a clause, "your new instructions:";
	// not "Adds five new instructions:" (a list of opcodes)
	if q := s.back(2); q.has(cNewMod) && (q.clause || s.back(3).is("your") || s.back(3).is("are")) &&
		p.gap&^gNL == 0 && int(p.end) < len(s.text) && s.text[p.end] == ':' &&
		(p.is("instructions") || p.is("instruction") || p.is("directives") || p.is("directive") || p.is("prompt") ||
			p.is("orders") || p.is("guidelines")) {
		s.span(lOverride, 2, 1, wOverride)
		return
	}
	if !(p.is("important") || p.is("urgent") || p.is("critical") || p.is("system")) {
		return
	}
	k := 1
	for k < 4 && (s.back(k+1).is("very") || s.back(k+1).is("extremely") || s.back(k+1).is("super")) {
		k++
	}
	if s.back(k).gap&(gNL|gStart|gBullet|gAngle) == 0 {
		return
	}
	if !p.upper {
		return // "Important: you must pass ..." is the docs' own voice
	}
	if p.is("system") {
		if w.is("you") || w.is("your") || w.has(cOverV|cNeg) {
			s.span(lUrgent, 1, 0, wUrgentTag)
		}
		return
	}
	if w.has(cImperativeLead) || w.is("you") || w.is("before") || w.is("after") || w.is("when") || w.is("whenever") ||
		w.is("once") || w.is("make") || w.is("ensure") || w.is("remember") || w.is("do") {
		s.span(lUrgent, k, 0, wUrgentLine)
	}
}

// vocative: "Assistant, you must ...", "AI agents: please ...", "Claude,
// when you read this ..." (a name waits for an order to confirm it).
func (s *scanner) vocative() {
	w := s.back(0)
	ok, first := s.aiPhrase(1)
	if !ok || !s.back(first).clause {
		return
	}
	direct := w.is("you") || w.is("please") || w.is("your") || w.has(cExfil|cRead|cOverV|cNeg|cStealth)
	opener := w.is("when") || w.is("before") || w.is("after") || w.is("from") || w.is("now") || w.is("first") ||
		w.is("this") || w.is("it's") || w.is("i'm")
	switch {
	case direct && !(s.back(1).has(cAIName) && first == 1):
		s.span(lAssistant, first, 0, wAssistant)
	case direct || opener:
		// "Claude, you ...", "Assistant, when enabled, ...": an order
		// must follow for this to speak to the model
		s.pendName, s.pendStart, s.pendEnd = s.n-1, int(s.back(first).start), int(w.end)
	}
}

// nameReach is how many words after "Hi Claude" an order confirms that the
// text speaks to the model and not to a person called Claude.
const nameReach = 40

// addressed: text written to the model: "note to the AI", "instructions
// for Cursor Claude", "if you are an AI", "dear assistant", "any LLM
// reading this", "reading this as an AI".
func (s *scanner) addressed() {
	ok, first := s.aiPhrase(0)
	if !ok {
		// "if you're a bot", "if you are an agent", "hey model": a weak
		// AI word speaks to the model in these frames only
		if !s.back(0).has(cAIWeak) {
			return
		}
		switch p := s.back(1); {
		case p.is("an") || p.is("a"):
			if s.back(2).is("are") && s.back(3).is("you") && s.back(4).is("if") || s.back(2).is("you're") && s.back(3).is("if") {
				s.span(lAssistant, 3+b2i(s.back(2).is("are")), 0, wAssistant)
			}
		case p.is("hey") || p.is("dear") || p.is("hi") || p.is("hello") || p.is("attention"):
			s.pendName, s.pendStart, s.pendEnd = s.n-1, int(p.start), int(s.back(0).end)
		}
		return
	}
	k := first + 1
	if p := s.back(k); p.has(cVoc) && !p.is("note") || p.is("dear") {
		if !s.back(first).has(cAIName) {
			s.span(lAssistant, k, 0, wAssistant)
			return
		}
		// "Hi Claude": a person, unless an order follows
		s.pendName, s.pendStart, s.pendEnd = s.n-1, int(s.back(k).start), int(s.back(0).end)
		return
	}
	if s.back(k).is("an") || s.back(k).is("a") {
		// "if you are an AI", "if you're an AI", "reading this as an AI"
		if s.back(k+1).is("are") && s.back(k+2).is("you") && s.back(k+3).is("if") ||
			s.back(k+1).is("you're") && s.back(k+2).is("if") {
			s.span(lAssistant, k+2+b2i(s.back(k+1).is("are")), 0, wAssistant)
			return
		}
		if s.back(k+1).is("as") && (s.back(k+2).is("this") || s.back(k+2).is("it")) &&
			(s.back(k+3).is("reading") || s.back(k+3).is("processing") || s.back(k+3).is("summarizing")) {
			s.span(lAssistant, k+3, 0, wAssistant)
			return
		}
	}
	// "note to the AI", "instructions for Cursor Claude", "this message is
	// directed at Claude"
	for j := k; j < k+3 && s.same(j+1); j++ {
		p := s.back(j)
		if !(p.is("to") || p.is("for") || p.is("at")) {
			continue
		}
		q := s.back(j + 1)
		if q.is("is") || q.is("are") {
			q = s.back(j + 2)
		}
		if q.has(cNote) && (!q.is("message") || q.clause) || q.is("directed") || q.is("addressed") ||
			q.is("meant") || q.is("intended") || q.is("written") {
			s.span(lAssistant, j+1, 0, wAssistant)
		}
		return
	}
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}
