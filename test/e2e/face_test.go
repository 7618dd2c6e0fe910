package e2e

import (
	"context"
	"encoding/json"
	"math"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// TestMCPFace: a daemon (enterprise profile) catches a malicious-by-design
// server it discovered reading a key and calling out, and freezes it. The
// official TypeScript SDK client then drives `sensor mcp`:
// detect_threats returns the attack with its evidence (the server's words
// under "untrusted"), respond_incident is refused without the right and
// releases and contains with it (audited with its reason),
// mcpsec://posture's MTTD and MTTR are the alerts' own latencies, and an
// analyst's false verdict moves the false-positive rate and writes a
// scoped exception.
func TestMCPFace(t *testing.T) {
	npm := npmFixture(t, "npm-clients", filepath.Join("node_modules", ".bin", "mcp-server-filesystem"))
	rules := t.TempDir()
	d := startDaemon(t, "profile: enterprise\nrules: "+rules+"\n")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	home, _ := fakeHome(t)
	cmd := exec.Command(bin(t, "evil"), filepath.Join(home, "notes"))
	cmd.Env = append(os.Environ(), "HOME="+home, "EVIL_EXFIL="+ln.Addr().String())
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	s, err := mcp.NewClient(&mcp.Implementation{Name: "e2e", Version: "1"}, nil).Connect(ctx, &mcp.CommandTransport{Command: cmd}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.ListTools(ctx, nil); err != nil { // as a client does: the daemon pins what it lists
		t.Fatal(err)
	}
	go func() { // the server is frozen mid-call: the answer may never come
		cctx, ccancel := context.WithTimeout(ctx, 5*time.Second)
		defer ccancel()
		_, _ = s.CallTool(cctx, &mcp.CallToolParams{Name: "read_notes", Arguments: map[string]any{"note": "todo"}})
	}()
	attack := d.waitAlert(t, "credential_read_then_egress", "critical")
	id := attack.str("id")
	resp, _ := attack["response"].(map[string]any)
	if id == "" || resp == nil || !strings.Contains(strings.Join(strs(resp["done"]), ","), "freeze") {
		t.Fatalf("the attack's alert: %v", attack)
	}
	cg, _ := resp["cgroup"].(string)
	face := func(allow bool, calls []map[string]any, resources ...string) []line {
		args := []string{"mcp", "--socket", d.sock}
		if allow {
			args = append(args, "--allow-respond")
		}
		c := runTSClient(t, npm, map[string]any{"command": bin(t, "sensor"), "args": args, "calls": calls, "resources": resources})
		c.until(t, "")
		return c.out
	}
	text := func(l line) string {
		r, _ := l["result"].(map[string]any)
		if r == nil {
			return ""
		}
		if cs, _ := r["contents"].([]any); len(cs) > 0 {
			return cs[0].(map[string]any)["text"].(string)
		}
		cs, _ := r["content"].([]any)
		if len(cs) == 0 {
			return ""
		}
		return cs[0].(map[string]any)["text"].(string)
	}
	isError := func(l line) bool { r, _ := l["result"].(map[string]any); return r != nil && r["isError"] == true }
	server := attack.str("server_name")
	out := face(false, []map[string]any{
		{"tool": "detect_threats", "arguments": map[string]any{"since": "1h", "severity": "high"}},
		{"tool": "respond_incident", "arguments": map[string]any{"action": "release", "pid": cmd.Process.Pid, "reason": "e2e"}},
		{"tool": "analyze_server", "arguments": map[string]any{"server": server}},
		{"tool": "harden_server", "arguments": map[string]any{"server": server}},
	}, "mcpsec://posture", "mcpsec://threat-intel", "mcpsec://compliance")
	var threats, refused, posture line
	got := map[string]string{}
	for _, l := range out {
		switch {
		case l.str("tool") == "detect_threats":
			threats = l
		case l.str("tool") == "respond_incident":
			refused = l
		case l.str("uri") == "mcpsec://posture":
			posture = l
		}
		got[l.str("tool")+l.str("uri")] = text(l)
	}
	// analyze_server: the pinned tools (their descriptions under
	// "untrusted") and its alerts; harden_server: a policy of its tools
	if a := got["analyze_server"]; !strings.Contains(a, `"credential_read_then_egress": 1`) || !strings.Contains(a, "read_notes") ||
		!strings.Contains(a, "Adds two numbers") || strings.Index(a, `"untrusted"`) > strings.Index(a, "Adds two numbers") {
		t.Errorf("analyze_server:\n%.3000s", a)
	}
	if h := got["harden_server"]; !strings.Contains(h, "read_notes") || !strings.Contains(h, "dry_run\": true") || !strings.Contains(h, "SystemCallFilter") {
		t.Errorf("harden_server:\n%.3000s", h)
	}
	if ti := got["mcpsec://threat-intel"]; !strings.Contains(ti, "credential_read_then_egress") || !strings.Contains(ti, ln.Addr().String()) {
		t.Errorf("threat-intel:\n%.2000s", ti)
	}
	if c := got["mcpsec://compliance"]; !strings.Contains(c, `"audit_trail_verified": true`) || !strings.Contains(c, `"compliance_status": "compliant"`) {
		t.Errorf("compliance:\n%s", c)
	}
	var th struct {
		Note string `json:"note"`
		Data struct {
			Threats []struct {
				ID         string         `json:"id"`
				Rule       string         `json:"rule"`
				Class      string         `json:"class"`
				Techniques []string       `json:"techniques"`
				Untrusted  map[string]any `json:"untrusted"`
			} `json:"threats"`
		} `json:"data"`
	}
	if err := json.Unmarshal([]byte(text(threats)), &th); err != nil {
		t.Fatalf("detect_threats: %v\n%v", err, threats)
	}
	found := false
	for _, x := range th.Data.Threats {
		if x.ID == id {
			found = true
			ev, _ := json.Marshal(x.Untrusted["effects"])
			if x.Class != "exfiltration" || len(x.Techniques) == 0 || !strings.Contains(string(ev), ln.Addr().String()) {
				t.Errorf("the attack as detect_threats gives it: %+v (effects %s)", x, ev)
			}
		}
	}
	if !found || !strings.Contains(th.Note, "untrusted") {
		t.Fatalf("detect_threats does not return alert %s:\n%s", id, text(threats))
	}
	if !isError(refused) || !strings.Contains(text(refused), "refused") {
		t.Errorf("respond_incident without the right: %v", refused)
	}
	// the posture's MTTD and MTTR are the mean of the alerts' own latencies
	var all []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(sensorCmd(t, "alerts", "--socket", d.sock, "-o", "json", "--last", "1000")), "\n") {
		var a map[string]any
		if json.Unmarshal([]byte(l), &a) == nil {
			all = append(all, a)
		}
	}
	var dsum, rsum float64
	var dn, rn int
	for _, a := range all {
		r, _ := a["response"].(map[string]any)
		if r == nil {
			continue
		}
		det, _ := r["detect_ms"].(float64)
		lat, _ := r["latency_ms"].(float64)
		if det > 0 {
			dsum, dn = dsum+det, dn+1
		}
		if lat > det {
			rsum, rn = rsum+lat-det, rn+1
		}
	}
	var pos struct {
		Data struct {
			Now struct {
				MTTD     *float64       `json:"mean_time_to_detection_ms"`
				MTTR     *float64       `json:"mean_time_to_response_ms"`
				Blocked  map[string]int `json:"blocked_by"`
				Score    int            `json:"security_score"`
				FalsePos *float64       `json:"false_positive_rate"`
			} `json:"last_24h"`
		} `json:"data"`
	}
	if err := json.Unmarshal([]byte(text(posture)), &pos); err != nil {
		t.Fatalf("mcpsec://posture: %v\n%v", err, posture)
	}
	p := pos.Data.Now
	if dn == 0 || rn == 0 || p.MTTD == nil || p.MTTR == nil || math.Abs(*p.MTTD-dsum/float64(dn)) > 1e-6 || math.Abs(*p.MTTR-rsum/float64(rn)) > 1e-6 {
		t.Errorf("posture MTTD %v MTTR %v; the alerts' own: %.3f over %d, %.3f over %d", p.MTTD, p.MTTR, dsum/float64(max(dn, 1)), dn, rsum/float64(max(rn, 1)), rn)
	}
	if p.MTTD != nil && p.MTTR != nil {
		t.Logf("posture: MTTD %.2f ms over %d alerts, MTTR %.2f ms over %d, score %d", *p.MTTD, dn, *p.MTTR, rn, p.Score)
	}
	if p.Blocked["freeze"] == 0 || p.Score >= 100 {
		t.Errorf("posture: blocked %v, score %d", p.Blocked, p.Score)
	}
	// with the right: release thaws it, contain freezes it again
	out = face(true, []map[string]any{
		{"tool": "respond_incident", "arguments": map[string]any{"action": "release", "pid": cmd.Process.Pid, "reason": "e2e: analyst released"}},
	})
	rel := ""
	for _, l := range out {
		if l.str("tool") == "respond_incident" {
			rel = text(l)
		}
	}
	if !strings.Contains(rel, "released ") || cgroupFrozen(t, cg) {
		t.Fatalf("release through the face: %s", rel)
	}
	out = face(true, []map[string]any{
		{"tool": "respond_incident", "arguments": map[string]any{"action": "contain", "pid": cmd.Process.Pid, "reason": "e2e: analyst contained"}},
	})
	if !cgroupFrozen(t, cg) {
		t.Fatalf("contain through the face did not freeze %s: %v", cg, out)
	}
	trail, _ := os.ReadFile(filepath.Join(d.state, "audit", "audit.jsonl"))
	if !strings.Contains(string(trail), "sensor mcp: e2e: analyst contained") || !strings.Contains(string(trail), "sensor mcp: e2e: analyst released") {
		t.Errorf("the face's actions are not audited with their reasons")
	}
	sensorCmd(t, "release", "--socket", d.sock, "--cgroup", cg)
	// a false verdict: the rate moves, and the exception is written
	v := sensorCmd(t, "alerts", "verdict", id, "false", "--reason", "e2e: the test's own exfiltration", "--except", "--socket", d.sock)
	if !strings.Contains(v, "false positive") || !strings.Contains(v, exceptionsFileName) {
		t.Fatalf("verdict: %s", v)
	}
	ex, _ := os.ReadFile(filepath.Join(rules, exceptionsFileName))
	if !strings.Contains(string(ex), "rule: credential_read_then_egress") || !strings.Contains(string(ex), "server.name") {
		t.Errorf("the exception:\n%s", ex)
	}
	if st := sensorCmd(t, "status", "--socket", d.sock); !strings.Contains(st, "false positives 100% of 1 judged") {
		t.Errorf("status after the verdict:\n%s", st)
	}
}

const exceptionsFileName = "zz-verdicts.yaml"

func strs(v any) []string {
	xs, _ := v.([]any)
	out := make([]string, 0, len(xs))
	for _, x := range xs {
		out = append(out, x.(string))
	}
	return out
}

// bearer adds a token to every request.
type bearer struct{ token string }

func (b bearer) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+b.token)
	return http.DefaultTransport.RoundTrip(r)
}

// TestMCPFaceHTTP: over Streamable HTTP the face answers only a caller
// holding its token, and only on loopback.
func TestMCPFaceHTTP(t *testing.T) {
	d := startDaemon(t, "profile: baseline\ndashboard:\n  listen: \"\"\n")
	dir := t.TempDir()
	tok := filepath.Join(dir, "token")
	_ = os.WriteFile(tok, []byte("face-token-0123456789abcdef\n"), 0o600)
	lnp, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := lnp.Addr().String()
	lnp.Close()
	if out, err := exec.Command(bin(t, "sensor"), "mcp", "--socket", d.sock, "--http", "0.0.0.0:1", "--token-file", tok).CombinedOutput(); err == nil || !strings.Contains(string(out), "loopback") {
		t.Errorf("a non-loopback address: %v %s", err, out)
	}
	face := exec.Command(bin(t, "sensor"), "mcp", "--socket", d.sock, "--http", addr, "--token-file", tok)
	if err := face.Start(); err != nil {
		t.Fatal(err)
	}
	defer face.Process.Kill()
	url := "http://" + addr + "/mcp"
	var resp *http.Response
	var err error
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if resp, err = http.Post(url, "application/json", strings.NewReader(`{}`)); err == nil {
			break
		}
	}
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("no token: %s", resp.Status)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	tr := &mcp.StreamableClientTransport{Endpoint: url, HTTPClient: &http.Client{Transport: bearer{"face-token-0123456789abcdef"}}}
	s, err := mcp.NewClient(&mcp.Implementation{Name: "e2e", Version: "1"}, nil).Connect(ctx, tr, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	tools, err := s.ListTools(ctx, nil)
	if err != nil || len(tools.Tools) != 4 {
		t.Fatalf("tools over HTTP: %v %v", tools, err)
	}
	res, err := s.ReadResource(ctx, &mcp.ReadResourceParams{URI: "mcpsec://compliance"})
	if err != nil || !strings.Contains(res.Contents[0].Text, "audit_trail_verified") {
		t.Fatalf("mcpsec://compliance over HTTP: %v %v", res, err)
	}
}
