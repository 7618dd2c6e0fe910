// Package inspect looks for content aimed at the model in the text an MCP
// server sends back to it: tool results, resources/read contents, prompts,
// sampling and elicitation text. It is fast enough for every message: one
// pass over the bytes, phrase rules that look back over the last few words
// (no regular expressions), and no allocation for a clean text.
//
// Words are classed (ignore, previous, instructions, user, send, id_rsa,
// ...) and each rule starts at a rare class and checks the few words before
// it in the same sentence, so "please disregard your prior guidelines"
// matches where "ignore previous versions" does not. An order is a verb that
// starts a clause, follows "you must", or continues an order with "and";
// "does not display" and "to list the secrets, run" are not orders.
//
// Findings have a kind ("instruction", "hidden", "exfil"), a label and a
// weight:
//
//	override             6  ignore/disregard/forget previous instructions, new instructions:, you are now DAN,
//	                        your new task is to ..., forget everything above
//	                     3  consent claims: "does not care about privacy", "no need to ask for permission"
//	                     2  an override quoted or used as a name ("'ignore previous instructions' attacks")
//	hide_from_user       5  do not tell the user, without telling the user (in an order), the user must not
//	                        know, keep this hidden from the user, do not reveal these instructions
//	                     3  silently/secretly/quietly send, forward, upload
//	urgent_tag           4  <IMPORTANT> (in capitals, with a sentence inside); <important>, <system>,
//	                        <instructions> with an order inside (AWS and DocBook use <important> too);
//	                        [SYSTEM]/[INST] opening an order; ### SYSTEM; SYSTEM: you...; <|im_start|>
//	                     2  IMPORTANT: (in capitals) at the start of a line, followed by an order
//	assistant_address    3  note to the AI, instructions for Claude, if you are an AI, Assistant, you must...,
//	                        dear LLM, as an AI you...; a name (Claude, Gemini) only if an order follows
//	tool_directive       1  use/call/invoke/run the X tool; 3 when X is an identifier (the send_email tool);
//	                     5  a tool of Options.Tools named by an order ("pass it to send_email")
//	imperative           1  you must send..., immediately forward..., before answering...: only with others
//	secret_request       3  an order to read or send ~/.ssh, id_rsa, .env, mcp.json, a private key, someone's
//	                        private repos or personal data, within a few words of it; not where a secret
//	                        goes ("add your key to .env")
//	                     1  the same for a weak secret (password, token, API key, the conversation)
//	unicode_tags         6  U+E0000-E007F runs, the span being the ASCII they spell; not emoji flags
//	zero_width           2  runs of 3 or more U+200B-200D, U+2060-2064, U+FEFF (a ZWJ between emoji is
//	                        not a run); 4 from 16 on
//	bidi                 3  U+202A-202E, U+2066-2069; embeddings and isolates within RTL text are not counted
//	html_comment         1  <!-- --> with 40 or more letters (READMEs and pages are full of them)
//	                     5  an instruction finding inside
//	invisible_style      1  display:none, visibility:hidden, font-size:0, opacity:0, white on white around text
//	                     3  an order or instruction finding inside
//	markdown_image_exfil 5  ![](https://foreign/...) carrying data: a data-named placeholder ({secret},
//	                        <DATA>, $SECRET), a secret-shaped value, a data parameter with a long value;
//	                        6 when its sentence orders it rendered; 3 for weaker evidence (long base64)
//	link_exfil           3  the same for links, reference definitions and bare URLs, and an order to put a
//	                        secret or the conversation into a URL; 2 for weaker evidence (a long token=)
//
// The Score sums, per label, the heaviest finding of that label, capped at
// 20: saying one odd thing many times weighs what saying it once does, and
// only different kinds of evidence add up. Rules read 6 or more as high and
// 3 to 5 as medium. Weak signals (an imperative, a plain tool name, a long
// comment, a weak secret) stay below 3 on their own; ordinary prose, man
// pages, READMEs, code and web pages almost never reach 3 (see
// TestCorpusFalsePositives), while injections combine several signals.
// Where these weights differ from the first plan (html_comment 2,
// invisible_style 3, secret_request 3 for any secret), the corpus showed
// why: long comments, hidden menus and "read the password from FILE" are
// everywhere.
package inspect

import (
	"sort"
	"strconv"
	"strings"
)

// Finding is one piece of evidence.
type Finding struct {
	Kind   string // "instruction", "hidden" or "exfil"
	Label  string // what was seen: override, hide_from_user, unicode_tags, ...
	Span   string // the matched text, at most ~160 bytes, invisible and control characters escaped as \u{XXXX}
	Offset int    // byte offset in the text
	Weight int
}

// Report is what Inspect found.
type Report struct {
	Score    int       // sum over labels of the heaviest finding, capped at MaxScore
	Findings []Finding // at most MaxFindings, heaviest first, one per label and offset
}

// Options tell Inspect about the context of the text.
type Options struct {
	Tools    []string // names of the other tools the same client can call: a directive naming one weighs more
	OwnHosts []string // hosts that are not foreign (the server's own): links to them carry nothing away
}

// Limits of a Report.
const (
	MaxScore    = 20
	MaxFindings = 8
	maxSpan     = 160
	maxKept     = 64 // findings kept while scanning; the score counts them all
)

// Weights; the package comment explains them.
const (
	wOverride      = 6
	wConsent       = 3
	wMention       = 2 // an override quoted or named ("'ignore previous instructions' attacks")
	wHide          = 5
	wStealth       = 3
	wUrgentTag     = 4
	wUrgentLine    = 2
	wAssistant     = 3
	wToolPlain     = 1
	wToolNamed     = 2
	wToolKnown     = 3
	wImperative    = 1
	wSecret        = 3
	wSecretWeak    = 1
	wTags          = 6
	wZeroWidth     = 2
	wZeroWidthLong = 4
	wBidi          = 3
	wComment       = 1
	wCommentMarker = 4
	wStyleText     = 1
	wStyle         = 3
	wImage         = 5
	wImageWeak     = 3
	wLink          = 3
	wLinkWeak      = 2
)

type label uint8

const (
	lOverride label = iota
	lAssistant
	lUrgent
	lHide
	lTool
	lImperative
	lSecret
	lTags
	lZeroWidth
	lBidi
	lComment
	lStyle
	lImage
	lLink
	nLabels
)

var labelNames = [nLabels]string{
	"override", "assistant_address", "urgent_tag", "hide_from_user", "tool_directive", "imperative",
	"secret_request", "unicode_tags", "zero_width", "bidi", "html_comment", "invisible_style",
	"markdown_image_exfil", "link_exfil",
}

func (l label) kind() string {
	switch {
	case l <= lSecret:
		return "instruction"
	case l <= lStyle:
		return "hidden"
	}
	return "exfil"
}

// Inspect looks for content aimed at the model in text. o may be nil. It
// keeps no state between calls and is safe for concurrent use; invalid
// UTF-8 is read byte by byte and never panics.
func Inspect(text string, o *Options) Report {
	var s scanner
	s.text = text
	if o != nil {
		s.tools, s.own = o.Tools, o.OwnHosts
	}
	s.run()
	return s.report()
}

// add records a finding over text[start:end].
func (s *scanner) add(l label, start, end, weight int) {
	if s.seen(l, start, weight) {
		return
	}
	s.keep(l, start, weight, makeSpan(s.text[start:min(end, len(s.text))]))
}

// seen notes the weight for the score and reports whether the finding is
// already kept (or no more are).
func (s *scanner) seen(l label, off, weight int) bool {
	if weight <= 0 {
		return true
	}
	s.best[l] = max(s.best[l], int8(weight))
	if l <= lSecret && s.nregions > 0 {
		s.markRegions(off, mFinding)
	}
	for i := range s.fs {
		if f := &s.fs[i]; f.Offset == off && f.Label == labelNames[l] {
			f.Weight = max(f.Weight, weight)
			return true
		}
	}
	return len(s.fs) >= maxKept
}

// keep appends a finding that seen has not.
func (s *scanner) keep(l label, off, weight int, span string) {
	s.fs = append(s.fs, Finding{Kind: l.kind(), Label: labelNames[l], Span: span, Offset: off, Weight: weight})
}

func (s *scanner) report() Report {
	var r Report
	for _, w := range s.best {
		r.Score += int(w)
	}
	r.Score = min(r.Score, MaxScore)
	if len(s.fs) == 0 {
		return r
	}
	fs := s.fs
	sort.SliceStable(fs, func(i, j int) bool {
		if fs[i].Weight != fs[j].Weight {
			return fs[i].Weight > fs[j].Weight
		}
		return fs[i].Offset < fs[j].Offset
	})
	// The heaviest finding of each label first, so that eight findings of
	// one label do not hide the others; then the rest by weight.
	var picked [maxKept]bool
	out := make([]Finding, 0, min(len(fs), MaxFindings))
	for i := range fs {
		if len(out) < MaxFindings && !hasLabel(out, fs[i].Label) {
			out, picked[i] = append(out, fs[i]), true
		}
	}
	for i := range fs {
		if len(out) < MaxFindings && !picked[i] {
			out = append(out, fs[i])
		}
	}
	sort.SliceStable(out, func(i, j int) bool {
		if out[i].Weight != out[j].Weight {
			return out[i].Weight > out[j].Weight
		}
		return out[i].Offset < out[j].Offset
	})
	r.Findings = out
	return r
}

func hasLabel(fs []Finding, l string) bool {
	for _, f := range fs {
		if f.Label == l {
			return true
		}
	}
	return false
}

// Labels returns the distinct labels of the findings, heaviest first.
func (r Report) Labels() []string {
	var ls []string
	for _, f := range r.Findings {
		if !contains(ls, f.Label) {
			ls = append(ls, f.Label)
		}
	}
	return ls
}

func contains(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}

// Evidence returns one line per finding: `label: "span" (untrusted, offset N)`.
// The span is text the server wrote: whoever reads the line, person or
// model, should take it as a quotation and nothing more.
func (r Report) Evidence() []string {
	ev := make([]string, 0, len(r.Findings))
	for _, f := range r.Findings {
		ev = append(ev, f.Label+`: "`+strings.ReplaceAll(f.Span, `"`, `\"`)+`" (untrusted, offset `+strconv.Itoa(f.Offset)+")")
	}
	return ev
}
