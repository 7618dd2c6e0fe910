package dashboard

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

const view, act = "view-token-0123456789abcdef", "act-token-0123456789abcdef0"

func server(t *testing.T) (*httptest.Server, *[]string) {
	t.Helper()
	var asked []string
	d, err := New(Options{Token: view, ActToken: act, Ask: func(cmd string, args json.RawMessage, by string) (any, error) {
		asked = append(asked, cmd+" "+string(args)+" "+by)
		return map[string]string{"result": cmd + " done"}, nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	d.Timeline().Add("s1", []byte(`{"kind":"effect"}`))
	srv := httptest.NewServer(d.Handler())
	t.Cleanup(srv.Close)
	return srv, &asked
}

func do(t *testing.T, method, url, token, ctype, body string, host string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(method, url, strings.NewReader(body))
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	if host != "" {
		req.Host = host
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// Looking needs a token, acting the act token and JSON; a foreign Host is
// refused (DNS rebinding); the page is served with a strict CSP.
func TestAccess(t *testing.T) {
	srv, asked := server(t)
	cases := []struct {
		method, path, token, ctype, host string
		want                             int
	}{
		{"GET", "/api/posture", "", "", "", 401},
		{"GET", "/api/posture", "wrong-token-0123456789", "", "", 401},
		{"GET", "/api/posture", view, "", "", 200},
		{"GET", "/api/contain", view, "", "", 404}, // actions are POSTs
		{"GET", "/api/nosuch", view, "", "", 404},
		{"POST", "/api/contain", view, "application/json", "", 403},
		{"POST", "/api/contain", act, "text/plain", "", 415},
		{"POST", "/api/contain", act, "application/json", "", 200},
		{"POST", "/api/verdict", act, "application/json", "", 200},
		{"GET", "/api/posture", view, "", "evil.example:9465", 403},
		{"GET", "/api/timeline?server=s1", view, "", "", 200},
	}
	for _, c := range cases {
		code, body := do(t, c.method, srv.URL+c.path, c.token, c.ctype, `{"pid":1,"reason":"r"}`, c.host)
		if code != c.want {
			t.Errorf("%s %s (token %q, %s, host %q): %d %s, want %d", c.method, c.path, c.token, c.ctype, c.host, code, body, c.want)
		}
	}
	if len(*asked) != 3 || !strings.HasPrefix((*asked)[1], "contain ") || !strings.HasSuffix((*asked)[1], " dashboard") {
		t.Errorf("asked %v", *asked)
	}
	req, _ := http.NewRequest("GET", srv.URL+"/", nil)
	req.Header.Set("Authorization", "Bearer "+view)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'self'") {
		t.Errorf("CSP %q", csp)
	}
	// the page's files need no token (they hold nothing); the live stream
	// takes it in its query (an EventSource sends no headers); no cookie
	if code, _ := do(t, "GET", srv.URL+"/app.js", "", "", "", ""); code != 200 {
		t.Errorf("the page's script: %d", code)
	}
	if code, _ := do(t, "GET", srv.URL+"/api/whoami?token="+view, "", "", "", ""); code != 200 {
		t.Errorf("a token in the query of a GET: %d", code)
	}
	if code, _ := do(t, "POST", srv.URL+"/api/contain?token="+act, "", "application/json", `{"pid":1,"reason":"r"}`, ""); code != 401 {
		t.Errorf("a token in the query of an action: %d", code)
	}
	resp, err = http.Get(srv.URL + "/?token=" + view)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.Header.Get("Set-Cookie") != "" {
		t.Error("a cookie: every port of the host would get it")
	}
}

func TestTokensMustDiffer(t *testing.T) {
	if _, err := New(Options{Token: view, ActToken: view}); err == nil {
		t.Fatal("the same token for both")
	}
	if _, err := New(Options{Token: "short", ActToken: act}); err == nil {
		t.Fatal("a short token")
	}
}

// Each server keeps its last events; the quietest server goes first.
func TestTimelineBounds(t *testing.T) {
	tl := NewTimeline(2)
	for _, e := range []string{`1`, `2`, `3`} {
		tl.Add("a", []byte(e))
	}
	if got := string(tl.JSON("a")); got != "[2,3]" || tl.Dropped != 1 {
		t.Fatalf("timeline %s, dropped %d", got, tl.Dropped)
	}
	for i := range maxServers + 1 {
		tl.Add(strings.Repeat("s", i+2), []byte(`0`))
	}
	if string(tl.JSON("a")) != "[]" {
		t.Fatal("the quietest server was kept")
	}
}
