package correlate

import (
	"regexp"
	"strings"
)

// Injection into the languages tools speak: fragments of an argument that
// only mean something once a server pastes the argument into a statement
// of its own. Each detector wants structure, not a character: an
// apostrophe in "Bob's notes" or a dash in "it's fine -- really" is text.

var (
	// a quote that closes a literal, then SQL: a tautology, a UNION, a
	// stacked statement or a comment that cuts the rest of the query
	sqlQuoteRE = regexp.MustCompile(`(?i)['"]\s*\)*\s*(?:` +
		`(?:or|and)\s+(?:['"]?\w*['"]?\s*(?:=|<>|!=|like)\s*['"]?\w*|not\s|true|false|\d+\s*(?:=|<|>))` +
		`|union\s+(?:all\s+)?select\b` +
		`|;\s*(?:drop|delete|insert|update|attach|detach|create|alter|pragma|select|replace|exec|truncate)\b` +
		`|(?:--|#|/\*)` +
		`)`)
	// no quote needed where the value is pasted as a number or a name
	sqlBareRE = regexp.MustCompile(`(?i)(?:\bunion\s+(?:all\s+)?select\s.+\bfrom\b` +
		`|;\s*(?:drop\s+table|delete\s+from|insert\s+into|update\s+\w+\s+set|attach\s+database|pragma\s+\w+)\b` +
		`|\bor\s+1\s*=\s*1\b` +
		`|\b(?:sleep|pg_sleep|benchmark|load_extension|randomblob)\s*\()`)
	// template engines: Jinja/Twig/Handlebars, ERB/EJS, JSP/EL, FreeMarker,
	// Velocity, with something to evaluate inside
	templateRE = regexp.MustCompile(`\{\{\s*[^}\s][^}]*\}\}|\{%\s*\w+[^%]*%\}|<%=?[^%]+%>|\$\{[^}]*[.(][^}]*\}|#\{[^}]+\}|#set\s*\(\$|<#(?:assign|include)\b|\*\{[^}]+\}`)
	// a path that climbs out of where it is joined: ../ runs, encoded
	// forms, and the absolute system files traversal tests reach for
	traversalRE = regexp.MustCompile(`(?i)(?:^|[/\\=])\.\.(?:[/\\]|$)|%2e%2e(?:%2f|%5c|/)|\.\.%2f|%252e%252e|\.\.;/|^/(?:etc/(?:passwd|shadow|hosts)|proc/self/)`)
)

// sqlInjection: s carries SQL meant to change the statement it is pasted
// into.
func sqlInjection(s string) bool {
	if len(s) < 4 || len(s) > 64<<10 {
		return false
	}
	if strings.ContainsAny(s, `'"`) {
		for _, loc := range sqlQuoteRE.FindAllStringIndex(s, 4) {
			m := strings.TrimRight(s[loc[0]:loc[1]], " ")
			if (strings.HasSuffix(m, "--") || strings.HasSuffix(m, "#") || strings.HasSuffix(m, "/*")) &&
				len(strings.Fields(s[loc[1]:])) > 1 {
				continue // a quote, a dash and more words: prose
			}
			return true
		}
	}
	if !strings.ContainsAny(s, ";(=") && !hasFold(s, "union") {
		return false // what sqlBareRE needs
	}
	return sqlBareRE.MatchString(s)
}

// templateInjection: s carries an expression a template engine would
// evaluate.
func templateInjection(s string) bool {
	if len(s) < 4 || len(s) > 64<<10 || !strings.ContainsAny(s, "{%$#*<") {
		return false
	}
	return templateRE.MatchString(s)
}

// pathTraversal: s climbs out of the directory it is joined to.
func pathTraversal(s string) bool {
	if len(s) < 2 || len(s) > 4096 {
		return false
	}
	return traversalRE.MatchString(s)
}

// languages are the languages whose injection markers some of strs carry:
// sql, template, path, shell (computed once per call).
func languages(strs []string) []string {
	var out []string
	for _, l := range []struct {
		name string
		f    func(string) bool
	}{{"sql", sqlInjection}, {"template", templateInjection}, {"path", pathTraversal}, {"shell", shellMeta}} {
		if firstMatching(strs, l.f) != "" {
			out = append(out, l.name)
		}
	}
	return out
}

// hasFold: s contains word, ASCII case folded (word in lower case).
func hasFold(s, word string) bool {
	for i := 0; i+len(word) <= len(s); i++ {
		if s[i]|0x20 == word[0] && strings.EqualFold(s[i:i+len(word)], word) {
			return true
		}
	}
	return false
}

// firstMatching is the first of l that f accepts ("" if none).
func firstMatching(l []string, f func(string) bool) string {
	for _, s := range l {
		if f(s) {
			return s
		}
	}
	return ""
}
