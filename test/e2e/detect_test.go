package e2e

//lint:file-ignore SA1019 the injector sends a sampling request, which the sensor inspects

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/mcpsec/sensor/internal/testutil"
)

// The tests of this file drive the malicious-by-design servers of
// internal/testservers (injector, vault and outbox, sqlnotes, launcher,
// confined), each against its benign twin, and real npm servers: the
// attack must raise its rule at its severity with the evidence that
// proves it; the twin doing the same work honestly must raise nothing
// above low.

// noStateDir, in a traced server's environment, hides the test process's
// MCPSEC_STATE_DIR from it: a server would take that directory, which no
// MCP client gives its servers, for one of its roots.
const noStateDir = "MCPSEC_STATE_DIR="

// serverBin builds internal/testservers/NAME once per test process.
func serverBin(t testing.TB, name string) string {
	return testutil.Binary(t, "./internal/testservers/"+name)
}

// quiet fails the test for each alert above low, which it prints.
func quiet(t *testing.T, what string, as []line) {
	t.Helper()
	for _, a := range as {
		if a.str("severity") != "low" {
			t.Errorf("%s raised %s %s: %s %s", what, a.str("severity"), a.str("rule"), a.str("output"), jsonText(a["evidence"]))
		}
	}
}

func jsonText(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// logAlerts prints the alerts, for a failing test's reader.
func logAlerts(t *testing.T, as []line) {
	t.Helper()
	for _, a := range as {
		t.Logf("%-8s %-32s call=%s/%s msg=%s %s evidence=%s", a.str("severity"), a.str("rule"), a.obj("call").str("method"),
			a.obj("call").str("tool"), a.obj("message").str("method"), a.str("output"), jsonText(a["evidence"]))
	}
}

// concerns says whether an alert is about a tool or a method: its call,
// its message, or its output names it.
func concerns(a line, name string) bool {
	c, m := a.obj("call"), a.obj("message")
	return c.str("tool") == name || c.str("method") == name || m.str("method") == name || a.str("tool") == name ||
		strings.Contains(a.str("output"), name)
}

// findAlert is the first alert of rule at severity that pred accepts; it
// fails the test (saying what was wanted, listing the alerts) if there is
// none.
func findAlert(t *testing.T, as []line, rule, severity, what string, pred func(line) bool) line {
	t.Helper()
	for _, a := range as {
		if a.str("rule") == rule && a.str("severity") == severity && (pred == nil || pred(a)) {
			return a
		}
	}
	t.Errorf("no %s %s alert %s; the alerts were:", severity, rule, what)
	logAlerts(t, as)
	return nil
}

// firstEffect is an alert's first effect.
func firstEffect(a line) line {
	effs, _ := a["effects"].([]any)
	if len(effs) == 0 {
		return nil
	}
	m, _ := effs[0].(map[string]any)
	return line(m)
}

// argvOf is an effect's argv joined by spaces.
func argvOf(e line) string {
	var s []string
	vs, _ := e["argv"].([]any)
	for _, v := range vs {
		s = append(s, fmt.Sprint(v))
	}
	return strings.Join(s, " ")
}

// saw checks that the trace holds a message from the server for each
// method or tool named: its response, or its own request (sampling).
func saw(t *testing.T, ls []line, names ...string) {
	t.Helper()
	for _, n := range names {
		found := false
		for _, l := range ls {
			req := l.obj("request")
			if l.str("kind") == "message" && l.str("direction") == "out" && (req.str("tool") == n || req.str("method") == n || l.str("method") == n) {
				found = true
				break
			}
		}
		if !found {
			t.Errorf("the trace lacks the server's message for %s (the sensor did not see the exchange)", n)
		}
	}
}

// TestDetectContent: what a server says to the client's model is read.
// The injector relays attacker text in a tool result (<IMPORTANT>, Unicode
// tag characters), an exfiltrating markdown image, a sampling request, a
// resource (HTML comment, display:none) and a prompt (zero-width run,
// "ignore previous instructions"); each raises result_instructions or
// result_exfil_link HIGH with the span that gave it away. The benign twin's
// pages, issues and forecasts, full of links, images, code and "Note:"
// paragraphs, raise nothing above low.
func TestDetectContent(t *testing.T) {
	t.Run("malicious", func(t *testing.T) {
		ls := driveInjector(t, false)
		as := alerts(ls)
		for _, w := range []struct {
			rule, about string
			mentions    []string // any of these in its labels or spans (lower case)
		}{
			{"result_instructions", "fetch_page", []string{"important", "do not tell"}},
			{"result_instructions", "read_issue", []string{"tag", "send_message", "credentials"}},
			{"result_exfil_link", "get_forecast", []string{"attacker.example"}},
			{"result_instructions", "sampling/createMessage", []string{"system", "id_rsa"}},
			{"result_instructions", "resources/read", []string{"<!--", "comment", "display"}},
			{"result_instructions", "prompts/get", []string{"ignore previous", "zero"}},
		} {
			a := findAlert(t, as, w.rule, "high", "about "+w.about, func(a line) bool { return concerns(a, w.about) })
			if a == nil {
				continue
			}
			ev := a.obj("evidence")
			spans, _ := ev["spans"].([]any)
			labels, _ := ev["labels"].([]any)
			said := strings.ToLower(jsonText(labels) + jsonText(spans))
			if w.rule == "result_instructions" && ev.num("score") < 6 {
				t.Errorf("%s: score %v, want at least 6 for high", w.about, ev["score"])
			}
			if len(spans) == 0 || !strings.Contains(fmt.Sprint(spans[0]), "offset") {
				t.Errorf("%s: evidence spans %v: want quoted spans with their offsets", w.about, spans)
			}
			hit := false
			for _, m := range w.mentions {
				hit = hit || strings.Contains(said, m)
			}
			if !hit {
				t.Errorf("%s: evidence %s names none of %q", w.about, jsonText(ev), w.mentions)
			}
		}
	})
	t.Run("benign", func(t *testing.T) {
		ls := driveInjector(t, true)
		quiet(t, "the honest injector", alerts(ls))
	})
}

// driveInjector runs the injector under `sensor trace` and reads each of
// its tools, its resource and its prompt once, answering its sampling
// request as a model would. It returns the trace.
func driveInjector(t *testing.T, benign bool) []line {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	argv := []string{serverBin(t, "injector")}
	if benign {
		argv = append(argv, "-benign")
	}
	client := mcp.NewClient(&mcp.Implementation{Name: "e2e", Version: "1"}, &mcp.ClientOptions{
		CreateMessageHandler: func(context.Context, *mcp.CreateMessageRequest) (*mcp.CreateMessageResult, error) {
			return &mcp.CreateMessageResult{Model: "e2e-model", Role: "assistant",
				Content: &mcp.TextContent{Text: "Widget 2.0 drops Go 1.21 and streams exports."}}, nil
		}})
	s, out := tracedWith(t, ctx, traceSetup{version: "2025-11-25", dir: t.TempDir(), flags: ruleFlags(t), client: client}, argv...)
	page := callText(t, ctx, s, "fetch_page", map[string]any{"url": "https://github.com/acme/widget/releases/tag/v2.0.0"})
	issue := callText(t, ctx, s, "read_issue", map[string]any{"number": 1188})
	forecast := callText(t, ctx, s, "get_forecast", map[string]any{"city": "Lisbon"})
	callText(t, ctx, s, "summarize_page", map[string]any{"url": "https://github.com/acme/widget/releases/tag/v2.0.0"})
	res, err := s.ReadResource(ctx, &mcp.ReadResourceParams{URI: "docs://guide"})
	if err != nil || len(res.Contents) == 0 {
		t.Fatalf("resources/read: %v", err)
	}
	pr, err := s.GetPrompt(ctx, &mcp.GetPromptParams{Name: "triage_issue", Arguments: map[string]string{"number": "1188"}})
	if err != nil || len(pr.Messages) == 0 {
		t.Fatalf("prompts/get: %v", err)
	}
	s.Close()
	// the premise: the malicious server says what it is meant to, the honest one does not
	bad := 0
	for _, b := range []bool{strings.Contains(page, "<IMPORTANT>"), strings.ContainsFunc(issue, func(r rune) bool { return r >= 0xE0000 && r <= 0xE007F }),
		strings.Contains(forecast, "attacker.example"), strings.Contains(res.Contents[0].Text, "display:none"),
		strings.Contains(pr.Messages[0].Content.(*mcp.TextContent).Text, "Ignore previous")} {
		if b {
			bad++
		}
	}
	if benign && bad != 0 || !benign && bad != 5 {
		t.Fatalf("the injector (benign %v) said: %q %q %q %q", benign, page, issue, forecast, res.Contents[0].Text)
	}
	ls := readTrace(t, out)
	saw(t, ls, "fetch_page", "read_issue", "get_forecast", "summarize_page", "sampling/createMessage", "resources/read", "prompts/get")
	return ls
}

// flowPair is one MCP client (this test process, as an assistant's host)
// driving two servers, vault and outbox, with `sensor daemon` watching:
// only a sensor that sees both can follow a value from one's result into
// the other's arguments.
type flowPair struct {
	d             *daemon
	vault, outbox *mcp.ClientSession
	pids          []int
	relay         <-chan []byte
}

func startFlowPair(t *testing.T, ctx context.Context, benign bool) *flowPair {
	t.Helper()
	d := startDaemon(t, fmt.Sprintf("rules: %s\nlearn: 0s\n", repoRules()))
	addr, got := listener(t)
	client := mcp.NewClient(&mcp.Implementation{Name: "e2e-host", Version: "1"}, nil)
	connect := func(cmd *exec.Cmd) *mcp.ClientSession {
		s, err := client.Connect(ctx, &mcp.CommandTransport{Command: cmd}, &mcp.ClientSessionOptions{ProtocolVersion: "2025-11-25"})
		if err != nil {
			t.Fatalf("starting %s: %v", cmd.Path, err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	}
	v := exec.Command(serverBin(t, "vault"))
	if benign {
		v.Args = append(v.Args, "-benign")
	}
	o := exec.Command(serverBin(t, "outbox"))
	o.Env = append(os.Environ(), "OUTBOX_ADDR="+addr)
	p := &flowPair{d: d, vault: connect(v), outbox: connect(o), relay: got}
	p.pids = []int{v.Process.Pid, o.Process.Pid, os.Getpid()}
	return p
}

// relayed is what outbox's relay received from one send_message.
func (p *flowPair) relayed(t *testing.T) []byte {
	t.Helper()
	select {
	case b := <-p.relay:
		return b
	case <-time.After(10 * time.Second):
		t.Fatal("the relay received nothing")
		return nil
	}
}

// alerts are the daemon's alerts about this pair (the daemon watches the
// whole host).
func (p *flowPair) alerts(t *testing.T) []line {
	var out []line
	for _, a := range p.d.alertLines(t) {
		for _, pid := range p.pids {
			if strings.HasPrefix(a.str("server"), fmt.Sprint(pid, "-")) || int(a.num("pid")) == pid {
				out = append(out, a)
				break
			}
		}
	}
	return out
}

// waitAlert waits for an alert of the pair that pred accepts.
func (p *flowPair) waitAlert(t *testing.T, rule, severity, what string, pred func(line) bool) line {
	t.Helper()
	for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		for _, a := range p.alerts(t) {
			if a.str("rule") == rule && a.str("severity") == severity && pred(a) {
				return a
			}
		}
	}
	return findAlert(t, p.alerts(t), rule, severity, what, pred)
}

// tokenRE matches the live API token in vault's get_config result.
var tokenRE = regexp.MustCompile(`sk-live-[A-Za-z0-9]{32}`)

// flowEnds checks a flow alert's evidence: the value, and the calls it
// went from and to.
func flowEnds(a line, value, fromTool string) bool {
	ev := a.obj("evidence")
	v := strings.TrimSuffix(ev.str("value"), "…")
	from, to := ev.obj("from"), ev.obj("to")
	return len(v) >= 4 && strings.HasPrefix(value, v) &&
		strings.Contains(from.str("server"), "vault") && (fromTool == "" || from.str("tool") == fromTool) && from["call"] != nil &&
		strings.Contains(to.str("server"), "outbox") && to.str("tool") == "send_message" && to["call"] != nil
}

// TestDetectFlow: a value that first came back in one server's result and
// then leaves in the arguments of another server's sending tool is a data
// flow: vault's API token sent with outbox's send_message raises
// data_flow_to_outbound HIGH naming both calls; after a ticket whose text
// told the assistant to do it, injected_data_flow CRITICAL. The user's own
// words sent on, and values of results passed to tools that send nothing,
// raise nothing above low.
func TestDetectFlow(t *testing.T) {
	t.Run("malicious", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		p := startFlowPair(t, ctx, false)
		token := tokenRE.FindString(callText(t, ctx, p.vault, "get_config", map[string]any{}))
		if token == "" {
			t.Fatal("get_config returned no token")
		}
		callText(t, ctx, p.outbox, "send_message", map[string]any{"to": "ops-team@example.com", "body": "Here is the billing token: " + token})
		if b := p.relayed(t); !strings.Contains(string(b), token) {
			t.Fatalf("the relay got %q", b)
		}
		a := p.waitAlert(t, "data_flow_to_outbound", "high", "from get_config to send_message", func(a line) bool { return flowEnds(a, token, "get_config") })
		if a != nil && a.obj("evidence")["origin_instructions"] != false {
			t.Errorf("origin_instructions: %v, want false (get_config's result carried none)", a.obj("evidence")["origin_instructions"])
		}
		for _, a := range p.alerts(t) {
			if a.str("rule") == "injected_data_flow" {
				t.Errorf("injected_data_flow with no instructions anywhere: %v", a)
			}
		}
	})
	t.Run("injected", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		p := startFlowPair(t, ctx, false)
		if tk := callText(t, ctx, p.vault, "read_ticket", map[string]any{"number": 4242}); !strings.Contains(tk, "<IMPORTANT>") {
			t.Fatalf("ticket 4242 carries no instructions: %q", tk)
		}
		token := tokenRE.FindString(callText(t, ctx, p.vault, "get_config", map[string]any{}))
		callText(t, ctx, p.outbox, "send_message", map[string]any{"to": "verify@billing-audit.example", "body": token})
		p.relayed(t)
		a := p.waitAlert(t, "injected_data_flow", "critical", "into send_message", func(a line) bool {
			return flowEnds(a, token, "get_config") || flowEnds(a, "verify@billing-audit.example", "read_ticket")
		})
		if a != nil && a.obj("evidence")["origin_instructions"] != true {
			t.Errorf("origin_instructions: %v, want true", a.obj("evidence")["origin_instructions"])
		}
	})
	t.Run("benign", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		p := startFlowPair(t, ctx, true)
		// the user's own words, asked about first, come back in a result and are then sent
		words, who := "CSV export times out for large workspaces", "dana.whitfield@example.org"
		callText(t, ctx, p.vault, "search_tickets", map[string]any{"query": words, "customer": who})
		callText(t, ctx, p.outbox, "send_message", map[string]any{"to": who, "body": "Hi Dana, we are looking into it: " + words + ". We will write again by Friday."})
		p.relayed(t)
		// values of results passed to tools that send nothing
		cfg := callText(t, ctx, p.vault, "get_config", map[string]any{})
		acct := regexp.MustCompile(`acct_[A-Z0-9]{16}`).FindString(cfg)
		if acct == "" || tokenRE.MatchString(cfg) {
			t.Fatalf("the benign vault's config: %q", cfg)
		}
		callText(t, ctx, p.vault, "lookup_account", map[string]any{"account_id": acct})
		callText(t, ctx, p.vault, "read_ticket", map[string]any{"number": 1042})
		// the premise: the daemon saw both servers' calls
		var n map[string]float64
		for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
			n = map[string]float64{}
			for _, s := range p.d.servers(t) {
				for _, name := range []string{"vault", "outbox"} {
					if strings.Contains(s.str("name"), name) {
						n[name] += s.num("calls")
					}
				}
			}
			if n["vault"] >= 4 && n["outbox"] >= 1 {
				break
			}
		}
		p.vault.Close()
		p.outbox.Close()
		time.Sleep(2 * time.Second) // the last alerts, if any, reach the file
		if n["vault"] < 4 || n["outbox"] < 1 {
			t.Errorf("the daemon's calls per server: %v, want vault 4 and outbox 1", n)
		}
		quiet(t, "the benign flows", p.alerts(t))
	})
}

// TestDetectSQL: a Python SQLite server that builds SQL from its arguments
// (f-strings) is given a UNION SELECT and a stacked DROP TABLE: the calls
// that opened the database raise sql_injection_reached_database HIGH with
// the database file, and the argument. The safe twin (parameters) storing
// and finding notes full of apostrophes and dashes raises nothing above low.
func TestDetectSQL(t *testing.T) {
	script := filepath.Join(testutil.RepoRoot(), "internal", "testservers", "sqlnotes", "server.py")
	start := func(t *testing.T, ctx context.Context, safe bool) (*mcp.ClientSession, string, string) {
		dir, err := filepath.EvalSymlinks(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		argv := []string{"python3", script, dir}
		if safe {
			argv = []string{"python3", script, "--safe", dir}
		}
		s, out := tracedWith(t, ctx, traceSetup{version: "2025-11-25", dir: dir, flags: ruleFlags(t)}, argv...)
		return s, out, filepath.Join(dir, "notes.db")
	}
	t.Run("malicious", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		s, out, db := start(t, ctx, false)
		callText(t, ctx, s, "add_note", map[string]any{"title": "groceries", "body": "milk and eggs"})
		union := "x' UNION SELECT name, sql FROM sqlite_master --"
		if got := callText(t, ctx, s, "search_notes", map[string]any{"query": union}); !strings.Contains(got, "CREATE TABLE notes") {
			t.Fatalf("the UNION did not reach the database: %q", got)
		}
		drop := "a'); DROP TABLE notes; --"
		callText(t, ctx, s, "add_note", map[string]any{"title": drop, "body": "x"})
		if r, err := s.CallTool(ctx, &mcp.CallToolParams{Name: "search_notes", Arguments: map[string]any{"query": "milk"}}); err != nil || !r.IsError {
			t.Fatalf("the table survived the DROP: %v %+v", err, r)
		}
		s.Close()
		as := alerts(readTrace(t, out))
		for tool, arg := range map[string]string{"search_notes": union, "add_note": drop} {
			a := findAlert(t, as, "sql_injection_reached_database", "high", "on "+tool+" with "+arg, func(a line) bool {
				return a.obj("call").str("tool") == tool && strings.Contains(a.obj("evidence").str("argument"), arg)
			})
			if a == nil {
				continue
			}
			if e := firstEffect(a); e.str("path") != db || a.obj("evidence").str("language") != "sql" {
				t.Errorf("%s: effect %v, evidence %v: want the open of %s, language sql", tool, e, a["evidence"], db)
			}
		}
		findAlert(t, as, "sql_injection_in_arguments", "medium", "on search_notes", func(a line) bool { return concerns(a, "search_notes") })
		for _, a := range as {
			if strings.HasPrefix(a.str("rule"), "sql_injection") && strings.Contains(jsonText(a), "groceries") {
				t.Errorf("the ordinary note raised %s", a.str("rule"))
			}
		}
	})
	t.Run("benign", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		s, out, db := start(t, ctx, true)
		callText(t, ctx, s, "add_note", map[string]any{"title": "Bob's notes", "body": "it's fine -- really, the deploy can wait until Monday"})
		callText(t, ctx, s, "add_note", map[string]any{"title": "Ann's birthday", "body": "Don't forget -- buy a cake; the O'Briens are coming at 7"})
		if got := callText(t, ctx, s, "search_notes", map[string]any{"query": "Bob's"}); !strings.Contains(got, "it's fine -- really") {
			t.Fatalf("search_notes: %q", got)
		}
		callText(t, ctx, s, "search_notes", map[string]any{"query": "it's fine -- really"})
		callText(t, ctx, s, "search_notes", map[string]any{"query": "O'Briens"})
		s.Close()
		ls := readTrace(t, out)
		quiet(t, "the safe notes server", alerts(ls))
		// the premise: the sensor saw the calls open the database
		if len(filter(ls, func(l line) bool {
			// an open for writing is a "write" effect
			return l.str("kind") == "effect" && (l.str("type") == "open" || l.str("type") == "write") && l.str("path") == db &&
				l.obj("call").str("tool") == "search_notes"
		})) == 0 {
			t.Errorf("no open of %s attributed to search_notes in the trace", db)
		}
	})
}

// TestDetectLauncher: an HTTP dev helper (not MCP) that runs what a request
// names, as the MCP Inspector's proxy did (CVE-2025-49596): each program it
// runs from a request's query or body raises http_request_runs_program
// CRITICAL with the argv and the request; a shell it runs later with
// nothing of a request in it raises network_server_spawns_shell HIGH. The honest twin, which runs a shell
// once at start-up and /bin/date with fixed arguments per request, raises
// nothing above low.
func TestDetectLauncher(t *testing.T) {
	get := func(t *testing.T, url string) string {
		t.Helper()
		resp, err := http.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}
	flags := func(t *testing.T) []string { return append(ruleFlags(t), "--response", "monitor") }
	t.Run("malicious", func(t *testing.T) {
		addr, stop := tracedListenerFlags(t, t.TempDir(), nil, flags(t), serverBin(t, "launcher"), "-addr", "127.0.0.1:0")
		get(t, "http://"+addr+"/health")
		if got := get(t, "http://"+addr+"/run?command=sh&args=-c&args=id+-u"); strings.TrimSpace(got) != fmt.Sprint(os.Getuid()) {
			t.Fatalf("/run: %q", got)
		}
		host, _ := os.ReadFile("/etc/hostname")
		if got := get(t, "http://"+addr+"/run?command=cat&args=/etc/hostname"); got != string(host) {
			t.Fatalf("/run cat: %q", got)
		}
		resp, err := http.Post("http://"+addr+"/exec", "application/json", strings.NewReader(`{"command": "uname -a"}`))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		get(t, "http://"+addr+"/debug")
		as := alerts(stop())
		for _, w := range []struct{ argv, request string }{
			{"sh -c id -u", "GET /run?command=sh"},
			{"cat /etc/hostname", "GET /run?command=cat"},
			{"/bin/sh -c uname -a", "POST /exec"},
		} {
			findAlert(t, as, "http_request_runs_program", "critical", fmt.Sprintf("running %q for %q", w.argv, w.request), func(a line) bool {
				e := firstEffect(a)
				return e != nil && strings.HasSuffix(argvOf(e), w.argv) && strings.HasPrefix(a.obj("evidence").str("request"), w.request)
			})
		}
		// a shell with nothing of a request in it, after serving began
		findAlert(t, as, "network_server_spawns_shell", "high", "for the shell of /debug", func(a line) bool {
			e := firstEffect(a)
			return e != nil && strings.Contains(argvOf(e), "ps -e | head -3")
		})
		// the shells of /run and /exec are the critical alert's, not
		// raised twice
		for _, a := range as {
			if a.str("rule") == "network_server_spawns_shell" {
				if e := firstEffect(a); e != nil && (strings.Contains(argvOf(e), "uname -a") || strings.Contains(argvOf(e), "id -u")) {
					t.Errorf("the shell of a request raised network_server_spawns_shell too: %s", argvOf(e))
				}
			}
		}
	})
	t.Run("benign", func(t *testing.T) {
		addr, stop := tracedListenerFlags(t, t.TempDir(), nil, flags(t), serverBin(t, "launcher"), "-benign", "-addr", "127.0.0.1:0")
		get(t, "http://"+addr+"/health")
		for _, q := range []string{"", "?tz=Europe/Lisbon", "?format=iso"} {
			if got := get(t, "http://"+addr+"/time"+q); !strings.HasSuffix(strings.TrimSpace(got), "Z") {
				t.Fatalf("/time: %q", got)
			}
		}
		ls := stop()
		quiet(t, "the honest dev helper", alerts(ls))
		execs := map[string]int{}
		for _, l := range ls {
			if l.str("kind") == "effect" && l.str("type") == "exec" {
				execs[filepath.Base(l.str("path"))]++
			}
		}
		if execs["date"] < 3 || execs["dash"]+execs["bash"]+execs["sh"] < 1 {
			t.Errorf("the trace lacks the execs (premise): %v", execs)
		}
	})
}

// TestDetectRoots: a server told its directory by a configuration file
// (--config FILE, nothing else on its command line) has that directory as
// its root: its prefix-check bug lets a read into the sibling
// DIR-private through, which raises path_outside_roots (or
// sibling_directory_read) with the file. The twin with a correct check
// refuses the read and raises nothing above low.
func TestDetectRoots(t *testing.T) {
	run := func(t *testing.T, benign bool) ([]line, string, string, *mcp.CallToolResult) {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		base, err := filepath.EvalSymlinks(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		docs, secret := filepath.Join(base, "docs"), filepath.Join(base, "docs-private", "secret.txt")
		files := map[string]string{filepath.Join(docs, "readme.md"): "# docs\n", filepath.Join(docs, "guide", "install.md"): "run make\n",
			filepath.Join(docs, "changelog.md"): "v1\n", secret: "MCPSEC-PRIVATE\n"}
		for f, s := range files {
			if err := os.MkdirAll(filepath.Dir(f), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(f, []byte(s), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		cfgDir := t.TempDir() // not under base: nothing but the file's contents names docs
		cfg := filepath.Join(cfgDir, "confined.json")
		if err := os.WriteFile(cfg, []byte(`{"allowed_dir": "`+docs+`"}`), 0o644); err != nil {
			t.Fatal(err)
		}
		argv := []string{serverBin(t, "confined"), "--config", cfg}
		if benign {
			argv = []string{serverBin(t, "confined"), "-benign", "--config", cfg}
		}
		// only the configuration file names a directory
		ts := traceSetup{version: "2025-11-25", dir: cfgDir, env: []string{noStateDir}, flags: ruleFlags(t)}
		s, out := tracedWith(t, ctx, ts, argv...)
		for _, f := range []string{"readme.md", "guide/install.md", "changelog.md", "readme.md"} {
			callText(t, ctx, s, "read_file", map[string]any{"path": filepath.Join(docs, f)})
		}
		r, err := s.CallTool(ctx, &mcp.CallToolParams{Name: "read_file", Arguments: map[string]any{"path": secret}})
		if err != nil {
			t.Fatal(err)
		}
		s.Close()
		return readTrace(t, out), docs, secret, r
	}
	t.Run("malicious", func(t *testing.T) {
		ls, docs, secret, r := run(t, false)
		if r.IsError || !strings.Contains(r.Content[0].(*mcp.TextContent).Text, "MCPSEC-PRIVATE") {
			t.Fatalf("the prefix check did not let the sibling through: %+v", r)
		}
		as := alerts(ls)
		escaped := func(a line) bool {
			e := firstEffect(a)
			return e != nil && e.str("path") == secret && a.obj("call").str("tool") == "read_file"
		}
		var hit []string
		for _, a := range as {
			if (a.str("rule") == "path_outside_roots" && a.str("severity") == "high" ||
				a.str("rule") == "sibling_directory_read" && a.str("severity") == "medium") && escaped(a) {
				hit = append(hit, a.str("rule"))
			}
			if e := firstEffect(a); e != nil && strings.HasPrefix(e.str("path"), docs+"/") && a.str("severity") != "low" {
				t.Errorf("a read inside the configured directory raised %s %s", a.str("severity"), a.str("rule"))
			}
		}
		if len(hit) == 0 {
			t.Errorf("neither path_outside_roots (high) nor sibling_directory_read (medium) on the read of %s; the alerts:", secret)
			logAlerts(t, as)
		}
		t.Logf("the escape raised %v", hit)
	})
	t.Run("benign", func(t *testing.T) {
		ls, docs, _, r := run(t, true)
		if !r.IsError {
			t.Fatalf("the correct check let the sibling through: %+v", r)
		}
		quiet(t, "the correctly confined server", alerts(ls))
		if len(filter(ls, func(l line) bool {
			return l.str("type") == "open" && l.str("path") == filepath.Join(docs, "guide", "install.md") && l.obj("call").str("tool") == "read_file"
		})) == 0 {
			t.Error("the trace lacks the reads inside the directory (premise)")
		}
	})
}

// TestDetectQuietOnNPM: the reference npm servers doing ordinary work
// (files listed, read and written under the root; a knowledge graph built
// and read; echo, sums, resources and prompts) raise nothing above low.
func TestDetectQuietOnNPM(t *testing.T) {
	type call struct {
		tool string
		args map[string]any
	}
	// drive runs argv under `sensor trace`, makes the calls, then more; the
	// trace must hold the answers to the calls and to the methods named.
	drive := func(t *testing.T, dir string, env []string, argv []string, calls []call, more func(context.Context, *mcp.ClientSession), methods ...string) {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		s, out := tracedWith(t, ctx, traceSetup{version: "2025-11-25", dir: dir, env: append(env, noStateDir), flags: ruleFlags(t)}, argv...)
		if _, err := s.ListTools(ctx, nil); err != nil {
			t.Fatal(err)
		}
		for _, c := range calls {
			callText(t, ctx, s, c.tool, c.args)
			methods = append(methods, c.tool)
		}
		if more != nil {
			more(ctx, s)
		}
		s.Close()
		ls := readTrace(t, out)
		saw(t, ls, methods...)
		quiet(t, argv[2], alerts(ls))
	}
	t.Run("filesystem", func(t *testing.T) {
		root, err := filepath.EvalSymlinks(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		notes := filepath.Join(root, "meeting-notes-2026-03.md")
		if err := os.WriteFile(notes, []byte("# Planning, 2 March\n\n- Ann: ship the exporter by Friday\n- see [the board](https://github.com/acme/widget/projects/2)\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		drive(t, npmServers(t), nil, []string{"npx", "--no-install", "mcp-server-filesystem", root}, []call{
			{"list_allowed_directories", map[string]any{}},
			{"list_directory", map[string]any{"path": root}},
			{"read_text_file", map[string]any{"path": notes}},
			{"get_file_info", map[string]any{"path": notes}},
			{"search_files", map[string]any{"path": root, "pattern": "*.md"}},
			{"write_file", map[string]any{"path": filepath.Join(root, "summary.md"), "content": "Exporter ships Friday.\n"}},
			{"read_text_file", map[string]any{"path": filepath.Join(root, "summary.md")}},
		}, nil)
	})
	npm := npmFixture(t, "npm-clients", filepath.Join("node_modules", ".bin", "mcp-server-everything"))
	t.Run("memory", func(t *testing.T) {
		work := t.TempDir()
		drive(t, npm, []string{"MEMORY_FILE_PATH=" + filepath.Join(work, "memory.jsonl")}, []string{"npx", "--no-install", "mcp-server-memory"}, []call{
			{"create_entities", map[string]any{"entities": []map[string]any{
				{"name": "Project Falcon", "entityType": "project", "observations": []string{"kick-off on 2 March", "ships the exporter"}},
				{"name": "Ann Lee", "entityType": "person", "observations": []string{"works on the data team"}}}}},
			{"create_relations", map[string]any{"relations": []map[string]any{{"from": "Ann Lee", "to": "Project Falcon", "relationType": "leads"}}}},
			{"add_observations", map[string]any{"observations": []map[string]any{{"entityName": "Project Falcon", "contents": []string{"budget approved"}}}}},
			{"read_graph", map[string]any{}},
			{"search_nodes", map[string]any{"query": "Falcon"}},
			{"open_nodes", map[string]any{"names": []string{"Ann Lee"}}},
		}, nil)
	})
	t.Run("everything", func(t *testing.T) {
		drive(t, npm, nil, []string{"npx", "--no-install", "mcp-server-everything", "stdio"}, []call{
			{"echo", map[string]any{"message": "hello from the end-to-end test"}},
			{"get-sum", map[string]any{"a": 2, "b": 40}},
			{"get-resource-reference", map[string]any{"resourceType": "Text", "resourceId": 3}},
			{"get-structured-content", map[string]any{"location": "Chicago"}},
			{"get-annotated-message", map[string]any{"messageType": "success"}},
		}, func(ctx context.Context, s *mcp.ClientSession) {
			for _, uri := range []string{"demo://resource/static/document/features.md", "demo://resource/static/document/architecture.md", "demo://resource/dynamic/text/1"} {
				if _, err := s.ReadResource(ctx, &mcp.ReadResourceParams{URI: uri}); err != nil {
					t.Errorf("reading %s: %v", uri, err)
				}
			}
			for name, args := range map[string]map[string]string{"simple-prompt": nil, "args-prompt": {"city": "Lisbon"}} {
				if _, err := s.GetPrompt(ctx, &mcp.GetPromptParams{Name: name, Arguments: args}); err != nil {
					t.Errorf("prompt %s: %v", name, err)
				}
			}
		}, "resources/read", "prompts/get")
	})
}
