package gateway

import (
	"encoding/json"
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
)

const revPolicy = `version: "1"
policies:
  - id: p
    tools: {deny: ["evil*"]}
`

func TestRevCRSplit(t *testing.T) {
	r := newRig(t, revPolicy)
	r.fromClient("{\"jsonrpc\":\"2.0\",\"method\":\"notifications/x\",\"x\":\r{\"jsonrpc\":\"2.0\",\"id\":7,\"method\":\"tools/call\",\"params\":{\"name\":\"evil\"}}\r}")
	t.Logf("server got %q client got %q", take(r.server), take(r.client))
}

func TestRevIDNormalize(t *testing.T) {
	r := newRig(t, revPolicy)
	r.fromClient(`{"jsonrpc":"2.0","id":1,"method":"tools/list"}`)
	r.fromServer(`{"jsonrpc":"2.0","id":1.0,"result":{"tools":[{"name":"evil"},{"name":"ok"}]}}`)
	t.Logf("client got %q", take(r.client))
	r.fromClient(`{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"ok"}}`)
	r.fromServer(`{"jsonrpc":"2.0","id":"2","result":{"content":[{"type":"text","text":"aws_secret_access_key=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY AKIAIOSFODNN7EXAMPLE"}]}}`)
	t.Logf("client got %q", take(r.client))
	r.fromClient(`{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"ok"}}`)
	r.fromServer(`{"jsonrpc":"2.0","id":3,"result":{"content":[{"type":"text","text":"aws_secret_access_key=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY AKIAIOSFODNN7EXAMPLE"}]}}`)
	t.Logf("control: client got %q", take(r.client))
}

func TestRevNaNDeep(t *testing.T) {
	r := newRig(t, revPolicy)
	r.fromClient(`{"jsonrpc":"2.0","id":1,"method":"tools/list"}`)
	r.fromServer(`{"jsonrpc":"2.0","id":1,"result":{"tools":[{"name":"evil"}],"x":NaN}}`)
	t.Logf("NaN: client got %q", take(r.client))
	r.fromClient(`{"jsonrpc":"2.0","id":2,"method":"tools/list"}`)
	deep := strings.Repeat("[", 10001) + strings.Repeat("]", 10001)
	r.fromServer(`{"jsonrpc":"2.0","id":2,"result":{"tools":[{"name":"evil"}],"x":` + deep + `}}`)
	out := take(r.client)
	t.Logf("deep: client got evil? %v len %d", strings.Contains(out, "evil"), len(out))
}

func TestRevPendingCap(t *testing.T) {
	r := newRig(t, revPolicy)
	for i := 0; i < 4096; i++ {
		r.fromClient(fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":"ping"}`, 100000+i))
		r.fromClient(fmt.Sprintf(`{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":%d}}`, 100000+i))
	}
	take(r.server)
	r.fromClient(`{"jsonrpc":"2.0","id":1,"method":"tools/list"}`)
	r.fromServer(`{"jsonrpc":"2.0","id":1,"result":{"tools":[{"name":"evil"},{"name":"ok"}]}}`)
	t.Logf("after 4096 unanswered: client got %q", take(r.client))
}

type revPins map[string]string

func (p revPins) Changed(server, tool, hash string) bool {
	h, ok := p[tool]
	return ok && h != hash
}

func TestRevPins(t *testing.T) {
	r := newRig(t, revPolicy)
	r.g.o.Pins = revPins{"add": "pinned-hash", "mul": "pinned-hash2"}
	r.fromClient(`{"jsonrpc":"2.0","id":1,"method":"tools/list"}`)
	r.fromServer(`{"jsonrpc":"2.0","id":1,"result":{"tools":[{"name":"add","description":"now evil"}],"nextCursor":"p2"}}`)
	t.Logf("page1 client %q", take(r.client))
	r.fromClient(`{"jsonrpc":"2.0","id":2,"method":"tools/list","params":{"cursor":"p2"}}`)
	r.fromServer(`{"jsonrpc":"2.0","id":2,"result":{"tools":[{"name":"sub"}]}}`)
	take(r.client)
	r.fromClient(`{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"add"}}`)
	t.Logf("call add after page2: server got %q client %q", take(r.server), take(r.client))
	// case trick
	r.fromClient(`{"jsonrpc":"2.0","id":4,"method":"tools/list"}`)
	r.fromServer(`{"jsonrpc":"2.0","id":4,"result":{"tools":[{"name":"mul","description":"now evil","NAME":"zzz"}]}}`)
	t.Logf("NAME trick: client %q", take(r.client))
}

func TestRevBufAlias(t *testing.T) {
	set, _ := Parse("p", []byte(revPolicy))
	g := New(Options{Policy: set, Server: func() (Server, bool) { return Server{Key: "k"}, true }})
	cr, cw := io.Pipe()
	var clientOut bytes.Buffer
	var mu sync.Mutex
	sw := &lockedBuf{mu: &mu}
	sr, sww := io.Pipe()
	go g.Run(cr, &syncW{&clientOut, &mu}, nopCloser{sw}, sr)
	io.WriteString(cw, `{"jsonrpc":"2.0","id":"request-A","method":"tools/call","params":{"name":"ok"}}`+"\n")
	for i := 0; i < 2000; i++ {
		io.WriteString(cw, `{"jsonrpc":"2.0","method":"notifications/zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz"}`+"\n")
	}
	time.Sleep(200 * time.Millisecond)
	g.mu.Lock()
	for k, v := range g.pending {
		t.Logf("pending key %q stored id %q", k, v.id)
	}
	g.mu.Unlock()
	g.Contain("frozen")
	time.Sleep(50 * time.Millisecond)
	mu.Lock()
	t.Logf("client got after Contain: %q", clientOut.String())
	mu.Unlock()
	cw.Close()
	sww.Close()
}

type lockedBuf struct {
	mu *sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuf) Write(p []byte) (int, error) { l.mu.Lock(); defer l.mu.Unlock(); return l.b.Write(p) }

type syncW struct {
	b  *bytes.Buffer
	mu *sync.Mutex
}

func (s *syncW) Write(p []byte) (int, error) { s.mu.Lock(); defer s.mu.Unlock(); return s.b.Write(p) }

type nopCloser struct{ io.Writer }

func (nopCloser) Close() error { return nil }

func TestRevHTTP(t *testing.T) {
	var lastPath, lastCT string
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		lastPath, lastCT = r.URL.Path, r.Header.Get("Content-Type")
		_ = b
		switch {
		case bytes.Contains(b, []byte("tools/list")):
			w.Header().Set("Content-Type", "text/plain; x=application/json")
			w.Header().Set("Mcp-Session-Id", "S1")
			io.WriteString(w, `{"jsonrpc":"2.0","id":1,"result":{"tools":[{"name":"evil"}]}}`)
		case bytes.Contains(b, []byte("tools/call")):
			w.Header().Set("Content-Type", "text/event-stream")
			io.WriteString(w, "data: {\"jsonrpc\":\"2.0\",\"id\":2,\"result\":{\"content\":[{\"type\":\"text\",\"text\":\"AKIAIOSFODNN7EXAMPLE aws_secret_access_key=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY\"}]}}\r:x\n\n")
		default:
			w.WriteHeader(202)
		}
	}))
	defer up.Close()
	set, _ := Parse("p", []byte(revPolicy))
	u, _ := url.Parse(up.URL + "/mcp")
	h := NewHTTP(HTTPOptions{Options: Options{Policy: set, Server: func() (Server, bool) { return Server{Key: "k"}, true }}, Upstream: u,
		Tokens: map[string]string{"tokentokentoken-a": "alice", "tokentokentoken-b": "bob"}})
	gw := httptest.NewServer(h)
	defer gw.Close()
	do := func(tok, sid, body string) (string, string) {
		req, _ := http.NewRequest("POST", gw.URL+"/mcp", strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+tok)
		req.Header.Set("Content-Type", "application/json; charset=utf-7")
		if sid != "" {
			req.Header.Set("Mcp-Session-Id", sid)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return resp.Header.Get("Content-Type"), string(b)
	}
	ct, b := do("tokentokentoken-a", "", `{"jsonrpc":"2.0","id":1,"method":"tools/list"}`)
	t.Logf("odd content type %q: %q", ct, b)
	ct, b = do("tokentokentoken-a", "", `{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"ok"}}`)
	t.Logf("SSE CR: %q", b)
	_, b = do("tokentokentoken-b", "UNKNOWN-SESSION", `{"jsonrpc":"2.0","method":"notifications/x"}`)
	t.Logf("bob unknown session: %q upstream CT %q path %q", b, lastCT, lastPath)
	_, b = do("tokentokentoken-b", "S1", `{"jsonrpc":"2.0","method":"notifications/x"}`)
	t.Logf("bob S1: %q", b)
}

func TestRevDecisionAlias(t *testing.T) {
	set, _ := Parse("p", []byte(revPolicy))
	var mu sync.Mutex
	var ds []Decision
	g := New(Options{Policy: set, Server: func() (Server, bool) { return Server{Key: "k"}, true },
		Decide: func(d Decision) { mu.Lock(); ds = append(ds, d); mu.Unlock() }})
	var in bytes.Buffer
	in.WriteString(`{"jsonrpc":"2.0","id":"abc","method":"tools/call","params":{"name":"evil"}}` + "\n")
	for i := 0; i < 3000; i++ {
		in.WriteString(`{"jsonrpc":"2.0","method":"notifications/zzzzzzzzzzzzzzzzzzzzzzzzzz"}` + "\n")
	}
	sr, sw := io.Pipe()
	go func() { time.Sleep(100 * time.Millisecond); sw.Close() }()
	g.Run(&in, io.Discard, nopCloser{io.Discard}, sr)
	mu.Lock()
	defer mu.Unlock()
	_, err := json.Marshal(ds[0])
	t.Logf("decision id %q marshal err %v", ds[0].ID, err)
}

func TestRevScanEscapes(t *testing.T) {
	r := newRig(t, revPolicy)
	sec := `AKIAIOSFODNN7EXAMPLE aws_secret_access_key=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY`
	r.fromClient(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"ok"}}`)
	r.fromServer(`{"jsonrpc":"2.0","id":1,"result":{"content":[{"type":"t\u0065xt","t\u0065xt":"` + sec + `"}]}}`)
	t.Logf("escaped: %q", take(r.client))
	r.fromClient(`{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"ok"}}`)
	r.fromServer(`{"jsonrpc":"2.0","id":2,"error":{"code":1,"message":"` + sec + `"}}`)
	t.Logf("error: %q", take(r.client))
	r.fromClient(`{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"ok"}}`)
	r.fromServer(`{"jsonrpc":"2.0","id":3,"result":{"content":[{"type":"resource_link","uri":"file:///x","name":"x","description":"` + sec + `"}]}}`)
	t.Logf("desc: %q", take(r.client))
}

func TestRevIDNull(t *testing.T) {
	r := newRig(t, revPolicy)
	r.fromClient(`{"jsonrpc":"2.0","id":null,"method":"tools/call","params":{"name":"evil"}}`)
	t.Logf("id null: server got %q", take(r.server))
}

func TestRevGlob(t *testing.T) {
	_, err := Parse("p", []byte("version: x\npolicies:\n  - id: a\n    prompts: {deny: [\"secret_[\"]}\n    when:\n      - condition: server.taint\n        deny_tools: [\"*\"]\n"))
	t.Logf("bad glob in prompts.deny / typo in when: err=%v", err)
	t.Logf("glob(\"*/**\",\"a/b\")=%v glob(\"file:///srv/**\",\"file:///srv/../etc/passwd\")=%v", glob("*/**", "a/b"), glob("file:///srv/**", "file:///srv/../etc/passwd"))
	set, _ := Parse("p", []byte("version: x\npolicies:\n  - id: a\n    when:\n      - condition: server.taint\n        deny_tools: [\"*\"]\n"))
	ok, why := set.Policies[0].Tool("send", nil, Threat{Tainted: true})
	t.Logf("typo narrowing: allowed=%v %s", ok, why)
}

func TestRevDecisionRace(t *testing.T) {
	set, _ := Parse("p", []byte(revPolicy))
	ch := make(chan Decision, 10)
	done := make(chan struct{})
	go func() {
		for d := range ch {
			for i := 0; i < 200; i++ {
				_, _ = json.Marshal(d)
				time.Sleep(time.Millisecond)
			}
		}
		close(done)
	}()
	g := New(Options{Policy: set, Server: func() (Server, bool) { return Server{Key: "k"}, true }, Decide: func(d Decision) { ch <- d }})
	cr, cw := io.Pipe()
	sr, sw := io.Pipe()
	go g.Run(cr, io.Discard, nopCloser{io.Discard}, sr)
	io.WriteString(cw, `{"jsonrpc":"2.0","id":"abc","method":"tools/call","params":{"name":"evil"}}`+"\n")
	for i := 0; i < 3000; i++ {
		io.WriteString(cw, `{"jsonrpc":"2.0","method":"notifications/zzzzzzzzzzzzzzzzzzzzzzzzzz"}`+"\n")
	}
	cw.Close()
	time.Sleep(100 * time.Millisecond)
	close(ch)
	<-done
	sw.Close()
}
