// Package audit keeps the tamper-evident trail of what the sensor decided
// and did: an append-only, hash-chained log of alerts and actions (contain,
// release, responses, rule reloads, configuration changes). Each record
// carries the hash of the one before it; the head (the last sequence number
// and hash) is also kept in a file of its own, so a cut tail shows too.
// Rotation starts a new file that continues the chain.
package audit

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// File is the current log in the audit directory; rotated files are named
// audit-<first seq>.jsonl; Head holds the last sequence number and hash.
const (
	File = "audit.jsonl"
	Head = "audit.head"
)

// Record is one entry of the trail.
type Record struct {
	Seq  uint64          `json:"seq"`
	Time time.Time       `json:"ts"`
	Kind string          `json:"kind"` // alert, contain, release, response, rules, config, ...
	Data json.RawMessage `json:"data"`
	Prev string          `json:"prev"` // hash of the record before ("" for the first)
	Hash string          `json:"hash"` // sha256 over the record without this field
}

func (r *Record) digest() string {
	c := *r
	c.Hash = ""
	b, _ := json.Marshal(&c)
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// Log appends records to the trail in a directory. Several processes may
// append (the sensor, `sensor release`): each append holds a lock on the
// directory, rereads the head and continues the chain from it.
type Log struct {
	dir      string
	maxBytes int64
}

type head struct {
	Seq  uint64 `json:"seq"`
	Hash string `json:"hash"`
}

// Open makes the trail's directory; files rotate past maxBytes (0: never).
func Open(dir string, maxBytes int64) (*Log, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	return &Log{dir: dir, maxBytes: maxBytes}, nil
}

// Close is a no-op: every append is complete on disk when it returns.
func (l *Log) Close() error { return nil }

// Entry is a record to append: its kind and data (marshalled to JSON).
type Entry struct {
	Kind string
	Data any
}

// Append adds a record of kind with data, synced to disk with the new head
// before it returns.
func (l *Log) Append(kind string, data any) (*Record, error) {
	rs, err := l.AppendBatch([]Entry{{kind, data}})
	if err != nil {
		return nil, err
	}
	return rs[0], nil
}

// AppendBatch adds records in order, chained, with one write and one sync
// for all of them (a busy sensor's alerts cost one fsync per batch, not
// one each). On an error none of them counts as written.
func (l *Log) AppendBatch(entries []Entry) ([]*Record, error) {
	if len(entries) == 0 {
		return nil, nil
	}
	datas := make([][]byte, len(entries))
	for i, e := range entries {
		b, err := json.Marshal(e.Data)
		if err != nil {
			return nil, fmt.Errorf("encoding an audit record: %w", err)
		}
		datas[i] = b
	}
	lock, err := os.OpenFile(filepath.Join(l.dir, "audit.lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, err
	}
	defer lock.Close()
	if err := unix.Flock(int(lock.Fd()), unix.LOCK_EX); err != nil {
		return nil, err
	}
	defer unix.Flock(int(lock.Fd()), unix.LOCK_UN)
	var h head
	if hb, err := os.ReadFile(filepath.Join(l.dir, Head)); err == nil {
		if err := json.Unmarshal(hb, &h); err != nil {
			return nil, fmt.Errorf("%s: %w", Head, err)
		}
	}
	path := filepath.Join(l.dir, File)
	if st, err := os.Stat(path); err == nil && l.maxBytes > 0 && st.Size() >= l.maxBytes {
		first, err := firstSeq(path)
		if err != nil {
			return nil, err
		}
		if err := os.Rename(path, filepath.Join(l.dir, fmt.Sprintf("audit-%020d.jsonl", first))); err != nil {
			return nil, err
		}
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	now := time.Now().UTC()
	var buf []byte
	recs := make([]*Record, len(entries))
	for i, e := range entries {
		r := &Record{Seq: h.Seq + 1, Time: now, Kind: e.Kind, Data: datas[i], Prev: h.Hash}
		r.Hash = r.digest()
		line, _ := json.Marshal(r)
		buf = append(append(buf, line...), '\n')
		h = head{Seq: r.Seq, Hash: r.Hash}
		recs[i] = r
	}
	if _, err := f.Write(buf); err != nil {
		return nil, err
	}
	if err := f.Sync(); err != nil {
		return nil, err
	}
	hb, _ := json.Marshal(h)
	tmp := filepath.Join(l.dir, Head+".tmp")
	if err := os.WriteFile(tmp, hb, 0o600); err != nil {
		return nil, err
	}
	return recs, os.Rename(tmp, filepath.Join(l.dir, Head))
}

func firstSeq(path string) (uint64, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 64<<20)
	if !sc.Scan() {
		return 0, errors.New("empty audit file")
	}
	var r Record
	if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
		return 0, err
	}
	return r.Seq, nil
}

// Problem is where verification failed.
type Problem struct {
	File string
	Line int
	Seq  uint64
	Why  string
}

func (p *Problem) Error() string {
	return fmt.Sprintf("%s:%d: record %d: %s", p.File, p.Line, p.Seq, p.Why)
}

// Verify walks the trail in dir (rotated files in order, then the current
// one) and returns the number of records, or the first problem: an edited
// record (its hash), a removed or reordered one (the sequence and the
// chain), or a cut tail (the head file).
func Verify(dir string) (uint64, error) {
	rotated, _ := filepath.Glob(filepath.Join(dir, "audit-*.jsonl"))
	sort.Strings(rotated)
	files := append(rotated, filepath.Join(dir, File))
	var seq uint64
	prev := ""
	for _, path := range files {
		b, err := os.ReadFile(path)
		if os.IsNotExist(err) {
			continue
		}
		if err != nil {
			return seq, err
		}
		for i, line := range bytes.Split(bytes.TrimRight(b, "\n"), []byte("\n")) {
			if len(line) == 0 {
				continue
			}
			bad := func(why string, s uint64) error {
				return &Problem{File: filepath.Base(path), Line: i + 1, Seq: s, Why: why}
			}
			var r Record
			if err := json.Unmarshal(line, &r); err != nil {
				return seq, bad("not a record: "+err.Error(), seq+1)
			}
			if r.Seq != seq+1 {
				return seq, bad(fmt.Sprintf("out of sequence: expected record %d (records removed or reordered)", seq+1), r.Seq)
			}
			if r.Prev != prev {
				return seq, bad("does not follow the record before it (the chain is broken)", r.Seq)
			}
			if r.digest() != r.Hash {
				return seq, bad("its content does not match its hash (edited)", r.Seq)
			}
			seq, prev = r.Seq, r.Hash
		}
	}
	if b, err := os.ReadFile(filepath.Join(dir, Head)); err == nil {
		var h head
		if json.Unmarshal(b, &h) == nil && (h.Seq != seq || h.Hash != prev) {
			return seq, &Problem{File: Head, Seq: h.Seq,
				Why: fmt.Sprintf("the head says record %d, the log ends at %d (its tail was cut or replaced)", h.Seq, seq)}
		}
	}
	return seq, nil
}

// Kinds lists the kinds in use, for documentation.
var Kinds = strings.Fields("alert contain release response rules config decision verdict")

// Walk calls fn with each record of the trail in dir, oldest first
// (rotated files in order, then the current one). It reads; Verify is
// what checks the chain.
func Walk(dir string, fn func(*Record) error) error {
	rotated, _ := filepath.Glob(filepath.Join(dir, "audit-*.jsonl"))
	sort.Strings(rotated)
	for _, path := range append(rotated, filepath.Join(dir, File)) {
		f, err := os.Open(path)
		if os.IsNotExist(err) {
			continue
		}
		if err != nil {
			return err
		}
		sc := bufio.NewScanner(f)
		sc.Buffer(make([]byte, 64<<10), 64<<20)
		for line := 1; sc.Scan(); line++ {
			if len(sc.Bytes()) == 0 {
				continue
			}
			var r Record
			if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
				f.Close()
				return fmt.Errorf("%s:%d: not a record: %w", filepath.Base(path), line, err)
			}
			if err := fn(&r); err != nil {
				f.Close()
				return err
			}
		}
		err = sc.Err()
		f.Close()
		if err != nil {
			return fmt.Errorf("reading %s: %w", filepath.Base(path), err)
		}
	}
	return nil
}
