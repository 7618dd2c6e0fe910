package pipeline

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/mcpsec/sensor/pkg/decode"
)

func openEff(path string) Item {
	return Item{Event: &decode.Effect{Kind: "effect", Type: "open", Path: path, Proc: decode.Proc{PID: 10, TID: 10, Comm: "node"}}}
}

// TestOutputFoldsAndFilters: --hide-runtime folds the runtime opens made
// outside calls into one line (a call's open is shown); --filter keeps
// what its expression accepts; --only keeps the kinds named.
func TestOutputFoldsAndFilters(t *testing.T) {
	rs, err := LoadRules("")
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	o, err := newOutputSub(Output{Name: "t", W: &buf, Format: "text", HideRuntime: true}, rs)
	if err != nil {
		t.Fatal(err)
	}
	inCall := openEff("/usr/lib/node_modules/x/index.js")
	inCall.Event.(*decode.Effect).Call = &decode.CallRef{ID: json.RawMessage("1"), Tool: "t"}
	items := []Item{openEff("/usr/lib/x86_64-linux-gnu/libc.so.6"), openEff("/srv/app/node_modules/a/b.js"), openEff("/etc/ld.so.cache"),
		{Event: msg(1, "tools/call")}, inCall, openEff("/srv/notes/todo.txt")}
	if err := o.handle(items); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 4 || !strings.Contains(lines[0], "3 runtime opens folded") || !strings.Contains(lines[1], "tools/call") ||
		!strings.Contains(lines[2], "/usr/lib/node_modules/x/index.js") || !strings.Contains(lines[3], "/srv/notes/todo.txt") {
		t.Fatalf("folded output:\n%s", buf.String())
	}

	buf.Reset()
	o, err = newOutputSub(Output{Name: "t", W: &buf, Format: "json", Filter: `ev.kind == "effect" && ev.path.startsWith("/srv/notes")`}, rs)
	if err != nil {
		t.Fatal(err)
	}
	_ = o.handle(items)
	if n := strings.Count(buf.String(), "\n"); n != 1 || !strings.Contains(buf.String(), "todo.txt") {
		t.Fatalf("filtered output:\n%s", buf.String())
	}
	if _, err := newOutputSub(Output{Name: "t", W: &buf, Format: "json", Filter: `ev.kind ==`}, rs); err == nil || !strings.Contains(err.Error(), `filter "ev.kind =="`) {
		t.Errorf("a bad filter: %v", err)
	}
	if _, err := newOutputSub(Output{Name: "t", W: &buf, Format: "json", Only: []string{"alert"}}, rs); err == nil || !strings.Contains(err.Error(), `"alert" is not a kind`) {
		t.Errorf("a bad kind: %v", err)
	}
	o, _ = newOutputSub(Output{Name: "t", W: &buf, Format: "json", Only: []string{"messages", "alerts"}}, rs)
	if o.want(items[0]) || !o.want(items[3]) {
		t.Error("--only messages,alerts took an effect or left a message")
	}
}
