// Command fpcount measures the content rules' false positives: it runs the
// inspection of pkg/inspect over every server message a set of traces
// holds (what `sensor trace -o json` wrote: results, resources, prompts,
// sampling and elicitation requests) and over ordinary text (READMEs, man
// pages, split in 4 KiB "results"), and prints, per source, how many
// results would raise each content rule, per 10,000.
//
// Usage: fpcount [-v] PATH... (a .jsonl trace, a directory of them, or a
// directory of text: *.md, *.txt, README*, *.gz man pages)
package main

import (
	"bufio"
	"compress/gzip"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/mcpsec/sensor/pkg/inspect"
)

// tally counts one source's results and what they would raise.
type tally struct {
	results  int
	byRule   map[string]int
	byLabel  map[string]int
	examples []string
}

func newTally() *tally { return &tally{byRule: map[string]int{}, byLabel: map[string]int{}} }

// add counts one result's report as the rules in rules/content.yaml judge
// it.
func (t *tally) add(r inspect.Report, where string, verbose bool) {
	t.results++
	labels := r.Labels()
	exfil := false
	for _, l := range labels {
		if l == "markdown_image_exfil" || (l == "link_exfil" && r.Score >= 6) {
			exfil = true
		}
	}
	fired := ""
	switch {
	case r.Score >= 6:
		fired = "result_instructions (high)"
	case r.Score >= 3:
		fired = "result_instructions_weak (medium)"
	}
	if fired != "" {
		t.byRule[fired]++
	}
	if exfil {
		t.byRule["result_exfil_link (high)"]++
	}
	if fired != "" || exfil {
		for _, l := range labels {
			t.byLabel[l]++
		}
		if verbose && (len(t.examples) < 20 || (r.Score >= 6 && len(t.examples) < 40)) {
			t.examples = append(t.examples, fmt.Sprintf("%s score %d: %s", where, r.Score, strings.Join(r.Evidence(), " | ")))
		}
	}
}

func main() {
	verbose := flag.Bool("v", false, "print the results that fired")
	skip := flag.String("skip", "", "skip files whose path matches this regular expression (malicious-by-design traces)")
	flag.Parse()
	skipRE, err := regexp.Compile(*skip)
	if err != nil {
		fmt.Fprintf(os.Stderr, "fpcount: -skip: %v\n", err)
		os.Exit(2)
	}
	if flag.NArg() == 0 {
		fmt.Fprintln(os.Stderr, "usage: fpcount [-v] PATH... (traces .jsonl, or directories of text)")
		os.Exit(2)
	}
	traces, text := newTally(), newTally()
	for _, root := range flag.Args() {
		err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() || (*skip != "" && skipRE.MatchString(p)) {
				return nil // unreadable parts of a corpus are skipped
			}
			switch {
			case strings.HasSuffix(p, ".jsonl"):
				return readTrace(p, traces, *verbose)
			case textFile(p):
				readText(p, text, *verbose)
			}
			return nil
		})
		if err != nil {
			fmt.Fprintf(os.Stderr, "fpcount: reading %s: %v\n", root, err)
			os.Exit(1)
		}
	}
	w := tabwriter.NewWriter(os.Stdout, 2, 8, 2, ' ', 0)
	for _, s := range []struct {
		name string
		t    *tally
	}{{"server messages in traces", traces}, {"ordinary text (4 KiB chunks)", text}} {
		fmt.Fprintf(w, "%s\t%d results\t\n", s.name, s.t.results)
		for _, k := range slices.Sorted(maps.Keys(s.t.byRule)) {
			fmt.Fprintf(w, "  %s\t%d\t%.1f per 10,000\n", k, s.t.byRule[k], per10k(s.t.byRule[k], s.t.results))
		}
		for _, k := range slices.Sorted(maps.Keys(s.t.byLabel)) {
			fmt.Fprintf(w, "    label %s\t%d\t\n", k, s.t.byLabel[k])
		}
	}
	w.Flush()
	for _, t := range []*tally{traces, text} {
		for _, e := range t.examples {
			fmt.Println("  " + e)
		}
	}
}

func per10k(n, of int) float64 {
	if of == 0 {
		return 0
	}
	return float64(n) * 10000 / float64(of)
}

// readTrace inspects the server messages of one trace: what the sensor
// inspects (out responses, sampling and elicitation requests).
func readTrace(path string, t *tally, verbose bool) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("opening %s: %w", path, err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	for n := 1; sc.Scan(); n++ {
		var m struct {
			Kind      string          `json:"kind"`
			Direction string          `json:"direction"`
			Type      string          `json:"type"`
			Method    string          `json:"method"`
			Result    json.RawMessage `json:"result"`
			Params    json.RawMessage `json:"params"`
			Request   *struct {
				Method string `json:"method"`
			} `json:"request"`
		}
		if json.Unmarshal(sc.Bytes(), &m) != nil || m.Kind != "message" || m.Direction != "out" {
			continue
		}
		var raw json.RawMessage
		switch {
		case m.Type == "response" && m.Request != nil && inspected(m.Request.Method):
			raw = m.Result
		case m.Type == "request" && (m.Method == "sampling/createMessage" || m.Method == "elicitation/create"):
			raw = m.Params
		}
		if len(raw) == 0 {
			continue
		}
		t.add(inspect.InspectJSON(raw, nil), fmt.Sprintf("%s:%d", path, n), verbose)
	}
	return sc.Err()
}

func inspected(method string) bool {
	switch method {
	case "tools/call", "resources/read", "prompts/get", "resources/subscribe", "completion/complete":
		return true
	}
	return false
}

func textFile(p string) bool {
	b := strings.ToLower(filepath.Base(p))
	return strings.HasPrefix(b, "readme") || strings.HasSuffix(b, ".md") || strings.HasSuffix(b, ".txt") ||
		strings.HasSuffix(b, ".gz")
}

// readText inspects a text file in 4 KiB chunks (man pages: troff
// requests stripped).
func readText(p string, t *tally, verbose bool) {
	f, err := os.Open(p)
	if err != nil {
		return
	}
	defer f.Close()
	var r io.Reader = f
	if strings.HasSuffix(p, ".gz") {
		gz, err := gzip.NewReader(f)
		if err != nil {
			return
		}
		r = gz
	}
	b, err := io.ReadAll(io.LimitReader(r, 4<<20))
	if err != nil || len(b) == 0 {
		return
	}
	s := string(b)
	if strings.Contains(p, "/man/") {
		var keep []string
		for _, l := range strings.Split(s, "\n") {
			if strings.HasPrefix(l, ".") || strings.HasPrefix(l, "'") {
				l = strings.TrimLeft(strings.TrimLeft(l, ".'"), "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")
			}
			keep = append(keep, strings.NewReplacer(`\fB`, "", `\fI`, "", `\fR`, "", `\fP`, "", `\-`, "-", `\(em`, "—").Replace(l))
		}
		s = strings.Join(keep, "\n")
	}
	for i := 0; i < len(s); i += 4 << 10 {
		chunk := s[i:min(len(s), i+4<<10)]
		t.add(inspect.Inspect(chunk, nil), fmt.Sprintf("%s@%d", p, i), verbose)
	}
}
