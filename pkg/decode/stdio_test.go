package decode

import (
	"bytes"
	"strings"
	"testing"
)

var k0 = StreamKey{Ino: 42, Dir: 0}

// feedAll feeds pieces in order and returns the lines' text.
func feedAll(s *Splitter, ps ...Piece) []Line {
	var out []Line
	for _, p := range ps {
		out = s.Feed(k0, p, out)
	}
	return out
}

func texts(ls []Line) []string {
	var out []string
	for _, l := range ls {
		out = append(out, string(l.Data))
	}
	return out
}

func TestSplitterSeveralInOnePiece(t *testing.T) {
	s := NewSplitter(1 << 20)
	got := texts(feedAll(s, Piece{Off: 0, Data: []byte("{\"a\":1}\n{\"b\":2}\r\n\n{\"c\":3}\n")}))
	want := []string{`{"a":1}`, `{"b":2}`, `{"c":3}`}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("got %q, want %q", got, want)
	}
}

func TestSplitterOneAcrossManyPieces(t *testing.T) {
	msg := `{"jsonrpc":"2.0","id":1,"method":"tools/call"}` + "\n"
	s := NewSplitter(1 << 20)
	var ps []Piece
	for i := 0; i < len(msg); i++ {
		ps = append(ps, Piece{Off: uint64(i), Data: []byte{msg[i]}})
	}
	got := feedAll(s, ps...)
	if len(got) != 1 || string(got[0].Data) != strings.TrimSpace(msg) {
		t.Fatalf("got %q", texts(got))
	}
	if got[0].AfterGap {
		t.Error("a whole stream is not after a gap")
	}
}

func TestSplitterGapMidLineNeverSplices(t *testing.T) {
	s := NewSplitter(1 << 20)
	// "AAAA\nBBBB" then bytes 9..12 lost, then "BB\nCCCC\n"
	got := feedAll(s,
		Piece{Off: 0, Data: []byte("AAAA\nBBBB")},
		Piece{Off: 13, Data: []byte("BB\nCCCC\n")},
	)
	got = s.Flush(got)
	if strings.Join(texts(got), "|") != "AAAA|CCCC" {
		t.Fatalf("got %q: the B line must be dropped whole", texts(got))
	}
	if !got[1].AfterGap {
		t.Error("the line after a gap must say so")
	}
	if s.Stats.Gaps != 1 || s.Stats.GapBytes != 4 || s.Stats.DiscardedBytes != 6 {
		t.Errorf("stats %+v", s.Stats)
	}
}

func TestSplitterGapAtBoundaryKeepsNextLine(t *testing.T) {
	s := NewSplitter(1 << 20)
	got := feedAll(s,
		Piece{Off: 0, Data: []byte("AAAA\n")},
		Piece{Off: 10, Data: []byte("CCCC\n")},
	)
	got = s.Flush(got)
	if strings.Join(texts(got), "|") != "AAAA|CCCC" || !got[1].AfterGap {
		t.Fatalf("got %q", texts(got))
	}
}

func TestSplitterMarkedSkip(t *testing.T) {
	s := NewSplitter(1 << 20)
	// the kernel cut 100 bytes of this syscall (cap): the line is lost, counted
	got := feedAll(s,
		Piece{Off: 0, Data: []byte("{\"x\":"), Skipped: 100},
		Piece{Off: 105, Data: []byte("tail}\n{\"y\":1}\n")},
	)
	if strings.Join(texts(got), "|") != `{"y":1}` {
		t.Fatalf("got %q", texts(got))
	}
	if s.Stats.GapBytes != 100 {
		t.Errorf("gap bytes %d", s.Stats.GapBytes)
	}
}

func TestSplitterReorder(t *testing.T) {
	s := NewSplitter(1 << 20)
	got := feedAll(s,
		Piece{Off: 0, Data: []byte("AA")},
		Piece{Off: 5, Data: []byte("BB\n")},
		Piece{Off: 2, Data: []byte("A\nB")},
	)
	if strings.Join(texts(got), "|") != "AAA|BBB" || s.Stats.Gaps != 0 || s.Stats.Reordered != 1 || s.waiting != 0 {
		t.Fatalf("got %q, stats %+v", texts(got), s.Stats)
	}
}

func TestSplitterPendingBoundDeclaresGap(t *testing.T) {
	s := NewSplitter(1 << 20)
	s.MaxPending = 2
	got := feedAll(s,
		Piece{Off: 0, Data: []byte("X\n")},
		Piece{Off: 10, Data: []byte("a\n")},
		Piece{Off: 12, Data: []byte("b\n")},
		Piece{Off: 14, Data: []byte("c\n")},
	)
	if strings.Join(texts(got), "|") != "X|a|b|c" || s.Stats.Gaps != 1 || s.Stats.GapBytes != 8 {
		t.Fatalf("got %q, stats %+v", texts(got), s.Stats)
	}
}

func TestSplitterExpire(t *testing.T) {
	s := NewSplitter(1 << 20)
	out := feedAll(s,
		Piece{Off: 0, Data: []byte("A\n"), TS: 1000},
		Piece{Off: 4, Data: []byte("C\n"), TS: 2000},
	)
	if out = s.Expire(2500, 1000, out); len(out) != 1 {
		t.Fatalf("gave up too early: %q", texts(out))
	}
	if out = s.Expire(3001, 1000, out); strings.Join(texts(out), "|") != "A|C" {
		t.Fatalf("got %q", texts(out))
	}
	if s.waiting != 0 {
		t.Errorf("waiting = %d", s.waiting)
	}
}

func TestSplitterFlush(t *testing.T) {
	s := NewSplitter(1 << 20)
	out := feedAll(s, Piece{Off: 0, Data: []byte("A\n")}, Piece{Off: 4, Data: []byte("C\n")})
	out = s.Flush(out)
	if strings.Join(texts(out), "|") != "A|C" {
		t.Fatalf("got %q", texts(out))
	}
}

func TestSplitterReset(t *testing.T) {
	s := NewSplitter(1 << 20)
	// a partial line, then the offset restarts at 0: what follows may be its
	// tail, so it is discarded up to the next newline
	got := feedAll(s,
		Piece{Off: 0, Data: []byte("done\nhalf")},
		Piece{Off: 0, Data: []byte("tail\nwhole\n")},
	)
	if strings.Join(texts(got), "|") != "done|whole" || s.Stats.Resets != 1 || !got[1].AfterGap {
		t.Fatalf("got %q, stats %+v", texts(got), s.Stats)
	}
}

func TestSplitterLatePieceIsDropped(t *testing.T) {
	s := NewSplitter(1 << 20)
	out := feedAll(s, Piece{Off: 0, Data: []byte("A\n")}, Piece{Off: 4, Data: []byte("C\n"), TS: 10})
	out = s.Expire(1000, 100, out) // B is declared lost
	out = append(out, feedAll(s, Piece{Off: 2, Data: []byte("B\n")}, Piece{Off: 6, Data: []byte("D\n")})...)
	if strings.Join(texts(out), "|") != "A|C|D" || s.Stats.Late != 1 || s.Stats.Resets != 0 {
		t.Fatalf("got %q, stats %+v", texts(out), s.Stats)
	}
}

func TestSplitterStreamsStartAtZero(t *testing.T) {
	s := NewSplitter(1 << 20)
	// the first piece the decoder sees is not the stream's first: its
	// predecessor was lost, so the line it ends is a fragment
	got := s.Flush(feedAll(s, Piece{Off: 5, Data: []byte("ment\n{\"a\":1}\n")}))
	if len(got) != 2 || !got[0].AfterGap || got[1].AfterGap || s.Stats.GapBytes != 5 {
		t.Fatalf("got %+v stats %+v", got, s.Stats)
	}
}

func TestSplitterOversized(t *testing.T) {
	s := NewSplitter(8)
	got := feedAll(s, Piece{Off: 0, Data: []byte("0123456789abcdef\nok\n")})
	if len(got) != 2 || !got[0].Truncated || string(got[0].Data) != "01234567" || got[0].Size != 16 || string(got[1].Data) != "ok" {
		t.Fatalf("got %+v", got)
	}
	if s.Stats.Oversized != 1 {
		t.Errorf("stats %+v", s.Stats)
	}
}

func TestSplitterReleasesLargeBuffers(t *testing.T) {
	s := NewSplitter(64 << 20)
	big := strings.Repeat("x", 4<<20) + "\n"
	feedAll(s, Piece{Off: 0, Data: []byte(big)})
	if c := cap(s.streams[k0].c.(*lineStream).buf); c > 1<<20 {
		t.Fatalf("a 4 MiB buffer is kept after its line: cap %d", c)
	}
}

// A stream picked up mid-life (--pid) may start inside a message: its first
// line is marked joined (not after lost bytes), the next is whole.
func TestSplitterAttachedJoins(t *testing.T) {
	s := NewSplitter(1 << 20)
	got := feedAll(s, Piece{Off: 0, Data: []byte("tail of something\n{\"a\":1}\n"), Attached: true})
	if len(got) != 2 || !got[0].Joined || got[0].AfterGap || got[1].Joined || got[1].AfterGap {
		t.Fatalf("got %+v", got)
	}
	d := NewDecoder(DefaultOptions())
	if d.dropLine(got[0]) || d.Stats().JoinedPartial != 1 || d.Stats().Fragments != 0 {
		t.Fatalf("a joined partial line is a loss: %+v", d.Stats())
	}
}

func TestSplitterEvictsStreams(t *testing.T) {
	s := NewSplitter(1 << 20)
	s.MaxStreams = 2
	for i := 0; i < 5; i++ {
		s.Feed(StreamKey{Ino: uint64(i)}, Piece{Off: 0, Data: []byte("partial")}, nil)
	}
	if len(s.streams) != 2 || s.Stats.Evicted != 3 {
		t.Fatalf("streams %d, stats %+v", len(s.streams), s.Stats)
	}
}

// FuzzSplitter feeds a stream cut into pieces at fuzzed points, some lost.
// Whatever happens, every line it emits as whole (not after a gap) must be a
// whole line of the input: never a splice of two. Lines after a gap may be
// fragments; the decoder keeps them only if they parse on their own
// (FuzzDecoderNoSplice checks that).
func FuzzSplitter(f *testing.F) {
	f.Add([]byte("{\"a\":1}\n{\"b\":2}\n"), []byte{3, 7, 0}, uint8(0))
	f.Add([]byte("x\ny\nzzzzzzzzzzzzzzz\n"), []byte{1, 1, 1, 9}, uint8(5))
	f.Add(bytes.Repeat([]byte("{\"k\":\"v\"}\n"), 20), []byte{50, 13, 77}, uint8(2))
	f.Fuzz(func(t *testing.T, stream []byte, cuts []byte, drop uint8) {
		if len(stream) > 1<<16 || len(cuts) > 256 {
			return
		}
		whole := map[string]bool{}
		for _, l := range bytes.Split(stream, []byte("\n")) {
			whole[string(bytes.TrimRight(l, "\r"))] = true
		}
		s := NewSplitter(64)
		s.MaxPending = 4
		var out []Line
		off := 0
		for i := 0; off < len(stream); i++ {
			n := 1
			if i < len(cuts) {
				n = int(cuts[i]) + 1
			}
			end := min(off+n, len(stream))
			p := Piece{Off: uint64(off), Data: stream[off:end]}
			// lose every drop-th piece (drop 0: lose none)
			if drop == 0 || i%(int(drop)+1) != int(drop) {
				out = s.Feed(k0, p, out)
			}
			off = end
		}
		out = s.Flush(out)
		for _, l := range out {
			if len(l.Data) > 64 {
				t.Fatalf("line of %d bytes exceeds the cap", len(l.Data))
			}
			if l.Truncated || l.AfterGap {
				continue
			}
			if !whole[string(l.Data)] {
				t.Fatalf("emitted %q, which is not a whole line of the input", l.Data)
			}
		}
	})
}
