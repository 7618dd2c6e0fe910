package sink

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/mcpsec/sensor/pkg/correlate"
	"github.com/mcpsec/sensor/pkg/decode"
)

func TestFalcoOutput(t *testing.T) {
	var mu sync.Mutex
	var got []map[string]any
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		var m map[string]any
		if err := json.Unmarshal(b, &m); err != nil || r.Header.Get("Content-Type") != "application/json" {
			http.Error(w, "bad", 400)
			return
		}
		mu.Lock()
		got = append(got, m)
		mu.Unlock()
	}))
	defer srv.Close()
	f := NewFalco(srv.URL)
	a := &correlate.Alert{Kind: "alert", Time: time.Now(), Rule: "credential_read_unnamed", Severity: "high",
		Output: "evil read /root/.ssh/id_rsa", Tags: []string{"T1552.004"},
		Proc:    decode.Proc{PID: 42, Comm: "evil", Server: "42-1"},
		Call:    &decode.CallRef{Session: "stdio:1", ID: []byte("7"), Tool: "read_notes"},
		Effects: []*decode.Effect{{Type: "open", Path: "/root/.ssh/id_rsa"}}}
	f.Publish(a)
	f.Close()
	if len(got) != 1 {
		t.Fatalf("%d posts", len(got))
	}
	m := got[0]
	for _, k := range []string{"rule", "priority", "output", "output_fields", "time", "hostname", "tags"} {
		if m[k] == nil {
			t.Errorf("no %q in %v", k, m)
		}
	}
	fields, _ := m["output_fields"].(map[string]any)
	if m["priority"] != "Error" || m["rule"] != "credential_read_unnamed" || fields["fd.name"] != "/root/.ssh/id_rsa" || fields["mcp.tool"] != "read_notes" {
		t.Errorf("%v", m)
	}
	if st := f.Stats(); st.Sent != 1 || st.Failed != 0 {
		t.Errorf("%+v", st)
	}
}
