package report

import (
	"encoding/json"
	"fmt"
	"html/template"
	"io"
	"strings"
	"time"
)

// WriteJSON writes the report as JSON.
func (c *Compliance) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(c)
}

// WriteMarkdown writes the report as Markdown.
func (c *Compliance) WriteMarkdown(w io.Writer) error {
	b := &strings.Builder{}
	fmt.Fprintf(b, "# %s\n\n", c.Title)
	fmt.Fprintf(b, "Period %s to %s; generated %s.\n\n", day(c.From), day(c.To), c.Generated.Format(time.RFC3339))
	fmt.Fprintf(b, "**Audit trail:** %s\n\n", c.auditLine())
	fmt.Fprintf(b, "**Result:** %d PASS, %d FAIL, %d MANUAL.\n\n_Scope:_ %s\n\n", c.Summary["PASS"], c.Summary["FAIL"], c.Summary["MANUAL"], c.Scope)
	b.WriteString("| Requirement | Status | Evidence | Fix |\n|---|---|---|---|\n")
	for _, r := range c.Requirements {
		fmt.Fprintf(b, "| **%s** %s | %s | %s | %s |\n", r.ID, md(r.Title), r.Status, md(strings.Join(r.Evidence, "; ")), md(strings.Join(r.Fix, "; ")))
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func (c *Compliance) auditLine() string {
	if c.Audit.Verified {
		return fmt.Sprintf("verified, %d records (%s to %s)", c.Audit.Records, c.Audit.First, c.Audit.Last)
	}
	return "DOES NOT VERIFY: " + c.Audit.Problem
}

func md(s string) string { return strings.NewReplacer("|", "\\|", "\n", " ").Replace(s) }

func day(t time.Time) string { return t.UTC().Format("2006-01-02 15:04 UTC") }

var page = template.Must(template.New("report").Funcs(template.FuncMap{"day": day, "lower": strings.ToLower}).Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{{.C.Title}}</title>
<style>
body{font:14px/1.45 system-ui,sans-serif;margin:2rem;color:#1b1f24}
h1{font-size:1.4rem}table{border-collapse:collapse;width:100%}
th,td{border-bottom:1px solid #d0d7de;padding:.4rem .5rem;text-align:left;vertical-align:top}
.PASS{color:#1a7f37;font-weight:700}.FAIL{color:#cf222e;font-weight:700}.MANUAL{color:#9a6700;font-weight:700}
.bad{color:#cf222e}.sum span{margin-right:1.2rem}
</style></head><body>
<h1 id="title">{{.C.Title}}</h1>
<p>Period {{day .C.From}} to {{day .C.To}}; generated {{day .C.Generated}}.</p>
<p id="audit"><b>Audit trail:</b> <span{{if not .C.Audit.Verified}} class="bad"{{end}}>{{.Audit}}</span></p>
<p class="sum" id="summary"><span class="PASS">{{index .C.Summary "PASS"}} PASS</span><span class="FAIL">{{index .C.Summary "FAIL"}} FAIL</span><span class="MANUAL">{{index .C.Summary "MANUAL"}} MANUAL</span></p>
<p><i>Scope:</i> {{.C.Scope}}</p>
<table><thead><tr><th>Requirement</th><th>Status</th><th>Evidence</th><th>Fix</th></tr></thead><tbody>
{{range .C.Requirements}}<tr id="req-{{.ID}}"><td><b>{{.ID}}</b> {{.Title}}</td><td class="{{.Status}}">{{.Status}}</td><td>{{range .Evidence}}<div>{{.}}</div>{{end}}</td><td>{{range .Fix}}<div>{{.}}</div>{{end}}</td></tr>
{{end}}</tbody></table></body></html>
`))

// WriteHTML writes the report as one self-contained HTML page.
func (c *Compliance) WriteHTML(w io.Writer) error {
	return page.Execute(w, struct {
		C     *Compliance
		Audit string
	}{c, c.auditLine()})
}
