package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// browser starts headless Chromium (Debian's chromium) and records the
// page's console errors and uncaught exceptions.
func browser(t *testing.T) (context.Context, *[]string) {
	t.Helper()
	exe, err := exec.LookPath("chromium")
	if err != nil {
		t.Fatalf("the browser tests need Debian's chromium (apt-get install chromium; scripts/setup.sh installs it): %v", err)
	}
	actx, acancel := chromedp.NewExecAllocator(context.Background(), chromedp.ExecPath(exe), chromedp.Headless, chromedp.NoSandbox,
		chromedp.NoFirstRun, chromedp.DisableGPU, chromedp.WindowSize(1400, 900))
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(func() { cancel(); acancel() })
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("starting chromium: %v", err)
	}
	var mu sync.Mutex
	errs := &[]string{}
	go func() {
		for m, err := range chromedp.Console(ctx) {
			if err != nil {
				return
			}
			if m.Type == chromedp.ConsoleError || m.Type == chromedp.ConsoleException {
				mu.Lock()
				*errs = append(*errs, string(m.Type)+": "+m.Text)
				mu.Unlock()
			}
		}
	}()
	return ctx, errs
}

// shot saves a screenshot of the page to $MCPSEC_SCREENSHOTS/NAME.png
// when that is set (how docs/ is made).
func shot(t *testing.T, ctx context.Context, name string) {
	dir := os.Getenv("MCPSEC_SCREENSHOTS")
	if dir == "" {
		return
	}
	_ = chromedp.Do(ctx, chromedp.Sleep(300*time.Millisecond))
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Errorf("screenshot %s: %v", name, err)
		return
	}
	_ = os.WriteFile(filepath.Join(dir, name+".png"), png, 0o644)
}

// TestDashboard: the daemon's page in headless Chromium loads with no
// console errors; a real attack by a malicious-by-design server appears in
// the live list within 2 s of the offending syscall; its server's timeline
// shows the tools/call and the effect that caused the alert; a
// containment started from the page is refused with the view token and
// freezes the server with the act token.
func TestDashboard(t *testing.T) {
	lnp, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := lnp.Addr().String()
	lnp.Close()
	dir := t.TempDir()
	view, act := "view-token-0123456789abcdef", "act-token-0123456789abcdef0"
	_ = os.WriteFile(filepath.Join(dir, "view"), []byte(view), 0o600)
	_ = os.WriteFile(filepath.Join(dir, "act"), []byte(act), 0o600)
	d := startDaemon(t, fmt.Sprintf("profile: baseline\ndashboard:\n  listen: %s\n  token_file: %s\n  act_token_file: %s\n",
		addr, filepath.Join(dir, "view"), filepath.Join(dir, "act")))
	ctx, errs := browser(t)
	base := "http://" + addr
	tctx, cancel := context.WithTimeout(ctx, 90*time.Second)
	defer cancel()
	if err := chromedp.Do(tctx, chromedp.Navigate(base+"/#token="+view),
		chromedp.WaitVisible(chromedp.CSS("#alerts")), poll(`document.querySelector("#live-state").textContent === "live"`)); err != nil {
		t.Fatalf("the page did not load: %v\n%v", err, *errs)
	}
	if len(*errs) > 0 {
		t.Errorf("the page logged errors while loading: %v", *errs)
	}
	// without a token there is nothing to see
	if out := curl(t, base+"/api/status", ""); !strings.Contains(out, "401") {
		t.Errorf("no token: %s", out)
	}
	// the attack
	listener, _ := net.Listen("tcp", "127.0.0.1:0")
	defer listener.Close()
	home, _ := fakeHome(t)
	cmd := exec.Command(bin(t, "evil"), filepath.Join(home, "notes"))
	cmd.Env = append(os.Environ(), "HOME="+home, "EVIL_EXFIL="+listener.Addr().String())
	s, err := mcp.NewClient(&mcp.Implementation{Name: "e2e", Version: "1"}, nil).Connect(tctx, &mcp.CommandTransport{Command: cmd}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.CallTool(tctx, &mcp.CallToolParams{Name: "read_notes", Arguments: map[string]any{"note": "todo"}}); err != nil {
		t.Fatal(err)
	}
	row := `#alerts tbody tr[data-rule="credential_read_then_egress"]`
	if err := chromedp.Do(tctx, chromedp.WaitVisible(chromedp.CSS(row))); err != nil {
		t.Fatalf("the attack never appeared in the live list: %v", err)
	}
	seen := time.Now()
	alert := d.waitAlert(t, "credential_read_then_egress", "critical")
	at, _ := time.Parse(time.RFC3339Nano, alert.str("ts"))
	if lag := seen.Sub(at); lag > 2*time.Second {
		t.Errorf("the alert reached the page %v after the offending syscall, want within 2 s", lag)
	} else {
		t.Logf("offending syscall -> alert on the page: %v", lag.Round(time.Millisecond))
	}
	shot(t, tctx, "dashboard-alerts")
	// the server's timeline: the call and the effect that caused the alert
	srvRow := fmt.Sprintf(`#servers tbody tr[data-pid="%d"] button`, cmd.Process.Pid)
	if err := chromedp.Do(tctx, chromedp.Navigate(base+"/#servers"), chromedp.WaitVisible(chromedp.CSS(srvRow)), chromedp.Click(chromedp.CSS(srvRow)),
		poll(`[...document.querySelectorAll("#timeline li.call")].some(li => li.textContent.includes("read_notes"))`),
		poll(`[...document.querySelectorAll("#timeline li")].some(li => li.textContent.includes("id_rsa"))`),
		poll(`[...document.querySelectorAll("#timeline li.ev-alert")].some(li => li.textContent.includes("credential_read_then_egress"))`)); err != nil {
		t.Fatalf("the server's timeline: %v", err)
	}
	shot(t, tctx, "dashboard-timeline")
	var result string
	// containment from the page: refused with the view token
	if err := chromedp.Do(tctx, chromedp.SendKeys(chromedp.CSS("#act-reason"), "e2e from the page"), chromedp.Click(chromedp.CSS("#btn-contain")),
		poll(`document.querySelector("#act-result").textContent !== ""`)); err != nil {
		t.Fatal(err)
	}
	result, _ = chromedp.Run(tctx, chromedp.Text(chromedp.CSS("#act-result")))
	if !strings.Contains(result, "refused") {
		t.Fatalf("contain with the view token: %q", result)
	}
	// and done with the act token
	if err := chromedp.Do(tctx, chromedp.Navigate("about:blank"), chromedp.Navigate(base+"/#token="+act), chromedp.WaitVisible(chromedp.CSS("#alerts")),
		chromedp.Navigate(base+"/#servers"), chromedp.WaitVisible(chromedp.CSS(srvRow)), chromedp.Click(chromedp.CSS(srvRow)),
		chromedp.SendKeys(chromedp.CSS("#act-reason"), "e2e from the page"), chromedp.Click(chromedp.CSS("#btn-contain")),
		poll(`/contained/.test(document.querySelector("#act-result").textContent)`)); err != nil {
		result, _ = chromedp.Run(tctx, chromedp.Text(chromedp.CSS("#act-result")))
		t.Fatalf("contain with the act token: %v (%q)", err, result)
	}
	result, _ = chromedp.Run(tctx, chromedp.Text(chromedp.CSS("#act-result")))
	m := regexp.MustCompile(`contained (\S+)`).FindStringSubmatch(result)
	if m == nil || !cgroupFrozen(t, m[1]) {
		t.Fatalf("contain from the page: %q", result)
	}
	for _, view := range []string{"landscape", "incidents", "posture"} {
		if err := chromedp.Do(tctx, chromedp.Navigate(base+"/#"+view), chromedp.Sleep(500*time.Millisecond)); err != nil {
			t.Fatal(err)
		}
		shot(t, tctx, "dashboard-"+view)
	}
	sensorCmd(t, "release", "--socket", d.sock, "--cgroup", m[1])
	trail, _ := os.ReadFile(filepath.Join(d.state, "audit", "audit.jsonl"))
	if !strings.Contains(string(trail), "dashboard: e2e from the page") {
		t.Error("the page's containment is not in the audit trail with its reason")
	}
	// a rule reload, then the compliance report of this run, read in the browser
	_ = d.cmd.Process.Signal(syscall.SIGHUP)
	d.logs.waitFor(t, `"@message":"rules reloaded"`, 1)
	cfg := filepath.Join(filepath.Dir(d.state), "config.yaml")
	var rep struct {
		Audit struct {
			Verified bool `json:"verified"`
		} `json:"audit_trail"`
		Requirements []struct {
			ID, Status string
			Evidence   []string
		} `json:"requirements"`
	}
	if err := json.Unmarshal([]byte(sensorCmd(t, "report", "compliance", "--framework", "soc2", "--config", cfg, "--state-dir", d.state, "--since", "1h", "-o", "json")), &rep); err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, r := range rep.Requirements {
		got[r.ID] = r.Status
	}
	// the attack (a critical alert, monitor only here: not answered), the
	// page's containment, the reload; no analyst's verdict yet
	want := map[string]string{"CC4.1": "PASS", "CC7.2": "PASS", "CC8.1": "PASS", "CC7.3": "FAIL", "CC7.4": "FAIL", "CC7.5": "MANUAL", "CC6.1": "FAIL"}
	for id, st := range want {
		if got[id] != st {
			t.Errorf("report: %s is %s, want %s", id, got[id], st)
		}
	}
	if !rep.Audit.Verified {
		t.Error("the report says the trail does not verify")
	}
	html := filepath.Join(t.TempDir(), "soc2.html")
	sensorCmd(t, "report", "compliance", "--framework", "soc2", "--config", cfg, "--state-dir", d.state, "--since", "1h", "--out", html)
	var title string
	if err := chromedp.Do(tctx, chromedp.Navigate("file://"+html), chromedp.WaitVisible(chromedp.CSS(`#req-CC7\.4 .FAIL`))); err != nil {
		t.Fatalf("the HTML report in the browser: %v", err)
	}
	title, _ = chromedp.Run(tctx, chromedp.Text(chromedp.CSS("#title")))
	if !strings.Contains(title, "SOC 2") {
		t.Errorf("the report's title: %q", title)
	}
	shot(t, tctx, "report-soc2")
	// the one error expected: the browser's own line for the refused (403) containment
	var other []string
	for _, e := range *errs {
		if !strings.Contains(e, "403") {
			other = append(other, e)
		}
	}
	if len(other) > 0 {
		t.Errorf("the page logged errors: %v", other)
	}
}

// poll waits until a JavaScript expression is true.
func poll(expr string) chromedp.Action[chromedp.Void] {
	return func(ctx context.Context, t *chromedp.Target) (chromedp.Void, error) {
		_, err := chromedp.Poll[bool](expr, chromedp.WithPollingTimeout(15*time.Second))(ctx, t)
		return chromedp.Void{}, err
	}
}

// curl GETs url with a bearer token and returns "STATUS BODY".
func curl(t *testing.T, url, token string) string {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var v any
	_ = json.NewDecoder(resp.Body).Decode(&v)
	return fmt.Sprint(resp.StatusCode, " ", v)
}
