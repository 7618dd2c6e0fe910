package pipeline

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/mcpsec/sensor/pkg/correlate"
	"github.com/mcpsec/sensor/pkg/decode"
)

// Writer prints events in one of the output formats.
type Writer interface {
	Event(decode.Event) error
	Stats(*Stats) error
	// Server prints a server found or gone (text only: the JSON trace's
	// kinds stay message, effect, alert and stats); Folded prints the line
	// that stands for n runtime opens left out.
	Server(*ServerNotice) error
	Folded(n int) error
	Flush() error
}

// Sink receives whole lines only, under its own lock, so another writer of
// the same file (a traced command's stderr, relayed) never splits a line.
type Sink struct {
	mu sync.Mutex
	w  io.Writer
}

// NewSink wraps w.
func NewSink(w io.Writer) *Sink { return &Sink{w: w} }

func (s *Sink) write(b []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, err := s.w.Write(b)
	return err
}

// Relay copies r to the sink a line at a time until r ends.
func (s *Sink) Relay(r io.Reader) {
	br := bufio.NewReaderSize(r, 64<<10)
	for {
		line, err := br.ReadBytes('\n')
		if len(line) > 0 {
			_ = s.write(line)
		}
		if err != nil {
			return
		}
	}
}

// lines buffers whole lines for a sink.
type lines struct {
	sink *Sink
	buf  []byte
}

func (l *lines) add(line []byte) error {
	return l.addWith(func(b []byte) []byte { return append(b, line...) })
}

// addWith lets appendLine write one line straight into the buffer.
func (l *lines) addWith(appendLine func([]byte) []byte) error {
	l.buf = appendLine(l.buf)
	l.buf = append(l.buf, '\n')
	if len(l.buf) >= 64<<10 {
		return l.Flush()
	}
	return nil
}

// Flush writes the buffered lines in one write.
func (l *lines) Flush() error {
	if len(l.buf) == 0 {
		return nil
	}
	err := l.sink.write(l.buf)
	l.buf = l.buf[:0]
	return err
}

// NewWriter returns the writer for format "text" or "json".
func NewWriter(format string, s *Sink, color bool) (Writer, error) {
	switch format {
	case "json":
		return &jsonWriter{lines: lines{sink: s}}, nil
	case "text", "":
		return &textWriter{lines: lines{sink: s}, color: color}, nil
	}
	return nil, fmt.Errorf("output format %q: must be text or json", format)
}

type jsonWriter struct {
	lines
}

func (j *jsonWriter) write(v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encoding a trace line: %w", err)
	}
	return j.add(b)
}

// Event writes one line. Messages, the hottest output, encode themselves
// without reflection.
func (j *jsonWriter) Event(e decode.Event) error {
	if m, ok := e.(*decode.Message); ok {
		return j.addWith(m.AppendJSON)
	}
	return j.write(e)
}
func (j *jsonWriter) Stats(s *Stats) error { return j.write(s) }

func (j *jsonWriter) Server(*ServerNotice) error { return nil }
func (j *jsonWriter) Folded(int) error           { return nil }

func (t *textWriter) Server(n *ServerNotice) error {
	s := n.Info
	col := cGreen
	if n.State == "gone" {
		col = cDim
	}
	line := t.paint(cDim, n.Time.Format("15:04:05.000000")) + " " + t.paint(cBold+col, "SERVER "+strings.ToUpper(n.State)) + " " +
		t.paint(cBold, clean(s.Name)) + fmt.Sprintf(" pid %d", s.PID)
	if s.Command != "" {
		line += " (" + clean(s.Command) + ")"
	}
	if len(s.Roots) > 0 {
		line += " roots " + clean(strings.Join(s.Roots, " "))
	}
	if n.State == "gone" {
		line += fmt.Sprintf(", %d calls", s.Calls)
	}
	return t.add([]byte(line))
}

func (t *textWriter) Folded(n int) error {
	return t.add([]byte(t.paint(cDim, fmt.Sprintf("  … %d runtime opens folded (libraries, interpreter, modules; --hide-runtime)", n))))
}

type textWriter struct {
	lines
	color bool
}

// clean makes a string from an untrusted source safe for one line of text:
// control characters (a newline, an ANSI escape) and invalid UTF-8 would let
// a server forge trace lines, so such a string is shown quoted.
func clean(s string) string {
	if !utf8.ValidString(s) {
		return strconv.Quote(s)
	}
	for _, r := range s {
		if unicode.IsControl(r) {
			return strconv.Quote(s)
		}
	}
	return s
}

const (
	cReset = "\x1b[0m"
	cDim   = "\x1b[2m"
	cRed   = "\x1b[31m"
	cGreen = "\x1b[32m"
	cCyan  = "\x1b[36m"
	cYell  = "\x1b[33m"
	cBold  = "\x1b[1m"
)

func (t *textWriter) paint(c, s string) string {
	if !t.color || s == "" {
		return s
	}
	return c + s + cReset
}

func (t *textWriter) who(ts time.Time, p decode.Proc) string {
	id := fmt.Sprintf("%s[%d", clean(p.Comm), p.PID)
	if p.TID != p.PID && p.TID != 0 {
		id += fmt.Sprintf("/%d", p.TID)
	}
	id += "]"
	return t.paint(cDim, ts.Format("15:04:05.000000")) + " " + id
}

func (t *textWriter) Event(ev decode.Event) error {
	var line string
	switch e := ev.(type) {
	case *decode.Message:
		line = t.message(e)
	case *decode.Effect:
		line = t.effect(e)
	case *correlate.Alert:
		line = t.alert(e)
	}
	return t.add([]byte(line))
}

func (t *textWriter) alert(a *correlate.Alert) string {
	col := cYell
	if correlate.SeverityRank(a.Severity) >= correlate.SeverityRank("high") {
		col = cRed
	}
	s := t.who(a.Time, a.Proc) + " " + t.paint(cBold+col, "ALERT "+strings.ToUpper(a.Severity)) + " " + t.paint(cBold, clean(a.Rule)) + ": " + clean(a.Output)
	if a.Call != nil {
		s += fmt.Sprintf(" [call %s id=%s]", clean(a.Call.Tool), clean(string(a.Call.ID)))
	}
	if a.Action != "" {
		s += " action=" + a.Action
	}
	s += t.evidence(a.Evidence)
	if r := a.Response; r != nil && r.Mode == "enforce" && (len(r.Done) > 0 || len(r.Errors) > 0) {
		s += "\n    " + t.paint(cBold+cRed, "CONTAINED") + " " + clean(strings.Join(r.Done, ", "))
		if r.LatencyMS > 0 {
			s += fmt.Sprintf(" (%.1f ms after the syscall)", r.LatencyMS)
		}
		if r.Cgroup != "" {
			s += " cgroup " + clean(r.Cgroup)
		}
		if len(r.Errors) > 0 {
			s += " " + t.paint(cRed, "errors: "+clean(strings.Join(r.Errors, "; ")))
		}
	} else if r != nil && r.Mode == "monitor" && len(r.Actions) > 0 {
		s += t.paint(cDim, " (would: "+strings.Join(r.Actions, ", ")+")")
	}
	return s
}

// evidence prints what an alert shows besides its event, one indented
// line per part; quoted spans are the server's text (untrusted), cleaned.
func (t *textWriter) evidence(ev map[string]any) string {
	if len(ev) == 0 {
		return ""
	}
	keys := make([]string, 0, len(ev))
	for k := range ev {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		switch v := ev[k].(type) {
		case []string:
			for i, x := range v {
				if i == 4 {
					b.WriteString(t.paint(cDim, fmt.Sprintf("\n    %s: ... %d more", k, len(v)-4)))
					break
				}
				b.WriteString(t.paint(cDim, "\n    "+k+": ") + clean(x))
			}
		default:
			j, _ := json.Marshal(v)
			b.WriteString(t.paint(cDim, "\n    "+k+": ") + clean(string(j)))
		}
	}
	return b.String()
}

func (t *textWriter) message(m *decode.Message) string {
	arrow, col := "→", cCyan // to the server
	if m.Direction == "out" {
		arrow, col = "←", cGreen
	}
	var b strings.Builder
	b.WriteString(t.who(m.Time, m.Proc))
	b.WriteString(" " + t.paint(col, arrow+" "+m.Direction))
	if m.Method != "" {
		b.WriteString(" " + t.paint(cBold, clean(m.Method)))
	} else {
		b.WriteString(" " + m.Type)
	}
	if m.ID != nil {
		b.WriteString(" id=" + clean(string(m.ID)))
	}
	if m.Tool != "" {
		b.WriteString(" tool=" + t.paint(cBold, clean(m.Tool)) + " " + clean(decode.Compact(m.Arguments, 300)))
	} else if m.Params != nil {
		b.WriteString(" " + clean(decode.Compact(m.Params, 200)))
	}
	if m.Request != nil {
		ref := clean(m.Request.Method)
		if m.Request.Tool != "" {
			ref += " " + clean(m.Request.Tool)
		}
		b.WriteString(fmt.Sprintf(" (%s, %.1fms)", ref, m.Request.LatencyMS))
	}
	if m.Error != nil {
		b.WriteString(" " + t.paint(cRed, "error "+clean(decode.Compact(m.Error, 300))))
	} else if m.Result != nil {
		b.WriteString(" " + clean(decode.Compact(m.Result, 200)))
	}
	if m.Truncated {
		b.WriteString(t.paint(cYell, fmt.Sprintf(" [truncated at cap, %d bytes]", m.Size)))
	}
	if m.AfterGap {
		b.WriteString(t.paint(cYell, " [after lost bytes]"))
	}
	if m.Joined {
		b.WriteString(t.paint(cDim, " (joined mid-stream)"))
	}
	return b.String()
}

func (t *textWriter) effect(e *decode.Effect) string {
	var b strings.Builder
	b.WriteString(t.who(e.Time, e.Proc))
	b.WriteString(" " + t.paint(cYell, e.Type))
	switch e.Type {
	case "exec":
		if e.Path != "" {
			b.WriteString(" " + clean(e.Path))
		}
		if len(e.Argv) > 0 {
			b.WriteString(fmt.Sprintf(" %q", e.Argv))
		}
	case "fork":
		b.WriteString(fmt.Sprintf(" child=%d", e.Child))
	case "exit":
		if e.Signal != 0 {
			b.WriteString(fmt.Sprintf(" signal=%d", e.Signal))
		} else if e.Code != nil {
			b.WriteString(fmt.Sprintf(" code=%d", *e.Code))
		}
	case "connect", "bind", "listen", "accept", "sendto":
		b.WriteString(" " + e.Socket + " " + clean(e.Addr))
		if e.Local != "" {
			b.WriteString(" local=" + clean(e.Local))
		}
	default:
		if e.Path != "" {
			b.WriteString(" " + clean(e.Path))
		}
		if e.Raw != "" && e.Raw != e.Path {
			b.WriteString(t.paint(cDim, " (as "+clean(e.Raw)+")"))
		}
		if e.To != "" {
			b.WriteString(" -> " + clean(e.To))
		}
		if e.Target != "" {
			b.WriteString(" -> " + clean(e.Target))
		}
		if e.Flags != "" {
			b.WriteString(" " + e.Flags)
		}
		if e.Mode != "" {
			b.WriteString(" mode=" + e.Mode)
		}
	}
	if e.Detail != "" {
		b.WriteString(" " + clean(e.Detail))
	}
	if e.Type != "fork" && e.Type != "exit" && e.Type != "discover" {
		if e.Errno != "" {
			b.WriteString(" = " + t.paint(cRed, fmt.Sprintf("%d %s", e.Result, e.Errno)))
		} else {
			b.WriteString(fmt.Sprintf(" = %d", e.Result))
		}
	}
	if e.Truncated {
		b.WriteString(t.paint(cYell, " [truncated]"))
	}
	return b.String()
}

func (t *textWriter) Stats(s *Stats) error {
	var b strings.Builder
	fmt.Fprintf(&b, "--- %d events: %d effects, %d messages (%d in, %d out); %d kernel drops, %d truncations\n",
		s.Events, s.Effects, s.Messages, s.Decoder.MessagesIn, s.Decoder.MessagesOut, s.Drops, s.Cut)
	d := s.Decoder
	fmt.Fprintf(&b, "    decoder: %d records (%d bad), %d chunks / %d bytes, %d non-JSON lines, %d truncated messages, %d gap fragments\n",
		d.Records, d.BadRecords, d.Chunks, d.ChunkBytes, d.NonJSON, d.Truncated, d.Fragments)
	fmt.Fprintf(&b, "    streams: %d lines, %d gaps (%d bytes), %d bytes discarded resyncing, %d oversized, %d reordered, %d resets, %d evicted\n",
		d.Lines.Lines, d.Lines.Gaps, d.Lines.GapBytes, d.Lines.DiscardedBytes, d.Lines.Oversized,
		d.Lines.Reordered, d.Lines.Resets, d.Lines.Evicted)
	h := d.HTTP
	fmt.Fprintf(&b, "    http: %d connections, %d requests, %d responses (%d unpaired), %d SSE events, %d gaps (%d bytes), %d resyncs (%d bytes discarded), %d lost bodies, %d oversized, %d malformed, %d not-HTTP bytes, %d TLS ciphertext bytes, %d evicted\n",
		h.Connections, h.Requests, h.Responses, h.Unpaired, h.SSEEvents, h.Gaps, h.GapBytes, h.Resyncs, h.Discarded,
		h.LostBodies, h.Oversized, h.Malformed, h.NotHTTPBytes, h.TLSBytes, h.Evicted)
	fmt.Fprintf(&b, "    calls: %d requests, %d responses, %d unmatched, %d cancelled, %d evicted; sessions: %d ended, %d evicted\n",
		d.Sessions.Requests, d.Sessions.Responses, d.Sessions.Unmatched, d.Sessions.Cancelled, d.Sessions.Evicted,
		d.Sessions.Ended, d.Sessions.EvictedSessions)
	keys := make([]string, 0, len(s.Kernel))
	for k := range s.Kernel {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var nz []string
	for _, k := range keys {
		if s.Kernel[k] != 0 {
			nz = append(nz, fmt.Sprintf("%s=%d", k, s.Kernel[k]))
		}
	}
	if len(nz) == 0 {
		nz = []string{"all zero"}
	}
	fmt.Fprintf(&b, "    kernel: %s", strings.Join(nz, " "))
	if s.KernelError != "" {
		fmt.Fprintf(&b, " (counters unreadable: %s)", s.KernelError)
	}
	return t.add([]byte(b.String()))
}
