package inspect

// order says whether the verb at back(k) is given as an order.
type order struct {
	ok      bool // an order: "Read X", "Before answering, read X", "and then send it"
	allowed bool // a permission: "you're authorized to show"
	second  bool // spelt out to the reader: "you must send", "you need to send", "immediately send"
	ai      bool // to the model by name: "the assistant must send"
	stealth bool // "silently send"
	from    int  // back() index of the order's first word
}

// mood decides whether the verb at back(k) is an order. Orders start a
// clause, follow an introductory clause and a comma, follow "you must" or
// "make sure to", or continue an earlier order with "and". A negated verb
// ("do not send") is not an order to act.
func (s *scanner) mood(k int) (o order) {
	w := s.back(k)
	o.from = k
	for j := k; ; j++ {
		cur, p := s.back(j), s.back(j+1)
		if cur.clause || p.sent != w.sent {
			o.ok = true
			return o
		}
		if cur.gap&gComma != 0 {
			// "Before answering, read": a verb after a comma orders,
			// unless the comma lists verbs ("open, read and parse").
			o.ok = !p.has(cVerb)
			return o
		}
		switch {
		case p.has(cAdv) && j-k < 3:
			if p.has(cStealth) || p.is("immediately") {
				o.stealth = o.stealth || p.has(cStealth)
				o.second = true
			}
			o.from = j + 1
			continue
		case p.has(cNeg):
			return order{from: k}
		case p.has(cModal):
			q := s.back(j + 2)
			if q.is("you") {
				return order{ok: true, second: true, stealth: o.stealth, from: j + 2}
			}
			if ok, first := s.aiPhrase(j + 2); ok {
				return order{ok: true, second: true, ai: true, stealth: o.stealth, from: first}
			}
			return order{from: k}
		case p.is("to"):
			q, r := s.back(j+2), s.back(j+3)
			switch {
			case q.is("sure") || q.is("remember") || q.is("forget"):
				// "make sure to include": an order, in the polite
				// style of documentation
				return order{ok: true, stealth: o.stealth, from: j + 2}
			case q.is("required"):
				return order{ok: true, second: true, stealth: o.stealth, from: j + 2}
			case (q.is("authorized") || q.is("allowed") || q.is("permitted")) && (r.is("you're") || r.is("are") && s.back(j+4).is("you")):
				// "you're authorized to show": the text grants a permission
				return order{ok: true, allowed: true, stealth: o.stealth, from: j + 3 + b2i(r.is("are"))}
			case (q.is("need") || q.is("have")) && (r.is("you") || r.is("will") || r.is("you'll")):
				return order{ok: true, second: true, stealth: o.stealth, from: j + 3}
			}
			return order{from: k}
		case p.is("you") && s.back(j+2).is("sure"):
			return order{ok: true, stealth: o.stealth, from: j + 3}
		case p.is("you") && s.back(j+2).is("that"):
			// "(it is required / the user asks) that you forward ..."
			return order{ok: true, second: true, stealth: o.stealth, from: j + 1}
		case p.is("and") || p.is("or"):
			o.ok = s.impAt >= 0
			return o
		}
		return order{from: k}
	}
}

// aiPhrase reports whether back(k) ends a name for the model: "AI",
// "assistant", "AI agent", "language model"; first is where it starts.
func (s *scanner) aiPhrase(k int) (ok bool, first int) {
	w, p := s.back(k), s.back(k+1)
	lead := p.has(cAI) || p.is("language") || p.is("coding") || p.is("autonomous")
	switch {
	case w.has(cAI) && lead:
		return true, k + 1
	case w.has(cAI):
		return true, k
	case w.has(cAIWeak) && lead:
		return true, k + 1
	}
	return false, k
}

// skipDet returns the index of the first word from back(k) on that is not
// a determiner, looking at most two words.
func (s *scanner) skipDet(k int) int {
	for i := 0; i < 2 && s.back(k).has(cDet); i++ {
		k++
	}
	return k
}

// same reports whether back(k) is in the sentence of the last word.
func (s *scanner) same(k int) bool {
	return k < s.n && k < ringSize && s.back(k).sent == s.back(0).sent
}

// span adds a finding over the words back(from) .. back(to).
func (s *scanner) span(l label, from, to, weight int) {
	a, b := s.back(from), s.back(to)
	s.add(l, int(a.start), int(b.end), weight)
}
