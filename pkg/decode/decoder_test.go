package decode

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/mcpsec/sensor/pkg/wire"
)

func hdr(pid uint32) wire.Header {
	h := wire.Header{Tgid: pid, Tid: pid, Server: 100, ServerStart: 5, Ts: 1_000_000}
	copy(h.Comm[:], []int8{'n', 'o', 'd', 'e'})
	return h
}

func decodeAll(t *testing.T, d *Decoder, recs ...[]byte) []Event {
	t.Helper()
	var out []Event
	for _, r := range recs {
		if err := d.Record(r, func(e Event) { out = append(out, e) }); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

func effectOf(t *testing.T, kind wire.Kind, nr uint32, ret int64, a []uint64, slots ...string) *Effect {
	t.Helper()
	f := wire.EffectFixed{H: hdr(7)}
	f.H.Kind = uint8(kind)
	f.H.Nr = nr
	f.H.Ret = ret
	copy(f.A[:], a)
	var bs [][]byte
	for _, s := range slots {
		bs = append(bs, []byte(s))
	}
	evs := decodeAll(t, NewDecoder(Options{}), wire.MarshalEffect(f, bs...))
	if len(evs) != 1 {
		t.Fatalf("%d events", len(evs))
	}
	return evs[0].(*Effect)
}

func TestEffectOpen(t *testing.T) {
	e := effectOf(t, wire.KindOpen, wire.SYS_OPENAT, 3, []uint64{wire.O_RDONLY | wire.O_CLOEXEC}, "/etc/shadow", "allowed/link")
	if e.Type != "open" || e.Path != "/etc/shadow" || e.Raw != "allowed/link" || e.Lexical ||
		e.Flags != "O_RDONLY|O_CLOEXEC" || e.Syscall != "openat" || e.Server != "100-5" || e.Comm != "node" {
		t.Fatalf("%+v", e)
	}
	w := effectOf(t, wire.KindOpen, wire.SYS_OPENAT, 4, []uint64{wire.O_WRONLY | wire.O_CREAT | wire.O_TRUNC, 0o644}, "/home/u/.bashrc", ".bashrc")
	if w.Type != "write" || w.Access != "w" || w.Mode != "0644" {
		t.Fatalf("%+v", w)
	}
	// a failed open: the kernel walked nothing, the path is joined lexically
	f := effectOf(t, wire.KindOpen, wire.SYS_OPENAT, -2, []uint64{0}, "", "../secret", "/srv/root/sub")
	if f.Path != "/srv/root/secret" || !f.Lexical || f.Errno != "ENOENT" || f.Result != -2 {
		t.Fatalf("%+v", f)
	}
}

func TestEffectFileOps(t *testing.T) {
	r := effectOf(t, wire.KindRename, wire.SYS_RENAMEAT2, 0, nil, "/tmp", "a", "/var", "../etc/b")
	if r.Type != "rename" || r.Path != "/tmp/a" || r.To != "/etc/b" {
		t.Fatalf("%+v", r)
	}
	s := effectOf(t, wire.KindSymlink, wire.SYS_SYMLINKAT, 0, nil, "", "/etc/shadow", "/home/u", "link")
	if s.Type != "symlink" || s.Path != "/home/u/link" || s.Target != "/etc/shadow" {
		t.Fatalf("%+v", s)
	}
	c := effectOf(t, wire.KindChmod, wire.SYS_FCHMOD, 0, []uint64{0, 0o4755}, "/usr/local/bin/x")
	if c.Path != "/usr/local/bin/x" || c.Lexical || c.Mode != "04755" {
		t.Fatalf("%+v", c)
	}
}

func sockaddr4(ip string, port uint16) string {
	b := make([]byte, 16)
	binary.LittleEndian.PutUint16(b, wire.AF_INET)
	binary.BigEndian.PutUint16(b[2:], port)
	a := netip.MustParseAddr(ip).As4()
	copy(b[4:], a[:])
	return string(b)
}

func TestEffectNet(t *testing.T) {
	c := effectOf(t, wire.KindConnect, wire.SYS_CONNECT, -115, []uint64{3, wire.AF_INET, wire.SOCK_STREAM, 6}, sockaddr4("127.0.0.1", 8080))
	if c.Type != "connect" || c.Addr != "127.0.0.1:8080" || c.Socket != "tcp" || c.Errno != "EINPROGRESS" {
		t.Fatalf("%+v", c)
	}
	b6 := make([]byte, 28)
	binary.LittleEndian.PutUint16(b6, wire.AF_INET6)
	binary.BigEndian.PutUint16(b6[2:], 443)
	b6[23] = 1 // ::1
	v6 := effectOf(t, wire.KindConnect, wire.SYS_CONNECT, 0, []uint64{3, wire.AF_INET6, wire.SOCK_STREAM, 0}, string(b6))
	if v6.Addr != "[::1]:443" {
		t.Fatalf("%+v", v6)
	}
	un := effectOf(t, wire.KindConnect, wire.SYS_CONNECT, 0, []uint64{3, wire.AF_UNIX, wire.SOCK_STREAM, 0}, "\x01\x00/run/docker.sock\x00")
	if un.Addr != "/run/docker.sock" || un.Socket != "unix-stream" {
		t.Fatalf("%+v", un)
	}
	ab := effectOf(t, wire.KindBind, wire.SYS_BIND, 0, []uint64{3, wire.AF_UNIX, wire.SOCK_STREAM, 0}, "\x01\x00\x00hidden")
	if ab.Addr != "@hidden" {
		t.Fatalf("%+v", ab)
	}
}

func TestEffectProcess(t *testing.T) {
	e := effectOf(t, wire.KindExec, 0, 0, nil, "/usr/bin/dash", "sh\x00-c\x00curl x | sh\x00", "/bin/sh")
	if e.Type != "exec" || e.Path != "/usr/bin/dash" || strings.Join(e.Argv, ",") != "sh,-c,curl x | sh" || e.Raw != "/bin/sh" {
		t.Fatalf("%+v", e)
	}
	x := effectOf(t, wire.KindExit, 0, 0, []uint64{3 << 8})
	if x.Code == nil || *x.Code != 3 || x.Signal != 0 {
		t.Fatalf("%+v", x)
	}
	k := effectOf(t, wire.KindExit, 0, 0, []uint64{9})
	if k.Signal != 9 {
		t.Fatalf("%+v", k)
	}
	u := effectOf(t, wire.KindUnshare, wire.SYS_UNSHARE, -1, []uint64{wire.CLONE_NEWUSER | wire.CLONE_NEWNS})
	if u.Type != "unshare" || u.Flags != "CLONE_NEWNS|CLONE_NEWUSER" || u.Errno != "EPERM" {
		t.Fatalf("%+v", u)
	}
}

// chunk builds a payload record.
func chunk(pid uint32, ino uint64, dir uint8, ftype uint8, fd uint32, off uint64, data string) []byte {
	h := wire.ChunkHeader{H: hdr(pid), Ino: ino, Dir: dir, Ftype: ftype, Fd: fd, Off: off}
	return wire.MarshalChunk(h, []byte(data))
}

func messages(evs []Event) []*Message {
	var out []*Message
	for _, e := range evs {
		if m, ok := e.(*Message); ok {
			out = append(out, m)
		}
	}
	return out
}

func TestDecoderPairsRequestsAndResponses(t *testing.T) {
	d := NewDecoder(Options{})
	req := `{"jsonrpc":"2.0","id":"a1","method":"tools/call","params":{"name":"read_file","arguments":{"path":"notes.txt"}}}` + "\n"
	resp := `{"jsonrpc":"2.0","id":"a1","result":{"content":[{"type":"text","text":"hi"}]}}` + "\n"
	evs := decodeAll(t, d,
		chunk(7, 50, wire.DirIn, wire.FilePipe, 0, 0, req[:20]),
		chunk(7, 50, wire.DirIn, wire.FilePipe, 0, 20, req[20:]),
		chunk(7, 51, wire.DirOut, wire.FilePipe, 1, 0, resp),
	)
	ms := messages(evs)
	if len(ms) != 2 {
		t.Fatalf("%d messages", len(ms))
	}
	in, out := ms[0], ms[1]
	if in.Direction != "in" || in.Type != "request" || in.Method != "tools/call" || in.Tool != "read_file" ||
		string(in.Arguments) != `{"path":"notes.txt"}` || string(in.ID) != `"a1"` || in.Stream != "pipe:50" {
		t.Fatalf("request %+v", in)
	}
	if out.Direction != "out" || out.Type != "response" || out.Request == nil || out.Request.Tool != "read_file" ||
		out.Session != in.Session {
		t.Fatalf("response %+v", out)
	}
	st := d.Stats()
	if st.MessagesIn != 1 || st.MessagesOut != 1 || st.Sessions.Unmatched != 0 {
		t.Fatalf("stats %+v", st)
	}
}

func TestDecoderBatchAndNonJSON(t *testing.T) {
	d := NewDecoder(Options{})
	data := "banner before any JSON-RPC: counted, not reported\n" + `[{"jsonrpc":"2.0","id":1,"method":"ping"},{"jsonrpc":"2.0","method":"notifications/x"}]` + "\n" +
		"Server started on stdio\n" + `{"not":"jsonrpc"}` + "\n" + `{"jsonrpc":"2.0","id":2,"method":"ping"}` + "\n"
	ms := messages(decodeAll(t, d, chunk(7, 60, wire.DirIn, wire.FilePipe, 0, 0, data)))
	if len(ms) != 5 || ms[0].Batch != 1 || ms[1].Batch != 2 || ms[1].Type != "notification" || ms[4].Batch != 0 || ms[4].Method != "ping" {
		t.Fatalf("%+v", ms)
	}
	// lines that are not JSON-RPC are reported, as invalid, for protocol rules
	if ms[2].Type != "invalid" || ms[2].Raw != "Server started on stdio" || ms[3].Type != "invalid" || ms[3].Raw != `{"not":"jsonrpc"}` {
		t.Fatalf("%+v %+v", ms[2], ms[3])
	}
	if st := d.Stats(); st.NonJSON != 3 {
		t.Fatalf("non-JSON %d", st.NonJSON)
	}
	// a line over the cap that does not begin like JSON-RPC is not a message
	d2 := NewDecoder(Options{MaxMessage: 16})
	ping := `{"jsonrpc":"2.0","id":1,"method":"ping"}` + "\n"
	if ms := messages(decodeAll(t, d2, chunk(7, 61, wire.DirIn, wire.FilePipe, 0, 0, ping+strings.Repeat("log ", 20)+"\n"))); len(ms) != 2 || ms[1].Type != "invalid" || ms[1].Size != 80 || d2.Stats().NonJSON != 1 {
		t.Fatalf("%+v %+v", ms, d2.Stats())
	}
	// a truncated response is typed from its fields
	d3 := NewDecoder(Options{MaxMessage: 40})
	ms = messages(decodeAll(t, d3, chunk(7, 62, wire.DirOut, wire.FilePipe, 1, 0, `{"jsonrpc":"2.0","id":4,"result":{"content":"`+strings.Repeat("a", 100)+`"}}`+"\n")))
	if len(ms) != 1 || ms[0].Type != "response" || !ms[0].Truncated {
		t.Fatalf("%+v", ms)
	}
}

func TestDecoderOnlyStdioFds(t *testing.T) {
	d := NewDecoder(Options{})
	msg := `{"jsonrpc":"2.0","id":1,"method":"ping"}` + "\n"
	ms := messages(decodeAll(t, d,
		chunk(7, 90, wire.DirOut, wire.FilePipe, 2, 0, `{"jsonrpc":"2.0","error":{"code":1}}`+"\n"), // stderr
		chunk(7, 91, wire.DirIn, wire.FilePipe, 21, 0, msg),                                         // a child's pipe
		chunk(7, 92, wire.DirIn, wire.FilePipe, 0, 0, msg),
	))
	if len(ms) != 1 || ms[0].Stream != "pipe:92" {
		t.Fatalf("%+v", ms)
	}
	if st := d.Stats(); st.PipeBytes == 0 || st.NonJSON != 0 {
		t.Fatalf("stats %+v", st)
	}
}

// TestDecoderOutSessionFollowsWriterStdin: a server process writes into the
// session of the stdin it reads, even when another stream of the same
// server spoke last.
func TestDecoderOutSessionFollowsWriterStdin(t *testing.T) {
	d := NewDecoder(Options{})
	req := `{"jsonrpc":"2.0","id":1,"method":"ping"}` + "\n"
	ms := messages(decodeAll(t, d,
		chunk(7, 100, wire.DirIn, wire.FilePipe, 0, 0, req), // server process 7
		chunk(8, 200, wire.DirIn, wire.FilePipe, 0, 0, req), // another process of the same server
		chunk(7, 101, wire.DirOut, wire.FilePipe, 1, 0, `{"jsonrpc":"2.0","id":1,"result":{}}`+"\n"),
	))
	if len(ms) != 3 || ms[2].Session != "stdio:100" || ms[2].Request == nil {
		t.Fatalf("%+v", ms[2])
	}
}

func TestSessionsCancelAndEvict(t *testing.T) {
	s := NewSessions(3)
	req := func(id string) *Message {
		return &Message{Type: "request", Method: "tools/call", ID: json.RawMessage(id), Session: "s", Direction: "in"}
	}
	for _, id := range []string{"1", "2", "3", "4"} {
		s.pair(req(id))
	}
	if s.Pending() != 3 || s.Stats.Evicted != 1 {
		t.Fatalf("pending %d stats %+v", s.Pending(), s.Stats)
	}
	s.pair(&Message{Type: "notification", Method: "notifications/cancelled", Session: "s", Direction: "in",
		Params: json.RawMessage(`{"requestId":3}`)})
	resp := &Message{Type: "response", ID: json.RawMessage("2"), Session: "s", Direction: "out"}
	s.pair(resp)
	late := &Message{Type: "response", ID: json.RawMessage("1"), Session: "s", Direction: "out"}
	s.pair(late)
	if s.Pending() != 1 || s.Stats.Cancelled != 1 || resp.Request == nil || late.Request != nil || s.Stats.Unmatched != 1 {
		t.Fatalf("pending %d stats %+v", s.Pending(), s.Stats)
	}
	// many answered requests do not grow the age queue without bound
	for i := 0; i < 10000; i++ {
		id := json.RawMessage(fmt.Sprint(100 + i))
		s.pair(&Message{Type: "request", ID: id, Session: "s", Direction: "in"})
		s.pair(&Message{Type: "response", ID: id, Session: "s", Direction: "out"})
	}
	if len(s.order) > 1100 {
		t.Fatalf("age queue holds %d entries for %d pending", len(s.order), s.Pending())
	}
}

func TestDecoderSockets(t *testing.T) {
	d := NewDecoder(Options{})
	msg := `{"jsonrpc":"2.0","id":1,"method":"ping"}` + "\n"
	// a socketpair on fd 0 is stdio (Node clients); a socket on fd 9 is not
	ms := messages(decodeAll(t, d,
		chunk(7, 70, wire.DirIn, wire.FileSock, 0, 0, msg),
		chunk(7, 71, wire.DirIn, wire.FileSock, 9, 0, "GET / HTTP/1.1\r\n\r\n"),
	))
	if len(ms) != 1 || ms[0].Stream != "socket:70" {
		t.Fatalf("%+v", ms)
	}
	if st := d.Stats(); st.HTTP.Requests != 1 || st.HTTP.Connections != 1 {
		t.Fatalf("http %+v", st.HTTP)
	}
}

func TestDecoderTruncatedAndFragments(t *testing.T) {
	d := NewDecoder(Options{MaxMessage: 64})
	long := `{"jsonrpc":"2.0","id":9,"method":"tools/call","params":{"name":"x","arguments":{"data":"` + strings.Repeat("z", 200) + `"}}}` + "\n"
	ms := messages(decodeAll(t, d, chunk(7, 80, wire.DirIn, wire.FilePipe, 0, 0, long)))
	if len(ms) != 1 || !ms[0].Truncated || ms[0].Method != "tools/call" || string(ms[0].ID) != "9" || ms[0].Size != len(long)-1 {
		t.Fatalf("%+v", ms)
	}
	// after a gap on a line boundary, a fragment that does not parse is dropped and counted
	d2 := NewDecoder(Options{})
	evs := decodeAll(t, d2,
		chunk(7, 81, wire.DirIn, wire.FilePipe, 0, 0, `{"jsonrpc":"2.0","id":1,"method":"a"}`+"\n"),
		chunk(7, 81, wire.DirIn, wire.FilePipe, 0, 100, `"params":{}}`+"\n"+`{"jsonrpc":"2.0","id":2,"method":"b"}`+"\n"),
	)
	d2.Flush(func(e Event) { evs = append(evs, e) })
	ms = messages(evs)
	if len(ms) != 2 || ms[0].Method != "a" || ms[1].Method != "b" {
		t.Fatalf("%+v", ms)
	}
	if st := d2.Stats(); st.Fragments != 1 || st.NonJSON != 0 {
		t.Fatalf("stats %+v", st)
	}
}

func TestDecoderRejectsBadRecords(t *testing.T) {
	d := NewDecoder(Options{})
	for _, b := range [][]byte{nil, {1, 2}, make([]byte, 90)} {
		if err := d.Record(b, func(Event) {}); err == nil {
			t.Errorf("record %v accepted", b)
		}
	}
	if d.Stats().BadRecords != 3 {
		t.Fatal(d.Stats())
	}
}

// FuzzRecord: arbitrary bytes as a record never panic the decoder.
func FuzzRecord(f *testing.F) {
	f.Add(chunk(1, 2, 0, wire.FilePipe, 0, 0, `{"jsonrpc":"2.0","id":1,"method":"x"}`+"\n"))
	f.Add(wire.MarshalEffect(wire.EffectFixed{H: wire.Header{Kind: uint8(wire.KindOpen)}}, []byte("/x"), []byte("y")))
	f.Fuzz(func(t *testing.T, b []byte) {
		d := NewDecoder(Options{MaxMessage: 1024})
		_ = d.Record(b, func(Event) {})
		d.Flush(func(Event) {})
	})
}

// FuzzDecoderNoSplice sends numbered JSON-RPC messages through the decoder
// in fuzzed pieces, losing some. Every message that comes out must be one
// that went in, byte for byte: lost bytes may lose messages, never merge them.
func FuzzDecoderNoSplice(f *testing.F) {
	f.Add(uint8(10), []byte{5, 60, 7}, uint8(3), "pad")
	f.Add(uint8(3), []byte{1, 1, 1}, uint8(0), "{}\n[]")
	f.Fuzz(func(t *testing.T, n uint8, cuts []byte, drop uint8, pad string) {
		var stream strings.Builder
		sent := map[string]string{}
		for i := 0; i < int(n); i++ {
			p, _ := json.Marshal(map[string]string{"pad": strings.Repeat(pad, i%4)})
			id := fmt.Sprint(i)
			sent[id] = string(p)
			fmt.Fprintf(&stream, `{"jsonrpc":"2.0","id":%s,"method":"m","params":%s}`+"\n", id, p)
		}
		s := stream.String()
		d := NewDecoder(Options{MaxMessage: 1 << 16})
		var got []*Message
		emit := func(e Event) {
			if m, ok := e.(*Message); ok {
				got = append(got, m)
			}
		}
		off := 0
		for i := 0; off < len(s); i++ {
			step := 7
			if len(cuts) > 0 {
				step = int(cuts[i%len(cuts)]) + 1
			}
			end := min(off+step, len(s))
			if drop == 0 || i%(int(drop)+1) != int(drop) {
				_ = d.Record(chunk(1, 9, 0, wire.FilePipe, 0, uint64(off), s[off:end]), emit)
			}
			off = end
		}
		d.Flush(emit)
		for _, m := range got {
			want, ok := sent[string(m.ID)]
			if !ok || m.Method != "m" || string(m.Params) != want {
				t.Fatalf("spliced or corrupt message: id %s params %s", m.ID, m.Params)
			}
		}
		if drop == 0 && len(got) != int(n) {
			t.Fatalf("lossless stream: %d of %d messages", len(got), n)
		}
	})
}

// TestDecoderLateChunksAfterExit: the exit of a process can be decoded
// before its last chunks (two rings); its session must survive that.
func TestDecoderLateChunksAfterExit(t *testing.T) {
	d := NewDecoder(Options{})
	exit := wire.EffectFixed{H: hdr(7)}
	exit.H.Kind = uint8(wire.KindExit)
	ms := messages(decodeAll(t, d,
		chunk(7, 300, wire.DirIn, wire.FilePipe, 0, 0, `{"jsonrpc":"2.0","id":1,"method":"ping"}`+"\n"),
		wire.MarshalEffect(exit),
		chunk(7, 301, wire.DirOut, wire.FilePipe, 1, 0, `{"jsonrpc":"2.0","id":1,"result":{}}`+"\n"),
	))
	if len(ms) != 2 || ms[1].Request == nil {
		t.Fatalf("the response after the exit was not paired: %+v", ms)
	}
	d.Tick(uint64(10*time.Second), func(Event) {})
	if len(d.sess.input) != 0 || len(d.exits) != 0 {
		t.Fatalf("state of the exited process kept: %v %v", d.sess.input, d.exits)
	}
}

// TestDecoderServerRequestsAndProgress: on stdio, a server asks the client
// (sampling, elicitation) in the middle of a tool call and reports progress
// on it; each answer pairs with its request, and progress points at the
// call it reports on.
func TestDecoderServerRequestsAndProgress(t *testing.T) {
	d := NewDecoder(Options{})
	in := []string{
		`{"jsonrpc":"2.0","id":"c1","method":"tools/call","params":{"name":"summarise","arguments":{},"_meta":{"progressToken":"tok-1"}}}`,
		`{"jsonrpc":"2.0","id":0,"result":{"role":"assistant","content":{"type":"text","text":"ok"}}}`,
		`{"jsonrpc":"2.0","id":1,"result":{"action":"accept","content":{"name":"x"}}}`,
	}
	out := []string{
		`{"jsonrpc":"2.0","id":0,"method":"sampling/createMessage","params":{"messages":[],"maxTokens":10}}`,
		`{"jsonrpc":"2.0","method":"notifications/progress","params":{"progressToken":"tok-1","progress":1,"total":2}}`,
		`{"jsonrpc":"2.0","id":1,"method":"elicitation/create","params":{"message":"name?","requestedSchema":{}}}`,
		`{"jsonrpc":"2.0","id":"c1","result":{"content":[]}}`,
		`{"jsonrpc":"2.0","method":"notifications/progress","params":{"progressToken":"tok-1","progress":2}}`,
	}
	var recs [][]byte
	var offIn, offOut uint64
	push := func(dir uint8, s string) {
		if dir == wire.DirIn {
			recs = append(recs, chunk(7, 400, dir, wire.FilePipe, 0, offIn, s+"\n"))
			offIn += uint64(len(s) + 1)
		} else {
			recs = append(recs, chunk(7, 401, dir, wire.FilePipe, 1, offOut, s+"\n"))
			offOut += uint64(len(s) + 1)
		}
	}
	push(wire.DirIn, in[0])
	push(wire.DirOut, out[0])
	push(wire.DirOut, out[1])
	push(wire.DirIn, in[1])
	push(wire.DirOut, out[2])
	push(wire.DirIn, in[2])
	push(wire.DirOut, out[3])
	push(wire.DirOut, out[4])
	ms := messages(decodeAll(t, d, recs...))
	if len(ms) != 8 {
		t.Fatalf("%d messages", len(ms))
	}
	byOrder := func(i int) *RequestRef { return ms[i].Request }
	if r := byOrder(2); r == nil || r.Tool != "summarise" || string(r.ID) != `"c1"` {
		t.Fatalf("progress not linked to its call: %+v", r)
	}
	if r := byOrder(3); r == nil || r.Method != "sampling/createMessage" || ms[3].Direction != "in" {
		t.Fatalf("sampling answer: %+v", ms[3])
	}
	if r := byOrder(5); r == nil || r.Method != "elicitation/create" {
		t.Fatalf("elicitation answer: %+v", ms[5])
	}
	if r := byOrder(6); r == nil || r.Tool != "summarise" {
		t.Fatalf("call answer: %+v", ms[6])
	}
	if byOrder(7) != nil {
		t.Fatalf("progress after the call ended still linked: %+v", byOrder(7))
	}
	if d.sess.Pending() != 0 || len(d.sess.progress) != 0 {
		t.Fatalf("pending %d, tokens %d", d.sess.Pending(), len(d.sess.progress))
	}
}
