package audit

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func write(t *testing.T, dir string, n int, max int64) {
	t.Helper()
	l, err := Open(dir, max)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < n; i++ {
		if _, err := l.Append("alert", map[string]any{"rule": "r", "n": i}); err != nil {
			t.Fatal(err)
		}
	}
	l.Close()
}

func lines(t *testing.T, path string) [][]byte {
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return bytes.Split(bytes.TrimRight(b, "\n"), []byte("\n"))
}

func put(t *testing.T, path string, ls [][]byte) {
	if err := os.WriteFile(path, append(bytes.Join(ls, []byte("\n")), '\n'), 0o600); err != nil {
		t.Fatal(err)
	}
}

// Verify passes on an untouched trail (across rotation and reopening) and
// names the record after any single edit, deletion or swap, or a cut tail.
func TestVerify(t *testing.T) {
	fresh := func(t *testing.T) string {
		dir := t.TempDir()
		write(t, dir, 6, 700) // rotates every few records
		write(t, dir, 4, 700) // reopened: the chain continues
		if n, err := Verify(dir); err != nil || n != 10 {
			t.Fatalf("untouched: %d %v", n, err)
		}
		return dir
	}
	cur := func(dir string) string { return filepath.Join(dir, File) }
	for _, tc := range []struct {
		name   string
		tamper func(t *testing.T, dir string)
		want   string
	}{
		{"edit", func(t *testing.T, dir string) {
			ls := lines(t, cur(dir))
			ls[0] = bytes.Replace(ls[0], []byte(`"rule":"r"`), []byte(`"rule":"x"`), 1)
			put(t, cur(dir), ls)
		}, "edited"},
		{"delete", func(t *testing.T, dir string) {
			ls := lines(t, cur(dir))
			put(t, cur(dir), append(ls[:0:0], ls[1:]...))
		}, "out of sequence"},
		{"swap", func(t *testing.T, dir string) {
			ls := lines(t, cur(dir))
			ls[0], ls[1] = ls[1], ls[0]
			put(t, cur(dir), ls)
		}, "out of sequence"},
		{"cut tail", func(t *testing.T, dir string) {
			ls := lines(t, cur(dir))
			put(t, cur(dir), ls[:len(ls)-1])
		}, "tail was cut"},
		{"rotated file edited", func(t *testing.T, dir string) {
			rot, _ := filepath.Glob(filepath.Join(dir, "audit-*.jsonl"))
			ls := lines(t, rot[0])
			ls[1] = bytes.Replace(ls[1], []byte(`"kind":"alert"`), []byte(`"kind":"other"`), 1)
			put(t, rot[0], ls)
		}, "edited"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := fresh(t)
			tc.tamper(t, dir)
			_, err := Verify(dir)
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "record") {
				t.Fatalf("after %s: %v", tc.name, err)
			}
			t.Log(err)
		})
	}
}

// Appends from several writers at once (the sensor and a CLI) keep one chain.
func TestConcurrentAppends(t *testing.T) {
	dir := t.TempDir()
	done := make(chan struct{})
	for w := 0; w < 4; w++ {
		go func() {
			defer func() { done <- struct{}{} }()
			l, err := Open(dir, 2048)
			if err != nil {
				t.Error(err)
				return
			}
			for i := 0; i < 25; i++ {
				if _, err := l.Append("response", map[string]int{"i": i}); err != nil {
					t.Error(err)
				}
			}
		}()
	}
	for w := 0; w < 4; w++ {
		<-done
	}
	if n, err := Verify(dir); err != nil || n != 100 {
		t.Fatalf("%d records, %v", n, err)
	}
}

// TestAppendBatch: a batch is chained like single appends, continues the
// chain across calls, and verifies.
func TestAppendBatch(t *testing.T) {
	dir := t.TempDir()
	l, err := Open(dir, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.Append("config", map[string]int{"a": 1}); err != nil {
		t.Fatal(err)
	}
	recs, err := l.AppendBatch([]Entry{{"alert", 1}, {"alert", 2}, {"response", 3}})
	if err != nil || len(recs) != 3 || recs[0].Seq != 2 || recs[2].Seq != 4 || recs[1].Prev != recs[0].Hash {
		t.Fatalf("%+v %v", recs, err)
	}
	if r, err := l.Append("release", nil); err != nil || r.Seq != 5 || r.Prev != recs[2].Hash {
		t.Fatalf("after the batch: %+v %v", r, err)
	}
	if n, err := Verify(dir); err != nil || n != 5 {
		t.Fatalf("verify: %d %v", n, err)
	}
}
