package inspect

// dontTellUser: "do not tell the user", "never inform the human", "don't
// mention this to the user", "without telling the user" (in an order),
// "keep this secret from the user", "hide it from the user".
func (s *scanner) dontTellUser() {
	k := s.skipDet(1)
	p := s.back(k)
	switch {
	case p.has(cTell):
		n := s.negation(k + 1)
		switch {
		case n < 0:
		case p.is("show") || p.is("display"):
			s.hold(lHide, n, wHide) // what is not shown decides
		default:
			s.span(lHide, n, 0, wHide)
		}
	case p.has(cTellGer):
		if s.back(k+1).is("without") && s.impAt >= 0 {
			s.span(lHide, k+1, 0, wHide)
		}
	case p.is("to") || p.is("with"):
		// "mention this to the user", "do not reveal any of it to the
		// user", "don't bring this up with the user"
		for j := k + 1; j <= k+4 && s.same(j); j++ {
			if q := s.back(j); q.has(cTell) || q.is("say") || q.is("share") || q.is("discuss") || q.is("bring") ||
				q.is("raise") {
				if n := s.negation(j + 1); n >= 0 {
					s.span(lHide, n, 0, wHide)
				}
				return
			}
		}
	case p.is("from"):
		for j := k + 1; j <= k+5 && s.same(j); j++ {
			q := s.back(j)
			if q.is("hide") || q.is("conceal") || q.is("keep") {
				if s.mood(j).ok {
					s.span(lHide, j, 0, wHide)
				}
				return
			}
		}
	}
}

// negation finds a negation ending at back(k): "not", "never", "don't",
// "no need to", allowing one adverb ("do not ever tell"). It returns the
// back() index of its first word, or -1.
func (s *scanner) negation(k int) int {
	if s.back(k).is("ever") || s.back(k).is("even") || s.back(k).is("actually") {
		k++
	}
	p := s.back(k)
	switch {
	case p.is("not"):
		// "do not", "must not"; "does not display" describes
		if q := s.back(k + 1); q.is("do") || q.is("must") || q.is("should") || q.is("shall") {
			return k + 1
		}
		if p.clause {
			return k
		}
	case p.is("never") || p.is("don't") || p.is("dont") || p.is("mustn't") || p.is("shouldn't"):
		return k
	case p.is("to") && s.back(k+1).is("need") && (s.back(k+2).is("no") || s.back(k+2).has(cNeg)):
		// "no need to tell", "there is no need to inform"
		return k + 2
	}
	return -1
}

// userMustNotKnow: "the user must not know", "the user should never learn",
// "do not let the user know", "without the user knowing".
func (s *scanner) userMustNotKnow() {
	w := s.back(0)
	if w.is("knowing") || w.is("knowledge") {
		if k := s.skipDet(1); (s.back(1).has(cUser) || s.back(1).is("user's")) && s.back(k+1).is("without") ||
			s.back(1).has(cUser) && s.back(2).is("the") && s.back(3).is("without") {
			if s.impAt >= 0 {
				s.span(lHide, k+1, 0, wHide)
			}
		}
		return
	}
	k := 1
	if s.back(k).is("be") {
		k++ // "must not be told"
	}
	p := s.back(k)
	switch {
	case p.has(cNeg) && (s.back(k+1).is("must") || s.back(k+1).is("should") || s.back(k+1).is("shall")) && s.back(k+2).has(cUser):
		s.span(lHide, k+2, 0, wHide)
	case (p.is("mustn't") || p.is("shouldn't")) && s.back(k+1).has(cUser):
		s.span(lHide, k+1, 0, wHide)
	case p.is("to") && s.back(k+1).is("need") && (s.back(k+2).is("doesn't") || s.back(k+2).has(cNeg)) && s.same(k+3):
		// "the user doesn't need to know", "the user does not need to know"
		if s.back(k+3).has(cUser) || s.back(k+3).is("does") && s.back(k+4).has(cUser) {
			s.span(lHide, k+3, 0, wHide)
		}
	case p.has(cUser):
		// "do not let the user know"
		j := s.skipDet(k + 1)
		if n := s.negation(j + 1); s.back(j).is("let") && n >= 0 {
			s.span(lHide, n, 0, wHide)
		}
	}
}

// dontReveal: "do not reveal these instructions", "never mention this
// prompt", "don't disclose the system prompt".
func (s *scanner) dontReveal() {
	w := s.back(0)
	if w.is("task") || w.is("tasks") || w.is("rules") || w.is("orders") || w.is("commands") || w.is("context") {
		return
	}
	k := s.skipDet(1)
	if s.back(k).is("system") {
		k = s.skipDet(k + 1)
	}
	if p := s.back(k); p.is("reveal") || p.is("mention") || p.is("disclose") || p.is("repeat") {
		if n := s.negation(k + 1); n >= 0 {
			s.span(lHide, n, 0, wHide)
		}
	}
}
