package e2e

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/mcpsec/sensor/internal/testutil"
)

// tracedListener starts `sensor trace -o json --out FILE -- argv...` for a
// server that prints "LISTENING host:port" (or "LISTENING port") on stdout,
// and returns its address and a function that ends the trace and returns
// its lines.
func tracedListener(t *testing.T, dir string, env []string, argv ...string) (string, func() []line) {
	t.Helper()
	return tracedListenerFlags(t, dir, env, nil, argv...)
}

// tracedListenerFlags is tracedListener with more sensor trace flags.
func tracedListenerFlags(t *testing.T, dir string, env, flags []string, argv ...string) (string, func() []line) {
	t.Helper()
	stdout, stderr, stop := startTraced(t, dir, env, flags, argv...)
	addr := make(chan string, 1)
	go func() {
		br := bufio.NewReader(stdout)
		l, _ := br.ReadString('\n')
		addr <- strings.TrimSpace(strings.TrimPrefix(l, "LISTENING "))
		_, _ = io.Copy(io.Discard, br)
	}()
	var a string
	select {
	case a = <-addr:
	case <-time.After(60 * time.Second):
		t.Fatalf("the server did not say where it listens\n%s", stderr.String())
	}
	if a == "" {
		t.Fatalf("the server exited before listening\n%s", stderr.String())
	}
	if !strings.Contains(a, ":") {
		a = "127.0.0.1:" + a
	}
	return a, stop
}

// startTraced starts `sensor trace -o json --out FILE -- argv...` and
// returns the command's stdout, the sensor's stderr, and a function that
// ends the trace (SIGINT) and returns its lines.
func startTraced(t *testing.T, dir string, env, flags []string, argv ...string) (io.Reader, *bytes.Buffer, func() []line) {
	t.Helper()
	testutil.RequireBPF(t)
	out := filepath.Join(t.TempDir(), "trace.jsonl")
	args := append(append([]string{"trace", "-o", "json", "--out", out}, flags...), "--")
	args = append(args, argv...)
	cmd := exec.Command(bin(t, "sensor"), args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	stderr := &bytes.Buffer{}
	cmd.Stderr = stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		if t.Failed() {
			t.Logf("sensor stderr:\n%s", stderr.String())
		}
	})
	var once sync.Once
	var lines []line
	stop := func() []line {
		once.Do(func() {
			_ = cmd.Process.Signal(syscall.SIGINT)
			done := make(chan error, 1)
			go func() { done <- cmd.Wait() }()
			select {
			case <-done:
			case <-time.After(30 * time.Second):
				t.Fatalf("the sensor did not stop\n%s", stderr.String())
			}
			lines = readTrace(t, out)
		})
		return lines
	}
	return stdout, stderr, stop
}

func (l line) obj(k string) line {
	m, _ := l[k].(map[string]any)
	return line(m)
}

// httpMessages are the trace's messages that came over HTTP.
func httpMessages(ls []line) []line {
	return filter(ls, func(l line) bool { return l.str("kind") == "message" && l["http"] != nil })
}

func connectHTTP(t *testing.T, ctx context.Context, tr mcp.Transport) *mcp.ClientSession {
	t.Helper()
	c := mcp.NewClient(&mcp.Implementation{Name: "e2e", Version: "1"}, nil)
	s, err := c.Connect(ctx, tr, &mcp.ClientSessionOptions{ProtocolVersion: "2025-11-25"})
	if err != nil {
		t.Fatalf("connecting over HTTP: %v", err)
	}
	return s
}

// checkPairedCalls checks that each session's echo calls came back paired
// with their own responses: the response that answers "echo" in session S
// carries the text S's request sent, though both sessions use the same ids.
func checkPairedCalls(t *testing.T, msgs []line, want map[string]bool) {
	t.Helper()
	reqText := map[string]string{} // session/id -> text sent
	for _, m := range msgs {
		if m.str("method") == "tools/call" && m.str("tool") == "echo" {
			reqText[m.str("session")+"/"+fmt.Sprint(m["id"])] = m.obj("arguments").str("text")
		}
	}
	paired := map[string]bool{}
	ids := map[string]int{}
	for _, m := range msgs {
		r := m.obj("request")
		if r == nil || r.str("tool") != "echo" {
			continue
		}
		key := m.str("session") + "/" + fmt.Sprint(m["id"])
		sent, ok := reqText[key]
		if !ok {
			t.Errorf("response %s has no request in its session", key)
			continue
		}
		if !strings.Contains(fmt.Sprint(m["result"]), sent) {
			t.Errorf("response %s paired with the wrong request: sent %q, result %v", key, sent, m["result"])
		}
		paired[sent] = true
		ids[fmt.Sprint(m["id"])]++
	}
	for text := range want {
		if !paired[text] {
			t.Errorf("no paired response for the call that sent %q", text)
		}
	}
	reused := false
	for _, n := range ids {
		reused = reused || n > 1
	}
	if !reused {
		t.Errorf("the sessions did not reuse ids; the test proves nothing: %v", ids)
	}
}

// TestStreamableHTTP: a Go SDK server on loopback, traced, answers two
// client sessions at once, with SSE replies and with JSON replies. Every
// message shows its HTTP exchange and session; responses pair with their
// own session's requests though the ids repeat.
func TestStreamableHTTP(t *testing.T) {
	for _, mode := range []string{"sse", "json"} {
		t.Run(mode, func(t *testing.T) {
			root := t.TempDir()
			if err := os.WriteFile(filepath.Join(root, "notes.txt"), []byte("hello over http"), 0o644); err != nil {
				t.Fatal(err)
			}
			argv := []string{bin(t, "toolbox"), "-http", "127.0.0.1:0"}
			if mode == "json" {
				argv = append(argv, "-json")
			}
			addr, stop := tracedListener(t, root, nil, append(argv, root)...)
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			endpoint := "http://" + addr + "/mcp"
			a := connectHTTP(t, ctx, &mcp.StreamableClientTransport{Endpoint: endpoint})
			b := connectHTTP(t, ctx, &mcp.StreamableClientTransport{Endpoint: endpoint})
			var wg sync.WaitGroup
			want := map[string]bool{}
			for i, s := range []*mcp.ClientSession{a, b} {
				for j := 0; j < 3; j++ {
					text := fmt.Sprintf("session %d call %d", i, j)
					want[text] = true
					wg.Add(1)
					go func() {
						defer wg.Done()
						if got := callText(t, ctx, s, "echo", map[string]any{"text": text}); got != text {
							t.Errorf("echo %q = %q", text, got)
						}
					}()
				}
			}
			wg.Wait()
			if got := callText(t, ctx, a, "read_file", map[string]any{"path": "notes.txt"}); got != "hello over http" {
				t.Fatalf("read_file = %q", got)
			}
			a.Close()
			b.Close()
			ls := stop()
			msgs := httpMessages(ls)
			if len(msgs) == 0 {
				t.Fatalf("no HTTP messages in the trace (%d lines)", len(ls))
			}
			sessions := map[string]bool{}
			for _, m := range msgs {
				h := m.obj("http")
				if h.str("transport") != "streamable-http" || !strings.HasPrefix(m.str("stream"), "socket:") {
					t.Errorf("message without its transport: %v", m)
				}
				if m.str("method") == "tools/call" {
					sessions[m.str("session")] = true
					if h.str("method") != "POST" || h.str("target") != "/mcp" || h.str("session_id") == "" || h.str("protocol_version") != "2025-11-25" || h.str("host") != addr {
						t.Errorf("tools/call without its HTTP headers: %v", h)
					}
				}
			}
			if len(sessions) != 2 {
				t.Errorf("tools/call in %d sessions, want 2: %v", len(sessions), sessions)
			}
			wantType := map[string]string{"sse": "text/event-stream", "json": "application/json"}[mode]
			inits := filter(msgs, func(l line) bool { return l.obj("request").str("method") == "initialize" })
			if len(inits) != 2 {
				t.Fatalf("%d initialize responses, want 2", len(inits))
			}
			for _, m := range inits {
				if m.str("protocol_version") != "2025-11-25" || m.obj("http").num("status") != 200 || !strings.HasPrefix(m.obj("http").str("content_type"), wantType) {
					t.Errorf("initialize response: %v", m)
				}
			}
			checkPairedCalls(t, msgs, want)
			// the read_file call's effect: the file it opened
			opens := filter(ls, func(l line) bool {
				return l.str("kind") == "effect" && l.str("type") == "open" && l.str("path") == filepath.Join(root, "notes.txt")
			})
			if len(opens) == 0 {
				t.Error("the open of notes.txt is not in the trace")
			}
			st := stats(t, ls).obj("decoder").obj("http")
			if st.num("requests") == 0 || st.num("gaps") != 0 || st.num("lost_bodies") != 0 || st.num("malformed") != 0 {
				t.Errorf("http stats: %v", st)
			}
		})
	}
}

// TestHTTPLongCallAndLargeResult: a tool call that runs longer than 10 s
// still pairs with its response, and a 16 MiB result arrives whole, on
// Streamable HTTP and on stdio.
func TestHTTPLongCallAndLargeResult(t *testing.T) {
	const size = 16 << 20
	root := t.TempDir()
	addr, stop := tracedListener(t, root, nil, bin(t, "toolbox"), "-http", "127.0.0.1:0", "-json", root)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	s := connectHTTP(t, ctx, &mcp.StreamableClientTransport{Endpoint: "http://" + addr + "/mcp"})
	if got := callText(t, ctx, s, "sleep", map[string]any{"ms": 10500}); got != "slept" {
		t.Fatalf("sleep = %q", got)
	}
	if got := callText(t, ctx, s, "big", map[string]any{"bytes": size}); len(got) != size {
		t.Fatalf("big = %d bytes", len(got))
	}
	s.Close()
	ls := stop()
	var slept, big line
	for _, m := range httpMessages(ls) {
		switch m.obj("request").str("tool") {
		case "sleep":
			slept = m
		case "big":
			big = m
		}
	}
	if slept == nil || slept.obj("request").num("latency_ms") < 10500 {
		t.Errorf("the long call's response is not paired with its request: %v", slept)
	}
	if big == nil || big["truncated"] == true || big.num("size") < size {
		t.Fatalf("the 16 MiB result did not arrive whole: %.300v", big)
	}
	content, _ := big.obj("result")["content"].([]any)
	if len(content) != 1 || len(line(content[0].(map[string]any)).str("text")) != size {
		t.Errorf("the 16 MiB result's text is not whole")
	}
	st := stats(t, ls)
	if st.num("drops") != 0 || st.obj("decoder").obj("http").num("oversized") != 0 {
		t.Errorf("stats: drops %v http %v", st["drops"], st.obj("decoder")["http"])
	}
}

// TestLegacySSE: the HTTP+SSE transport of 2024-11-05 (the endpoint event,
// then POSTs to it) from the Go SDK, on loopback.
func TestLegacySSE(t *testing.T) {
	root := t.TempDir()
	addr, stop := tracedListener(t, root, nil, bin(t, "toolbox"), "-sse", "127.0.0.1:0", root)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	s := connectHTTP(t, ctx, &mcp.SSEClientTransport{Endpoint: "http://" + addr + "/sse"})
	if got := callText(t, ctx, s, "echo", map[string]any{"text": "legacy"}); got != "legacy" {
		t.Fatalf("echo = %q", got)
	}
	s.Close()
	msgs := httpMessages(stop())
	var req, resp line
	for _, m := range msgs {
		if m.obj("http").str("transport") != "sse" {
			t.Errorf("legacy message not marked sse: %v", m)
		}
		if m.str("tool") == "echo" {
			req = m
		}
		if m.obj("request").str("tool") == "echo" {
			resp = m
		}
	}
	if req == nil || resp == nil || req.str("session") != resp.str("session") || !strings.Contains(fmt.Sprint(resp["result"]), "legacy") {
		t.Fatalf("legacy call not paired:\n%v\n%v", req, resp)
	}
	if req.obj("http").str("method") != "POST" || resp.obj("http").str("method") != "GET" {
		t.Errorf("request should come by POST, response on the GET stream: %v / %v", req.obj("http"), resp.obj("http"))
	}
}

// selfSigned writes a certificate and key for 127.0.0.1 and returns their
// paths and a pool that trusts the certificate.
func selfSigned(t *testing.T) (string, string, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certPath, keyPath := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyPath, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return certPath, keyPath, pool
}

// TestTLSNodeServer: an MCP server on the TypeScript SDK (pinned, from
// npm) terminates TLS itself in node. The plaintext comes from uprobes on
// the OpenSSL inside the node binary, found through the process's maps;
// the ciphertext is counted, not captured.
func TestTLSNodeServer(t *testing.T) {
	dir := npmFixture(t, "npm-tls", filepath.Join("node_modules", "@modelcontextprotocol", "sdk", "package.json"))
	cert, key, pool := selfSigned(t)
	secret := filepath.Join(t.TempDir(), "secret.txt")
	if err := os.WriteFile(secret, []byte("tls plaintext seen"), 0o644); err != nil {
		t.Fatal(err)
	}
	addr, stop := tracedListener(t, dir, []string{"MCPSEC_TLS_CERT=" + cert, "MCPSEC_TLS_KEY=" + key, "MCPSEC_LISTEN_PORT=0"},
		"node", "server.mjs")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	endpoint := "https://" + addr + "/mcp"
	a := connectHTTP(t, ctx, &mcp.StreamableClientTransport{Endpoint: endpoint, HTTPClient: hc})
	b := connectHTTP(t, ctx, &mcp.StreamableClientTransport{Endpoint: endpoint, HTTPClient: hc})
	want := map[string]bool{}
	for i, s := range []*mcp.ClientSession{a, b} {
		text := fmt.Sprintf("over tls %d", i)
		want[text] = true
		if got := callText(t, ctx, s, "echo", map[string]any{"text": text}); got != text {
			t.Fatalf("echo = %q", got)
		}
	}
	if got := callText(t, ctx, a, "read_file", map[string]any{"path": secret}); got != "tls plaintext seen" {
		t.Fatalf("read_file = %q", got)
	}
	a.Close()
	b.Close()
	ls := stop()
	msgs := filter(httpMessages(ls), func(l line) bool { return strings.HasPrefix(l.str("stream"), "tls:") })
	if len(msgs) == 0 {
		t.Fatalf("no TLS plaintext messages in the trace; stats: %v", stats(t, ls))
	}
	checkPairedCalls(t, msgs, want)
	var read line
	for _, m := range msgs {
		if m.str("tool") == "read_file" {
			read = m
		}
	}
	if read == nil || read.obj("arguments").str("path") != secret || read.obj("http").str("session_id") == "" {
		t.Errorf("read_file over TLS: %v", read)
	}
	st := stats(t, ls)
	k := st.obj("kernel")
	if k.num("tls_calls") == 0 || k.num("tls_ciphertext_bytes") == 0 {
		t.Errorf("kernel TLS counters: %v", k)
	}
	files, _ := st["tls_uprobes"].([]any)
	if len(files) == 0 || !strings.Contains(fmt.Sprint(files), "node") {
		t.Errorf("uprobes not on node's OpenSSL: %v", files)
	}
	// no ciphertext reached the HTTP parser
	if h := st.obj("decoder").obj("http"); h.num("tls_ciphertext_bytes") != 0 || h.num("malformed") != 0 {
		t.Errorf("http stats: %v", h)
	}
}

// pyTLSServer is a one-file HTTPS JSON-RPC responder on Python's ssl
// module, which dlopens the system's libssl.so.3 (through _ssl) and uses
// SSL_read_ex / SSL_write_ex.
const pyTLSServer = `
import http.server, json, ssl, sys
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_POST(self):
        req = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        body = json.dumps({"jsonrpc": "2.0", "id": req["id"], "result": {"content": [{"type": "text", "text": "answered over libssl"}]}}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a):
        pass
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(sys.argv[1], sys.argv[2])
srv = http.server.HTTPServer(("127.0.0.1", 0), H)
srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
print("LISTENING %d" % srv.server_address[1], flush=True)
srv.serve_forever()
`

// TestTLSLibssl: a server whose OpenSSL is the system's libssl.so.3,
// loaded as a library (Python's ssl module), gets its uprobes from the file
// its maps show; a tools/call sent over TLS and its response are decoded
// from plaintext and paired.
func TestTLSLibssl(t *testing.T) {
	python, err := exec.LookPath("python3")
	if err != nil {
		t.Fatal("python3 is needed for this test")
	}
	cert, key, pool := selfSigned(t)
	addr, stop := tracedListener(t, t.TempDir(), nil, python, "-c", pyTLSServer, cert, key)
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	body := `{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"over_libssl","arguments":{}}}`
	req, _ := http.NewRequest("POST", "https://"+addr+"/mcp", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Mcp-Session-Id", "L")
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(b), "answered over libssl") {
		t.Fatalf("response %s", b)
	}
	ls := stop()
	var got, answer line
	for _, m := range httpMessages(ls) {
		if m.str("tool") == "over_libssl" {
			got = m
		}
		if m.obj("request").str("tool") == "over_libssl" {
			answer = m
		}
	}
	if got == nil || !strings.HasPrefix(got.str("stream"), "tls:") || got.str("session") != "http:L" {
		t.Fatalf("the request over libssl is not in the trace: %v; stats %v", got, stats(t, ls))
	}
	if answer == nil || answer.obj("http").num("status") != 200 {
		t.Errorf("the response over libssl is not paired: %v", answer)
	}
	files, _ := stats(t, ls)["tls_uprobes"].([]any)
	if !strings.Contains(fmt.Sprint(files), "libssl.so") {
		t.Errorf("uprobes not on libssl: %v", files)
	}
}
