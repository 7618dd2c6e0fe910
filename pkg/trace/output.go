package trace

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/mcpsec/sensor/pkg/decode"
)

// Stats is the closing (or periodic) "kind":"stats" line.
type Stats struct {
	Kind     string            `json:"kind"` // always "stats"
	Time     time.Time         `json:"ts"`
	Events   uint64            `json:"events"`
	Effects  uint64            `json:"effects"`
	Messages uint64            `json:"messages"`
	Drops    uint64            `json:"drops"`       // records lost in the kernel (rings full, recursion)
	Cut      uint64            `json:"truncations"` // payloads, strings and messages cut short
	Kernel   map[string]uint64 `json:"kernel"`
	Decoder  decode.Stats      `json:"decoder"`
}

// Writer prints events in one of the output formats.
type Writer interface {
	Event(decode.Event) error
	Stats(*Stats) error
	Flush() error
}

// NewWriter returns the writer for format "text" or "json".
func NewWriter(format string, w io.Writer, color bool) (Writer, error) {
	bw := bufio.NewWriterSize(w, 64<<10)
	switch format {
	case "json":
		return &jsonWriter{w: bw}, nil
	case "text", "":
		return &textWriter{w: bw, color: color}, nil
	}
	return nil, fmt.Errorf("output format %q: must be text or json", format)
}

type jsonWriter struct {
	w *bufio.Writer
}

func (j *jsonWriter) write(v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encoding a trace line: %w", err)
	}
	b = append(b, '\n')
	_, err = j.w.Write(b)
	return err
}

func (j *jsonWriter) Event(e decode.Event) error { return j.write(e) }
func (j *jsonWriter) Stats(s *Stats) error       { return j.write(s) }
func (j *jsonWriter) Flush() error               { return j.w.Flush() }

type textWriter struct {
	w     *bufio.Writer
	color bool
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
	id := fmt.Sprintf("%s[%d", p.Comm, p.PID)
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
	}
	_, err := t.w.WriteString(line + "\n")
	return err
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
		b.WriteString(" " + t.paint(cBold, m.Method))
	} else {
		b.WriteString(" " + m.Type)
	}
	if m.ID != nil {
		b.WriteString(" id=" + string(m.ID))
	}
	if m.Tool != "" {
		b.WriteString(" tool=" + t.paint(cBold, m.Tool) + " " + decode.Compact(m.Arguments, 300))
	} else if m.Params != nil {
		b.WriteString(" " + decode.Compact(m.Params, 200))
	}
	if m.Request != nil {
		ref := m.Request.Method
		if m.Request.Tool != "" {
			ref += " " + m.Request.Tool
		}
		b.WriteString(fmt.Sprintf(" (%s, %.1fms)", ref, m.Request.LatencyMS))
	}
	if m.Error != nil {
		b.WriteString(" " + t.paint(cRed, "error "+decode.Compact(m.Error, 300)))
	} else if m.Result != nil {
		b.WriteString(" " + decode.Compact(m.Result, 200))
	}
	if m.Truncated {
		b.WriteString(t.paint(cYell, fmt.Sprintf(" [truncated at cap, %d bytes]", m.Size)))
	}
	if m.AfterGap {
		b.WriteString(t.paint(cYell, " [after lost bytes]"))
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
			b.WriteString(" " + e.Path)
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
		b.WriteString(" " + e.Socket + " " + e.Addr)
		if e.Local != "" {
			b.WriteString(" local=" + e.Local)
		}
	default:
		if e.Path != "" {
			b.WriteString(" " + e.Path)
		}
		if e.Raw != "" && e.Raw != e.Path {
			b.WriteString(t.paint(cDim, " (as "+e.Raw+")"))
		}
		if e.To != "" {
			b.WriteString(" -> " + e.To)
		}
		if e.Target != "" {
			b.WriteString(" -> " + e.Target)
		}
		if e.Flags != "" {
			b.WriteString(" " + e.Flags)
		}
		if e.Mode != "" {
			b.WriteString(" mode=" + e.Mode)
		}
	}
	if e.Detail != "" {
		b.WriteString(" " + e.Detail)
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
	fmt.Fprintf(&b, "    decoder: %d records (%d bad), %d chunks / %d bytes, %d non-JSON lines, %d truncated messages, %d gap fragments, %d undecoded socket bytes\n",
		d.Records, d.BadRecords, d.Chunks, d.ChunkBytes, d.NonJSON, d.Truncated, d.Fragments, d.SocketBytes)
	fmt.Fprintf(&b, "    streams: %d lines, %d gaps (%d bytes), %d bytes discarded resyncing, %d oversized, %d reordered, %d resets, %d evicted\n",
		d.Lines.Lines, d.Lines.Gaps, d.Lines.GapBytes, d.Lines.DiscardedBytes, d.Lines.Oversized,
		d.Lines.Reordered, d.Lines.Resets, d.Lines.Evicted)
	fmt.Fprintf(&b, "    calls: %d requests, %d responses, %d unmatched, %d evicted\n",
		d.Sessions.Requests, d.Sessions.Responses, d.Sessions.Unmatched, d.Sessions.Evicted)
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
	fmt.Fprintf(&b, "    kernel: %s\n", strings.Join(nz, " "))
	_, err := t.w.WriteString(b.String())
	return err
}

func (t *textWriter) Flush() error { return t.w.Flush() }
