package inspect

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"
)

// The corpus: ordinary text found on this machine, cut into tool results.
const (
	corpusChunk    = 4 << 10
	corpusMax      = 20000
	corpusMin      = 500
	corpusBudget   = 15 * time.Second // reading stops here, so the test ends in time
	maxHighPer10k  = 5
	maxMedPer10k   = 20
	corpusExamples = 10 // alerts printed
)

type chunk struct {
	kind   string // doc, man, go
	source string
	text   string
}

// TestCorpusFalsePositives runs Inspect over READMEs, man pages and Go doc
// comments and fails if ordinary text alerts more often than the rules can
// bear: 5 per 10,000 results at score >= 6, 20 at >= 3.
func TestCorpusFalsePositives(t *testing.T) {
	if testing.Short() {
		t.Skip("reading the corpus takes seconds")
	}
	start := time.Now()
	chunks := loadCorpus(start)
	if len(chunks) < corpusMin {
		t.Skipf("corpus has %d chunks (need %d): no docs, man pages or GOROOT on this machine", len(chunks), corpusMin)
	}
	loaded := time.Since(start)
	type alert struct {
		source, evidence string
		score            int
	}
	var (
		low, med, high       int
		lowBy, medBy, highBy = map[string]int{}, map[string]int{}, map[string]int{}
		examples             []alert
		bytesIn              int
		bySource             = map[string]int{}
	)
	scanStart := time.Now()
	for _, c := range chunks {
		bytesIn += len(c.text)
		bySource[c.kind]++
		r := Inspect(c.text, nil)
		if r.Score == 0 {
			continue
		}
		if r.Score < 3 {
			low++
			for _, l := range r.Labels() {
				lowBy[l]++
			}
			continue
		}
		med++
		for _, l := range r.Labels() {
			medBy[l]++
		}
		if r.Score >= 6 {
			high++
			for _, l := range r.Labels() {
				highBy[l]++
			}
		}
		examples = append(examples, alert{c.source, strings.Join(r.Evidence(), " | "), r.Score})
	}
	scan := time.Since(scanStart)
	per10k := func(n int) float64 { return float64(n) * 10000 / float64(len(chunks)) }
	t.Logf("corpus: %d chunks (%.1f MB), loaded in %v, inspected in %v (%.0f MB/s)", len(chunks),
		float64(bytesIn)/1e6, loaded.Round(time.Millisecond), scan.Round(time.Millisecond), float64(bytesIn)/1e6/scan.Seconds())
	t.Logf("sources: %d README/md/txt/html chunks, %d man page chunks, %d Go comment chunks",
		bySource["doc"], bySource["man"], bySource["go"])
	t.Logf("score 1-2:  %d (%.1f per 10k) %s", low, per10k(low), byLabel(lowBy, per10k))
	t.Logf("score >= 3: %d (%.1f per 10k) %s", med, per10k(med), byLabel(medBy, per10k))
	t.Logf("score >= 6: %d (%.1f per 10k) %s", high, per10k(high), byLabel(highBy, per10k))
	sort.SliceStable(examples, func(i, j int) bool { return examples[i].score > examples[j].score })
	for i, e := range examples {
		if i == corpusExamples {
			break
		}
		t.Logf("  %s: score %d: %s", e.source, e.score, e.evidence)
	}
	if per10k(high) > maxHighPer10k || per10k(med) > maxMedPer10k {
		t.Errorf("false positives: %.1f per 10k at >= 6 (max %d), %.1f at >= 3 (max %d)",
			per10k(high), maxHighPer10k, per10k(med), maxMedPer10k)
	}
}

func byLabel(m map[string]int, per10k func(int) float64) string {
	var ls []string
	for l := range m {
		ls = append(ls, l)
	}
	sort.Slice(ls, func(i, j int) bool { return m[ls[i]] > m[ls[j]] || m[ls[i]] == m[ls[j]] && ls[i] < ls[j] })
	var b strings.Builder
	for _, l := range ls {
		fmt.Fprintf(&b, " %s=%.1f", l, per10k(m[l]))
	}
	return b.String()
}

// loadCorpus reads up to corpusMax chunks: a third each from /usr/share/doc,
// man pages and Go doc comments, topping up from whichever has more.
func loadCorpus(start time.Time) []chunk {
	sources := []struct {
		kind  string
		files []string
		read  func(string) string
	}{
		{"doc", globDocs(), readFile},
		{"man", globMan(), readMan},
		{"go", globGo(), readGoComments},
	}
	var out []chunk
	next := make([]int, len(sources))
	for round := 0; len(out) < corpusMax && time.Since(start) < corpusBudget; round++ {
		progress := false
		for i, src := range sources {
			// A few files per source per round keeps the mix even.
			for k := 0; k < 4 && next[i] < len(src.files) && len(out) < corpusMax; k++ {
				f := src.files[next[i]]
				next[i]++
				progress = true
				for _, c := range split(src.read(f), corpusChunk) {
					if len(out) < corpusMax {
						out = append(out, chunk{kind: src.kind, source: f, text: c})
					}
				}
			}
		}
		if !progress {
			break
		}
	}
	return out
}

func globDocs() []string {
	var files []string
	_ = filepath.WalkDir("/usr/share/doc", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return nil
		}
		name := strings.TrimSuffix(d.Name(), ".gz")
		if strings.HasPrefix(name, "README") || strings.HasSuffix(name, ".md") || strings.HasSuffix(name, ".txt") ||
			strings.HasSuffix(name, ".html") {
			files = append(files, p)
		}
		return nil
	})
	sort.Strings(files)
	return files
}

func globMan() []string {
	files, _ := filepath.Glob("/usr/share/man/man1/*.gz")
	sort.Strings(files)
	return files
}

func globGo() []string {
	root := os.Getenv("GOROOT")
	if root == "" {
		out, err := exec.Command("go", "env", "GOROOT").Output()
		if err != nil {
			return nil
		}
		root = strings.TrimSpace(string(out))
	}
	var files []string
	_ = filepath.WalkDir(filepath.Join(root, "src"), func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		if d.IsDir() && (d.Name() == "testdata" || d.Name() == "vendor") {
			return filepath.SkipDir
		}
		if !d.IsDir() && strings.HasSuffix(p, ".go") && !strings.HasSuffix(p, "_test.go") {
			files = append(files, p)
		}
		return nil
	})
	sort.Strings(files)
	return files
}

// readFile reads a file, gunzipping .gz, at most 1 MiB.
func readFile(p string) string {
	f, err := os.Open(p)
	if err != nil {
		return ""
	}
	defer f.Close()
	var r io.Reader = f
	if strings.HasSuffix(p, ".gz") {
		z, err := gzip.NewReader(f)
		if err != nil {
			return ""
		}
		defer z.Close()
		r = z
	}
	b, _ := io.ReadAll(io.LimitReader(r, 1<<20))
	if bytes.IndexByte(b[:min(len(b), 512)], 0) >= 0 {
		return "" // binary
	}
	return string(b)
}

var (
	troffFont   = regexp.MustCompile(`\\f(\[[^\]]*\]|\(..|.)`)
	troffEscape = regexp.MustCompile(`\\(\(..|\*\(..|\*\[[^\]]*\]|\*.|\[[^\]]*\]|s[-+]?\d+|[-&e ~|^c0])`)
)

// readMan strips troff lightly: comments and macro names go, font and
// character escapes go, the text stays.
func readMan(p string) string {
	src := readFile(p)
	var b strings.Builder
	sc := bufio.NewScanner(strings.NewReader(src))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, `.\"`) || strings.HasPrefix(line, `'\"`) {
			continue
		}
		if strings.HasPrefix(line, ".") {
			_, rest, _ := strings.Cut(line, " ")
			line = strings.ReplaceAll(rest, `"`, "")
		}
		line = troffFont.ReplaceAllString(line, "")
		line = troffEscape.ReplaceAllStringFunc(line, func(e string) string {
			switch e {
			case `\-`, `\(hy`, `\(en`, `\(em`:
				return "-"
			case `\e`:
				return `\`
			case `\ `, `\~`:
				return " "
			}
			return ""
		})
		b.WriteString(line)
		b.WriteByte('\n')
	}
	return b.String()
}

// readGoComments keeps the comment lines of a Go file.
func readGoComments(p string) string {
	var b strings.Builder
	for line := range strings.Lines(readFile(p)) {
		if l := strings.TrimSpace(line); strings.HasPrefix(l, "//") && !strings.HasPrefix(l, "//go:") {
			b.WriteString(strings.TrimPrefix(strings.TrimPrefix(l, "//"), " "))
			b.WriteByte('\n')
		}
	}
	return b.String()
}

// split cuts text into chunks of about size bytes at line ends.
func split(text string, size int) []string {
	var out []string
	for len(text) > 0 {
		if len(text) <= size {
			out = append(out, text)
			break
		}
		cut := strings.LastIndexByte(text[:size], '\n')
		if cut < size/2 {
			cut = size
		}
		out = append(out, text[:cut])
		text = text[cut:]
	}
	return out
}
